//! The client against this project's server, in process, over loopback: every transport,
//! both protocols.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use futures_util::{SinkExt, Stream, StreamExt, stream};
use signalr_client::{
    ClientError, HubConnection, HubConnectionBuilder, RetryContext, RetryPolicy, TransportType,
    Upload,
};
use signalr_server::{
    BearerAuthLayer, CallContext, Hub, HubError, HubOptions, HubRouterExt, HubUser, InvokeError,
    UploadStream,
};
use tokio::sync::mpsc;

/// Reports from the hub to the test.
#[derive(Clone)]
struct Reports(mpsc::UnboundedSender<String>);

type Context = CallContext<Reports>;

async fn echo(_context: Context, text: String) -> Result<String, HubError> {
    Ok(text)
}

async fn add(_context: Context, a: i64, b: i64) -> Result<i64, HubError> {
    Ok(a + b)
}

async fn fail(_context: Context, text: String) -> Result<(), HubError> {
    Err(HubError::new(text))
}

async fn broadcast(context: Context, text: String) -> Result<(), HubError> {
    context.clients().all().send("Broadcast", (text, 7)).await?;
    Ok(())
}

async fn count(
    _context: Context,
    to: u32,
) -> Result<impl Stream<Item = u32> + Send + 'static, HubError> {
    Ok(stream::iter(1..=to))
}

/// Endless, one item every 10 ms; reports when the client cancels.
async fn ticks(context: Context) -> Result<impl Stream<Item = u64> + Send + 'static, HubError> {
    let cancelled = context.cancellation_token().clone();
    let reports = context.state().clone();
    tokio::spawn(async move {
        cancelled.cancelled().await;
        let _ = reports.0.send("ticks cancelled".into());
    });
    Ok(stream::unfold(0_u64, |n| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Some((n, n + 1))
    }))
}

/// Asks the caller `Question(text)` and returns the answer, or the client's error text.
async fn ask(context: Context, text: String) -> Result<String, HubError> {
    context
        .clients()
        .caller()
        .invoke::<String, _>("Question", (text,))
        .await
        .map_err(InvokeError::into_hub_error)
}

/// `<separator>`-joined items of two uploads: `<a items>|<b items>`.
async fn join(
    _context: Context,
    separator: String,
    mut a: UploadStream<String>,
    mut b: UploadStream<i64>,
) -> Result<String, HubError> {
    let mut first = Vec::new();
    while let Some(item) = a.next().await {
        first.push(item?);
    }
    let mut second = Vec::new();
    while let Some(item) = b.next().await {
        second.push(item?.to_string());
    }
    Ok(format!(
        "{}|{}",
        first.join(&separator),
        second.join(&separator)
    ))
}

async fn whoami(context: Context) -> Result<Option<String>, HubError> {
    Ok(context.user_id().map(str::to_owned))
}

async fn close_me(context: Context) -> Result<(), HubError> {
    context.abort();
    Ok(())
}

fn hub(reports: Reports) -> signalr_server::HubBuilder<Reports> {
    Hub::builder(reports)
        .method("Echo", echo)
        .method("Add", add)
        .method("Fail", fail)
        .method("Broadcast", broadcast)
        .stream_method("Count", count)
        .stream_method("Ticks", ticks)
        .method("Ask", ask)
        .method("WhoAmI", whoami)
        .method("Join", join)
        .method("CloseMe", close_me)
        .options(HubOptions {
            keep_alive_interval: Duration::from_millis(200),
            ..Default::default()
        })
        .with_messagepack()
}

struct Server {
    base: String,
    reports: mpsc::UnboundedReceiver<String>,
}

impl Server {
    async fn start() -> Server {
        let (reports, received) = mpsc::unbounded_channel();
        let reports = Reports(reports);
        let secured = Router::new()
            .map_hub(
                "/secured",
                hub(reports.clone()).require_authenticated_user().build(),
            )
            .layer(BearerAuthLayer::new(|token: &str| {
                (token == "good-token").then(|| HubUser::new("ann", "Ann"))
            }));
        let app = Router::new()
            .map_hub("/hub", hub(reports.clone()).build())
            .map_hub(
                "/no-websockets",
                hub(reports)
                    .options(HubOptions {
                        transports: vec![
                            signalr_server::TransportType::ServerSentEvents,
                            signalr_server::TransportType::LongPolling,
                        ],
                        ..Default::default()
                    })
                    .build(),
            )
            .merge(secured)
            .route(
                "/redirect/negotiate",
                post(|request: axum::extract::Request| async move {
                    let host = request.headers()["host"].to_str().unwrap().to_owned();
                    axum::Json(serde_json::json!({
                        "url": format!("http://{host}/secured"),
                        "accessToken": "good-token",
                    }))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server {
            base: format!("http://{address}"),
            reports: received,
        }
    }

    fn builder(&self, path: &str) -> HubConnectionBuilder {
        HubConnection::builder(format!("{}{path}", self.base))
    }

    async fn report(&mut self) -> String {
        bounded(self.reports.recv()).await.expect("the hub reports")
    }
}

async fn bounded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("within 10 s")
}

/// Every transport with every protocol it can carry (MessagePack is binary, which Server-Sent
/// Events cannot carry).
const COMBINATIONS: [(TransportType, bool); 5] = [
    (TransportType::WebSockets, false),
    (TransportType::WebSockets, true),
    (TransportType::ServerSentEvents, false),
    (TransportType::LongPolling, false),
    (TransportType::LongPolling, true),
];

async fn connect(
    server: &Server,
    (transport, messagepack): (TransportType, bool),
) -> HubConnection {
    let builder = server.builder("/hub").transport(transport);
    let builder = if messagepack {
        builder.with_messagepack()
    } else {
        builder
    };
    let connection = builder.build();
    bounded(connection.start()).await.expect("connects");
    assert_eq!(connection.transport(), Some(transport));
    connection
}

#[tokio::test]
async fn invoke_send_and_handlers_over_every_transport_and_protocol() {
    let server = Server::start().await;
    for combination in COMBINATIONS {
        let connection = connect(&server, combination).await;
        assert!(connection.connection_id().is_some_and(|id| !id.is_empty()));
        let echoed: String = bounded(connection.invoke("echo", ("你好",))).await.unwrap();
        assert_eq!(echoed, "你好");
        let sum: i64 = bounded(connection.invoke("Add", (40, 2))).await.unwrap();
        assert_eq!(sum, 42);
        assert_eq!(
            bounded(connection.invoke::<(), _>("Fail", ("no way",))).await,
            Err(ClientError::Hub(
                "An unexpected error occurred invoking 'Fail' on the server. HubException: no way"
                    .into()
            ))
        );
        assert_eq!(
            bounded(connection.invoke::<String, _>("Add", (1,))).await,
            Err(ClientError::Hub(
                "Failed to invoke 'Add' due to an error on the server.".into()
            ))
        );

        let (heard, mut hearing) = mpsc::unbounded_channel();
        // The server sends `Broadcast`; the handler is registered in another casing.
        connection.on("broadcast", move |(text, n): (String, i32)| {
            let heard = heard.clone();
            async move {
                let _ = heard.send(format!("{text} {n}"));
            }
        });
        bounded(connection.send("Broadcast", ("hello",)))
            .await
            .unwrap();
        assert_eq!(bounded(hearing.recv()).await.unwrap(), "hello 7");
        connection.stop().await;
        assert!(matches!(
            connection.invoke::<String, _>("Echo", ("x",)).await,
            Err(ClientError::Closed(_))
        ));
    }
}

#[tokio::test]
async fn streams_arrive_in_order_and_dropping_one_cancels_it() {
    let mut server = Server::start().await;
    for combination in COMBINATIONS {
        let connection = connect(&server, combination).await;
        let items: Vec<u32> = bounded(
            connection
                .stream::<u32, _>("Count", (100,))
                .await
                .unwrap()
                .map(Result::unwrap)
                .collect::<Vec<_>>(),
        )
        .await;
        assert_eq!(items, (1..=100).collect::<Vec<_>>());

        let mut ticks = connection.stream::<u64, _>("Ticks", ()).await.unwrap();
        assert_eq!(bounded(ticks.next()).await.unwrap().unwrap(), 0);
        assert_eq!(bounded(ticks.next()).await.unwrap().unwrap(), 1);
        drop(ticks);
        assert_eq!(server.report().await, "ticks cancelled");
        // The connection goes on.
        let echoed: String = bounded(connection.invoke("Echo", ("after",)))
            .await
            .unwrap();
        assert_eq!(echoed, "after");

        let mut refused = connection.stream::<u32, _>("Echo", ("x",)).await.unwrap();
        assert_eq!(
            bounded(refused.next()).await,
            Some(Err(ClientError::Hub(
                "The client attempted to invoke the non-streaming 'Echo' method with a \
                 streaming invocation."
                    .into()
            )))
        );
        assert!(refused.next().await.is_none());
        connection.stop().await;
    }
}

#[tokio::test]
async fn client_results_are_answered_by_handlers() {
    let server = Server::start().await;
    for combination in COMBINATIONS {
        let connection = connect(&server, combination).await;
        // No handler: the official clients' answer.
        assert_eq!(
            bounded(connection.invoke::<String, _>("Ask", ("anyone?",))).await,
            Err(ClientError::Hub(
                "An unexpected error occurred invoking 'Ask' on the server. HubException: \
                 Client didn't provide a result."
                    .into()
            ))
        );
        connection.on_invoke("question", |(text,): (String,)| async move {
            match text.as_str() {
                "fail" => Err("Error: not today".to_owned()),
                _ => Ok(format!("answer to {text}")),
            }
        });
        let answer: String = bounded(connection.invoke("Ask", ("life",))).await.unwrap();
        assert_eq!(answer, "answer to life");
        assert_eq!(
            bounded(connection.invoke::<String, _>("Ask", ("fail",))).await,
            Err(ClientError::Hub(
                "An unexpected error occurred invoking 'Ask' on the server. HubException: \
                 Error: not today"
                    .into()
            ))
        );
        connection.stop().await;
    }
}

#[tokio::test]
async fn redirects_and_bearer_tokens() {
    let server = Server::start().await;
    // Negotiate answers with a redirect carrying a token; the client follows it.
    let connection = server.builder("/redirect").build();
    bounded(connection.start()).await.unwrap();
    let user: Option<String> = bounded(connection.invoke("WhoAmI", ())).await.unwrap();
    assert_eq!(user.as_deref(), Some("ann"));
    connection.stop().await;

    // A token provider.
    let connection = server
        .builder("/secured")
        .access_token(|| async { Some("good-token".to_owned()) })
        .build();
    bounded(connection.start()).await.unwrap();
    let user: Option<String> = bounded(connection.invoke("WhoAmI", ())).await.unwrap();
    assert_eq!(user.as_deref(), Some("ann"));
    connection.stop().await;

    // No token: negotiate is refused with 401.
    let connection = server.builder("/secured").build();
    assert_eq!(
        bounded(connection.start()).await,
        Err(ClientError::Negotiate("401 Unauthorized".into()))
    );
}

#[tokio::test]
async fn skipping_negotiation_and_server_closes() {
    let server = Server::start().await;
    let connection = server.builder("/hub").skip_negotiation().build();
    bounded(connection.start()).await.unwrap();
    assert_eq!(connection.connection_id(), None);
    let echoed: String = bounded(connection.invoke("Echo", ("direct",)))
        .await
        .unwrap();
    assert_eq!(echoed, "direct");

    // The server aborts the connection: pending and later calls fail as closed.
    let closing = connection.invoke::<(), _>("CloseMe", ());
    let _ = bounded(closing).await;
    assert_eq!(bounded(connection.closed()).await, None);
    assert!(matches!(
        connection.invoke::<String, _>("Echo", ("x",)).await,
        Err(ClientError::Closed(_))
    ));
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // A raw WebSocket server that answers the handshake and then says nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
        let _ = socket.next().await;
        socket
            .send(tokio_tungstenite::tungstenite::Message::text("{}\u{1e}"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(socket);
    });
    let connection = HubConnection::builder(format!("ws://{address}/hub"))
        .skip_negotiation()
        .server_timeout(Duration::from_millis(300))
        .build();
    bounded(connection.start()).await.unwrap();
    let reason = bounded(connection.closed()).await;
    assert_eq!(
        reason.as_deref(),
        Some("Server timeout elapsed without receiving a message from the server (300ms).")
    );
}

#[tokio::test]
async fn the_first_transport_both_sides_offer_is_used() {
    let server = Server::start().await;
    // The endpoint serves Server-Sent Events and Long Polling only.
    let connection = server.builder("/no-websockets").build();
    bounded(connection.start()).await.unwrap();
    assert_eq!(
        connection.transport(),
        Some(TransportType::ServerSentEvents)
    );
    let echoed: String = bounded(connection.invoke("Echo", ("sse",))).await.unwrap();
    assert_eq!(echoed, "sse");
    connection.stop().await;

    // MessagePack cannot go over Server-Sent Events: Long Polling is next.
    let connection = server.builder("/no-websockets").with_messagepack().build();
    bounded(connection.start()).await.unwrap();
    assert_eq!(connection.transport(), Some(TransportType::LongPolling));
    connection.stop().await;

    // Nothing in common.
    let connection = server
        .builder("/no-websockets")
        .transport(TransportType::WebSockets)
        .build();
    assert_eq!(
        bounded(connection.start()).await,
        Err(ClientError::Negotiate(
            "none of the client's transports is offered for the Text format".into()
        ))
    );
}

/// A TCP proxy in front of the server whose open connections can be cut, as a network failure
/// would: the transport ends without a Close message.
struct Proxy {
    base: String,
    links: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(server: &Server) -> Proxy {
        let upstream = server.base.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let links: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let accepted = links.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                accepted.lock().unwrap().push(link);
            }
        });
        Proxy {
            base: format!("http://{address}"),
            links,
        }
    }

    /// Drops every connection open through the proxy.
    fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

/// A TLS front for the server, as a load balancer terminating HTTPS would be, with a
/// self-signed certificate for 127.0.0.1 that only clients told to trust it accept.
struct TlsFront {
    /// `https://127.0.0.1:<port>`.
    base: String,
    certificate: signalr_client::rustls::pki_types::CertificateDer<'static>,
}

impl TlsFront {
    async fn start(server: &Server) -> TlsFront {
        use tokio_rustls::rustls;
        let upstream = server.base.trim_start_matches("http://").to_owned();
        let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let certificate = issued.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(issued.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake here.
                    let Ok(mut client) = acceptor.accept(client).await else {
                        return;
                    };
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        TlsFront {
            base: format!("https://{address}"),
            certificate,
        }
    }
}

#[tokio::test]
async fn https_and_wss_hubs_over_every_transport_and_protocol() {
    let server = Server::start().await;
    let front = TlsFront::start(&server).await;
    for (transport, messagepack) in COMBINATIONS {
        let builder = HubConnection::builder(format!("{}/hub", front.base))
            .add_root_certificate(front.certificate.clone())
            .transport(transport);
        let builder = if messagepack {
            builder.with_messagepack()
        } else {
            builder
        };
        let connection = builder.build();
        bounded(connection.start())
            .await
            .expect("connects over TLS");
        assert_eq!(connection.transport(), Some(transport));
        let echoed: String = bounded(connection.invoke("Echo", ("sealed",)))
            .await
            .unwrap();
        assert_eq!(echoed, "sealed");
        let counted: Vec<u32> = bounded(
            connection
                .stream::<u32, _>("Count", (3,))
                .await
                .unwrap()
                .map(Result::unwrap)
                .collect(),
        )
        .await;
        assert_eq!(counted, [1, 2, 3]);
        connection.stop().await;
    }
    let wss = front.base.replacen("https://", "wss://", 1);
    let connection = HubConnection::builder(format!("{wss}/hub"))
        .add_root_certificate(front.certificate.clone())
        .skip_negotiation()
        .build();
    bounded(connection.start()).await.expect("wss:// connects");
    let sum: i64 = bounded(connection.invoke("Add", (2, 3))).await.unwrap();
    assert_eq!(sum, 5);
    connection.stop().await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_with_the_reason() {
    let server = Server::start().await;
    let front = TlsFront::start(&server).await;
    let refused = bounded(
        HubConnection::builder(format!("{}/hub", front.base))
            .build()
            .start(),
    )
    .await;
    let Err(ClientError::Negotiate(text)) = refused else {
        panic!("negotiate refuses the certificate: {refused:?}");
    };
    assert!(
        text.ends_with("invalid peer certificate: UnknownIssuer"),
        "{text}"
    );
    let wss = front.base.replacen("https://", "wss://", 1);
    let refused = bounded(
        HubConnection::builder(format!("{wss}/hub"))
            .skip_negotiation()
            .build()
            .start(),
    )
    .await;
    let Err(ClientError::Transport(text)) = refused else {
        panic!("the WebSocket refuses the certificate: {refused:?}");
    };
    assert!(
        text.ends_with("invalid peer certificate: UnknownIssuer"),
        "{text}"
    );
    // Not a certificate at all: start says which one.
    let garbage = signalr_client::rustls::pki_types::CertificateDer::from(vec![1, 2, 3]);
    let refused = bounded(
        HubConnection::builder(format!("{}/hub", front.base))
            .add_root_certificate(garbage)
            .build()
            .start(),
    )
    .await;
    assert_eq!(
        refused,
        Err(ClientError::Transport(
            "root certificate 1 is not usable: invalid peer certificate: BadEncoding".into()
        ))
    );
}

/// Lifecycle events as text: `reconnecting`, `reconnected`, `closed: <error>`.
fn record_lifecycle(connection: &HubConnection) -> mpsc::UnboundedReceiver<String> {
    let (events, received) = mpsc::unbounded_channel();
    let reconnecting = events.clone();
    connection.on_reconnecting(move |_| {
        let _ = reconnecting.send("reconnecting".to_owned());
    });
    let reconnected = events.clone();
    connection.on_reconnected(move |id| {
        let _ = reconnected.send(format!("reconnected {}", id.is_some()));
    });
    connection.on_closed(move |error| {
        let _ = events.send(format!("closed: {error:?}"));
    });
    received
}

#[tokio::test]
async fn a_dropped_connection_reconnects_with_a_new_id() {
    let server = Server::start().await;
    let proxy = Proxy::start(&server).await;
    for transport in [TransportType::WebSockets, TransportType::LongPolling] {
        let connection = HubConnection::builder(format!("{}/hub", proxy.base))
            .transport(transport)
            .with_reconnect_delays(vec![Duration::ZERO, Duration::from_millis(100)])
            .build();
        let mut events = record_lifecycle(&connection);
        bounded(connection.start()).await.unwrap();
        let first_id = connection.connection_id().unwrap();

        proxy.cut();
        assert_eq!(bounded(events.recv()).await.unwrap(), "reconnecting");
        assert_eq!(bounded(events.recv()).await.unwrap(), "reconnected true");
        let second_id = connection.connection_id().unwrap();
        assert_ne!(first_id, second_id);
        let echoed: String = bounded(connection.invoke("Echo", ("again",)))
            .await
            .unwrap();
        assert_eq!(echoed, "again");

        // Stopping closes for good, without reconnecting.
        connection.stop().await;
        assert_eq!(bounded(events.recv()).await.unwrap(), "closed: None");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), events.recv())
                .await
                .is_err()
        );
    }
}

#[tokio::test]
async fn a_close_without_reconnect_is_final() {
    let server = Server::start().await;
    let connection = server.builder("/hub").with_automatic_reconnect().build();
    let mut events = record_lifecycle(&connection);
    bounded(connection.start()).await.unwrap();
    // The hub aborts the connection: its Close does not allow a reconnect.
    let _ = bounded(connection.invoke::<(), _>("CloseMe", ())).await;
    assert_eq!(bounded(events.recv()).await.unwrap(), "closed: None");
}

#[tokio::test]
async fn uploads_reach_the_hub_in_order() {
    let server = Server::start().await;
    for combination in COMBINATIONS {
        let connection = connect(&server, combination).await;
        let words = Upload::new(stream::iter(["a", "b", "c"]));
        let numbers = Upload::new(stream::iter(1..=500_i64));
        let joined: String =
            bounded(connection.invoke_with_uploads("Join", (",",), vec![words, numbers]))
                .await
                .unwrap();
        let expected = format!(
            "a,b,c|{}",
            (1..=500)
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(joined, expected, "{combination:?}");

        // An upload that fails: the method sees the client's text.
        let failing = Upload::fallible(stream::iter([Ok("x"), Err("Something bad")]));
        let numbers = Upload::new(stream::empty::<i64>());
        assert_eq!(
            bounded(connection.invoke_with_uploads::<String, _>(
                "Join",
                (",",),
                vec![failing, numbers]
            ))
            .await,
            Err(ClientError::Hub(
                "An unexpected error occurred invoking 'Join' on the server. HubException: \
                 Something bad"
                    .into()
            ))
        );
        connection.stop().await;
    }
}

/// Gives up at once, recording what it was asked.
struct GiveUp(Arc<std::sync::Mutex<Vec<(u32, bool)>>>);

impl RetryPolicy for GiveUp {
    fn next_delay(&self, context: &RetryContext) -> Option<Duration> {
        let asked = (context.previous_attempts, context.error.is_some());
        self.0.lock().unwrap().push(asked);
        None
    }
}

#[tokio::test]
async fn a_retry_policy_decides_when_to_give_up() {
    let server = Server::start().await;
    let proxy = Proxy::start(&server).await;
    let asked = Arc::default();
    let connection = HubConnection::builder(format!("{}/hub", proxy.base))
        .with_retry_policy(GiveUp(Arc::clone(&asked)))
        .build();
    let mut events = record_lifecycle(&connection);
    bounded(connection.start()).await.unwrap();
    proxy.cut();
    assert_eq!(bounded(events.recv()).await.unwrap(), "reconnecting");
    let closed = bounded(events.recv()).await.unwrap();
    assert!(closed.starts_with("closed: Some("), "{closed}");
    // Asked once, before any attempt, knowing why the connection was lost.
    assert_eq!(*asked.lock().unwrap(), [(0, true)]);
}

#[tokio::test]
async fn connections_come_from_the_chosen_local_address() {
    // A listener that records where connections come from, then hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (peers, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, peer)) = listener.accept().await {
            let _ = peers.send(peer.ip());
            drop(socket);
        }
    });
    let local: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    for skip_negotiation in [false, true] {
        let builder = HubConnection::builder(format!("http://{address}/hub")).local_address(local);
        let builder = if skip_negotiation {
            builder.skip_negotiation()
        } else {
            builder
        };
        let failed = bounded(builder.build().start()).await;
        assert!(failed.is_err(), "nothing answers here");
        assert_eq!(bounded(seen.recv()).await.unwrap(), local);
    }
}
