//! Raw connections (`map_connection`): bytes without the hub protocol, over every transport.

mod common;

use axum::Router;
use signalr_server::{HubOptions, HubRouterExt, RawConnection};

use common::{Client, EventStream, Frame, negotiate_ids, poll, post_text, start, ws_base};

/// An echo endpoint at `/echo`: every received chunk goes back as one message.
async fn server() -> String {
    let router = Router::new().map_connection(
        "/echo",
        |mut connection: RawConnection| async move {
            while let Some(bytes) = connection.receive().await {
                if connection.send(bytes).await.is_err() {
                    break;
                }
            }
        },
        HubOptions::default(),
    );
    start(router).await
}

#[tokio::test]
async fn websocket_text_comes_back_as_text() {
    let base = server().await;
    let (_, token) = negotiate_ids(&base, "/echo").await;
    let mut client = Client::connect(&format!("{}/echo?id={token}", ws_base(&base))).await;
    client.send_text("hello").await;
    assert_eq!(client.next_frame().await, Frame::Text("hello".into()));
}

#[tokio::test]
async fn websocket_without_negotiate_echoes_too() {
    let base = server().await;
    let mut client = Client::connect(&format!("{}/echo", ws_base(&base))).await;
    client.send_text("hello").await;
    assert_eq!(client.next_frame().await, Frame::Text("hello".into()));
    client.send_binary(&[0xff, 0x00, 0x80]).await;
    assert_eq!(
        client.next_frame().await,
        Frame::Binary(vec![0xff, 0x00, 0x80])
    );
}

#[tokio::test]
async fn long_polling_echoes() {
    let base = server().await;
    let (_, token) = negotiate_ids(&base, "/echo").await;
    let url = format!("{base}/echo?id={token}");
    let first = poll(&url).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body, "");
    assert_eq!(post_text(&url, "hello").await.status, 200);
    let reply = poll(&url).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "hello");
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/octet-stream")
    );
}

#[tokio::test]
async fn server_sent_events_echo() {
    let base = server().await;
    let (_, token) = negotiate_ids(&base, "/echo").await;
    let url = format!("{base}/echo?id={token}");
    let mut stream = EventStream::open(&url).await;
    assert_eq!(post_text(&url, "hello").await.status, 200);
    assert_eq!(stream.next_event().await, "data: hello\r\n\r\n");
    assert_eq!(post_text(&url, "two\nlines").await.status, 200);
    assert_eq!(
        stream.next_event().await,
        "data: two\r\ndata: lines\r\n\r\n"
    );
}
