//! One hub connection: the builder, the session a `start` opens, and the calls on it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use signalr_protocol::json::JsonHubProtocol;
use signalr_protocol::negotiate::TransportType;
use signalr_protocol::{
    CancelInvocation, Completion, CompletionOutcome, Headers, HubMessage, HubProtocol, Invocation,
    Parsed, Payload, PayloadFormat, RECORD_SEPARATOR, StreamInvocation, TransferFormat,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::ClientError;
use crate::negotiate::negotiate;
use crate::transport::{Inbound, Network, Outbound, Target, http_client, open};

/// Produces the bearer token for negotiate and connect.
type TokenProvider = Arc<dyn Fn() -> BoxFuture<'static, Option<String>> + Send + Sync>;
/// A handler of a client method; it gets the invocation's arguments.
type Handler = Arc<dyn Fn(Payload) -> BoxFuture<'static, ()> + Send + Sync>;
/// A handler that answers a client-result invocation: the value, or an error text.
type Answerer = Arc<dyn Fn(Payload) -> BoxFuture<'static, Result<Payload, String>> + Send + Sync>;

/// What a StreamItem or Completion is for.
enum Pending {
    Invocation(oneshot::Sender<Result<CompletionOutcome, ClientError>>),
    Stream(mpsc::Sender<Result<Payload, ClientError>>),
}

/// Settings fixed when the connection is built.
struct Config {
    url: String,
    protocol: Arc<dyn HubProtocol>,
    headers: reqwest::header::HeaderMap,
    access_token: Option<TokenProvider>,
    skip_negotiation: bool,
    transports: Vec<TransportType>,
    local_address: Option<std::net::IpAddr>,
    /// Certificate authorities trusted besides Mozilla's roots.
    root_certificates: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// The user's own TLS configuration, used as given.
    tls_config: Option<Arc<rustls::ClientConfig>>,
    keep_alive_interval: Duration,
    server_timeout: Duration,
    /// Decides the waits between reconnect attempts; `None` disables reconnecting.
    retry_policy: Option<Arc<dyn RetryPolicy>>,
}

/// Builds a [`HubConnection`].
pub struct HubConnectionBuilder {
    config: Config,
    /// A setting that cannot work (an invalid header); `start` fails with it.
    invalid_setting: Option<String>,
}

impl HubConnectionBuilder {
    /// A connection to the hub at `url` (`http://`, or `ws://` when skipping negotiation),
    /// with the JSON protocol, over the first transport the server offers.
    pub fn new(url: impl Into<String>) -> Self {
        HubConnectionBuilder {
            config: Config {
                url: url.into(),
                protocol: Arc::new(JsonHubProtocol),
                headers: reqwest::header::HeaderMap::new(),
                access_token: None,
                skip_negotiation: false,
                transports: vec![
                    TransportType::WebSockets,
                    TransportType::ServerSentEvents,
                    TransportType::LongPolling,
                ],
                local_address: None,
                root_certificates: Vec::new(),
                tls_config: None,
                keep_alive_interval: Duration::from_secs(15),
                server_timeout: Duration::from_secs(30),
                retry_policy: None,
            },
            invalid_setting: None,
        }
    }

    /// Speaks the MessagePack hub protocol instead of JSON.
    #[cfg(feature = "messagepack")]
    pub fn with_messagepack(self) -> Self {
        self.protocol(Arc::new(
            signalr_protocol::messagepack::MessagePackHubProtocol,
        ))
    }

    /// Speaks this hub protocol.
    pub fn protocol(mut self, protocol: Arc<dyn HubProtocol>) -> Self {
        self.config.protocol = protocol;
        self
    }

    /// Sends this header with negotiate and the WebSocket request. An invalid name or value
    /// makes [`HubConnection::start`] fail.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let parsed = (
            reqwest::header::HeaderName::from_bytes(name.as_bytes()),
            reqwest::header::HeaderValue::from_str(value),
        );
        match parsed {
            (Ok(name), Ok(value)) => {
                self.config.headers.append(name, value);
            }
            _ => self.invalid_setting = Some(format!("invalid header {name}")),
        }
        self
    }

    /// Asks `provider` for a bearer token before each connect; it is sent in the
    /// `Authorization` header.
    pub fn access_token<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        self.config.access_token = Some(Arc::new(move || Box::pin(provider())));
        self
    }

    /// Uses only this transport.
    pub fn transport(self, transport: TransportType) -> Self {
        self.transports(vec![transport])
    }

    /// The transports to try, in this order, among those the server offers. Default:
    /// WebSockets, Server-Sent Events, Long Polling.
    pub fn transports(mut self, transports: Vec<TransportType>) -> Self {
        self.config.transports = transports;
        self
    }

    /// Makes every connection (negotiate, the transport) from this local address, for example
    /// one of several 127.0.0.x addresses when one address runs out of ports.
    pub fn local_address(mut self, address: std::net::IpAddr) -> Self {
        self.config.local_address = Some(address);
        self
    }

    /// Trusts this certificate authority (DER, for example from
    /// [`CertificateDer::from_pem_slice`](rustls::pki_types::pem::PemObject::from_pem_slice))
    /// for `https://` and `wss://` hubs, besides Mozilla's root certificates, which are always
    /// trusted. A certificate that is not a usable authority makes [`HubConnection::start`]
    /// fail.
    pub fn add_root_certificate(
        mut self,
        certificate: rustls::pki_types::CertificateDer<'static>,
    ) -> Self {
        self.config.root_certificates.push(certificate);
        self
    }

    /// Uses this TLS configuration for `https://` and `wss://` hubs instead of the default one
    /// (Mozilla's roots plus [`add_root_certificate`](Self::add_root_certificate)), for
    /// example to present a client certificate or to trust the platform's store. Leave its
    /// ALPN protocols empty or `http/1.1`: every transport speaks HTTP/1.1.
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.config.tls_config = Some(config);
        self
    }

    /// Connects the WebSocket directly, without negotiate (the server must allow it; only
    /// WebSockets can skip negotiation).
    pub fn skip_negotiation(mut self) -> Self {
        self.config.skip_negotiation = true;
        self
    }

    /// Sends a Ping after this long without sending anything. Default 15 s.
    pub fn keep_alive_interval(mut self, interval: Duration) -> Self {
        self.config.keep_alive_interval = interval;
        self
    }

    /// Closes the connection when nothing arrives for this long. Default 30 s (twice the
    /// server's default keep-alive).
    pub fn server_timeout(mut self, timeout: Duration) -> Self {
        self.config.server_timeout = timeout;
        self
    }

    /// Reconnects when the connection is lost (not after [`HubConnection::stop`], nor when the
    /// server closes it without allowing a reconnect), waiting 0, 2, 10 and 30 seconds before
    /// the four attempts, as the official clients do by default. A reconnect negotiates a new
    /// connection: it gets a new connection id, and calls in flight fail.
    pub fn with_automatic_reconnect(self) -> Self {
        self.with_reconnect_delays([0, 2, 10, 30].map(Duration::from_secs).to_vec())
    }

    /// Reconnects as [`with_automatic_reconnect`](Self::with_automatic_reconnect) does, with
    /// one attempt after each of these waits.
    pub fn with_reconnect_delays(self, delays: Vec<Duration>) -> Self {
        self.with_retry_policy(delays)
    }

    /// Reconnects with waits decided by `policy`.
    pub fn with_retry_policy(mut self, policy: impl RetryPolicy) -> Self {
        self.config.retry_policy = Some(Arc::new(policy));
        self
    }

    /// The connection, not yet started: register handlers, then [`HubConnection::start`].
    pub fn build(mut self) -> HubConnection {
        let tls = match self.config.tls_config.take() {
            Some(config) => Ok(config),
            None => crate::tls::client_config(&self.config.root_certificates),
        };
        let tls = tls.unwrap_or_else(|error| {
            self.invalid_setting.get_or_insert(error);
            crate::tls::client_config(&[]).expect("no extra roots")
        });
        let network = Network {
            local_address: self.config.local_address,
            tls,
        };
        HubConnection {
            shared: Arc::new(Shared {
                config: self.config,
                network,
                invalid_setting: self.invalid_setting,
                handlers: RwLock::default(),
                answerers: RwLock::default(),
                session: Mutex::default(),
                lifecycle: Mutex::default(),
                stopped: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }
}

struct Shared {
    config: Config,
    /// Where connections come from and their TLS settings.
    network: Network,
    /// A setting that cannot work; `start` fails with it.
    invalid_setting: Option<String>,
    /// Handlers by lower-cased method name, matched case-insensitively as the official clients do.
    handlers: RwLock<HashMap<String, Vec<Handler>>>,
    answerers: RwLock<HashMap<String, Answerer>>,
    session: Mutex<Option<Arc<Session>>>,
    lifecycle: Mutex<Lifecycle>,
    /// Set by `stop`: the connection is not to be reconnected.
    stopped: std::sync::atomic::AtomicBool,
}

/// A callback for a lifecycle event, with the event's detail.
type LifecycleCallback = Arc<dyn Fn(Option<String>) + Send + Sync>;

/// Callbacks for the connection's lifecycle.
#[derive(Default)]
struct Lifecycle {
    reconnecting: Vec<LifecycleCallback>,
    reconnected: Vec<LifecycleCallback>,
    closed: Vec<LifecycleCallback>,
}

impl Shared {
    fn fire(&self, pick: fn(&Lifecycle) -> &Vec<LifecycleCallback>, detail: Option<String>) {
        let callbacks = pick(&self.lifecycle.lock().expect("lock")).clone();
        for callback in callbacks {
            callback(detail.clone());
        }
    }
}

/// A connection to a hub. Cloning shares it.
#[derive(Clone)]
pub struct HubConnection {
    shared: Arc<Shared>,
}

/// One started connection.
struct Session {
    connection_id: Option<String>,
    transport: TransportType,
    protocol: Arc<dyn HubProtocol>,
    outgoing: mpsc::Sender<Bytes>,
    pending: Mutex<HashMap<String, Pending>>,
    next_id: AtomicU64,
    ended: CancellationToken,
    close_error: Mutex<Option<String>>,
    /// Cleared when the server's Close forbids reconnecting.
    may_reconnect: std::sync::atomic::AtomicBool,
}

impl Session {
    fn closed_error(&self) -> ClientError {
        ClientError::Closed(self.close_error.lock().expect("lock").clone())
    }

    async fn write(&self, message: &HubMessage) -> Result<(), ClientError> {
        let bytes = self
            .protocol
            .to_bytes(message)
            .map_err(|error| ClientError::Serialization(error.to_string()))?;
        self.outgoing
            .send(bytes)
            .await
            .map_err(|_| self.closed_error())
    }

    fn next_id(&self) -> String {
        self.next_id.fetch_add(1, Ordering::Relaxed).to_string()
    }

    /// Ends the session: every waiting call fails with the close reason.
    fn end(&self, error: Option<String>) {
        if let Some(error) = error {
            self.close_error.lock().expect("lock").get_or_insert(error);
        }
        self.ended.cancel();
        let pending: Vec<Pending> = self
            .pending
            .lock()
            .expect("lock")
            .drain()
            .map(|(_, pending)| pending)
            .collect();
        for pending in pending {
            match pending {
                Pending::Invocation(answer) => {
                    let _ = answer.send(Err(self.closed_error()));
                }
                Pending::Stream(items) => {
                    let _ = items.try_send(Err(self.closed_error()));
                }
            }
        }
    }
}

/// Encodes call arguments: a tuple, or `()` for none.
fn arguments<A: Serialize>(
    protocol: &dyn HubProtocol,
    arguments: &A,
) -> Result<Payload, ClientError> {
    Payload::encode_arguments(protocol.payload_format(), arguments)
        .map_err(|error| ClientError::Serialization(error.to_string()))
}

fn decode<T: DeserializeOwned>(payload: &Payload) -> Result<T, ClientError> {
    payload
        .decode()
        .map_err(|error| ClientError::Serialization(error.to_string()))
}

impl HubConnection {
    /// A builder for a connection to the hub at `url`.
    pub fn builder(url: impl Into<String>) -> HubConnectionBuilder {
        HubConnectionBuilder::new(url)
    }

    /// The public connection id negotiate gave (none when negotiation was skipped or before
    /// the start).
    pub fn connection_id(&self) -> Option<String> {
        self.session()
            .ok()
            .and_then(|session| session.connection_id.clone())
    }

    fn session(&self) -> Result<Arc<Session>, ClientError> {
        let session = self.shared.session.lock().expect("lock").clone();
        match session {
            Some(session) if !session.ended.is_cancelled() => Ok(session),
            Some(session) => Err(session.closed_error()),
            None => Err(ClientError::Closed(None)),
        }
    }

    /// Negotiates, connects the WebSocket and completes the handshake.
    ///
    /// # Errors
    /// Why the connection could not be made.
    pub async fn start(&self) -> Result<(), ClientError> {
        self.shared.stopped.store(false, Ordering::SeqCst);
        open_session(self.shared.clone()).await.map(|_| ())
    }

    /// Runs `callback` with the error when the connection was lost and reconnecting begins.
    pub fn on_reconnecting(&self, callback: impl Fn(Option<String>) + Send + Sync + 'static) {
        self.shared
            .lifecycle
            .lock()
            .expect("lock")
            .reconnecting
            .push(Arc::new(callback));
    }

    /// Runs `callback` with the new connection id after a reconnect.
    pub fn on_reconnected(&self, callback: impl Fn(Option<String>) + Send + Sync + 'static) {
        self.shared
            .lifecycle
            .lock()
            .expect("lock")
            .reconnected
            .push(Arc::new(callback));
    }

    /// Runs `callback` with the error (if any) when the connection has closed for good.
    pub fn on_closed(&self, callback: impl Fn(Option<String>) + Send + Sync + 'static) {
        self.shared
            .lifecycle
            .lock()
            .expect("lock")
            .closed
            .push(Arc::new(callback));
    }
}

/// Negotiates, opens a transport, completes the handshake and starts the session's loops.
fn open_session(shared: Arc<Shared>) -> BoxFuture<'static, Result<Arc<Session>, ClientError>> {
    Box::pin(async move {
        let config = &shared.config;
        if let Some(error) = &shared.invalid_setting {
            return Err(ClientError::Transport(error.clone()));
        }
        let token = match &config.access_token {
            Some(provider) => provider().await,
            None => None,
        };
        let binary = config.protocol.transfer_format() == TransferFormat::Binary;
        let format = config.protocol.transfer_format().as_str();
        let (target, connection_id, candidates) = if config.skip_negotiation {
            if !config.transports.contains(&TransportType::WebSockets) {
                return Err(ClientError::Negotiate(
                    "only WebSockets can skip negotiation".into(),
                ));
            }
            let target = Target {
                url: config.url.clone(),
                id: None,
                headers: config.headers.clone(),
                access_token: token,
                binary,
                network: shared.network.clone(),
            };
            (target, None, vec![TransportType::WebSockets])
        } else {
            let http = http_client(&shared.network)?;
            let negotiated = negotiate(&http, &config.url, token.clone(), &config.headers).await?;
            let offered = |transport: &TransportType| {
                negotiated.transports.iter().any(|(name, formats)| {
                    name == transport.as_str() && formats.iter().any(|offered| offered == format)
                })
            };
            let candidates: Vec<TransportType> =
                config.transports.iter().copied().filter(offered).collect();
            let target = Target {
                url: negotiated.url,
                id: Some(negotiated.id),
                headers: config.headers.clone(),
                access_token: negotiated.access_token.or(token),
                binary,
                network: shared.network.clone(),
            };
            (target, Some(negotiated.connection_id), candidates)
        };
        if candidates.is_empty() {
            return Err(ClientError::Negotiate(format!(
                "none of the client's transports is offered for the {format} format"
            )));
        }

        // Each transport in turn until one connects.
        let mut failures = Vec::new();
        let mut opened = None;
        for transport in candidates {
            match open(transport, &target).await {
                Ok((inbound, outbound)) => {
                    opened = Some((transport, inbound, outbound));
                    break;
                }
                Err(error) => failures.push(format!("{}: {error}", transport.as_str())),
            }
        }
        let Some((transport, mut inbound, mut outbound)) = opened else {
            return Err(ClientError::Transport(failures.join("; ")));
        };

        let protocol = config.protocol.clone();
        let handshake = signalr_protocol::handshake::HandshakeRequest {
            protocol: protocol.name().to_owned(),
            version: 1,
        };
        outbound.send(Bytes::from(handshake.to_bytes())).await?;

        // The handshake answer is one JSON record, possibly followed by messages.
        let mut buffer = BytesMut::new();
        let answer = tokio::time::timeout(config.server_timeout, async {
            loop {
                if let Some(end) = buffer.iter().position(|&byte| byte == RECORD_SEPARATOR) {
                    return Ok(buffer.split_to(end + 1));
                }
                match inbound.next().await {
                    Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                    Some(Err(error)) => return Err(error),
                    None => {
                        return Err(ClientError::Transport(
                            "the server closed before the handshake".into(),
                        ));
                    }
                }
            }
        })
        .await
        .map_err(|_| ClientError::Handshake("no handshake answer in time".into()))??;
        #[derive(serde::Deserialize)]
        struct HandshakeAnswer {
            error: Option<String>,
        }
        let answer: HandshakeAnswer = serde_json::from_slice(&answer[..answer.len() - 1])
            .map_err(|error| ClientError::Handshake(format!("unreadable answer: {error}")))?;
        if let Some(error) = answer.error {
            outbound.close().await;
            return Err(ClientError::Handshake(error));
        }

        let (outgoing, queued) = mpsc::channel(256);
        let session = Arc::new(Session {
            connection_id,
            transport,
            protocol: protocol.clone(),
            outgoing,
            pending: Mutex::default(),
            next_id: AtomicU64::new(0),
            ended: CancellationToken::new(),
            close_error: Mutex::default(),
            may_reconnect: std::sync::atomic::AtomicBool::new(true),
        });
        *shared.session.lock().expect("lock") = Some(session.clone());

        tokio::spawn(write_loop(
            outbound,
            queued,
            session.clone(),
            config.keep_alive_interval,
        ));
        tokio::spawn(read_loop(
            inbound,
            buffer,
            session.clone(),
            shared.clone(),
            config.server_timeout,
        ));
        Ok(session)
    })
}

/// What a [`RetryPolicy`] knows when it decides the next wait.
#[derive(Debug, Clone)]
pub struct RetryContext {
    /// How many reconnect attempts failed so far (0 before the first).
    pub previous_attempts: u32,
    /// How long ago the connection was lost.
    pub elapsed: Duration,
    /// Why the connection was lost, or why the last attempt failed.
    pub error: Option<String>,
}

/// Decides how long to wait before each reconnect attempt, and when to give up (the official
/// clients' `IRetryPolicy`).
pub trait RetryPolicy: Send + Sync + 'static {
    /// The wait before the next attempt; `None` gives up, and the connection closes.
    fn next_delay(&self, context: &RetryContext) -> Option<Duration>;
}

/// A fixed list of waits: one attempt after each.
impl RetryPolicy for Vec<Duration> {
    fn next_delay(&self, context: &RetryContext) -> Option<Duration> {
        self.get(context.previous_attempts as usize).copied()
    }
}

/// After the connection was lost: reconnects as configured, firing the lifecycle events, or
/// reports it closed.
async fn connection_lost(shared: Arc<Shared>, session: Arc<Session>) {
    let error = session.close_error.lock().expect("lock").clone();
    let policy = match &shared.config.retry_policy {
        Some(policy)
            if !shared.stopped.load(Ordering::SeqCst)
                && session.may_reconnect.load(Ordering::SeqCst) =>
        {
            policy.clone()
        }
        _ => return shared.fire(|events| &events.closed, error),
    };
    shared.fire(|events| &events.reconnecting, error.clone());
    let lost_at = tokio::time::Instant::now();
    let mut last_error = error.clone();
    for attempt in 0.. {
        let context = RetryContext {
            previous_attempts: attempt,
            elapsed: lost_at.elapsed(),
            error: last_error.clone(),
        };
        let Some(delay) = policy.next_delay(&context) else {
            break;
        };
        tokio::time::sleep(delay).await;
        if shared.stopped.load(Ordering::SeqCst) {
            break;
        }
        match open_session(shared.clone()).await {
            Ok(session) => {
                return shared.fire(|events| &events.reconnected, session.connection_id.clone());
            }
            Err(failure) => {
                tracing::debug!(%failure, "a reconnect attempt failed");
                last_error = Some(failure.to_string());
            }
        }
    }
    shared.fire(|events| &events.closed, error);
}

impl HubConnection {
    /// The transport in use, once started.
    pub fn transport(&self) -> Option<TransportType> {
        self.session().ok().map(|session| session.transport)
    }

    /// Invokes a hub method that takes upload streams (`UploadStream` parameters on this
    /// project's servers, `ChannelReader`/`IAsyncEnumerable` on ASP.NET Core), bound in order to
    /// `uploads`, and waits for its result. Each upload is sent as its items come; its end (or
    /// its error) ends the stream on the server.
    ///
    /// # Errors
    /// As [`invoke`](Self::invoke).
    pub async fn invoke_with_uploads<T: DeserializeOwned, A: Serialize>(
        &self,
        method: &str,
        args: A,
        uploads: Vec<Upload>,
    ) -> Result<T, ClientError> {
        self.call(method, args, uploads).await
    }

    /// Invokes a hub method and waits for its result, decoded as `T` (`()` for a void method).
    ///
    /// # Errors
    /// The hub's error text ([`ClientError::Hub`]), a closed connection, or a result of
    /// another type.
    pub async fn invoke<T: DeserializeOwned, A: Serialize>(
        &self,
        method: &str,
        args: A,
    ) -> Result<T, ClientError> {
        self.call(method, args, Vec::new()).await
    }

    async fn call<T: DeserializeOwned, A: Serialize>(
        &self,
        method: &str,
        args: A,
        uploads: Vec<Upload>,
    ) -> Result<T, ClientError> {
        let session = self.session()?;
        let arguments = arguments(&*session.protocol, &args)?;
        let stream_ids: Vec<String> = uploads.iter().map(|_| session.next_id()).collect();
        let id = session.next_id();
        let (answer, answered) = oneshot::channel();
        session
            .pending
            .lock()
            .expect("lock")
            .insert(id.clone(), Pending::Invocation(answer));
        let message = HubMessage::Invocation(Invocation {
            headers: Headers::new(),
            invocation_id: Some(id.clone()),
            target: method.to_owned(),
            arguments,
            stream_ids: stream_ids.clone(),
        });
        if let Err(error) = session.write(&message).await {
            session.pending.lock().expect("lock").remove(&id);
            return Err(error);
        }
        for (stream_id, upload) in stream_ids.into_iter().zip(uploads) {
            tokio::spawn(send_upload(session.clone(), stream_id, upload));
        }
        let outcome = answered
            .await
            .unwrap_or_else(|_| Err(session.closed_error()))?;
        match outcome {
            CompletionOutcome::Error(text) => Err(ClientError::Hub(text)),
            CompletionOutcome::Result(value) => decode(&value),
            CompletionOutcome::Void => T::deserialize(serde_json::Value::Null)
                .map_err(|error| ClientError::Serialization(error.to_string())),
        }
    }

    /// Invokes a hub method without waiting for it (no invocation id: the server answers
    /// nothing, not even errors).
    ///
    /// # Errors
    /// A closed connection or arguments that do not encode.
    pub async fn send<A: Serialize>(&self, method: &str, args: A) -> Result<(), ClientError> {
        let session = self.session()?;
        let message = HubMessage::Invocation(Invocation {
            headers: Headers::new(),
            invocation_id: None,
            target: method.to_owned(),
            arguments: arguments(&*session.protocol, &args)?,
            stream_ids: Vec::new(),
        });
        session.write(&message).await
    }

    /// Calls a streaming hub method; the items arrive as the returned stream's items.
    /// Dropping the stream before it ends cancels it on the server.
    ///
    /// # Errors
    /// A closed connection or arguments that do not encode; errors during the stream arrive
    /// as its last item.
    pub async fn stream<T: DeserializeOwned, A: Serialize>(
        &self,
        method: &str,
        args: A,
    ) -> Result<HubStream<T>, ClientError> {
        let session = self.session()?;
        let arguments = arguments(&*session.protocol, &args)?;
        let id = session.next_id();
        let (items, received) = mpsc::channel(64);
        session
            .pending
            .lock()
            .expect("lock")
            .insert(id.clone(), Pending::Stream(items));
        let message = HubMessage::StreamInvocation(StreamInvocation {
            headers: Headers::new(),
            invocation_id: id.clone(),
            target: method.to_owned(),
            arguments,
            stream_ids: Vec::new(),
        });
        if let Err(error) = session.write(&message).await {
            session.pending.lock().expect("lock").remove(&id);
            return Err(error);
        }
        Ok(HubStream {
            id,
            received,
            session,
            ended: false,
            item_type: std::marker::PhantomData,
        })
    }

    /// Runs `handler` whenever the hub invokes `method` (matched case-insensitively) on this
    /// client; its argument is the invocation's arguments decoded as `A`, a tuple such as
    /// `(String, i32)`. Handlers run one at a time, in arrival order. Arguments that do not
    /// decode are logged and skipped.
    pub fn on<A, F, Fut>(&self, method: &str, handler: F)
    where
        A: DeserializeOwned + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = method.to_owned();
        let handler: Handler = Arc::new(move |arguments: Payload| match decode::<A>(&arguments) {
            Ok(arguments) => Box::pin(handler(arguments)),
            Err(error) => {
                tracing::warn!(method = %name, %error, "arguments of a client method did not decode");
                Box::pin(async {})
            }
        });
        self.shared
            .handlers
            .write()
            .expect("lock")
            .entry(method.to_lowercase())
            .or_default()
            .push(handler);
    }

    /// Answers the hub's client-result invocations of `method` (matched case-insensitively):
    /// the handler's `Ok` value is the result, its `Err` text the error the server sees.
    /// Without such a handler, the client answers `Client didn't provide a result.` as the
    /// official clients do. A second handler for the same method replaces the first.
    pub fn on_invoke<A, R, F, Fut>(&self, method: &str, handler: F)
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, String>> + Send + 'static,
    {
        let protocol = self.shared.config.protocol.clone();
        let answerer: Answerer = Arc::new(move |arguments: Payload| {
            let arguments = decode::<A>(&arguments);
            let format = protocol.payload_format();
            let future = arguments.map(&handler);
            Box::pin(async move {
                let value = future.map_err(|error| error.to_string())?.await?;
                Payload::encode(format, &value).map_err(|error| error.to_string())
            })
        });
        self.shared
            .answerers
            .write()
            .expect("lock")
            .insert(method.to_lowercase(), answerer);
    }

    /// Sends Close and ends the connection; waiting calls fail with [`ClientError::Closed`].
    pub async fn stop(&self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        let Ok(session) = self.session() else {
            return;
        };
        let _ = session.write(&HubMessage::Close(Default::default())).await;
        session.end(None);
    }

    /// Waits until the connection has closed; the server's error text, if it gave one.
    pub async fn closed(&self) -> Option<String> {
        let session = self.shared.session.lock().expect("lock").clone()?;
        session.ended.cancelled().await;
        session.close_error.lock().expect("lock").clone()
    }
}

/// One item of an upload, encoded when the connection's format is known.
type EncodeItem = Box<dyn FnOnce(PayloadFormat) -> Result<Payload, String> + Send>;

/// A stream the client uploads to a hub method
/// ([`HubConnection::invoke_with_uploads`]).
pub struct Upload {
    items: futures_util::stream::BoxStream<'static, Result<EncodeItem, String>>,
}

impl Upload {
    /// Uploads the items of `items`; the upload ends when the stream does.
    pub fn new<T, S>(items: S) -> Self
    where
        T: Serialize + Send + 'static,
        S: Stream<Item = T> + Send + 'static,
    {
        Upload {
            items: items.map(|item| Ok(encoder(item))).boxed(),
        }
    }

    /// Uploads the `Ok` items of `items`; an `Err` ends the upload with its text as the error
    /// the hub method sees.
    pub fn fallible<T, E, S>(items: S) -> Self
    where
        T: Serialize + Send + 'static,
        E: std::fmt::Display,
        S: Stream<Item = Result<T, E>> + Send + 'static,
    {
        Upload {
            items: items
                .map(|item| item.map(encoder).map_err(|error| error.to_string()))
                .boxed(),
        }
    }
}

fn encoder<T: Serialize + Send + 'static>(item: T) -> EncodeItem {
    Box::new(move |format| Payload::encode(format, &item).map_err(|error| error.to_string()))
}

/// Sends one upload's items, then its end.
async fn send_upload(session: Arc<Session>, stream_id: String, mut upload: Upload) {
    let format = session.protocol.payload_format();
    let outcome = loop {
        let next = tokio::select! {
            _ = session.ended.cancelled() => return,
            next = upload.items.next() => next,
        };
        let item = match next {
            None => break CompletionOutcome::Void,
            Some(Err(error)) => break CompletionOutcome::Error(error),
            Some(Ok(encode)) => match encode(format) {
                Ok(item) => item,
                Err(error) => break CompletionOutcome::Error(error),
            },
        };
        let message = HubMessage::StreamItem(signalr_protocol::StreamItem {
            headers: Headers::new(),
            invocation_id: stream_id.clone(),
            item,
        });
        if session.write(&message).await.is_err() {
            return;
        }
    };
    let end = HubMessage::Completion(Completion {
        headers: Headers::new(),
        invocation_id: stream_id,
        outcome,
    });
    let _ = session.write(&end).await;
}

/// Writes queued messages, each batch of what is queued as one send; sends a Ping when
/// nothing went out for the keep-alive interval (not on Long Polling).
async fn write_loop(
    mut outbound: Outbound,
    mut queued: mpsc::Receiver<Bytes>,
    session: Arc<Session>,
    keep_alive: Duration,
) {
    let ping = session
        .protocol
        .to_bytes(&HubMessage::Ping)
        .expect("a ping always writes");
    // Without pings the wait is only for messages (an interval far longer than any session).
    let keep_alive = match outbound.pings() {
        true => keep_alive,
        false => Duration::from_secs(24 * 60 * 60),
    };
    loop {
        let next = tokio::select! {
            _ = session.ended.cancelled() => None,
            next = tokio::time::timeout(keep_alive, queued.recv()) => Some(next),
        };
        let mut batch = match next {
            None | Some(Ok(None)) => break,
            Some(Ok(Some(bytes))) => BytesMut::from(&bytes[..]),
            Some(Err(_)) => BytesMut::from(&ping[..]),
        };
        while let Ok(more) = queued.try_recv() {
            batch.extend_from_slice(&more);
        }
        if let Err(error) = outbound.send(batch.freeze()).await {
            session.end(Some(error.to_string()));
            break;
        }
    }
    // Flush what `stop` queued last (its Close), then end the transport.
    let mut rest = BytesMut::new();
    while let Ok(bytes) = queued.try_recv() {
        rest.extend_from_slice(&bytes);
    }
    if !rest.is_empty() {
        let _ = outbound.send(rest.freeze()).await;
    }
    outbound.close().await;
}

/// Reads and handles the server's messages until the connection ends.
async fn read_loop(
    mut inbound: Inbound,
    mut buffer: BytesMut,
    session: Arc<Session>,
    shared: Arc<Shared>,
    server_timeout: Duration,
) {
    let error = 'reading: loop {
        loop {
            match session.protocol.parse(&buffer) {
                Ok(Parsed::Incomplete) => break,
                Ok(Parsed::Ignored(consumed)) => buffer.advance(consumed),
                Ok(Parsed::Message(message, consumed)) => {
                    buffer.advance(consumed);
                    if let Some(end) = handle(message, &session, &shared).await {
                        break 'reading end;
                    }
                }
                Err(error) => {
                    break 'reading Some(format!("the server sent an invalid message: {error}"));
                }
            }
        }
        let frame = tokio::select! {
            _ = session.ended.cancelled() => break None,
            frame = tokio::time::timeout(server_timeout, inbound.next()) => frame,
        };
        match frame {
            Err(_) => {
                break Some(format!(
                    "Server timeout elapsed without receiving a message from the server ({server_timeout:?})."
                ));
            }
            Ok(Some(Ok(chunk))) => buffer.extend_from_slice(&chunk),
            Ok(None) => break None,
            Ok(Some(Err(error))) => break Some(error.to_string()),
        }
    };
    session.end(error);
    connection_lost(shared, session).await;
}

/// Handles one message; `Some` when the connection ends (with the server's error, if any).
async fn handle(
    message: HubMessage,
    session: &Arc<Session>,
    shared: &Shared,
) -> Option<Option<String>> {
    match message {
        HubMessage::Completion(Completion {
            invocation_id,
            outcome,
            ..
        }) => {
            let pending = session.pending.lock().expect("lock").remove(&invocation_id);
            match pending {
                Some(Pending::Invocation(answer)) => {
                    let _ = answer.send(Ok(outcome));
                }
                Some(Pending::Stream(items)) => {
                    if let CompletionOutcome::Error(text) = outcome {
                        let _ = items.send(Err(ClientError::Hub(text))).await;
                    }
                }
                None => tracing::debug!(%invocation_id, "a completion for no call"),
            }
        }
        HubMessage::StreamItem(item) => {
            let items = match session
                .pending
                .lock()
                .expect("lock")
                .get(&item.invocation_id)
            {
                Some(Pending::Stream(items)) => Some(items.clone()),
                _ => None,
            };
            if let Some(items) = items {
                let _ = items.send(Ok(item.item)).await;
            }
        }
        HubMessage::Invocation(invocation) => {
            let name = invocation.target.to_lowercase();
            let handlers = shared
                .handlers
                .read()
                .expect("lock")
                .get(&name)
                .cloned()
                .unwrap_or_default();
            for handler in handlers {
                handler(invocation.arguments.clone()).await;
            }
            if let Some(id) = invocation.invocation_id {
                let answerer = shared.answerers.read().expect("lock").get(&name).cloned();
                let outcome = match answerer {
                    Some(answerer) => match answerer(invocation.arguments).await {
                        Ok(value) => CompletionOutcome::Result(value),
                        Err(text) => CompletionOutcome::Error(text),
                    },
                    None => CompletionOutcome::Error("Client didn't provide a result.".into()),
                };
                let completion = HubMessage::Completion(Completion {
                    headers: Headers::new(),
                    invocation_id: id,
                    outcome,
                });
                let _ = session.write(&completion).await;
            }
        }
        HubMessage::Close(close) => {
            if !close.allow_reconnect {
                session.may_reconnect.store(false, Ordering::SeqCst);
            }
            return Some(close.error);
        }
        _ => {}
    }
    None
}

/// The items of a streaming call ([`HubConnection::stream`]). Dropping it before the end
/// cancels the stream on the server.
pub struct HubStream<T> {
    id: String,
    received: mpsc::Receiver<Result<Payload, ClientError>>,
    session: Arc<Session>,
    ended: bool,
    item_type: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Stream for HubStream<T> {
    type Item = Result<T, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let item = match self.received.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => None,
            Poll::Ready(Some(Ok(payload))) => Some(decode(&payload)),
            Poll::Ready(Some(Err(error))) => Some(Err(error)),
        };
        if !matches!(item, Some(Ok(_))) {
            self.ended = true;
        }
        Poll::Ready(item)
    }
}

impl<T> Drop for HubStream<T> {
    fn drop(&mut self) {
        let still_running = self
            .session
            .pending
            .lock()
            .expect("lock")
            .remove(&self.id)
            .is_some();
        if still_running && !self.session.ended.is_cancelled() {
            let cancel = HubMessage::CancelInvocation(CancelInvocation {
                headers: Headers::new(),
                invocation_id: self.id.clone(),
            });
            if let Ok(bytes) = self.session.protocol.to_bytes(&cancel) {
                let _ = self.session.outgoing.try_send(bytes);
            }
        }
    }
}
