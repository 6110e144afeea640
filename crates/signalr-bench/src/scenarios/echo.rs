//! `echo`: every connection invokes `Echo(payload)` in a closed loop with `pipeline` calls in
//! flight; each call's latency is from just before `invoke` to its result.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use signalr_client::ClientError;

use super::{GRACE, open_hub_connections, payload, require_some, stop_all};
use crate::progress::Progress;
use crate::report::{count, errors_row, latency_row, rate};
use crate::stats::{Counter, ErrorSamples, LatencyRecorder, LatencySummary, RateMeter, per_second};
use crate::{BenchError, Settings};

/// What `echo` measured.
#[derive(Debug, Clone, Serialize)]
pub struct EchoResults {
    /// Connections that opened.
    pub connections: usize,
    /// Connections that did not open (counted in `connect_errors`).
    pub connect_failures: u64,
    /// Why connections did not open.
    pub connect_errors: ErrorSamples,
    /// Invocations whose correct result arrived within the measuring time.
    pub invocations: u64,
    /// Invocations that failed or returned another string.
    pub errors: ErrorSamples,
    /// The measuring time, from the first invocation to its end.
    pub elapsed_secs: f64,
    /// `invocations / elapsed_secs`.
    pub invocations_per_sec: f64,
    /// Latency of the counted invocations.
    pub latency: Option<LatencySummary>,
}

impl EchoResults {
    pub(crate) fn rows(&self, settings: &Settings) -> Vec<(String, String)> {
        vec![
            (
                "connections".into(),
                format!(
                    "{} open, {} failed, pipeline {}, payload {} chars",
                    self.connections,
                    self.connect_failures,
                    settings.pipeline,
                    settings.payload_size
                ),
            ),
            ("invocations".into(), count(self.invocations)),
            ("invocations/s".into(), rate(self.invocations_per_sec)),
            latency_row("latency", &self.latency),
            errors_row("errors", &self.errors),
        ]
    }
}

/// Runs `echo`.
///
/// # Errors
/// No connection could be opened.
pub async fn echo(settings: &Settings) -> Result<EchoResults, BenchError> {
    let (connections, connect_errors) =
        open_hub_connections(settings, settings.connections, |_, _| {}).await;
    require_some(connections.len(), &connect_errors)?;

    let payload = payload(settings.payload_size);
    let completed = Counter::new();
    let errors = Arc::new(Mutex::new(ErrorSamples::default()));
    let progress = {
        let mut meter = RateMeter::new(&completed);
        let open = connections.len();
        let errors = errors.clone();
        Progress::start(settings.progress, "echo", move || {
            let (total, delta) = meter.tick();
            let errors = errors.lock().expect("lock").total;
            format!(
                "{open} connections, {} invocations/s, {} total, {errors} errors",
                count(delta),
                count(total)
            )
        })
    };

    let started = Instant::now();
    let deadline = started + settings.duration;
    let mut callers = Vec::with_capacity(connections.len() * settings.pipeline);
    for connection in &connections {
        for _ in 0..settings.pipeline {
            let connection = connection.clone();
            let payload = payload.clone();
            let completed = completed.clone();
            let errors = errors.clone();
            callers.push(tokio::spawn(async move {
                let mut latencies = LatencyRecorder::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let answer = tokio::time::timeout_at(
                        (deadline + GRACE).into(),
                        connection.invoke::<String, _>("Echo", (&*payload,)),
                    )
                    .await;
                    let answered = Instant::now();
                    if answered > deadline {
                        // Past the measuring time: not counted either way.
                        break;
                    }
                    match answer {
                        Ok(Ok(echoed)) if *echoed == *payload => {
                            latencies.record(answered - sent);
                            completed.increment();
                        }
                        Ok(Ok(echoed)) => errors
                            .lock()
                            .expect("lock")
                            .record("wrong result", format!("{} characters back", echoed.len())),
                        Ok(Err(error @ ClientError::Closed(_))) => {
                            errors.lock().expect("lock").record("closed", error);
                            break;
                        }
                        Ok(Err(error)) => errors.lock().expect("lock").record("invoke", error),
                        Err(_) => errors
                            .lock()
                            .expect("lock")
                            .record("timeout", "no answer by the end of the grace time"),
                    }
                }
                latencies
            }));
        }
    }
    let mut latencies = LatencyRecorder::new();
    for caller in callers {
        if let Ok(recorded) = caller.await {
            latencies.merge(recorded);
        }
    }
    let elapsed = settings.duration.min(started.elapsed());
    drop(progress);
    let opened = connections.len();
    stop_all(connections).await;

    let invocations = completed.get();
    let errors = errors.lock().expect("lock").clone();
    Ok(EchoResults {
        connections: opened,
        connect_failures: connect_errors.total,
        connect_errors,
        invocations,
        errors,
        elapsed_secs: elapsed.as_secs_f64(),
        invocations_per_sec: per_second(invocations, elapsed),
        latency: latencies.summary(),
    })
}
