//! Watches the showcase's live vote ticker and counts page views, from Rust.
//!
//! Start the showcase (`./scripts/showcase` at the repository root), then:
//!
//! ```sh
//! cargo run -p signalr-client --example vote_ticker -- http://127.0.0.1:5000
//! ```

use futures_util::StreamExt;
use signalr_client::{ClientError, HubConnection};

#[derive(Debug, serde::Deserialize)]
struct Tick {
    seq: u64,
    votes: serde_json::Value,
    at: String,
}

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:5000".to_owned());

    // A hub method with a result, and a broadcast handler.
    let counter = HubConnection::builder(format!("{base}/hubs/userCount")).build();
    counter.on("updateTotalViews", |(views,): (i64,)| async move {
        println!("total views now {views}");
    });
    counter.start().await?;
    let greeting: String = counter.invoke("NewWindowLoaded", ("rust",)).await?;
    println!("{greeting}");

    // A server-to-client stream: five ticks, one every half second.
    let ticker = HubConnection::builder(format!("{base}/hubs/stream"))
        .with_messagepack()
        .build();
    ticker.start().await?;
    let mut ticks = ticker.stream::<Tick, _>("Ticker", (5, 500)).await?;
    while let Some(tick) = ticks.next().await {
        let tick = tick?;
        println!("tick {} at {}: {}", tick.seq, tick.at, tick.votes);
    }

    ticker.stop().await;
    counter.stop().await;
    Ok(())
}
