//! The specification every [`HubLifetimeManager`] must meet, as test functions that another
//! implementation runs unchanged.
//!
//! Each function takes two *nodes*: two managers that share one backend. For the in-memory
//! manager both are the same instance; a backplane passes two instances connected to one
//! server, and the cases then check delivery across them. Run them all with
//! [`lifetime_manager_spec!`](crate::lifetime_manager_spec):
//!
//! ```ignore
//! async fn two_nodes() -> (Arc<dyn HubLifetimeManager>, Arc<dyn HubLifetimeManager>) { ... }
//! signalr_server::lifetime_manager_spec!(two_nodes);
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use signalr_protocol::json::JsonHubProtocol;
use signalr_protocol::{Completion, CompletionOutcome, Headers, HubProtocol, Payload};

use super::{Audience, ClientInvocation, ConnectionHandle, HubLifetimeManager, SerializedMessage};
use crate::error::{InvokeError, SendError};

/// Two managers sharing one backend.
pub type Nodes = (Arc<dyn HubLifetimeManager>, Arc<dyn HubLifetimeManager>);

/// How long a case waits for a message that must arrive.
const ARRIVAL: Duration = Duration::from_secs(5);
/// How long a case watches for a message that must not arrive.
const SILENCE: Duration = Duration::from_millis(300);

/// A registered test connection and the receiving end of its queue.
pub struct TestConnection {
    /// The handle the manager holds.
    pub handle: Arc<ConnectionHandle>,
    received: mpsc::Receiver<Bytes>,
}

impl TestConnection {
    /// Registers a JSON connection with `node`.
    pub async fn connect(node: &Arc<dyn HubLifetimeManager>, id: &str, user: Option<&str>) -> Self {
        let (sender, received) = mpsc::channel(16);
        let handle = Arc::new(ConnectionHandle::new(
            id.to_owned(),
            user.map(str::to_owned),
            "json",
            sender,
            CancellationToken::new(),
            Duration::from_secs(1),
        ));
        node.on_connected(handle.clone()).await;
        TestConnection { handle, received }
    }

    /// Asserts that `text` arrives next.
    pub async fn expect(&mut self, text: &str) {
        let id = self.handle.connection_id().to_owned();
        assert_eq!(self.next_text().await, text, "at {id}");
    }

    /// The next message's text.
    pub async fn next_text(&mut self) -> String {
        let id = self.handle.connection_id().to_owned();
        let bytes = tokio::time::timeout(ARRIVAL, self.received.recv())
            .await
            .unwrap_or_else(|_| panic!("{id} received nothing"))
            .expect("queue open");
        String::from_utf8(bytes.to_vec()).expect("JSON text")
    }

    /// Asserts that nothing arrives for a while.
    pub async fn expect_nothing(&mut self) {
        let id = self.handle.connection_id().to_owned();
        if let Ok(Some(bytes)) = tokio::time::timeout(SILENCE, self.received.recv()).await {
            panic!(
                "{id} received {:?}, expected nothing",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

/// A JSON-only message carrying `text` as its bytes.
pub fn message(text: &str) -> SerializedMessage {
    SerializedMessage::new(vec![("json", Bytes::copy_from_slice(text.as_bytes()))])
}

async fn send(node: &Arc<dyn HubLifetimeManager>, audience: Audience, text: &str) {
    node.send(&audience, &message(text))
        .await
        .expect("send succeeds");
}

fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

/// `All` reaches connections of both nodes, from either node.
pub async fn all_reaches_every_connection((a, b): Nodes) {
    let mut first = TestConnection::connect(&a, "c1", None).await;
    let mut second = TestConnection::connect(&b, "c2", None).await;
    send(&b, Audience::All, "hello").await;
    first.expect("hello").await;
    second.expect("hello").await;
}

/// `AllExcept` skips exactly the excluded ids.
pub async fn all_except_skips_the_excluded((a, b): Nodes) {
    let mut first = TestConnection::connect(&a, "c1", None).await;
    let mut second = TestConnection::connect(&b, "c2", None).await;
    let mut third = TestConnection::connect(&b, "c3", None).await;
    send(&a, Audience::AllExcept(ids(&["c2"])), "x").await;
    first.expect("x").await;
    third.expect("x").await;
    second.expect_nothing().await;
}

/// `Connection` and `Connections` reach only the named connections, on any node.
pub async fn connections_reach_only_themselves((a, b): Nodes) {
    let mut first = TestConnection::connect(&a, "c1", None).await;
    let mut second = TestConnection::connect(&b, "c2", None).await;
    let mut third = TestConnection::connect(&b, "c3", None).await;
    send(&a, Audience::Connection("c2".into()), "one").await;
    second.expect("one").await;
    send(
        &b,
        Audience::Connections(ids(&["c1", "c3", "missing"])),
        "some",
    )
    .await;
    first.expect("some").await;
    third.expect("some").await;
    first.expect_nothing().await;
    second.expect_nothing().await;
}

/// A group reaches its members on both nodes, and only them; a connection living on the other
/// node can be added.
pub async fn group_reaches_members_only((a, b): Nodes) {
    let mut member_a = TestConnection::connect(&a, "c1", None).await;
    let mut member_b = TestConnection::connect(&b, "c2", None).await;
    let mut outsider = TestConnection::connect(&a, "c3", None).await;
    a.add_to_group("c1", "g").await.unwrap();
    a.add_to_group("c2", "g").await.unwrap();
    send(&b, Audience::Group("g".into()), "in g").await;
    member_a.expect("in g").await;
    member_b.expect("in g").await;
    outsider.expect_nothing().await;
}

/// A connection in several of the addressed groups receives the message once.
pub async fn groups_deliver_once_per_connection((a, b): Nodes) {
    let mut both = TestConnection::connect(&a, "c1", None).await;
    let mut one = TestConnection::connect(&b, "c2", None).await;
    a.add_to_group("c1", "g1").await.unwrap();
    a.add_to_group("c1", "g2").await.unwrap();
    b.add_to_group("c2", "g2").await.unwrap();
    send(&a, Audience::Groups(ids(&["g1", "g2"])), "m").await;
    both.expect("m").await;
    one.expect("m").await;
    both.expect_nothing().await;
}

/// `GroupExcept` skips the excluded members.
pub async fn group_except_skips_the_excluded((a, b): Nodes) {
    let mut kept = TestConnection::connect(&a, "c1", None).await;
    let mut skipped = TestConnection::connect(&b, "c2", None).await;
    a.add_to_group("c1", "g").await.unwrap();
    b.add_to_group("c2", "g").await.unwrap();
    send(&b, Audience::GroupExcept("g".into(), ids(&["c2"])), "m").await;
    kept.expect("m").await;
    skipped.expect_nothing().await;
}

/// A removed member no longer receives the group's messages.
pub async fn removed_members_receive_nothing((a, b): Nodes) {
    let mut member = TestConnection::connect(&a, "c1", None).await;
    b.add_to_group("c1", "g").await.unwrap();
    b.remove_from_group("c1", "g").await.unwrap();
    send(&b, Audience::Group("g".into()), "m").await;
    member.expect_nothing().await;
}

/// Group names are case-sensitive.
pub async fn group_names_are_case_sensitive((a, _b): Nodes) {
    let mut member = TestConnection::connect(&a, "c1", None).await;
    a.add_to_group("c1", "Group").await.unwrap();
    send(&a, Audience::Group("group".into()), "m").await;
    member.expect_nothing().await;
}

/// An empty group name is refused with the reference text.
pub async fn empty_group_names_are_refused((a, _b): Nodes) {
    for audience in [
        Audience::Group(String::new()),
        Audience::Groups(ids(&["g", ""])),
    ] {
        let error = a.send(&audience, &message("m")).await.unwrap_err();
        assert!(matches!(error, SendError::EmptyGroupName));
        assert_eq!(error.to_string(), "Cannot send to an empty group name.");
    }
}

/// `User` reaches every connection of that user on every node, and no one else.
pub async fn user_reaches_every_connection_of_the_user((a, b): Nodes) {
    let mut first = TestConnection::connect(&a, "c1", Some("ann")).await;
    let mut second = TestConnection::connect(&b, "c2", Some("ann")).await;
    let mut other = TestConnection::connect(&a, "c3", Some("bob")).await;
    let mut anonymous = TestConnection::connect(&b, "c4", None).await;
    send(&b, Audience::User("ann".into()), "for ann").await;
    first.expect("for ann").await;
    second.expect("for ann").await;
    other.expect_nothing().await;
    anonymous.expect_nothing().await;
    send(&a, Audience::Users(ids(&["ann", "bob"])), "both").await;
    first.expect("both").await;
    second.expect("both").await;
    other.expect("both").await;
}

/// A disconnected connection leaves its groups and its user, and is not an error to address.
pub async fn disconnect_forgets_the_connection((a, b): Nodes) {
    let mut gone = TestConnection::connect(&a, "c1", Some("ann")).await;
    let mut stays = TestConnection::connect(&b, "c2", Some("ann")).await;
    a.add_to_group("c1", "g").await.unwrap();
    a.on_disconnected("c1").await;
    send(&b, Audience::Group("g".into()), "g").await;
    send(&b, Audience::User("ann".into()), "u").await;
    send(&b, Audience::Connection("c1".into()), "c").await;
    stays.expect("u").await;
    gone.expect_nothing().await;
}

/// Messages reach a connection in the order they were sent.
pub async fn order_is_kept_per_sender((a, b): Nodes) {
    let mut receiver = TestConnection::connect(&b, "c1", None).await;
    for index in 0..10 {
        send(&a, Audience::All, &index.to_string()).await;
    }
    for index in 0..10 {
        receiver.expect(&index.to_string()).await;
    }
}

/// A client-result invocation of `target` with the JSON arguments `[1]`.
fn client_invocation(target: &str) -> ClientInvocation {
    let protocol: Arc<dyn HubProtocol> = Arc::new(JsonHubProtocol);
    let arguments = Payload::json("[1]").expect("valid JSON");
    ClientInvocation::new(target.to_owned(), vec![(protocol, arguments)])
}

fn completion(invocation_id: &str, outcome: CompletionOutcome) -> Completion {
    Completion {
        headers: Headers::new(),
        invocation_id: invocation_id.to_owned(),
        outcome,
    }
}

/// Reads the client-result invocation a connection received: its id, after checking the rest.
async fn received_invocation(connection: &mut TestConnection, target: &str) -> String {
    let text = connection.next_text().await;
    let record = text.strip_suffix('\u{1e}').expect("a JSON record");
    let message: serde_json::Value = serde_json::from_str(record).expect("JSON");
    assert_eq!(message["type"], 1, "{text}");
    assert_eq!(message["target"], target, "{text}");
    assert_eq!(message["arguments"], serde_json::json!([1]), "{text}");
    let id = message["invocationId"].as_str().expect("an invocation id");
    assert!(!id.is_empty(), "{text}");
    id.to_owned()
}

/// A client result invoked on one node reaches a connection of the other node, and the
/// Completion that connection sends (to its own node) resolves the waiting call; error texts
/// pass through unchanged.
pub async fn client_results_cross_nodes((a, b): Nodes) {
    let mut connection = TestConnection::connect(&b, "c1", None).await;
    for outcome in [
        CompletionOutcome::Result(Payload::json("42").expect("valid JSON")),
        CompletionOutcome::Error("Error: from callback".into()),
    ] {
        let invocation = client_invocation("Result");
        let waiting = a.invoke_connection("c1", &invocation);
        let answering = async {
            let id = received_invocation(&mut connection, "Result").await;
            // Only the invoked connection may answer.
            assert!(
                !b.set_connection_result("c2", completion(&id, CompletionOutcome::Void))
                    .await
            );
            assert!(
                b.set_connection_result("c1", completion(&id, outcome.clone()))
                    .await
            );
            // A second answer to the same id is late.
            assert!(
                !b.set_connection_result("c1", completion(&id, CompletionOutcome::Void))
                    .await
            );
        };
        let (answer, ()) =
            tokio::time::timeout(ARRIVAL, futures_util::future::join(waiting, answering))
                .await
                .expect("the client result resolves");
        assert_eq!(answer, Ok(outcome));
    }
}

/// Client results to an unknown connection fail at once; waiting on a connection that closes
/// fails with the reference's text; a Completion nobody waits for is refused.
pub async fn client_results_fail_without_a_connection((a, b): Nodes) {
    let invocation = client_invocation("Result");
    let missing = a.invoke_connection("missing", &invocation).await;
    assert_eq!(missing, Err(InvokeError::NoConnection("missing".into())));
    assert_eq!(
        InvokeError::NoConnection("missing".into()).to_string(),
        "Connection 'missing' does not exist."
    );

    let mut connection = TestConnection::connect(&b, "c1", None).await;
    let waiting = a.invoke_connection("c1", &invocation);
    let closing = async {
        received_invocation(&mut connection, "Result").await;
        b.on_disconnected("c1").await;
    };
    let (answer, ()) = tokio::time::timeout(ARRIVAL, futures_util::future::join(waiting, closing))
        .await
        .expect("the wait ends when the connection closes");
    assert_eq!(answer, Err(InvokeError::Disconnected("c1".into())));
    assert_eq!(
        InvokeError::Disconnected("c1".into()).to_string(),
        "Connection 'c1' disconnected."
    );
    assert!(
        !b.set_connection_result("c1", completion("s999", CompletionOutcome::Void))
            .await
    );
}

/// Generates one `#[tokio::test]` per specification case, each calling `$nodes().await` for a
/// fresh pair of nodes.
#[macro_export]
macro_rules! lifetime_manager_spec {
    ($nodes:path) => {
        mod lifetime_manager_spec {
            use super::*;
            $crate::lifetime_manager_spec!(@cases $nodes;
                all_reaches_every_connection,
                all_except_skips_the_excluded,
                connections_reach_only_themselves,
                group_reaches_members_only,
                groups_deliver_once_per_connection,
                group_except_skips_the_excluded,
                removed_members_receive_nothing,
                group_names_are_case_sensitive,
                empty_group_names_are_refused,
                user_reaches_every_connection_of_the_user,
                disconnect_forgets_the_connection,
                order_is_kept_per_sender,
                client_results_cross_nodes,
                client_results_fail_without_a_connection,
            );
        }
    };
    (@cases $nodes:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::lifetime::spec::$case($nodes().await).await;
            }
        )*
    };
}
