//! A `signalr-server` hub serving the bench's contract (`Echo`, `Broadcast` → `Receive`) at
//! `/bench`, JSON and MessagePack, for trying the bench by hand:
//!
//! ```sh
//! cargo run --release -p signalr-bench --example hub -- 127.0.0.1:5000
//! cargo run --release -p signalr-bench -- echo --url http://127.0.0.1:5000/bench
//! ```
//!
//! It prints its process id and address, for `--server-pid`.

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
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5000".to_owned());
    let hub = Hub::builder(())
        .method("Echo", echo)
        .method("Broadcast", broadcast)
        .with_messagepack()
        .build();
    let app = Router::new().map_hub("/bench", hub);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .unwrap_or_else(|error| panic!("cannot listen on {address}: {error}"));
    let address = listener.local_addr().expect("a bound address");
    println!("pid {} serving http://{address}/bench", std::process::id());
    axum::serve(listener, app).await.expect("the server runs");
}
