//! `signalr-bench`: a load generator for SignalR hubs. See the crate's README for the hub
//! contract the scenarios expect.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use signalr_bench::{Scenario, Settings};

/// Load generator for SignalR hubs: echo, broadcast, connection storm, idle memory.
///
/// Prints a status line to stderr every second, a summary table to stdout at the end, and
/// with --json writes the full report (every figure, latencies in microseconds).
#[derive(Debug, Parser)]
#[command(name = "signalr-bench", version)]
struct Cli {
    /// What to measure.
    #[arg(value_enum)]
    scenario: Scenario,

    /// The hub URL, http:// or ws:// (for example http://127.0.0.1:5000/hub).
    #[arg(long)]
    url: String,

    /// echo: calling connections; broadcast: receivers (plus one sender); connect: concurrent
    /// workers; idle: connections to hold open.
    #[arg(long, default_value_t = 100)]
    connections: usize,

    /// Measuring time in seconds (fractions allowed). idle: how long to hold the connections
    /// once all are open.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,

    /// echo: invocations in flight per connection.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,

    /// echo: use the bench's raw WebSocket connections (as connect and idle do) instead of
    /// signalr-client; an Invocation record echoed back unchanged also counts as the answer,
    /// so a plain WebSocket echo server (with --skip-negotiation) is measured by the same
    /// code as a hub.
    #[arg(long)]
    raw: bool,

    /// broadcast: messages per second (default 10); connect: attempts per second over all
    /// workers (default: unlimited); idle: connections opened per second (default: as fast
    /// as 64 concurrent opens go).
    #[arg(long)]
    rate: Option<f64>,

    /// Characters in the echoed or broadcast string.
    #[arg(long, default_value_t = 32)]
    payload_size: usize,

    /// Speak the MessagePack hub protocol instead of JSON.
    #[arg(long)]
    messagepack: bool,

    /// Connect the WebSocket directly, without negotiate (the server must allow it).
    #[arg(long)]
    skip_negotiation: bool,

    /// The server's process id; idle reads its resident memory from /proc/<pid>/status.
    #[arg(long)]
    server_pid: Option<u32>,

    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,

    /// Local addresses of the connections, comma-separated, used round robin (each has about
    /// 28 000 ephemeral ports).
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    source_ips: Vec<IpAddr>,

    /// Hub URLs the broadcast receivers (or the echo callers of signalr-client) connect to,
    /// comma-separated, round robin: nodes of one hub on a backplane (default: --url). The
    /// broadcast sender connects to --url.
    #[arg(long, value_delimiter = ',')]
    receiver_urls: Vec<String>,

    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,

    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !(cli.duration.is_finite() && cli.duration > 0.0) {
        eprintln!("error: --duration must be a positive number of seconds");
        return ExitCode::from(2);
    }
    let settings = Settings {
        url: cli.url,
        connections: cli.connections,
        duration: Duration::from_secs_f64(cli.duration),
        pipeline: cli.pipeline,
        raw: cli.raw,
        rate: cli.rate,
        payload_size: cli.payload_size,
        messagepack: cli.messagepack,
        skip_negotiation: cli.skip_negotiation,
        server_pid: cli.server_pid,
        source_ips: cli.source_ips,
        receiver_urls: cli.receiver_urls,
        progress: !cli.quiet,
    };
    if let Err(error) = settings.validate() {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = cli.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = match runtime.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(signalr_bench::run(cli.scenario, &settings)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    if let Some(path) = &cli.json {
        if let Err(error) = report.write_json(path) {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
        eprintln!("report written to {}", path.display());
    }
    // Connections still closing in the background are not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_parses() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "signalr-bench",
            "echo",
            "--url",
            "http://127.0.0.1:5000/hub",
            "--connections",
            "7",
            "--duration",
            "0.5",
            "--pipeline",
            "4",
            "--messagepack",
            "--source-ips",
            "127.0.0.1,127.0.0.2",
            "--json",
            "out.json",
        ])
        .unwrap();
        assert_eq!(cli.scenario, Scenario::Echo);
        assert_eq!(cli.connections, 7);
        assert_eq!(cli.duration, 0.5);
        assert_eq!(cli.pipeline, 4);
        assert!(cli.messagepack);
        assert_eq!(cli.source_ips.len(), 2);
        assert_eq!(cli.json, Some(PathBuf::from("out.json")));

        let cli = Cli::try_parse_from([
            "signalr-bench",
            "idle",
            "--url",
            "ws://h/hub",
            "--server-pid",
            "42",
        ])
        .unwrap();
        assert_eq!(cli.scenario, Scenario::Idle);
        assert_eq!(cli.server_pid, Some(42));
        assert_eq!(cli.source_ips, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert!(Cli::try_parse_from(["signalr-bench", "flood", "--url", "x"]).is_err());
    }
}
