#![no_main]

use libfuzzer_sys::fuzz_target;
use signalr_protocol::json::JsonHubProtocol;

fuzz_target!(|data: &[u8]| {
    signalr_protocol_fuzz::drive(&JsonHubProtocol, data);
});
