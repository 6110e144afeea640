//! Checks shared by the fuzz targets, and the allocation guard every target links (see
//! [`alloc_guard`]).

pub mod alloc_guard;

use signalr_protocol::{HubMessage, HubProtocol, Parsed};

/// Feeds `data` to `protocol` the way a server reads a connection's buffer: parse the front,
/// drop the bytes the message took, and go on until the buffer is incomplete or invalid.
///
/// Every message parsed must be written without error, and the written bytes must parse to an
/// equal message that takes exactly those bytes; writing that message again must give the same
/// bytes.
pub fn drive<P: HubProtocol>(protocol: &P, data: &[u8]) {
    let mut rest = data;
    loop {
        match protocol.parse(rest) {
            Ok(Parsed::Incomplete) | Err(_) => return,
            Ok(Parsed::Ignored(consumed)) => {
                assert!(
                    consumed > 0 && consumed <= rest.len(),
                    "Ignored({consumed}) of a {}-byte buffer",
                    rest.len()
                );
                rest = &rest[consumed..];
            }
            Ok(Parsed::Message(message, consumed)) => {
                assert!(
                    consumed > 0 && consumed <= rest.len(),
                    "Message consumed {consumed} of a {}-byte buffer",
                    rest.len()
                );
                round_trip(protocol, &message);
                rest = &rest[consumed..];
            }
        }
    }
}

fn round_trip<P: HubProtocol>(protocol: &P, message: &HubMessage) {
    // Write after some existing bytes, as a server appends to an output buffer.
    let mut out = b"prefix".to_vec();
    protocol
        .write(message, &mut out)
        .unwrap_or_else(|error| panic!("writing a parsed {message:?} failed: {error}"));
    let written = &out[6..];
    assert_eq!(&out[..6], b"prefix", "write changed the bytes before it");
    assert!(!written.is_empty(), "write wrote nothing");

    let bytes = protocol
        .to_bytes(message)
        .expect("to_bytes after write succeeded");
    assert_eq!(&bytes[..], written, "to_bytes and write differ");

    match protocol.parse(written) {
        Ok(Parsed::Message(again, consumed)) => {
            assert_eq!(
                consumed,
                written.len(),
                "the written message {written:?} parsed with a different length"
            );
            assert_eq!(&again, message, "written as {written:?}");
            let mut second = Vec::new();
            protocol.write(&again, &mut second).expect("second write");
            assert_eq!(second, written, "writing is not stable");
        }
        other => panic!("{message:?} written as {written:?} parses as {other:?}"),
    }
}
