//! The WebSocket transport and the connection rules: handshake, keep-alive, client timeout,
//! message size limit, frame types and close codes (PROTOCOL.md §3.2, §4, §10).

mod common;

use std::time::Duration;

use axum::Router;
use signalr_server::{CallContext, Hub, HubError, HubOptions, HubRouterExt};

use common::{Client, Frame, JSON_HANDSHAKE, RS, start, ws_base};

const CLOSE_WITH_ERROR: &str =
    "{\"type\":7,\"error\":\"Connection closed with an error.\",\"allowReconnect\":true}";

async fn echo(_context: CallContext<()>, text: String) -> Result<String, HubError> {
    Ok(text)
}

async fn sleep(_context: CallContext<()>, milliseconds: u64) -> Result<(), HubError> {
    tokio::time::sleep(Duration::from_millis(milliseconds)).await;
    Ok(())
}

fn app(options: HubOptions) -> Router {
    let hub = Hub::builder(())
        .method("Echo", echo)
        .method("Sleep", sleep)
        .options(options)
        .build();
    Router::new().map_hub("/hub", hub)
}

async fn server(options: HubOptions) -> String {
    start(app(options)).await
}

fn detailed() -> HubOptions {
    HubOptions {
        enable_detailed_errors: true,
        ..Default::default()
    }
}

/// A socket to `/hub` on which nothing was sent yet.
async fn raw(base: &str) -> Client {
    Client::connect(&format!("{}/hub", ws_base(base))).await
}

/// Sends `handshake` and expects the error response, then the close with 1000.
async fn expect_handshake_error(base: &str, handshake: &str, error: &str) {
    let mut client = raw(base).await;
    client.send_text(handshake).await;
    let expected = serde_json::json!({ "error": error }).to_string();
    match client.next_frame().await {
        Frame::Text(text) => assert_eq!(text, format!("{expected}{RS}")),
        other => panic!("expected the handshake error, got {other:?}"),
    }
    assert_eq!(client.expect_close().await, Some(1000));
}

// ---------------------------------------------------------------------------------------------
// Handshake (§4)

#[tokio::test]
async fn handshake_response_is_exactly_empty_object() {
    let base = server(HubOptions::default()).await;
    let mut client = raw(&base).await;
    client.send_text(JSON_HANDSHAKE).await;
    assert_eq!(client.next_frame().await, Frame::Text(format!("{{}}{RS}")));
}

#[tokio::test]
async fn handshake_versions_0_1_and_2_are_accepted() {
    let base = server(HubOptions::default()).await;
    for version in 0..=2 {
        let mut client = raw(&base).await;
        client
            .send_text(&format!(
                "{{\"protocol\":\"json\",\"version\":{version}}}{RS}"
            ))
            .await;
        assert_eq!(client.recv().await, "{}", "version {version}");
        assert_eq!(
            client.call("1", "Echo", "[\"v\"]").await,
            "{\"type\":3,\"invocationId\":\"1\",\"result\":\"v\"}"
        );
    }
}

#[tokio::test]
async fn handshake_protocol_name_is_case_insensitive() {
    let base = server(HubOptions::default()).await;
    let mut client = raw(&base).await;
    client
        .send_text(&format!("{{\"protocol\":\"JSON\",\"version\":1}}{RS}"))
        .await;
    assert_eq!(client.recv().await, "{}");
}

#[tokio::test]
async fn handshake_unknown_protocol_is_refused_then_closed() {
    let base = server(HubOptions::default()).await;
    expect_handshake_error(
        &base,
        &format!("{{\"protocol\":\"foo\",\"version\":1}}{RS}"),
        "The protocol 'foo' is not supported.",
    )
    .await;
}

#[tokio::test]
async fn handshake_version_3_is_refused() {
    let base = server(HubOptions::default()).await;
    expect_handshake_error(
        &base,
        &format!("{{\"protocol\":\"json\",\"version\":3}}{RS}"),
        "The server does not support version 3 of the 'json' protocol.",
    )
    .await;
}

#[tokio::test]
async fn handshake_missing_protocol_is_a_generic_error() {
    let base = server(HubOptions::default()).await;
    expect_handshake_error(
        &base,
        &format!("{{\"version\":1}}{RS}"),
        "An unexpected error occurred during connection handshake.",
    )
    .await;
}

#[tokio::test]
async fn handshake_missing_protocol_with_detailed_errors() {
    let base = server(detailed()).await;
    expect_handshake_error(
        &base,
        &format!("{{\"version\":1}}{RS}"),
        "An unexpected error occurred during connection handshake. InvalidDataException: \
         Missing required property 'protocol'. Message content: {\"version\":1}",
    )
    .await;
}

#[tokio::test]
async fn handshake_malformed_json_is_a_generic_error() {
    let base = server(HubOptions::default()).await;
    expect_handshake_error(
        &base,
        &format!("not json{RS}"),
        "An unexpected error occurred during connection handshake.",
    )
    .await;
}

#[tokio::test]
async fn handshake_timeout_cancels_the_handshake() {
    let base = server(HubOptions {
        handshake_timeout: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    let mut client = raw(&base).await;
    match client.next_frame().await {
        Frame::Text(text) => assert_eq!(
            text,
            format!("{{\"error\":\"Handshake was canceled.\"}}{RS}")
        ),
        other => panic!("expected the handshake error, got {other:?}"),
    }
    assert_eq!(client.expect_close().await, Some(1000));
}

#[tokio::test]
async fn handshake_larger_than_the_size_limit_is_canceled() {
    let base = server(HubOptions {
        maximum_receive_message_size: Some(64),
        ..Default::default()
    })
    .await;
    let mut client = raw(&base).await;
    // No separator within the limit.
    client
        .send_text(&format!(
            "{{\"protocol\":\"json\",\"version\":1,\"pad\":\"{}\"",
            "x".repeat(100)
        ))
        .await;
    match client.next_frame().await {
        Frame::Text(text) => assert_eq!(
            text,
            format!("{{\"error\":\"Handshake was canceled.\"}}{RS}")
        ),
        other => panic!("expected the handshake error, got {other:?}"),
    }
    assert_eq!(client.expect_close().await, Some(1000));
}

#[tokio::test]
async fn handshake_split_over_two_frames() {
    let base = server(HubOptions::default()).await;
    let mut client = raw(&base).await;
    client.send_text("{\"protocol\":\"js").await;
    client.send_text(&format!("on\",\"version\":1}}{RS}")).await;
    assert_eq!(client.recv().await, "{}");
    assert_eq!(
        client.call("1", "Echo", "[\"split\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"split\"}"
    );
}

#[tokio::test]
async fn handshake_followed_by_ping_in_the_same_frame() {
    let base = server(HubOptions::default()).await;
    let mut client = raw(&base).await;
    client
        .send_text(&format!("{JSON_HANDSHAKE}{{\"type\":6}}{RS}"))
        .await;
    assert_eq!(client.recv().await, "{}");
    assert_eq!(
        client.call("1", "Echo", "[\"after ping\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"after ping\"}"
    );
}

#[tokio::test]
async fn handshake_followed_by_invocation_in_the_same_frame() {
    let base = server(HubOptions::default()).await;
    let mut client = raw(&base).await;
    client
        .send_text(&format!(
            "{JSON_HANDSHAKE}{{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"same\"]}}{RS}"
        ))
        .await;
    assert_eq!(client.recv().await, "{}");
    assert_eq!(
        client.recv().await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"same\"}"
    );
}

#[tokio::test]
async fn ping_in_the_handshake_frame_starts_the_client_timeout() {
    // The client timeout only runs after the first client Ping; here the only Ping shares the
    // handshake's frame, so the timeout firing proves the Ping was read.
    let base = server(HubOptions {
        client_timeout_interval: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let mut client = raw(&base).await;
    client
        .send_text(&format!("{JSON_HANDSHAKE}{{\"type\":6}}{RS}"))
        .await;
    assert_eq!(client.recv().await, "{}");
    client.expect_record_then_close(CLOSE_WITH_ERROR).await;
}

#[tokio::test]
async fn closing_before_the_handshake_sends_nothing() {
    let base = server(HubOptions::default()).await;
    let mut client = raw(&base).await;
    client.close_socket(1000).await;
    assert_eq!(client.expect_close().await, Some(1000));
}

// ---------------------------------------------------------------------------------------------
// Keep-alive and client timeout (§10)

#[tokio::test]
async fn server_sends_keep_alive_pings() {
    let base = server(HubOptions {
        keep_alive_interval: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    let mut client = Client::open(&base, "").await;
    assert_eq!(client.recv().await, "{\"type\":6}");
    assert_eq!(client.recv().await, "{\"type\":6}");
}

#[tokio::test]
async fn client_timeout_after_the_first_ping() {
    let base = server(HubOptions {
        client_timeout_interval: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let mut client = Client::open(&base, "").await;
    client.send_records(&["{\"type\":6}"]).await;
    client.expect_record_then_close(CLOSE_WITH_ERROR).await;
}

#[tokio::test]
async fn client_timeout_with_detailed_errors() {
    let base = server(HubOptions {
        client_timeout_interval: Duration::from_millis(300),
        enable_detailed_errors: true,
        ..Default::default()
    })
    .await;
    let mut client = Client::open(&base, "").await;
    client.send_records(&["{\"type\":6}"]).await;
    let close = client.recv_json().await;
    assert_eq!(
        close,
        serde_json::json!({
            "type": 7,
            "error": "Connection closed with an error. OperationCanceledException: Client hasn't \
                      sent a message/ping within the configured ClientTimeoutInterval.",
            "allowReconnect": true,
        })
    );
    assert_eq!(client.expect_close().await, Some(1000));
}

#[tokio::test]
async fn no_client_timeout_before_the_first_ping() {
    let base = server(HubOptions {
        client_timeout_interval: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let mut client = Client::open(&base, "").await;
    // Twice the timeout without a single message: the client never pinged, so no timeout.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        client.call("1", "Echo", "[\"still here\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"still here\"}"
    );
}

#[tokio::test]
async fn client_timeout_clock_pauses_while_a_message_is_dispatched() {
    let base = server(HubOptions {
        client_timeout_interval: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let mut client = Client::open(&base, "").await;
    // With one invocation at a time, the second call waits 600 ms for the first one's slot,
    // holding the receive loop; that time does not count against the client.
    client
        .send_records(&[
            "{\"type\":6}",
            "{\"type\":1,\"invocationId\":\"1\",\"target\":\"Sleep\",\"arguments\":[600]}",
            "{\"type\":1,\"invocationId\":\"2\",\"target\":\"Echo\",\"arguments\":[\"x\"]}",
        ])
        .await;
    assert_eq!(client.recv().await, "{\"type\":3,\"invocationId\":\"1\"}");
    assert_eq!(
        client.recv().await,
        "{\"type\":3,\"invocationId\":\"2\",\"result\":\"x\"}"
    );
    // Afterwards the timeout applies again.
    client.expect_record_then_close(CLOSE_WITH_ERROR).await;
}

#[tokio::test]
async fn no_pings_before_the_handshake() {
    let base = server(HubOptions {
        keep_alive_interval: Duration::from_millis(50),
        handshake_timeout: Duration::from_millis(400),
        ..Default::default()
    })
    .await;
    let mut client = raw(&base).await;
    assert_eq!(
        client.next_frame().await,
        Frame::Text(format!("{{\"error\":\"Handshake was canceled.\"}}{RS}"))
    );
    assert_eq!(client.expect_close().await, Some(1000));
}

#[tokio::test]
async fn messages_keep_the_client_timeout_from_firing() {
    let base = server(HubOptions {
        client_timeout_interval: Duration::from_millis(400),
        ..Default::default()
    })
    .await;
    let mut client = Client::open(&base, "").await;
    client.send_records(&["{\"type\":6}"]).await;
    // Ping every 100 ms for a full second: each message restarts the timer.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.send_records(&["{\"type\":6}"]).await;
    }
    assert_eq!(
        client.call("1", "Echo", "[\"alive\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"alive\"}"
    );
}

// ---------------------------------------------------------------------------------------------
// Message size limit (§10)

fn oversized_invocation() -> String {
    let padding = "x".repeat(1937);
    let record = format!(
        "{{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"{padding}\"]}}"
    );
    // 2000 bytes with the separator.
    assert_eq!(record.len() + 1, 2000);
    record
}

#[tokio::test]
async fn message_over_the_size_limit_closes_the_connection() {
    let base = server(HubOptions {
        maximum_receive_message_size: Some(1024),
        ..Default::default()
    })
    .await;
    let mut victim = Client::open(&base, "").await;
    let mut bystander = Client::open(&base, "").await;

    victim.send_records(&[&oversized_invocation()]).await;
    victim.expect_record_then_close(CLOSE_WITH_ERROR).await;

    assert_eq!(
        bystander.call("1", "Echo", "[\"unaffected\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"unaffected\"}"
    );
    // A message under the limit is fine.
    let fits = "y".repeat(900);
    assert_eq!(
        bystander.call("2", "Echo", &format!("[\"{fits}\"]")).await,
        format!("{{\"type\":3,\"invocationId\":\"2\",\"result\":\"{fits}\"}}")
    );
}

#[tokio::test]
async fn message_over_the_size_limit_with_detailed_errors() {
    let base = server(HubOptions {
        maximum_receive_message_size: Some(1024),
        enable_detailed_errors: true,
        ..Default::default()
    })
    .await;
    let mut client = Client::open(&base, "").await;
    client.send_records(&[&oversized_invocation()]).await;
    let close = client.recv_json().await;
    assert_eq!(
        close,
        serde_json::json!({
            "type": 7,
            "error": "Connection closed with an error. InvalidDataException: The maximum message \
                      size of 1024B was exceeded. The message size can be configured in \
                      AddHubOptions.",
            "allowReconnect": true,
        })
    );
    assert_eq!(client.expect_close().await, Some(1000));
}

/// An Echo invocation whose record, separator included, is `size` bytes.
fn echo_of_size(id: &str, size: usize) -> (String, String) {
    let overhead = format!(
        "{{\"type\":1,\"invocationId\":\"{id}\",\"target\":\"Echo\",\"arguments\":[\"\"]}}"
    )
    .len()
        + 1;
    let text = "p".repeat(size - overhead);
    let record = format!(
        "{{\"type\":1,\"invocationId\":\"{id}\",\"target\":\"Echo\",\"arguments\":[\"{text}\"]}}"
    );
    assert_eq!(record.len() + 1, size);
    (record, text)
}

#[tokio::test]
async fn message_of_exactly_the_size_limit_is_accepted() {
    let base = server(HubOptions {
        maximum_receive_message_size: Some(1024),
        ..Default::default()
    })
    .await;
    let mut client = Client::open(&base, "").await;
    let (record, text) = echo_of_size("1", 1024);
    client.send_records(&[&record]).await;
    assert_eq!(
        client.recv().await,
        format!("{{\"type\":3,\"invocationId\":\"1\",\"result\":\"{text}\"}}")
    );
    // One byte more is too much.
    let (record, _) = echo_of_size("2", 1025);
    client.send_records(&[&record]).await;
    client.expect_record_then_close(CLOSE_WITH_ERROR).await;
}

#[tokio::test]
async fn default_size_limit_is_32_kib() {
    let base = server(HubOptions::default()).await;
    let mut client = Client::open(&base, "").await;
    let (record, text) = echo_of_size("1", 32 * 1024);
    client.send_records(&[&record]).await;
    assert_eq!(
        client.recv().await,
        format!("{{\"type\":3,\"invocationId\":\"1\",\"result\":\"{text}\"}}")
    );
    let (record, _) = echo_of_size("2", 32 * 1024 + 1);
    client.send_records(&[&record]).await;
    client.expect_record_then_close(CLOSE_WITH_ERROR).await;
}

#[tokio::test]
async fn no_size_limit_when_none() {
    let base = server(HubOptions {
        maximum_receive_message_size: None,
        ..Default::default()
    })
    .await;
    let mut client = Client::open(&base, "").await;
    let (record, text) = echo_of_size("1", 200 * 1024);
    client.send_records(&[&record]).await;
    assert_eq!(
        client.recv().await,
        format!("{{\"type\":3,\"invocationId\":\"1\",\"result\":\"{text}\"}}")
    );
}

#[tokio::test]
async fn message_over_the_limit_split_across_frames_closes() {
    let base = server(HubOptions {
        maximum_receive_message_size: Some(1024),
        ..Default::default()
    })
    .await;
    let mut client = Client::open(&base, "").await;
    let (record, _) = echo_of_size("1", 1200);
    client.send_text(&record[..600]).await;
    client.send_text(&format!("{}{RS}", &record[600..])).await;
    client.expect_record_then_close(CLOSE_WITH_ERROR).await;
}

#[tokio::test]
async fn message_far_over_the_size_limit_closes_with_the_size_error() {
    // The same rule as for a 2000-byte message, for a 512 KiB one (still within what one frame
    // may carry).
    let base = server(HubOptions {
        maximum_receive_message_size: Some(1024),
        enable_detailed_errors: true,
        ..Default::default()
    })
    .await;
    let mut client = Client::open(&base, "").await;
    let (record, _) = echo_of_size("1", 512 << 10);
    client.send_records(&[&record]).await;
    assert_eq!(
        client.recv().await,
        "{\"type\":7,\"error\":\"Connection closed with an error. InvalidDataException: The \
         maximum message size of 1024B was exceeded. The message size can be configured in \
         AddHubOptions.\",\"allowReconnect\":true}"
    );
    assert_eq!(client.expect_close().await, Some(1000));
}

#[tokio::test]
async fn a_frame_of_many_messages_may_be_far_larger_than_one_message() {
    // The limit applies to each message; clients batch queued messages into one frame, which
    // may hold up to 1 MiB (64 messages of the largest size, at least 1 MiB).
    let base = server(HubOptions {
        maximum_receive_message_size: Some(1024),
        ..Default::default()
    })
    .await;
    let mut client = Client::open(&base, "").await;
    let count = 900;
    let records: Vec<String> = (0..count)
        .map(|id| echo_of_size(&id.to_string(), 1000).0)
        .collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    client.send_records(&refs).await;
    for id in 0..count {
        let completion = client.recv_json().await;
        assert_eq!(completion["invocationId"], id.to_string(), "{completion}");
        assert!(completion["result"].is_string(), "{completion}");
    }
}

#[tokio::test]
async fn many_small_messages_in_one_frame_may_exceed_the_limit_together() {
    // The limit is per message, not per frame.
    let base = server(HubOptions {
        maximum_receive_message_size: Some(1024),
        ..Default::default()
    })
    .await;
    let mut client = Client::open(&base, "").await;
    let text = "z".repeat(200);
    let records: Vec<String> = (1..=10)
        .map(|id| {
            format!(
                "{{\"type\":1,\"invocationId\":\"{id}\",\"target\":\"Echo\",\"arguments\":[\"{text}\"]}}"
            )
        })
        .collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    client.send_records(&refs).await;
    for id in 1..=10 {
        assert_eq!(
            client.recv().await,
            format!("{{\"type\":3,\"invocationId\":\"{id}\",\"result\":\"{text}\"}}")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Frames and close codes (§3.2)

#[tokio::test]
async fn json_messages_travel_in_text_frames() {
    let base = server(HubOptions {
        keep_alive_interval: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    let ping = Frame::Text(format!("{{\"type\":6}}{RS}"));
    let mut client = raw(&base).await;
    let mut frames = Vec::new();
    client.send_text(JSON_HANDSHAKE).await;
    frames.push(client.next_frame().await);
    // A binary frame carrying JSON is read the same way as a text frame.
    client
        .send_binary(
            b"{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"b\"]}\x1e",
        )
        .await;
    // Read up to and including a keep-alive ping.
    loop {
        let frame = client.next_frame().await;
        let is_ping = frame == ping;
        frames.push(frame);
        if is_ping {
            break;
        }
    }
    client.send_text(&format!("{{\"type\":7}}{RS}")).await;
    loop {
        let frame = client.next_frame().await;
        let done = matches!(frame, Frame::Close(..) | Frame::Ended);
        frames.push(frame);
        if done {
            break;
        }
    }
    assert_eq!(
        frames.last(),
        Some(&Frame::Close(Some(1000), String::new()))
    );
    let data: Vec<&Frame> = frames[..frames.len() - 1]
        .iter()
        .filter(|frame| **frame != ping)
        .collect();
    assert_eq!(
        data,
        [
            &Frame::Text(format!("{{}}{RS}")),
            &Frame::Text(format!(
                "{{\"type\":3,\"invocationId\":\"1\",\"result\":\"b\"}}{RS}"
            )),
            &Frame::Text(format!("{{\"type\":7}}{RS}")),
        ]
    );
}

#[tokio::test]
async fn server_closes_with_1000_when_the_client_closes_the_socket() {
    let base = server(HubOptions::default()).await;
    let mut client = Client::open(&base, "").await;
    client.close_socket(1000).await;
    // The server may still manage to send its Close message before the close frame.
    loop {
        match client.next_frame().await {
            Frame::Text(text) => {
                assert_eq!(text, format!("{{\"type\":7,\"allowReconnect\":true}}{RS}"))
            }
            Frame::Close(code, _) => {
                assert_eq!(code, Some(1000));
                break;
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn server_closes_with_1000_after_a_close_message() {
    let base = server(HubOptions::default()).await;
    let mut client = Client::open(&base, "").await;
    client.send_records(&["{\"type\":7}"]).await;
    client.expect_record_then_close("{\"type\":7}").await;
    assert_eq!(client.next_frame().await, Frame::Ended);
}

#[tokio::test]
async fn close_message_with_an_error_from_the_client_is_answered_without_error() {
    let base = server(HubOptions::default()).await;
    let mut client = Client::open(&base, "").await;
    client
        .send_records(&["{\"type\":7,\"error\":\"client went away\",\"allowReconnect\":true}"])
        .await;
    client.expect_record_then_close("{\"type\":7}").await;
}
