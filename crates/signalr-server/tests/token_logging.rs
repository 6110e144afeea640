//! Access tokens never reach the logs: everything the crate traces, at every level, is captured
//! while connections authenticate with a token in the query and in the header.
//!
//! The capture is a thread-local default subscriber, so the test runs on a current-thread
//! runtime: the server's tasks then run on the thread that holds the subscriber.

mod common;

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use signalr_server::{BearerAuthLayer, CallContext, Hub, HubError, HubRouterExt, HubUser};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use common::{Client, JSON_HANDSHAKE, RS, bounded, http, invocation, send, start};

/// A subscriber that writes every span's and event's fields into one string.
struct Capture {
    text: Arc<Mutex<String>>,
    next_id: AtomicU64,
}

/// Formats fields as `name=value` pairs.
struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

/// Targets of the test's own HTTP client: what it logs is not the server's doing.
const CLIENT_TARGETS: [&str; 2] = ["hyper_util::client", "reqwest"];

impl Capture {
    fn line(&self, kind: &str, metadata: &Metadata<'_>, fields: impl FnOnce(&mut Fields<'_>)) {
        if CLIENT_TARGETS
            .iter()
            .any(|target| metadata.target().starts_with(target))
        {
            return;
        }
        let mut line = format!(
            "{kind} {} {} {}:",
            metadata.level(),
            metadata.target(),
            metadata.name()
        );
        fields(&mut Fields(&mut line));
        line.push('\n');
        self.text.lock().expect("capture lock").push_str(&line);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.line("span", span.metadata(), |fields| span.record(fields));
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, values: &Record<'_>) {
        let mut line = String::from("record:");
        values.record(&mut Fields(&mut line));
        line.push('\n');
        self.text.lock().expect("capture lock").push_str(&line);
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        self.line("event", event.metadata(), |fields| event.record(fields));
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

#[derive(Clone)]
struct Disconnects(mpsc::UnboundedSender<String>);

async fn whoami(context: CallContext<Disconnects>) -> Result<Option<String>, HubError> {
    Ok(context.user_id().map(str::to_owned))
}

fn app(disconnects: Disconnects) -> Router {
    let hub = Hub::builder(disconnects)
        .method("Whoami", whoami)
        .on_disconnected(|context: CallContext<Disconnects>| async move {
            let _ = context.state().0.send(context.connection_id().to_owned());
            Ok(())
        })
        .require_authenticated_user()
        .build();
    let auth = BearerAuthLayer::new(|token: &str| {
        token
            .starts_with("SECRET-TOKEN-")
            .then(|| HubUser::new(format!("user-{}", &token[13..]), "Ann"))
    });
    Router::new().map_hub("/hub", hub).layer(auth)
}

/// Negotiates with `token` in the header; returns `(connectionId, connectionToken)`.
async fn negotiate(base: &str, token: &str) -> (String, String) {
    let reply = send(
        http()
            .post(format!("{base}/hub/negotiate?negotiateVersion=1"))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    let field = |name: &str| body[name].as_str().expect("negotiate field").to_owned();
    (field("connectionId"), field("connectionToken"))
}

#[tokio::test(flavor = "current_thread")]
async fn access_tokens_never_reach_the_logs() {
    let text = Arc::new(Mutex::new(String::new()));
    let _capture = tracing::subscriber::set_default(Capture {
        text: text.clone(),
        next_id: AtomicU64::new(1),
    });
    let (sender, mut disconnects) = mpsc::unbounded_channel();
    let base = start(app(Disconnects(sender))).await;

    // WebSockets with the token in the query.
    let (websocket_id, token) = negotiate(&base, "SECRET-TOKEN-123").await;
    let mut client =
        Client::open(&base, &format!("?id={token}&access_token=SECRET-TOKEN-123")).await;
    assert_eq!(
        client.call("1", "Whoami", "[]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"user-123\"}"
    );
    client.send_records(&["{\"type\":7}"]).await;
    client.expect_record_then_close("{\"type\":7}").await;

    // Long Polling with the token in the header.
    let secret = "SECRET-TOKEN-456";
    let (polling_id, token) = negotiate(&base, secret).await;
    let url = format!("{base}/hub?id={token}");
    let get = || http().get(&url).bearer_auth(secret);
    let post = |body: String| http().post(&url).bearer_auth(secret).body(body);
    assert_eq!(send(get()).await.status, 200);
    assert_eq!(send(post(JSON_HANDSHAKE.into())).await.status, 200);
    assert_eq!(send(get()).await.body, format!("{{}}{RS}"));
    assert_eq!(
        send(post(invocation("1", "Whoami", "[]"))).await.status,
        200
    );
    assert_eq!(
        send(get()).await.body,
        format!("{{\"type\":3,\"invocationId\":\"1\",\"result\":\"user-456\"}}{RS}")
    );
    assert_eq!(
        send(http().delete(&url).bearer_auth(secret)).await.status,
        202
    );

    let mut gone = Vec::new();
    for _ in 0..2 {
        let id = bounded("a disconnect hook", disconnects.recv()).await;
        gone.push(id.expect("a disconnected connection id"));
    }
    gone.sort();
    let mut expected = vec![websocket_id.clone(), polling_id.clone()];
    expected.sort();
    assert_eq!(gone, expected);

    let captured = text.lock().expect("capture lock").clone();
    assert!(
        captured.contains(&websocket_id) && captured.contains(&polling_id),
        "the capture must have seen both connections' ids; captured:\n{captured}"
    );
    assert!(
        !captured.contains("SECRET-TOKEN"),
        "a token reached the logs:\n{captured}"
    );
}
