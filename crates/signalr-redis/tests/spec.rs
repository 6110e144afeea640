//! The lifetime-manager specification of `signalr-server`, unchanged, against two nodes on one
//! real `redis-server`.

mod common;

use std::sync::Arc;

use signalr_redis::{RedisLifetimeManager, RedisOptions};
use signalr_server::lifetime::HubLifetimeManager;

async fn two_nodes() -> (Arc<dyn HubLifetimeManager>, Arc<dyn HubLifetimeManager>) {
    let server = common::RedisServer::shared();
    let hub = common::unique_hub();
    let node = || RedisLifetimeManager::connect(&server.url, &hub, RedisOptions::default());
    let a = node().await.expect("node a connects");
    let b = node().await.expect("node b connects");
    (Arc::new(a), Arc::new(b))
}

signalr_server::lifetime_manager_spec!(two_nodes);
