//! The ceiling for `echo`: a raw WebSocket echo server on the stack `signalr-server` uses
//! (axum's WebSocket upgrade over tungstenite 0.29, with the server's buffer settings: 4 KiB
//! read buffer, no write buffer, so every frame is written at once). It answers each text or
//! binary frame with the same frame and has no hub layer at all: no negotiate, no handshake,
//! no parsing. The bench drives it with `echo --raw --skip-negotiation` (its handshake request
//! comes back unchanged, which reads as an accepting answer; each `Echo` invocation record
//! comes back as itself and counts as the answer).
//!
//! ```sh
//! cargo run --release -p signalr-bench --example ws_echo -- 127.0.0.1:5001
//! cargo run --release -p signalr-bench -- echo --raw --skip-negotiation --url ws://127.0.0.1:5001/echo
//! ```
//!
//! It serves every path, and prints its process id and address as the `hub` example does.

use axum::Router;
use axum::extract::WebSocketUpgrade;
use axum::extract::ws::{Message, WebSocket};
use axum::response::Response;

/// The frame limit the hub endpoint uses by default (the reference's 32 KiB).
const FRAME_LIMIT: usize = 32 * 1024;

async fn upgrade(upgrade: WebSocketUpgrade) -> Response {
    // The same settings as signalr-server's `transport::websocket::configure`.
    upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(FRAME_LIMIT)
        .max_frame_size(FRAME_LIMIT)
        .on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let answer = match message {
            Message::Text(_) | Message::Binary(_) => message,
            Message::Close(_) => break,
            // Pings are answered by tungstenite itself.
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if socket.send(answer).await.is_err() {
            break;
        }
    }
}

#[tokio::main]
async fn main() {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5001".to_owned());
    let app = Router::new().fallback(upgrade);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .unwrap_or_else(|error| panic!("cannot listen on {address}: {error}"));
    let address = listener.local_addr().expect("a bound address");
    println!("pid {} serving ws://{address}/echo", std::process::id());
    axum::serve(listener, app).await.expect("the server runs");
}
