//! The one-line status printed to stderr every second while a scenario runs.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// Prints a status line every second until dropped.
pub struct Progress {
    task: Option<JoinHandle<()>>,
}

impl Progress {
    /// Every second, prints `[  3s] <label> <status()>` to stderr; nothing when `enabled` is
    /// false.
    pub fn start<F>(enabled: bool, label: &'static str, mut status: F) -> Progress
    where
        F: FnMut() -> String + Send + 'static,
    {
        if !enabled {
            return Progress { task: None };
        }
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let period = Duration::from_secs(1);
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                ticks.tick().await;
                let elapsed = started.elapsed().as_secs_f64();
                eprintln!("[{elapsed:>4.0}s] {label}: {}", status());
            }
        });
        Progress { task: Some(task) }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
