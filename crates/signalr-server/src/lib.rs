//! ASP.NET Core SignalR compatible hubs for axum.
//!
//! The official SignalR clients (JavaScript, .NET, Java, Python) connect to hubs served by this
//! crate as they would to an ASP.NET Core server: same negotiate, transports, hub protocol,
//! error texts and timeouts (see the project's `PROTOCOL.md` summary).
//!
//! A tour:
//! - declare a [`Hub`] with typed async methods and connect/disconnect hooks;
//! - mount it on an axum [`Router`](axum::Router) with [`HubRouterExt::map_hub`];
//! - inside methods, reach clients through [`CallContext::clients`] (`all`, `caller`, `others`,
//!   `group`, `user`, ...) and manage groups with [`CallContext::groups`];
//! - outside hubs (an HTTP handler, a timer), use a [`HubContext`] from [`Hub::context`];
//! - authenticate in ordinary axum middleware by inserting a [`HubUser`] into request
//!   extensions, or with [`BearerAuthLayer`] for bearer tokens;
//! - allow browsers on other origins with [`cors`](fn@cors);
//! - stream to clients with [`HubBuilder::stream_method`], receive their uploads as
//!   [`UploadStream`] parameters, and watch [`CallContext::cancellation_token`];
//! - call a method on one client and await its answer with [`SingleClientProxy::invoke`]
//!   (a *client result*), from a hub method or from a [`HubContext`].
//!
//! ```no_run
//! use axum::Router;
//! use signalr_server::{CallContext, Hub, HubError, HubRouterExt};
//!
//! async fn send(context: CallContext<()>, user: String, text: String) -> Result<(), HubError> {
//!     context.clients().all().send("ReceiveMessage", (user, text)).await?;
//!     Ok(())
//! }
//!
//! # async fn run() {
//! let hub = Hub::builder(()).method("SendMessage", send).build();
//! let app = Router::new().map_hub("/chat", hub);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! A client result from inside a hub method: the method gives its invocation slot back while
//! it waits, so the caller can answer even with one invocation at a time.
//!
//! ```no_run
//! use signalr_server::{CallContext, HubError, InvokeError};
//!
//! async fn ask(context: CallContext<()>) -> Result<String, HubError> {
//!     let answer: String = context
//!         .clients()
//!         .caller()
//!         .invoke("Confirm", ("Delete the file?",))
//!         .await
//!         .map_err(InvokeError::into_hub_error)?;
//!     Ok(answer)
//! }
//! ```
//!
//! # What is here
//! | part | module |
//! |---|---|
//! | hubs, method binding, client proxies | [`hub`] |
//! | connection registry and groups | [`lifetime`] |
//! | options with the reference defaults | [`HubOptions`] |
//!
//! Transports: WebSockets, Server-Sent Events, Long Polling (choose per endpoint with
//! [`HubOptions::transports`]). Hub protocols: JSON, and MessagePack with
//! [`HubBuilder::with_messagepack`]. Raw connections without the hub protocol:
//! [`HubRouterExt::map_connection`].
//!
//! # Features
//! | feature | default | what it adds |
//! |---|---|---|
//! | `messagepack` | yes | the MessagePack hub protocol |
//! | `spec-suite` | no | `lifetime::spec`, the suite every lifetime manager must pass |
#![warn(missing_docs)]

pub mod auth;
mod connection;
pub mod cors;
mod dispatch;
mod endpoint;
pub mod error;
pub mod hub;
pub mod lifetime;
mod options;
mod raw;
mod router;
mod transport;
mod user;

pub use auth::{BearerAuthLayer, bearer_token};
pub use cors::cors;
pub use error::{HubError, InvokeError, SendError};
pub use hub::{
    CallContext, CallerClients, ClientProxy, Clients, Groups, Hub, HubBuilder, HubContext,
    RequestInfo, SingleClientProxy, UploadStream,
};
pub use options::HubOptions;
pub use raw::{ConnectionClosed, ConnectionHandler, RawConnection};
pub use router::{CaseInsensitivePaths, CaseInsensitivePathsService, HubRouterExt};
pub use signalr_protocol as protocol;
pub use signalr_protocol::negotiate::TransportType;
/// The token [`CallContext::cancellation_token`] returns.
pub use tokio_util::sync::CancellationToken;
pub use user::{DefaultUserIdProvider, HubUser, UserIdProvider};
