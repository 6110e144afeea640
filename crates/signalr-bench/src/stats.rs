//! Latency percentiles, throughput and error counts.
//!
//! # Percentile definition
//! Percentiles use the **nearest-rank** method on every recorded sample (no histogram, no
//! interpolation): for `n` samples sorted ascending and a percentile `p` in `(0, 100]`, the
//! result is the sample at 1-based rank `ceil(p / 100 × n)`. So a reported p99 is always a
//! latency that some operation really had, and at least 99 % of the samples are at or below
//! it. `max` is the largest sample (the p100), `min` the smallest. With samples 1‥10 ms, p50 is
//! 5 ms, p90 is 9 ms and p99 is 10 ms.
//!
//! The recorder keeps every sample (8 bytes each, nanosecond resolution), so percentiles are
//! exact; ten million samples take 80 MB. Each task records into its own recorder and the
//! recorders are merged at the end, so recording never contends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Every latency sample of one measurement.
#[derive(Debug, Clone, Default)]
pub struct LatencyRecorder {
    /// Nanoseconds, unsorted until a percentile is asked for.
    samples: Vec<u64>,
    sorted: bool,
}

impl LatencyRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        self.record_nanos(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records one latency given in nanoseconds.
    pub fn record_nanos(&mut self, nanos: u64) {
        self.samples.push(nanos);
        self.sorted = false;
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Adds the other recorder's samples to these.
    pub fn merge(&mut self, other: LatencyRecorder) {
        if self.samples.is_empty() {
            *self = other;
        } else {
            self.samples.extend_from_slice(&other.samples);
            self.sorted = false;
        }
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.samples.sort_unstable();
            self.sorted = true;
        }
    }

    /// The nearest-rank percentile `p` (in `(0, 100]`, up to two decimals such as `99.99`);
    /// `None` without samples. A `p` of 0 or less gives the smallest sample, above 100 the
    /// largest.
    pub fn percentile(&mut self, p: f64) -> Option<Duration> {
        self.sort();
        let n = self.samples.len();
        if n == 0 {
            return None;
        }
        // Integer arithmetic in hundredths of a percent: 0.9 × 10 in floating point is
        // 9.000000000000002, whose ceiling would wrongly be rank 10.
        let hundredths = (p * 100.0).round().clamp(0.0, 10_000.0) as u128;
        let rank = (hundredths * n as u128).div_ceil(10_000).max(1) as usize;
        Some(Duration::from_nanos(self.samples[rank.min(n) - 1]))
    }

    /// Count, min, mean, p50, p90, p99 and max; `None` without samples.
    pub fn summary(&mut self) -> Option<LatencySummary> {
        if self.samples.is_empty() {
            return None;
        }
        let micros = |duration: Option<Duration>| duration.map_or(0.0, as_micros);
        let total: u128 = self.samples.iter().map(|&nanos| u128::from(nanos)).sum();
        let mean_nanos = total as f64 / self.samples.len() as f64;
        Some(LatencySummary {
            count: self.samples.len() as u64,
            min_us: micros(self.percentile(0.0)),
            mean_us: mean_nanos / 1_000.0,
            p50_us: micros(self.percentile(50.0)),
            p90_us: micros(self.percentile(90.0)),
            p99_us: micros(self.percentile(99.0)),
            max_us: micros(self.percentile(100.0)),
        })
    }
}

fn as_micros(duration: Duration) -> f64 {
    duration.as_nanos() as f64 / 1_000.0
}

/// Latency figures in microseconds (fractions keep the nanosecond resolution).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// How many samples.
    pub count: u64,
    /// The smallest sample.
    pub min_us: f64,
    /// The arithmetic mean.
    pub mean_us: f64,
    /// Nearest-rank median.
    pub p50_us: f64,
    /// Nearest-rank 90th percentile.
    pub p90_us: f64,
    /// Nearest-rank 99th percentile.
    pub p99_us: f64,
    /// The largest sample.
    pub max_us: f64,
}

impl LatencySummary {
    /// `p50 / p90 / p99 / max` in milliseconds, for the summary table.
    pub fn brief(&self) -> String {
        format!(
            "p50 {} / p90 {} / p99 {} / max {} ms",
            millis(self.p50_us),
            millis(self.p90_us),
            millis(self.p99_us),
            millis(self.max_us)
        )
    }
}

fn millis(micros: f64) -> String {
    format!("{:.3}", micros / 1_000.0)
}

/// Operations per second: `count / elapsed`, or 0 for an empty interval.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// A count shared between the tasks that add to it and the progress line that reads it.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    pub fn increment(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes one away (never below zero).
    pub fn decrement(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// The count now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Reads a [`Counter`] at intervals and tells how much it grew since the last reading.
#[derive(Debug)]
pub struct RateMeter {
    counter: Counter,
    last: u64,
}

impl RateMeter {
    /// A meter starting from the counter's current value.
    pub fn new(counter: &Counter) -> Self {
        RateMeter {
            counter: counter.clone(),
            last: counter.get(),
        }
    }

    /// The counter's total and its growth since the previous call.
    pub fn tick(&mut self) -> (u64, u64) {
        let now = self.counter.get();
        let delta = now.saturating_sub(self.last);
        self.last = now;
        (now, delta)
    }
}

/// How many errors of each kind, with the first few distinct texts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ErrorSamples {
    /// All errors.
    pub total: u64,
    /// Errors by kind (for example `negotiate`, `connect`, `handshake`, `timeout`).
    pub by_kind: BTreeMap<String, u64>,
    /// Up to [`ErrorSamples::KEPT`] distinct `kind: text` lines, first seen first.
    pub examples: Vec<String>,
}

impl ErrorSamples {
    /// How many distinct texts are kept.
    pub const KEPT: usize = 5;

    /// Counts one error of `kind`.
    pub fn record(&mut self, kind: &str, text: impl std::fmt::Display) {
        self.total += 1;
        *self.by_kind.entry(kind.to_owned()).or_default() += 1;
        if self.examples.len() < Self::KEPT {
            let line = format!("{kind}: {text}");
            if !self.examples.contains(&line) {
                self.examples.push(line);
            }
        }
    }

    /// Adds the other's counts and examples to these.
    pub fn merge(&mut self, other: ErrorSamples) {
        self.total += other.total;
        for (kind, count) in other.by_kind {
            *self.by_kind.entry(kind).or_default() += count;
        }
        for line in other.examples {
            if self.examples.len() < Self::KEPT && !self.examples.contains(&line) {
                self.examples.push(line);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn recorder(millis: impl IntoIterator<Item = u64>) -> LatencyRecorder {
        let mut recorder = LatencyRecorder::new();
        for n in millis {
            recorder.record(ms(n));
        }
        recorder
    }

    #[test]
    fn one_to_a_hundred_shuffled() {
        // 1..=100 ms in a scrambled order (37 is coprime with 100).
        let mut recorder = recorder((0..100).map(|i| (i * 37 % 100) + 1));
        assert_eq!(recorder.len(), 100);
        assert_eq!(recorder.percentile(50.0), Some(ms(50)));
        assert_eq!(recorder.percentile(90.0), Some(ms(90)));
        assert_eq!(recorder.percentile(99.0), Some(ms(99)));
        assert_eq!(recorder.percentile(99.9), Some(ms(100)));
        assert_eq!(recorder.percentile(100.0), Some(ms(100)));
        let summary = recorder.summary().unwrap();
        assert_eq!(
            summary,
            LatencySummary {
                count: 100,
                min_us: 1_000.0,
                mean_us: 50_500.0,
                p50_us: 50_000.0,
                p90_us: 90_000.0,
                p99_us: 99_000.0,
                max_us: 100_000.0,
            }
        );
        assert_eq!(
            summary.brief(),
            "p50 50.000 / p90 90.000 / p99 99.000 / max 100.000 ms"
        );
    }

    #[test]
    fn ten_samples_round_ranks_up() {
        // Ranks: p50 → ceil(5) = 5, p90 → ceil(9) = 9 (not 10, despite 0.9 × 10 in floating
        // point), p99 → ceil(9.9) = 10.
        let mut recorder = recorder([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(recorder.percentile(50.0), Some(ms(5)));
        assert_eq!(recorder.percentile(90.0), Some(ms(9)));
        assert_eq!(recorder.percentile(99.0), Some(ms(10)));
        assert_eq!(recorder.percentile(10.0), Some(ms(1)));
        assert_eq!(recorder.percentile(11.0), Some(ms(2)));
    }

    #[test]
    fn the_textbook_nearest_rank_example() {
        // The usual worked example of the nearest-rank method: 15, 20, 35, 40, 50.
        let mut recorder = recorder([35, 20, 50, 15, 40]);
        assert_eq!(recorder.percentile(5.0), Some(ms(15)));
        assert_eq!(recorder.percentile(30.0), Some(ms(20)));
        assert_eq!(recorder.percentile(40.0), Some(ms(20)));
        assert_eq!(recorder.percentile(50.0), Some(ms(35)));
        assert_eq!(recorder.percentile(100.0), Some(ms(50)));
    }

    #[test]
    fn duplicates_one_sample_and_none() {
        let mut recorder = recorder([7, 7, 7, 1]);
        assert_eq!(recorder.percentile(25.0), Some(ms(1)));
        assert_eq!(recorder.percentile(26.0), Some(ms(7)));
        assert_eq!(recorder.percentile(50.0), Some(ms(7)));

        let mut single = LatencyRecorder::new();
        single.record(Duration::from_nanos(1_234));
        let summary = single.summary().unwrap();
        assert_eq!(summary.count, 1);
        for value in [
            summary.min_us,
            summary.mean_us,
            summary.p50_us,
            summary.p90_us,
            summary.p99_us,
            summary.max_us,
        ] {
            assert_eq!(value, 1.234);
        }

        let mut empty = LatencyRecorder::new();
        assert!(empty.is_empty());
        assert_eq!(empty.percentile(50.0), None);
        assert_eq!(empty.summary(), None);
    }

    #[test]
    fn merged_recorders_rank_all_samples() {
        let mut odd = recorder((1..=100).filter(|n| n % 2 == 1));
        let even = recorder((1..=100).filter(|n| n % 2 == 0));
        // Asking first sorts `odd`; the merge must re-sort.
        assert_eq!(odd.percentile(100.0), Some(ms(99)));
        odd.merge(even);
        assert_eq!(odd.len(), 100);
        assert_eq!(odd.percentile(50.0), Some(ms(50)));
        assert_eq!(odd.percentile(99.0), Some(ms(99)));
        assert_eq!(odd.percentile(100.0), Some(ms(100)));

        let mut empty = LatencyRecorder::new();
        empty.merge(recorder([3, 1, 2]));
        assert_eq!(empty.percentile(50.0), Some(ms(2)));
    }

    #[test]
    fn throughput_and_counters() {
        assert_eq!(per_second(500, Duration::from_secs(2)), 250.0);
        assert_eq!(per_second(3, Duration::from_millis(500)), 6.0);
        assert_eq!(per_second(10, Duration::ZERO), 0.0);

        let counter = Counter::new();
        let mut meter = RateMeter::new(&counter);
        counter.add(5);
        counter.increment();
        assert_eq!(meter.tick(), (6, 6));
        counter.add(4);
        assert_eq!(meter.tick(), (10, 4));
        assert_eq!(meter.tick(), (10, 0));
        counter.decrement();
        assert_eq!(counter.get(), 9);
        let zero = Counter::new();
        zero.decrement();
        assert_eq!(zero.get(), 0);
    }

    #[test]
    fn errors_are_counted_by_kind_with_a_few_examples() {
        let mut errors = ErrorSamples::default();
        for i in 0..10 {
            errors.record("connect", format!("refused {}", i % 7));
        }
        errors.record("timeout", "10 s");
        assert_eq!(errors.total, 11);
        assert_eq!(errors.by_kind["connect"], 10);
        assert_eq!(errors.by_kind["timeout"], 1);
        assert_eq!(errors.examples.len(), ErrorSamples::KEPT);
        assert_eq!(errors.examples[0], "connect: refused 0");

        let mut other = ErrorSamples::default();
        other.record("handshake", "no");
        let mut first = ErrorSamples::default();
        first.record("connect", "refused");
        first.record("connect", "refused");
        first.merge(other);
        assert_eq!(first.total, 3);
        assert_eq!(first.by_kind.len(), 2);
        assert_eq!(first.examples, ["connect: refused", "handshake: no"]);
    }
}
