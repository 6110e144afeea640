//! Streams in both directions over WebSockets with the JSON hub protocol, checked record by
//! record: server-to-client streams (StreamInvocation, StreamItem, CancelInvocation), client
//! uploads bound to `UploadStream` parameters, back-pressure, and the error texts
//! (PROTOCOL.md §5, §8).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use futures_util::stream::{self, Stream, StreamExt};
use signalr_server::{CallContext, Hub, HubError, HubOptions, HubRouterExt, UploadStream};
use tokio::sync::{Notify, mpsc};

use common::{Client, bounded, start, user_from_query};

/// The pace of the ticker's items.
const TICK: Duration = Duration::from_millis(20);

/// How long "nothing more arrives" is watched.
const SILENCE: Duration = Duration::from_millis(250);

/// What the hub methods share with the test.
#[derive(Clone)]
struct Probe {
    /// Things the methods report: `"ticker cancelled"`, `"ticker dropped"`, `"hold started"`.
    events: mpsc::UnboundedSender<String>,
    /// Lets `Hold` read its upload.
    release: Arc<Notify>,
}

/// Reports `.1` when dropped.
struct ReportDrop(mpsc::UnboundedSender<String>, &'static str);

impl Drop for ReportDrop {
    fn drop(&mut self) {
        let _ = self.0.send(self.1.to_owned());
    }
}

async fn echo(_context: CallContext<Probe>, text: String) -> Result<String, HubError> {
    Ok(text)
}

/// `0, 1, ..., n - 1` at once.
async fn count(
    _context: CallContext<Probe>,
    n: u32,
) -> Result<impl Stream<Item = u32> + Send + 'static, HubError> {
    Ok(stream::iter(0..n))
}

/// `0, 1, 2, ...` one item every [`TICK`], without end. Reports when its cancellation token
/// fires (`ticker cancelled after <n>`, n the items produced by then) and when the stream is
/// dropped.
async fn ticker(
    context: CallContext<Probe>,
) -> Result<impl Stream<Item = u64> + Send + 'static, HubError> {
    let produced = Arc::new(AtomicU64::new(0));
    let token = context.cancellation_token().clone();
    let events = context.state().events.clone();
    let observed = produced.clone();
    tokio::spawn(async move {
        token.cancelled().await;
        let n = observed.load(Ordering::SeqCst);
        let _ = events.send(format!("ticker cancelled after {n}"));
    });
    let guard = ReportDrop(context.state().events.clone(), "ticker dropped");
    Ok(stream::unfold(
        (0_u64, guard, produced),
        |(n, guard, produced)| async move {
            if n > 0 {
                tokio::time::sleep(TICK).await;
            }
            produced.fetch_add(1, Ordering::SeqCst);
            Some((n, (n + 1, guard, produced)))
        },
    ))
}

fn failure(hub_error: bool) -> HubError {
    if hub_error {
        HubError::new("the producer broke")
    } else {
        HubError::typed("InvalidOperationException", "the producer broke")
    }
}

/// `1, 2`, then an error, then an item that must never be sent.
async fn broken(
    _context: CallContext<Probe>,
    hub_error: bool,
) -> Result<impl Stream<Item = Result<i32, HubError>> + Send + 'static, HubError> {
    Ok(stream::iter(vec![
        Ok(1),
        Ok(2),
        Err(failure(hub_error)),
        Ok(3),
    ]))
}

/// Fails before it returns a stream.
async fn fail_early(
    _context: CallContext<Probe>,
    hub_error: bool,
) -> Result<stream::Empty<i32>, HubError> {
    Err(failure(hub_error))
}

/// Reads the whole upload and joins its items with `,`.
async fn concat(
    _context: CallContext<Probe>,
    mut upload: UploadStream<String>,
) -> Result<String, HubError> {
    let mut items = Vec::new();
    while let Some(item) = upload.next().await {
        items.push(item?);
    }
    Ok(items.join(","))
}

/// One ordinary argument between two uploads of different item types:
/// `<prefix>:<a items>|<b items>`.
async fn combine(
    _context: CallContext<Probe>,
    prefix: String,
    mut a: UploadStream<String>,
    mut b: UploadStream<i32>,
) -> Result<String, HubError> {
    let mut texts = Vec::new();
    while let Some(item) = a.next().await {
        texts.push(item?);
    }
    let mut numbers = Vec::new();
    while let Some(item) = b.next().await {
        numbers.push(item?.to_string());
    }
    Ok(format!(
        "{prefix}:{}|{}",
        texts.join(","),
        numbers.join(",")
    ))
}

/// Reports that it started, reads nothing until released, then sums the upload.
async fn hold(context: CallContext<Probe>, mut upload: UploadStream<i64>) -> Result<i64, HubError> {
    let _ = context.state().events.send("hold started".to_owned());
    context.state().release.notified().await;
    let mut sum = 0;
    while let Some(item) = upload.next().await {
        sum += item?;
    }
    Ok(sum)
}

/// A streaming method fed by an upload: each uploaded item comes back upper-cased.
async fn shout(
    _context: CallContext<Probe>,
    upload: UploadStream<String>,
) -> Result<impl Stream<Item = Result<String, HubError>> + Send + 'static, HubError> {
    Ok(upload.map(|item| item.map(|text| text.to_uppercase())))
}

/// A stream with a null item.
async fn maybe(
    _context: CallContext<Probe>,
) -> Result<impl Stream<Item = Option<i32>> + Send + 'static, HubError> {
    Ok(stream::iter([Some(1), None, Some(3)]))
}

/// Takes the first item of its upload and returns it, leaving the rest unread.
async fn first(
    _context: CallContext<Probe>,
    mut upload: UploadStream<i64>,
) -> Result<Option<i64>, HubError> {
    upload.next().await.transpose()
}

/// `1`, then a panic while producing the next item.
async fn panicky(
    _context: CallContext<Probe>,
) -> Result<impl Stream<Item = i32> + Send + 'static, HubError> {
    Ok(stream::iter(0..3).map(|n| {
        assert!(n < 1, "the producer panicked");
        n + 1
    }))
}

/// The caller's user id, as a one-item stream; for authenticated users only.
async fn whoami_stream(
    context: CallContext<Probe>,
) -> Result<impl Stream<Item = String> + Send + 'static, HubError> {
    let user = context
        .user()
        .map(|user| user.id.clone())
        .unwrap_or_default();
    Ok(stream::iter([user]))
}

struct Server {
    base: String,
    events: mpsc::UnboundedReceiver<String>,
    release: Arc<Notify>,
}

impl Server {
    async fn start(options: HubOptions) -> Server {
        let (events, received) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        let probe = Probe {
            events,
            release: release.clone(),
        };
        let hub = Hub::builder(probe)
            .method("Echo", echo)
            .stream_method("Count", count)
            .stream_method("Ticker", ticker)
            .stream_method("Broken", broken)
            .stream_method("FailEarly", fail_early)
            .method("Concat", concat)
            .method("Combine", combine)
            .method("Hold", hold)
            .stream_method("Shout", shout)
            .stream_method("Maybe", maybe)
            .method("First", first)
            .stream_method("Panicky", panicky)
            .authorized_stream_method("WhoAmI", whoami_stream)
            .options(options)
            .build();
        let app = Router::new()
            .map_hub("/hub", hub)
            .layer(axum::middleware::from_fn(user_from_query));
        let base = start(app).await;
        Server {
            base,
            events: received,
            release,
        }
    }

    async fn plain() -> Server {
        Server::start(HubOptions::default()).await
    }

    async fn client(&self) -> Client {
        Client::open(&self.base, "").await
    }

    /// The next event a method reported.
    async fn event(&mut self) -> String {
        bounded("an event from the hub", self.events.recv())
            .await
            .expect("the hub keeps its sender")
    }
}

// ---------------------------------------------------------------------------------------------
// Records

fn stream_invocation(id: &str, target: &str, arguments: &str) -> String {
    format!(
        "{{\"type\":4,\"invocationId\":\"{id}\",\"target\":\"{target}\",\"arguments\":{arguments}}}"
    )
}

fn stream_invocation_with_uploads(
    id: &str,
    target: &str,
    arguments: &str,
    stream_ids: &str,
) -> String {
    format!(
        "{{\"type\":4,\"invocationId\":\"{id}\",\"target\":\"{target}\",\"arguments\":{arguments},\"streamIds\":{stream_ids}}}"
    )
}

fn invocation_with_uploads(id: &str, target: &str, arguments: &str, stream_ids: &str) -> String {
    format!(
        "{{\"type\":1,\"invocationId\":\"{id}\",\"target\":\"{target}\",\"arguments\":{arguments},\"streamIds\":{stream_ids}}}"
    )
}

/// A StreamItem as the server writes it (and as clients send upload items).
fn item(id: &str, value: &str) -> String {
    format!("{{\"type\":2,\"invocationId\":\"{id}\",\"item\":{value}}}")
}

/// A Completion without result or error: the end of a stream or of a void call.
fn done(id: &str) -> String {
    format!("{{\"type\":3,\"invocationId\":\"{id}\"}}")
}

fn result(id: &str, value: &str) -> String {
    format!("{{\"type\":3,\"invocationId\":\"{id}\",\"result\":{value}}}")
}

fn error_completion(id: &str, error: &str) -> String {
    format!(
        "{{\"type\":3,\"invocationId\":\"{id}\",\"error\":{}}}",
        serde_json::to_string(error).unwrap()
    )
}

fn cancel(id: &str) -> String {
    format!("{{\"type\":5,\"invocationId\":\"{id}\"}}")
}

/// Expects that no record arrives for `window`.
async fn expect_silence(client: &mut Client, window: Duration) {
    // `recv` is cancel-safe: a frame is either taken whole or left in the socket.
    if let Ok(record) = tokio::time::timeout(window, client.recv()).await {
        panic!("expected nothing for {window:?}, got {record}");
    }
}

/// Reads records until the Completion of `id`; every record before it must be an item of
/// `id`. Returns the item values (raw JSON) and the Completion record.
async fn read_stream(client: &mut Client, id: &str) -> (Vec<String>, String) {
    let mut items = Vec::new();
    loop {
        let record = client.recv().await;
        let parsed: serde_json::Value = serde_json::from_str(&record).expect("JSON");
        assert_eq!(
            parsed["invocationId"], id,
            "a record of another id: {record}"
        );
        match parsed["type"].as_u64() {
            Some(2) => {
                let value = parsed["item"].to_string();
                assert_eq!(record, item(id, &value), "the item record");
                items.push(value);
            }
            Some(3) => return (items, record),
            _ => panic!("expected an item or the completion of {id}, got {record}"),
        }
    }
}

/// Waits for the ticker's two reports, made by two tasks in either order: its cancellation
/// token fired and its stream was dropped. Returns how many items it had produced when the
/// token fired.
async fn ticker_cancelled(server: &mut Server) -> u64 {
    let mut events = [server.event().await, server.event().await];
    events.sort();
    assert_eq!(events[1], "ticker dropped", "{events:?}");
    events[0]
        .strip_prefix("ticker cancelled after ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the ticker saw its token fire: {events:?}"))
}

/// The ticker's next item (a `u64`) for `id`; panics on anything else.
async fn next_tick(client: &mut Client, id: &str) -> u64 {
    let record = client.recv().await;
    let parsed: serde_json::Value = serde_json::from_str(&record).expect("JSON");
    let value = parsed["item"]
        .as_u64()
        .unwrap_or_else(|| panic!("expected an item of {id}, got {record}"));
    assert_eq!(record, item(id, &value.to_string()));
    value
}

// ---------------------------------------------------------------------------------------------
// Server-to-client streams

#[tokio::test]
async fn stream_items_in_order_then_one_completion() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation("1", "Count", "[5]")])
        .await;
    for n in 0..5 {
        assert_eq!(client.recv().await, item("1", &n.to_string()));
    }
    assert_eq!(client.recv().await, done("1"));
    expect_silence(&mut client, SILENCE).await;
}

#[tokio::test]
async fn an_empty_stream_is_only_a_completion() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation("7", "Count", "[0]")])
        .await;
    assert_eq!(client.recv().await, done("7"));
    assert_eq!(
        client.call("8", "Echo", "[\"next\"]").await,
        result("8", "\"next\"")
    );
}

#[tokio::test]
async fn cancel_invocation_stops_the_stream_with_a_completion_without_error() {
    let mut server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation("1", "Ticker", "[]")])
        .await;
    for expected in 0..=3 {
        assert_eq!(next_tick(&mut client, "1").await, expected);
    }
    let seen_at_cancel = 3;
    client.send_records(&[&cancel("1")]).await;
    // The method sees its cancellation token fire, and its stream is dropped.
    let produced_at_cancel = ticker_cancelled(&mut server).await;

    // At most the items already in flight, in sequence, then exactly one Completion without
    // error.
    let (items, completion) = read_stream(&mut client, "1").await;
    assert_eq!(completion, done("1"));
    let mut last = seen_at_cancel;
    for value in &items {
        let value: u64 = value.parse().expect("a sequence number");
        assert_eq!(value, last + 1, "items stay in sequence: {items:?}");
        last = value;
    }
    // Only items produced before the cancel was seen: numbered from 0, the last of them is
    // `produced_at_cancel - 1`. (Exact on this single-threaded test runtime: the stream's
    // task checks its token before it polls the producer again.)
    assert!(
        last < produced_at_cancel,
        "item {last} was produced after the cancel (then {produced_at_cancel} produced)"
    );
    // One item every 20 ms: 25 more would mean the cancel waited half a second.
    assert!(
        last <= seen_at_cancel + 25,
        "items kept coming after the cancel: {items:?}"
    );
    // Nothing more for that id (nor anything else).
    expect_silence(&mut client, SILENCE).await;
    assert_eq!(
        client.call("2", "Echo", "[\"alive\"]").await,
        result("2", "\"alive\"")
    );
}

#[tokio::test]
async fn null_items_are_items() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation("1", "Maybe", "[]")])
        .await;
    assert_eq!(client.recv().await, item("1", "1"));
    assert_eq!(client.recv().await, item("1", "null"));
    assert_eq!(client.recv().await, item("1", "3"));
    assert_eq!(client.recv().await, done("1"));
}

#[tokio::test]
async fn closing_the_connection_cancels_its_streams() {
    let mut server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation("1", "Ticker", "[]")])
        .await;
    assert_eq!(next_tick(&mut client, "1").await, 0);
    client.close_socket(1000).await;
    ticker_cancelled(&mut server).await;
}

#[tokio::test]
async fn cancel_for_an_unknown_or_finished_stream_is_ignored() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation("1", "Count", "[2]")])
        .await;
    let (items, completion) = read_stream(&mut client, "1").await;
    assert_eq!(items, ["0", "1"]);
    assert_eq!(completion, done("1"));
    client.send_records(&[&cancel("1"), &cancel("nope")]).await;
    assert_eq!(
        client.call("2", "Echo", "[\"still\"]").await,
        result("2", "\"still\"")
    );
    // A finished id may be used again.
    client
        .send_records(&[&stream_invocation("1", "Count", "[1]")])
        .await;
    assert_eq!(client.recv().await, item("1", "0"));
    assert_eq!(client.recv().await, done("1"));
}

// ---------------------------------------------------------------------------------------------
// Stream errors (§8)

const STREAMING_FAILED: &str = "An error occurred on the server while streaming results.";

async fn broken_stream(options: HubOptions, hub_error: bool) -> (Vec<String>, String) {
    let server = Server::start(options).await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation("1", "Broken", &format!("[{hub_error}]"))])
        .await;
    let stream = read_stream(&mut client, "1").await;
    expect_silence(&mut client, SILENCE).await;
    stream
}

#[tokio::test]
async fn an_item_error_ends_the_stream_with_the_generic_text() {
    let (items, completion) = broken_stream(HubOptions::default(), false).await;
    assert_eq!(items, ["1", "2"]);
    assert_eq!(completion, error_completion("1", STREAMING_FAILED));
}

#[tokio::test]
async fn an_item_error_shows_its_detail_with_detailed_errors() {
    let options = HubOptions {
        enable_detailed_errors: true,
        ..Default::default()
    };
    let (items, completion) = broken_stream(options, false).await;
    assert_eq!(items, ["1", "2"]);
    assert_eq!(
        completion,
        error_completion(
            "1",
            &format!("{STREAMING_FAILED} InvalidOperationException: the producer broke")
        )
    );
}

#[tokio::test]
async fn an_item_hub_error_always_shows_its_message() {
    for detailed in [false, true] {
        let options = HubOptions {
            enable_detailed_errors: detailed,
            ..Default::default()
        };
        let (items, completion) = broken_stream(options, true).await;
        assert_eq!(items, ["1", "2"]);
        assert_eq!(
            completion,
            error_completion(
                "1",
                &format!("{STREAMING_FAILED} HubException: the producer broke")
            ),
            "detailed errors {detailed}"
        );
    }
}

async fn failed_early(options: HubOptions, hub_error: bool) -> String {
    let server = Server::start(options).await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation(
            "1",
            "FailEarly",
            &format!("[{hub_error}]"),
        )])
        .await;
    let completion = client.recv().await;
    expect_silence(&mut client, SILENCE).await;
    completion
}

#[tokio::test]
async fn a_method_failing_before_its_stream_is_an_unexpected_error() {
    let unexpected = "An unexpected error occurred invoking 'FailEarly' on the server.";
    assert_eq!(
        failed_early(HubOptions::default(), false).await,
        error_completion("1", unexpected)
    );
    let detailed = HubOptions {
        enable_detailed_errors: true,
        ..Default::default()
    };
    assert_eq!(
        failed_early(detailed.clone(), false).await,
        error_completion(
            "1",
            &format!("{unexpected} InvalidOperationException: the producer broke")
        )
    );
    for options in [HubOptions::default(), detailed] {
        assert_eq!(
            failed_early(options, true).await,
            error_completion(
                "1",
                &format!("{unexpected} HubException: the producer broke")
            )
        );
    }
}

#[tokio::test]
async fn a_live_invocation_id_is_refused_and_the_first_stream_keeps_going() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation("1", "Ticker", "[]")])
        .await;
    assert_eq!(next_tick(&mut client, "1").await, 0);
    client
        .send_records(&[&stream_invocation("1", "Count", "[3]")])
        .await;
    // Ticks of the first stream may come before the refusal; they stay in sequence.
    let mut last = 0;
    loop {
        let record = client.recv().await;
        if record == error_completion("1", "Invocation ID '1' is already in use.") {
            break;
        }
        assert_eq!(record, item("1", &(last + 1).to_string()));
        last += 1;
    }
    // The first stream goes on.
    for _ in 0..3 {
        let value = next_tick(&mut client, "1").await;
        assert_eq!(value, last + 1);
        last = value;
    }
    client.send_records(&[&cancel("1")]).await;
    let (items, completion) = read_stream(&mut client, "1").await;
    for value in items {
        last += 1;
        assert_eq!(value, last.to_string());
    }
    assert_eq!(completion, done("1"));
}

#[tokio::test]
async fn stream_invocation_arguments_that_do_not_bind() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[
            &stream_invocation("1", "Count", "[\"x\"]"),
            &stream_invocation("2", "Count", "[]"),
        ])
        .await;
    let failed = "Failed to invoke 'Count' due to an error on the server.";
    let mut records = vec![client.recv().await, client.recv().await];
    records.sort();
    assert_eq!(
        records,
        [error_completion("1", failed), error_completion("2", failed)]
    );
    // The ids are free again.
    client
        .send_records(&[&stream_invocation("1", "Count", "[1]")])
        .await;
    assert_eq!(client.recv().await, item("1", "0"));
    assert_eq!(client.recv().await, done("1"));
}

#[tokio::test]
async fn stream_invocation_arguments_that_do_not_bind_with_detailed_errors() {
    let server = Server::start(HubOptions {
        enable_detailed_errors: true,
        ..Default::default()
    })
    .await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation("1", "Count", "[]")])
        .await;
    assert_eq!(
        client.recv().await,
        error_completion(
            "1",
            "Failed to invoke 'Count' due to an error on the server. InvalidDataException: \
             Invocation provides 0 argument(s) but target expects 1."
        )
    );
}

#[tokio::test]
async fn a_panicking_stream_ends_with_the_generic_stream_error() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation("1", "Panicky", "[]")])
        .await;
    let (items, completion) = read_stream(&mut client, "1").await;
    assert_eq!(items, ["1"]);
    assert_eq!(completion, error_completion("1", STREAMING_FAILED));
    assert_eq!(
        client.call("2", "Echo", "[\"survived\"]").await,
        result("2", "\"survived\"")
    );
}

#[tokio::test]
async fn an_authorized_stream_method() {
    let server = Server::plain().await;
    let mut anonymous = server.client().await;
    anonymous
        .send_records(&[&stream_invocation("1", "WhoAmI", "[]")])
        .await;
    assert_eq!(
        anonymous.recv().await,
        error_completion(
            "1",
            "Failed to invoke 'WhoAmI' because user is unauthorized"
        )
    );
    let mut alice = Client::open(&server.base, "?user=alice").await;
    alice
        .send_records(&[&stream_invocation("1", "WhoAmI", "[]")])
        .await;
    assert_eq!(alice.recv().await, item("1", "\"alice\""));
    assert_eq!(alice.recv().await, done("1"));
}

// ---------------------------------------------------------------------------------------------
// Invocation kind mismatches (§8)

#[tokio::test]
async fn invocation_of_a_streaming_method_with_an_id() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client.invoke("1", "Count", "[3]").await;
    assert_eq!(
        client.recv().await,
        error_completion(
            "1",
            "The client attempted to invoke the streaming 'Count' method with a non-streaming \
             invocation."
        )
    );
    expect_silence(&mut client, SILENCE).await;
}

#[tokio::test]
async fn invocation_of_a_streaming_method_without_an_id_gets_nothing() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client.send_invocation("Count", "[3]").await;
    client
        .send_records(&[
            "{\"type\":1,\"invocationId\":\"\",\"target\":\"Count\",\"arguments\":[3]}",
        ])
        .await;
    assert_eq!(
        client.call("2", "Echo", "[\"only this\"]").await,
        result("2", "\"only this\"")
    );
    expect_silence(&mut client, SILENCE).await;
}

#[tokio::test]
async fn stream_invocation_of_a_plain_method() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation("1", "Echo", "[\"x\"]")])
        .await;
    assert_eq!(
        client.recv().await,
        error_completion(
            "1",
            "The client attempted to invoke the non-streaming 'Echo' method with a streaming \
             invocation."
        )
    );
    expect_silence(&mut client, SILENCE).await;
}

#[tokio::test]
async fn stream_invocation_of_an_unknown_method() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation("1", "Nope", "[]")])
        .await;
    assert_eq!(
        client.recv().await,
        error_completion(
            "1",
            "Failed to invoke 'Nope' due to an error on the server. HubException: Method does \
             not exist."
        )
    );
    expect_silence(&mut client, SILENCE).await;
}

// ---------------------------------------------------------------------------------------------
// Client-to-server streams (uploads)

#[tokio::test]
async fn uploads_bind_in_order_around_an_ordinary_argument() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[&invocation_with_uploads(
            "1",
            "Combine",
            "[\"p\"]",
            "[\"10\",\"11\"]",
        )])
        .await;
    // Items interleaved across the two uploads, each in its own frame as clients send them.
    for record in [
        item("10", "\"x\""),
        item("11", "1"),
        item("10", "\"y\""),
        item("11", "2"),
        done("10"),
        item("11", "3"),
        done("11"),
    ] {
        client.send_records(&[&record]).await;
    }
    assert_eq!(client.recv().await, result("1", "\"p:x,y|1,2,3\""));
    expect_silence(&mut client, SILENCE).await;
}

#[tokio::test]
async fn an_upload_completed_with_an_error_fails_the_method_with_that_text() {
    // Without detailed errors: the client's error reaches the method as a hub error.
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[
            &invocation_with_uploads("1", "Concat", "[]", "[\"0\"]"),
            &item("0", "\"a\""),
            &error_completion("0", "the upload broke"),
        ])
        .await;
    assert_eq!(
        client.recv().await,
        error_completion(
            "1",
            "An unexpected error occurred invoking 'Concat' on the server. HubException: the \
             upload broke"
        )
    );
}

#[tokio::test]
async fn an_upload_item_that_does_not_bind_faults_the_upload() {
    // The reference completes the upload with `HubException("Failed to bind Stream
    // message.")` (the binding detail appended only with detailed errors), so a method that
    // lets the error through fails with the HubException text even without detailed errors.
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[
            &invocation_with_uploads("1", "Concat", "[]", "[\"0\"]"),
            &item("0", "\"a\""),
            &item("0", "{\"not\":\"a string\"}"),
        ])
        .await;
    assert_eq!(
        client.recv().await,
        error_completion(
            "1",
            "An unexpected error occurred invoking 'Concat' on the server. HubException: \
             Failed to bind Stream message."
        )
    );
    // The upload is gone: more items and its completion are ignored.
    client
        .send_records(&[&item("0", "\"b\""), &done("0")])
        .await;
    assert_eq!(
        client.call("2", "Echo", "[\"fine\"]").await,
        result("2", "\"fine\"")
    );
}

#[tokio::test]
async fn an_upload_item_that_does_not_bind_with_detailed_errors() {
    let server = Server::start(HubOptions {
        enable_detailed_errors: true,
        ..Default::default()
    })
    .await;
    let mut client = server.client().await;
    client
        .send_records(&[
            &invocation_with_uploads("1", "Concat", "[]", "[\"0\"]"),
            &item("0", "5"),
        ])
        .await;
    let record = client.recv().await;
    let parsed: serde_json::Value = serde_json::from_str(&record).expect("JSON");
    assert_eq!(parsed["type"], 3);
    assert_eq!(parsed["invocationId"], "1");
    // `<text> HubException: Failed to bind Stream message. <binding error type>: <detail>`.
    let error = parsed["error"].as_str().expect("an error");
    let prefix = "An unexpected error occurred invoking 'Concat' on the server. HubException: \
                  Failed to bind Stream message. ";
    assert!(
        error.starts_with(prefix) && error.len() > prefix.len(),
        "the binding failure with its detail: {error:?}"
    );
}

#[tokio::test]
async fn a_method_that_stops_reading_its_upload_does_not_block_the_connection() {
    let server = Server::start(HubOptions {
        stream_buffer_capacity: 2,
        ..Default::default()
    })
    .await;
    let mut client = server.client().await;
    client
        .send_records(&[&invocation_with_uploads("1", "First", "[]", "[\"0\"]")])
        .await;
    for n in 1..=10 {
        client.send_records(&[&item("0", &n.to_string())]).await;
    }
    client.send_records(&[&done("0")]).await;
    assert_eq!(client.recv().await, result("1", "1"));
    assert_eq!(
        client.call("2", "Echo", "[\"unblocked\"]").await,
        result("2", "\"unblocked\"")
    );
}

#[tokio::test]
async fn stream_count_mismatch() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    // Too few.
    assert_eq!(
        client.call("1", "Concat", "[]").await,
        error_completion(
            "1",
            "An unexpected error occurred invoking 'Concat' on the server. HubException: Client \
             sent 0 stream(s), Hub method expects 1."
        )
    );
    // Too many.
    client
        .send_records(&[&invocation_with_uploads(
            "2",
            "Concat",
            "[]",
            "[\"a\",\"b\"]",
        )])
        .await;
    assert_eq!(
        client.recv().await,
        error_completion(
            "2",
            "An unexpected error occurred invoking 'Concat' on the server. HubException: Client \
             sent 2 stream(s), Hub method expects 1."
        )
    );
    // A streaming method expecting an upload.
    client
        .send_records(&[&stream_invocation("3", "Shout", "[]")])
        .await;
    assert_eq!(
        client.recv().await,
        error_completion(
            "3",
            "An unexpected error occurred invoking 'Shout' on the server. HubException: Client \
             sent 0 stream(s), Hub method expects 1."
        )
    );
    // Items for the refused uploads are ignored.
    client.send_records(&[&item("a", "\"late\"")]).await;
    assert_eq!(
        client.call("4", "Echo", "[\"fine\"]").await,
        result("4", "\"fine\"")
    );
}

#[tokio::test]
async fn items_for_an_unknown_stream_id_are_ignored() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[
            &item("nope", "1"),
            &item("nope", "{\"deep\":[1,2]}"),
            &done("nope"),
            &error_completion("nope2", "whatever"),
        ])
        .await;
    assert_eq!(
        client.call("1", "Echo", "[\"ok\"]").await,
        result("1", "\"ok\"")
    );
    // An upload that ended takes no more items either.
    client
        .send_records(&[
            &invocation_with_uploads("2", "Concat", "[]", "[\"0\"]"),
            &item("0", "\"a\""),
            &done("0"),
            &item("0", "\"after the end\""),
        ])
        .await;
    assert_eq!(client.recv().await, result("2", "\"a\""));
    assert_eq!(
        client.call("3", "Echo", "[\"still ok\"]").await,
        result("3", "\"still ok\"")
    );
}

#[tokio::test]
async fn a_method_reading_an_upload_does_not_hold_the_invocation_slot() {
    // Default limit of one invocation at a time: the upload's reader runs beside it.
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[&invocation_with_uploads("1", "Concat", "[]", "[\"0\"]")])
        .await;
    assert_eq!(
        client.call("2", "Echo", "[\"beside\"]").await,
        result("2", "\"beside\"")
    );
    client
        .send_records(&[&item("0", "\"a\""), &item("0", "\"b\""), &done("0")])
        .await;
    assert_eq!(client.recv().await, result("1", "\"a,b\""));
}

#[tokio::test]
async fn a_full_upload_buffer_stops_reading_the_connection() {
    let mut server = Server::start(HubOptions {
        stream_buffer_capacity: 2,
        ..Default::default()
    })
    .await;
    let mut client = server.client().await;
    client
        .send_records(&[&invocation_with_uploads("1", "Hold", "[]", "[\"u\"]")])
        .await;
    assert_eq!(server.event().await, "hold started");
    for n in 1..=10 {
        client.send_records(&[&item("u", &n.to_string())]).await;
    }
    client.invoke("2", "Echo", "[\"behind the items\"]").await;
    // Two items fill the buffer; the third stops the read loop, so the Echo behind the items
    // is not even read.
    expect_silence(&mut client, Duration::from_millis(400)).await;

    server.release.notify_one();
    assert_eq!(client.recv().await, result("2", "\"behind the items\""));
    client.send_records(&[&done("u")]).await;
    assert_eq!(client.recv().await, result("1", "55"));
}

// ---------------------------------------------------------------------------------------------
// Streams and the invocation slots

#[tokio::test]
async fn a_running_stream_does_not_hold_the_invocation_slot() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation("1", "Ticker", "[]")])
        .await;
    assert_eq!(next_tick(&mut client, "1").await, 0);
    let mut last = 0;
    for (id, text) in [("2", "first"), ("3", "second")] {
        client.invoke(id, "Echo", &format!("[\"{text}\"]")).await;
        // Ticks go on meanwhile.
        loop {
            let record = client.recv().await;
            if record == result(id, &format!("\"{text}\"")) {
                break;
            }
            assert_eq!(record, item("1", &(last + 1).to_string()));
            last += 1;
        }
    }
    client.send_records(&[&cancel("1")]).await;
    let (_, completion) = read_stream(&mut client, "1").await;
    assert_eq!(completion, done("1"));
}

#[tokio::test]
async fn a_streaming_method_may_take_an_upload() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation_with_uploads(
            "1", "Shout", "[]", "[\"2\"]",
        )])
        .await;
    // Item by item: each upload item comes back before the next is sent.
    for text in ["a", "bc", "déf"] {
        client
            .send_records(&[&item("2", &format!("\"{text}\""))])
            .await;
        assert_eq!(
            client.recv().await,
            item("1", &format!("\"{}\"", text.to_uppercase()))
        );
    }
    client.send_records(&[&done("2")]).await;
    assert_eq!(client.recv().await, done("1"));
    expect_silence(&mut client, SILENCE).await;
}

#[tokio::test]
async fn an_upload_error_ends_a_streaming_method_fed_by_it() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    client
        .send_records(&[
            &stream_invocation_with_uploads("1", "Shout", "[]", "[\"2\"]"),
            &item("2", "\"a\""),
            &error_completion("2", "the upload broke"),
        ])
        .await;
    assert_eq!(client.recv().await, item("1", "\"A\""));
    assert_eq!(
        client.recv().await,
        error_completion(
            "1",
            &format!("{STREAMING_FAILED} HubException: the upload broke")
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Scale

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_streams_on_a_hundred_connections() {
    const CONNECTIONS: usize = 100;
    const STREAMS: usize = 10;
    const ITEMS: u32 = 20;
    let server = Server::plain().await;
    let base = server.base.clone();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let base = base.clone();
        tasks.spawn(async move {
            let mut client = Client::open(&base, "").await;
            let invocations: Vec<String> = (0..STREAMS)
                .map(|id| stream_invocation(&id.to_string(), "Count", &format!("[{ITEMS}]")))
                .collect();
            let invocations: Vec<&str> = invocations.iter().map(String::as_str).collect();
            client.send_records(&invocations).await;
            let mut next = [0_u32; STREAMS];
            let mut completed = 0;
            while completed < STREAMS {
                let record = client.recv().await;
                let parsed: serde_json::Value = serde_json::from_str(&record).expect("JSON");
                let id = parsed["invocationId"].as_str().expect("an id").to_owned();
                let index: usize = id.parse().expect("one of ours");
                match parsed["type"].as_u64() {
                    Some(2) => {
                        assert_eq!(record, item(&id, &next[index].to_string()));
                        next[index] += 1;
                    }
                    Some(3) => {
                        assert_eq!(record, done(&id));
                        assert_eq!(next[index], ITEMS, "all items of {id} before its end");
                        completed += 1;
                    }
                    _ => panic!("unexpected record {record}"),
                }
            }
        });
    }
    bounded("a thousand streams", async {
        while let Some(finished) = tasks.join_next().await {
            finished.expect("a connection's streams all completed in order");
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Stream ids and the per-connection stream limit

#[tokio::test]
async fn a_cancelled_stream_leaves_room_for_a_new_one_at_once() {
    let mut server = Server::start(HubOptions {
        maximum_streams_per_client: 1,
        ..Default::default()
    })
    .await;
    let mut client = server.client().await;
    client
        .send_records(&[&stream_invocation("a", "Ticker", "[]")])
        .await;
    assert_eq!(next_tick(&mut client, "a").await, 0);
    // The cancel and the next stream in one frame: the cancelled stream no longer counts,
    // even while its task may still be winding down.
    client
        .send_records(&[&cancel("a"), &stream_invocation("b", "Count", "[2]")])
        .await;
    let mut of_b = Vec::new();
    let mut a_done = false;
    while !(a_done && of_b.last() == Some(&done("b"))) {
        let record = client.recv().await;
        if record == done("a") {
            a_done = true;
        } else if !record.contains("\"invocationId\":\"a\"") {
            of_b.push(record);
        }
    }
    assert_eq!(of_b, [item("b", "0"), item("b", "1"), done("b")]);
    ticker_cancelled(&mut server).await;
}

#[tokio::test]
async fn an_upload_id_in_use_is_refused() {
    let server = Server::plain().await;
    let mut client = server.client().await;
    let in_use = |id: &str, target: &str| {
        format!(
            "An unexpected error occurred invoking '{target}' on the server. HubException: \
             Stream ID '{id}' is already in use."
        )
    };
    client
        .send_records(&[
            &invocation_with_uploads("1", "Concat", "[]", "[\"u\"]"),
            &invocation_with_uploads("2", "Concat", "[]", "[\"u\"]"),
        ])
        .await;
    assert_eq!(
        client.recv().await,
        error_completion("2", &in_use("u", "Concat"))
    );
    // The first call keeps its upload whole.
    client
        .send_records(&[&item("u", "\"x\""), &item("u", "\"y\""), &done("u")])
        .await;
    assert_eq!(client.recv().await, result("1", "\"x,y\""));

    // The same id twice in one invocation.
    client
        .send_records(&[&invocation_with_uploads(
            "3",
            "Combine",
            "[\"p\"]",
            "[\"v\",\"v\"]",
        )])
        .await;
    assert_eq!(
        client.recv().await,
        error_completion("3", &in_use("v", "Combine"))
    );
    // Once the first upload has ended, its id may be used again.
    client
        .send_records(&[&invocation_with_uploads("4", "Concat", "[]", "[\"u\"]")])
        .await;
    client
        .send_records(&[&item("u", "\"again\""), &done("u")])
        .await;
    assert_eq!(client.recv().await, result("4", "\"again\""));
}
