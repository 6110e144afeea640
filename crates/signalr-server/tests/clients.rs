//! Sending to clients end to end: groups, caller/others, users, and a `HubContext` used from
//! outside the hub (PROTOCOL.md §12).
//!
//! Negative checks ("this connection did not get the message") need no waiting: a send
//! resolves once the message is queued for every recipient, and each connection's queue is
//! FIFO, so anything sent to a connection before a later marker arrives before that marker.

mod common;

use axum::Router;
use signalr_server::{CallContext, Hub, HubContext, HubError, HubRouterExt};

use common::{Client, start, user_from_query};

async fn echo(_context: CallContext<()>, text: String) -> Result<String, HubError> {
    Ok(text)
}

async fn join(context: CallContext<()>, group: String) -> Result<(), HubError> {
    context
        .groups()
        .add(context.connection_id(), &group)
        .await?;
    Ok(())
}

async fn leave(context: CallContext<()>, group: String) -> Result<(), HubError> {
    context
        .groups()
        .remove(context.connection_id(), &group)
        .await?;
    Ok(())
}

async fn send_to_group(
    context: CallContext<()>,
    group: String,
    text: String,
) -> Result<(), HubError> {
    context
        .clients()
        .group(&group)
        .send("Group", (text,))
        .await?;
    Ok(())
}

async fn send_to_others(context: CallContext<()>, text: String) -> Result<(), HubError> {
    context.clients().others().send("Others", (text,)).await?;
    Ok(())
}

async fn send_to_caller(context: CallContext<()>, text: String) -> Result<(), HubError> {
    context.clients().caller().send("Caller", (text,)).await?;
    Ok(())
}

async fn send_to_all(context: CallContext<()>, text: String) -> Result<(), HubError> {
    context.clients().all().send("All", (text,)).await?;
    Ok(())
}

async fn send_to_user(
    context: CallContext<()>,
    user: String,
    text: String,
) -> Result<(), HubError> {
    context.clients().user(&user).send("User", (text,)).await?;
    Ok(())
}

async fn whoami(context: CallContext<()>) -> Result<String, HubError> {
    Ok(context.connection_id().to_owned())
}

fn hub() -> Hub<()> {
    Hub::builder(())
        .method("Echo", echo)
        .method("Join", join)
        .method("Leave", leave)
        .method("SendToGroup", send_to_group)
        .method("SendToOthers", send_to_others)
        .method("SendToCaller", send_to_caller)
        .method("SendToAll", send_to_all)
        .method("SendToUser", send_to_user)
        .method("WhoAmI", whoami)
        .build()
}

/// A server with the test hub; also returns its context.
async fn server() -> (String, HubContext) {
    let hub = hub();
    let context = hub.context();
    let app = Router::new()
        .map_hub("/hub", hub)
        .layer(axum::middleware::from_fn(user_from_query));
    (start(app).await, context)
}

/// A client that is registered with the hub (a round trip proves the connect finished).
async fn ready(base: &str, query: &str) -> Client {
    let mut client = Client::open(base, query).await;
    client.call("ready", "Echo", "[\"ready\"]").await;
    client
}

fn void(id: &str) -> String {
    format!("{{\"type\":3,\"invocationId\":\"{id}\"}}")
}

#[tokio::test]
async fn group_members_receive_group_sends() {
    let (base, _) = server().await;
    let mut member = ready(&base, "").await;
    let mut outsider = ready(&base, "").await;

    assert_eq!(member.call("1", "Join", "[\"g\"]").await, void("1"));
    // The sender is not a member: its next record is its own completion.
    assert_eq!(
        outsider.call("1", "SendToGroup", "[\"g\",\"hello\"]").await,
        void("1")
    );
    assert_eq!(
        member.recv().await,
        "{\"type\":1,\"target\":\"Group\",\"arguments\":[\"hello\"]}"
    );

    // A member sending to its own group receives the message too, before its completion.
    member.invoke("2", "SendToGroup", "[\"g\",\"self\"]").await;
    assert_eq!(
        member.recv().await,
        "{\"type\":1,\"target\":\"Group\",\"arguments\":[\"self\"]}"
    );
    assert_eq!(member.recv().await, void("2"));
}

#[tokio::test]
async fn leaving_a_group_stops_group_sends() {
    let (base, _) = server().await;
    let mut member = ready(&base, "").await;
    let mut sender = ready(&base, "").await;
    assert_eq!(member.call("1", "Join", "[\"g\"]").await, void("1"));
    assert_eq!(member.call("2", "Leave", "[\"g\"]").await, void("2"));
    assert_eq!(
        sender.call("1", "SendToGroup", "[\"g\",\"gone\"]").await,
        void("1")
    );
    // All includes the caller: the marker comes before the completion.
    sender.invoke("2", "SendToAll", "[\"marker\"]").await;
    assert_eq!(
        sender.recv().await,
        "{\"type\":1,\"target\":\"All\",\"arguments\":[\"marker\"]}"
    );
    assert_eq!(sender.recv().await, void("2"));
    // The marker is the first thing the former member receives.
    assert_eq!(
        member.recv().await,
        "{\"type\":1,\"target\":\"All\",\"arguments\":[\"marker\"]}"
    );
}

#[tokio::test]
async fn others_does_not_reach_the_caller() {
    let (base, _) = server().await;
    let mut caller = ready(&base, "").await;
    let mut other = ready(&base, "").await;
    assert_eq!(
        caller.call("1", "SendToOthers", "[\"psst\"]").await,
        void("1")
    );
    assert_eq!(
        other.recv().await,
        "{\"type\":1,\"target\":\"Others\",\"arguments\":[\"psst\"]}"
    );
}

#[tokio::test]
async fn caller_reaches_only_the_caller() {
    let (base, _) = server().await;
    let mut caller = ready(&base, "").await;
    let mut other = ready(&base, "").await;
    caller.invoke("1", "SendToCaller", "[\"me\"]").await;
    assert_eq!(
        caller.recv().await,
        "{\"type\":1,\"target\":\"Caller\",\"arguments\":[\"me\"]}"
    );
    assert_eq!(caller.recv().await, void("1"));
    assert_eq!(
        other.call("1", "Echo", "[\"nothing before this\"]").await,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":\"nothing before this\"}"
    );
}

#[tokio::test]
async fn hub_context_sends_to_all_clients_from_outside() {
    let (base, context) = server().await;
    let mut first = ready(&base, "").await;
    let mut second = ready(&base, "").await;
    common::bounded("a send", context.clients().all().send("Notify", (1,)))
        .await
        .expect("the send succeeds");
    for client in [&mut first, &mut second] {
        assert_eq!(
            client.recv().await,
            "{\"type\":1,\"target\":\"Notify\",\"arguments\":[1]}"
        );
    }
}

#[tokio::test]
async fn hub_context_sends_to_one_connection_and_manages_groups() {
    let (base, context) = server().await;
    let mut first = ready(&base, "").await;
    let mut second = ready(&base, "").await;
    let first_id = first.call("1", "WhoAmI", "[]").await;
    let first_id: serde_json::Value = serde_json::from_str(&first_id).unwrap();
    let first_id = first_id["result"].as_str().unwrap().to_owned();

    common::bounded(
        "a send",
        context.clients().client(&first_id).send("Direct", ()),
    )
    .await
    .unwrap();
    common::bounded("a group add", context.groups().add(&first_id, "outside"))
        .await
        .unwrap();
    common::bounded(
        "a group send",
        context.clients().group("outside").send("G", ("x", 2)),
    )
    .await
    .unwrap();
    common::bounded("a send", context.clients().all().send("Marker", ()))
        .await
        .unwrap();

    assert_eq!(
        first.recv().await,
        "{\"type\":1,\"target\":\"Direct\",\"arguments\":[]}"
    );
    assert_eq!(
        first.recv().await,
        "{\"type\":1,\"target\":\"G\",\"arguments\":[\"x\",2]}"
    );
    assert_eq!(
        first.recv().await,
        "{\"type\":1,\"target\":\"Marker\",\"arguments\":[]}"
    );
    assert_eq!(
        second.recv().await,
        "{\"type\":1,\"target\":\"Marker\",\"arguments\":[]}"
    );
}

#[tokio::test]
async fn user_targets_reach_every_connection_of_that_user_only() {
    let (base, context) = server().await;
    let mut alice_phone = ready(&base, "?user=alice").await;
    let mut alice_laptop = ready(&base, "?user=alice").await;
    let mut bob = ready(&base, "?user=bob").await;
    let mut anonymous = ready(&base, "").await;

    common::bounded(
        "a user send",
        context.clients().user("alice").send("ForAlice", ("hi",)),
    )
    .await
    .unwrap();
    // From a hub method too, sent by someone else.
    assert_eq!(
        bob.call("1", "SendToUser", "[\"alice\",\"from bob\"]")
            .await,
        void("1")
    );
    common::bounded("a send", context.clients().all().send("Marker", ()))
        .await
        .unwrap();

    for alice in [&mut alice_phone, &mut alice_laptop] {
        assert_eq!(
            alice.recv().await,
            "{\"type\":1,\"target\":\"ForAlice\",\"arguments\":[\"hi\"]}"
        );
        assert_eq!(
            alice.recv().await,
            "{\"type\":1,\"target\":\"User\",\"arguments\":[\"from bob\"]}"
        );
        assert_eq!(
            alice.recv().await,
            "{\"type\":1,\"target\":\"Marker\",\"arguments\":[]}"
        );
    }
    for other in [&mut bob, &mut anonymous] {
        assert_eq!(
            other.recv().await,
            "{\"type\":1,\"target\":\"Marker\",\"arguments\":[]}"
        );
    }
}

#[tokio::test]
async fn closed_connections_leave_their_groups_and_users() {
    let (base, context) = server().await;
    let mut leaving = ready(&base, "?user=carol").await;
    let mut staying = ready(&base, "?user=carol").await;
    assert_eq!(leaving.call("1", "Join", "[\"g\"]").await, void("1"));
    assert_eq!(staying.call("1", "Join", "[\"g\"]").await, void("1"));
    leaving.send_records(&["{\"type\":7}"]).await;
    leaving.expect_record_then_close("{\"type\":7}").await;

    // Sending to the group and the user still reaches the remaining connection, once each.
    common::bounded("a send", context.clients().group("g").send("G", ()))
        .await
        .unwrap();
    common::bounded("a send", context.clients().user("carol").send("U", ()))
        .await
        .unwrap();
    common::bounded("a send", context.clients().all().send("Marker", ()))
        .await
        .unwrap();
    assert_eq!(
        staying.recv().await,
        "{\"type\":1,\"target\":\"G\",\"arguments\":[]}"
    );
    assert_eq!(
        staying.recv().await,
        "{\"type\":1,\"target\":\"U\",\"arguments\":[]}"
    );
    assert_eq!(
        staying.recv().await,
        "{\"type\":1,\"target\":\"Marker\",\"arguments\":[]}"
    );
}

/// A loop sending to a connection that is gone completes each send at once; it must still let
/// other tasks of its thread run, or a hub method looping after its caller left would hold a
/// worker thread for good.
#[tokio::test(flavor = "current_thread")]
async fn sends_to_absent_clients_let_other_tasks_run() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let hub = Hub::builder(()).build();
    let clients = hub.context().clients();
    let turns = Arc::new(AtomicUsize::new(0));
    let other = tokio::spawn({
        let turns = turns.clone();
        async move {
            loop {
                turns.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }
    });
    for _ in 0..10_000 {
        clients.client("gone").send("Number", (1,)).await.unwrap();
    }
    // On this one thread the other task runs only when the loop yields.
    assert!(
        turns.load(Ordering::Relaxed) > 0,
        "the send loop never yielded"
    );
    other.abort();
}
