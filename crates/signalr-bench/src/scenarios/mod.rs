//! The four scenarios. Each runs for [`Settings::duration`] and returns its figures; failures
//! of single operations are counted in the figures, and only a run that cannot start at all
//! (no connection opens) is an error.

mod broadcast;
mod connect;
mod echo;
mod idle;

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use signalr_client::HubConnection;

pub use broadcast::{BroadcastResults, broadcast};
pub use connect::{ConnectResults, connect};
pub use echo::{EchoResults, echo};
pub use idle::{IdleMemory, IdleResults, idle};

use crate::stats::ErrorSamples;
use crate::{BenchError, Settings};

/// How many connections are being opened at once while a scenario sets up.
pub const OPEN_CONCURRENCY: usize = 64;

/// How long a scenario waits for the last answers after its measuring time.
pub const GRACE: Duration = Duration::from_secs(5);

/// The payload string: `size` characters.
fn payload(size: usize) -> Arc<str> {
    "x".repeat(size).into()
}

/// Opens `count` hub connections with `signalr-client` ([`OPEN_CONCURRENCY`] at a time),
/// calling `setup` on each before its start (to register handlers). The connections that
/// opened, in no particular order, and the errors of those that did not.
async fn open_hub_connections<F>(
    settings: &Settings,
    count: usize,
    setup: F,
) -> (Vec<HubConnection>, ErrorSamples)
where
    F: Fn(usize, &HubConnection),
{
    let errors = Arc::new(Mutex::new(ErrorSamples::default()));
    let opened: Vec<HubConnection> = futures_util::stream::iter(0..count)
        .map(|index| {
            let connection = build(settings, receiver_url(settings, index), index);
            setup(index, &connection);
            let errors = errors.clone();
            async move {
                match tokio::time::timeout(crate::raw::STEP_TIMEOUT * 3, connection.start()).await {
                    Ok(Ok(())) => Some(connection),
                    Ok(Err(error)) => {
                        errors.lock().expect("lock").record("start", error);
                        None
                    }
                    Err(_) => {
                        errors.lock().expect("lock").record("timeout", "start");
                        None
                    }
                }
            }
        })
        .buffer_unordered(OPEN_CONCURRENCY)
        .filter_map(|connection| async move { connection })
        .collect()
        .await;
    let errors = Arc::try_unwrap(errors)
        .map(|errors| errors.into_inner().expect("lock"))
        .unwrap_or_else(|shared| shared.lock().expect("lock").clone());
    (opened, errors)
}

/// The URL of the `index`th of many connections: the receiver URLs in turn, or the hub URL.
fn receiver_url(settings: &Settings, index: usize) -> &str {
    match settings.receiver_urls.len() {
        0 => &settings.url,
        count => &settings.receiver_urls[index % count],
    }
}

/// The `index`th hub connection to `url` as the settings ask for (protocol, negotiate), from
/// the source addresses in turn.
fn build(settings: &Settings, url: &str, index: usize) -> HubConnection {
    let source = settings.source_ips[index % settings.source_ips.len()];
    let mut builder = HubConnection::builder(url).local_address(source);
    if settings.messagepack {
        builder = builder.with_messagepack();
    }
    if settings.skip_negotiation {
        builder = builder.skip_negotiation();
    }
    builder.build()
}

/// Refuses to go on when no connection opened.
fn require_some(opened: usize, errors: &ErrorSamples) -> Result<(), BenchError> {
    if opened == 0 {
        let first = errors.examples.first().cloned().unwrap_or_default();
        return Err(BenchError(format!(
            "no connection could be opened ({first})"
        )));
    }
    Ok(())
}

/// Stops every connection, [`OPEN_CONCURRENCY`] at a time.
async fn stop_all(connections: Vec<HubConnection>) {
    futures_util::stream::iter(connections)
        .for_each_concurrent(OPEN_CONCURRENCY, |connection| async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), connection.stop()).await;
        })
        .await;
}
