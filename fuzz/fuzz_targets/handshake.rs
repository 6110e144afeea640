#![no_main]

use libfuzzer_sys::fuzz_target;
// Links the allocation guard (the global allocator of the fuzz crate).
use signalr_protocol::handshake::{HandshakeRequest, ParsedHandshake};
use signalr_protocol_fuzz as _;

fuzz_target!(|data: &[u8]| {
    let Ok(ParsedHandshake::Request(request, consumed)) = HandshakeRequest::parse(data) else {
        return;
    };
    assert!(
        consumed > 0 && consumed <= data.len(),
        "consumed {consumed} of {} bytes",
        data.len()
    );
    assert_eq!(data[consumed - 1], signalr_protocol::RECORD_SEPARATOR);
    // What a client would write for this request reads back as the same request.
    let written = request.to_bytes();
    assert_eq!(
        HandshakeRequest::parse(&written),
        Ok(ParsedHandshake::Request(request, written.len()))
    );
});
