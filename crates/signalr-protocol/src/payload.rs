//! Values kept in their encoded form until a caller binds them to Rust types.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// The encoding of values inside messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// JSON text.
    Json,
    /// MessagePack bytes.
    MessagePack,
}

/// An encoded value: the arguments array of an invocation, a stream item or a result.
#[derive(Debug, Clone)]
pub enum Payload {
    /// A JSON value, exactly as received or written.
    Json(Box<RawValue>),
    /// One MessagePack value, exactly as received or written.
    #[cfg(feature = "messagepack")]
    MessagePack(bytes::Bytes),
}

/// A borrowed view of one encoded value, for example one element of an arguments array.
#[derive(Debug, Clone, Copy)]
pub enum PayloadRef<'a> {
    /// A JSON value.
    Json(&'a RawValue),
    /// One MessagePack value.
    #[cfg(feature = "messagepack")]
    MessagePack(&'a [u8]),
}

/// A value that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(String);

impl Payload {
    /// Encodes `value` in `format`.
    ///
    /// # Errors
    /// When the value's `Serialize` implementation fails.
    pub fn encode<T: Serialize + ?Sized>(
        format: PayloadFormat,
        value: &T,
    ) -> Result<Payload, PayloadError> {
        match format {
            PayloadFormat::Json => serde_json::value::to_raw_value(value)
                .map(Payload::Json)
                .map_err(|error| PayloadError(error.to_string())),
            // Maps keyed by field name, as the reference's contractless resolver writes them.
            #[cfg(feature = "messagepack")]
            PayloadFormat::MessagePack => rmp_serde::to_vec_named(value)
                .map(|bytes| Payload::MessagePack(bytes.into()))
                .map_err(|error| PayloadError(error.to_string())),
            #[cfg(not(feature = "messagepack"))]
            PayloadFormat::MessagePack => {
                Err(PayloadError("the messagepack feature is off".to_owned()))
            }
        }
    }

    /// Encodes the arguments of a call in `format`: a tuple such as `("text", 1)`, an array, or
    /// `()` for none.
    ///
    /// # Errors
    /// When encoding fails or the value is not an array.
    pub fn encode_arguments<T: Serialize + ?Sized>(
        format: PayloadFormat,
        arguments: &T,
    ) -> Result<Payload, PayloadError> {
        let payload = Payload::encode(format, arguments)?;
        // `()` encodes as null; as arguments it means "none".
        if payload.is_null() {
            return Payload::encode(format, &[(); 0]);
        }
        if !payload.is_array() {
            return Err(PayloadError(
                "arguments must serialize to an array, for example a tuple".to_owned(),
            ));
        }
        Ok(payload)
    }

    /// An encoded JSON value taken as it is; `None` if `text` is not valid JSON.
    pub fn json(text: &str) -> Option<Payload> {
        RawValue::from_string(text.to_owned())
            .ok()
            .map(Payload::Json)
    }

    /// The format this value is encoded in.
    pub fn format(&self) -> PayloadFormat {
        match self {
            Payload::Json(_) => PayloadFormat::Json,
            #[cfg(feature = "messagepack")]
            Payload::MessagePack(_) => PayloadFormat::MessagePack,
        }
    }

    /// A borrowed view of the whole value.
    pub fn as_ref(&self) -> PayloadRef<'_> {
        match self {
            Payload::Json(raw) => PayloadRef::Json(raw),
            #[cfg(feature = "messagepack")]
            Payload::MessagePack(bytes) => PayloadRef::MessagePack(bytes),
        }
    }

    /// Decodes the value into `T`.
    ///
    /// # Errors
    /// When the value does not fit `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        self.as_ref().decode()
    }

    /// The elements of an encoded array, each still encoded.
    ///
    /// # Errors
    /// When the value is not an array.
    pub fn elements(&self) -> Result<Vec<PayloadRef<'_>>, PayloadError> {
        match self {
            Payload::Json(raw) => serde_json::from_str::<Vec<&RawValue>>(raw.get())
                .map(|items| items.into_iter().map(PayloadRef::Json).collect())
                .map_err(|error| PayloadError(error.to_string())),
            #[cfg(feature = "messagepack")]
            Payload::MessagePack(bytes) => crate::messagepack::array_elements(bytes)
                .map(|items| items.into_iter().map(PayloadRef::MessagePack).collect())
                .map_err(|error| PayloadError(error.to_string())),
        }
    }

    /// Whether the value is an array.
    pub fn is_array(&self) -> bool {
        match self {
            Payload::Json(raw) => raw.get().starts_with('['),
            #[cfg(feature = "messagepack")]
            Payload::MessagePack(bytes) => {
                matches!(bytes.first(), Some(0x90..=0x9f | 0xdc | 0xdd))
            }
        }
    }

    /// Whether the value is null (`()` and `None` encode as null).
    pub fn is_null(&self) -> bool {
        match self {
            Payload::Json(raw) => raw.get() == "null",
            #[cfg(feature = "messagepack")]
            Payload::MessagePack(bytes) => bytes[..] == [0xc0],
        }
    }
}

impl PayloadRef<'_> {
    /// Decodes the value into `T`.
    ///
    /// # Errors
    /// When the value does not fit `T`.
    pub fn decode<T: DeserializeOwned>(self) -> Result<T, PayloadError> {
        match self {
            PayloadRef::Json(raw) => {
                serde_json::from_str(raw.get()).map_err(|error| PayloadError(error.to_string()))
            }
            #[cfg(feature = "messagepack")]
            PayloadRef::MessagePack(bytes) => {
                rmp_serde::from_slice(bytes).map_err(|error| PayloadError(error.to_string()))
            }
        }
    }

    /// An owned copy of the value.
    pub fn to_owned(self) -> Payload {
        match self {
            PayloadRef::Json(raw) => Payload::Json(raw.to_owned()),
            #[cfg(feature = "messagepack")]
            PayloadRef::MessagePack(bytes) => {
                Payload::MessagePack(bytes::Bytes::copy_from_slice(bytes))
            }
        }
    }
}

/// Two payloads are equal when their encoded bytes are.
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Payload::Json(a), Payload::Json(b)) => a.get() == b.get(),
            #[cfg(feature = "messagepack")]
            (Payload::MessagePack(a), Payload::MessagePack(b)) => a == b,
            #[cfg(feature = "messagepack")]
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_arguments_are_an_array() {
        let json = |value: &Payload| match value {
            Payload::Json(raw) => raw.get().to_owned(),
            #[cfg(feature = "messagepack")]
            Payload::MessagePack(bytes) => format!("{bytes:?}"),
        };
        assert_eq!(
            json(&Payload::encode_arguments(PayloadFormat::Json, &("a", 1)).unwrap()),
            "[\"a\",1]"
        );
        assert_eq!(
            json(&Payload::encode_arguments(PayloadFormat::Json, &()).unwrap()),
            "[]"
        );
        assert_eq!(
            Payload::encode_arguments(PayloadFormat::Json, &"a")
                .unwrap_err()
                .to_string(),
            "arguments must serialize to an array, for example a tuple"
        );
    }
}
