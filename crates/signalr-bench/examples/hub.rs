//! A `signalr-server` hub serving the bench's contract (`Echo`, `Broadcast` → `Receive`) at
//! `/bench`, JSON and MessagePack, for trying the bench by hand:
//!
//! ```sh
//! cargo run --release -p signalr-bench --example hub -- 127.0.0.1:5000
//! cargo run --release -p signalr-bench -- echo --url http://127.0.0.1:5000/bench
//! ```
//!
//! It prints its process id and address, for `--server-pid`. A second argument, a Redis URL
//! (`redis://127.0.0.1:6379`), puts the hub on the Redis backplane, for measuring several
//! nodes.

use std::sync::Arc;

use axum::Router;
use signalr_server::{CallContext, Hub, HubError, HubRouterExt};

async fn echo(_context: CallContext<()>, text: String) -> Result<String, HubError> {
    Ok(text)
}

async fn broadcast(
    context: CallContext<()>,
    sent_at_micros: i64,
    payload: String,
) -> Result<(), HubError> {
    context
        .clients()
        .all()
        .send("Receive", (sent_at_micros, payload))
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let mut arguments = std::env::args().skip(1);
    let address = arguments
        .next()
        .unwrap_or_else(|| "127.0.0.1:5000".to_owned());
    let mut hub = Hub::builder(())
        .method("Echo", echo)
        .method("Broadcast", broadcast)
        .with_messagepack();
    if let Some(redis) = arguments.next() {
        let options = signalr_redis::RedisOptions::default();
        let backplane = signalr_redis::RedisLifetimeManager::connect(&redis, "Bench.Hub", options)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        hub = hub.lifetime_manager(Arc::new(backplane));
    }
    let hub = hub.build();
    let app = Router::new().map_hub("/bench", hub);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .unwrap_or_else(|error| panic!("cannot listen on {address}: {error}"));
    let address = listener.local_addr().expect("a bound address");
    println!("pid {} serving http://{address}/bench", std::process::id());
    axum::serve(listener, app).await.expect("the server runs");
}
