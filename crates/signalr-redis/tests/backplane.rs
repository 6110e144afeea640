//! What the specification suite does not cover: no double delivery to a node's own
//! connections, the bytes on Redis as an ASP.NET Core node writes and reads them, the ack
//! timeout, and a Redis outage.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use signalr_redis::protocol::{GroupAction, GroupCommand, RedisInvocation};
use signalr_redis::{RedisLifetimeManager, RedisOptions};
use signalr_server::SendError;
use signalr_server::lifetime::spec::{TestConnection, message};
use signalr_server::lifetime::{Audience, HubLifetimeManager};

async fn node(url: &str, hub: &str, options: RedisOptions) -> Arc<dyn HubLifetimeManager> {
    Arc::new(
        RedisLifetimeManager::connect(url, hub, options)
            .await
            .expect("the node connects"),
    )
}

/// A plain Redis client subscribed to `channel`, as another program would be.
async fn listen(url: &str, channel: &str) -> impl futures_util::Stream<Item = Bytes> + use<> {
    let client = redis::Client::open(url).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(channel).await.unwrap();
    pubsub
        .into_on_message()
        .map(|message| Bytes::from(message.get_payload_bytes().to_vec()))
}

async fn publish_raw(url: &str, channel: &str, payload: Vec<u8>) {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: usize = redis::AsyncCommands::publish(&mut connection, channel, payload)
        .await
        .unwrap();
}

/// Two nodes with a short command timeout on a Redis server of their own (to stop it).
async fn two_nodes_on_own_server() -> (
    common::RedisServer,
    Arc<dyn HubLifetimeManager>,
    Arc<dyn HubLifetimeManager>,
) {
    let server = common::RedisServer::start();
    let hub = common::unique_hub();
    let options = RedisOptions {
        command_timeout: Duration::from_millis(500),
        ..RedisOptions::default()
    };
    let a = node(&server.url, &hub, options.clone()).await;
    let b = node(&server.url, &hub, options).await;
    (server, a, b)
}

/// A client-result invocation of `Result()` in JSON.
fn result_invocation() -> signalr_server::lifetime::ClientInvocation {
    let protocol: Arc<dyn signalr_server::protocol::HubProtocol> =
        Arc::new(signalr_server::protocol::json::JsonHubProtocol);
    let arguments = signalr_server::protocol::Payload::json("[]").unwrap();
    signalr_server::lifetime::ClientInvocation::new("Result".into(), vec![(protocol, arguments)])
}

fn json_frames(text: &str) -> Vec<(String, Bytes)> {
    vec![("json".to_owned(), Bytes::copy_from_slice(text.as_bytes()))]
}

#[tokio::test]
async fn a_nodes_own_connections_get_each_message_once() {
    let server = common::RedisServer::shared();
    let hub = common::unique_hub();
    let a = node(&server.url, &hub, RedisOptions::default()).await;
    let b = node(&server.url, &hub, RedisOptions::default()).await;
    let mut local = TestConnection::connect(&a, "c1", Some("ann")).await;
    let mut remote = TestConnection::connect(&b, "c2", Some("ann")).await;
    a.add_to_group("c1", "g").await.unwrap();
    a.add_to_group("c2", "g").await.unwrap();
    for audience in [
        Audience::All,
        Audience::Group("g".into()),
        Audience::User("ann".into()),
        Audience::Groups(vec!["g".into(), "other".into()]),
    ] {
        a.send(&audience, &message("m")).await.unwrap();
        local.expect("m").await;
        remote.expect("m").await;
        local.expect_nothing().await;
        remote.expect_nothing().await;
    }
}

#[tokio::test]
async fn messages_on_redis_are_in_the_reference_layout() {
    let server = common::RedisServer::shared();
    let hub = common::unique_hub();
    let options = RedisOptions {
        server_name: Some("node-a".into()),
        ..RedisOptions::default()
    };
    let manager = RedisLifetimeManager::connect(&server.url, &hub, options)
        .await
        .unwrap();
    assert_eq!(manager.server_name(), "node-a");
    let a: Arc<dyn HubLifetimeManager> = Arc::new(manager);

    // What this node publishes: the reference's two items, then two nils and its name.
    let mut all = Box::pin(listen(&server.url, &format!("{hub}:all")).await);
    a.send(&Audience::AllExcept(vec!["x".into()]), &message("hi"))
        .await
        .unwrap();
    let published = tokio::time::timeout(Duration::from_secs(5), all.next())
        .await
        .unwrap()
        .unwrap();
    let mut expected = vec![0x95, 0x91, 0xa1, b'x', 0x81, 0xa4, b'j', b's', b'o', b'n'];
    expected.extend_from_slice(&[0xc4, 0x02, b'h', b'i', 0xc0, 0xc0]);
    expected.extend_from_slice(b"\xa6node-a");
    assert_eq!(published.to_vec(), expected);

    // What an ASP.NET Core node publishes reaches this node's connections.
    let mut member = TestConnection::connect(&a, "c1", None).await;
    a.add_to_group("c1", "g").await.unwrap();
    for channel in ["all", "group:g", "connection:c1"] {
        let reference = RedisInvocation {
            excluded: Vec::new(),
            frames: json_frames(channel),
            result_route: None,
            origin: None,
        };
        publish_raw(&server.url, &format!("{hub}:{channel}"), reference.encode()).await;
        member.expect(channel).await;
    }
    // Its exclusions hold here too.
    let excluding = RedisInvocation {
        excluded: vec!["c1".into()],
        frames: json_frames("not for c1"),
        result_route: None,
        origin: None,
    };
    publish_raw(&server.url, &format!("{hub}:all"), excluding.encode()).await;
    member.expect_nothing().await;

    // A group command from another node is applied and acknowledged on its ack channel.
    let mut acks = Box::pin(listen(&server.url, &format!("{hub}:internal:ack:aspnet_1")).await);
    let command = GroupCommand {
        id: 7,
        server_name: "aspnet_1".into(),
        action: GroupAction::Remove,
        group: "g".into(),
        connection_id: "c1".into(),
    };
    publish_raw(
        &server.url,
        &format!("{hub}:internal:groups"),
        command.encode(),
    )
    .await;
    let ack = tokio::time::timeout(Duration::from_secs(5), acks.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ack.to_vec(), [0x91, 0x07]);
    a.send(&Audience::Group("g".into()), &message("left"))
        .await
        .unwrap();
    member.expect_nothing().await;

    // Garbage on a channel is logged and skipped; the node keeps working.
    publish_raw(&server.url, &format!("{hub}:all"), vec![0xc1, 0x00]).await;
    a.send(&Audience::All, &message("still here"))
        .await
        .unwrap();
    member.expect("still here").await;
}

#[tokio::test]
async fn a_group_change_nobody_acknowledges_fails_after_the_ack_timeout() {
    let server = common::RedisServer::shared();
    let hub = common::unique_hub();
    let options = RedisOptions {
        ack_timeout: Duration::from_millis(300),
        ..RedisOptions::default()
    };
    let a = node(&server.url, &hub, options).await;
    // Something listens for the connection, but no node owns it.
    let _listener = listen(&server.url, &format!("{hub}:connection:ghost")).await;
    let started = Instant::now();
    let error = a.add_to_group("ghost", "g").await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(matches!(error, SendError::Backplane(_)));
    assert_eq!(
        error.to_string(),
        "the backplane failed: no node acknowledged the group change for connection 'ghost' \
         within 300ms"
    );
    // A connection nobody listens for is unknown: nothing to do, as on one node.
    assert!(a.add_to_group("nobody", "g").await.is_ok());
}

#[tokio::test]
async fn a_redis_outage_keeps_local_delivery_and_heals() {
    let (server, a, b) = two_nodes_on_own_server().await;
    let mut on_a = TestConnection::connect(&a, "c1", None).await;
    let mut on_b = TestConnection::connect(&b, "c2", None).await;
    b.add_to_group("c2", "g").await.unwrap();

    server.stop();
    // Local delivery goes on; what needs Redis fails, within the command timeout.
    let started = Instant::now();
    let sent = a.send(&Audience::All, &message("during")).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(&sent, Err(SendError::Backplane(text)) if text.starts_with("Redis publish failed")),
        "{sent:?}"
    );
    on_a.expect("during").await;
    on_b.expect_nothing().await;
    let sent = b
        .send(&Audience::Group("g".into()), &message("local g"))
        .await;
    assert!(sent.is_err());
    on_b.expect("local g").await;

    server.resume();
    // Both nodes reconnect and subscribe again: sends from either side arrive again, the
    // group's channel included.
    let healed = Instant::now();
    loop {
        assert!(
            healed.elapsed() < Duration::from_secs(20),
            "delivery between nodes did not resume"
        );
        if a.send(&Audience::Group("g".into()), &message("after"))
            .await
            .is_ok()
            && tokio::time::timeout(Duration::from_millis(500), on_b.next_text())
                .await
                .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.send(&Audience::All, &message("back")).await.unwrap();
    on_a.expect("back").await;
    on_b.expect("back").await;
}

/// How many subscribers `channel` has on the Redis server at `url`.
async fn subscribers(url: &str, channel: &str) -> usize {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let counts: Vec<(String, usize)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut connection)
        .await
        .unwrap();
    counts[0].1
}

#[tokio::test]
async fn group_changes_racing_a_disconnect_leave_the_subscriptions_right() {
    let server = common::RedisServer::shared();
    let hub = common::unique_hub();
    let a = node(&server.url, &hub, RedisOptions::default()).await;
    let b = node(&server.url, &hub, RedisOptions::default()).await;
    let mut member = TestConnection::connect(&a, "member", None).await;
    a.add_to_group("member", "g").await.unwrap();
    for round in 0..20 {
        // Each closing connection is also the only member of a group of its own, so that its
        // disconnect waits on Redis (to unsubscribe) while the group change runs.
        // A member leaving as its connection closes: the group keeps its other member.
        let leaving = format!("leaving{round}");
        let _leaving = TestConnection::connect(&a, &leaving, None).await;
        a.add_to_group(&leaving, "g").await.unwrap();
        a.add_to_group(&leaving, &format!("solo-{leaving}"))
            .await
            .unwrap();
        let _ = tokio::join!(
            a.on_disconnected(&leaving),
            a.remove_from_group(&leaving, "g")
        );
        // A join as the connection closes: nothing is left behind.
        let joining = format!("joining{round}");
        let _joining = TestConnection::connect(&a, &joining, None).await;
        a.add_to_group(&joining, &format!("solo-{joining}"))
            .await
            .unwrap();
        let _ = tokio::join!(a.on_disconnected(&joining), a.add_to_group(&joining, "h"));
    }
    b.send(&Audience::Group("g".into()), &message("still"))
        .await
        .unwrap();
    member.expect("still").await;
    assert_eq!(subscribers(&server.url, &format!("{hub}:group:g")).await, 1);
    assert_eq!(subscribers(&server.url, &format!("{hub}:group:h")).await, 0);
}

#[tokio::test]
async fn a_client_result_racing_a_disconnect_is_answered() {
    let server = common::RedisServer::shared();
    let hub = common::unique_hub();
    let a = node(&server.url, &hub, RedisOptions::default()).await;
    let b = node(&server.url, &hub, RedisOptions::default()).await;
    let invocation = result_invocation();
    for round in 0..20 {
        let id = format!("c{round}");
        let _connection = TestConnection::connect(&b, &id, None).await;
        let (answer, ()) = tokio::time::timeout(
            Duration::from_secs(5),
            futures_util::future::join(a.invoke_connection(&id, &invocation), async {
                // Let the invocation get under way in some rounds, not in others.
                tokio::time::sleep(Duration::from_micros(200 * round)).await;
                b.on_disconnected(&id).await;
            }),
        )
        .await
        .expect("the client result ends");
        assert!(
            matches!(
                &answer,
                Err(signalr_server::InvokeError::Disconnected(gone)
                    | signalr_server::InvokeError::NoConnection(gone)) if *gone == id
            ),
            "{answer:?}"
        );
    }
}

#[tokio::test]
async fn a_client_result_waiting_on_another_node_ends_when_redis_goes_away() {
    let (server, a, b) = two_nodes_on_own_server().await;
    let mut connection = TestConnection::connect(&b, "c1", None).await;
    let invocation = result_invocation();
    let waiting = a.invoke_connection("c1", &invocation);
    let outage = async {
        // The invocation reached the client; Redis goes before it answers.
        assert!(
            connection
                .next_text()
                .await
                .contains("\"target\":\"Result\"")
        );
        server.stop();
    };
    let (answer, ()) = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::future::join(waiting, outage),
    )
    .await
    .expect("the wait ends");
    assert_eq!(
        answer,
        Err(signalr_server::InvokeError::Backplane(
            "the connection to Redis was lost while waiting for the client's answer".into()
        ))
    );
}

#[tokio::test]
async fn a_user_listed_twice_gets_the_message_once() {
    let server = common::RedisServer::shared();
    let hub = common::unique_hub();
    let a = node(&server.url, &hub, RedisOptions::default()).await;
    let b = node(&server.url, &hub, RedisOptions::default()).await;
    let mut remote = TestConnection::connect(&b, "c1", Some("ann")).await;
    let mut local = TestConnection::connect(&a, "c2", Some("ann")).await;
    a.send(
        &Audience::Users(vec!["ann".into(), "ann".into()]),
        &message("once"),
    )
    .await
    .unwrap();
    remote.expect("once").await;
    local.expect("once").await;
    remote.expect_nothing().await;
    local.expect_nothing().await;
}
