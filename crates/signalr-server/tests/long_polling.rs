//! The Long Polling transport: polls for server to client, POST for client to server, DELETE to
//! end (PROTOCOL.md §3.1, §3.4).
//!
//! Where two polls must reach the server in a known order, the test lets the first one travel
//! for [`HEAD_START`] before it sends the second; nothing is measured with it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use signalr_server::{CallContext, Hub, HubError, HubOptions, HubRouterExt};
use tokio::sync::{Notify, mpsc};

use common::{
    HttpReply, JSON_HANDSHAKE, RS, bounded, fire_and_forget, invocation, negotiate_ids,
    negotiate_token, poll, post_text, send, start,
};

/// How long a poll is given to reach the server before a request that must come after it.
const HEAD_START: Duration = Duration::from_millis(250);

/// What the hub's hooks and methods report to the test.
#[derive(Clone)]
struct Probe {
    /// Connection ids whose disconnect hook ran.
    disconnected: mpsc::UnboundedSender<String>,
    /// Names sent by the `Mark` method.
    marks: mpsc::UnboundedSender<String>,
    /// When set, the disconnect hook reports, then waits for this before it returns.
    hold_disconnect: Option<Arc<Notify>>,
}

struct Server {
    base: String,
    disconnected: mpsc::UnboundedReceiver<String>,
    marks: mpsc::UnboundedReceiver<String>,
}

async fn echo(_context: CallContext<Probe>, text: String) -> Result<String, HubError> {
    Ok(text)
}

async fn mark(context: CallContext<Probe>, name: String) -> Result<(), HubError> {
    let _ = context.state().marks.send(name);
    Ok(())
}

async fn header(context: CallContext<Probe>) -> Result<Option<String>, HubError> {
    Ok(context.request().header("x-test"))
}

async fn abort(context: CallContext<Probe>) -> Result<(), HubError> {
    context.abort();
    Ok(())
}

async fn server_with(options: HubOptions, hold_disconnect: Option<Arc<Notify>>) -> Server {
    let (disconnected, disconnected_rx) = mpsc::unbounded_channel();
    let (marks, marks_rx) = mpsc::unbounded_channel();
    let probe = Probe {
        disconnected,
        marks,
        hold_disconnect,
    };
    let hub = Hub::builder(probe)
        .method("Echo", echo)
        .method("Mark", mark)
        .method("Header", header)
        .method("Abort", abort)
        .on_disconnected(|context: CallContext<Probe>| async move {
            let probe = context.state().clone();
            let _ = probe.disconnected.send(context.connection_id().to_owned());
            if let Some(hold) = probe.hold_disconnect {
                // Bounded so that a test that fails early does not leave the task behind.
                let _ = tokio::time::timeout(common::WAIT, hold.notified()).await;
            }
            Ok(())
        })
        .options(options)
        .build();
    Server {
        base: start(Router::new().map_hub("/hub", hub)).await,
        disconnected: disconnected_rx,
        marks: marks_rx,
    }
}

async fn server(options: HubOptions) -> Server {
    server_with(options, None).await
}

fn short_polls() -> HubOptions {
    HubOptions {
        long_polling_poll_timeout: Duration::from_millis(300),
        ..HubOptions::default()
    }
}

fn assert_no_cache(reply: &HttpReply) {
    assert_eq!(reply.header("cache-control"), Some("no-cache, no-store"));
    assert_eq!(reply.header("pragma"), Some("no-cache"));
    assert_eq!(
        reply.header("expires"),
        Some("Thu, 01 Jan 1970 00:00:00 GMT")
    );
}

/// Asserts a poll answered with data.
fn assert_data(reply: &HttpReply, body: &str) {
    assert_eq!(reply.status, 200, "a poll with data: {reply:?}");
    assert_eq!(reply.body, body);
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_no_cache(reply);
}

/// Asserts the empty 200 that asks the client to poll again.
fn assert_timed_out(reply: &HttpReply) {
    assert_eq!(reply.status, 200, "a timed-out poll: {reply:?}");
    assert_eq!(reply.body, "");
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
    assert_eq!(reply.header("content-length"), Some("0"));
    assert_no_cache(reply);
}

/// Negotiates, starts with the first poll and completes the JSON handshake; returns the
/// connection id and the connect URL.
async fn connected(base: &str) -> (String, String) {
    let (connection_id, token) = negotiate_ids(base, "/hub").await;
    let url = format!("{base}/hub?id={token}");
    assert_eq!(poll(&url).await.status, 200, "the first poll");
    assert_eq!(post_text(&url, JSON_HANDSHAKE).await.status, 200);
    assert_data(&poll(&url).await, &format!("{{}}{RS}"));
    (connection_id, url)
}

fn completion(id: &str, result: &str) -> String {
    format!("{{\"type\":3,\"invocationId\":\"{id}\",\"result\":\"{result}\"}}{RS}")
}

#[tokio::test]
async fn first_poll_starts_the_connection_at_once() {
    let server = server(HubOptions::default()).await;
    let token = negotiate_token(&server.base).await;
    let reply = poll(&format!("{}/hub?id={token}", server.base)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "");
    assert_eq!(reply.header("content-length"), Some("0"));
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_no_cache(&reply);
}

#[tokio::test]
async fn handshake_then_invocation() {
    let server = server(HubOptions::default()).await;
    let token = negotiate_token(&server.base).await;
    let url = format!("{}/hub?id={token}", server.base);
    assert_eq!(poll(&url).await.status, 200);

    let reply = post_text(&url, JSON_HANDSHAKE).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "");
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
    assert_data(&poll(&url).await, "{}\u{1e}");

    assert_eq!(
        post_text(&url, &invocation("1", "Echo", "[\"hi\"]"))
            .await
            .status,
        200
    );
    assert_data(&poll(&url).await, &completion("1", "hi"));
}

#[tokio::test]
async fn one_poll_returns_everything_queued() {
    let mut server = server(HubOptions::default()).await;
    let (_, url) = connected(&server.base).await;
    assert_eq!(
        post_text(&url, &invocation("1", "Echo", "[\"a\"]"))
            .await
            .status,
        200
    );
    assert_eq!(
        post_text(&url, &invocation("2", "Echo", "[\"b\"]"))
            .await
            .status,
        200
    );
    // Invocations run one at a time in order: once `Mark` ran, both completions are queued.
    assert_eq!(
        post_text(&url, &fire_and_forget("Mark", "[\"queued\"]"))
            .await
            .status,
        200
    );
    assert_eq!(
        bounded("the mark", server.marks.recv()).await.as_deref(),
        Some("queued")
    );
    assert_data(
        &poll(&url).await,
        &format!("{}{}", completion("1", "a"), completion("2", "b")),
    );
}

#[tokio::test]
async fn poll_with_nothing_queued_times_out_with_an_empty_200() {
    let server = server(short_polls()).await;
    let (_, url) = connected(&server.base).await;
    assert_timed_out(&poll(&url).await);
    // The connection lives on.
    assert_eq!(
        post_text(&url, &invocation("1", "Echo", "[\"x\"]"))
            .await
            .status,
        200
    );
    assert_data(&poll(&url).await, &completion("1", "x"));
}

#[tokio::test]
async fn a_newer_poll_supersedes_the_waiting_one() {
    let server = server(HubOptions::default()).await;
    let (_, url) = connected(&server.base).await;

    let mut first = tokio::spawn(poll_owned(url.clone()));
    tokio::time::sleep(HEAD_START).await;
    let mut second = tokio::spawn(poll_owned(url.clone()));

    // The older poll answers 204; the newer one stays open. (Should the second request have
    // overtaken the first on the way, the roles swap: still the older answers 204.)
    let (superseded, mut open) = bounded("one poll to be superseded", async {
        tokio::select! {
            done = &mut first => (done.expect("the poll task"), second),
            done = &mut second => (done.expect("the poll task"), first),
        }
    })
    .await;
    assert_eq!(
        superseded.status, 204,
        "the superseded poll: {superseded:?}"
    );
    assert_eq!(superseded.body, "");
    assert_no_cache(&superseded);
    assert!(!open.is_finished(), "the newer poll must stay open");

    assert_eq!(
        post_text(&url, &invocation("1", "Echo", "[\"late\"]"))
            .await
            .status,
        200
    );
    let reply = bounded("the open poll", &mut open)
        .await
        .expect("the poll task");
    assert_data(&reply, &completion("1", "late"));
}

/// `poll` for a task that owns its URL.
async fn poll_owned(url: String) -> HttpReply {
    poll(&url).await
}

#[tokio::test]
async fn delete_answers_202_ends_the_waiting_poll_and_runs_the_disconnect_hook() {
    let mut server = server(HubOptions::default()).await;
    let (connection_id, url) = connected(&server.base).await;

    let waiting = tokio::spawn(poll_owned(url.clone()));
    tokio::time::sleep(HEAD_START).await;
    let reply = send(common::http().delete(&url)).await;
    assert_eq!(reply.status, 202);
    assert_eq!(reply.body, "");
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));

    let ended = bounded("the waiting poll", waiting)
        .await
        .expect("the poll task");
    assert_eq!(
        ended.status, 204,
        "the waiting poll after DELETE: {ended:?}"
    );
    assert_eq!(ended.body, "");

    let gone = bounded("the disconnect hook", server.disconnected.recv()).await;
    assert_eq!(gone.as_deref(), Some(connection_id.as_str()));

    // Once the connection's task has ended its token is forgotten: polls get 404.
    let probe = || {
        let url = url.clone();
        async move { poll(&url).await.status == 404 }
    };
    common::eventually("the token to be forgotten", probe).await;
    let reply = poll(&url).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body, "No Connection with that ID");
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
}

/// After DELETE the connection is finished (§3.4: "connection finished (app ended / DELETE /
/// disposed) → 204"; the reference marks it disposed at once, so it answers 404). A poll that
/// comes while the hub's disconnect hook still runs must not get more data.
#[tokio::test]
async fn a_poll_after_delete_gets_no_data_while_the_disconnect_hook_runs() {
    let hold = Arc::new(Notify::new());
    let mut server = server_with(HubOptions::default(), Some(hold.clone())).await;
    let (_, url) = connected(&server.base).await;

    assert_eq!(send(common::http().delete(&url)).await.status, 202);
    bounded("the disconnect hook", server.disconnected.recv())
        .await
        .expect("the hook started");
    let reply = poll(&url).await;
    hold.notify_one();
    assert!(
        reply.status == 204 || reply.status == 404,
        "a poll after DELETE must answer 204 or 404, got {} with body {:?}",
        reply.status,
        reply.body
    );
}

/// DELETE before the handshake arrived: the connection must end at once too, not linger
/// until the handshake timeout.
#[tokio::test]
async fn delete_before_the_handshake_ends_the_connection() {
    let server = server(short_polls()).await;
    let token = negotiate_token(&server.base).await;
    let url = format!("{}/hub?id={token}", server.base);
    assert_eq!(poll(&url).await.status, 200);
    let reply = send(common::http().delete(&url)).await;
    assert_eq!(reply.status, 202);

    let reply = poll(&url).await;
    assert!(
        reply.status == 204 || reply.status == 404,
        "a poll after DELETE must answer 204 or 404, got {} with body {:?} and content type {:?}",
        reply.status,
        reply.body,
        reply.content_type
    );
}

#[tokio::test]
async fn no_poll_within_the_disconnect_timeout_disposes_the_connection() {
    let mut server = server(HubOptions {
        disconnect_timeout: Duration::from_millis(300),
        ..HubOptions::default()
    })
    .await;
    let (connection_id, token) = negotiate_ids(&server.base, "/hub").await;
    let url = format!("{}/hub?id={token}", server.base);
    assert_eq!(poll(&url).await.status, 200);
    assert_eq!(post_text(&url, JSON_HANDSHAKE).await.status, 200);

    let gone = tokio::time::timeout(Duration::from_secs(2), server.disconnected.recv()).await;
    let gone = gone.expect("the connection was disposed within 2 s of its last poll");
    assert_eq!(gone.as_deref(), Some(connection_id.as_str()));
    let probe = || {
        let url = url.clone();
        async move { poll(&url).await.status == 404 }
    };
    common::eventually("the token to be forgotten", probe).await;
}

#[tokio::test]
async fn polling_keeps_the_connection_alive_past_the_disconnect_timeout() {
    let mut server = server(HubOptions {
        disconnect_timeout: Duration::from_millis(300),
        long_polling_poll_timeout: Duration::from_millis(200),
        ..HubOptions::default()
    })
    .await;
    let (_, url) = connected(&server.base).await;
    // Four poll timeouts back to back: more than twice the disconnect timeout.
    for _ in 0..4 {
        assert_timed_out(&poll(&url).await);
    }
    assert!(
        server.disconnected.try_recv().is_err(),
        "a polling connection must not be disposed"
    );
    assert_eq!(
        post_text(&url, &invocation("1", "Echo", "[\"alive\"]"))
            .await
            .status,
        200
    );
    assert_data(&poll(&url).await, &completion("1", "alive"));
}

#[tokio::test]
async fn no_pings_on_long_polling() {
    let server = server(HubOptions {
        keep_alive_interval: Duration::from_millis(100),
        long_polling_poll_timeout: Duration::from_millis(300),
        ..HubOptions::default()
    })
    .await;
    let (_, url) = connected(&server.base).await;
    for _ in 0..3 {
        assert_timed_out(&poll(&url).await);
    }
}

#[tokio::test]
async fn the_hub_sees_the_first_poll_request() {
    let server = server(HubOptions::default()).await;
    let token = negotiate_token(&server.base).await;
    let url = format!("{}/hub?id={token}", server.base);
    let first = send(common::http().get(&url).header("x-test", "first")).await;
    assert_eq!(first.status, 200);
    assert_eq!(post_text(&url, JSON_HANDSHAKE).await.status, 200);
    let later = || common::http().get(&url).header("x-test", "later");
    let reply = send(later()).await;
    assert_data(&reply, "{}\u{1e}");

    let post = common::http()
        .post(&url)
        .header("x-test", "post")
        .body(invocation("1", "Header", "[]"));
    assert_eq!(send(post).await.status, 200);
    let reply = send(later()).await;
    assert_data(&reply, &completion("1", "first"));
}

/// A connection the server closes (here the hub aborts it) still owes its client the Close
/// message: the next poll gets it, and the poll after that the 204 that tells the client to
/// stop (§3.4; the reference keeps the connection until a poll has seen the end). A client
/// that polls a moment after the close must not get 404, which clients report as an error.
#[tokio::test]
async fn a_server_side_close_reaches_the_next_poll_then_204() {
    let mut server = server(HubOptions::default()).await;
    let (_, url) = connected(&server.base).await;
    assert_eq!(
        post_text(&url, &fire_and_forget("Abort", "[]"))
            .await
            .status,
        200
    );
    bounded("the disconnect hook", server.disconnected.recv())
        .await
        .expect("the hook ran");
    // The client's next poll comes a little later; nothing is measured with this pause.
    tokio::time::sleep(HEAD_START).await;

    let reply = poll(&url).await;
    assert_data(&reply, &format!("{{\"type\":7}}{RS}"));
    let reply = poll(&url).await;
    assert_eq!(reply.status, 204, "the poll after the Close: {reply:?}");
}

/// The sweeper ends a connection whose client stopped polling before its handshake too; its
/// token is then forgotten, well before the handshake timeout (15 s).
#[tokio::test]
async fn no_poll_before_the_handshake_disposes_the_connection_too() {
    let server = server(HubOptions {
        disconnect_timeout: Duration::from_millis(300),
        ..HubOptions::default()
    })
    .await;
    let token = negotiate_token(&server.base).await;
    let url = format!("{}/hub?id={token}", server.base);
    assert_eq!(poll(&url).await.status, 200);
    // POSTs are no poll activity; an empty one adds no bytes to the connection.
    let forgotten = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if post_text(&url, "").await.status == 404 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        forgotten.is_ok(),
        "the token was still known 2 s after the only poll (disconnect timeout 300 ms)"
    );
}
