//! The dispatcher: one connection's messages become hub method calls, streams in both
//! directions and client-result answers (PROTOCOL.md §8 and §9).
//!
//! Messages are handled in order on the connection's read loop. Every call runs in a task of
//! its own:
//! - a plain invocation first takes one of the connection's invocation slots
//!   ([`HubOptions::maximum_parallel_invocations_per_client`](crate::HubOptions)); while none is
//!   free, the read loop waits, so with one slot invocations run one after another and their
//!   Completions come back in order;
//! - streaming invocations and methods that take upload streams run beside them without a slot
//!   (as in the reference), since they may last as long as the connection;
//! - a method awaiting a client result gives its slot up while it waits, so the read loop can
//!   take the client's answer.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::{FutureExt, Stream, StreamExt};
use signalr_protocol::{
    CancelInvocation, Completion, CompletionOutcome, Headers, HubMessage, HubProtocol, Invocation,
    Parsed, Payload, StreamInvocation, StreamItem,
};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::connection::{CloseReason, ConnectionParts, FrameTooLarge, Inbound, size_exceeded};
use crate::error::HubError;
use crate::hub::context::{CallScope, InvocationSlot};
use crate::hub::{
    BoxFuture, CallContext, CallInput, ErasedMethod, HubCallError, HubShared, ItemStreamOutput,
    MethodCall, MethodEntry, UploadBuffer, UploadItem,
};

/// The most receive-buffer room an idle connection keeps, in bytes.
const KEPT_BUFFER_CAPACITY: usize = 64 * 1024;

/// What the client gets when an upload was still open as the connection closed.
const CONNECTION_CLOSED: &str = "The underlying connection was closed.";

/// Dispatches one connection's messages to its hub's methods.
pub(crate) struct Dispatcher<S> {
    /// The connection's context; every call gets a scope of its own.
    context: CallContext<S>,
    protocol: Arc<dyn HubProtocol>,
    /// The connection's invocation slots.
    slots: Arc<Semaphore>,
    /// Set once the client has pinged: from then on the client timeout applies.
    client_pinged: bool,
    /// Running server-to-client streams, to cancel them.
    streams: RunningStreams,
    /// The buffers of open client uploads by stream id.
    uploads: HashMap<String, mpsc::Sender<UploadItem>>,
    /// Cancelled when the connection is aborted: the read loop stops waiting.
    aborted: CancellationToken,
    /// Cancelled when the connection ends; every call's cancellation token is its child.
    ended: CancellationToken,
}

impl<S: Clone + Send + Sync + 'static> Dispatcher<S> {
    pub(crate) fn new(
        context: CallContext<S>,
        protocol: Arc<dyn HubProtocol>,
        aborted: CancellationToken,
        ended: CancellationToken,
    ) -> Self {
        let limit = context
            .hub
            .options
            .maximum_parallel_invocations_per_client
            .max(1);
        Dispatcher {
            context,
            protocol,
            slots: Arc::new(Semaphore::new(limit)),
            client_pinged: false,
            streams: RunningStreams::default(),
            uploads: HashMap::new(),
            aborted,
            ended,
        }
    }

    /// Reads and dispatches messages until the connection must end, and says why.
    pub(crate) async fn read_loop(
        &mut self,
        parts: &mut ConnectionParts,
        buffer: &mut BytesMut,
    ) -> CloseReason {
        let size_limit = self.context.hub.options.maximum_receive_message_size;
        let client_timeout = self.context.hub.options.client_timeout_interval;
        loop {
            // Boxed: dispatching needs more room than waiting does, and an idle connection
            // waits; one allocation per batch read keeps that room off the connection.
            if !buffer.is_empty() {
                let dispatched = Box::pin(self.dispatch_buffered(buffer, size_limit));
                if let Some(reason) = dispatched.await {
                    return reason;
                }
            }
            if buffer.is_empty() && buffer.capacity() > KEPT_BUFFER_CAPACITY {
                // A large batch was read; an idle connection should not keep its room.
                *buffer = BytesMut::new();
            }
            let timeout = self.client_pinged.then_some(client_timeout);
            let received = tokio::select! {
                _ = parts.aborted.cancelled() => return CloseReason::Aborted,
                received = next_within(&mut parts.inbound, timeout) => received,
            };
            match received {
                Err(()) => return CloseReason::ClientTimeout,
                Ok(None) => return CloseReason::TransportEnded,
                Ok(Some(Ok(chunk))) => buffer.extend_from_slice(&chunk),
                Ok(Some(Err(FrameTooLarge))) => {
                    let limit = size_limit.unwrap_or(usize::MAX);
                    return size_exceeded(limit);
                }
            }
        }
    }

    /// Ends what the connection still has running: calls see their cancellation token fire,
    /// and open uploads end with an error.
    pub(crate) fn finish(&mut self) {
        self.ended.cancel();
        for (_, upload) in self.uploads.drain() {
            let closed = HubError::typed("OperationCanceledException", CONNECTION_CLOSED);
            let _ = upload.try_send(UploadItem::Failed(closed));
        }
    }

    /// Dispatches every whole message in the buffer; `Some` when the connection must end.
    async fn dispatch_buffered(
        &mut self,
        buffer: &mut BytesMut,
        limit: Option<usize>,
    ) -> Option<CloseReason> {
        loop {
            let visible = limit.map_or(buffer.len(), |limit| buffer.len().min(limit));
            match self.protocol.parse(&buffer[..visible]) {
                Ok(Parsed::Incomplete) => {
                    return match limit {
                        Some(limit) if buffer.len() > limit => Some(size_exceeded(limit)),
                        _ => None,
                    };
                }
                Ok(Parsed::Ignored(consumed)) => buffer.advance(consumed),
                Ok(Parsed::Message(message, consumed)) => {
                    buffer.advance(consumed);
                    if self.aborted.is_cancelled() {
                        return Some(CloseReason::Aborted);
                    }
                    if let Some(reason) = self.dispatch(message).await {
                        return Some(reason);
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "the client sent an invalid message");
                    return Some(CloseReason::ProtocolError(error.to_string()));
                }
            }
        }
    }

    async fn dispatch(&mut self, message: HubMessage) -> Option<CloseReason> {
        match message {
            HubMessage::Invocation(invocation) => return self.invoke(invocation).await,
            HubMessage::StreamInvocation(invocation) => self.start_stream(invocation).await,
            HubMessage::StreamItem(item) => return self.upload_item(item).await,
            HubMessage::Completion(completion) => return self.completion(completion).await,
            HubMessage::CancelInvocation(CancelInvocation { invocation_id, .. }) => {
                if !self.streams.cancel(&invocation_id) {
                    tracing::trace!(%invocation_id, "cancel for no running stream");
                }
            }
            HubMessage::Ping => self.client_pinged = true,
            HubMessage::Close(close) => {
                tracing::debug!(error = ?close.error, "the client sent Close");
                return Some(CloseReason::ClientClosed);
            }
            other => tracing::trace!(message_type = other.type_id(), "message ignored"),
        }
        None
    }

    /// The method a client names, or the Completion error for a missing one.
    fn lookup<'h>(
        &self,
        hub: &'h HubShared<S>,
        target: &str,
    ) -> Result<&'h MethodEntry<S>, String> {
        hub.method(target).ok_or_else(|| method_missing(target))
    }

    /// Checks that the caller may call the method with this many upload streams; the
    /// Completion error otherwise.
    fn admit(
        &self,
        method: &MethodEntry<S>,
        target: &str,
        stream_ids: usize,
    ) -> Result<(), String> {
        if method.requires_user && self.context.user().is_none() {
            return Err(format!(
                "Failed to invoke '{target}' because user is unauthorized"
            ));
        }
        if stream_ids != method.uploads {
            let error = HubError::new(format!(
                "Client sent {stream_ids} stream(s), Hub method expects {}.",
                method.uploads
            ));
            return Err(error.describe(&unexpected(target), self.detailed()));
        }
        Ok(())
    }

    /// Checks that the connection may open these uploads (and a server-to-client stream when
    /// `streaming`): upload ids must be new, and the open streams stay within the limit.
    fn admit_streams(
        &mut self,
        target: &str,
        stream_ids: &[String],
        streaming: bool,
    ) -> Result<(), String> {
        let opening = stream_ids.len() + usize::from(streaming);
        if opening == 0 {
            return Ok(());
        }
        // Uploads whose method has ended are closed; they no longer count.
        self.uploads.retain(|_, upload| !upload.is_closed());
        let mut seen = HashSet::new();
        let error = if let Some(id) = stream_ids
            .iter()
            .find(|id| self.uploads.contains_key(*id) || !seen.insert(*id))
        {
            HubError::new(format!("Stream ID '{id}' is already in use."))
        } else {
            let limit = self.context.hub.options.maximum_streams_per_client;
            let open = self.uploads.len() + self.streams.len();
            if open + opening <= limit {
                return Ok(());
            }
            tracing::debug!(open, opening, limit, "too many streams");
            HubError::new(format!(
                "The connection has {open} open stream(s) and may have at most {limit} \
                 (HubOptions::maximum_streams_per_client)."
            ))
        };
        Err(error.describe(&unexpected(target), self.detailed()))
    }

    fn detailed(&self) -> bool {
        self.context.hub.options.enable_detailed_errors
    }

    /// Opens a buffer per upload stream id, in order.
    fn open_uploads(&mut self, stream_ids: Vec<String>) -> Vec<UploadBuffer> {
        let detailed = self.detailed();
        let capacity = self.context.hub.options.stream_buffer_capacity.max(1);
        stream_ids
            .into_iter()
            .map(|id| {
                let (sender, receiver) = mpsc::channel(capacity);
                self.uploads.insert(id, sender);
                UploadBuffer {
                    items: receiver,
                    detailed,
                }
            })
            .collect()
    }

    async fn invoke(&mut self, invocation: Invocation) -> Option<CloseReason> {
        let Invocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
            ..
        } = invocation;
        let span = tracing::debug_span!("invocation", method = %target, ?invocation_id);
        let hub = self.context.hub.clone();
        let checked = self
            .lookup(&hub, &target)
            .and_then(|method| match &method.call {
                MethodCall::Plain(call) => {
                    self.admit(method, &target, stream_ids.len()).map(|()| call)
                }
                MethodCall::Streaming(_) => Err(format!(
                    "The client attempted to invoke the streaming '{target}' method with a \
                     non-streaming invocation."
                )),
            });
        let checked = checked.and_then(|call| {
            self.admit_streams(&target, &stream_ids, false)
                .map(|()| call)
        });
        let call = match checked {
            Ok(call) => call,
            Err(text) => {
                if let Some(id) = invocation_id {
                    let outcome = CompletionOutcome::Error(text);
                    write_completion(&self.context, &*self.protocol, id, outcome).await;
                }
                return None;
            }
        };

        // Methods reading uploads run beside the others: the read loop must stay free to feed
        // them.
        let slot = if stream_ids.is_empty() {
            let permit = tokio::select! {
                permit = self.slots.clone().acquire_owned() => permit.expect("never closed"),
                _ = self.aborted.cancelled() => return Some(CloseReason::Aborted),
            };
            Some(InvocationSlot::new(self.slots.clone(), permit))
        } else {
            None
        };
        let input = CallInput {
            arguments,
            uploads: self.open_uploads(stream_ids),
            format: self.protocol.payload_format(),
        };
        let context = self.context.with_scope(CallScope {
            slot,
            ..CallScope::new(self.ended.child_token())
        });
        let protocol = self.protocol.clone();
        let detailed = self.detailed();
        let call = start_call(call, context.clone(), input);
        tokio::spawn(
            async move {
                let outcome = match finish_call(call, &target, detailed).await {
                    Ok(None) => CompletionOutcome::Void,
                    Ok(Some(value)) => CompletionOutcome::Result(value),
                    Err(text) => CompletionOutcome::Error(text),
                };
                if let Some(id) = invocation_id {
                    write_completion(&context, &*protocol, id, outcome).await;
                }
                if let Some(slot) = &context.scope.slot {
                    slot.release();
                }
            }
            .instrument(span),
        );
        None
    }

    async fn start_stream(&mut self, invocation: StreamInvocation) {
        let StreamInvocation {
            invocation_id: id,
            target,
            arguments,
            stream_ids,
            ..
        } = invocation;
        let span = tracing::debug_span!("stream", method = %target, invocation_id = %id);
        let hub = self.context.hub.clone();
        let checked = self
            .lookup(&hub, &target)
            .and_then(|method| match &method.call {
                MethodCall::Streaming(call) => {
                    self.admit(method, &target, stream_ids.len()).map(|()| call)
                }
                MethodCall::Plain(_) => Err(format!(
                    "The client attempted to invoke the non-streaming '{target}' method with a \
                     streaming invocation."
                )),
            });
        let checked = checked.and_then(|call| {
            self.admit_streams(&target, &stream_ids, true)
                .map(|()| call)
        });
        let call = match checked {
            Ok(call) => call,
            Err(text) => {
                let outcome = CompletionOutcome::Error(text);
                return write_completion(&self.context, &*self.protocol, id, outcome).await;
            }
        };
        let cancellation = self.ended.child_token();
        let Some(registration) = self.streams.start(&id, cancellation.clone()) else {
            let text = format!("Invocation ID '{id}' is already in use.");
            let outcome = CompletionOutcome::Error(text);
            return write_completion(&self.context, &*self.protocol, id, outcome).await;
        };

        let input = CallInput {
            arguments,
            uploads: self.open_uploads(stream_ids),
            format: self.protocol.payload_format(),
        };
        let context = self
            .context
            .with_scope(CallScope::new(cancellation.clone()));
        let protocol = self.protocol.clone();
        let streams = self.streams.clone();
        let detailed = self.detailed();
        let call = start_call(call, context.clone(), input);
        tokio::spawn(
            async move {
                let outcome = match finish_call(call, &target, detailed).await {
                    Ok(ItemStreamOutput(items)) => {
                        send_items(&context, &*protocol, &id, items, &cancellation).await
                    }
                    Err(text) => CompletionOutcome::Error(text),
                };
                streams.finish(registration);
                write_completion(&context, &*protocol, id, outcome).await;
            }
            .instrument(span),
        );
    }

    async fn upload_item(&mut self, item: StreamItem) -> Option<CloseReason> {
        let Some(upload) = self.uploads.get(&item.invocation_id) else {
            tracing::trace!(stream_id = %item.invocation_id, "item for no open upload ignored");
            return None;
        };
        // A full buffer stops the read loop: the client slows down to the method's pace.
        let delivered = tokio::select! {
            sent = upload.send(UploadItem::Item(item.item)) => sent.is_ok(),
            _ = self.aborted.cancelled() => return Some(CloseReason::Aborted),
        };
        if !delivered {
            // The method stopped reading; later items are ignored.
            self.uploads.remove(&item.invocation_id);
        }
        None
    }

    async fn completion(&mut self, completion: Completion) -> Option<CloseReason> {
        if let Some(upload) = self.uploads.remove(&completion.invocation_id) {
            if let CompletionOutcome::Error(text) = completion.outcome {
                tokio::select! {
                    _ = upload.send(UploadItem::Failed(HubError::new(text))) => {}
                    _ = self.aborted.cancelled() => return Some(CloseReason::Aborted),
                }
            }
            return None;
        }
        let connection_id = self.context.connection_id().to_owned();
        let invocation_id = completion.invocation_id.clone();
        let lifetime = self.context.hub.sender.lifetime.clone();
        if !lifetime
            .set_connection_result(&connection_id, completion)
            .await
        {
            tracing::debug!(%invocation_id, "a completion nobody waits for was ignored");
        }
        None
    }
}

/// The server-to-client streams of one connection that have not ended, shared with their
/// tasks. A cancelled stream leaves at once, so it no longer counts against the limit while its
/// task winds down.
#[derive(Clone, Default)]
struct RunningStreams(Arc<Mutex<StreamTable>>);

#[derive(Default)]
struct StreamTable {
    /// Tells apart two streams that used the same id one after the other.
    next_serial: u64,
    by_id: HashMap<String, (u64, CancellationToken)>,
}

/// One stream's place in [`RunningStreams`].
struct StreamRegistration {
    id: String,
    serial: u64,
}

impl RunningStreams {
    /// Registers a stream; `None` when a running stream has this id.
    fn start(&self, id: &str, cancellation: CancellationToken) -> Option<StreamRegistration> {
        let mut table = self.0.lock().expect("lock");
        let serial = table.next_serial;
        match table.by_id.entry(id.to_owned()) {
            Entry::Occupied(_) => return None,
            Entry::Vacant(entry) => entry.insert((serial, cancellation)),
        };
        table.next_serial += 1;
        Some(StreamRegistration {
            id: id.to_owned(),
            serial,
        })
    }

    /// Cancels the stream with this id; `false` when none runs.
    fn cancel(&self, id: &str) -> bool {
        let removed = self.0.lock().expect("lock").by_id.remove(id);
        removed
            .map(|(_, cancellation)| cancellation.cancel())
            .is_some()
    }

    /// Forgets a stream that ended (unless it was cancelled and its id taken again).
    fn finish(&self, registration: StreamRegistration) {
        let mut table = self.0.lock().expect("lock");
        if table
            .by_id
            .get(&registration.id)
            .is_some_and(|(serial, _)| *serial == registration.serial)
        {
            table.by_id.remove(&registration.id);
        }
    }

    fn len(&self) -> usize {
        self.0.lock().expect("lock").by_id.len()
    }
}

/// A call begun: binding ran and the method's future exists, or it panicked on the way.
type StartedCall<T> = std::thread::Result<BoxFuture<Result<T, HubCallError>>>;

/// Binds the arguments and creates the method's future, catching a panic on the way.
fn start_call<S, T>(
    call: &ErasedMethod<S, T>,
    context: CallContext<S>,
    input: CallInput,
) -> StartedCall<T> {
    std::panic::catch_unwind(AssertUnwindSafe(|| call(context, input)))
}

/// Runs a started call to its end; the Completion error when it failed or panicked.
async fn finish_call<T>(call: StartedCall<T>, target: &str, detailed: bool) -> Result<T, String> {
    let result = match call {
        Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(call_failed(target, error, detailed)),
        Err(panic) => Err(panicked(target, &*panic, detailed)),
    }
}

/// Sends a stream's items until it ends, fails or is cancelled; how it ended.
async fn send_items<S>(
    context: &CallContext<S>,
    protocol: &dyn HubProtocol,
    id: &str,
    mut items: impl Stream<Item = Result<Payload, HubError>> + Unpin,
    cancellation: &CancellationToken,
) -> CompletionOutcome {
    let detailed = context.hub.options.enable_detailed_errors;
    loop {
        let next = tokio::select! {
            biased;
            _ = cancellation.cancelled() => return CompletionOutcome::Void,
            next = AssertUnwindSafe(items.next()).catch_unwind() => next,
        };
        let item = match next {
            Ok(None) => return CompletionOutcome::Void,
            Ok(Some(Ok(item))) => item,
            Ok(Some(Err(error))) => {
                tracing::debug!(%error, "the stream failed");
                let text = "An error occurred on the server while streaming results.";
                return CompletionOutcome::Error(error.describe(text, detailed));
            }
            Err(panic) => {
                let message = panic_message(&*panic);
                tracing::error!(%message, "the stream panicked");
                let text = "An error occurred on the server while streaming results.";
                let error = HubError::typed("Panic", message);
                return CompletionOutcome::Error(error.describe(text, detailed));
            }
        };
        let message = HubMessage::StreamItem(StreamItem {
            headers: Headers::new(),
            invocation_id: id.to_owned(),
            item,
        });
        write_message(context, protocol, &message).await;
    }
}

/// Waits for the next chunk, for at most `timeout` when one is given; `Err` on timeout.
async fn next_within<I: Stream<Item = Inbound> + Unpin>(
    inbound: &mut I,
    timeout: Option<Duration>,
) -> Result<Option<Inbound>, ()> {
    match timeout {
        Some(timeout) => tokio::time::timeout(timeout, inbound.next())
            .await
            .map_err(|_| ()),
        None => Ok(inbound.next().await),
    }
}

fn method_missing(target: &str) -> String {
    format!(
        "Failed to invoke '{target}' due to an error on the server. HubException: Method does not exist."
    )
}

fn unexpected(target: &str) -> String {
    format!("An unexpected error occurred invoking '{target}' on the server.")
}

/// The Completion error of a call that failed to bind or returned an error.
fn call_failed(target: &str, error: HubCallError, detailed: bool) -> String {
    match error {
        HubCallError::Binding(detail) => {
            let text = format!("Failed to invoke '{target}' due to an error on the server.");
            HubError::typed("InvalidDataException", detail).describe(&text, detailed)
        }
        HubCallError::Method(error) => {
            tracing::debug!(%error, "the hub method failed");
            error.describe(&unexpected(target), detailed)
        }
    }
}

/// The Completion error of a call that panicked.
fn panicked(target: &str, panic: &(dyn std::any::Any + Send), detailed: bool) -> String {
    let message = panic_message(panic);
    tracing::error!(%message, "the hub method panicked");
    HubError::typed("Panic", message).describe(&unexpected(target), detailed)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the method panicked".to_owned())
}

async fn write_completion<S>(
    context: &CallContext<S>,
    protocol: &dyn HubProtocol,
    invocation_id: String,
    outcome: CompletionOutcome,
) {
    let message = HubMessage::Completion(Completion {
        headers: Headers::new(),
        invocation_id,
        outcome,
    });
    write_message(context, protocol, &message).await;
}

async fn write_message<S>(
    context: &CallContext<S>,
    protocol: &dyn HubProtocol,
    message: &HubMessage,
) {
    match protocol.to_bytes(message) {
        Ok(bytes) => context.connection.handle.write(bytes).await,
        Err(error) => tracing::error!(%error, "a message could not be written"),
    }
}
