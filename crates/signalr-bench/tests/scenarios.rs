//! Each scenario, briefly, against an in-process `signalr-server` hub on 127.0.0.1 that serves
//! the bench's hub contract (`Echo`, `Broadcast` → `Receive`). These check that the scenarios
//! work and that their reports are complete; they assert no speed.

use std::net::IpAddr;
use std::time::Duration;

use axum::Router;
use signalr_bench::{Report, Results, Scenario, Settings};
use signalr_server::{CallContext, Hub, HubError, HubRouterExt};

async fn echo(_context: CallContext<()>, text: String) -> Result<String, HubError> {
    Ok(text)
}

async fn broadcast(
    context: CallContext<()>,
    sent_at_micros: i64,
    payload: String,
) -> Result<(), HubError> {
    context
        .clients()
        .all()
        .send("Receive", (sent_at_micros, payload))
        .await?;
    Ok(())
}

/// Serves the hub at `/bench`; its URL.
async fn serve() -> String {
    let hub = Hub::builder(())
        .method("Echo", echo)
        .method("Broadcast", broadcast)
        .with_messagepack()
        .build();
    let app = Router::new().map_hub("/bench", hub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/bench")
}

fn settings(url: &str, connections: usize) -> Settings {
    let mut settings = Settings::new(url);
    settings.connections = connections;
    settings.duration = Duration::from_secs(1);
    settings.progress = false;
    settings
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|ip| ip.parse().unwrap()).collect()
}

/// A run, bounded well beyond its 1 s measuring time.
async fn run(scenario: Scenario, settings: &Settings) -> Report {
    tokio::time::timeout(
        Duration::from_secs(60),
        signalr_bench::run(scenario, settings),
    )
    .await
    .expect("the run ends")
    .expect("the run succeeds")
}

fn ordered(latency: &signalr_bench::stats::LatencySummary) {
    assert!(latency.min_us <= latency.p50_us);
    assert!(latency.p50_us <= latency.p90_us);
    assert!(latency.p90_us <= latency.p99_us);
    assert!(latency.p99_us <= latency.max_us);
    assert!(latency.min_us <= latency.mean_us && latency.mean_us <= latency.max_us);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_over_both_protocols() {
    let url = serve().await;
    for messagepack in [false, true] {
        let mut settings = settings(&url, 4);
        settings.pipeline = 3;
        settings.messagepack = messagepack;
        let report = run(Scenario::Echo, &settings).await;
        let Results::Echo(results) = &report.results else {
            panic!("echo results expected");
        };
        assert_eq!(results.connections, 4);
        assert_eq!(results.connect_failures, 0);
        assert!(results.invocations > 0);
        assert_eq!(results.errors.total, 0, "{:?}", results.errors);
        let latency = results.latency.expect("latencies were recorded");
        assert_eq!(latency.count, results.invocations);
        ordered(&latency);
        assert!(results.invocations_per_sec > 0.0);

        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["scenario"], "echo");
        assert_eq!(json["settings"]["duration_secs"], 1.0);
        assert_eq!(json["settings"]["pipeline"], 3);
        assert_eq!(json["settings"]["messagepack"], messagepack);
        assert_eq!(json["results"]["invocations"], results.invocations);
        for key in ["p50_us", "p90_us", "p99_us", "max_us"] {
            assert!(json["results"]["latency"][key].as_f64().unwrap() > 0.0);
        }
        let table = report.table();
        assert!(table.contains("invocations/s"), "{table}");
        assert!(table.contains("p99"), "{table}");
    }
}

/// A plain WebSocket echo server (what `examples/ws_echo.rs` is, on tokio-tungstenite here);
/// its URL.
async fn serve_plain_echo() -> String {
    use futures_util::{SinkExt, StreamExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
                while let Some(Ok(message)) = socket.next().await {
                    if (message.is_text() || message.is_binary())
                        && socket.send(message).await.is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    format!("ws://{address}/echo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_echo_against_a_hub_and_a_plain_websocket_echo() {
    let hub = serve().await;
    let plain = serve_plain_echo().await;
    for (url, skip_negotiation, messagepack) in [
        (&hub, false, false),
        (&hub, true, true),
        (&plain, true, false),
        (&plain, true, true),
    ] {
        let mut settings = settings(url, 3);
        settings.raw = true;
        settings.pipeline = 4;
        settings.skip_negotiation = skip_negotiation;
        settings.messagepack = messagepack;
        settings.source_ips = ips(&["127.0.0.2", "127.0.0.3"]);
        let report = run(Scenario::Echo, &settings).await;
        let Results::Echo(results) = &report.results else {
            panic!("echo results expected");
        };
        assert_eq!(results.connections, 3, "{url}");
        assert!(results.invocations > 0, "{url}");
        assert_eq!(results.errors.total, 0, "{url}: {:?}", results.errors);
        let latency = results.latency.expect("latencies were recorded");
        assert_eq!(latency.count, results.invocations);
        ordered(&latency);
        assert!(report.table().contains("raw connections"));
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["settings"]["raw"], true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_delivers_every_message_to_every_receiver() {
    let url = serve().await;
    let mut settings = settings(&url, 3);
    settings.rate = Some(20.0);
    let report = run(Scenario::Broadcast, &settings).await;
    let Results::Broadcast(results) = &report.results else {
        panic!("broadcast results expected");
    };
    assert_eq!(results.receivers, 3);
    assert_eq!(results.target_rate, 20.0);
    assert!(results.messages_sent > 0);
    assert_eq!(results.send_errors.total, 0);
    assert_eq!(results.expected_deliveries, results.messages_sent * 3);
    assert_eq!(results.deliveries, results.expected_deliveries);
    assert_eq!(results.missing_deliveries, 0);
    let latency = results.latency.expect("latencies were recorded");
    assert_eq!(latency.count, results.deliveries);
    ordered(&latency);
    assert!(results.deliveries_per_sec > 0.0);

    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["scenario"], "broadcast");
    assert_eq!(json["results"]["deliveries"], results.deliveries);
    assert!(json["results"]["latency"]["p99_us"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_storm_from_two_source_addresses() {
    let url = serve().await;
    let mut settings = settings(&url, 2);
    settings.source_ips = ips(&["127.0.0.1", "127.0.0.2"]);
    let report = run(Scenario::Connect, &settings).await;
    let Results::Connect(results) = &report.results else {
        panic!("connect results expected");
    };
    assert_eq!(results.workers, 2);
    assert_eq!(results.source_ips, 2);
    assert!(results.connects > 0);
    assert_eq!(results.failures.total, 0, "{:?}", results.failures);
    assert_eq!(results.attempts, results.connects + results.failures.total);
    for latency in [
        results.latency,
        results.negotiate_latency,
        results.connect_latency,
        results.handshake_latency,
    ] {
        let latency = latency.expect("latencies were recorded");
        assert_eq!(latency.count, results.connects);
        ordered(&latency);
    }
    assert!(results.connects_per_sec > 0.0);

    // Rate-limited, MessagePack, without negotiate: no negotiate step to time.
    settings.rate = Some(20.0);
    settings.messagepack = true;
    settings.skip_negotiation = true;
    let report = run(Scenario::Connect, &settings).await;
    let Results::Connect(results) = &report.results else {
        panic!("connect results expected");
    };
    assert!(results.connects > 0);
    assert_eq!(results.failures.total, 0, "{:?}", results.failures);
    assert!(results.negotiate_latency.is_none());
    assert!(results.handshake_latency.is_some());
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["scenario"], "connect");
    assert!(json["results"]["negotiate_latency"].is_null());
    assert_eq!(json["results"]["target_rate"], 20.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_stay_open_and_memory_is_read() {
    let url = serve().await;
    let mut settings = settings(&url, 6);
    settings.source_ips = ips(&["127.0.0.2", "127.0.0.3"]);
    // The server runs in this process, so its memory is this process's.
    settings.server_pid = Some(std::process::id());
    let report = run(Scenario::Idle, &settings).await;
    let Results::Idle(results) = &report.results else {
        panic!("idle results expected");
    };
    assert_eq!(results.requested, 6);
    assert_eq!(results.opened, 6);
    assert_eq!(
        results.open_failures.total, 0,
        "{:?}",
        results.open_failures
    );
    assert_eq!(results.dropped.total, 0, "{:?}", results.dropped);
    assert_eq!(results.still_open, 6);
    assert!(results.held_secs >= 1.0);
    assert_eq!(results.open_latency.map(|latency| latency.count), Some(6));
    let memory = results.memory.as_ref().expect("memory was read");
    assert_eq!(memory.server_pid, std::process::id());
    assert!(memory.rss_before_kib > 0 && memory.rss_end_kib > 0);
    assert!(memory.rss_peak_kib >= memory.rss_end_kib);
    assert!(memory.bytes_per_connection.is_some());

    // Without a pid there is no memory section.
    settings.server_pid = None;
    settings.connections = 2;
    let report = run(Scenario::Idle, &settings).await;
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["scenario"], "idle");
    assert_eq!(json["results"]["opened"], 2);
    assert!(json["results"]["memory"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_is_not_there_is_an_error() {
    // Bind a port, then free it, so that nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let settings = settings(&format!("http://{address}/bench"), 2);
    let error = signalr_bench::run(Scenario::Echo, &settings)
        .await
        .expect_err("nothing to connect to");
    assert!(
        error.0.starts_with("no connection could be opened"),
        "{error}"
    );

    let mut bad = settings.clone();
    bad.pipeline = 0;
    assert!(signalr_bench::run(Scenario::Echo, &bad).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_tool_prints_a_table_and_writes_json() {
    let url = serve().await;
    let path = std::env::temp_dir().join(format!("signalr-bench-{}.json", std::process::id()));
    let arguments = vec![
        "echo".to_owned(),
        "--url".to_owned(),
        url,
        "--connections".to_owned(),
        "2".to_owned(),
        "--duration".to_owned(),
        "1".to_owned(),
        "--threads".to_owned(),
        "1".to_owned(),
        "--json".to_owned(),
        path.display().to_string(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_signalr-bench"))
            .args(arguments)
            .output()
            .unwrap()
    });
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the tool ends")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("scenario "), "{stdout}");
    assert!(stdout.contains("invocations/s"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(json["scenario"], "echo");
    assert_eq!(json["settings"]["connections"], 2);
    assert!(json["results"]["invocations"].as_u64().unwrap() > 0);
}
