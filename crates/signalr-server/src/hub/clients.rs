//! Sending to clients and managing groups, from hub methods ([`CallerClients`]) or from anywhere
//! else ([`HubContext`]).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use signalr_protocol::{CompletionOutcome, HubProtocol, Payload};

use super::context::CallScope;
use crate::error::{InvokeError, SendError};
use crate::lifetime::{Audience, ClientInvocation, HubLifetimeManager, SerializedMessage};

/// Encodes invocations once per protocol and hands them to the lifetime manager.
pub(crate) struct Sender {
    pub(crate) lifetime: Arc<dyn HubLifetimeManager>,
    pub(crate) protocols: Vec<Arc<dyn HubProtocol>>,
}

impl Sender {
    pub(crate) fn new(
        lifetime: Arc<dyn HubLifetimeManager>,
        protocols: Vec<Arc<dyn HubProtocol>>,
    ) -> Self {
        Sender {
            lifetime,
            protocols,
        }
    }

    /// The arguments encoded once per protocol.
    fn arguments<A: Serialize>(
        &self,
        target: &str,
        arguments: &A,
    ) -> Result<ClientInvocation, SendError> {
        let encoded = self.protocols.iter().map(|protocol| {
            Payload::encode_arguments(protocol.payload_format(), arguments)
                .map(|arguments| (protocol.clone(), arguments))
                .map_err(|error| SendError::Encode(error.to_string()))
        });
        Ok(ClientInvocation::new(
            target.to_owned(),
            encoded.collect::<Result<_, _>>()?,
        ))
    }

    fn encode<A: Serialize>(
        &self,
        target: &str,
        arguments: &A,
    ) -> Result<SerializedMessage, SendError> {
        self.arguments(target, arguments)?.frame(None)
    }
}

/// Invokes client methods on one audience. Sends are fire-and-forget on the wire (no
/// invocation id); the future resolves once the message is queued for every recipient.
pub struct ClientProxy {
    sender: Arc<Sender>,
    audience: Audience,
}

impl ClientProxy {
    /// Invokes `target` on every client of the audience with `arguments`, which must serialize
    /// to an array: a tuple such as `("text",)` or `(1, 2)`, or `()` for no arguments.
    ///
    /// # Errors
    /// Arguments that do not serialize to an array, an empty group name, or a backplane failure.
    pub async fn send<A: Serialize>(&self, target: &str, arguments: A) -> Result<(), SendError> {
        // A send to connections that are gone completes without waiting on anything; this
        // keeps a loop of such sends from holding its worker thread forever.
        tokio::task::consume_budget().await;
        let message = self.sender.encode(target, &arguments)?;
        self.sender.lifetime.send(&self.audience, &message).await
    }

    /// The audience this proxy reaches.
    pub fn audience(&self) -> &Audience {
        &self.audience
    }
}

/// The hub's clients, addressable by connection, group and user.
#[derive(Clone)]
pub struct Clients {
    sender: Arc<Sender>,
}

fn owned(items: &[impl AsRef<str>]) -> Vec<String> {
    items.iter().map(|item| item.as_ref().to_owned()).collect()
}

impl Clients {
    fn proxy(&self, audience: Audience) -> ClientProxy {
        ClientProxy {
            sender: self.sender.clone(),
            audience,
        }
    }

    /// Every connection.
    pub fn all(&self) -> ClientProxy {
        self.proxy(Audience::All)
    }

    /// Every connection but these.
    pub fn all_except(&self, connection_ids: &[impl AsRef<str>]) -> ClientProxy {
        self.proxy(Audience::AllExcept(owned(connection_ids)))
    }

    /// One connection; besides sending, it can [`invoke`](SingleClientProxy::invoke) a client
    /// method and await its result.
    pub fn client(&self, connection_id: &str) -> SingleClientProxy {
        SingleClientProxy {
            proxy: self.proxy(Audience::Connection(connection_id.to_owned())),
            connection_id: connection_id.to_owned(),
            scope: None,
        }
    }

    /// Several connections.
    pub fn clients(&self, connection_ids: &[impl AsRef<str>]) -> ClientProxy {
        self.proxy(Audience::Connections(owned(connection_ids)))
    }

    /// The members of a group.
    pub fn group(&self, group: &str) -> ClientProxy {
        self.proxy(Audience::Group(group.to_owned()))
    }

    /// The members of several groups, each connection once.
    pub fn groups(&self, groups: &[impl AsRef<str>]) -> ClientProxy {
        self.proxy(Audience::Groups(owned(groups)))
    }

    /// The members of a group but these connections.
    pub fn group_except(&self, group: &str, connection_ids: &[impl AsRef<str>]) -> ClientProxy {
        self.proxy(Audience::GroupExcept(
            group.to_owned(),
            owned(connection_ids),
        ))
    }

    /// Every connection of a user.
    pub fn user(&self, user_id: &str) -> ClientProxy {
        self.proxy(Audience::User(user_id.to_owned()))
    }

    /// Every connection of several users.
    pub fn users(&self, user_ids: &[impl AsRef<str>]) -> ClientProxy {
        self.proxy(Audience::Users(owned(user_ids)))
    }
}

/// One connection: send to it, or invoke a client method and await its result (a *client
/// result*, PROTOCOL.md §9).
pub struct SingleClientProxy {
    proxy: ClientProxy,
    connection_id: String,
    /// The hub method invoking, if any: its invocation slot is given up while it waits.
    scope: Option<Arc<CallScope>>,
}

impl SingleClientProxy {
    /// Invokes `target` on the client with `arguments` (a tuple, or `()`) and waits for the
    /// value its handler returns, decoded as `T` (`()` for a handler that returns nothing the
    /// client accepts).
    ///
    /// The wait has no time limit of its own: use [`invoke_with_timeout`](Self::invoke_with_timeout),
    /// or drop the future to stop waiting (a late answer is then ignored). Called from a hub
    /// method, the method's invocation slot
    /// ([`HubOptions::maximum_parallel_invocations_per_client`](crate::HubOptions)) is
    /// released while it waits, so the caller's own connection can answer without deadlock;
    /// from the connect hook it is refused, as in the reference.
    ///
    /// # Errors
    /// The client's error text ([`InvokeError::Client`]), an unknown or closed connection, or a
    /// result that does not decode as `T`.
    pub async fn invoke<T: DeserializeOwned, A: Serialize>(
        &self,
        target: &str,
        arguments: A,
    ) -> Result<T, InvokeError> {
        self.invoke_within(target, arguments, None).await
    }

    /// [`invoke`](Self::invoke), failing with [`InvokeError::TimedOut`] when the client has not
    /// answered within `timeout`.
    ///
    /// # Errors
    /// As [`invoke`](Self::invoke), and the timeout.
    pub async fn invoke_with_timeout<T: DeserializeOwned, A: Serialize>(
        &self,
        target: &str,
        arguments: A,
        timeout: Duration,
    ) -> Result<T, InvokeError> {
        self.invoke_within(target, arguments, Some(timeout)).await
    }

    async fn invoke_within<T: DeserializeOwned, A: Serialize>(
        &self,
        target: &str,
        arguments: A,
        timeout: Option<Duration>,
    ) -> Result<T, InvokeError> {
        if self
            .scope
            .as_ref()
            .is_some_and(|scope| scope.in_connect_hook)
        {
            return Err(InvokeError::InsideConnectHook);
        }
        let invocation = self.proxy.sender.arguments(target, &arguments)?;
        let released = self.scope.as_ref().and_then(|scope| scope.release_slot());
        let answer = self
            .proxy
            .sender
            .lifetime
            .invoke_connection(&self.connection_id, &invocation);
        let answer = match timeout {
            Some(timeout) => tokio::time::timeout(timeout, answer)
                .await
                .unwrap_or(Err(InvokeError::TimedOut(timeout))),
            None => answer.await,
        };
        if let Some(released) = released {
            released.restore().await;
        }
        match answer? {
            CompletionOutcome::Error(text) => Err(InvokeError::Client(text)),
            CompletionOutcome::Result(value) => value
                .decode()
                .map_err(|error| InvokeError::Decode(error.to_string())),
            CompletionOutcome::Void => T::deserialize(serde_json::Value::Null)
                .map_err(|error| InvokeError::Decode(error.to_string())),
        }
    }
}

impl Deref for SingleClientProxy {
    type Target = ClientProxy;

    fn deref(&self) -> &ClientProxy {
        &self.proxy
    }
}

/// The hub's clients as seen from one caller: [`Clients`] plus the caller-relative targets.
pub struct CallerClients {
    clients: Clients,
    caller: String,
    scope: Arc<CallScope>,
}

impl CallerClients {
    pub(crate) fn new(sender: Arc<Sender>, caller: String, scope: Arc<CallScope>) -> Self {
        CallerClients {
            clients: Clients { sender },
            caller,
            scope,
        }
    }

    /// The calling connection.
    pub fn caller(&self) -> SingleClientProxy {
        self.client(&self.caller)
    }

    /// One connection (see [`Clients::client`]); client results invoked through it release
    /// the calling method's invocation slot while they wait.
    pub fn client(&self, connection_id: &str) -> SingleClientProxy {
        SingleClientProxy {
            scope: Some(self.scope.clone()),
            ..self.clients.client(connection_id)
        }
    }

    /// Every connection but the caller.
    pub fn others(&self) -> ClientProxy {
        self.clients.all_except(&[&self.caller])
    }

    /// The members of a group but the caller.
    pub fn others_in_group(&self, group: &str) -> ClientProxy {
        self.clients.group_except(group, &[&self.caller])
    }
}

impl Deref for CallerClients {
    type Target = Clients;

    fn deref(&self) -> &Clients {
        &self.clients
    }
}

/// Adds connections to groups and removes them.
#[derive(Clone)]
pub struct Groups {
    lifetime: Arc<dyn HubLifetimeManager>,
}

impl Groups {
    pub(crate) fn new(lifetime: Arc<dyn HubLifetimeManager>) -> Self {
        Groups { lifetime }
    }

    /// Adds a connection to a group.
    ///
    /// # Errors
    /// When a backplane cannot reach the connection's node.
    pub async fn add(&self, connection_id: &str, group: &str) -> Result<(), SendError> {
        self.lifetime.add_to_group(connection_id, group).await
    }

    /// Removes a connection from a group.
    ///
    /// # Errors
    /// When a backplane cannot reach the connection's node.
    pub async fn remove(&self, connection_id: &str, group: &str) -> Result<(), SendError> {
        self.lifetime.remove_from_group(connection_id, group).await
    }
}

/// A handle to a hub's clients and groups from outside hub methods, for example from an axum
/// handler. Get one with [`Hub::context`](crate::Hub::context); cloning is cheap.
#[derive(Clone)]
pub struct HubContext {
    sender: Arc<Sender>,
}

impl HubContext {
    pub(crate) fn new(sender: Arc<Sender>) -> Self {
        HubContext { sender }
    }

    /// The hub's clients.
    pub fn clients(&self) -> Clients {
        Clients {
            sender: self.sender.clone(),
        }
    }

    /// The hub's groups.
    pub fn groups(&self) -> Groups {
        Groups::new(self.sender.lifetime.clone())
    }
}
