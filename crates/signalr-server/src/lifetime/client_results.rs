//! Client results: an invocation sent to one connection whose Completion the server awaits
//! (PROTOCOL.md §9). Lifetime managers number the invocations and route the answers with a
//! [`PendingResults`] table.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use signalr_protocol::{
    Completion, CompletionOutcome, Headers, HubMessage, HubProtocol, Invocation, Payload,
};
use tokio::sync::oneshot;

use super::SerializedMessage;
use crate::error::{InvokeError, SendError};

/// An invocation of a client method that expects an answer, with its arguments encoded once
/// per protocol; the lifetime manager gives it an invocation id and sends it.
#[derive(Clone)]
pub struct ClientInvocation {
    target: String,
    arguments: Vec<(Arc<dyn HubProtocol>, Payload)>,
}

impl std::fmt::Debug for ClientInvocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInvocation")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl ClientInvocation {
    /// An invocation of `target` with its arguments already encoded for each protocol.
    pub fn new(target: String, arguments: Vec<(Arc<dyn HubProtocol>, Payload)>) -> Self {
        ClientInvocation { target, arguments }
    }

    /// The client method's name.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The invocation with this id, framed for every protocol.
    ///
    /// # Errors
    /// When a protocol cannot write the message.
    pub fn to_message(&self, invocation_id: &str) -> Result<SerializedMessage, SendError> {
        self.frame(Some(invocation_id))
    }

    /// The invocation framed for every protocol; without an id it is fire-and-forget.
    pub(crate) fn frame(
        &self,
        invocation_id: Option<&str>,
    ) -> Result<SerializedMessage, SendError> {
        let frames = self.arguments.iter().map(|(protocol, arguments)| {
            let message = HubMessage::Invocation(Invocation {
                headers: Headers::new(),
                invocation_id: invocation_id.map(str::to_owned),
                target: self.target.clone(),
                arguments: arguments.clone(),
                stream_ids: Vec::new(),
            });
            let bytes = protocol
                .to_bytes(&message)
                .map_err(|error| SendError::Encode(error.to_string()))?;
            Ok((protocol.name(), bytes))
        });
        Ok(SerializedMessage::new(frames.collect::<Result<_, _>>()?))
    }
}

/// The answer a client result resolves to.
pub type ClientAnswer = Result<CompletionOutcome, InvokeError>;

struct Waiter {
    connection_id: String,
    answer: oneshot::Sender<ClientAnswer>,
}

/// Client-result invocations waiting for their Completion, keyed by invocation id.
///
/// Ids are `s1`, `s2`, ... as the reference's (the `s` keeps them apart from the ids clients
/// choose for their own streams). A Completion is accepted only from the connection the
/// invocation went to; anything else is reported as unexpected and dropped.
#[derive(Default)]
pub struct PendingResults {
    /// Put before the number (empty: `s1`, `s2`, ...).
    id_prefix: String,
    next_id: AtomicU64,
    waiting: Mutex<HashMap<String, Waiter>>,
}

impl std::fmt::Debug for PendingResults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.waiting.lock().expect("lock").len();
        f.debug_struct("PendingResults")
            .field("waiting", &waiting)
            .finish()
    }
}

impl PendingResults {
    /// An empty table.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// An empty table whose ids are `<prefix>s1`, `<prefix>s2`, ...: a backplane node gives
    /// its own prefix, so that invocations of several nodes to one connection never share an
    /// id.
    pub fn with_id_prefix(prefix: impl Into<String>) -> Arc<Self> {
        Arc::new(PendingResults {
            id_prefix: prefix.into(),
            ..PendingResults::default()
        })
    }

    /// Reserves a fresh invocation id for an invocation sent to `connection_id`.
    pub fn register(self: &Arc<Self>, connection_id: &str) -> PendingResult {
        let number = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("{}s{number}", self.id_prefix);
        let (answer, receiver) = oneshot::channel();
        let waiter = Waiter {
            connection_id: connection_id.to_owned(),
            answer,
        };
        self.waiting
            .lock()
            .expect("lock")
            .insert(id.clone(), waiter);
        PendingResult {
            invocation_id: id,
            connection_id: connection_id.to_owned(),
            table: self.clone(),
            receiver,
        }
    }

    /// Hands a Completion from `connection_id` to the invocation waiting for it; `false` when
    /// none waits (unknown or late id, or another connection's invocation).
    pub fn complete(&self, connection_id: &str, completion: Completion) -> bool {
        let mut waiting = self.waiting.lock().expect("lock");
        match waiting.get(&completion.invocation_id) {
            Some(waiter) if waiter.connection_id == connection_id => {}
            _ => return false,
        }
        let waiter = waiting
            .remove(&completion.invocation_id)
            .expect("checked above");
        drop(waiting);
        let _ = waiter.answer.send(Ok(completion.outcome));
        true
    }

    /// The connection an invocation waiting under this id went to.
    pub fn connection_of(&self, invocation_id: &str) -> Option<String> {
        self.waiting
            .lock()
            .expect("lock")
            .get(invocation_id)
            .map(|waiter| waiter.connection_id.clone())
    }

    /// Ends the wait of the invocation with this id with `answer`, whichever connection it
    /// went to (for answers a backplane relays from another node); `false` when none waits.
    pub fn resolve(&self, invocation_id: &str, answer: ClientAnswer) -> bool {
        let waiter = self.waiting.lock().expect("lock").remove(invocation_id);
        match waiter {
            Some(waiter) => {
                let _ = waiter.answer.send(answer);
                true
            }
            None => false,
        }
    }

    /// Fails every invocation waiting, whatever connection it went to (a backplane that lost
    /// its connection can no longer receive their answers).
    pub fn fail_all(&self, error: &InvokeError) {
        let waiting: Vec<Waiter> = self
            .waiting
            .lock()
            .expect("lock")
            .drain()
            .map(|(_, waiter)| waiter)
            .collect();
        for waiter in waiting {
            let _ = waiter.answer.send(Err(error.clone()));
        }
    }

    /// Fails every invocation waiting on a connection that closed.
    pub fn connection_closed(&self, connection_id: &str) {
        let mut closed = Vec::new();
        self.waiting.lock().expect("lock").retain(|_, waiter| {
            let keep = waiter.connection_id != connection_id;
            if !keep {
                closed.push(std::mem::replace(&mut waiter.answer, oneshot::channel().0));
            }
            keep
        });
        for answer in closed {
            let _ = answer.send(Err(InvokeError::Disconnected(connection_id.to_owned())));
        }
    }

    /// How many invocations are waiting.
    pub fn len(&self) -> usize {
        self.waiting.lock().expect("lock").len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One reserved invocation id; dropping it (a timeout, a cancelled caller) forgets the
/// invocation, so a late answer is ignored.
#[derive(Debug)]
pub struct PendingResult {
    invocation_id: String,
    connection_id: String,
    table: Arc<PendingResults>,
    receiver: oneshot::Receiver<ClientAnswer>,
}

impl PendingResult {
    /// The id to send the invocation with.
    pub fn invocation_id(&self) -> &str {
        &self.invocation_id
    }

    /// Waits for the client's answer.
    pub async fn answer(mut self) -> ClientAnswer {
        match (&mut self.receiver).await {
            Ok(answer) => answer,
            Err(_) => Err(InvokeError::Disconnected(self.connection_id.clone())),
        }
    }
}

impl Drop for PendingResult {
    fn drop(&mut self) {
        self.table
            .waiting
            .lock()
            .expect("lock")
            .remove(&self.invocation_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(id: &str, outcome: CompletionOutcome) -> Completion {
        Completion {
            headers: Headers::new(),
            invocation_id: id.to_owned(),
            outcome,
        }
    }

    #[tokio::test]
    async fn ids_are_numbered_with_the_reference_prefix() {
        let table = PendingResults::new();
        let first = table.register("a");
        let second = table.register("a");
        assert_eq!(first.invocation_id(), "s1");
        assert_eq!(second.invocation_id(), "s2");
    }

    #[tokio::test]
    async fn only_the_addressed_connection_may_answer() {
        let table = PendingResults::new();
        let pending = table.register("a");
        let id = pending.invocation_id().to_owned();
        assert!(!table.complete("b", completion(&id, CompletionOutcome::Void)));
        assert!(table.complete("a", completion(&id, CompletionOutcome::Void)));
        assert_eq!(pending.answer().await, Ok(CompletionOutcome::Void));
        assert!(table.is_empty());
    }

    #[tokio::test]
    async fn a_dropped_wait_forgets_the_id_and_late_answers_are_refused() {
        let table = PendingResults::new();
        let pending = table.register("a");
        let id = pending.invocation_id().to_owned();
        drop(pending);
        assert!(table.is_empty());
        assert!(!table.complete("a", completion(&id, CompletionOutcome::Void)));
    }

    #[tokio::test]
    async fn closing_a_connection_fails_only_its_invocations() {
        let table = PendingResults::new();
        let on_a = table.register("a");
        let on_b = table.register("b");
        table.connection_closed("a");
        assert_eq!(
            on_a.answer().await,
            Err(InvokeError::Disconnected("a".into()))
        );
        assert_eq!(table.len(), 1);
        drop(on_b);
    }
}
