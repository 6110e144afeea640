//! The WebSockets transport (PROTOCOL.md §3.2).
//!
//! One task reads frames and feeds their payloads to the hub connection handler; one writer
//! drains the connection's outgoing queue, joining whatever is queued into one frame (each
//! queued item holds whole messages, so a frame does too), and sends a Ping when nothing was
//! sent for the keep-alive interval. The frame type follows the protocol chosen in the
//! handshake: text for JSON.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::WebSocketUpgrade;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use bytes::{Bytes, BytesMut};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use signalr_protocol::negotiate::TransportType;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connection::{self, ConnectionParts, FrameTooLarge, WriterProtocol};
use crate::hub::{HubShared, RequestInfo};
use crate::options::HubOptions;
use crate::user::HubUser;

/// The most bytes joined into one outgoing frame.
const FRAME_BATCH_LIMIT: usize = 64 * 1024;

/// Sizes the socket's buffers for many mostly idle connections.
pub(crate) fn configure(upgrade: WebSocketUpgrade, options: &HubOptions) -> WebSocketUpgrade {
    // A frame may carry many messages (clients batch what they queue), so it may be far
    // larger than the message limit, which the hub handler enforces per message; this cap only
    // bounds what one frame can make the server buffer.
    let frame_limit = options
        .maximum_receive_message_size
        .map_or(64 << 20, |limit| (limit * 64).max(16 << 20));
    upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(frame_limit)
        .max_frame_size(frame_limit)
}

/// Runs a hub connection over an upgraded socket.
pub(crate) async fn serve<S>(
    socket: WebSocket,
    hub: Arc<HubShared<S>>,
    connection_id: String,
    request: RequestInfo,
    user: Option<HubUser>,
) where
    S: Clone + Send + Sync + 'static,
{
    let (sink, stream) = socket.split();
    let (outbound, queue) = mpsc::channel(hub.options.outbound_queue_capacity);
    let aborted = CancellationToken::new();
    let closing = CancellationToken::new();
    let writer_protocol = Arc::new(OnceLock::new());
    let writer = tokio::spawn(write_loop(
        sink,
        hub.options.send_timeout,
        queue,
        closing.clone(),
        aborted.clone(),
        writer_protocol.clone(),
    ));
    let inbound = futures_util::stream::unfold(Some(stream), |stream| async move {
        let mut stream = stream?;
        loop {
            let received = match stream.next().await? {
                Ok(Message::Text(text)) => Ok(Bytes::from(text)),
                Ok(Message::Binary(bytes)) => Ok(bytes),
                Ok(Message::Close(_)) => return None,
                Ok(_) => continue,
                Err(error) if is_too_large(&error) => return Some((Err(FrameTooLarge), None)),
                Err(_) => return None,
            };
            return Some((received, Some(stream)));
        }
    });
    let parts = ConnectionParts {
        inbound: Box::pin(inbound),
        outbound,
        aborted,
        closing,
        writer: writer_protocol,
        connection_id,
        request,
        user,
        transport: TransportType::WebSockets,
    };
    connection::run(hub, parts).await;
    let _ = writer.await;
}

type Sink = SplitSink<WebSocket, Message>;

/// Drains the outgoing queue into frames until the handler is done, then closes with 1000.
async fn write_loop(
    mut sink: Sink,
    send_timeout: Duration,
    mut queue: mpsc::Receiver<Bytes>,
    closing: CancellationToken,
    aborted: CancellationToken,
    protocol: Arc<OnceLock<WriterProtocol>>,
) {
    let mut failed = false;
    loop {
        let keep_alive = protocol.get().and_then(|protocol| protocol.keep_alive);
        let next = tokio::select! {
            biased;
            next = queue.recv() => next,
            _ = closing.cancelled() => None,
            _ = sleep_or_forever(keep_alive) => protocol.get().map(|protocol| protocol.ping.clone()),
        };
        let Some(first) = next else { break };
        let frame = join_queued(first, &mut queue);
        if send_frame(&mut sink, frame, &protocol, send_timeout)
            .await
            .is_err()
        {
            aborted.cancel();
            failed = true;
            break;
        }
    }
    // The handler is done: send what it queued last (its Close message), then close.
    while !failed && let Ok(first) = queue.try_recv() {
        let frame = join_queued(first, &mut queue);
        failed = send_frame(&mut sink, frame, &protocol, send_timeout)
            .await
            .is_err();
    }
    drop(queue);
    if !failed {
        let close = CloseFrame {
            code: close_code::NORMAL,
            reason: Utf8Bytes::from_static(""),
        };
        let _ = tokio::time::timeout(send_timeout, sink.send(Message::Close(Some(close)))).await;
    }
    // Also after a failed send: when the client closed first, this flushes the reply to its
    // close frame that the socket still owes it. A client that reads nothing is not waited
    // for longer than one send.
    let _ = tokio::time::timeout(send_timeout, sink.close()).await;
}

/// Whether a read failed because a frame was over the cap.
fn is_too_large(error: &axum::Error) -> bool {
    let source = std::error::Error::source(error);
    source
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|error| matches!(error, tungstenite::Error::Capacity(_)))
}

async fn sleep_or_forever(duration: Option<std::time::Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

/// Appends whatever else is queued to `first`, up to the batch limit.
fn join_queued(first: Bytes, queue: &mut mpsc::Receiver<Bytes>) -> Bytes {
    let Ok(second) = queue.try_recv() else {
        return first;
    };
    let mut frame = BytesMut::with_capacity(first.len() + second.len());
    frame.extend_from_slice(&first);
    frame.extend_from_slice(&second);
    while frame.len() < FRAME_BATCH_LIMIT {
        let Ok(more) = queue.try_recv() else { break };
        frame.extend_from_slice(&more);
    }
    frame.freeze()
}

/// Sends one frame; a send that takes longer than `send_timeout` (a client that stopped
/// reading) fails, as the reference's `TransportSendTimeout` does.
async fn send_frame(
    sink: &mut Sink,
    frame: Bytes,
    protocol: &OnceLock<WriterProtocol>,
    send_timeout: Duration,
) -> Result<(), axum::Error> {
    let binary = protocol.get().is_some_and(|protocol| protocol.binary);
    let message = if binary {
        Message::Binary(frame)
    } else {
        match Utf8Bytes::try_from(frame) {
            Ok(text) => Message::Text(text),
            Err(_) => return Err(axum::Error::new("outgoing text was not UTF-8")),
        }
    };
    match tokio::time::timeout(send_timeout, sink.send(message)).await {
        Ok(sent) => sent,
        Err(_) => Err(axum::Error::new(
            "the client did not read within the send timeout",
        )),
    }
}
