//! Transports move bytes between a client and its connection handler; they know nothing of the
//! hub protocol.
//!
//! Every transport gets the same two ends from [`open`]: the [`ConnectionParts`] the handler
//! runs on, and the [`Outgoing`] side it drains. WebSockets write each outgoing batch as one
//! frame, Server-Sent Events as one event, Long Polling as one poll response.

pub(crate) mod long_polling;
pub(crate) mod sse;
pub(crate) mod websocket;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use signalr_protocol::negotiate::TransportType;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connection::{ConnectionParts, Inbound, WriterProtocol};
use crate::hub::RequestInfo;
use crate::options::HubOptions;
use crate::user::HubUser;

/// The most bytes joined into one WebSocket frame or event.
const BATCH_LIMIT: usize = 64 * 1024;

/// Who is connecting, over what: the parts of a new connection that come from its request.
pub(crate) struct Opening {
    pub(crate) connection_id: String,
    pub(crate) request: RequestInfo,
    pub(crate) user: Option<HubUser>,
    pub(crate) transport: TransportType,
}

/// Makes the queues and signals of a new connection.
pub(crate) fn open(
    opening: Opening,
    inbound: BoxStream<'static, Inbound>,
    options: &HubOptions,
) -> (ConnectionParts, Outgoing) {
    let (outbound, queue) = mpsc::channel(options.outbound_queue_capacity);
    let closing = CancellationToken::new();
    let stalled = CancellationToken::new();
    let writer = Arc::new(OnceLock::new());
    let parts = ConnectionParts {
        inbound,
        outbound,
        aborted: CancellationToken::new(),
        closing: closing.clone(),
        stalled: stalled.clone(),
        send_timeout: options.send_timeout,
        writer: writer.clone(),
        connection_id: opening.connection_id,
        request: opening.request,
        user: opening.user,
        transport: opening.transport,
    };
    let outgoing = Outgoing {
        queue,
        closing,
        stalled,
        writer,
        closed: false,
    };
    (parts, outgoing)
}

/// The draining end of a connection's outgoing queue.
pub(crate) struct Outgoing {
    queue: mpsc::Receiver<Bytes>,
    closing: CancellationToken,
    stalled: CancellationToken,
    writer: Arc<OnceLock<WriterProtocol>>,
    /// Set once the handler is done; what is left in the queue is still handed out.
    closed: bool,
}

impl Outgoing {
    /// The next batch to write: everything queued (up to the batch limit), or a Ping when
    /// nothing was sent for the keep-alive interval. `None` once the handler is done and the
    /// queue is empty.
    pub(crate) async fn next_batch(&mut self) -> Option<Bytes> {
        if self.stalled.is_cancelled() {
            return self.discard();
        }
        if !self.closed {
            let keep_alive = self.writer.get().and_then(|writer| writer.keep_alive);
            let next = tokio::select! {
                biased;
                _ = self.stalled.cancelled() => return self.discard(),
                next = self.queue.recv() => next,
                _ = self.closing.cancelled() => None,
                _ = sleep_or_forever(keep_alive) => self.writer.get().map(|writer| writer.ping.clone()),
            };
            if let Some(first) = next {
                return Some(self.join_queued(first, BATCH_LIMIT));
            }
            self.closed = true;
        }
        let first = self.queue.try_recv().ok()?;
        Some(self.join_queued(first, BATCH_LIMIT))
    }

    /// Everything queued now, joined; `None` when nothing is.
    pub(crate) fn take_queued(&mut self) -> Option<Bytes> {
        let first = self.queue.try_recv().ok()?;
        Some(self.join_queued(first, usize::MAX))
    }

    /// Waits for the first queued item and joins what else is queued; `None` when the handler
    /// finished with nothing left to send.
    pub(crate) async fn wait_queued(&mut self) -> Option<Bytes> {
        if self.stalled.is_cancelled() {
            return self.discard();
        }
        let next = tokio::select! {
            biased;
            _ = self.stalled.cancelled() => return self.discard(),
            next = self.queue.recv() => next,
            _ = self.closing.cancelled() => return self.take_queued(),
        };
        next.map(|first| self.join_queued(first, usize::MAX))
    }

    /// The client stopped reading: what is queued is dropped (its memory freed), and the
    /// transport ends.
    fn discard(&mut self) -> Option<Bytes> {
        self.queue.close();
        while self.queue.try_recv().is_ok() {}
        None
    }

    /// Whether frames must be binary (the handshake chose a binary protocol).
    pub(crate) fn binary(&self) -> bool {
        self.writer.get().is_some_and(|writer| writer.binary)
    }

    /// Appends what else is queued to `first`, up to `limit` bytes.
    fn join_queued(&mut self, first: Bytes, limit: usize) -> Bytes {
        let Ok(second) = self.queue.try_recv() else {
            return first;
        };
        let mut batch = BytesMut::with_capacity(first.len() + second.len());
        batch.extend_from_slice(&first);
        batch.extend_from_slice(&second);
        while batch.len() < limit {
            let Ok(more) = self.queue.try_recv() else {
                break;
            };
            batch.extend_from_slice(&more);
        }
        batch.freeze()
    }
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}
