//! The report of a run: JSON for tools, a plain table for people.

use std::path::Path;

use serde::Serialize;

use crate::scenarios::{BroadcastResults, ConnectResults, EchoResults, IdleResults};
use crate::stats::{ErrorSamples, LatencySummary};
use crate::{BenchError, Scenario, Settings};

/// One run: what was asked and what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which scenario.
    pub scenario: Scenario,
    /// The bench's version.
    pub version: &'static str,
    /// When the run started, seconds since 1970 (UTC).
    pub started_at_unix_secs: u64,
    /// The settings it ran with.
    pub settings: Settings,
    /// The scenario's figures.
    pub results: Results,
}

/// The figures of one scenario.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Results {
    /// See [`EchoResults`].
    Echo(EchoResults),
    /// See [`BroadcastResults`].
    Broadcast(BroadcastResults),
    /// See [`ConnectResults`].
    Connect(ConnectResults),
    /// See [`IdleResults`].
    Idle(IdleResults),
}

impl Report {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes")
    }

    /// Writes [`Report::to_json`] to `path`.
    ///
    /// # Errors
    /// The file could not be written.
    pub fn write_json(&self, path: &Path) -> Result<(), BenchError> {
        let mut text = self.to_json();
        text.push('\n');
        std::fs::write(path, text)
            .map_err(|error| BenchError(format!("cannot write {}: {error}", path.display())))
    }

    /// A two-column table of the settings and the figures.
    pub fn table(&self) -> String {
        let settings = &self.settings;
        let mut rows: Vec<(String, String)> = vec![
            ("scenario".into(), self.scenario.name().into()),
            ("url".into(), settings.url.clone()),
            (
                "protocol".into(),
                format!(
                    "{} over WebSockets{}{}",
                    settings.protocol_name(),
                    if settings.skip_negotiation {
                        ", negotiate skipped"
                    } else {
                        ""
                    },
                    if settings.raw && self.scenario == Scenario::Echo {
                        ", raw connections"
                    } else {
                        ""
                    }
                ),
            ),
            (
                "duration".into(),
                format!("{} s", settings.duration.as_secs_f64()),
            ),
        ];
        rows.extend(match &self.results {
            Results::Echo(results) => results.rows(settings),
            Results::Broadcast(results) => results.rows(),
            Results::Connect(results) => results.rows(),
            Results::Idle(results) => results.rows(),
        });
        table(&rows)
    }
}

/// Aligns `rows` in two columns.
pub fn table(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, value) in rows {
        out.push_str(&format!("{name:<width$}  {value}\n"));
    }
    out
}

/// A row for a latency summary, or `-` without samples.
pub(crate) fn latency_row(name: &str, latency: &Option<LatencySummary>) -> (String, String) {
    (
        name.into(),
        latency
            .as_ref()
            .map_or_else(|| "-".into(), LatencySummary::brief),
    )
}

/// A row for errors: the count by kind and the first example.
pub(crate) fn errors_row(name: &str, errors: &ErrorSamples) -> (String, String) {
    if errors.total == 0 {
        return (name.into(), "0".into());
    }
    let kinds: Vec<String> = errors
        .by_kind
        .iter()
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    let first = errors.examples.first().cloned().unwrap_or_default();
    (
        name.into(),
        format!("{} ({}); first: {first}", errors.total, kinds.join(", ")),
    )
}

/// A count with thousands separators: 1234567 → `1 234 567`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

/// A rate with thousands separators and no decimals (one decimal below 100).
pub(crate) fn rate(per_second: f64) -> String {
    if per_second < 100.0 {
        format!("{per_second:.1}")
    } else {
        count(per_second.round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_rates_are_grouped() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1 000");
        assert_eq!(count(1_234_567), "1 234 567");
        assert_eq!(rate(12.34), "12.3");
        assert_eq!(rate(123_456.6), "123 457");
    }

    #[test]
    fn tables_align() {
        let rows = vec![
            ("a".to_owned(), "1".to_owned()),
            ("long name".to_owned(), "2".to_owned()),
        ];
        assert_eq!(table(&rows), "a          1\nlong name  2\n");
    }
}
