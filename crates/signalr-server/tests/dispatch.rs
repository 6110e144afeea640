//! Hub method dispatch: results, error texts, parsing tolerance, ordering and parallelism, the
//! connect hook (PROTOCOL.md §6, §8, §10).

mod common;

use std::time::Duration;

use axum::Router;
use signalr_server::{CallContext, Hub, HubError, HubOptions, HubRouterExt};

use common::{Client, start, user_from_query};

const CLOSE_WITH_ERROR: &str =
    "{\"type\":7,\"error\":\"Connection closed with an error.\",\"allowReconnect\":true}";

async fn echo(_context: CallContext<()>, text: String) -> Result<String, HubError> {
    Ok(text)
}

async fn add(_context: CallContext<()>, a: i32, b: i32) -> Result<i32, HubError> {
    Ok(a + b)
}

async fn void(_context: CallContext<()>) -> Result<(), HubError> {
    Ok(())
}

async fn unit(_context: CallContext<()>) {}

async fn nothing(_context: CallContext<()>) -> Result<Option<String>, HubError> {
    Ok(None)
}

async fn fail(_context: CallContext<()>) -> Result<(), HubError> {
    Err(HubError::new("nope"))
}

async fn throw(_context: CallContext<()>) -> Result<String, HubError> {
    Err(HubError::typed("InvalidOperationException", "boom"))
}

async fn parse(_context: CallContext<()>, text: String) -> Result<i32, HubError> {
    Ok(text.parse::<i32>()?)
}

async fn secret(context: CallContext<()>) -> Result<String, HubError> {
    Ok(context
        .user()
        .map(|user| user.id.clone())
        .unwrap_or_default())
}

async fn slow(_context: CallContext<()>) -> Result<String, HubError> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok("slow".to_owned())
}

async fn fast(_context: CallContext<()>) -> Result<String, HubError> {
    Ok("fast".to_owned())
}

async fn panics(_context: CallContext<()>) -> Result<(), HubError> {
    panic!("the method fell over");
}

async fn abort(context: CallContext<()>) -> Result<(), HubError> {
    context.abort();
    Ok(())
}

fn hub(options: HubOptions) -> Hub<()> {
    Hub::builder(())
        .method("Echo", echo)
        .method("Add", add)
        .method("Void", void)
        .method("Unit", unit)
        .method("Nothing", nothing)
        .method("Fail", fail)
        .method("Throw", throw)
        .method("Parse", parse)
        .authorized_method("Secret", secret)
        .method("Slow", slow)
        .method("Fast", fast)
        .method("Abort", abort)
        .method("Panic", panics)
        .options(options)
        .build()
}

fn app(options: HubOptions) -> Router {
    Router::new()
        .map_hub("/hub", hub(options))
        .layer(axum::middleware::from_fn(user_from_query))
}

async fn connect(options: HubOptions) -> Client {
    let base = start(app(options)).await;
    Client::open(&base, "").await
}

async fn plain() -> Client {
    connect(HubOptions::default()).await
}

async fn detailed() -> Client {
    connect(HubOptions {
        enable_detailed_errors: true,
        ..Default::default()
    })
    .await
}

fn error_completion(id: &str, error: &str) -> String {
    // Property order as the server writes it: type, invocationId, error.
    format!(
        "{{\"type\":3,\"invocationId\":\"{id}\",\"error\":{}}}",
        serde_json::to_string(error).unwrap()
    )
}

// ---------------------------------------------------------------------------------------------
// Results

#[tokio::test]
async fn completion_carries_the_result() {
    let mut client = plain().await;
    assert_eq!(
        client.call("1", "Echo", "[\"hi\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"hi\"}"
    );
    assert_eq!(
        client.call("2", "Add", "[2,3]").await,
        "{\"type\":3,\"invocationId\":\"2\",\"result\":5}"
    );
}

#[tokio::test]
async fn method_names_are_case_insensitive() {
    let mut client = plain().await;
    assert_eq!(
        client.call("1", "echo", "[\"lower\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"lower\"}"
    );
    assert_eq!(
        client.call("2", "ECHO", "[\"upper\"]").await,
        "{\"type\":3,\"invocationId\":\"2\",\"result\":\"upper\"}"
    );
}

#[tokio::test]
async fn void_methods_complete_without_result() {
    let mut client = plain().await;
    assert_eq!(
        client.call("1", "Void", "[]").await,
        "{\"type\":3,\"invocationId\":\"1\"}"
    );
    assert_eq!(
        client.call("2", "Unit", "[]").await,
        "{\"type\":3,\"invocationId\":\"2\"}"
    );
}

#[tokio::test]
async fn a_null_result_is_a_result() {
    let mut client = plain().await;
    assert_eq!(
        client.call("1", "Nothing", "[]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":null}"
    );
}

#[tokio::test]
async fn non_blocking_invocations_get_no_reply() {
    let mut client = plain().await;
    client.send_invocation("Echo", "[\"quiet\"]").await;
    // Not even on errors.
    client.send_invocation("Nope", "[]").await;
    client.send_invocation("Fail", "[]").await;
    client.send_invocation("Echo", "[1,2,3]").await;
    client
        .send_records(&["{\"type\":1,\"invocationId\":\"\",\"target\":\"Fail\",\"arguments\":[]}"])
        .await;
    assert_eq!(
        client.call("1", "Echo", "[\"loud\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"loud\"}"
    );
}

// ---------------------------------------------------------------------------------------------
// Error texts (§8)

#[tokio::test]
async fn unknown_method() {
    let mut client = plain().await;
    assert_eq!(
        client.call("1", "Nope", "[]").await,
        error_completion(
            "1",
            "Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist."
        )
    );
}

#[tokio::test]
async fn wrong_argument_count() {
    let mut client = plain().await;
    assert_eq!(
        client.call("1", "Echo", "[\"a\",\"b\"]").await,
        error_completion(
            "1",
            "Failed to invoke 'Echo' due to an error on the server."
        )
    );
    // The connection stays usable.
    assert_eq!(
        client.call("2", "Echo", "[\"ok\"]").await,
        "{\"type\":3,\"invocationId\":\"2\",\"result\":\"ok\"}"
    );
}

#[tokio::test]
async fn wrong_argument_count_with_detailed_errors() {
    let mut client = detailed().await;
    assert_eq!(
        client.call("1", "Echo", "[\"a\",\"b\"]").await,
        error_completion(
            "1",
            "Failed to invoke 'Echo' due to an error on the server. InvalidDataException: \
             Invocation provides 2 argument(s) but target expects 1."
        )
    );
    assert_eq!(
        client.call("2", "Add", "[]").await,
        error_completion(
            "2",
            "Failed to invoke 'Add' due to an error on the server. InvalidDataException: \
             Invocation provides 0 argument(s) but target expects 2."
        )
    );
}

#[tokio::test]
async fn wrong_argument_type() {
    let mut client = plain().await;
    assert_eq!(
        client.call("1", "Add", "[\"a\",\"b\"]").await,
        error_completion("1", "Failed to invoke 'Add' due to an error on the server.")
    );
}

#[tokio::test]
async fn wrong_argument_type_with_detailed_errors() {
    let mut client = detailed().await;
    assert_eq!(
        client.call("1", "Add", "[\"a\",\"b\"]").await,
        error_completion(
            "1",
            "Failed to invoke 'Add' due to an error on the server. InvalidDataException: Error \
             binding arguments. Make sure that the types of the provided values match the types \
             of the hub method being invoked."
        )
    );
}

#[tokio::test]
async fn hub_error_is_always_shown() {
    let mut client = plain().await;
    assert_eq!(
        client.call("1", "Fail", "[]").await,
        error_completion(
            "1",
            "An unexpected error occurred invoking 'Fail' on the server. HubException: nope"
        )
    );
}

#[tokio::test]
async fn other_errors_are_hidden_without_detailed_errors() {
    let mut client = plain().await;
    assert_eq!(
        client.call("1", "Throw", "[]").await,
        error_completion(
            "1",
            "An unexpected error occurred invoking 'Throw' on the server."
        )
    );
    assert_eq!(
        client.call("2", "Parse", "[\"x\"]").await,
        error_completion(
            "2",
            "An unexpected error occurred invoking 'Parse' on the server."
        )
    );
}

#[tokio::test]
async fn other_errors_are_shown_with_detailed_errors() {
    let mut client = detailed().await;
    assert_eq!(
        client.call("1", "Throw", "[]").await,
        error_completion(
            "1",
            "An unexpected error occurred invoking 'Throw' on the server. \
             InvalidOperationException: boom"
        )
    );
    assert_eq!(
        client.call("2", "Fail", "[]").await,
        error_completion(
            "2",
            "An unexpected error occurred invoking 'Fail' on the server. HubException: nope"
        )
    );
    assert_eq!(
        client.call("3", "Parse", "[\"x\"]").await,
        error_completion(
            "3",
            "An unexpected error occurred invoking 'Parse' on the server. ParseIntError: \
             invalid digit found in string"
        )
    );
}

#[tokio::test]
async fn stream_invocation_of_a_non_streaming_method() {
    let mut client = plain().await;
    client
        .send_records(&[
            "{\"type\":4,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"x\"]}",
        ])
        .await;
    assert_eq!(
        client.recv().await,
        error_completion(
            "1",
            "The client attempted to invoke the non-streaming 'Echo' method with a streaming \
             invocation."
        )
    );
}

#[tokio::test]
async fn stream_invocation_of_an_unknown_method() {
    let mut client = plain().await;
    client
        .send_records(&["{\"type\":4,\"invocationId\":\"1\",\"target\":\"Nope\",\"arguments\":[]}"])
        .await;
    assert_eq!(
        client.recv().await,
        error_completion(
            "1",
            "Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist."
        )
    );
}

#[tokio::test]
async fn a_panicking_method_is_an_unexpected_error_and_the_connection_survives() {
    let mut client = plain().await;
    assert_eq!(
        client.call("1", "Panic", "[]").await,
        error_completion(
            "1",
            "An unexpected error occurred invoking 'Panic' on the server."
        )
    );
    assert_eq!(
        client.call("2", "Echo", "[\"after\"]").await,
        "{\"type\":3,\"invocationId\":\"2\",\"result\":\"after\"}"
    );
}

#[tokio::test]
async fn stream_ids_for_a_method_without_stream_parameters() {
    let mut client = plain().await;
    client
        .send_records(&[
            "{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"x\"],\"streamIds\":[\"1\"]}",
        ])
        .await;
    assert_eq!(
        client.recv().await,
        error_completion(
            "1",
            "An unexpected error occurred invoking 'Echo' on the server. HubException: Client \
             sent 1 stream(s), Hub method expects 0."
        )
    );
}

#[tokio::test]
async fn authorized_method_without_a_user() {
    let mut client = plain().await;
    assert_eq!(
        client.call("1", "Secret", "[]").await,
        error_completion(
            "1",
            "Failed to invoke 'Secret' because user is unauthorized"
        )
    );
}

#[tokio::test]
async fn authorized_method_with_a_user() {
    let base = start(app(HubOptions::default())).await;
    let mut client = Client::open(&base, "?user=alice").await;
    assert_eq!(
        client.call("1", "Secret", "[]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"alice\"}"
    );
}

// ---------------------------------------------------------------------------------------------
// Parsing (§6)

#[tokio::test]
async fn malformed_json_closes_with_an_error() {
    let mut client = plain().await;
    client.send_records(&["{\"type\":1,"]).await;
    client.expect_record_then_close(CLOSE_WITH_ERROR).await;
}

#[tokio::test]
async fn missing_target_closes_with_an_error() {
    let mut client = detailed().await;
    client
        .send_records(&["{\"type\":1,\"invocationId\":\"1\",\"arguments\":[]}"])
        .await;
    let close = client.recv_json().await;
    assert_eq!(
        close,
        serde_json::json!({
            "type": 7,
            "error": "Connection closed with an error. InvalidDataException: Missing required \
                      property 'target'.",
            "allowReconnect": true,
        })
    );
    assert_eq!(client.expect_close().await, Some(1000));
}

#[tokio::test]
async fn arguments_that_are_not_an_array_close_with_an_error() {
    let mut client = plain().await;
    client
        .send_records(&["{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":{}}"])
        .await;
    client.expect_record_then_close(CLOSE_WITH_ERROR).await;
}

#[tokio::test]
async fn type_may_come_last() {
    let mut client = plain().await;
    client
        .send_records(&[
            "{\"target\":\"Echo\",\"arguments\":[\"x\"],\"invocationId\":\"0\",\"type\":1}",
        ])
        .await;
    assert_eq!(
        client.recv().await,
        "{\"type\":3,\"invocationId\":\"0\",\"result\":\"x\"}"
    );
}

#[tokio::test]
async fn headers_and_unknown_properties_are_accepted() {
    let mut client = plain().await;
    client
        .send_records(&[
            "{\"type\":1,\"headers\":{\"traceparent\":\"00-abc-def-01\"},\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"h\"],\"extra\":{\"a\":[1,2]}}",
        ])
        .await;
    assert_eq!(
        client.recv().await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"h\"}"
    );
}

#[tokio::test]
async fn many_messages_in_one_frame() {
    let mut client = plain().await;
    client
        .send_records(&[
            "{\"type\":6}",
            "{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"a\"]}",
            "{\"type\":1,\"target\":\"Echo\",\"arguments\":[\"silent\"]}",
            "{\"type\":1,\"invocationId\":\"2\",\"target\":\"Add\",\"arguments\":[1,1]}",
            "{\"arguments\":[\"c\"],\"type\":1,\"target\":\"Echo\",\"invocationId\":\"3\"}",
        ])
        .await;
    assert_eq!(
        client.recv().await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"a\"}"
    );
    assert_eq!(
        client.recv().await,
        "{\"type\":3,\"invocationId\":\"2\",\"result\":2}"
    );
    assert_eq!(
        client.recv().await,
        "{\"type\":3,\"invocationId\":\"3\",\"result\":\"c\"}"
    );
}

#[tokio::test]
async fn a_message_split_across_frames() {
    let mut client = plain().await;
    client
        .send_text("{\"type\":1,\"invocationId\":\"1\",\"tar")
        .await;
    client
        .send_text(
            "get\":\"Echo\",\"arguments\":[\"joined\"]}\u{1e}{\"type\":1,\"invocationId\":\"2\",",
        )
        .await;
    client
        .send_text("\"target\":\"Echo\",\"arguments\":[\"second\"]}\u{1e}")
        .await;
    assert_eq!(
        client.recv().await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"joined\"}"
    );
    assert_eq!(
        client.recv().await,
        "{\"type\":3,\"invocationId\":\"2\",\"result\":\"second\"}"
    );
}

#[tokio::test]
async fn cancel_and_completion_for_unknown_ids_are_ignored() {
    let mut client = plain().await;
    client
        .send_records(&[
            "{\"type\":5,\"invocationId\":\"42\"}",
            "{\"type\":3,\"invocationId\":\"43\",\"result\":1}",
        ])
        .await;
    assert_eq!(
        client.call("1", "Echo", "[\"fine\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"fine\"}"
    );
}

// ---------------------------------------------------------------------------------------------
// Close (§10)

#[tokio::test]
async fn client_close_is_answered_with_close() {
    let mut client = plain().await;
    client.send_records(&["{\"type\":7}"]).await;
    client.expect_record_then_close("{\"type\":7}").await;
}

#[tokio::test]
async fn abort_from_a_hub_method_closes_without_reconnect() {
    let mut client = plain().await;
    client.invoke("1", "Abort", "[]").await;
    // The completion of the aborting call may or may not get out before the Close.
    let mut record = client.recv().await;
    if record == "{\"type\":3,\"invocationId\":\"1\"}" {
        record = client.recv().await;
    }
    assert_eq!(record, "{\"type\":7}");
    assert_eq!(client.expect_close().await, Some(1000));
}

// ---------------------------------------------------------------------------------------------
// Ordering and parallelism (§8)

async fn slow_then_fast(parallel: usize) -> Vec<String> {
    let mut client = connect(HubOptions {
        maximum_parallel_invocations_per_client: parallel,
        ..Default::default()
    })
    .await;
    client
        .send_records(&[
            "{\"type\":1,\"invocationId\":\"1\",\"target\":\"Slow\",\"arguments\":[]}",
            "{\"type\":1,\"invocationId\":\"2\",\"target\":\"Fast\",\"arguments\":[]}",
        ])
        .await;
    vec![client.recv().await, client.recv().await]
}

#[tokio::test]
async fn one_invocation_at_a_time_keeps_order() {
    assert_eq!(
        slow_then_fast(1).await,
        [
            "{\"type\":3,\"invocationId\":\"1\",\"result\":\"slow\"}",
            "{\"type\":3,\"invocationId\":\"2\",\"result\":\"fast\"}",
        ]
    );
}

#[tokio::test]
async fn one_invocation_at_a_time_also_across_frames() {
    let mut client = plain().await;
    client.invoke("1", "Slow", "[]").await;
    client.invoke("2", "Fast", "[]").await;
    assert_eq!(
        client.recv().await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"slow\"}"
    );
    assert_eq!(
        client.recv().await,
        "{\"type\":3,\"invocationId\":\"2\",\"result\":\"fast\"}"
    );
}

#[tokio::test]
async fn two_parallel_invocations_let_the_fast_one_finish_first() {
    assert_eq!(
        slow_then_fast(2).await,
        [
            "{\"type\":3,\"invocationId\":\"2\",\"result\":\"fast\"}",
            "{\"type\":3,\"invocationId\":\"1\",\"result\":\"slow\"}",
        ]
    );
}

#[tokio::test]
async fn parallel_limit_bounds_running_invocations() {
    // With 2 slots, two slow calls occupy both and the fast third waits for one of them.
    let mut client = connect(HubOptions {
        maximum_parallel_invocations_per_client: 2,
        ..Default::default()
    })
    .await;
    client
        .send_records(&[
            "{\"type\":1,\"invocationId\":\"1\",\"target\":\"Slow\",\"arguments\":[]}",
            "{\"type\":1,\"invocationId\":\"2\",\"target\":\"Slow\",\"arguments\":[]}",
            "{\"type\":1,\"invocationId\":\"3\",\"target\":\"Fast\",\"arguments\":[]}",
        ])
        .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let record = client.recv_json().await;
        ids.push(record["invocationId"].as_str().unwrap().to_owned());
    }
    // A slow call answers before the fast one: the fast call got a slot only when one ended.
    // (Which of the two comes last is up to the timers.)
    assert_ne!(
        ids[0], "3",
        "the fast call did not wait for a slot: {ids:?}"
    );
    ids.sort();
    assert_eq!(ids, ["1", "2", "3"]);
}

// ---------------------------------------------------------------------------------------------
// Connect and disconnect hooks (§4, §10)

async fn hooked(hook_error: HubError, detailed: bool) -> Client {
    let hub = Hub::builder(hook_error)
        .method(
            "Echo",
            |_context: CallContext<HubError>, text: String| async move { Ok::<_, HubError>(text) },
        )
        .on_connected(|context: CallContext<HubError>| {
            let error = context.state().clone();
            async move { Err(error) }
        })
        .options(HubOptions {
            enable_detailed_errors: detailed,
            ..Default::default()
        })
        .build();
    let base = start(Router::new().map_hub("/hub", hub)).await;
    // The handshake succeeds: the hook runs after the handshake response.
    Client::open(&base, "").await
}

#[tokio::test]
async fn connect_hook_hub_error_closes_without_reconnect() {
    let mut client = hooked(HubError::new("x"), false).await;
    client
        .expect_record_then_close(
            "{\"type\":7,\"error\":\"Connection closed with an error. HubException: x\"}",
        )
        .await;
}

#[tokio::test]
async fn connect_hook_other_error_hidden_without_detailed_errors() {
    let mut client = hooked(HubError::typed("InvalidOperationException", "boom"), false).await;
    client
        .expect_record_then_close("{\"type\":7,\"error\":\"Connection closed with an error.\"}")
        .await;
}

#[tokio::test]
async fn connect_hook_other_error_with_detailed_errors() {
    let mut client = hooked(HubError::typed("InvalidOperationException", "boom"), true).await;
    client
        .expect_record_then_close(
            "{\"type\":7,\"error\":\"Connection closed with an error. InvalidOperationException: boom\"}",
        )
        .await;
}

#[derive(Clone)]
struct Events(tokio::sync::mpsc::UnboundedSender<String>);

#[tokio::test]
async fn connect_hook_may_send_to_the_caller_and_disconnect_hook_runs() {
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let hub = Hub::builder(Events(events))
        .method(
            "Echo",
            |_context: CallContext<Events>, text: String| async move { Ok::<_, HubError>(text) },
        )
        .on_connected(|context: CallContext<Events>| async move {
            context
                .clients()
                .caller()
                .send("Welcome", (context.connection_id().len(),))
                .await?;
            Ok(())
        })
        .on_disconnected(|context: CallContext<Events>| async move {
            let _ = context.state().0.send(context.connection_id().to_owned());
            Ok(())
        })
        .build();
    let base = start(Router::new().map_hub("/hub", hub)).await;
    let token = common::negotiate(&base, "/hub", "?negotiateVersion=1").await;
    let connection_id = token["connectionId"].as_str().unwrap().to_owned();
    let token = token["connectionToken"].as_str().unwrap().to_owned();

    let mut client = Client::open(&base, &format!("?id={token}")).await;
    assert_eq!(
        client.recv().await,
        "{\"type\":1,\"target\":\"Welcome\",\"arguments\":[22]}"
    );
    client.send_records(&["{\"type\":7}"]).await;
    client.expect_record_then_close("{\"type\":7}").await;
    let disconnected = common::bounded("the disconnect hook", received.recv()).await;
    assert_eq!(disconnected.as_deref(), Some(connection_id.as_str()));
}
