//! The WebSockets transport (PROTOCOL.md §3.2).
//!
//! One stream reads frames and feeds their payloads to the connection handler; one writer
//! drains the outgoing queue, each batch as one frame (queued items hold whole messages, so a
//! frame does too). The frame type follows the protocol chosen in the handshake: text for
//! JSON, binary for binary protocols; a raw connection's bytes go as text when they are UTF-8.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::WebSocketUpgrade;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio_util::sync::CancellationToken;

use super::{Opening, Outgoing};
use crate::connection::FrameTooLarge;
use crate::endpoint::EndpointHandler;
use crate::options::HubOptions;

/// Sizes the socket's buffers for many mostly idle connections; `frame_limit` bounds what one
/// frame can make the server buffer.
pub(crate) fn configure(upgrade: WebSocketUpgrade, frame_limit: usize) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(frame_limit)
        .max_frame_size(frame_limit)
}

/// Runs a connection over an upgraded socket.
///
/// The setup happens here, before the returned future exists, so that the future holds only
/// what lives as long as the connection: the handler's future and the writer's. An idle
/// connection's memory is mostly such futures.
pub(crate) fn serve(
    socket: WebSocket,
    handler: Arc<dyn EndpointHandler>,
    opening: Opening,
    options: &HubOptions,
) -> impl Future<Output = ()> + Send + use<> {
    let (sink, stream) = socket.split();
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
    let (parts, outgoing) = super::open(opening, inbound.boxed(), options);
    // The writer has a task of its own: it then writes what the handler's calls queued
    // meanwhile as one frame (on one task with the handler, echo throughput fell by a fifth).
    let writer = tokio::spawn(write_loop(
        sink,
        outgoing,
        options.send_timeout,
        parts.aborted.clone(),
    ));
    // Combinators rather than an `async` block: a block would keep its captured futures
    // beside the copies it awaits.
    handler.run(parts).then(|()| writer).map(|_| ())
}

type Sink = SplitSink<WebSocket, Message>;

/// Writes batches until the handler is done, then closes with 1000.
async fn write_loop(
    mut sink: Sink,
    mut outgoing: Outgoing,
    send_timeout: Duration,
    aborted: CancellationToken,
) {
    let mut failed = false;
    while let Some(batch) = outgoing.next_batch().await {
        let binary = outgoing.binary();
        if send_frame(&mut sink, batch, binary, send_timeout)
            .await
            .is_err()
        {
            aborted.cancel();
            failed = true;
            break;
        }
    }
    drop(outgoing);
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

/// Sends one frame; a send that takes longer than `send_timeout` (a client that stopped
/// reading) fails, as the reference's `TransportSendTimeout` does.
async fn send_frame(
    sink: &mut Sink,
    frame: Bytes,
    binary: bool,
    send_timeout: Duration,
) -> Result<(), axum::Error> {
    let message = if binary {
        Message::Binary(frame)
    } else {
        // Cloning shares the bytes; only a raw connection's non-UTF-8 bytes need them back.
        match Utf8Bytes::try_from(frame.clone()) {
            Ok(text) => Message::Text(text),
            Err(_) => Message::Binary(frame),
        }
    };
    match tokio::time::timeout(send_timeout, sink.send(message)).await {
        Ok(sent) => sent,
        Err(_) => Err(axum::Error::new(
            "the client did not read within the send timeout",
        )),
    }
}
