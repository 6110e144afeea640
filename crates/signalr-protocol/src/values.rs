//! Serde helpers for values whose encoding differs between the hub protocols, as the reference
//! encodes them (PROTOCOL.md §6, §7):
//!
//! | Rust | JSON | MessagePack |
//! |---|---|---|
//! | `Vec<u8>` with [`byte_array`] | base64 string | `bin` |
//! | [`Timestamp`] | ISO 8601 string, `2000-01-01T00:00:00Z` | timestamp extension (type -1) |
//!
//! The choice follows serde's `is_human_readable`: JSON is, MessagePack is not.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use signalr_protocol::values::{Timestamp, byte_array};
//!
//! #[derive(Serialize, Deserialize)]
//! #[serde(rename_all = "PascalCase")]
//! struct Upload {
//!     #[serde(with = "byte_array")]
//!     content: Vec<u8>,
//!     sent_at: Timestamp,
//! }
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// `#[serde(with = "byte_array")]` for `Vec<u8>`: base64 in JSON, `bin` in MessagePack. Reading
/// also accepts an array of small integers.
pub mod byte_array {
    use super::*;

    /// Writes `bytes` as base64 text or as binary.
    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&STANDARD.encode(bytes))
        } else {
            serializer.serialize_bytes(bytes)
        }
    }

    /// Reads base64 text, binary, or an array of integers.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(BytesVisitor)
        } else {
            deserializer.deserialize_byte_buf(BytesVisitor)
        }
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("bytes, base64 text or an array of bytes")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
        STANDARD
            .decode(text)
            .map_err(|_| E::custom("invalid base64"))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(bytes)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut items: A) -> Result<Vec<u8>, A::Error> {
        let mut bytes = Vec::new();
        while let Some(byte) = items.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(bytes)
    }
}

/// A point in time with nanosecond precision, in UTC (the reference's `DateTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    seconds: i64,
    nanoseconds: u32,
}

/// The MessagePack extension type of timestamps.
const TIMESTAMP_EXTENSION: i8 = -1;
/// The name rmp-serde gives MessagePack extensions in serde's data model.
const EXTENSION_STRUCT: &str = "_ExtStruct";

impl Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z and nanoseconds within the second; `None` for
    /// nanoseconds of a second or more.
    pub fn new(seconds: i64, nanoseconds: u32) -> Option<Timestamp> {
        (nanoseconds < 1_000_000_000).then_some(Timestamp {
            seconds,
            nanoseconds,
        })
    }

    /// A UTC date and time.
    pub fn from_utc(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Option<Timestamp> {
        let valid = (1..=12).contains(&month)
            && (1..=31).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60;
        if !valid {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
        Timestamp::new(seconds, 0)
    }

    /// Seconds since the Unix epoch.
    pub fn seconds(&self) -> i64 {
        self.seconds
    }

    /// Nanoseconds within the second.
    pub fn nanoseconds(&self) -> u32 {
        self.nanoseconds
    }

    /// Reads `YYYY-MM-DDTHH:MM:SS`, optional fraction, optional `Z` or `±HH:MM` (none means
    /// UTC).
    pub fn parse(text: &str) -> Option<Timestamp> {
        let bytes = text.as_bytes();
        let number = |range: std::ops::Range<usize>| -> Option<i64> {
            let part = text.get(range)?;
            part.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        if bytes.len() < 19
            || bytes[4] != b'-'
            || bytes[7] != b'-'
            || !matches!(bytes[10], b'T' | b't' | b' ')
            || bytes[13] != b':'
            || bytes[16] != b':'
        {
            return None;
        }
        let base = Timestamp::from_utc(
            number(0..4)?,
            number(5..7)? as u32,
            number(8..10)? as u32,
            number(11..13)? as u32,
            number(14..16)? as u32,
            number(17..19)? as u32,
        )?;
        let mut rest = &text[19..];
        let mut nanoseconds = 0u32;
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            for (index, digit) in fraction[..digits].bytes().take(9).enumerate() {
                nanoseconds += u32::from(digit - b'0') * 10u32.pow(8 - index as u32);
            }
            rest = &fraction[digits..];
        }
        let offset = match rest {
            "" | "Z" | "z" => 0,
            _ => {
                let sign = match rest.as_bytes().first()? {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                let (hours, minutes) = rest[1..].split_once(':')?;
                let digits =
                    |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
                let valid = digits(hours) && digits(minutes);
                let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
                if !valid || hours > 23 || minutes > 59 {
                    return None;
                }
                sign * (hours * 3600 + minutes * 60)
            }
        };
        Timestamp::new(base.seconds - offset, nanoseconds)
    }

    /// The extension payload in the smallest form that holds this time (32, 64 or 96 bits).
    fn to_extension(self) -> Vec<u8> {
        if self.nanoseconds == 0 && (0..=i64::from(u32::MAX)).contains(&self.seconds) {
            (self.seconds as u32).to_be_bytes().to_vec()
        } else if (0..1 << 34).contains(&self.seconds) {
            ((u64::from(self.nanoseconds) << 34) | self.seconds as u64)
                .to_be_bytes()
                .to_vec()
        } else {
            let mut bytes = self.nanoseconds.to_be_bytes().to_vec();
            bytes.extend_from_slice(&self.seconds.to_be_bytes());
            bytes
        }
    }

    /// Reads the 32, 64 or 96-bit extension payload.
    fn from_extension(bytes: &[u8]) -> Option<Timestamp> {
        match bytes.len() {
            4 => Timestamp::new(i64::from(u32::from_be_bytes(bytes.try_into().ok()?)), 0),
            8 => {
                let value = u64::from_be_bytes(bytes.try_into().ok()?);
                Timestamp::new((value & ((1 << 34) - 1)) as i64, (value >> 34) as u32)
            }
            12 => {
                let nanoseconds = u32::from_be_bytes(bytes[..4].try_into().ok()?);
                Timestamp::new(i64::from_be_bytes(bytes[4..].try_into().ok()?), nanoseconds)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Timestamp {
    /// `YYYY-MM-DDTHH:MM:SSZ`, with only as many fraction digits as needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.seconds.div_euclid(86_400);
        let second_of_day = self.seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) = (
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60,
        );
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}"
        )?;
        if self.nanoseconds > 0 {
            let fraction = format!("{:09}", self.nanoseconds);
            write!(f, ".{}", fraction.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

/// Bytes that serialize as MessagePack `bin`.
struct Binary<'a>(&'a [u8]);

impl Serialize for Binary<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            let payload = self.to_extension();
            serializer.serialize_newtype_struct(
                EXTENSION_STRUCT,
                &(TIMESTAMP_EXTENSION, Binary(&payload)),
            )
        }
    }
}

struct TimestampVisitor;

impl<'de> Visitor<'de> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an ISO 8601 date and time, or a MessagePack timestamp")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Timestamp, E> {
        Timestamp::parse(text).ok_or_else(|| E::custom(format!("not a date and time: {text}")))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Timestamp, D::Error> {
        let (kind, payload): (i8, ByteBuffer) = Deserialize::deserialize(deserializer)?;
        if kind != TIMESTAMP_EXTENSION {
            return Err(de::Error::custom(format!(
                "extension type {kind} is not a timestamp"
            )));
        }
        Timestamp::from_extension(&payload.0)
            .ok_or_else(|| de::Error::custom("a timestamp has 4, 8 or 12 bytes"))
    }
}

/// Owned bytes read from binary data.
struct ByteBuffer(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuffer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ByteBuffer, D::Error> {
        deserializer
            .deserialize_byte_buf(BytesVisitor)
            .map(ByteBuffer)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(TimestampVisitor)
        } else {
            deserializer.deserialize_newtype_struct(EXTENSION_STRUCT, TimestampVisitor)
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_text_round_trips() {
        for text in [
            "2000-01-01T00:00:00Z",
            "2002-04-01T10:20:15Z",
            "1969-12-31T23:59:59.5Z",
            "2024-02-29T12:00:00.123456789Z",
        ] {
            assert_eq!(Timestamp::parse(text).unwrap().to_string(), text);
        }
        let offset = Timestamp::parse("2002-04-01T12:20:15+02:00").unwrap();
        assert_eq!(offset.to_string(), "2002-04-01T10:20:15Z");
        assert_eq!(
            Timestamp::from_utc(2000, 1, 1, 0, 0, 0).unwrap().seconds(),
            946_684_800
        );
        assert!(Timestamp::parse("2002-13-01T00:00:00Z").is_none());
        assert!(Timestamp::parse("yesterday").is_none());
        assert!(Timestamp::parse("2000-01-01T00:00:00+-1:00").is_none());
    }

    #[test]
    fn json_uses_text_and_base64() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Sample {
            #[serde(with = "byte_array")]
            bytes: Vec<u8>,
            at: Timestamp,
        }
        let sample = Sample {
            bytes: vec![1, 2, 3],
            at: Timestamp::from_utc(2000, 1, 1, 0, 0, 0).unwrap(),
        };
        let text = serde_json::to_string(&sample).unwrap();
        assert_eq!(text, r#"{"bytes":"AQID","at":"2000-01-01T00:00:00Z"}"#);
        assert_eq!(serde_json::from_str::<Sample>(&text).unwrap(), sample);
        let from_array: Sample =
            serde_json::from_str(r#"{"bytes":[1,2,3],"at":"2000-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(from_array, sample);
    }

    #[cfg(feature = "messagepack")]
    #[test]
    fn messagepack_uses_bin_and_the_smallest_timestamp_form() {
        let bytes = rmp_serde::to_vec(&serde_bytes_like(&[1, 2, 3])).unwrap();
        assert_eq!(bytes, [0xc4, 0x03, 1, 2, 3]);
        // 32-bit: whole seconds that fit in 32 bits.
        let at = Timestamp::from_utc(2000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            rmp_serde::to_vec(&at).unwrap(),
            [0xd6, 0xff, 0x38, 0x6d, 0x43, 0x80]
        );
        // 64-bit: with nanoseconds.
        let with_nanos = Timestamp::new(1, 5).unwrap();
        let encoded = rmp_serde::to_vec(&with_nanos).unwrap();
        assert_eq!(encoded, [0xd7, 0xff, 0, 0, 0, 0x14, 0, 0, 0, 1]);
        // 96-bit: before 1970.
        let early = Timestamp::new(-1, 0).unwrap();
        let encoded_early = rmp_serde::to_vec(&early).unwrap();
        assert_eq!(encoded_early[..3], [0xc7, 12, 0xff]);
        for (time, encoded) in [
            (at, rmp_serde::to_vec(&at).unwrap()),
            (with_nanos, encoded),
            (early, encoded_early),
        ] {
            assert_eq!(rmp_serde::from_slice::<Timestamp>(&encoded).unwrap(), time);
        }
    }

    #[cfg(feature = "messagepack")]
    fn serde_bytes_like(bytes: &[u8]) -> impl Serialize + '_ {
        struct Wrapper<'a>(&'a [u8]);
        impl Serialize for Wrapper<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                byte_array::serialize(self.0, serializer)
            }
        }
        Wrapper(bytes)
    }
}
