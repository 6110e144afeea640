//! Client results over WebSockets with the JSON hub protocol: the server invokes a client
//! method with an invocation id (`s1`, `s2`, ...) and awaits the client's Completion, from
//! outside hubs, from hub methods and from the connect hook (PROTOCOL.md §8, §9); and how
//! the invocation slots let a connection's invocations overlap.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use signalr_server::InvokeError;
use signalr_server::{CallContext, Hub, HubContext, HubError, HubOptions, HubRouterExt};
use tokio::sync::{Barrier, Notify, mpsc};

use common::{Client, bounded, start};

/// What the hub methods share with the test.
#[derive(Clone)]
struct Probe {
    /// Things the methods report.
    events: mpsc::UnboundedSender<String>,
    /// `Meet` waits here for a second `Meet`.
    barrier: Arc<Barrier>,
    /// `Gate` waits here until the test lets it go.
    gate: Arc<Notify>,
}

async fn echo(_context: CallContext<Probe>, text: String) -> Result<String, HubError> {
    Ok(text)
}

async fn who_am_i(context: CallContext<Probe>) -> Result<String, HubError> {
    Ok(context.connection_id().to_owned())
}

/// Asks the caller's `Question` handler and returns its answer.
async fn ask_caller(context: CallContext<Probe>, question: String) -> Result<String, HubError> {
    let _ = context.state().events.send(format!("asking {question}"));
    context
        .clients()
        .caller()
        .invoke::<String, _>("Question", (question,))
        .await
        .map_err(InvokeError::into_hub_error)
}

/// Waits (at most five seconds) until a second `Meet` runs at the same time.
async fn meet(context: CallContext<Probe>) -> Result<String, HubError> {
    let barrier = context.state().barrier.clone();
    match tokio::time::timeout(Duration::from_secs(5), barrier.wait()).await {
        Ok(_) => Ok("met".to_owned()),
        Err(_) => Err(HubError::new("nobody came")),
    }
}

/// Reports that it runs, then waits until the test opens the gate.
async fn gated(context: CallContext<Probe>) -> Result<String, HubError> {
    let _ = context.state().events.send("gate entered".to_owned());
    context.state().gate.notified().await;
    Ok("gate".to_owned())
}

/// Reports that it runs.
async fn fast(context: CallContext<Probe>) -> Result<String, HubError> {
    let _ = context.state().events.send("fast entered".to_owned());
    Ok("fast".to_owned())
}

/// Asks the caller from a task of its own and returns once the test opens the gate, without
/// waiting for the answer. The task reports the answer, then keeps its proxy to the caller
/// (as a task asking again later would) until the gate opens once more.
async fn ask_in_background(context: CallContext<Probe>) -> Result<(), HubError> {
    let caller = context.clients().caller();
    let events = context.state().events.clone();
    let gate = context.state().gate.clone();
    tokio::spawn(async move {
        let answer = caller.invoke::<String, _>("Question", ("later",)).await;
        let _ = events.send(format!("background answer {answer:?}"));
        gate.notified().await;
        drop(caller);
    });
    context.state().gate.notified().await;
    Ok(())
}

/// A streaming method that first asks its caller, then streams the answer's characters.
async fn ask_then_stream(
    context: CallContext<Probe>,
) -> Result<impl futures_util::Stream<Item = String> + Send + 'static, HubError> {
    let answer = context
        .clients()
        .caller()
        .invoke::<String, _>("Question", ("stream?",))
        .await
        .map_err(InvokeError::into_hub_error)?;
    let characters: Vec<String> = answer.chars().map(String::from).collect();
    Ok(futures_util::stream::iter(characters))
}

struct Server {
    base: String,
    context: HubContext,
    events: mpsc::UnboundedReceiver<String>,
    gate: Arc<Notify>,
}

impl Server {
    async fn start(options: HubOptions) -> Server {
        let (events, received) = mpsc::unbounded_channel();
        let gate = Arc::new(Notify::new());
        let probe = Probe {
            events,
            barrier: Arc::new(Barrier::new(2)),
            gate: gate.clone(),
        };
        let hub = Hub::builder(probe)
            .method("Echo", echo)
            .method("WhoAmI", who_am_i)
            .method("AskCaller", ask_caller)
            .method("Meet", meet)
            .method("Gate", gated)
            .method("Fast", fast)
            .method("AskInBackground", ask_in_background)
            .stream_method("AskThenStream", ask_then_stream)
            .options(options)
            .build();
        let context = hub.context();
        let base = start(Router::new().map_hub("/hub", hub)).await;
        Server {
            base,
            context,
            events: received,
            gate,
        }
    }

    async fn plain() -> Server {
        Server::start(HubOptions::default()).await
    }

    /// A connected client and its connection id (the round trip also proves the connection
    /// is registered).
    async fn client(&self) -> (Client, String) {
        let mut client = Client::open(&self.base, "").await;
        let record = client.call("who", "WhoAmI", "[]").await;
        let parsed: serde_json::Value = serde_json::from_str(&record).expect("JSON");
        let id = parsed["result"]
            .as_str()
            .expect("a connection id")
            .to_owned();
        (client, id)
    }

    /// The next event a method reported.
    async fn event(&mut self) -> String {
        bounded("an event from the hub", self.events.recv())
            .await
            .expect("the hub keeps its sender")
    }

    /// Invokes `target` on connection `id` from outside the hub, in a task of its own.
    fn invoke<T>(
        &self,
        id: &str,
        target: &'static str,
        arguments: serde_json::Value,
    ) -> tokio::task::JoinHandle<Result<T, InvokeError>>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        let clients = self.context.clients();
        let id = id.to_owned();
        tokio::spawn(async move { clients.client(&id).invoke::<T, _>(target, arguments).await })
    }
}

/// The outcome of an invocation task, waited for at most [`common::WAIT`].
async fn outcome<T>(
    task: tokio::task::JoinHandle<Result<T, InvokeError>>,
) -> Result<T, InvokeError> {
    bounded("the client result", task)
        .await
        .expect("the invoking task does not panic")
}

/// Checks that `record` is the server's invocation of `target` with `arguments` (raw JSON)
/// expecting a result, and returns its invocation id, which has the reference's shape `s<n>`.
fn server_invocation(record: &str, target: &str, arguments: &str) -> String {
    let parsed: serde_json::Value =
        serde_json::from_str(record).unwrap_or_else(|_| panic!("not JSON: {record}"));
    let id = parsed["invocationId"]
        .as_str()
        .unwrap_or_else(|| panic!("an invocation with an id: {record}"))
        .to_owned();
    let number = id
        .strip_prefix('s')
        .unwrap_or_else(|| panic!("the id starts with 's': {id}"));
    assert!(
        !number.is_empty()
            && !number.starts_with('0')
            && number.bytes().all(|byte| byte.is_ascii_digit()),
        "the id is 's' and a positive number: {id}"
    );
    assert_eq!(
        record,
        format!(
            "{{\"type\":1,\"invocationId\":\"{id}\",\"target\":\"{target}\",\"arguments\":{arguments}}}"
        )
    );
    id
}

fn completion_result(id: &str, value: &str) -> String {
    format!("{{\"type\":3,\"invocationId\":\"{id}\",\"result\":{value}}}")
}

fn completion_error(id: &str, error: &str) -> String {
    format!(
        "{{\"type\":3,\"invocationId\":\"{id}\",\"error\":{}}}",
        serde_json::to_string(error).unwrap()
    )
}

fn completion_void(id: &str) -> String {
    format!("{{\"type\":3,\"invocationId\":\"{id}\"}}")
}

/// Expects that no record arrives for `window`.
async fn expect_silence(client: &mut Client, window: Duration) {
    // `recv` is cancel-safe: a frame is either taken whole or left in the socket.
    if let Ok(record) = tokio::time::timeout(window, client.recv()).await {
        panic!("expected nothing for {window:?}, got {record}");
    }
}

// ---------------------------------------------------------------------------------------------
// From outside hubs (HubContext)

#[tokio::test]
async fn a_result_from_outside_the_hub() {
    let server = Server::plain().await;
    let (mut client, id) = server.client().await;
    let task = server.invoke::<i64>(&id, "Result", serde_json::json!([1]));
    let record = client.recv().await;
    assert_eq!(
        record,
        "{\"type\":1,\"invocationId\":\"s1\",\"target\":\"Result\",\"arguments\":[1]}"
    );
    assert_eq!(server_invocation(&record, "Result", "[1]"), "s1");
    client.send_records(&[&completion_result("s1", "42")]).await;
    assert_eq!(outcome(task).await, Ok(42));

    // The next one is numbered on; no arguments are an empty array.
    let task = server.invoke::<String>(&id, "Result", serde_json::json!([]));
    let record = client.recv().await;
    assert_eq!(server_invocation(&record, "Result", "[]"), "s2");
    client
        .send_records(&[&completion_result("s2", "\"text\"")])
        .await;
    assert_eq!(outcome(task).await, Ok("text".to_owned()));
}

#[tokio::test]
async fn a_client_error_is_returned_with_its_exact_text() {
    let server = Server::plain().await;
    let (mut client, id) = server.client().await;
    let task = server.invoke::<i64>(&id, "Result", serde_json::json!([1]));
    let invocation = server_invocation(&client.recv().await, "Result", "[1]");
    client
        .send_records(&[&completion_error(
            &invocation,
            "Client didn't provide a result.",
        )])
        .await;
    let error = outcome(task).await.unwrap_err();
    assert_eq!(
        error,
        InvokeError::Client("Client didn't provide a result.".to_owned())
    );
    assert_eq!(error.to_string(), "Client didn't provide a result.");
    // As a hub method would return it: a hub error carrying the client's text.
    assert_eq!(
        error.into_hub_error(),
        HubError::new("Client didn't provide a result.")
    );
}

#[tokio::test]
async fn a_completion_without_result_is_unit_but_not_a_number() {
    let server = Server::plain().await;
    let (mut client, id) = server.client().await;

    let task = server.invoke::<()>(&id, "Notify", serde_json::json!(["x"]));
    let invocation = server_invocation(&client.recv().await, "Notify", "[\"x\"]");
    client.send_records(&[&completion_void(&invocation)]).await;
    assert_eq!(outcome(task).await, Ok(()));

    let task = server.invoke::<i64>(&id, "Result", serde_json::json!([]));
    let invocation = server_invocation(&client.recv().await, "Result", "[]");
    client.send_records(&[&completion_void(&invocation)]).await;
    let error = outcome(task).await.unwrap_err();
    assert!(
        matches!(error, InvokeError::Decode(_)),
        "a missing result is no i64: {error:?}"
    );
}

#[tokio::test]
async fn a_result_of_the_wrong_type_is_a_decode_error() {
    let server = Server::plain().await;
    let (mut client, id) = server.client().await;
    let task = server.invoke::<i64>(&id, "Result", serde_json::json!([]));
    let invocation = server_invocation(&client.recv().await, "Result", "[]");
    client
        .send_records(&[&completion_result(&invocation, "\"not a number\"")])
        .await;
    let error = outcome(task).await.unwrap_err();
    assert!(matches!(error, InvokeError::Decode(_)), "{error:?}");
    // The connection is fine.
    assert_eq!(
        client.call("1", "Echo", "[\"ok\"]").await,
        completion_result("1", "\"ok\"")
    );
}

#[tokio::test]
async fn an_unknown_connection() {
    let server = Server::plain().await;
    let task = server.invoke::<i64>("no-such-connection", "Result", serde_json::json!([]));
    let error = outcome(task).await.unwrap_err();
    assert_eq!(
        error,
        InvokeError::NoConnection("no-such-connection".to_owned())
    );
    assert_eq!(
        error.to_string(),
        "Connection 'no-such-connection' does not exist."
    );
}

#[tokio::test]
async fn arguments_that_are_not_an_array_are_refused() {
    let server = Server::plain().await;
    let (_client, id) = server.client().await;
    let task = server.invoke::<i64>(&id, "Result", serde_json::json!({"a": 1}));
    let error = outcome(task).await.unwrap_err();
    assert!(matches!(error, InvokeError::Encode(_)), "{error:?}");
}

#[tokio::test]
async fn the_connection_closing_while_waiting() {
    let server = Server::plain().await;
    let (mut client, id) = server.client().await;
    let task = server.invoke::<i64>(&id, "Result", serde_json::json!([]));
    server_invocation(&client.recv().await, "Result", "[]");
    client.close_socket(1000).await;
    let error = outcome(task).await.unwrap_err();
    assert_eq!(error, InvokeError::Disconnected(id.clone()));
    assert_eq!(
        error.to_string(),
        format!("Connection '{id}' disconnected.")
    );
}

#[tokio::test]
async fn the_connection_closing_with_a_close_message_while_waiting() {
    let server = Server::plain().await;
    let (mut client, id) = server.client().await;
    let task = server.invoke::<i64>(&id, "Result", serde_json::json!([]));
    server_invocation(&client.recv().await, "Result", "[]");
    client.send_records(&["{\"type\":7}"]).await;
    client.expect_record_then_close("{\"type\":7}").await;
    assert_eq!(
        outcome(task).await,
        Err(InvokeError::Disconnected(id.clone()))
    );
}

#[tokio::test]
async fn a_timeout_and_a_late_completion() {
    let server = Server::plain().await;
    let (mut client, id) = server.client().await;
    let clients = server.context.clients();
    let target = id.clone();
    let timeout = Duration::from_millis(200);
    let task = tokio::spawn(async move {
        clients
            .client(&target)
            .invoke_with_timeout::<i64, _>("Result", (), timeout)
            .await
    });
    let late = server_invocation(&client.recv().await, "Result", "[]");
    assert_eq!(outcome(task).await, Err(InvokeError::TimedOut(timeout)));

    // The late answer is ignored and the connection stays open.
    client.send_records(&[&completion_result(&late, "1")]).await;
    assert_eq!(
        client.call("1", "Echo", "[\"open\"]").await,
        completion_result("1", "\"open\"")
    );
    // The next invocation gets a new id; the late answer did not stick to it.
    let task = server.invoke::<i64>(&id, "Result", serde_json::json!([]));
    let next = server_invocation(&client.recv().await, "Result", "[]");
    assert_ne!(next, late);
    client
        .send_records(&[
            &completion_result(&late, "1"),
            &completion_result(&next, "2"),
        ])
        .await;
    assert_eq!(outcome(task).await, Ok(2));
}

#[tokio::test]
async fn a_completion_with_an_unknown_id_is_ignored() {
    let server = Server::plain().await;
    let (mut client, id) = server.client().await;
    let task = server.invoke::<i64>(&id, "Result", serde_json::json!([]));
    let invocation = server_invocation(&client.recv().await, "Result", "[]");
    client
        .send_records(&[
            &completion_result("s999", "5"),
            &completion_error("nope", "whatever"),
        ])
        .await;
    assert_eq!(
        client.call("1", "Echo", "[\"open\"]").await,
        completion_result("1", "\"open\"")
    );
    client
        .send_records(&[&completion_result(&invocation, "7")])
        .await;
    assert_eq!(outcome(task).await, Ok(7));
}

#[tokio::test]
async fn only_the_invoked_connection_can_answer() {
    let server = Server::plain().await;
    let (mut invoked, id) = server.client().await;
    let (mut other, _) = server.client().await;
    let task = server.invoke::<i64>(&id, "Result", serde_json::json!([]));
    let invocation = server_invocation(&invoked.recv().await, "Result", "[]");

    // The other connection answers first; the Echo round trip proves it was handled.
    other
        .send_records(&[&completion_result(&invocation, "5")])
        .await;
    assert_eq!(
        other.call("1", "Echo", "[\"handled\"]").await,
        completion_result("1", "\"handled\"")
    );
    invoked
        .send_records(&[&completion_result(&invocation, "7")])
        .await;
    assert_eq!(outcome(task).await, Ok(7));
}

// ---------------------------------------------------------------------------------------------
// From hub methods

#[tokio::test]
async fn a_hub_method_awaits_its_caller_with_one_invocation_slot() {
    // The default limit: one invocation at a time. The method's wait gives its slot up, so
    // the read loop takes the answer: no deadlock.
    let server = Server::plain().await;
    let (mut client, _) = server.client().await;
    client.invoke("1", "AskCaller", "[\"why?\"]").await;
    let invocation = server_invocation(&client.recv().await, "Question", "[\"why?\"]");
    assert_eq!(invocation, "s1");
    client
        .send_records(&[&completion_result(&invocation, "\"because\"")])
        .await;
    assert_eq!(client.recv().await, completion_result("1", "\"because\""));
}

#[tokio::test]
async fn a_client_error_fails_the_asking_method_with_the_clients_text() {
    let server = Server::plain().await;
    let (mut client, _) = server.client().await;
    client.invoke("1", "AskCaller", "[\"why?\"]").await;
    let invocation = server_invocation(&client.recv().await, "Question", "[\"why?\"]");
    client
        .send_records(&[&completion_error(&invocation, "Error: from callback")])
        .await;
    assert_eq!(
        client.recv().await,
        completion_error(
            "1",
            "An unexpected error occurred invoking 'AskCaller' on the server. HubException: \
             Error: from callback"
        )
    );
}

#[tokio::test]
async fn another_invocation_runs_while_a_method_awaits_its_caller() {
    let mut server = Server::start(HubOptions {
        maximum_parallel_invocations_per_client: 1,
        ..Default::default()
    })
    .await;
    let (mut client, _) = server.client().await;
    client.invoke("1", "AskCaller", "[\"q\"]").await;
    assert_eq!(server.event().await, "asking q");
    let invocation = server_invocation(&client.recv().await, "Question", "[\"q\"]");
    // The slot is free while the method waits.
    assert_eq!(
        client.call("2", "Echo", "[\"meanwhile\"]").await,
        completion_result("2", "\"meanwhile\"")
    );
    assert_eq!(
        client.call("3", "Fast", "[]").await,
        completion_result("3", "\"fast\"")
    );
    assert_eq!(server.event().await, "fast entered");
    client
        .send_records(&[&completion_result(&invocation, "\"a\"")])
        .await;
    assert_eq!(client.recv().await, completion_result("1", "\"a\""));
    // And the slot works as before.
    assert_eq!(
        client.call("4", "Echo", "[\"after\"]").await,
        completion_result("4", "\"after\"")
    );
}

#[tokio::test]
async fn a_streaming_method_may_await_a_client_result() {
    let server = Server::plain().await;
    let (mut client, _) = server.client().await;
    client
        .send_records(&[
            "{\"type\":4,\"invocationId\":\"1\",\"target\":\"AskThenStream\",\"arguments\":[]}",
        ])
        .await;
    let invocation = server_invocation(&client.recv().await, "Question", "[\"stream?\"]");
    client
        .send_records(&[&completion_result(&invocation, "\"ok\"")])
        .await;
    assert_eq!(
        client.recv().await,
        "{\"type\":2,\"invocationId\":\"1\",\"item\":\"o\"}"
    );
    assert_eq!(
        client.recv().await,
        "{\"type\":2,\"invocationId\":\"1\",\"item\":\"k\"}"
    );
    assert_eq!(client.recv().await, completion_void("1"));
}

#[tokio::test]
async fn a_client_result_awaited_after_the_method_returned_keeps_no_slot() {
    // The method starts a client result in a task of its own and returns before the answer.
    // Once the answer came, the connection's only invocation slot must be free again.
    let mut server = Server::start(HubOptions {
        maximum_parallel_invocations_per_client: 1,
        ..Default::default()
    })
    .await;
    let (mut client, _) = server.client().await;
    client.invoke("1", "AskInBackground", "[]").await;
    let invocation = server_invocation(&client.recv().await, "Question", "[\"later\"]");
    // The background wait has begun; now the method returns.
    server.gate.notify_one();
    assert_eq!(client.recv().await, completion_void("1"));
    client
        .send_records(&[&completion_result(&invocation, "\"done\"")])
        .await;
    assert_eq!(server.event().await, "background answer Ok(\"done\")");
    // The background task still holds its proxy to the caller.
    assert_eq!(
        client.call("2", "Echo", "[\"slot free\"]").await,
        completion_result("2", "\"slot free\"")
    );
    server.gate.notify_one();
}

// ---------------------------------------------------------------------------------------------
// From the connect hook

#[tokio::test]
async fn client_results_are_refused_in_the_connect_hook() {
    let (outcomes, mut received) = mpsc::unbounded_channel::<Result<i64, InvokeError>>();
    let hub = Hub::builder(outcomes)
        .method(
            "Echo",
            |_context: CallContext<mpsc::UnboundedSender<Result<i64, InvokeError>>>,
             text: String| async move { Ok::<_, HubError>(text) },
        )
        .on_connected(
            |context: CallContext<mpsc::UnboundedSender<Result<i64, InvokeError>>>| async move {
                let outcome = context
                    .clients()
                    .caller()
                    .invoke::<i64, _>("Result", ())
                    .await;
                let _ = context.state().send(outcome);
                Ok(())
            },
        )
        .build();
    let base = start(Router::new().map_hub("/hub", hub)).await;
    let mut client = Client::open(&base, "").await;
    let outcome = bounded("the hook's outcome", received.recv())
        .await
        .expect("the hook ran");
    let error = outcome.unwrap_err();
    assert_eq!(error, InvokeError::InsideConnectHook);
    assert_eq!(
        error.to_string(),
        "Client results inside OnConnectedAsync Hub methods are not allowed."
    );
    // Nothing was sent to the client, and the connection goes on.
    assert_eq!(
        client.call("1", "Echo", "[\"connected\"]").await,
        completion_result("1", "\"connected\"")
    );
}

// ---------------------------------------------------------------------------------------------
// Parallel invocations

#[tokio::test]
async fn two_invocation_slots_let_two_calls_overlap() {
    let server = Server::start(HubOptions {
        maximum_parallel_invocations_per_client: 2,
        ..Default::default()
    })
    .await;
    let (mut client, _) = server.client().await;
    client.invoke("1", "Meet", "[]").await;
    client.invoke("2", "Meet", "[]").await;
    // Both must be at the barrier at once for either to finish with "met".
    let mut records = vec![client.recv().await, client.recv().await];
    records.sort();
    assert_eq!(
        records,
        [
            completion_result("1", "\"met\""),
            completion_result("2", "\"met\"")
        ]
    );
}

#[tokio::test]
async fn one_invocation_slot_answers_in_order_even_when_the_first_is_slower() {
    let mut server = Server::start(HubOptions {
        maximum_parallel_invocations_per_client: 1,
        ..Default::default()
    })
    .await;
    let (mut client, _) = server.client().await;
    client.invoke("1", "Gate", "[]").await;
    client.invoke("2", "Fast", "[]").await;
    assert_eq!(server.event().await, "gate entered");
    // Fast waits for the slot: it neither runs nor answers while Gate holds it.
    expect_silence(&mut client, Duration::from_millis(300)).await;
    assert!(
        server.events.try_recv().is_err(),
        "Fast ran while Gate held the only slot"
    );
    server.gate.notify_one();
    assert_eq!(client.recv().await, completion_result("1", "\"gate\""));
    assert_eq!(client.recv().await, completion_result("2", "\"fast\""));
    assert_eq!(server.event().await, "fast entered");
}
