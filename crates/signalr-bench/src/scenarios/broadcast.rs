//! `broadcast`: `connections` receivers listen for `Receive(sentAtMicros, payload)`; one more
//! connection, the sender, calls `Broadcast(sentAtMicros, payload)` `rate` times a second
//! (default 10) with `send` (no reply). A delivery's latency is the receiver's wall clock
//! minus `sentAtMicros`, the sender's wall clock just before sending: both are this process's
//! clock, so the figure includes the hub's work, the network and the client's reading.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::IgnoredAny;

use super::{GRACE, build, open_hub_connections, payload, require_some, stop_all};
use crate::progress::Progress;
use crate::report::{count, errors_row, latency_row, rate};
use crate::stats::{Counter, ErrorSamples, LatencyRecorder, LatencySummary, RateMeter, per_second};
use crate::{BenchError, Settings};

/// Messages per second when `rate` is not given.
pub const DEFAULT_RATE: f64 = 10.0;

/// What `broadcast` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BroadcastResults {
    /// Receivers that opened (the sender is not one of them).
    pub receivers: usize,
    /// Receivers that did not open.
    pub connect_failures: u64,
    /// Why receivers did not open.
    pub connect_errors: ErrorSamples,
    /// The rate asked for, messages per second.
    pub target_rate: f64,
    /// `Broadcast` calls sent.
    pub messages_sent: u64,
    /// `messages_sent` over the measuring time.
    pub messages_per_sec: f64,
    /// Sends that failed.
    pub send_errors: ErrorSamples,
    /// `messages_sent × receivers`.
    pub expected_deliveries: u64,
    /// `Receive` messages that arrived at receivers (by the end of the grace time).
    pub deliveries: u64,
    /// `expected_deliveries − deliveries` (when positive).
    pub missing_deliveries: u64,
    /// From the first send until the last delivery, or the measuring time if longer.
    pub elapsed_secs: f64,
    /// `deliveries / elapsed_secs`.
    pub deliveries_per_sec: f64,
    /// Delivery latency.
    pub latency: Option<LatencySummary>,
}

impl BroadcastResults {
    pub(crate) fn rows(&self) -> Vec<(String, String)> {
        vec![
            (
                "receivers".into(),
                format!("{} open, {} failed", self.receivers, self.connect_failures),
            ),
            (
                "messages sent".into(),
                format!(
                    "{} ({}/s, asked {}/s)",
                    count(self.messages_sent),
                    rate(self.messages_per_sec),
                    rate(self.target_rate)
                ),
            ),
            (
                "deliveries".into(),
                format!(
                    "{} of {} ({} missing)",
                    count(self.deliveries),
                    count(self.expected_deliveries),
                    count(self.missing_deliveries)
                ),
            ),
            ("deliveries/s".into(), rate(self.deliveries_per_sec)),
            latency_row("delivery latency", &self.latency),
            errors_row("send errors", &self.send_errors),
        ]
    }
}

/// Microseconds since 1970 on this machine's wall clock.
fn unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as i64)
}

/// What one receiver saw.
#[derive(Default)]
struct Received {
    latencies: LatencyRecorder,
    last: Option<Instant>,
}

/// Runs `broadcast`.
///
/// # Errors
/// No receiver could be opened, or the sender could not.
pub async fn broadcast(settings: &Settings) -> Result<BroadcastResults, BenchError> {
    let target_rate = settings.rate.unwrap_or(DEFAULT_RATE);
    let delivered = Counter::new();
    let received: Vec<Arc<Mutex<Received>>> =
        (0..settings.connections).map(|_| Arc::default()).collect();
    let (receivers, connect_errors) =
        open_hub_connections(settings, settings.connections, |index, connection| {
            let received = received[index].clone();
            let delivered = delivered.clone();
            connection.on("Receive", move |(sent_at, _payload): (i64, IgnoredAny)| {
                let micros = u64::try_from(unix_micros() - sent_at).unwrap_or(0);
                {
                    let mut received = received.lock().expect("lock");
                    received
                        .latencies
                        .record_nanos(micros.saturating_mul(1_000));
                    received.last = Some(Instant::now());
                }
                delivered.increment();
                std::future::ready(())
            });
        })
        .await;
    require_some(receivers.len(), &connect_errors)?;
    let sender = build(settings, &settings.url, receivers.len());
    tokio::time::timeout(crate::raw::STEP_TIMEOUT * 3, sender.start())
        .await
        .map_err(|_| BenchError("the sender did not connect in time".into()))?
        .map_err(|error| BenchError(format!("the sender did not connect: {error}")))?;

    let payload = payload(settings.payload_size);
    let sent = Counter::new();
    let mut send_errors = ErrorSamples::default();
    let progress = {
        let mut meter = RateMeter::new(&delivered);
        let sent = sent.clone();
        let open = receivers.len();
        Progress::start(settings.progress, "broadcast", move || {
            let (total, delta) = meter.tick();
            format!(
                "{open} receivers, {} sent, {} deliveries/s, {} delivered",
                count(sent.get()),
                count(delta),
                count(total)
            )
        })
    };

    let started = Instant::now();
    let deadline = started + settings.duration;
    let period = Duration::from_secs_f64(1.0 / target_rate);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let tick = tokio::select! {
            tick = ticks.tick() => tick.into_std(),
            () = tokio::time::sleep_until(deadline.into()) => break,
        };
        if tick >= deadline {
            break;
        }
        match sender.send("Broadcast", (unix_micros(), &*payload)).await {
            Ok(()) => sent.increment(),
            Err(error) => send_errors.record("send", error),
        }
    }
    let messages_sent = sent.get();
    let expected = messages_sent * receivers.len() as u64;
    let waited_until = deadline.max(Instant::now()) + GRACE;
    while delivered.get() < expected && Instant::now() < waited_until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(progress);
    let opened = receivers.len();
    stop_all(receivers).await;
    sender.stop().await;

    let mut latencies = LatencyRecorder::new();
    let mut last = None;
    for received in received {
        let received = std::mem::take(&mut *received.lock().expect("lock"));
        latencies.merge(received.latencies);
        last = last.max(received.last);
    }
    let elapsed = last
        .map_or(Duration::ZERO, |last| last - started)
        .max(settings.duration);
    let deliveries = delivered.get();
    Ok(BroadcastResults {
        receivers: opened,
        connect_failures: connect_errors.total,
        connect_errors,
        target_rate,
        messages_sent,
        messages_per_sec: per_second(messages_sent, settings.duration),
        send_errors,
        expected_deliveries: expected,
        deliveries,
        missing_deliveries: expected.saturating_sub(deliveries),
        elapsed_secs: elapsed.as_secs_f64(),
        deliveries_per_sec: per_second(deliveries, elapsed),
        latency: latencies.summary(),
    })
}
