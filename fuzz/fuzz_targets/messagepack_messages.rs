#![no_main]

use libfuzzer_sys::fuzz_target;
use signalr_protocol::messagepack::MessagePackHubProtocol;

fuzz_target!(|data: &[u8]| {
    signalr_protocol_fuzz::drive(&MessagePackHubProtocol, data);
});
