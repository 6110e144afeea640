//! Bearer tokens (header, or the `access_token` query for WebSockets and event streams) and the
//! CORS policy for browser clients on other origins (PROTOCOL.md §1, §2.4, §3.2, §3.3).

mod common;

use axum::Router;
use axum::http::HeaderValue;
use signalr_server::{
    BearerAuthLayer, CallContext, Hub, HubError, HubOptions, HubRouterExt, HubUser,
};

use common::{
    Client, EVENT_STREAM, EventStream, HttpReply, JSON_HANDSHAKE, RS, event, http, invocation,
    send, start,
};

async fn whoami(context: CallContext<()>) -> Result<Option<String>, HubError> {
    Ok(context.user_id().map(str::to_owned))
}

fn hub(requires_user: bool) -> Hub<()> {
    let builder = Hub::builder(()).method("Whoami", whoami);
    let builder = if requires_user {
        builder.require_authenticated_user()
    } else {
        builder
    };
    builder.options(HubOptions::default()).build()
}

fn bearer() -> BearerAuthLayer<impl Fn(&str) -> Option<HubUser> + Send + Sync + 'static> {
    BearerAuthLayer::new(|token: &str| (token == "good").then(|| HubUser::new("u1", "Ann")))
}

/// A hub that requires a user, behind the bearer layer.
async fn auth_server() -> String {
    start(Router::new().map_hub("/hub", hub(true)).layer(bearer())).await
}

/// Negotiates with `Authorization: Bearer good`; returns the token.
async fn authorized_token(base: &str) -> String {
    let reply = send(
        http()
            .post(format!("{base}/hub/negotiate?negotiateVersion=1"))
            .bearer_auth("good"),
    )
    .await;
    assert_eq!(reply.status, 200, "negotiate with a good token: {reply:?}");
    let body: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    body["connectionToken"]
        .as_str()
        .expect("a token")
        .to_owned()
}

#[tokio::test]
async fn negotiate_without_a_token_is_401_with_an_empty_body() {
    let base = auth_server().await;
    let url = format!("{base}/hub/negotiate?negotiateVersion=1");
    for request in [
        http().post(&url),
        http().post(&url).bearer_auth("bad"),
        // The query counts for WebSockets and event streams only.
        http().post(format!("{url}&access_token=good")),
    ] {
        let reply = send(request).await;
        assert_eq!(reply.status, 401, "{reply:?}");
        assert_eq!(reply.body, "");
    }
}

#[tokio::test]
async fn negotiate_with_a_good_bearer_header_is_200() {
    let base = auth_server().await;
    let token = authorized_token(&base).await;
    assert_eq!(token.len(), 22);
}

#[tokio::test]
async fn long_poll_with_the_token_only_in_the_query_is_401() {
    let base = auth_server().await;
    let token = authorized_token(&base).await;
    let reply = send(http().get(format!("{base}/hub?id={token}&access_token=good"))).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.body, "");
    // With the header the same poll starts the connection.
    let reply = send(
        http()
            .get(format!("{base}/hub?id={token}"))
            .bearer_auth("good"),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn event_stream_with_the_query_token_and_posts_with_the_header() {
    let base = auth_server().await;
    let token = authorized_token(&base).await;
    let stream_url = format!("{base}/hub?id={token}&access_token=good");
    let url = format!("{base}/hub?id={token}");
    let mut stream = EventStream::open(&stream_url).await;

    let unauthorized = send(http().post(&url).body(JSON_HANDSHAKE)).await;
    assert_eq!(unauthorized.status, 401, "a POST without the header");

    let authorized = |body: String| http().post(&url).bearer_auth("good").body(body);
    assert_eq!(send(authorized(JSON_HANDSHAKE.into())).await.status, 200);
    assert_eq!(stream.next_event().await, event(&format!("{{}}{RS}")));
    assert_eq!(
        send(authorized(invocation("1", "Whoami", "[]")))
            .await
            .status,
        200
    );
    assert_eq!(
        stream.next_event_skipping_pings().await,
        event(&format!(
            "{{\"type\":3,\"invocationId\":\"1\",\"result\":\"u1\"}}{RS}"
        ))
    );
}

#[tokio::test]
async fn event_stream_without_a_token_is_401() {
    let base = auth_server().await;
    let token = authorized_token(&base).await;
    let reply = send(
        http()
            .get(format!("{base}/hub?id={token}&access_token=bad"))
            .header("Accept", EVENT_STREAM),
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, "");
}

#[tokio::test]
async fn websocket_with_the_query_token_sees_the_user() {
    let base = auth_server().await;
    let token = authorized_token(&base).await;
    let mut client = Client::open(&base, &format!("?id={token}&access_token=good")).await;
    assert_eq!(
        client.call("1", "Whoami", "[]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"u1\"}"
    );
}

// ---------------------------------------------------------------------------------------------
// CORS

fn cors_router(requires_user: bool) -> Router {
    let origins = [HeaderValue::from_static("http://app.test")];
    Router::new()
        .map_hub("/hub", hub(requires_user))
        .layer(bearer())
        .layer(signalr_server::cors(origins))
}

async fn preflight(base: &str, origin: &str) -> HttpReply {
    let request = http()
        .request(reqwest::Method::OPTIONS, format!("{base}/hub/negotiate"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "x-requested-with,x-signalr-user-agent,authorization",
        );
    send(request).await
}

#[tokio::test]
async fn preflight_from_an_allowed_origin() {
    let base = start(cors_router(false)).await;
    let reply = preflight(&base, "http://app.test").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("http://app.test")
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    let allowed: Vec<String> = reply
        .headers
        .get_all("access-control-allow-headers")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    for name in ["x-requested-with", "x-signalr-user-agent", "authorization"] {
        assert!(
            allowed.iter().any(|allowed| allowed == name),
            "{name} is not among the allowed headers {allowed:?}"
        );
    }
    let methods = reply.header("access-control-allow-methods").unwrap_or("");
    assert!(methods.contains("POST"), "allowed methods {methods:?}");
}

#[tokio::test]
async fn preflight_from_another_origin_is_not_allowed() {
    let base = start(cors_router(false)).await;
    let reply = preflight(&base, "http://other.test").await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        None,
        "{reply:?}"
    );
}

#[tokio::test]
async fn preflight_is_answered_before_authentication() {
    let base = start(cors_router(true)).await;
    let reply = preflight(&base, "http://app.test").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("http://app.test")
    );
}

#[tokio::test]
async fn credentialed_negotiate_echoes_the_origin() {
    let base = start(cors_router(false)).await;
    let reply = send(
        http()
            .post(format!("{base}/hub/negotiate?negotiateVersion=1"))
            .header("Origin", "http://app.test"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("http://app.test")
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );

    let reply = send(
        http()
            .post(format!("{base}/hub/negotiate?negotiateVersion=1"))
            .header("Origin", "http://other.test"),
    )
    .await;
    assert_eq!(reply.header("access-control-allow-origin"), None);
}
