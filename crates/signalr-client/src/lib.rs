//! A client for ASP.NET Core SignalR hubs and for hubs served by `signalr-server`.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use signalr_client::HubConnection;
//!
//! # async fn run() -> Result<(), signalr_client::ClientError> {
//! let connection = HubConnection::builder("http://127.0.0.1:5000/hubs/chat").build();
//! connection.on("ReceiveMessage", |(user, text): (String, String)| async move {
//!     println!("{user}: {text}");
//! });
//! connection.start().await?;
//! connection.send("SendMessage", ("me", "hello")).await?;
//! let total: i64 = connection.invoke("Add", (1, 2)).await?;
//! let mut ticks = connection.stream::<u32, _>("Count", (10,)).await?;
//! while let Some(tick) = ticks.next().await {
//!     println!("{}", tick?);
//! }
//! connection.stop().await;
//! # let _ = total;
//! # Ok(())
//! # }
//! ```
//!
//! What is here: negotiate (version 1, redirects followed), WebSockets, Server-Sent Events and
//! Long Polling (tried in a configurable order), the JSON and MessagePack hub protocols,
//! `invoke`, `send`, `stream` (cancelled on drop), handlers (`on`), answers to client-result
//! invocations (`on_invoke`), keep-alive pings, the server timeout, automatic reconnect with
//! lifecycle events, upload streams ([`Upload`]), and TLS for `https://` and `wss://` hubs
//! (rustls; Mozilla's root certificates, plus any authority given to
//! [`HubConnectionBuilder::add_root_certificate`], or a whole
//! [`HubConnectionBuilder::tls_config`]).
#![warn(missing_docs)]

mod connection;
mod error;
mod negotiate;
mod tls;
mod transport;

pub use connection::{
    HubConnection, HubConnectionBuilder, HubStream, RetryContext, RetryPolicy, Upload,
};
pub use error::ClientError;
pub use rustls;
pub use signalr_protocol as protocol;
pub use signalr_protocol::negotiate::TransportType;
