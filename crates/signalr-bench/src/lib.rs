//! A load generator for SignalR hubs (this project's server, ASP.NET Core, or any peer that
//! serves the hub contract in the crate's README).
//!
//! The command-line tool (`src/main.rs`) parses [`Settings`], calls [`run`], prints
//! [`Report::table`] and writes the report as JSON. The scenario functions in [`scenarios`]
//! can be called directly, as the crate's tests do.
//!
//! Scenarios:
//! - [`scenarios::echo`]: connections invoking `Echo` in a closed loop, `pipeline` calls in
//!   flight per connection; invocations per second and call latency.
//! - [`scenarios::broadcast`]: receivers, and one sender calling `Broadcast` at a fixed rate;
//!   deliveries per second and delivery latency from the timestamp in each message.
//! - [`scenarios::connect`]: a connection storm; connects per second, failures, and the
//!   latency of negotiate, WebSocket connect and handshake.
//! - [`scenarios::idle`]: open connections held idle; the server's resident memory per
//!   connection.

#![warn(missing_docs)]

pub mod memory;
pub mod progress;
pub mod raw;
pub mod report;
pub mod scenarios;
pub mod stats;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::{Serialize, Serializer};

pub use report::{Report, Results};

/// Which measurement to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Closed-loop `Echo` invocations.
    Echo,
    /// One sender, many receivers.
    Broadcast,
    /// A connection storm.
    Connect,
    /// Idle connections and the server's memory.
    Idle,
}

impl Scenario {
    /// The scenario's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Echo => "echo",
            Scenario::Broadcast => "broadcast",
            Scenario::Connect => "connect",
            Scenario::Idle => "idle",
        }
    }
}

/// What a run does; see the command-line help for each field's meaning per scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// The hub URL, `http://` or `ws://` (no TLS).
    pub url: String,
    /// Connections: echo callers, broadcast receivers, connect workers, idle connections.
    pub connections: usize,
    /// How long to measure.
    #[serde(rename = "duration_secs", serialize_with = "seconds")]
    pub duration: Duration,
    /// Echo: invocations in flight per connection.
    pub pipeline: usize,
    /// Echo: drive the connections with the raw connection code ([`raw`]) instead of
    /// `signalr-client`, counting an echoed Invocation record as an answer too, so that a
    /// plain WebSocket echo server (the ceiling) and a hub are measured by the same code.
    pub raw: bool,
    /// Broadcast: messages per second (default 10). Connect: attempts per second over all
    /// workers (default: as fast as they go). Idle: connections opened per second (default:
    /// 64 at a time, as fast as they go).
    pub rate: Option<f64>,
    /// Characters in the echoed or broadcast string.
    pub payload_size: usize,
    /// MessagePack instead of JSON.
    pub messagepack: bool,
    /// Connect the WebSocket directly, without negotiate.
    pub skip_negotiation: bool,
    /// The server process whose resident memory `idle` reads.
    pub server_pid: Option<u32>,
    /// Local addresses the connections are spread over, round robin.
    pub source_ips: Vec<IpAddr>,
    /// Hub URLs the broadcast receivers (and the echo callers of `signalr-client`) connect
    /// to, round robin: several nodes of one hub on a backplane; empty: `url`. The broadcast
    /// sender always connects to `url`.
    pub receiver_urls: Vec<String>,
    /// Print a progress line to stderr every second.
    #[serde(skip)]
    pub progress: bool,
}

impl Settings {
    /// Defaults for `url`: 100 connections for 10 s, pipeline 1, 32-character payloads, JSON,
    /// negotiate, source address 127.0.0.1, progress on.
    pub fn new(url: impl Into<String>) -> Self {
        Settings {
            url: url.into(),
            connections: 100,
            duration: Duration::from_secs(10),
            pipeline: 1,
            raw: false,
            rate: None,
            payload_size: 32,
            messagepack: false,
            skip_negotiation: false,
            server_pid: None,
            source_ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            receiver_urls: Vec::new(),
            progress: true,
        }
    }

    /// The hub protocol's name in the handshake and in reports.
    pub fn protocol_name(&self) -> &'static str {
        if self.messagepack {
            "messagepack"
        } else {
            "json"
        }
    }

    /// Refuses settings no scenario can run with.
    ///
    /// # Errors
    /// Which setting is wrong.
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if self.pipeline == 0 {
            return Err("--pipeline must be at least 1".into());
        }
        if self.duration.is_zero() {
            return Err("--duration must be more than 0".into());
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err("--rate must be a positive number".into());
        }
        if self.source_ips.is_empty() {
            return Err("--source-ips needs at least one address".into());
        }
        Ok(())
    }
}

fn seconds<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// Why a run could not be done (failures of single operations are counted, not raised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchError(pub String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

impl From<String> for BenchError {
    fn from(text: String) -> Self {
        BenchError(text)
    }
}

impl From<&str> for BenchError {
    fn from(text: &str) -> Self {
        BenchError(text.to_owned())
    }
}

/// Runs `scenario` with `settings`.
///
/// # Errors
/// Settings that are wrong, or a run that could not start (no connection could be opened).
pub async fn run(scenario: Scenario, settings: &Settings) -> Result<Report, BenchError> {
    settings.validate()?;
    let started_at_unix_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let results = match scenario {
        Scenario::Echo => Results::Echo(scenarios::echo(settings).await?),
        Scenario::Broadcast => Results::Broadcast(scenarios::broadcast(settings).await?),
        Scenario::Connect => Results::Connect(scenarios::connect(settings).await?),
        Scenario::Idle => Results::Idle(scenarios::idle(settings).await?),
    };
    Ok(Report {
        scenario,
        version: env!("CARGO_PKG_VERSION"),
        started_at_unix_secs,
        settings: settings.clone(),
        results,
    })
}
