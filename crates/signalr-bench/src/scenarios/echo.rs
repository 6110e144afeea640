//! `echo`: every connection invokes `Echo(payload)` in a closed loop with `pipeline` calls in
//! flight; each call's latency is from just before `invoke` to its result.
//!
//! With [`Settings::raw`] the connections are the bench's own ([`crate::raw`]): one task per
//! connection writes the Invocation records (`{"type":1,"invocationId":"7","target":"Echo",
//! "arguments":["xx…"]}` + `0x1E` in JSON, one frame each; the calls started after one read
//! go out in one write) and reads the frames that come back; a Completion with the payload as
//! its result, or the same Invocation record echoed back unchanged (a plain WebSocket echo
//! server, the ceiling), answers the call with its id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use serde::Serialize;
use signalr_client::ClientError;
use signalr_protocol::{CompletionOutcome, HubMessage, Invocation, Payload};

use super::{GRACE, OPEN_CONCURRENCY, open_hub_connections, payload, require_some, stop_all};
use crate::progress::Progress;
use crate::raw::{Connector, RawConnection};
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
    if settings.raw {
        return echo_raw(settings).await;
    }
    let (connections, connect_errors) =
        open_hub_connections(settings, settings.connections, |_, _| {}).await;
    require_some(connections.len(), &connect_errors)?;

    let payload = payload(settings.payload_size);
    let completed = Counter::new();
    let errors = Arc::new(Mutex::new(ErrorSamples::default()));
    let progress = show_progress(settings, connections.len(), &completed, &errors);

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
    let mut latencies = merged(callers).await;
    let elapsed = settings.duration.min(started.elapsed());
    drop(progress);
    let opened = connections.len();
    stop_all(connections).await;
    Ok(results(
        opened,
        connect_errors,
        &completed,
        &errors,
        elapsed,
        &mut latencies,
    ))
}

fn show_progress(
    settings: &Settings,
    open: usize,
    completed: &Counter,
    errors: &Arc<Mutex<ErrorSamples>>,
) -> Progress {
    let mut meter = RateMeter::new(completed);
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
}

fn results(
    opened: usize,
    connect_errors: ErrorSamples,
    completed: &Counter,
    errors: &Mutex<ErrorSamples>,
    elapsed: std::time::Duration,
    latencies: &mut LatencyRecorder,
) -> EchoResults {
    let invocations = completed.get();
    let errors = errors.lock().expect("lock").clone();
    EchoResults {
        connections: opened,
        connect_failures: connect_errors.total,
        connect_errors,
        invocations,
        errors,
        elapsed_secs: elapsed.as_secs_f64(),
        invocations_per_sec: per_second(invocations, elapsed),
        latency: latencies.summary(),
    }
}

/// `echo` over the bench's raw connections (see the module's documentation).
async fn echo_raw(settings: &Settings) -> Result<EchoResults, BenchError> {
    let connector = Connector::new(settings).await?;
    let mut connect_errors = ErrorSamples::default();
    let mut connections = Vec::with_capacity(settings.connections);
    let mut opening = futures_util::stream::iter(0..settings.connections)
        .map(|_| connector.open())
        .buffer_unordered(OPEN_CONCURRENCY);
    while let Some(opened) = opening.next().await {
        match opened {
            Ok((connection, _)) => connections.push(connection),
            Err(failure) => connect_errors.record(failure.kind(), failure),
        }
    }
    drop(opening);
    require_some(connections.len(), &connect_errors)?;

    let payload = payload(settings.payload_size);
    let completed = Counter::new();
    let errors = Arc::new(Mutex::new(ErrorSamples::default()));
    let opened = connections.len();
    let progress = show_progress(settings, opened, &completed, &errors);

    let started = Instant::now();
    let deadline = started + settings.duration;
    let callers: Vec<_> = connections
        .into_iter()
        .map(|connection| {
            tokio::spawn(call_raw(
                connection,
                settings.pipeline,
                payload.clone(),
                deadline,
                completed.clone(),
                errors.clone(),
            ))
        })
        .collect();
    let mut latencies = merged(callers).await;
    let elapsed = settings.duration.min(started.elapsed());
    drop(progress);
    Ok(results(
        opened,
        connect_errors,
        &completed,
        &errors,
        elapsed,
        &mut latencies,
    ))
}

/// One raw connection's closed loop: `pipeline` Echo invocations in flight until `deadline`,
/// then the answers still owed (for up to [`GRACE`]), then Close.
async fn call_raw(
    mut connection: RawConnection,
    pipeline: usize,
    payload: Arc<str>,
    deadline: Instant,
    completed: Counter,
    errors: Arc<Mutex<ErrorSamples>>,
) -> LatencyRecorder {
    let mut latencies = LatencyRecorder::new();
    let arguments = match Payload::encode(connection.protocol().payload_format(), &(&*payload,)) {
        Ok(arguments) => arguments,
        Err(error) => {
            errors.lock().expect("lock").record("encode", error);
            return latencies;
        }
    };
    let mut next_id: u64 = 0;
    let mut in_flight: HashMap<u64, Instant> = HashMap::with_capacity(pipeline);
    let mut pending = Vec::new();
    let mut messages = Vec::new();
    let mut invoke = async |connection: &mut RawConnection,
                            in_flight: &mut HashMap<u64, Instant>|
           -> Result<(), String> {
        next_id += 1;
        let message = HubMessage::Invocation(Invocation {
            headers: Default::default(),
            invocation_id: Some(next_id.to_string()),
            target: "Echo".to_owned(),
            arguments: arguments.clone(),
            stream_ids: Vec::new(),
        });
        in_flight.insert(next_id, Instant::now());
        connection.feed(&message).await
    };

    let mut failed = None;
    for _ in 0..pipeline {
        if let Err(error) = invoke(&mut connection, &mut in_flight).await {
            failed = Some(error);
            break;
        }
    }
    if let Err(error) = connection.flush().await {
        failed = Some(error);
    }
    while failed.is_none() && !in_flight.is_empty() {
        let received = tokio::time::timeout_at(
            (deadline + GRACE).into(),
            connection.receive(&mut pending, &mut messages),
        )
        .await;
        match received {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                failed = Some("the server closed the connection".to_owned());
                break;
            }
            Ok(Err(error)) => {
                failed = Some(error);
                break;
            }
            Err(_) => {
                errors
                    .lock()
                    .expect("lock")
                    .record("timeout", "no answer by the end of the grace time");
                break;
            }
        }
        let answered = Instant::now();
        for message in messages.drain(..) {
            let (id, answer) = match message {
                HubMessage::Completion(completion) => (
                    completion.invocation_id,
                    match completion.outcome {
                        CompletionOutcome::Result(result) => {
                            result.decode::<String>().map_err(|error| error.to_string())
                        }
                        CompletionOutcome::Error(error) => Err(error),
                        CompletionOutcome::Void => Err("no result".to_owned()),
                    },
                ),
                // The ceiling: the record came back unchanged.
                HubMessage::Invocation(Invocation {
                    invocation_id: Some(id),
                    arguments,
                    ..
                }) => (
                    id,
                    arguments
                        .decode::<(String,)>()
                        .map(|(text,)| text)
                        .map_err(|error| error.to_string()),
                ),
                HubMessage::Close(close) => {
                    failed = Some(format!(
                        "the server closed the connection: {}",
                        close.error.unwrap_or_default()
                    ));
                    break;
                }
                _ => continue,
            };
            let Some(sent) = id.parse().ok().and_then(|id| in_flight.remove(&id)) else {
                errors
                    .lock()
                    .expect("lock")
                    .record("unknown id", format!("an answer to {id}"));
                continue;
            };
            if answered > deadline {
                // Past the measuring time: not counted either way, and no next call.
                continue;
            }
            match answer {
                Ok(echoed) if *echoed == *payload => {
                    latencies.record(answered - sent);
                    completed.increment();
                }
                Ok(echoed) => errors
                    .lock()
                    .expect("lock")
                    .record("wrong result", format!("{} characters back", echoed.len())),
                Err(error) => errors.lock().expect("lock").record("invoke", error),
            }
            if let Err(error) = invoke(&mut connection, &mut in_flight).await {
                failed = Some(error);
                break;
            }
        }
        // The next calls, one frame each, in one write.
        if failed.is_none()
            && let Err(error) = connection.flush().await
        {
            failed = Some(error);
        }
    }
    if let Some(error) = failed {
        errors.lock().expect("lock").record("closed", error);
    }
    connection.close().await;
    latencies
}

/// The latencies every caller recorded, together (a caller that panicked recorded none).
async fn merged(callers: Vec<tokio::task::JoinHandle<LatencyRecorder>>) -> LatencyRecorder {
    let mut latencies = LatencyRecorder::new();
    for caller in callers {
        if let Ok(recorded) = caller.await {
            latencies.merge(recorded);
        }
    }
    latencies
}
