//! Sending to clients and managing groups, from hub methods ([`CallerClients`]) or from anywhere
//! else ([`HubContext`]).

use std::ops::Deref;
use std::sync::Arc;

use serde::Serialize;
use signalr_protocol::{Headers, HubMessage, HubProtocol, Invocation, Payload};

use crate::error::SendError;
use crate::lifetime::{Audience, HubLifetimeManager, SerializedMessage};

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

    fn encode<A: Serialize>(
        &self,
        target: &str,
        arguments: &A,
    ) -> Result<SerializedMessage, SendError> {
        let frames = self.protocols.iter().map(|protocol| {
            // `()` encodes as null; as arguments it means "none".
            let mut arguments = Payload::encode(protocol.payload_format(), arguments)
                .map_err(|error| SendError::Encode(error.to_string()))?;
            if arguments.is_null() {
                arguments = Payload::encode(protocol.payload_format(), &[(); 0])
                    .map_err(|error| SendError::Encode(error.to_string()))?;
            }
            if !arguments.is_array() {
                return Err(SendError::Encode(
                    "arguments must serialize to an array, for example a tuple".into(),
                ));
            }
            let message = HubMessage::Invocation(Invocation {
                headers: Headers::new(),
                invocation_id: None,
                target: target.to_owned(),
                arguments,
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

    /// One connection.
    pub fn client(&self, connection_id: &str) -> ClientProxy {
        self.proxy(Audience::Connection(connection_id.to_owned()))
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

/// The hub's clients as seen from one caller: [`Clients`] plus the caller-relative targets.
pub struct CallerClients {
    clients: Clients,
    caller: String,
}

impl CallerClients {
    pub(crate) fn new(sender: Arc<Sender>, caller: String) -> Self {
        CallerClients {
            clients: Clients { sender },
            caller,
        }
    }

    /// The calling connection.
    pub fn caller(&self) -> ClientProxy {
        self.clients.client(&self.caller)
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
