//! [`RedisLifetimeManager`]: local connections in an [`InMemoryLifetimeManager`], everything
//! else through Redis pub/sub.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, PushInfo, PushKind, Value};
use signalr_protocol::{Completion, CompletionOutcome, Headers, HubMessage, HubProtocol, Parsed};
use signalr_server::lifetime::{
    Audience, ClientAnswer, ClientInvocation, ConnectionHandle, HubLifetimeManager,
    InMemoryLifetimeManager, PendingResults, SerializedMessage,
};
use signalr_server::{InvokeError, SendError};
use tokio::sync::{mpsc, oneshot};

use crate::channels::{Addressed, Channels};
use crate::protocol::{
    GroupAction, GroupCommand, RedisInvocation, RelayedCompletion, decode_ack, encode_ack,
};
use crate::{RedisError, RedisOptions};

/// A lifetime manager for one hub on one node of several that share a Redis server.
///
/// Each node keeps its own connections and delivers to them directly; what is addressed to
/// connections elsewhere goes out through Redis once, as bytes already framed for each
/// protocol, and each node writes those bytes to its members as they are. A node subscribes to
/// a group's or a user's channel only while one of its connections is a member.
///
/// Build one per hub with [`RedisLifetimeManager::connect`] and give it to
/// [`HubBuilder::lifetime_manager`](signalr_server::HubBuilder::lifetime_manager).
#[derive(Clone)]
pub struct RedisLifetimeManager {
    node: Arc<Node>,
}

impl std::fmt::Debug for RedisLifetimeManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLifetimeManager")
            .field("server_name", &self.node.server_name)
            .finish_non_exhaustive()
    }
}

struct Node {
    channels: Channels,
    server_name: String,
    options: RedisOptions,
    redis: ConnectionManager,
    local: InMemoryLifetimeManager,
    /// Client results this node asked for.
    results: Arc<PendingResults>,
    /// Client results other nodes asked of this node's connections: (connection id,
    /// invocation id) -> the channel the answer goes back on.
    forwarded: Mutex<HashMap<(String, String), String>>,
    /// Group commands waiting for their ack, by id.
    acks: Mutex<HashMap<u32, oneshot::Sender<()>>>,
    next_command: AtomicU32,
    /// This node's connections that closed lately: a group change for one of them (a hub
    /// method racing its connection's close) is nothing to do, not a command no node acks.
    closed: Mutex<RecentlyClosed>,
    /// Channels this node wants, with how many local reasons it has for each (members of a
    /// group, connections of a user, the connection itself); changed one at a time.
    subscriptions: tokio::sync::Mutex<HashMap<String, usize>>,
}

impl RedisLifetimeManager {
    /// Connects to Redis at `url` (for example `redis://127.0.0.1:6379`) for the hub named
    /// `hub` (its channels are `<channel prefix><hub>:all` and so on: give every node the same
    /// name, and an ASP.NET Core node's would be its hub class's full name).
    ///
    /// # Errors
    /// The URL is invalid, or Redis cannot be reached or refuses the subscriptions.
    pub async fn connect(url: &str, hub: &str, options: RedisOptions) -> Result<Self, RedisError> {
        let mut info = redis::IntoConnectionInfo::into_connection_info(url)
            .map_err(|error| RedisError::Connect(error.to_string()))?;
        // RESP3 carries pub/sub messages on the same connection as commands.
        info.redis.protocol = redis::ProtocolVersion::RESP3;
        let client =
            redis::Client::open(info).map_err(|error| RedisError::Connect(error.to_string()))?;
        let (pushes, received) = mpsc::unbounded_channel();
        let config = ConnectionManagerConfig::new()
            // Not redis-rs's automatic resubscription: it sends every channel in one
            // SUBSCRIBE, whose extra confirmations it then takes for the replies of later
            // commands. `resubscribe_when_back` subscribes one channel per command instead.
            .set_push_sender(pushes)
            .set_connection_timeout(options.command_timeout)
            .set_response_timeout(options.command_timeout)
            .set_number_of_retries(2)
            .set_factor(100)
            .set_max_delay(1_000);
        let redis = tokio::time::timeout(
            options.command_timeout,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| RedisError::Connect("timed out".into()))?
        .map_err(|error| RedisError::Connect(error.to_string()))?;
        let server_name = options
            .server_name
            .clone()
            .unwrap_or_else(generate_server_name);
        let node = Arc::new(Node {
            channels: Channels::new(&options.channel_prefix, hub),
            server_name,
            options,
            redis,
            local: InMemoryLifetimeManager::new(),
            results: PendingResults::with_id_prefix(format!("{}-", random_hex(4))),
            forwarded: Mutex::default(),
            acks: Mutex::default(),
            next_command: AtomicU32::new(0),
            closed: Mutex::default(),
            subscriptions: tokio::sync::Mutex::default(),
        });
        for channel in [
            node.channels.all(),
            node.channels.group_commands(),
            node.channels.acks(&node.server_name),
            node.channels.results(&node.server_name),
        ] {
            node.acquire(channel)
                .await
                .map_err(|error| RedisError::Connect(error.to_string()))?;
        }
        tokio::spawn(receive(Arc::downgrade(&node), received));
        tracing::info!(hub = %node.channels.hub(), server_name = %node.server_name, "connected to Redis");
        Ok(RedisLifetimeManager { node })
    }

    /// This node's name on the backplane (`<host>_<32 hex digits>` unless set in
    /// [`RedisOptions::server_name`]).
    pub fn server_name(&self) -> &str {
        &self.node.server_name
    }
}

impl Node {
    /// Runs a Redis command within the command timeout.
    async fn command<T>(
        &self,
        what: &str,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, SendError> {
        self.quiet_command(what, command)
            .await
            .inspect_err(|error| {
                tracing::warn!(hub = %self.channels.hub(), %error, "Redis command failed");
            })
    }

    /// [`command`](Self::command) without the warning (for retries that report on their own).
    async fn quiet_command<T>(
        &self,
        what: &str,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, SendError> {
        let outcome = tokio::time::timeout(self.options.command_timeout, command).await;
        let error = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!(
                "no answer within {} ms",
                self.options.command_timeout.as_millis()
            ),
        };
        Err(SendError::Backplane(format!(
            "Redis {what} failed: {error}"
        )))
    }

    /// Publishes `payload`; how many subscribers received it.
    async fn publish(&self, channel: String, payload: Vec<u8>) -> Result<usize, SendError> {
        let mut redis = self.redis.clone();
        self.command("publish", async move {
            redis.publish::<_, _, usize>(channel, payload).await
        })
        .await
    }

    /// Publishes an invocation for connections on other nodes.
    async fn publish_invocation(
        &self,
        channel: String,
        message: &SerializedMessage,
        excluded: &[String],
        tagged: bool,
    ) -> Result<usize, SendError> {
        let invocation = RedisInvocation {
            excluded: excluded.to_vec(),
            frames: frames_of(message),
            result_route: None,
            origin: tagged.then(|| self.server_name.clone()),
        };
        self.publish(channel, invocation.encode()).await
    }

    /// Counts one more local reason to hear `channel`, subscribing on the first.
    async fn acquire(&self, channel: String) -> Result<(), SendError> {
        let mut wanted = self.subscriptions.lock().await;
        self.want(&mut wanted, channel).await
    }

    /// [`acquire`](Self::acquire) under a lock the caller holds.
    async fn want(
        &self,
        wanted: &mut HashMap<String, usize>,
        channel: String,
    ) -> Result<(), SendError> {
        let count = wanted.entry(channel.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            return Ok(());
        }
        let mut redis = self.redis.clone();
        // On failure the count stays: resubscribing after an outage covers it.
        self.command("subscribe", async move { redis.subscribe(channel).await })
            .await
    }

    /// Counts one local reason less to hear `channel`, unsubscribing after the last; under a
    /// lock the caller holds.
    async fn unwant(&self, wanted: &mut HashMap<String, usize>, channel: String) {
        let Some(count) = wanted.get_mut(&channel) else {
            return;
        };
        *count -= 1;
        if *count > 0 {
            return;
        }
        wanted.remove(&channel);
        let mut redis = self.redis.clone();
        let _ = self
            .command(
                "unsubscribe",
                async move { redis.unsubscribe(channel).await },
            )
            .await;
    }

    /// Subscribes again to every channel this node wants (after Redis came back), one
    /// channel per command: redis-rs takes the confirmations of a many-channel SUBSCRIBE
    /// after the first for the replies of later commands.
    async fn resubscribe(&self) -> Result<(), SendError> {
        let channels: Vec<String> = self.subscriptions.lock().await.keys().cloned().collect();
        for channel in channels {
            let mut redis = self.redis.clone();
            self.quiet_command("subscribe", async move { redis.subscribe(channel).await })
                .await?;
        }
        Ok(())
    }

    fn recently_closed(&self, connection_id: &str) -> bool {
        self.closed.lock().expect("lock").contains(connection_id)
    }

    /// Whether a local connection is in a group.
    fn is_member(&self, connection_id: &str, group: &str) -> bool {
        self.local
            .groups_of(connection_id)
            .iter()
            .any(|joined| joined == group)
    }

    // Membership changes, connects and disconnects hold the subscription lock from their
    // check to their last (un)subscribe, so that a disconnect racing a group change never
    // counts a group twice or leaves a count behind.

    async fn add_local(&self, connection_id: &str, group: &str) {
        let mut wanted = self.subscriptions.lock().await;
        if self.local.connection(connection_id).is_none() || self.is_member(connection_id, group) {
            return;
        }
        let _ = self.local.add_to_group(connection_id, group).await;
        if let Err(error) = self.want(&mut wanted, self.channels.group(group)).await {
            tracing::warn!(%error, group, "members on other nodes will not reach this node's");
        }
    }

    async fn remove_local(&self, connection_id: &str, group: &str) {
        let mut wanted = self.subscriptions.lock().await;
        if !self.is_member(connection_id, group) {
            return;
        }
        let _ = self.local.remove_from_group(connection_id, group).await;
        self.unwant(&mut wanted, self.channels.group(group)).await;
    }

    /// Asks the node owning `connection_id` to change its groups, and waits for its ack.
    async fn group_command(
        &self,
        connection_id: &str,
        group: &str,
        action: GroupAction,
    ) -> Result<(), SendError> {
        // Nobody listens on an unknown connection's channel: nothing to do, as for a local
        // unknown connection.
        let channel = self.channels.connection(connection_id);
        let mut redis = self.redis.clone();
        let listeners: Vec<(String, usize)> = self
            .command("numsub", async move {
                redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(channel)
                    .query_async(&mut redis)
                    .await
            })
            .await?;
        if listeners.first().is_none_or(|(_, count)| *count == 0) {
            return Ok(());
        }
        let id = self.next_command.fetch_add(1, Ordering::Relaxed) + 1;
        let (acked, ack) = oneshot::channel();
        self.acks.lock().expect("lock").insert(id, acked);
        let command = GroupCommand {
            id,
            server_name: self.server_name.clone(),
            action,
            group: group.to_owned(),
            connection_id: connection_id.to_owned(),
        };
        let published = self
            .publish(self.channels.group_commands(), command.encode())
            .await;
        let outcome = match published {
            Err(error) => Err(error),
            Ok(_) => match tokio::time::timeout(self.options.ack_timeout, ack).await {
                Ok(_) => Ok(()),
                Err(_) => {
                    tracing::warn!(connection_id, group, "no ack for a group command");
                    Err(SendError::Backplane(format!(
                        "no node acknowledged the group change for connection \
                         '{connection_id}' within {:?}",
                        self.options.ack_timeout
                    )))
                }
            },
        };
        self.acks.lock().expect("lock").remove(&id);
        outcome
    }

    /// Handles one message from Redis.
    async fn received(&self, channel: &str, payload: Bytes) {
        let addressed = self.channels.classify(channel, &self.server_name);
        let outcome = match addressed {
            Addressed::All
            | Addressed::Group(_)
            | Addressed::User(_)
            | Addressed::Connection(_) => self.deliver_received(addressed, &payload).await,
            Addressed::GroupCommands => self.apply_group_command(&payload).await,
            Addressed::Acks => decode_ack(&payload).map(|id| {
                if let Some(acked) = self.acks.lock().expect("lock").remove(&id) {
                    let _ = acked.send(());
                }
            }),
            Addressed::Results => self.accept_result(&payload),
            Addressed::Other => Ok(()),
        };
        if let Err(error) = outcome {
            tracing::warn!(channel, %error, "unreadable message from Redis");
        }
    }

    async fn deliver_received(
        &self,
        addressed: Addressed<'_>,
        payload: &Bytes,
    ) -> Result<(), crate::protocol::DecodeError> {
        let invocation = RedisInvocation::decode(payload)?;
        // This node delivered its own message when it sent it.
        if invocation.origin.as_deref() == Some(self.server_name.as_str()) {
            return Ok(());
        }
        let message = SerializedMessage::new(
            invocation
                .frames
                .iter()
                .filter_map(|(name, bytes)| Some((known_protocol(name)?, bytes.clone())))
                .collect(),
        );
        let excluded = invocation.excluded;
        let audience = match addressed {
            Addressed::All if excluded.is_empty() => Audience::All,
            Addressed::All => Audience::AllExcept(excluded),
            Addressed::Group(group) => Audience::GroupExcept(group.to_owned(), excluded),
            Addressed::User(user) => Audience::User(user.to_owned()),
            Addressed::Connection(id) => {
                if let Some((invocation_id, return_channel)) = invocation.result_route {
                    // Checked and recorded under the table's lock: a disconnect removes the
                    // connection first and empties the table after, so an invocation for a
                    // connection that is closing is either recorded and then answered by the
                    // disconnect, or answered here.
                    let mut forwarded = self.forwarded.lock().expect("lock");
                    match self.local.connection(id) {
                        Some(_) => {
                            forwarded.insert((id.to_owned(), invocation_id), return_channel);
                        }
                        None => {
                            drop(forwarded);
                            // Answered in the protocol the asking node framed first.
                            let protocol = invocation
                                .frames
                                .first()
                                .and_then(|(name, _)| known_protocol(name))
                                .unwrap_or("json");
                            self.relay_disconnected(return_channel, id, protocol, invocation_id)
                                .await;
                            return Ok(());
                        }
                    }
                }
                Audience::Connection(id.to_owned())
            }
            _ => return Ok(()),
        };
        let _ = self.local.send(&audience, &message).await;
        Ok(())
    }

    async fn apply_group_command(
        &self,
        payload: &Bytes,
    ) -> Result<(), crate::protocol::DecodeError> {
        let command = GroupCommand::decode(payload)?;
        if self.local.connection(&command.connection_id).is_none() {
            return Ok(());
        }
        match command.action {
            GroupAction::Add => self.add_local(&command.connection_id, &command.group).await,
            GroupAction::Remove => {
                self.remove_local(&command.connection_id, &command.group)
                    .await;
            }
        }
        let ack = self.channels.acks(&command.server_name);
        let _ = self.publish(ack, encode_ack(command.id)).await;
        Ok(())
    }

    /// Hands a client's answer relayed by another node to the invocation waiting for it.
    fn accept_result(&self, payload: &Bytes) -> Result<(), crate::protocol::DecodeError> {
        let relayed = RelayedCompletion::decode(payload)?;
        let Some(protocol) = protocol_named(&relayed.protocol) else {
            tracing::warn!(protocol = %relayed.protocol, "a client result in an unknown protocol");
            return Ok(());
        };
        let completion = match protocol.parse(&relayed.completion) {
            Ok(Parsed::Message(HubMessage::Completion(completion), _)) => completion,
            _ => {
                return Err(crate::protocol::DecodeError::new(
                    "the relayed client result is not a Completion",
                ));
            }
        };
        let Some(connection_id) = self.results.connection_of(&completion.invocation_id) else {
            return Ok(());
        };
        // The answering node reports a closed connection with the reference's text.
        let disconnected = InvokeError::Disconnected(connection_id.clone());
        let answer: ClientAnswer = match completion.outcome {
            CompletionOutcome::Error(text) if text == disconnected.to_string() => Err(disconnected),
            outcome => Ok(outcome),
        };
        self.results.resolve(&completion.invocation_id, answer);
        Ok(())
    }

    /// Tells the node that asked `connection_id` for a client result that it closed, in
    /// `protocol`.
    async fn relay_disconnected(
        &self,
        return_channel: String,
        connection_id: &str,
        protocol: &str,
        invocation_id: String,
    ) {
        let text = InvokeError::Disconnected(connection_id.to_owned()).to_string();
        let completion = Completion {
            headers: Headers::new(),
            invocation_id,
            outcome: CompletionOutcome::Error(text),
        };
        self.relay(return_channel, protocol, completion).await;
    }

    /// Sends a Completion for a forwarded client result back to the node that asked.
    async fn relay(&self, return_channel: String, protocol: &str, completion: Completion) {
        let Some(encoder) = protocol_named(protocol) else {
            return;
        };
        let Ok(bytes) = encoder.to_bytes(&HubMessage::Completion(completion)) else {
            return;
        };
        let relayed = RelayedCompletion {
            protocol: protocol.to_owned(),
            completion: bytes,
        };
        let _ = self.publish(return_channel, relayed.encode()).await;
    }
}

#[async_trait]
impl HubLifetimeManager for RedisLifetimeManager {
    async fn on_connected(&self, connection: Arc<ConnectionHandle>) {
        let node = &self.node;
        let id = connection.connection_id().to_owned();
        let user = connection.user_id().map(str::to_owned);
        let mut wanted = node.subscriptions.lock().await;
        node.local.on_connected(connection).await;
        if let Err(error) = node.want(&mut wanted, node.channels.connection(&id)).await {
            tracing::warn!(connection_id = %id, %error, "sends from other nodes will not reach this connection");
        }
        if let Some(user) = user
            && let Err(error) = node.want(&mut wanted, node.channels.user(&user)).await
        {
            tracing::warn!(connection_id = %id, %error, "sends to its user from other nodes will not reach this connection");
        }
    }

    async fn on_disconnected(&self, connection_id: &str) {
        let node = &self.node;
        let connection = {
            let mut wanted = node.subscriptions.lock().await;
            let Some(connection) = node.local.connection(connection_id) else {
                return;
            };
            let groups = node.local.groups_of(connection_id);
            node.closed.lock().expect("lock").insert(connection_id);
            node.local.on_disconnected(connection_id).await;
            for group in groups {
                node.unwant(&mut wanted, node.channels.group(&group)).await;
            }
            node.unwant(&mut wanted, node.channels.connection(connection_id))
                .await;
            if let Some(user) = connection.user_id() {
                node.unwant(&mut wanted, node.channels.user(user)).await;
            }
            connection
        };
        // Client results other nodes wait for on this connection end now. The connection is
        // no longer local, so none is recorded for it after this (see `deliver_received`).
        let waiting: Vec<(String, String)> = {
            let mut forwarded = node.forwarded.lock().expect("lock");
            let ids: Vec<(String, String)> = forwarded
                .keys()
                .filter(|(id, _)| id == connection_id)
                .cloned()
                .collect();
            ids.into_iter()
                .filter_map(|key| forwarded.remove(&key).map(|channel| (key.1, channel)))
                .collect()
        };
        for (invocation_id, return_channel) in waiting {
            node.relay_disconnected(
                return_channel,
                connection_id,
                connection.protocol(),
                invocation_id,
            )
            .await;
        }
    }

    async fn send(
        &self,
        audience: &Audience,
        message: &SerializedMessage,
    ) -> Result<(), SendError> {
        let node = &self.node;
        // Local connections first, without waiting for Redis (this also checks group names).
        match audience {
            Audience::Connection(id) if node.local.connection(id).is_some() => {
                return node.local.send(audience, message).await;
            }
            Audience::Connection(_) => {}
            Audience::Connections(ids) => {
                let (local, remote): (Vec<String>, Vec<String>) = ids
                    .iter()
                    .cloned()
                    .partition(|id| node.local.connection(id).is_some());
                node.local
                    .send(&Audience::Connections(local), message)
                    .await?;
                let publishes = remote.iter().map(|id| {
                    node.publish_invocation(node.channels.connection(id), message, &[], false)
                });
                for published in futures_util::future::join_all(publishes).await {
                    published?;
                }
                return Ok(());
            }
            _ => node.local.send(audience, message).await?,
        }
        let publishes: Vec<(String, &[String])> = match audience {
            Audience::All => vec![(node.channels.all(), &[])],
            Audience::AllExcept(excluded) => vec![(node.channels.all(), excluded)],
            Audience::Connection(id) => {
                node.publish_invocation(node.channels.connection(id), message, &[], false)
                    .await?;
                return Ok(());
            }
            Audience::Group(group) => vec![(node.channels.group(group), &[])],
            Audience::Groups(groups) => groups
                .iter()
                .map(|group| (node.channels.group(group), &[][..]))
                .collect(),
            Audience::GroupExcept(group, excluded) => vec![(node.channels.group(group), excluded)],
            Audience::User(user) => vec![(node.channels.user(user), &[])],
            Audience::Users(users) => users
                .iter()
                .map(|user| (node.channels.user(user), &[][..]))
                .collect(),
            Audience::Connections(_) => Vec::new(),
        };
        // A name listed twice is one channel, published to once.
        let mut seen = std::collections::HashSet::new();
        let publishes = publishes
            .into_iter()
            .filter(|(channel, _)| seen.insert(channel.clone()))
            .map(|(channel, excluded)| node.publish_invocation(channel, message, excluded, true));
        for published in futures_util::future::join_all(publishes).await {
            published?;
        }
        Ok(())
    }

    async fn add_to_group(&self, connection_id: &str, group: &str) -> Result<(), SendError> {
        let node = &self.node;
        if node.local.connection(connection_id).is_some() {
            node.add_local(connection_id, group).await;
            return Ok(());
        }
        if node.recently_closed(connection_id) {
            return Ok(());
        }
        node.group_command(connection_id, group, GroupAction::Add)
            .await
    }

    async fn remove_from_group(&self, connection_id: &str, group: &str) -> Result<(), SendError> {
        let node = &self.node;
        if node.local.connection(connection_id).is_some() {
            node.remove_local(connection_id, group).await;
            return Ok(());
        }
        if node.recently_closed(connection_id) {
            return Ok(());
        }
        node.group_command(connection_id, group, GroupAction::Remove)
            .await
    }

    async fn invoke_connection(
        &self,
        connection_id: &str,
        invocation: &ClientInvocation,
    ) -> ClientAnswer {
        let node = &self.node;
        if node.local.connection(connection_id).is_some() {
            return node
                .local
                .invoke_connection(connection_id, invocation)
                .await;
        }
        let pending = node.results.register(connection_id);
        let message = invocation.to_message(pending.invocation_id())?;
        let routed = RedisInvocation {
            excluded: Vec::new(),
            frames: frames_of(&message),
            result_route: Some((
                pending.invocation_id().to_owned(),
                node.channels.results(&node.server_name),
            )),
            origin: None,
        };
        let receivers = node
            .publish(node.channels.connection(connection_id), routed.encode())
            .await
            .map_err(|error| InvokeError::Backplane(error.to_string()))?;
        if receivers == 0 {
            return Err(InvokeError::NoConnection(connection_id.to_owned()));
        }
        pending.answer().await
    }

    async fn set_connection_result(&self, connection_id: &str, completion: Completion) -> bool {
        let node = &self.node;
        let key = (connection_id.to_owned(), completion.invocation_id.clone());
        let return_channel = node.forwarded.lock().expect("lock").remove(&key);
        let Some(return_channel) = return_channel else {
            return node
                .local
                .set_connection_result(connection_id, completion)
                .await;
        };
        let Some(connection) = node.local.connection(connection_id) else {
            return false;
        };
        node.relay(return_channel, connection.protocol(), completion)
            .await;
        true
    }
}

/// Ids of connections closed within the last minute, oldest first.
#[derive(Default)]
struct RecentlyClosed {
    order: std::collections::VecDeque<(Instant, String)>,
    ids: std::collections::HashSet<String>,
}

impl RecentlyClosed {
    const KEPT_FOR: Duration = Duration::from_secs(60);

    fn insert(&mut self, connection_id: &str) {
        let now = Instant::now();
        while let Some((closed_at, _)) = self.order.front()
            && now.duration_since(*closed_at) > Self::KEPT_FOR
        {
            let (_, id) = self.order.pop_front().expect("checked");
            self.ids.remove(&id);
        }
        if self.ids.insert(connection_id.to_owned()) {
            self.order.push_back((now, connection_id.to_owned()));
        }
    }

    fn contains(&self, connection_id: &str) -> bool {
        self.ids.contains(connection_id)
    }
}

/// Reads what Redis pushes: messages, and news of a lost connection (after which every wanted
/// channel is subscribed again, once Redis answers).
async fn receive(node: std::sync::Weak<Node>, mut pushes: mpsc::UnboundedReceiver<PushInfo>) {
    while let Some(push) = pushes.recv().await {
        let Some(node) = node.upgrade() else {
            return;
        };
        match push.kind {
            PushKind::Message => {
                let mut data = push.data.into_iter();
                if let (Some(channel), Some(payload)) = (data.next(), data.next())
                    && let (Some(channel), Some(payload)) = (bytes_of(channel), bytes_of(payload))
                {
                    let channel = String::from_utf8_lossy(&channel);
                    node.received(&channel, payload).await;
                }
            }
            PushKind::Disconnection => {
                tracing::warn!(
                    hub = %node.channels.hub(),
                    "lost the connection to Redis; messages between nodes are lost until it is back"
                );
                // Answers relayed meanwhile are lost: client results waiting on connections
                // of other nodes end now rather than never.
                node.results.fail_all(&InvokeError::Backplane(
                    "the connection to Redis was lost while waiting for the client's answer".into(),
                ));
                tokio::spawn(resubscribe_when_back(Arc::downgrade(&node)));
            }
            _ => {}
        }
    }
}

/// Subscribes again to every wanted channel as soon as Redis answers, trying every second.
async fn resubscribe_when_back(node: std::sync::Weak<Node>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(node) = node.upgrade() else {
            return;
        };
        if node.resubscribe().await.is_ok() {
            tracing::info!(hub = %node.channels.hub(), "Redis is back; subscriptions restored");
            return;
        }
    }
}

fn bytes_of(value: Value) -> Option<Bytes> {
    match value {
        Value::BulkString(bytes) => Some(Bytes::from(bytes)),
        Value::SimpleString(text) => Some(Bytes::from(text)),
        _ => None,
    }
}

/// The message's frames as `(protocol name, bytes)`.
fn frames_of(message: &SerializedMessage) -> Vec<(String, Bytes)> {
    message
        .frames()
        .iter()
        .map(|(name, bytes)| ((*name).to_owned(), bytes.clone()))
        .collect()
}

/// The static name of a protocol this server speaks.
fn known_protocol(name: &str) -> Option<&'static str> {
    protocol_named(name).map(|protocol| protocol.name())
}

/// The protocol of this name, for relaying client results.
fn protocol_named(name: &str) -> Option<Arc<dyn HubProtocol>> {
    match name {
        "json" => Some(Arc::new(signalr_protocol::json::JsonHubProtocol)),
        "messagepack" => Some(Arc::new(
            signalr_protocol::messagepack::MessagePackHubProtocol,
        )),
        _ => None,
    }
}

/// `<host>_<32 hex digits>`, as the reference names its nodes.
fn generate_server_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}_{}", random_hex(16))
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}
