//! The dispatcher's refusals for Server-Sent Events, Long Polling, POST and DELETE: status and
//! text/plain body (PROTOCOL.md §3.1).

mod common;

use axum::Router;
use signalr_server::{CallContext, Hub, HubError, HubOptions, HubRouterExt, TransportType};

use common::{
    EVENT_STREAM, EventStream, HttpReply, JSON_HANDSHAKE, RS, event, http, invocation,
    negotiate_token, poll, post_text, refused_upgrade, send, start,
};

async fn echo(_context: CallContext<()>, text: String) -> Result<String, HubError> {
    Ok(text)
}

async fn server_with(transports: Vec<TransportType>) -> String {
    let hub = Hub::builder(())
        .method("Echo", echo)
        .options(HubOptions {
            transports,
            ..HubOptions::default()
        })
        .build();
    start(Router::new().map_hub("/hub", hub)).await
}

async fn server() -> String {
    server_with(HubOptions::default().transports).await
}

fn assert_text(reply: &HttpReply, status: u16, body: &str) {
    assert_eq!(reply.status, status, "status of {reply:?}");
    assert_eq!(reply.body, body);
    assert_eq!(
        reply.content_type.as_deref(),
        Some("text/plain"),
        "content type of {reply:?}"
    );
}

fn sse_get(url: &str) -> reqwest::RequestBuilder {
    http().get(url).header("Accept", EVENT_STREAM)
}

#[tokio::test]
async fn missing_id_is_400() {
    let base = server().await;
    let url = format!("{base}/hub");
    for (what, request) in [
        ("long poll", http().get(&url)),
        ("event stream", sse_get(&url)),
        ("POST", http().post(&url).body(JSON_HANDSHAKE)),
        ("DELETE", http().delete(&url)),
    ] {
        let reply = send(request).await;
        assert_eq!(reply.status, 400, "{what}");
        assert_text(&reply, 400, "Connection ID required");
    }
}

#[tokio::test]
async fn unknown_id_is_404() {
    let base = server().await;
    let url = format!("{base}/hub?id=unknown-token");
    for (what, request) in [
        ("long poll", http().get(&url)),
        ("event stream", sse_get(&url)),
        ("POST", http().post(&url).body(JSON_HANDSHAKE)),
        ("DELETE", http().delete(&url)),
    ] {
        let reply = send(request).await;
        assert_eq!(reply.status, 404, "{what}");
        assert_text(&reply, 404, "No Connection with that ID");
    }
}

#[tokio::test]
async fn disabled_transports_are_404() {
    let base = server_with(vec![TransportType::WebSockets]).await;
    let token = negotiate_token(&base).await;
    let url = format!("{base}/hub?id={token}");
    assert_text(
        &send(sse_get(&url)).await,
        404,
        "ServerSentEvents transport not supported by this end point type",
    );
    assert_text(
        &poll(&url).await,
        404,
        "LongPolling transport not supported by this end point type",
    );
}

#[tokio::test]
async fn event_stream_on_a_long_polling_connection_is_400() {
    let base = server().await;
    let token = negotiate_token(&base).await;
    let url = format!("{base}/hub?id={token}");
    assert_eq!(poll(&url).await.status, 200, "the first poll");
    assert_text(
        &send(sse_get(&url)).await,
        400,
        "Cannot change transports mid-connection",
    );
    // The Long Polling connection is unharmed.
    assert_eq!(post_text(&url, JSON_HANDSHAKE).await.status, 200);
    assert_eq!(poll(&url).await.body, format!("{{}}{RS}"));
}

#[tokio::test]
async fn long_poll_on_an_event_stream_connection_is_400() {
    let base = server().await;
    let token = negotiate_token(&base).await;
    let url = format!("{base}/hub?id={token}");
    let mut stream = EventStream::open(&url).await;
    assert_text(
        &poll(&url).await,
        400,
        "Cannot change transports mid-connection",
    );
    assert_eq!(post_text(&url, JSON_HANDSHAKE).await.status, 200);
    assert_eq!(stream.next_event().await, event(&format!("{{}}{RS}")));
}

#[tokio::test]
async fn websocket_on_a_long_polling_connection_is_400() {
    let base = server().await;
    let token = negotiate_token(&base).await;
    let url = format!("{base}/hub?id={token}");
    assert_eq!(poll(&url).await.status, 200, "the first poll");
    let reply = refused_upgrade(&base, &format!("/hub?id={token}")).await;
    assert_text(&reply, 400, "Cannot change transports mid-connection");
}

#[tokio::test]
async fn delete_on_an_event_stream_connection_is_400() {
    let base = server().await;
    let token = negotiate_token(&base).await;
    let url = format!("{base}/hub?id={token}");
    let mut stream = EventStream::open(&url).await;
    assert_text(
        &send(http().delete(&url)).await,
        400,
        "Cannot terminate this connection using the DELETE endpoint.",
    );
    // The event stream is unharmed.
    assert_eq!(post_text(&url, JSON_HANDSHAKE).await.status, 200);
    assert_eq!(stream.next_event().await, event(&format!("{{}}{RS}")));
    assert_eq!(
        post_text(&url, &invocation("1", "Echo", "[\"ok\"]"))
            .await
            .status,
        200
    );
    assert_eq!(
        stream.next_event_skipping_pings().await,
        event(&format!(
            "{{\"type\":3,\"invocationId\":\"1\",\"result\":\"ok\"}}{RS}"
        ))
    );
}

#[tokio::test]
async fn post_to_a_websocket_connection_is_405() {
    let base = server().await;
    let token = negotiate_token(&base).await;
    let _client = common::Client::open(&base, &format!("?id={token}")).await;
    assert_text(
        &post_text(&format!("{base}/hub?id={token}"), "{\"type\":6}\u{1e}").await,
        405,
        "POST requests are not allowed for WebSocket connections.",
    );
}
