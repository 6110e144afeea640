#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
// Links the allocation guard (the global allocator of the fuzz crate).
use signalr_protocol::values::{Timestamp, byte_array};
use signalr_protocol::{Payload, PayloadFormat, PayloadRef};
use signalr_protocol_fuzz as _;

/// Bytes read through `values::byte_array` (base64 text, `bin`, or an array of integers).
#[derive(Debug)]
struct ByteArray(#[allow(dead_code)] Vec<u8>);

impl<'de> serde::Deserialize<'de> for ByteArray {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        byte_array::deserialize(deserializer).map(ByteArray)
    }
}

/// A decoded timestamp must survive being encoded again in either format. JSON text is only
/// checked for years 0000 to 9999, the range of its four-digit year.
fn check_timestamp(time: Timestamp) {
    let packed = Payload::encode(PayloadFormat::MessagePack, &time).expect("encode messagepack");
    assert_eq!(
        packed.decode::<Timestamp>().expect("decode messagepack"),
        time
    );

    let text = time.to_string();
    let year_fits = text.len() >= 5 && text.as_bytes()[4] == b'-' && !text.starts_with('-');
    if year_fits {
        assert_eq!(Timestamp::parse(&text), Some(time), "{text}");
        let json = Payload::encode(PayloadFormat::Json, &time).expect("encode json");
        assert_eq!(
            json.decode::<Timestamp>().expect("decode json"),
            time,
            "{text}"
        );
    }
}

fn decode_element(element: PayloadRef<'_>) {
    if let Ok(time) = element.decode::<Timestamp>() {
        check_timestamp(time);
    }
    let _ = element.decode::<Vec<u8>>();
    let _ = element.decode::<ByteArray>();
    let owned = element.to_owned();
    let _ = owned.is_null();
    let _ = owned.is_array();
}

fn check(payload: &Payload, input_len: usize) {
    let is_array = payload.is_array();
    let _ = payload.is_null();
    let Ok(elements) = payload.elements() else {
        return;
    };
    assert!(
        is_array,
        "elements() succeeded on a value that is_array() denies"
    );
    let mut total = 0;
    for element in &elements {
        if let PayloadRef::MessagePack(bytes) = element {
            assert!(!bytes.is_empty(), "an empty MessagePack element");
            total += bytes.len();
        }
    }
    assert!(total <= input_len, "elements longer than the input");
    for element in elements {
        decode_element(element);
    }
}

fuzz_target!(|data: &[u8]| {
    let packed = Payload::MessagePack(Bytes::from(data.to_vec()));
    check(&packed, data.len());

    if let Ok(text) = std::str::from_utf8(data)
        && let Some(json) = Payload::json(text)
    {
        check(&json, data.len());
    }
});
