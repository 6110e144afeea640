//! `connect`: a connection storm. `connections` workers each open a hub connection
//! (negotiate, WebSocket connect, handshake), close it in the background and open the next,
//! until the measuring time is over; with `rate`, the workers together start at most `rate`
//! attempts a second. Connections are spread over the source addresses.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::progress::Progress;
use crate::raw::Connector;
use crate::report::{count, errors_row, latency_row, rate};
use crate::stats::{Counter, ErrorSamples, LatencyRecorder, LatencySummary, RateMeter, per_second};
use crate::{BenchError, Settings};

/// What `connect` measured.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectResults {
    /// Workers opening connections concurrently.
    pub workers: usize,
    /// Local addresses the connections came from.
    pub source_ips: usize,
    /// The attempt rate asked for, if any (attempts per second).
    pub target_rate: Option<f64>,
    /// Attempts started within the measuring time.
    pub attempts: u64,
    /// Attempts that completed the handshake.
    pub connects: u64,
    /// Attempts that failed, by step (`negotiate`, `connect`, `handshake`, `timeout`).
    pub failures: ErrorSamples,
    /// From the first attempt until the last one ended.
    pub elapsed_secs: f64,
    /// `attempts / elapsed_secs`.
    pub attempts_per_sec: f64,
    /// `connects / elapsed_secs`.
    pub connects_per_sec: f64,
    /// Negotiate + connect + handshake, of successful attempts.
    pub latency: Option<LatencySummary>,
    /// Negotiate alone (absent when negotiation is skipped).
    pub negotiate_latency: Option<LatencySummary>,
    /// TCP connect and WebSocket upgrade.
    pub connect_latency: Option<LatencySummary>,
    /// Handshake request until its answer.
    pub handshake_latency: Option<LatencySummary>,
}

impl ConnectResults {
    pub(crate) fn rows(&self) -> Vec<(String, String)> {
        vec![
            (
                "workers".into(),
                format!(
                    "{} from {} source addresses{}",
                    self.workers,
                    self.source_ips,
                    self.target_rate
                        .map(|target| format!(", asked {}/s", rate(target)))
                        .unwrap_or_default()
                ),
            ),
            (
                "attempts".into(),
                format!(
                    "{} ({}/s)",
                    count(self.attempts),
                    rate(self.attempts_per_sec)
                ),
            ),
            ("connects".into(), count(self.connects)),
            ("connects/s".into(), rate(self.connects_per_sec)),
            errors_row("failures", &self.failures),
            latency_row("latency (all steps)", &self.latency),
            latency_row("  negotiate", &self.negotiate_latency),
            latency_row("  connect", &self.connect_latency),
            latency_row("  handshake", &self.handshake_latency),
        ]
    }
}

#[derive(Default)]
struct Latencies {
    total: LatencyRecorder,
    negotiate: LatencyRecorder,
    connect: LatencyRecorder,
    handshake: LatencyRecorder,
}

impl Latencies {
    fn merge(&mut self, other: Latencies) {
        self.total.merge(other.total);
        self.negotiate.merge(other.negotiate);
        self.connect.merge(other.connect);
        self.handshake.merge(other.handshake);
    }
}

/// Runs `connect`.
///
/// # Errors
/// A URL that cannot be used.
pub async fn connect(settings: &Settings) -> Result<ConnectResults, BenchError> {
    let connector = Arc::new(Connector::new(settings).await?);
    let workers = settings.connections;
    let attempts = Counter::new();
    let connects = Counter::new();
    let failures = Arc::new(Mutex::new(ErrorSamples::default()));
    let progress = {
        let mut meter = RateMeter::new(&connects);
        let attempts = attempts.clone();
        let failures = failures.clone();
        Progress::start(settings.progress, "connect", move || {
            let (total, delta) = meter.tick();
            format!(
                "{} connects/s, {} connected, {} attempts, {} failed",
                count(delta),
                count(total),
                count(attempts.get()),
                count(failures.lock().expect("lock").total)
            )
        })
    };

    let started = Instant::now();
    let deadline = started + settings.duration;
    // Each worker's share of the rate, its start staggered so that attempts spread out.
    let period = settings
        .rate
        .map(|rate| Duration::from_secs_f64(workers as f64 / rate));
    let mut tasks = Vec::with_capacity(workers);
    for worker in 0..workers {
        let connector = connector.clone();
        let attempts = attempts.clone();
        let connects = connects.clone();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            let mut ticks = period.map(|period| {
                let offset = period.mul_f64(worker as f64 / workers as f64);
                let mut ticks = tokio::time::interval_at((started + offset).into(), period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                ticks
            });
            let mut latencies = Latencies::default();
            let mut closing = Vec::new();
            loop {
                if let Some(ticks) = &mut ticks {
                    tokio::select! {
                        _ = ticks.tick() => {}
                        () = tokio::time::sleep_until(deadline.into()) => break,
                    }
                }
                if Instant::now() >= deadline {
                    break;
                }
                attempts.increment();
                match connector.open().await {
                    Ok((connection, timings)) => {
                        connects.increment();
                        latencies.total.record(timings.total());
                        if let Some(negotiate) = timings.negotiate {
                            latencies.negotiate.record(negotiate);
                        }
                        latencies.connect.record(timings.connect);
                        latencies.handshake.record(timings.handshake);
                        closing.push(tokio::spawn(connection.close()));
                    }
                    Err(failure) => failures
                        .lock()
                        .expect("lock")
                        .record(failure.kind(), failure),
                }
            }
            let ended = Instant::now();
            for close in closing {
                let _ = close.await;
            }
            (latencies, ended)
        }));
    }
    let mut latencies = Latencies::default();
    let mut ended = started;
    for task in tasks {
        if let Ok((recorded, worker_ended)) = task.await {
            latencies.merge(recorded);
            ended = ended.max(worker_ended);
        }
    }
    drop(progress);

    let elapsed = ended - started;
    let attempts = attempts.get();
    let connects = connects.get();
    let failures = failures.lock().expect("lock").clone();
    Ok(ConnectResults {
        workers,
        source_ips: settings.source_ips.len(),
        target_rate: settings.rate,
        attempts,
        connects,
        failures,
        elapsed_secs: elapsed.as_secs_f64(),
        attempts_per_sec: per_second(attempts, elapsed),
        connects_per_sec: per_second(connects, elapsed),
        latency: latencies.total.summary(),
        negotiate_latency: latencies.negotiate.summary(),
        connect_latency: latencies.connect.summary(),
        handshake_latency: latencies.handshake.summary(),
    })
}
