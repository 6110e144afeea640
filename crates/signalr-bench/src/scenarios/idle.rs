//! `idle`: opens `connections` hub connections (negotiate, WebSocket, handshake;
//! [`OPEN_CONCURRENCY`](super::OPEN_CONCURRENCY) at a time, or `rate` a second), holds them
//! open for the measuring time with only keep-alive Pings, and reads the server's resident
//! memory (`VmRSS` of `/proc/<server-pid>/status`) before opening, once all are open, and at
//! the end. Memory per connection is `(end − before) / connections still open at the end`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{GRACE, OPEN_CONCURRENCY};
use crate::memory::resident_kib;
use crate::progress::Progress;
use crate::raw::{Connector, HoldEnd};
use crate::report::{count, errors_row, latency_row, rate};
use crate::stats::{Counter, ErrorSamples, LatencyRecorder, LatencySummary, per_second};
use crate::{BenchError, Settings};

/// How often an idle connection sends a Ping: half the server's default client timeout.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The server's resident memory during `idle`.
#[derive(Debug, Clone, Serialize)]
pub struct IdleMemory {
    /// The process read.
    pub server_pid: u32,
    /// Before any connection opened.
    pub rss_before_kib: u64,
    /// Once every connection had opened (or failed).
    pub rss_opened_kib: u64,
    /// At the end of the measuring time.
    pub rss_end_kib: u64,
    /// The most seen in the once-a-second readings.
    pub rss_peak_kib: u64,
    /// `(rss_end − rss_before) / still_open`, in bytes; absent without open connections.
    pub bytes_per_connection: Option<f64>,
}

/// What `idle` measured.
#[derive(Debug, Clone, Serialize)]
pub struct IdleResults {
    /// Connections asked for.
    pub requested: usize,
    /// Local addresses the connections came from.
    pub source_ips: usize,
    /// Connections that opened.
    pub opened: u64,
    /// Connections that did not open, by step.
    pub open_failures: ErrorSamples,
    /// How long opening took.
    pub open_secs: f64,
    /// `opened / open_secs`.
    pub opens_per_sec: f64,
    /// Negotiate + connect + handshake of each opened connection.
    pub open_latency: Option<LatencySummary>,
    /// How long the connections were held after opening.
    pub held_secs: f64,
    /// Connections the server closed (or that broke) while held.
    pub dropped: ErrorSamples,
    /// Connections open at the end.
    pub still_open: u64,
    /// The server's memory; absent without `--server-pid` or when it could not be read.
    pub memory: Option<IdleMemory>,
}

impl IdleResults {
    pub(crate) fn rows(&self) -> Vec<(String, String)> {
        let memory = match &self.memory {
            None => vec![("server memory".into(), "not read (no --server-pid)".into())],
            Some(memory) => vec![
                (
                    "server memory".into(),
                    format!(
                        "{} KiB before, {} KiB opened, {} KiB at the end (peak {} KiB)",
                        count(memory.rss_before_kib),
                        count(memory.rss_opened_kib),
                        count(memory.rss_end_kib),
                        count(memory.rss_peak_kib)
                    ),
                ),
                (
                    "memory per connection".into(),
                    memory.bytes_per_connection.map_or_else(
                        || "-".into(),
                        |bytes| format!("{:.0} bytes ({:.2} KiB)", bytes, bytes / 1024.0),
                    ),
                ),
            ],
        };
        let mut rows = vec![
            (
                "connections".into(),
                format!(
                    "{} asked, {} opened from {} source addresses, {} still open at the end",
                    count(self.requested as u64),
                    count(self.opened),
                    self.source_ips,
                    count(self.still_open)
                ),
            ),
            (
                "opening".into(),
                format!(
                    "{:.2} s ({} connections/s)",
                    self.open_secs,
                    rate(self.opens_per_sec)
                ),
            ),
            latency_row("open latency", &self.open_latency),
            errors_row("open failures", &self.open_failures),
            errors_row("dropped while held", &self.dropped),
        ];
        rows.extend(memory);
        rows
    }
}

/// Runs `idle`.
///
/// # Errors
/// A URL that cannot be used, or no connection could be opened.
pub async fn idle(settings: &Settings) -> Result<IdleResults, BenchError> {
    let connector = Arc::new(Connector::new(settings).await?);
    let pid = settings.server_pid;
    let rss = move || pid.and_then(resident_kib);
    let rss_before = rss();
    let peak = Arc::new(Mutex::new(rss_before));
    let open = Counter::new();
    let dropped = Arc::new(Mutex::new(ErrorSamples::default()));
    let progress = {
        let open = open.clone();
        let peak = peak.clone();
        let dropped = dropped.clone();
        Progress::start(settings.progress, "idle", move || {
            let now = rss();
            let mut peak = peak.lock().expect("lock");
            *peak = (*peak).max(now);
            let memory = now.map_or_else(String::new, |kib| format!(", server {} KiB", count(kib)));
            format!(
                "{} open, {} dropped{memory}",
                count(open.get()),
                dropped.lock().expect("lock").total
            )
        })
    };

    let stop = CancellationToken::new();
    let opening = Instant::now();
    let mut open_failures = ErrorSamples::default();
    let mut latencies = LatencyRecorder::new();
    let mut holders = Vec::with_capacity(settings.connections);
    let mut attempts = futures_util::stream::iter(0..settings.connections)
        .map(|index| {
            let connector = connector.clone();
            let at = settings
                .rate
                .map(|rate| opening + Duration::from_secs_f64(index as f64 / rate));
            async move {
                if let Some(at) = at {
                    tokio::time::sleep_until(at.into()).await;
                }
                connector.open().await
            }
        })
        .buffer_unordered(OPEN_CONCURRENCY);
    while let Some(attempt) = attempts.next().await {
        match attempt {
            Ok((connection, timings)) => {
                latencies.record(timings.total());
                open.increment();
                let stop = stop.clone();
                let open = open.clone();
                let dropped = dropped.clone();
                holders.push(tokio::spawn(async move {
                    if let HoldEnd::Dropped(why) = connection.hold(stop, KEEP_ALIVE).await {
                        open.decrement();
                        dropped.lock().expect("lock").record("dropped", why);
                    }
                }));
            }
            Err(failure) => open_failures.record(failure.kind(), failure),
        }
    }
    drop(attempts);
    let open_time = opening.elapsed();
    let opened = holders.len() as u64;
    if opened == 0 {
        drop(progress);
        let first = open_failures.examples.first().cloned().unwrap_or_default();
        return Err(BenchError(format!(
            "no connection could be opened ({first})"
        )));
    }
    let rss_opened = rss();

    let holding = Instant::now();
    tokio::time::sleep(settings.duration).await;
    let rss_end = rss();
    let still_open = open.get();
    let held = holding.elapsed();
    drop(progress);

    stop.cancel();
    let closing = futures_util::future::join_all(holders);
    let _ = tokio::time::timeout(GRACE, closing).await;

    let memory = match (pid, rss_before, rss_opened, rss_end) {
        (Some(server_pid), Some(before), Some(opened_kib), Some(end)) => Some(IdleMemory {
            server_pid,
            rss_before_kib: before,
            rss_opened_kib: opened_kib,
            rss_end_kib: end,
            rss_peak_kib: [Some(opened_kib), Some(end), *peak.lock().expect("lock")]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(end),
            bytes_per_connection: (still_open > 0)
                .then(|| (end as f64 - before as f64) * 1024.0 / still_open as f64),
        }),
        _ => None,
    };
    let dropped = dropped.lock().expect("lock").clone();
    Ok(IdleResults {
        requested: settings.connections,
        source_ips: settings.source_ips.len(),
        opened,
        open_failures,
        open_secs: open_time.as_secs_f64(),
        opens_per_sec: per_second(opened, open_time),
        open_latency: latencies.summary(),
        held_secs: held.as_secs_f64(),
        dropped,
        still_open,
        memory,
    })
}
