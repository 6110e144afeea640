//! The Server-Sent Events transport: the event stream for server to client, POST for client to
//! server (PROTOCOL.md §3.1, §3.3, §4).

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use signalr_server::protocol::{
    HubMessage, HubProtocol, Parsed, PayloadFormat, ProtocolError, TransferFormat,
};
use signalr_server::{CallContext, Hub, HubError, HubOptions, HubRouterExt};
use tokio::sync::mpsc;

use common::{
    EventStream, JSON_HANDSHAKE, PING_EVENT, RS, bounded, event, invocation, negotiate_ids,
    negotiate_token, post_text, send, start,
};

async fn echo(_context: CallContext<Events>, text: String) -> Result<String, HubError> {
    Ok(text)
}

/// Reports each connection id whose disconnect hook ran.
#[derive(Clone)]
struct Events(mpsc::UnboundedSender<String>);

/// A binary protocol named `messagepack` that only needs to be offered: SSE must refuse it in
/// the handshake, before it parses or writes anything.
struct BinaryStub;

impl HubProtocol for BinaryStub {
    fn name(&self) -> &'static str {
        "messagepack"
    }

    fn version(&self) -> u32 {
        2
    }

    fn transfer_format(&self) -> TransferFormat {
        TransferFormat::Binary
    }

    fn payload_format(&self) -> PayloadFormat {
        PayloadFormat::Json
    }

    fn parse(&self, _input: &[u8]) -> Result<Parsed, ProtocolError> {
        Err(ProtocolError::Malformed("the stub parses nothing".into()))
    }

    fn write(&self, _message: &HubMessage, _out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        Err(ProtocolError::Malformed("the stub writes nothing".into()))
    }
}

/// A server with an `Echo` hub at `/hub` that also offers the binary stub protocol; returns the
/// base URL and the disconnect-hook reports.
async fn server(options: HubOptions) -> (String, mpsc::UnboundedReceiver<String>) {
    let (sender, disconnected) = mpsc::unbounded_channel();
    let hub = Hub::builder(Events(sender))
        .method("Echo", echo)
        .on_disconnected(|context: CallContext<Events>| async move {
            let _ = context.state().0.send(context.connection_id().to_owned());
            Ok(())
        })
        .protocol(Arc::new(BinaryStub))
        .options(options)
        .build();
    let base = start(Router::new().map_hub("/hub", hub)).await;
    (base, disconnected)
}

/// An event stream for a fresh token whose JSON handshake completed.
async fn connected(base: &str) -> (EventStream, String) {
    let token = negotiate_token(base).await;
    let url = format!("{base}/hub?id={token}");
    let mut stream = EventStream::open(&url).await;
    let reply = post_text(&url, JSON_HANDSHAKE).await;
    assert_eq!(reply.status, 200, "the handshake POST: {reply:?}");
    assert_eq!(stream.next_event().await, event(&format!("{{}}{RS}")));
    (stream, url)
}

#[tokio::test]
async fn event_stream_headers_and_opening_comment() {
    let (base, _disconnected) = server(HubOptions::default()).await;
    let token = negotiate_token(&base).await;
    // `open` asserts the 200 and that the body starts with `:\r\n`.
    let stream = EventStream::open(&format!("{base}/hub?id={token}")).await;
    let header = |name: &str| {
        stream
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("content-type").as_deref(), Some("text/event-stream"));
    assert_eq!(
        header("cache-control").as_deref(),
        Some("no-cache,no-store")
    );
    assert_eq!(header("pragma").as_deref(), Some("no-cache"));
    assert_eq!(header("content-encoding").as_deref(), Some("identity"));
}

#[tokio::test]
async fn handshake_and_invocation_over_post_and_events() {
    let (base, _disconnected) = server(HubOptions::default()).await;
    let token = negotiate_token(&base).await;
    let url = format!("{base}/hub?id={token}");
    let mut stream = EventStream::open(&url).await;

    let reply = post_text(&url, JSON_HANDSHAKE).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "", "a send is answered with an empty body");
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
    assert_eq!(stream.next_event().await, "data: {}\u{1e}\r\n\r\n");

    let reply = post_text(&url, &invocation("1", "Echo", "[\"hi\"]")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "");
    assert_eq!(
        stream.next_event().await,
        "data: {\"type\":3,\"invocationId\":\"1\",\"result\":\"hi\"}\u{1e}\r\n\r\n"
    );
}

#[tokio::test]
async fn handshake_split_over_two_posts() {
    let (base, _disconnected) = server(HubOptions::default()).await;
    let token = negotiate_token(&base).await;
    let url = format!("{base}/hub?id={token}");
    let mut stream = EventStream::open(&url).await;
    let (first, second) = JSON_HANDSHAKE.split_at(10);
    assert_eq!(post_text(&url, first).await.status, 200);
    assert_eq!(post_text(&url, second).await.status, 200);
    assert_eq!(stream.next_event().await, event(&format!("{{}}{RS}")));
}

#[tokio::test]
async fn several_messages_in_one_post() {
    let (base, _disconnected) = server(HubOptions::default()).await;
    let (mut stream, url) = connected(&base).await;
    let body = format!(
        "{}{}",
        invocation("1", "Echo", "[\"a\"]"),
        invocation("2", "Echo", "[\"b\"]")
    );
    assert_eq!(post_text(&url, &body).await.status, 200);
    // Completions may share an event or come in two; either way they come in order.
    let mut data = String::new();
    while data.matches(RS).count() < 2 {
        let event = stream.next_event().await;
        for line in event.trim_end_matches("\r\n").split("\r\n") {
            data.push_str(line.strip_prefix("data: ").expect("a data line"));
        }
    }
    assert_eq!(
        data,
        format!(
            "{{\"type\":3,\"invocationId\":\"1\",\"result\":\"a\"}}{RS}\
             {{\"type\":3,\"invocationId\":\"2\",\"result\":\"b\"}}{RS}"
        )
    );
}

#[tokio::test]
async fn second_event_stream_for_the_same_token_is_409() {
    let (base, _disconnected) = server(HubOptions::default()).await;
    let (mut stream, url) = connected(&base).await;
    let reply = send(
        common::http()
            .get(&url)
            .header("Accept", common::EVENT_STREAM),
    )
    .await;
    assert_eq!(reply.status, 409);
    assert_eq!(reply.body, "");
    // The first stream is untouched.
    assert_eq!(
        post_text(&url, &invocation("1", "Echo", "[\"still\"]"))
            .await
            .status,
        200
    );
    assert_eq!(
        stream.next_event().await,
        event(&format!(
            "{{\"type\":3,\"invocationId\":\"1\",\"result\":\"still\"}}{RS}"
        ))
    );
}

#[tokio::test]
async fn close_message_ends_the_stream_and_later_posts_are_404() {
    let (base, mut disconnected) = server(HubOptions::default()).await;
    let (mut stream, url) = connected(&base).await;
    assert_eq!(
        post_text(&url, &format!("{{\"type\":7}}{RS}")).await.status,
        200
    );
    assert_eq!(
        stream.next_event().await,
        event(&format!("{{\"type\":7}}{RS}"))
    );
    stream.expect_end().await;
    bounded("the disconnect hook", disconnected.recv())
        .await
        .expect("the hook ran");

    let reply = post_text(&url, &invocation("1", "Echo", "[\"late\"]")).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body, "No Connection with that ID");
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
}

#[tokio::test]
async fn dropping_the_event_stream_ends_the_connection() {
    let (base, mut disconnected) = server(HubOptions::default()).await;
    let (connection_id, token) = negotiate_ids(&base, "/hub").await;
    let url = format!("{base}/hub?id={token}");
    let mut stream = EventStream::open(&url).await;
    assert_eq!(post_text(&url, JSON_HANDSHAKE).await.status, 200);
    assert_eq!(stream.next_event().await, event(&format!("{{}}{RS}")));

    drop(stream);
    let gone = bounded("the disconnect hook", disconnected.recv()).await;
    assert_eq!(gone.as_deref(), Some(connection_id.as_str()));
    let probe = || {
        let url = url.clone();
        async move { post_text(&url, "").await.status == 404 }
    };
    common::eventually("the token to be forgotten", probe).await;
}

#[tokio::test]
async fn keep_alive_pings_arrive_as_events() {
    let (base, _disconnected) = server(HubOptions {
        keep_alive_interval: Duration::from_millis(200),
        ..HubOptions::default()
    })
    .await;
    let (mut stream, _url) = connected(&base).await;
    for _ in 0..2 {
        assert_eq!(stream.next_event().await, PING_EVENT);
    }
}

#[tokio::test]
async fn binary_protocol_is_refused_on_server_sent_events() {
    let (base, _disconnected) = server(HubOptions::default()).await;
    let token = negotiate_token(&base).await;
    let url = format!("{base}/hub?id={token}");
    let mut stream = EventStream::open(&url).await;
    let reply = post_text(
        &url,
        &format!("{{\"protocol\":\"messagepack\",\"version\":1}}{RS}"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        stream.next_event().await,
        event(&format!(
            "{{\"error\":\"Cannot use the 'messagepack' protocol on the current transport. The \
             transport does not support 'Binary' transfer format.\"}}{RS}"
        ))
    );
    stream.expect_end().await;
}

#[tokio::test]
async fn the_hub_sees_the_event_stream_request() {
    let hub = Hub::builder(())
        .method("Header", |context: CallContext<()>| async move {
            Ok::<_, HubError>(context.request().header("x-test"))
        })
        .method("Transport", |context: CallContext<()>| async move {
            Ok::<_, HubError>(context.transport().as_str().to_owned())
        })
        .build();
    let base = start(Router::new().map_hub("/hub", hub)).await;
    let token = negotiate_token(&base).await;
    let url = format!("{base}/hub?id={token}");
    let mut stream =
        EventStream::open_with(common::http().get(&url).header("x-test", "from-the-stream")).await;
    assert_eq!(post_text(&url, JSON_HANDSHAKE).await.status, 200);
    assert_eq!(stream.next_event().await, event(&format!("{{}}{RS}")));
    let body = format!(
        "{}{}",
        invocation("1", "Header", "[]"),
        invocation("2", "Transport", "[]")
    );
    let reply = send(
        common::http()
            .post(&url)
            .header("x-test", "from-a-post")
            .body(body),
    )
    .await;
    assert_eq!(reply.status, 200);
    let mut records = Vec::new();
    while records.len() < 2 {
        let event = stream.next_event().await;
        let data = event
            .strip_prefix("data: ")
            .and_then(|rest| rest.strip_suffix("\r\n\r\n"))
            .expect("one data line");
        records.extend(data.split_terminator(RS).map(str::to_owned));
    }
    assert_eq!(
        records,
        [
            "{\"type\":3,\"invocationId\":\"1\",\"result\":\"from-the-stream\"}",
            "{\"type\":3,\"invocationId\":\"2\",\"result\":\"ServerSentEvents\"}",
        ]
    );
}
