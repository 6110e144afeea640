//! The MessagePack hub protocol end to end: binary frames on WebSockets, binary bodies on Long
//! Polling, and one encoding per protocol for a broadcast to a mixed group (PROTOCOL.md §3, §7,
//! §12).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use signalr_server::protocol::json::JsonHubProtocol;
use signalr_server::protocol::messagepack::MessagePackHubProtocol;
use signalr_server::protocol::{
    HubMessage, HubProtocol, Parsed, PayloadFormat, ProtocolError, TransferFormat,
};
use signalr_server::{CallContext, Hub, HubError, HubOptions, HubRouterExt};

use common::{Client, Frame, bounded, poll, send, start, ws_base};

const MSGPACK_HANDSHAKE: &str = "{\"protocol\":\"messagepack\",\"version\":1}\u{1e}";

/// `[1, {}, "1", "Echo", ["hi"]]`, framed: the 5-element Invocation the JavaScript client sends.
const ECHO_HI: [u8; 15] = [
    0x0e, 0x95, 0x01, 0x80, 0xa1, 0x31, 0xa4, b'E', b'c', b'h', b'o', 0x91, 0xa2, b'h', b'i',
];
/// `[3, {}, "1", 3, "hi"]`, framed.
const COMPLETION_HI: [u8; 10] = [0x09, 0x95, 0x03, 0x80, 0xa1, 0x31, 0x03, 0xa2, b'h', b'i'];

async fn echo(_context: CallContext<()>, text: String) -> Result<String, HubError> {
    Ok(text)
}

/// Numbers of any width bind to wider parameters; nulls and nested arrays bind too.
async fn sum(
    _context: CallContext<()>,
    small: i32,
    negative: i64,
    unsigned: u64,
    single: f64,
    double: f64,
    nested: Option<Vec<Vec<i32>>>,
) -> Result<f64, HubError> {
    let nested: i32 = nested.unwrap_or_default().iter().flatten().sum();
    Ok(f64::from(small) + negative as f64 + unsigned as f64 + single + double + f64::from(nested))
}

fn echo_hub(options: HubOptions) -> Router {
    let hub = Hub::builder(())
        .method("Echo", echo)
        .method("Sum", sum)
        .options(options)
        .with_messagepack()
        .build();
    Router::new().map_hub("/hub", hub)
}

async fn binary_frame(client: &mut Client) -> Vec<u8> {
    match client.next_frame().await {
        Frame::Binary(bytes) => bytes,
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

#[tokio::test]
async fn over_websockets_the_handshake_response_and_every_later_frame_are_binary() {
    let options = HubOptions {
        keep_alive_interval: Duration::from_millis(200),
        ..HubOptions::default()
    };
    let base = start(echo_hub(options)).await;
    let mut client = Client::connect(&format!("{}/hub", ws_base(&base))).await;
    client.send_text(MSGPACK_HANDSHAKE).await;
    assert_eq!(binary_frame(&mut client).await, b"{}\x1e");

    client.send_binary(&ECHO_HI).await;
    assert_eq!(binary_frame(&mut client).await, COMPLETION_HI);
    // Nothing sent for the keep-alive interval: a binary Ping.
    assert_eq!(binary_frame(&mut client).await, [0x02, 0x91, 0x06]);
}

#[tokio::test]
async fn every_integer_width_both_float_widths_nulls_and_nested_arrays_bind() {
    let base = start(echo_hub(HubOptions::default())).await;
    let mut client = Client::connect(&format!("{}/hub", ws_base(&base))).await;
    client.send_text(MSGPACK_HANDSHAKE).await;
    assert_eq!(binary_frame(&mut client).await, b"{}\x1e");

    let mut body = vec![0x95, 0x01, 0x80, 0xa1, b'1', 0xa3, b'S', b'u', b'm', 0x96];
    body.extend([0xcc, 0x05]); // u8 5
    body.extend([0xd1, 0xff, 0xfe]); // i16 -2
    body.extend([0xce, 0, 0, 0, 0x0a]); // u32 10
    body.extend([0xca, 0x3f, 0xc0, 0, 0]); // f32 1.5
    body.extend([0xcb, 0x40, 0x02, 0, 0, 0, 0, 0, 0]); // f64 2.25
    body.extend([0x92, 0x92, 0x01, 0x02, 0x91, 0xd0, 0xfd]); // [[1, 2], [i8 -3]]
    let mut framed = vec![body.len() as u8];
    framed.extend(body);
    client.send_binary(&framed).await;
    // `[3, {}, "1", 3, 16.75]` with the result as f64.
    let completion = [
        0x0f, 0x95, 0x03, 0x80, 0xa1, b'1', 0x03, 0xcb, 0x40, 0x30, 0xc0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(binary_frame(&mut client).await, completion);

    // The same with the last argument nil.
    let mut body = vec![0x95, 0x01, 0x80, 0xa1, b'2', 0xa3, b'S', b'u', b'm', 0x96];
    body.extend([0x00, 0x00, 0x00, 0x00, 0x00, 0xc0]);
    let mut framed = vec![body.len() as u8];
    framed.extend(body);
    client.send_binary(&framed).await;
    let completion = [
        0x0f, 0x95, 0x03, 0x80, 0xa1, b'2', 0x03, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(binary_frame(&mut client).await, completion);
}

#[tokio::test]
async fn over_long_polling_bodies_are_binary() {
    let base = start(echo_hub(HubOptions::default())).await;
    let token = common::negotiate_token(&base).await;
    let url = format!("{base}/hub?id={token}");
    assert_eq!(poll(&url).await.status, 200, "the first poll");
    let post = |body: Vec<u8>| {
        let request = common::http()
            .post(&url)
            .header("Content-Type", "application/octet-stream")
            .body(body);
        send(request)
    };
    assert_eq!(
        post(MSGPACK_HANDSHAKE.as_bytes().to_vec()).await.status,
        200
    );
    assert_eq!(post(ECHO_HI.to_vec()).await.status, 200);

    let mut received = Vec::new();
    while received.len() < 3 + COMPLETION_HI.len() {
        let response = bounded("a poll", common::http().get(&url).send())
            .await
            .expect("the poll");
        assert_eq!(response.status().as_u16(), 200);
        received.extend_from_slice(&response.bytes().await.expect("the body"));
    }
    let mut expected = b"{}\x1e".to_vec();
    expected.extend_from_slice(&COMPLETION_HI);
    assert_eq!(received, expected);
}

/// A protocol that counts the Invocations it writes and otherwise is `inner`.
struct Counting<P> {
    inner: P,
    invocations_written: Arc<AtomicUsize>,
}

impl<P: HubProtocol> HubProtocol for Counting<P> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn version(&self) -> u32 {
        self.inner.version()
    }
    fn transfer_format(&self) -> TransferFormat {
        self.inner.transfer_format()
    }
    fn payload_format(&self) -> PayloadFormat {
        self.inner.payload_format()
    }
    fn parse(&self, input: &[u8]) -> Result<Parsed, ProtocolError> {
        self.inner.parse(input)
    }
    fn write(&self, message: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        if matches!(message, HubMessage::Invocation(_)) {
            self.invocations_written.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.write(message, out)
    }
}

async fn join(context: CallContext<()>) -> Result<(), HubError> {
    context
        .groups()
        .add(context.connection_id(), "mixed")
        .await?;
    Ok(())
}

async fn broadcast(context: CallContext<()>) -> Result<(), HubError> {
    context.clients().group("mixed").send("Note", (42,)).await?;
    Ok(())
}

#[tokio::test]
async fn a_broadcast_to_a_mixed_group_is_encoded_once_per_protocol() {
    let json_writes = Arc::new(AtomicUsize::new(0));
    let messagepack_writes = Arc::new(AtomicUsize::new(0));
    let hub = Hub::builder(())
        .method("Join", join)
        .method("Broadcast", broadcast)
        .supported_protocols(vec![
            Arc::new(Counting {
                inner: JsonHubProtocol,
                invocations_written: json_writes.clone(),
            }),
            Arc::new(Counting {
                inner: MessagePackHubProtocol,
                invocations_written: messagepack_writes.clone(),
            }),
        ])
        .build();
    let base = start(Router::new().map_hub("/hub", hub)).await;

    let mut json_clients = Vec::new();
    for _ in 0..3 {
        let mut client = Client::open(&base, "").await;
        assert_eq!(
            client.call("1", "Join", "[]").await,
            "{\"type\":3,\"invocationId\":\"1\"}"
        );
        json_clients.push(client);
    }
    // `[1, {}, "1", "Join", []]` and its void completion `[3, {}, "1", 2]`.
    let join_message = [
        0x0b, 0x95, 0x01, 0x80, 0xa1, 0x31, 0xa4, b'J', b'o', b'i', b'n', 0x90,
    ];
    let mut messagepack_clients = Vec::new();
    for _ in 0..2 {
        let mut client = Client::connect(&format!("{}/hub", ws_base(&base))).await;
        client.send_text(MSGPACK_HANDSHAKE).await;
        assert_eq!(binary_frame(&mut client).await, b"{}\x1e");
        client.send_binary(&join_message).await;
        assert_eq!(
            binary_frame(&mut client).await,
            [0x06, 0x94, 0x03, 0x80, 0xa1, 0x31, 0x02]
        );
        messagepack_clients.push(client);
    }
    let (json_before, messagepack_before) = (
        json_writes.load(Ordering::SeqCst),
        messagepack_writes.load(Ordering::SeqCst),
    );

    json_clients[0].invoke("2", "Broadcast", "[]").await;
    for client in &mut json_clients {
        let note = client.recv_json().await;
        assert_eq!(
            note,
            serde_json::json!({"type": 1, "target": "Note", "arguments": [42]})
        );
    }
    // The caller is a member too: its completion follows the note.
    let completion = json_clients[0].recv_json().await;
    assert_eq!(
        completion,
        serde_json::json!({"type": 3, "invocationId": "2"})
    );
    // `[1, {}, nil, "Note", [42], []]`, framed.
    let note = [
        0x0c, 0x96, 0x01, 0x80, 0xc0, 0xa4, b'N', b'o', b't', b'e', 0x91, 0x2a, 0x90,
    ];
    for client in &mut messagepack_clients {
        assert_eq!(binary_frame(client).await, note);
    }
    assert_eq!(
        json_writes.load(Ordering::SeqCst) - json_before,
        1,
        "JSON encodings for 3 members"
    );
    assert_eq!(
        messagepack_writes.load(Ordering::SeqCst) - messagepack_before,
        1,
        "MessagePack encodings for 2 members"
    );
}
