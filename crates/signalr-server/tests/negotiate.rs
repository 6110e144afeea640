//! Negotiate and the HTTP status texts of the connect endpoint (PROTOCOL.md §2, §3.1, §3.2).

mod common;

use std::time::{Duration, Instant};

use axum::Router;
use serde_json::json;
use signalr_server::TransportType;
use signalr_server::{CallContext, Hub, HubError, HubOptions, HubRouterExt};

use common::{Client, http, negotiate, negotiate_token, refused_upgrade, send, start, ws_base};

async fn echo(_context: CallContext<()>, text: String) -> Result<String, HubError> {
    Ok(text)
}

fn app(options: HubOptions) -> Router {
    let hub = Hub::builder(())
        .method("Echo", echo)
        .options(options)
        .build();
    Router::new().map_hub("/hub", hub)
}

async fn server() -> String {
    start(app(HubOptions::default())).await
}

/// A server whose hub serves WebSockets only.
async fn websocket_only_server() -> String {
    start(app(HubOptions {
        transports: vec![TransportType::WebSockets],
        ..HubOptions::default()
    }))
    .await
}

/// The reference's default: every transport, WebSockets first.
fn transports() -> serde_json::Value {
    json!([
        {"transport":"WebSockets","transferFormats":["Text","Binary"]},
        {"transport":"ServerSentEvents","transferFormats":["Text"]},
        {"transport":"LongPolling","transferFormats":["Text","Binary"]}
    ])
}

#[tokio::test]
async fn negotiate_lists_only_the_enabled_transports() {
    let base = websocket_only_server().await;
    let body = negotiate(&base, "/hub", "?negotiateVersion=1").await;
    assert_eq!(
        body["availableTransports"],
        json!([{"transport":"WebSockets","transferFormats":["Text","Binary"]}])
    );
}

#[tokio::test]
async fn negotiate_v1_returns_distinct_id_and_token() {
    let base = server().await;
    let reply = send(http().post(format!("{base}/hub/negotiate?negotiateVersion=1"))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let object = body.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "availableTransports",
            "connectionId",
            "connectionToken",
            "negotiateVersion"
        ]
    );
    assert_eq!(body["negotiateVersion"], 1);
    let id = body["connectionId"].as_str().unwrap();
    let token = body["connectionToken"].as_str().unwrap();
    assert_eq!(id.len(), 22, "connectionId {id}");
    assert_eq!(token.len(), 22, "connectionToken {token}");
    for value in [id, token] {
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "base64url without padding: {value}"
        );
    }
    assert_ne!(id, token);
    assert_eq!(body["availableTransports"], transports());
}

#[tokio::test]
async fn negotiate_ids_differ_between_calls() {
    let base = server().await;
    let first = negotiate(&base, "/hub", "?negotiateVersion=1").await;
    let second = negotiate(&base, "/hub", "?negotiateVersion=1").await;
    assert_ne!(first["connectionId"], second["connectionId"]);
    assert_ne!(first["connectionToken"], second["connectionToken"]);
}

#[tokio::test]
async fn negotiate_without_version_is_version_0_without_token() {
    let base = server().await;
    let body = negotiate(&base, "/hub", "").await;
    assert_eq!(body["negotiateVersion"], 0);
    assert_eq!(body["connectionId"].as_str().unwrap().len(), 22);
    assert!(body.get("connectionToken").is_none(), "{body}");
    assert_eq!(body["availableTransports"], transports());
}

#[tokio::test]
async fn negotiate_version_0_connection_id_opens_the_socket() {
    let base = server().await;
    let body = negotiate(&base, "/hub", "").await;
    let id = body["connectionId"].as_str().unwrap();
    let mut client = Client::open(&base, &format!("?id={id}")).await;
    assert_eq!(
        client.call("1", "Echo", "[\"v0\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"v0\"}"
    );
}

#[tokio::test]
async fn negotiate_version_above_1_is_clamped_to_1() {
    let base = server().await;
    let body = negotiate(&base, "/hub", "?negotiateVersion=7").await;
    assert_eq!(body["negotiateVersion"], 1);
    assert!(body["connectionToken"].is_string());
}

#[tokio::test]
async fn negotiate_version_query_key_is_case_insensitive() {
    let base = server().await;
    let body = negotiate(&base, "/hub", "?NegotiateVersion=1").await;
    assert_eq!(body["negotiateVersion"], 1);
}

#[tokio::test]
async fn negotiate_non_integer_version_is_an_error_body_with_200() {
    let base = server().await;
    let reply = send(http().post(format!("{base}/hub/negotiate?negotiateVersion=abc"))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        "{\"error\":\"The client requested a non-integer protocol version.\"}"
    );
}

#[tokio::test]
async fn negotiate_negative_version_is_below_the_minimum() {
    // The reference parses the version as a (signed) int: -1 is an integer, below the default
    // minimum of 0 (PROTOCOL.md §2.2).
    let base = server().await;
    let reply = send(http().post(format!("{base}/hub/negotiate?negotiateVersion=-1"))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        "{\"error\":\"The client requested version '-1', but the server does not support this version.\"}"
    );
}

#[tokio::test]
async fn negotiate_empty_version_is_non_integer() {
    let base = server().await;
    let reply = send(http().post(format!("{base}/hub/negotiate?negotiateVersion="))).await;
    assert_eq!(
        reply.body,
        "{\"error\":\"The client requested a non-integer protocol version.\"}"
    );
}

#[tokio::test]
async fn negotiate_below_minimum_version_is_an_error_body() {
    let base = start(app(HubOptions {
        minimum_negotiate_version: 1,
        ..Default::default()
    }))
    .await;
    let reply = send(http().post(format!("{base}/hub/negotiate"))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        "{\"error\":\"The client requested version '0', but the server does not support this version.\"}"
    );
}

#[tokio::test]
async fn negotiate_does_not_grant_stateful_reconnect() {
    let base = server().await;
    let body = negotiate(
        &base,
        "/hub",
        "?negotiateVersion=1&useStatefulReconnect=true",
    )
    .await;
    assert_eq!(body["negotiateVersion"], 1);
    // Granting it unasked-for (or when not allowed) makes the JS client fail.
    assert!(body.get("useStatefulReconnect").is_none(), "{body}");
}

#[tokio::test]
async fn negotiate_with_get_is_405() {
    let base = server().await;
    let reply = send(http().get(format!("{base}/hub/negotiate?negotiateVersion=1"))).await;
    assert_eq!(reply.status, 405);
}

#[tokio::test]
async fn only_the_token_opens_a_websocket() {
    let base = server().await;
    let body = negotiate(&base, "/hub", "?negotiateVersion=1").await;
    let id = body["connectionId"].as_str().unwrap();
    let token = body["connectionToken"].as_str().unwrap();

    let reply = refused_upgrade(&base, &format!("/hub?id={id}")).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body, "No Connection with that ID");

    let mut client = Client::open(&base, &format!("?id={token}")).await;
    assert_eq!(
        client.call("1", "Echo", "[\"ok\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"ok\"}"
    );
}

#[tokio::test]
async fn unknown_id_is_404() {
    let base = server().await;
    let reply = refused_upgrade(&base, "/hub?id=AAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body, "No Connection with that ID");
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
}

#[tokio::test]
async fn unknown_id_is_404_through_a_websocket_client_too() {
    let base = server().await;
    let url = format!("{}/hub?id=nope", ws_base(&base));
    let result = common::bounded("connect", tokio_tungstenite::connect_async(url)).await;
    match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 404);
        }
        Err(other) => panic!("expected an HTTP error, got {other}"),
        Ok(_) => panic!("expected the upgrade to be refused"),
    }
}

#[tokio::test]
async fn second_websocket_with_the_same_token_is_409() {
    let base = server().await;
    let token = negotiate_token(&base).await;
    let mut first = Client::open(&base, &format!("?id={token}")).await;

    let reply = refused_upgrade(&base, &format!("/hub?id={token}")).await;
    assert_eq!(reply.status, 409);
    assert_eq!(reply.body, "");

    // The first connection is unaffected.
    assert_eq!(
        first.call("1", "Echo", "[\"still\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"still\"}"
    );
}

#[tokio::test]
async fn token_is_forgotten_after_its_connection_closed() {
    let base = server().await;
    let token = negotiate_token(&base).await;
    let mut client = Client::open(&base, &format!("?id={token}")).await;
    client.send_records(&["{\"type\":7}"]).await;
    client.expect_record_then_close("{\"type\":7}").await;

    let probe = || {
        let url = format!("{base}/hub?id={token}");
        async move { send(http().post(url)).await.status == 404 }
    };
    common::eventually("the token to be forgotten", probe).await;
    let reply = refused_upgrade(&base, &format!("/hub?id={token}")).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body, "No Connection with that ID");
}

#[tokio::test]
async fn unused_negotiated_token_expires_after_the_disconnect_timeout() {
    let base = start(app(HubOptions {
        disconnect_timeout: Duration::from_millis(200),
        ..Default::default()
    }))
    .await;
    let token = negotiate_token(&base).await;
    let negotiated = Instant::now();
    // POST on a known token answers 405, on an unknown one 404: a probe that does not take the
    // connection.
    let probe_url = format!("{base}/hub?id={token}");
    let status = send(http().post(&probe_url)).await.status;
    assert_ne!(status, 404, "the token is known right after negotiate");

    let wait = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if send(http().post(&probe_url)).await.status == 404 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        wait.is_ok(),
        "the unused token was still known {:?} after negotiate",
        negotiated.elapsed()
    );
    assert!(negotiated.elapsed() >= Duration::from_millis(200));

    let reply = refused_upgrade(&base, &format!("/hub?id={token}")).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body, "No Connection with that ID");
}

#[tokio::test]
async fn connected_token_does_not_expire_with_the_disconnect_timeout() {
    let base = start(app(HubOptions {
        disconnect_timeout: Duration::from_millis(100),
        ..Default::default()
    }))
    .await;
    let token = negotiate_token(&base).await;
    let mut client = Client::open(&base, &format!("?id={token}")).await;
    // Several sweeps pass while the connection is open.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        client.call("1", "Echo", "[\"alive\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"alive\"}"
    );
    let reply = send(http().post(format!("{base}/hub?id={token}"))).await;
    assert_eq!(reply.status, 405);
}

#[tokio::test]
async fn post_without_id_is_400() {
    let base = server().await;
    let reply = send(http().post(format!("{base}/hub"))).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body, "Connection ID required");
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
}

#[tokio::test]
async fn delete_without_id_is_400() {
    let base = server().await;
    let reply = send(http().delete(format!("{base}/hub"))).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body, "Connection ID required");
}

#[tokio::test]
async fn post_and_delete_with_unknown_id_are_404() {
    let base = server().await;
    for request in [
        http().post(format!("{base}/hub?id=unknown")),
        http().delete(format!("{base}/hub?id=unknown")),
    ] {
        let reply = send(request).await;
        assert_eq!(reply.status, 404);
        assert_eq!(reply.body, "No Connection with that ID");
    }
}

#[tokio::test]
async fn post_and_delete_on_a_live_websocket_connection() {
    let base = server().await;
    let token = negotiate_token(&base).await;
    let mut client = Client::open(&base, &format!("?id={token}")).await;

    let reply = send(
        http()
            .post(format!("{base}/hub?id={token}"))
            .body("{\"type\":6}\u{1e}"),
    )
    .await;
    assert_eq!(reply.status, 405);
    assert_eq!(
        reply.body,
        "POST requests are not allowed for WebSocket connections."
    );
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));

    let reply = send(http().delete(format!("{base}/hub?id={token}"))).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        "Cannot terminate this connection using the DELETE endpoint."
    );

    // Neither request disturbed the connection.
    assert_eq!(
        client.call("1", "Echo", "[\"x\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"x\"}"
    );
}

#[tokio::test]
async fn get_with_event_stream_accept_is_404_sse_not_supported() {
    let base = websocket_only_server().await;
    let token = negotiate_token(&base).await;
    for url in [format!("{base}/hub?id={token}"), format!("{base}/hub")] {
        let reply = send(http().get(url).header("Accept", "text/event-stream")).await;
        assert_eq!(reply.status, 404);
        assert_eq!(
            reply.body,
            "ServerSentEvents transport not supported by this end point type"
        );
    }
}

#[tokio::test]
async fn plain_get_is_404_long_polling_not_supported() {
    let base = websocket_only_server().await;
    let token = negotiate_token(&base).await;
    for url in [format!("{base}/hub?id={token}"), format!("{base}/hub")] {
        let reply = send(http().get(url)).await;
        assert_eq!(reply.status, 404);
        assert_eq!(
            reply.body,
            "LongPolling transport not supported by this end point type"
        );
    }
}

#[tokio::test]
async fn other_methods_on_the_hub_path_are_405() {
    let base = server().await;
    let reply = send(http().put(format!("{base}/hub?id=x"))).await;
    assert_eq!(reply.status, 405);
}

#[tokio::test]
async fn websocket_without_id_skips_negotiation() {
    let base = server().await;
    let mut client = Client::open(&base, "").await;
    assert_eq!(
        client.call("1", "Echo", "[\"direct\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"direct\"}"
    );
}

#[tokio::test]
async fn hub_paths_match_in_any_casing_with_case_insensitive_paths() {
    use tower::Layer;
    let inner = app(HubOptions::default());
    let outer = Router::new()
        .fallback_service(signalr_server::CaseInsensitivePaths::new(["/hub"]).layer(inner));
    let base = start(outer).await;
    let body = negotiate(&base, "/HUB", "?negotiateVersion=1").await;
    let token = body["connectionToken"].as_str().unwrap();
    let mut client = Client::open_path(&base, "/Hub", &format!("?id={token}")).await;
    assert_eq!(
        client.call("1", "Echo", "[\"cased\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"cased\"}"
    );
}
