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
//! Channels and payloads follow ASP.NET Core's Redis backplane (`<hub>:all`,
//! `<hub>:group:<name>`, `<hub>:internal:groups` and so on, MessagePack arrays of framed
//! messages), so nodes of this crate can share a Redis server with ASP.NET Core nodes of the
//! same hub. Standalone Redis only: Redis Cluster and Sentinel are not supported yet (redis-rs
//! supports cluster pub/sub, but this crate has not been tested on it).
//!
//! # What reaches whom
//!
//! Each node delivers to its own connections directly, without waiting for Redis, and skips
//! its own messages when Redis brings them back; the other nodes get one publish per channel
//! addressed, with the message already framed for each protocol, and write those bytes as
//! they are. A node listens to a group's or a user's channel only while one of its
//! connections is a member. As with ASP.NET Core's backplane, a connection on another node
//! that is in several of the groups a `Groups` send addresses gets the message once per
//! group (this node's own connections get it once).
//!
//! # When Redis goes away
//!
//! Nothing stops locally: each node keeps delivering to its own connections, and sends still
//! reach the local part of their audience first. What needs Redis fails with
//! [`SendError::Backplane`](signalr_server::SendError::Backplane) (and a warning in the log)
//! within [`RedisOptions::command_timeout`]: a publish for other nodes, a group change for a
//! connection on another node, a client result from a connection on another node. Messages
//! published while Redis is down, or in flight when it goes, are lost for the other nodes:
//! Redis pub/sub keeps no history. When Redis is back each node reconnects and subscribes
//! again to every channel it needs, and delivery between nodes resumes.

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
