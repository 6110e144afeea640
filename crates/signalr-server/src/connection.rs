//! The hub connection handler: one connection's life from handshake to goodbye.
//!
//! 1. Read the handshake (within the handshake timeout and the size limit) and answer it.
//! 2. Register the connection with the lifetime manager and run the hub's connect hook.
//! 3. Read messages: parse each with the chosen protocol and dispatch it, watching the client
//!    timeout once the client has pinged.
//! 4. Decide why the connection ends ([`CloseReason`]), send the matching Close message, let the
//!    transport finish, run the disconnect hook, and unregister.
//!
//! Transports only move bytes: they hand this module a stream of received chunks and drain the
//! outgoing queue it writes to.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use signalr_protocol::handshake::{HandshakeRequest, HandshakeResponse, ParsedHandshake};
use signalr_protocol::negotiate::TransportType;
use signalr_protocol::{Close, HubMessage, HubProtocol};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::dispatch::Dispatcher;
use crate::endpoint::EndpointHandler;
use crate::error::HubError;
use crate::hub::context::{CallScope, ConnectionInfo};
use crate::hub::{BoxFuture, CallContext, HubShared, RequestInfo};
use crate::lifetime::ConnectionHandle;
use crate::user::HubUser;

/// What a transport's writer needs to know once the handshake chose a protocol.
#[derive(Debug)]
pub(crate) struct WriterProtocol {
    /// A framed Ping in the connection's protocol.
    pub(crate) ping: Bytes,
    /// Send pings when nothing was sent for this long (`None` on Long Polling).
    pub(crate) keep_alive: Option<Duration>,
    /// Whether frames must be binary.
    pub(crate) binary: bool,
}

/// A transport's report that the client sent more in one piece than it may buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameTooLarge;

/// One item of a transport's inbound stream.
pub(crate) type Inbound = Result<Bytes, FrameTooLarge>;

pub(crate) fn size_exceeded(limit: usize) -> CloseReason {
    CloseReason::ProtocolError(format!(
        "The maximum message size of {limit}B was exceeded. The message size can be configured \
         in AddHubOptions."
    ))
}

/// Everything a transport hands over to run a hub connection.
pub(crate) struct ConnectionParts {
    /// Chunks received from the client; the stream ends when the transport closes.
    /// [`FrameTooLarge`] ends the connection with the size-limit error.
    pub(crate) inbound: BoxStream<'static, Inbound>,
    /// The outgoing queue the transport's writer drains.
    pub(crate) outbound: mpsc::Sender<Bytes>,
    /// Cancelled to end the connection (hub code, slow client, failed writer).
    pub(crate) aborted: CancellationToken,
    /// Cancelled by this handler when it is done writing: the writer flushes and closes.
    pub(crate) closing: CancellationToken,
    /// Cancelled when the client stopped reading: the writer drops what is queued.
    pub(crate) stalled: CancellationToken,
    /// How long one send may wait for room in the outgoing queue.
    pub(crate) send_timeout: Duration,
    /// Filled in after the handshake.
    pub(crate) writer: Arc<OnceLock<WriterProtocol>>,
    pub(crate) connection_id: String,
    pub(crate) request: RequestInfo,
    pub(crate) user: Option<HubUser>,
    pub(crate) transport: TransportType,
}

/// Why a connection ends; decides the Close message (PROTOCOL.md §10).
#[derive(Debug)]
pub(crate) enum CloseReason {
    /// The client sent a Close message.
    ClientClosed,
    /// Hub code or the server aborted the connection.
    Aborted,
    /// The transport closed without a Close message.
    TransportEnded,
    /// The connect hook failed.
    ConnectHookFailed(HubError),
    /// The client broke the protocol or the size limit (the detail text).
    ProtocolError(String),
    /// Nothing arrived for the client timeout after the client started pinging.
    ClientTimeout,
}

impl CloseReason {
    fn close_message(&self, detailed: bool) -> Close {
        const TEXT: &str = "Connection closed with an error.";
        let with_detail = |detail: &str| {
            Some(if detailed {
                format!("{TEXT} {detail}")
            } else {
                TEXT.to_owned()
            })
        };
        match self {
            CloseReason::ClientClosed | CloseReason::Aborted => Close::default(),
            CloseReason::TransportEnded => Close {
                error: None,
                allow_reconnect: true,
            },
            CloseReason::ConnectHookFailed(error) => Close {
                error: Some(error.describe(TEXT, detailed)),
                allow_reconnect: false,
            },
            CloseReason::ProtocolError(detail) => Close {
                error: with_detail(&format!("InvalidDataException: {detail}")),
                allow_reconnect: true,
            },
            CloseReason::ClientTimeout => Close {
                error: with_detail(
                    "OperationCanceledException: Client hasn't sent a message/ping within the \
                     configured ClientTimeoutInterval.",
                ),
                allow_reconnect: true,
            },
        }
    }
}

impl<S: Clone + Send + Sync + 'static> EndpointHandler for HubShared<S> {
    fn run(self: Arc<Self>, parts: ConnectionParts) -> BoxFuture<()> {
        Box::pin(run(self, parts))
    }
}

/// Runs one hub connection to its end.
///
/// Plain functions returning futures, not `async fn`s: an `async fn` keeps room for its
/// arguments beside its body's copy of them for the connection's whole life (`parts` alone is
/// a few hundred bytes).
pub(crate) fn run<S>(
    hub: Arc<HubShared<S>>,
    parts: ConnectionParts,
) -> impl Future<Output = ()> + Send + 'static
where
    S: Clone + Send + Sync + 'static,
{
    let span = tracing::debug_span!(
        "connection",
        connection_id = %parts.connection_id,
        transport = parts.transport.as_str(),
    );
    run_in_span(hub, parts).instrument(span)
}

#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would keep a second copy of `parts` (see `run`)"
)]
fn run_in_span<S>(
    hub: Arc<HubShared<S>>,
    mut parts: ConnectionParts,
) -> impl Future<Output = ()> + Send + 'static
where
    S: Clone + Send + Sync + 'static,
{
    async move {
        let mut buffer = BytesMut::new();
        let Some(protocol) = handshake(&hub, &mut parts, &mut buffer).await else {
            parts.closing.cancel();
            return;
        };
        tracing::debug!(protocol = protocol.name(), "handshake completed");

        let handle = Arc::new(
            ConnectionHandle::new(
                parts.connection_id.clone(),
                hub.user_ids.user_id(parts.user.as_ref()),
                protocol.name(),
                parts.outbound.clone(),
                parts.aborted.clone(),
                hub.options.send_timeout,
            )
            .with_stall_signal(parts.stalled.clone()),
        );
        // Cancelled when the connection ends: every call's cancellation token derives from it.
        let ended = CancellationToken::new();
        let context = CallContext {
            hub: hub.clone(),
            connection: Arc::new(ConnectionInfo {
                handle: handle.clone(),
                user: parts.user.take(),
                request: std::mem::take(&mut parts.request),
                transport: parts.transport,
                items: Mutex::default(),
            }),
            scope: Arc::new(CallScope {
                in_connect_hook: true,
                ..CallScope::new(ended.clone())
            }),
        };
        hub.sender.lifetime.on_connected(handle.clone()).await;

        let connected = match &hub.on_connected {
            Some(hook) => hook(context.clone()).await,
            None => Ok(()),
        };
        let context = context.with_scope(CallScope::new(ended.clone()));
        let reason = match connected {
            Err(error) => CloseReason::ConnectHookFailed(error),
            Ok(()) => {
                let mut dispatcher = Dispatcher::new(
                    context.clone(),
                    protocol.clone(),
                    parts.aborted.clone(),
                    ended.clone(),
                );
                let reason = dispatcher.read_loop(&mut parts, &mut buffer).await;
                dispatcher.finish();
                reason
            }
        };
        ended.cancel();
        handle.mark_ended();
        tracing::debug!(?reason, "connection closing");

        let close = reason.close_message(hub.options.enable_detailed_errors);
        if let Ok(bytes) = protocol.to_bytes(&HubMessage::Close(close)) {
            let _ = parts.outbound.try_send(bytes);
        }
        parts.closing.cancel();

        if let Some(hook) = &hub.on_disconnected
            && let Err(error) = hook(context).await
        {
            tracing::warn!(%error, "the disconnect hook failed");
        }
        hub.sender
            .lifetime
            .on_disconnected(handle.connection_id())
            .await;
    }
}

/// What the handshake read produced.
enum HandshakeRead {
    Request(HandshakeRequest),
    Malformed(String),
    TooLarge,
    Closed,
}

/// Reads and answers the handshake; `None` when the connection must end.
async fn handshake<S>(
    hub: &HubShared<S>,
    parts: &mut ConnectionParts,
    buffer: &mut BytesMut,
) -> Option<Arc<dyn HubProtocol>> {
    let options = &hub.options;
    let read = read_handshake(
        &mut parts.inbound,
        buffer,
        options.maximum_receive_message_size,
    );
    let read = tokio::time::timeout(options.handshake_timeout, read);
    let read = tokio::select! {
        read = read => read,
        // Ended before the handshake (a DELETE, no poll in time): nothing to answer.
        _ = parts.aborted.cancelled() => return None,
    };
    let request = match read {
        Ok(HandshakeRead::Request(request)) => request,
        Ok(HandshakeRead::Closed) => return None,
        Err(_) | Ok(HandshakeRead::TooLarge) => {
            return refuse(&parts.outbound, "Handshake was canceled.".to_owned()).await;
        }
        Ok(HandshakeRead::Malformed(detail)) => {
            let text = "An unexpected error occurred during connection handshake.";
            let text = match options.enable_detailed_errors {
                true => format!("{text} InvalidDataException: {detail}"),
                false => text.to_owned(),
            };
            return refuse(&parts.outbound, text).await;
        }
    };

    let requested = &request.protocol;
    let Some(protocol) = hub
        .sender
        .protocols
        .iter()
        .find(|p| p.name().eq_ignore_ascii_case(requested))
        .cloned()
    else {
        return refuse(
            &parts.outbound,
            format!("The protocol '{requested}' is not supported."),
        )
        .await;
    };
    if request.version > protocol.version() {
        let text = format!(
            "The server does not support version {} of the '{}' protocol.",
            request.version,
            protocol.name()
        );
        return refuse(&parts.outbound, text).await;
    }
    let format = protocol.transfer_format();
    if !parts.transport.transfer_formats().contains(&format) {
        let text = format!(
            "Cannot use the '{}' protocol on the current transport. The transport does not \
             support '{}' transfer format.",
            protocol.name(),
            format.as_str()
        );
        return refuse(&parts.outbound, text).await;
    }

    let ping = protocol
        .to_bytes(&HubMessage::Ping)
        .expect("a ping always writes");
    let keep_alive =
        (parts.transport != TransportType::LongPolling).then_some(options.keep_alive_interval);
    let binary = format == signalr_protocol::TransferFormat::Binary;
    let _ = parts.writer.set(WriterProtocol {
        ping,
        keep_alive,
        binary,
    });
    parts
        .outbound
        .send(Bytes::from(HandshakeResponse::Ok.to_bytes()))
        .await
        .ok()?;
    Some(protocol)
}

async fn refuse(outbound: &mpsc::Sender<Bytes>, error: String) -> Option<Arc<dyn HubProtocol>> {
    tracing::debug!(%error, "handshake refused");
    let response = HandshakeResponse::Error(error).to_bytes();
    let _ = outbound.send(Bytes::from(response)).await;
    None
}

async fn read_handshake<I>(
    inbound: &mut I,
    buffer: &mut BytesMut,
    limit: Option<usize>,
) -> HandshakeRead
where
    I: Stream<Item = Inbound> + Unpin,
{
    loop {
        let visible = limit.map_or(buffer.len(), |limit| buffer.len().min(limit));
        match HandshakeRequest::parse(&buffer[..visible]) {
            Ok(ParsedHandshake::Request(request, consumed)) => {
                buffer.advance(consumed);
                return HandshakeRead::Request(request);
            }
            Ok(ParsedHandshake::Incomplete) if limit.is_some_and(|limit| buffer.len() > limit) => {
                return HandshakeRead::TooLarge;
            }
            Ok(ParsedHandshake::Incomplete) => {}
            Err(error) => return HandshakeRead::Malformed(error.to_string()),
        }
        match inbound.next().await {
            Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
            Some(Err(FrameTooLarge)) => return HandshakeRead::TooLarge,
            None => return HandshakeRead::Closed,
        }
    }
}
