//! Raw connections: an endpoint that takes bytes without the hub protocol, over the same
//! negotiate and transports as hubs (the reference's `ConnectionHandler`).
//!
//! ```no_run
//! use axum::Router;
//! use signalr_server::{HubOptions, HubRouterExt, RawConnection};
//!
//! // Writes every received chunk back.
//! async fn echo(mut connection: RawConnection) {
//!     while let Some(bytes) = connection.receive().await {
//!         if connection.send(bytes).await.is_err() {
//!             break;
//!         }
//!     }
//! }
//!
//! let app: Router = Router::new().map_connection("/echo", echo, HubOptions::default());
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use signalr_protocol::negotiate::TransportType;
use sync_wrapper::SyncWrapper;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connection::{ConnectionParts, Inbound};
use crate::endpoint::EndpointHandler;
use crate::hub::{BoxFuture, RequestInfo};
use crate::user::HubUser;

/// Runs one raw connection; the connection ends when the returned future does.
///
/// Implemented for every `Fn(RawConnection) -> impl Future<Output = ()>`.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// Runs `connection` to its end.
    fn run(&self, connection: RawConnection) -> BoxFuture<()>;
}

impl<F, Fut> ConnectionHandler for F
where
    F: Fn(RawConnection) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn run(&self, connection: RawConnection) -> BoxFuture<()> {
        Box::pin(self(connection))
    }
}

/// One raw connection: received chunks in, bytes out.
pub struct RawConnection {
    /// Only `receive` (with `&mut self`) touches it; the wrapper makes the connection `Sync`,
    /// so a handler may hold `&RawConnection` across an await and stay `Send`.
    inbound: SyncWrapper<BoxStream<'static, Inbound>>,
    outbound: mpsc::Sender<Bytes>,
    aborted: CancellationToken,
    stalled: CancellationToken,
    send_timeout: Duration,
    connection_id: String,
    request: RequestInfo,
    user: Option<HubUser>,
    transport: TransportType,
}

/// The connection is closed; nothing more can be sent.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the connection is closed")]
pub struct ConnectionClosed;

impl RawConnection {
    /// The next chunk the client sent (a WebSocket message, a POST body); `None` once the
    /// client is gone.
    pub async fn receive(&mut self) -> Option<Bytes> {
        tokio::select! {
            _ = self.aborted.cancelled() => None,
            received = self.inbound.get_mut().next() => received.and_then(Result::ok),
        }
    }

    /// Sends bytes to the client as one message (a WebSocket message, an SSE event, or part
    /// of a poll answer). Waits while the outgoing queue is full; a client that reads nothing
    /// for the send timeout is disconnected.
    ///
    /// # Errors
    /// [`ConnectionClosed`] when the connection has ended or was just closed as too slow.
    pub async fn send(&self, bytes: Bytes) -> Result<(), ConnectionClosed> {
        if self.aborted.is_cancelled() {
            return Err(ConnectionClosed);
        }
        let sent = tokio::select! {
            sent = tokio::time::timeout(self.send_timeout, self.outbound.send(bytes)) => sent,
            _ = self.aborted.cancelled() => return Err(ConnectionClosed),
        };
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ConnectionClosed),
            Err(_) => {
                tracing::warn!(connection_id = %self.connection_id, "the client stopped reading; closing the connection");
                self.stalled.cancel();
                self.aborted.cancel();
                Err(ConnectionClosed)
            }
        }
    }

    /// The public connection id.
    pub fn connection_id(&self) -> &str {
        &self.connection_id
    }

    /// The request that opened the connection.
    pub fn request(&self) -> &RequestInfo {
        &self.request
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<&HubUser> {
        self.user.as_ref()
    }

    /// The transport in use.
    pub fn transport(&self) -> TransportType {
        self.transport
    }
}

/// Adapts a [`ConnectionHandler`] to the endpoint.
pub(crate) struct RawEndpoint<H>(pub(crate) H);

impl<H: ConnectionHandler> EndpointHandler for RawEndpoint<H> {
    fn run(self: Arc<Self>, parts: ConnectionParts) -> BoxFuture<()> {
        Box::pin(async move {
            let closing = parts.closing.clone();
            let connection = RawConnection {
                inbound: SyncWrapper::new(parts.inbound),
                outbound: parts.outbound,
                aborted: parts.aborted,
                stalled: parts.stalled,
                send_timeout: parts.send_timeout,
                connection_id: parts.connection_id,
                request: parts.request,
                user: parts.user,
                transport: parts.transport,
            };
            self.0.run(connection).await;
            closing.cancel();
        })
    }
}
