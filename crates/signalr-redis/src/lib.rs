//! A Redis backplane for `signalr-server`: several server processes, on one machine or many,
//! serve one audience. A hub method on any node reaches connections on every node, with every
//! target (`All`, `AllExcept`, `Client(s)`, `Group(s)`, `GroupExcept`, `OthersInGroup`,
//! `User(s)`), group changes for connections on other nodes, and client results from
//! connections on other nodes.
//!
//! ```no_run
//! use std::sync::Arc;
//! use signalr_redis::{RedisLifetimeManager, RedisOptions};
//! use signalr_server::Hub;
//!
//! # async fn run() -> Result<(), signalr_redis::RedisError> {
//! let backplane =
//!     RedisLifetimeManager::connect("redis://127.0.0.1:6379", "Chat", RedisOptions::default())
//!         .await?;
//! let hub = Hub::builder(()).lifetime_manager(Arc::new(backplane));
//! # let _ = hub;
//! # Ok(())
//! # }
//! ```
//!
//! Build one manager per hub and give every node the same hub name: the name is part of every
//! channel (`<hub>:all`, `<hub>:group:<name>`, `<hub>:internal:groups` and so on), so two hubs
//! of one process need two names, and an ASP.NET Core node of the same hub uses its hub
//! class's full name (`Namespace.ChatHub`). Payloads are the reference's MessagePack arrays of
//! framed messages, so nodes of this crate can share a Redis server with ASP.NET Core nodes.
//!
//! Redis 6 or later (the connection speaks RESP3). The URL is redis-rs's:
//! `redis://[:password@]host:port[/db]` (`redis://user:password@...` with ACL users);
//! `rediss://` (TLS) is not enabled in this build. Standalone Redis only: Redis Cluster and
//! Sentinel are not supported.
//!
//! # What reaches whom
//!
//! Each node delivers to its own connections directly, without waiting for Redis, and skips
//! its own messages when Redis brings them back; the other nodes get one publish per channel
//! addressed, with the message already framed for each protocol, and write those bytes as
//! they are. A node listens to a group's or a user's channel only while one of its
//! connections is a member. As with ASP.NET Core's backplane, a connection on another node
//! that is in several of the groups a `Groups` send addresses gets the message once per
//! group (this node's own connections get it once); a user listed twice gets it once.
//!
//! # When Redis goes away
//!
//! [`RedisLifetimeManager::connect`] fails when Redis cannot be reached. Once running,
//! nothing stops locally: each node keeps delivering to its own connections, and sends still
//! reach the local part of their audience first. What needs Redis fails with
//! [`SendError::Backplane`](signalr_server::SendError::Backplane) (and a warning in the log)
//! within [`RedisOptions::command_timeout`]: a publish for other nodes, a group change for a
//! connection on another node. A hub method that passes that error on with `?` fails, and
//! its caller sees the reference's generic error although its own node's connections got
//! the message; a method that must succeed locally can log the error instead. A client
//! result waiting on a connection of another node fails with
//! [`InvokeError::Backplane`](signalr_server::InvokeError::Backplane) as soon as the
//! connection to Redis is lost.
//!
//! What is lost: Redis pub/sub keeps no history, so messages published while Redis is down,
//! or in flight when the connection breaks, never reach the other nodes. (A publish issued
//! while redis-rs is reconnecting waits for the reconnect, up to the command timeout, and is
//! delivered if Redis is back in time.) When Redis is back each node reconnects and
//! subscribes again to every channel it needs, and delivery between nodes resumes.
//!
//! A node that dies takes its connections with it; a client result another node waits for
//! on one of them then waits until the caller's own timeout
//! ([`SingleClientProxy::invoke_with_timeout`](signalr_server::SingleClientProxy::invoke_with_timeout)),
//! as with the reference.

mod channels;
mod manager;
pub mod protocol;

use std::time::Duration;

pub use manager::RedisLifetimeManager;

/// Settings of a [`RedisLifetimeManager`].
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Put in front of every channel name, as StackExchange.Redis's `ChannelPrefix` is (to
    /// share one Redis between applications). Default empty.
    pub channel_prefix: String,
    /// How long a Redis command (a publish, a subscribe) may take before the operation that
    /// needed it fails. Default 5 s.
    pub command_timeout: Duration,
    /// How long to wait for another node to acknowledge a group change for one of its
    /// connections. Default 30 s, as the reference.
    pub ack_timeout: Duration,
    /// This node's name on the backplane; default `<host name>_<32 random hex digits>`, as
    /// the reference's. Every node needs its own.
    pub server_name: Option<String>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            channel_prefix: String::new(),
            command_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(30),
            server_name: None,
        }
    }
}

/// Why [`RedisLifetimeManager::connect`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisError {
    /// The URL is invalid, or Redis could not be reached.
    #[error("cannot connect to Redis: {0}")]
    Connect(String),
}
