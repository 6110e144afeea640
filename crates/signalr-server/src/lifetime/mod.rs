//! The lifetime manager: which connections exist, which groups and users they belong to, and
//! how a message reaches an audience of them.
//!
//! The hub connection handler calls [`HubLifetimeManager::on_connected`] once the handshake has
//! succeeded and [`HubLifetimeManager::on_disconnected`] after the hub's disconnect hook ran. In
//! between, hub code and [`HubContext`](crate::HubContext) handles call
//! [`send`](HubLifetimeManager::send) and the group methods.
//!
//! A message is encoded once per protocol before it reaches the manager
//! ([`SerializedMessage`]); the manager only picks the bytes for each recipient's protocol and
//! queues them. [`InMemoryLifetimeManager`] serves one process; a backplane implements the same
//! trait and must pass the same `spec` suite (feature `spec-suite`).

mod client_results;
mod memory;
#[cfg(any(test, feature = "spec-suite"))]
pub mod spec;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

pub use client_results::{ClientAnswer, ClientInvocation, PendingResult, PendingResults};
pub use memory::InMemoryLifetimeManager;

use crate::error::SendError;
use signalr_protocol::Completion;

/// Who a message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every connection of the hub.
    All,
    /// Every connection but these connection ids.
    AllExcept(Vec<String>),
    /// One connection.
    Connection(String),
    /// Several connections.
    Connections(Vec<String>),
    /// Every member of a group.
    Group(String),
    /// Every member of any of these groups (each connection once).
    Groups(Vec<String>),
    /// Every member of a group but these connection ids.
    GroupExcept(String, Vec<String>),
    /// Every connection of a user.
    User(String),
    /// Every connection of any of these users.
    Users(Vec<String>),
}

/// One message encoded for every protocol the hub speaks: `(protocol name, framed bytes)`.
///
/// Cloning shares the bytes.
#[derive(Debug, Clone)]
pub struct SerializedMessage {
    frames: Arc<[(&'static str, Bytes)]>,
}

impl SerializedMessage {
    /// A message from its framed bytes per protocol name.
    pub fn new(frames: Vec<(&'static str, Bytes)>) -> Self {
        SerializedMessage {
            frames: frames.into(),
        }
    }

    /// The bytes for the protocol of this name.
    pub fn for_protocol(&self, protocol: &str) -> Option<&Bytes> {
        self.frames
            .iter()
            .find(|(name, _)| *name == protocol)
            .map(|(_, bytes)| bytes)
    }

    /// Every `(protocol name, bytes)` pair.
    pub fn frames(&self) -> &[(&'static str, Bytes)] {
        &self.frames
    }
}

/// The writing end of one connection, as the lifetime manager holds it.
#[derive(Debug)]
pub struct ConnectionHandle {
    connection_id: String,
    user_id: Option<String>,
    protocol: &'static str,
    outbound: mpsc::Sender<Bytes>,
    aborted: CancellationToken,
    /// Cancelled when the client stopped reading: its transport drops what is still queued.
    stalled: CancellationToken,
    /// Cancelled when the connection stopped reading messages: it will answer nothing more.
    ended: CancellationToken,
    send_timeout: Duration,
}

impl ConnectionHandle {
    /// A handle writing into `outbound`; `aborted` ends the connection when a write times out.
    pub fn new(
        connection_id: String,
        user_id: Option<String>,
        protocol: &'static str,
        outbound: mpsc::Sender<Bytes>,
        aborted: CancellationToken,
        send_timeout: Duration,
    ) -> Self {
        ConnectionHandle {
            connection_id,
            user_id,
            protocol,
            outbound,
            aborted,
            stalled: CancellationToken::new(),
            ended: CancellationToken::new(),
            send_timeout,
        }
    }

    /// The public connection id.
    pub fn connection_id(&self) -> &str {
        &self.connection_id
    }

    /// The user id, if the connection has one.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The name of the connection's hub protocol.
    pub fn protocol(&self) -> &'static str {
        self.protocol
    }

    /// Signals the transport through `stalled` when the client stops reading.
    pub(crate) fn with_stall_signal(mut self, stalled: CancellationToken) -> Self {
        self.stalled = stalled;
        self
    }

    /// Ends the connection (its hub handler sends a Close and stops).
    pub fn abort(&self) {
        self.aborted.cancel();
    }

    /// Whether the connection was aborted; it takes no more messages.
    pub fn is_aborted(&self) -> bool {
        self.aborted.is_cancelled()
    }

    /// Marks the connection as ended: it reads no more messages, so it answers nothing more.
    pub fn mark_ended(&self) {
        self.ended.cancel();
    }

    /// Resolves once the connection has ended or was aborted: a client result still waiting
    /// on it will not be answered.
    pub async fn ended(&self) {
        tokio::select! {
            _ = self.ended.cancelled() => {}
            _ = self.aborted.cancelled() => {}
        }
    }

    /// Queues the message's bytes for this connection's protocol.
    pub async fn send(&self, message: &SerializedMessage) {
        if let Some(bytes) = message.for_protocol(self.protocol) {
            self.write(bytes.clone()).await;
        }
    }

    /// Queues bytes for the connection's writer.
    ///
    /// A full queue is waited on for the send timeout; a connection that stays full that long
    /// is too slow and is aborted, so that it cannot hold back the rest. Writes to a closed or
    /// aborted connection are dropped at once.
    pub async fn write(&self, bytes: Bytes) {
        let bytes = match self.try_write(bytes) {
            Ok(()) => return,
            Err(bytes) => bytes,
        };
        let waited = tokio::select! {
            waited = tokio::time::timeout(self.send_timeout, self.outbound.send(bytes)) => waited,
            _ = self.aborted.cancelled() => return,
        };
        if waited.is_err() {
            tracing::warn!(connection_id = %self.connection_id, "outgoing queue stayed full; closing the connection");
            self.stalled.cancel();
            self.abort();
        }
    }

    /// Queues bytes without waiting; returns them when the queue is full. Writes to a closed
    /// or aborted connection are dropped.
    pub(crate) fn try_write(&self, bytes: Bytes) -> Result<(), Bytes> {
        if self.is_aborted() {
            return Ok(());
        }
        match self.outbound.try_send(bytes) {
            Ok(()) | Err(TrySendError::Closed(_)) => Ok(()),
            Err(TrySendError::Full(bytes)) => Err(bytes),
        }
    }
}

/// Tracks a hub's connections, groups and users, and delivers messages to them.
#[async_trait]
pub trait HubLifetimeManager: Send + Sync + 'static {
    /// Registers a connection whose handshake succeeded.
    async fn on_connected(&self, connection: Arc<ConnectionHandle>);

    /// Forgets a connection and its group memberships.
    async fn on_disconnected(&self, connection_id: &str);

    /// Delivers a message to an audience.
    ///
    /// # Errors
    /// [`SendError::EmptyGroupName`] for an empty group name; a backplane error when the
    /// message could not reach other nodes.
    async fn send(&self, audience: &Audience, message: &SerializedMessage)
    -> Result<(), SendError>;

    /// Adds a connection to a group (nothing happens for an unknown connection).
    ///
    /// # Errors
    /// A backplane error when the connection's node could not be reached.
    async fn add_to_group(&self, connection_id: &str, group: &str) -> Result<(), SendError>;

    /// Removes a connection from a group.
    ///
    /// # Errors
    /// A backplane error when the connection's node could not be reached.
    async fn remove_from_group(&self, connection_id: &str, group: &str) -> Result<(), SendError>;

    /// Sends `invocation` to one connection with a fresh invocation id and waits for the
    /// client's Completion (a client result). The wait ends with
    /// [`InvokeError::Disconnected`](crate::error::InvokeError::Disconnected) when the
    /// connection closes first; dropping the future forgets the invocation.
    ///
    /// # Errors
    /// [`InvokeError::NoConnection`](crate::error::InvokeError::NoConnection) for an unknown
    /// connection, or why no answer came.
    async fn invoke_connection(
        &self,
        connection_id: &str,
        invocation: &ClientInvocation,
    ) -> ClientAnswer;

    /// Hands a Completion that `connection_id` sent to the client result waiting for it;
    /// `false` when none waits (an unknown or late id), and the Completion is dropped.
    async fn set_connection_result(&self, connection_id: &str, completion: Completion) -> bool;
}

/// Writes a message to many connections: every queue with room gets it at once, and only the
/// full ones are then waited on, together, so one slow client does not delay the others.
pub async fn deliver(connections: &[Arc<ConnectionHandle>], message: &SerializedMessage) {
    let mut waiting = Vec::new();
    for connection in connections {
        let Some(bytes) = message.for_protocol(connection.protocol) else {
            continue;
        };
        if let Err(bytes) = connection.try_write(bytes.clone()) {
            waiting.push(connection.write(bytes));
        }
    }
    if !waiting.is_empty() {
        futures_util::future::join_all(waiting).await;
    }
}
