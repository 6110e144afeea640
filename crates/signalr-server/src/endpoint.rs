//! The HTTP surface of one endpoint (a hub or a raw connection handler): negotiate, the three
//! transports, and the registry of connection tokens (PROTOCOL.md §1 to §3).
//!
//! Requests to the endpoint's path are told apart as the reference does: a GET asking for
//! `text/event-stream` is Server-Sent Events, a GET upgrade is WebSockets, any other GET is a
//! long poll; POST sends to an SSE or Long Polling connection and DELETE ends a Long Polling
//! one. Every refusal carries the reference's status and text (§3.1).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, WebSocketUpgrade};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use signalr_protocol::negotiate::{
    AvailableTransport, NegotiateError, NegotiateResponse, TransportType,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connection::{ConnectionParts, Inbound};
use crate::hub::BoxFuture;
use crate::hub::RequestInfo;
use crate::hub::context::query_value;
use crate::options::HubOptions;
use crate::transport::long_polling::LongPoll;
use crate::transport::{self, Opening, sse, websocket};
use crate::user::HubUser;

/// What runs a connection once a transport has it: a hub, or a raw connection handler.
pub(crate) trait EndpointHandler: Send + Sync + 'static {
    /// Runs the connection to its end; the transport finishes when `parts.closing` is
    /// cancelled.
    fn run(self: Arc<Self>, parts: ConnectionParts) -> BoxFuture<()>;
}

/// One handler mounted at one path.
pub(crate) struct Endpoint {
    pub(crate) handler: Arc<dyn EndpointHandler>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) options: HubOptions,
    /// Negotiate and every transport request need an authenticated user.
    pub(crate) requires_user: bool,
}

impl Endpoint {
    pub(crate) fn new(
        handler: Arc<dyn EndpointHandler>,
        options: HubOptions,
        requires_user: bool,
    ) -> Self {
        let registry = Arc::new(Registry::new(options.disconnect_timeout));
        Endpoint {
            handler,
            registry,
            options,
            requires_user,
        }
    }
}

/// A connection known to the endpoint, keyed by its secret token.
pub(crate) struct Entry {
    connection_id: String,
    negotiated_at: Instant,
    /// The transport the connection uses, fixed by its first transport request.
    transport: OnceLock<TransportType>,
    /// A WebSocket or an event stream is attached; a second one is refused.
    attached: AtomicBool,
    /// How POST and DELETE reach a connection running over SSE or Long Polling.
    http: OnceLock<HttpSide>,
}

/// The request-driven side of an SSE or Long Polling connection.
pub(crate) struct HttpSide {
    inbound: mpsc::Sender<Inbound>,
    /// Serializes sends, so that two POSTs' bytes never interleave.
    sends: tokio::sync::Mutex<()>,
    aborted: CancellationToken,
    closing: CancellationToken,
    /// Present on Long Polling.
    long_poll: Option<LongPoll>,
}

impl Entry {
    fn in_use(&self) -> bool {
        self.attached.load(Ordering::Acquire) || self.http.get().is_some()
    }
}

/// The connections of one endpoint, by connection token. The public connection id is never a
/// key: knowing it grants nothing.
pub(crate) struct Registry {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    disconnect_timeout: Duration,
    sweeper: OnceLock<()>,
}

impl Registry {
    pub(crate) fn new(disconnect_timeout: Duration) -> Self {
        Registry {
            entries: Mutex::default(),
            disconnect_timeout,
            sweeper: OnceLock::new(),
        }
    }

    /// Records a negotiated connection; returns `(connection id, token)`.
    fn negotiate(self: &Arc<Self>, version: u32) -> (String, String) {
        self.start_sweeper();
        let connection_id = random_id();
        let token = if version == 0 {
            connection_id.clone()
        } else {
            random_id()
        };
        self.insert(&token, connection_id.clone());
        (connection_id, token)
    }

    /// Records a WebSocket that skipped negotiation; its token is its connection id, as with
    /// version 0.
    fn connect_without_negotiation(&self) -> (String, Arc<Entry>) {
        let token = random_id();
        let entry = self.insert(&token, token.clone());
        let _ = entry.transport.set(TransportType::WebSockets);
        entry.attached.store(true, Ordering::Release);
        (token, entry)
    }

    fn insert(&self, token: &str, connection_id: String) -> Arc<Entry> {
        let entry = Arc::new(Entry {
            connection_id,
            negotiated_at: Instant::now(),
            transport: OnceLock::new(),
            attached: AtomicBool::new(false),
            http: OnceLock::new(),
        });
        let mut entries = self.entries.lock().expect("lock");
        entries.insert(token.to_owned(), entry.clone());
        entry
    }

    fn get(&self, token: &str) -> Option<Arc<Entry>> {
        self.entries.lock().expect("lock").get(token).cloned()
    }

    fn remove(&self, token: &str) {
        self.entries.lock().expect("lock").remove(token);
    }

    /// Forgets negotiated connections that no transport took within the disconnect timeout,
    /// and ends Long Polling connections that have not polled for that long.
    fn sweep(&self) {
        let timeout = self.disconnect_timeout;
        self.entries.lock().expect("lock").retain(|_, entry| {
            let idle_poll = entry.http.get().and_then(|http| {
                let idle = http.long_poll.as_ref()?.idle_for()?;
                (idle >= timeout).then_some(http)
            });
            if let Some(http) = idle_poll {
                tracing::debug!(connection_id = %entry.connection_id, "no poll within the disconnect timeout");
                if let Some(long_poll) = &http.long_poll {
                    long_poll.terminate();
                }
                http.aborted.cancel();
            }
            entry.in_use() || entry.negotiated_at.elapsed() < timeout
        });
    }

    fn start_sweeper(self: &Arc<Self>) {
        self.sweeper.get_or_init(|| {
            let registry: Weak<Registry> = Arc::downgrade(self);
            let period = (self.disconnect_timeout / 4)
                .clamp(Duration::from_millis(10), Duration::from_secs(1));
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(period);
                loop {
                    ticks.tick().await;
                    let Some(registry) = registry.upgrade() else {
                        return;
                    };
                    registry.sweep();
                }
            });
        });
    }
}

/// Forgets a connection's token when dropped: after its connection ended, or when a transport
/// never got it running.
struct Registration {
    registry: Arc<Registry>,
    token: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.remove(&self.token);
    }
}

/// 16 random bytes, base64url without padding (22 characters).
fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = (status, body.into()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn empty(status: StatusCode) -> Response {
    (status, Body::empty()).into_response()
}

fn user_of(request: &Request) -> Option<HubUser> {
    request.extensions().get::<HubUser>().cloned()
}

/// The most one WebSocket frame or POST body may hold: clients batch messages, so a piece may
/// be much larger than one message; this bounds what one piece can make the server buffer
/// (and what the WebSocket reader's buffer may keep afterwards): 64 messages of the largest
/// size, at least 1 MiB (2 MiB with the default 32 KiB limit).
pub(crate) fn receive_limit(options: &HubOptions) -> usize {
    options
        .maximum_receive_message_size
        .map_or(64 << 20, |limit| limit.saturating_mul(64).max(1 << 20))
}

/// `POST <path>/negotiate`.
pub(crate) async fn negotiate(endpoint: Arc<Endpoint>, request: Request) -> Response {
    if request.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "");
    }
    if endpoint.requires_user && user_of(&request).is_none() {
        return empty(StatusCode::UNAUTHORIZED);
    }
    let minimum = endpoint.options.minimum_negotiate_version;
    let requested = request
        .uri()
        .query()
        .and_then(|query| query_value(query, "negotiateVersion"));
    let version = match requested.map(|text| text.parse::<i32>()) {
        None => 0,
        Some(Ok(version)) => version,
        Some(Err(_)) => {
            return negotiate_error("The client requested a non-integer protocol version.".into());
        }
    };
    if i64::from(version) < i64::from(minimum) {
        return negotiate_error(format!(
            "The client requested version '{version}', but the server does not support this version."
        ));
    }
    let version = version.clamp(0, 1) as u32;
    let (connection_id, token) = endpoint.registry.negotiate(version);
    tracing::debug!(%connection_id, version, "negotiated");
    let transports = endpoint.options.transports.iter();
    let response = NegotiateResponse {
        negotiate_version: version,
        connection_id,
        connection_token: (version > 0).then_some(token),
        use_stateful_reconnect: false,
        available_transports: transports.map(|&t| AvailableTransport::from(t)).collect(),
    };
    axum::Json(response).into_response()
}

fn negotiate_error(error: String) -> Response {
    axum::Json(NegotiateError { error }).into_response()
}

/// A refused transport request: a status and the reference's text for it.
struct Refusal {
    status: StatusCode,
    /// `None` for an empty body without a content type.
    text: Option<Cow<'static, str>>,
}

impl Refusal {
    fn text(status: StatusCode, text: impl Into<Cow<'static, str>>) -> Self {
        Refusal {
            status,
            text: Some(text.into()),
        }
    }

    fn empty(status: StatusCode) -> Self {
        Refusal { status, text: None }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self.text {
            Some(body) => text(self.status, body),
            None => empty(self.status),
        }
    }
}

fn not_supported(transport: TransportType) -> Refusal {
    let body = format!(
        "{} transport not supported by this end point type",
        transport.as_str()
    );
    Refusal::text(StatusCode::NOT_FOUND, body)
}

fn no_connection() -> Refusal {
    Refusal::text(StatusCode::NOT_FOUND, "No Connection with that ID")
}

fn id_required() -> Refusal {
    Refusal::text(StatusCode::BAD_REQUEST, "Connection ID required")
}

/// Requests to the endpoint's own path.
pub(crate) async fn connect(endpoint: Arc<Endpoint>, request: Request) -> Response {
    if endpoint.requires_user && user_of(&request).is_none() {
        return empty(StatusCode::UNAUTHORIZED);
    }
    let token = request
        .uri()
        .query()
        .and_then(|query| query_value(query, "id"))
        .filter(|token| !token.is_empty());
    let result = match *request.method() {
        Method::GET if wants_event_stream(&request) => {
            server_sent_events(&endpoint, token, request)
        }
        Method::GET => get(&endpoint, token, request).await,
        Method::POST => send(&endpoint, token, request).await,
        Method::DELETE => terminate(&endpoint, token),
        _ => Err(Refusal::text(StatusCode::METHOD_NOT_ALLOWED, "")),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn wants_event_stream(request: &Request) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

/// Finds the connection a transport request names and binds it to that transport.
fn bind(
    endpoint: &Endpoint,
    token: Option<&str>,
    transport: TransportType,
) -> Result<Arc<Entry>, Refusal> {
    if !endpoint.options.transports.contains(&transport) {
        return Err(not_supported(transport));
    }
    let token = token.ok_or_else(id_required)?;
    let entry = endpoint.registry.get(token).ok_or_else(no_connection)?;
    if *entry.transport.get_or_init(|| transport) != transport {
        return Err(Refusal::text(
            StatusCode::BAD_REQUEST,
            "Cannot change transports mid-connection",
        ));
    }
    Ok(entry)
}

fn opening(entry: &Entry, request: Request, transport: TransportType) -> Opening {
    let user = user_of(&request);
    let (parts, _body) = request.into_parts();
    Opening {
        connection_id: entry.connection_id.clone(),
        request: RequestInfo::detached(parts.method, &parts.uri, &parts.headers),
        user,
        transport,
    }
}

/// Runs a connection of an HTTP transport in its own task; its token is forgotten at the end.
fn spawn_connection(endpoint: &Endpoint, token: String, entry: Arc<Entry>, parts: ConnectionParts) {
    let registration = Registration {
        registry: endpoint.registry.clone(),
        token,
    };
    let handler = endpoint.handler.clone();
    let linger = endpoint.options.disconnect_timeout;
    tokio::spawn(async move {
        handler.run(parts).await;
        // On Long Polling the last messages (a Close) wait for a poll: the token stays known
        // until the client has seen the end, or for the disconnect timeout.
        if let Some(long_poll) = entry.http.get().and_then(|http| http.long_poll.as_ref()) {
            let _ = tokio::time::timeout(linger, long_poll.ended()).await;
        }
        drop(registration);
    });
}

/// Feeds POST bodies to the connection; the stream ends when `gone` is cancelled.
fn posted_bodies(
    receiver: mpsc::Receiver<Inbound>,
    gone: Option<CancellationToken>,
) -> BoxStream<'static, Inbound> {
    let bodies = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    match gone {
        Some(gone) => bodies.take_until(gone.cancelled_owned()).boxed(),
        None => bodies.boxed(),
    }
}

/// Starts the request-driven side of a connection.
fn start_http(
    endpoint: &Endpoint,
    opening: Opening,
    gone: Option<CancellationToken>,
) -> (HttpSide, ConnectionParts, transport::Outgoing) {
    // One body waits while the handler works through the previous one: back-pressure on the
    // client's POSTs without buffering many bodies.
    let (sender, receiver) = mpsc::channel(1);
    let (parts, outgoing) =
        transport::open(opening, posted_bodies(receiver, gone), &endpoint.options);
    let side = HttpSide {
        inbound: sender,
        sends: tokio::sync::Mutex::new(()),
        aborted: parts.aborted.clone(),
        closing: parts.closing.clone(),
        long_poll: None,
    };
    (side, parts, outgoing)
}

/// `GET` with `Accept: text/event-stream`.
fn server_sent_events(
    endpoint: &Endpoint,
    token: Option<String>,
    request: Request,
) -> Result<Response, Refusal> {
    let entry = bind(endpoint, token.as_deref(), TransportType::ServerSentEvents)?;
    if entry.attached.swap(true, Ordering::AcqRel) {
        return Err(Refusal::empty(StatusCode::CONFLICT));
    }
    let gone = CancellationToken::new();
    let opening = opening(&entry, request, TransportType::ServerSentEvents);
    let (side, parts, outgoing) = start_http(endpoint, opening, Some(gone.clone()));
    let _ = entry.http.set(side);
    spawn_connection(endpoint, token.expect("bound"), entry, parts);
    Ok(sse::response(outgoing, gone))
}

/// `GET` without an event-stream `Accept`: a WebSocket upgrade, or else a long poll.
async fn get(
    endpoint: &Endpoint,
    token: Option<String>,
    request: Request,
) -> Result<Response, Refusal> {
    let (mut parts, body) = request.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => {
            let request = Request::from_parts(parts, body);
            websocket_connect(endpoint, token, upgrade, request)
        }
        Err(_) => long_poll(endpoint, token, Request::from_parts(parts, body)).await,
    }
}

fn websocket_connect(
    endpoint: &Endpoint,
    token: Option<String>,
    upgrade: WebSocketUpgrade,
    request: Request,
) -> Result<Response, Refusal> {
    let transport = TransportType::WebSockets;
    if !endpoint.options.transports.contains(&transport) {
        return Err(not_supported(transport));
    }
    let (token, entry) = match token {
        None => endpoint.registry.connect_without_negotiation(),
        Some(token) => {
            let entry = bind(endpoint, Some(&token), transport)?;
            if entry.attached.swap(true, Ordering::AcqRel) {
                return Err(Refusal::empty(StatusCode::CONFLICT));
            }
            (token, entry)
        }
    };
    let opening = opening(&entry, request, transport);
    let registration = Registration {
        registry: endpoint.registry.clone(),
        token,
    };
    let upgrade = websocket::configure(upgrade, receive_limit(&endpoint.options));
    // One box for what the connection starts from: the upgrade's task keeps room for this
    // closure for the connection's whole life.
    let start = Box::new((endpoint.handler.clone(), opening, endpoint.options.clone()));
    Ok(upgrade.on_upgrade(move |socket| {
        let (handler, opening, options) = *start;
        websocket::serve(socket, handler, opening, &options).map(move |()| drop(registration))
    }))
}

/// A long poll: the first starts the connection, later ones wait for data.
async fn long_poll(
    endpoint: &Endpoint,
    token: Option<String>,
    request: Request,
) -> Result<Response, Refusal> {
    let entry = bind(endpoint, token.as_deref(), TransportType::LongPolling)?;
    let mut started = None;
    let http = entry.http.get_or_init(|| {
        let opening = opening(&entry, request, TransportType::LongPolling);
        let (mut side, parts, outgoing) = start_http(endpoint, opening, None);
        side.long_poll = Some(LongPoll::new(outgoing));
        started = Some(parts);
        side
    });
    if let Some(parts) = started {
        spawn_connection(endpoint, token.expect("bound"), entry.clone(), parts);
        return Ok(LongPoll::started());
    }
    let long_poll = http
        .long_poll
        .as_ref()
        .expect("a Long Polling connection polls");
    Ok(long_poll
        .poll(endpoint.options.long_polling_poll_timeout)
        .await)
}

/// `POST`: bytes from the client of an SSE or Long Polling connection.
async fn send(
    endpoint: &Endpoint,
    token: Option<String>,
    request: Request,
) -> Result<Response, Refusal> {
    let token = token.ok_or_else(id_required)?;
    let entry = endpoint.registry.get(&token).ok_or_else(no_connection)?;
    if entry.transport.get() == Some(&TransportType::WebSockets) {
        return Err(Refusal::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST requests are not allowed for WebSocket connections.",
        ));
    }
    let http = entry.http.get().ok_or_else(|| {
        Refusal::text(
            StatusCode::BAD_REQUEST,
            "The connection has not started: open its transport first.",
        )
    })?;
    // One POST at a time per connection, and its body is read only then: concurrent POSTs
    // wait here instead of each buffering a body.
    let _one_at_a_time = http.sends.lock().await;
    let limit = receive_limit(&endpoint.options);
    let body = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| {
            Refusal::text(
                StatusCode::BAD_REQUEST,
                "The request body could not be read.",
            )
        })?;
    tokio::select! {
        sent = http.inbound.send(Ok(body)) => sent.map_err(|_| no_connection())?,
        _ = http.closing.cancelled() => return Err(no_connection()),
    }
    Ok(text(StatusCode::OK, ""))
}

/// `DELETE`: the client ends a Long Polling connection.
fn terminate(endpoint: &Endpoint, token: Option<String>) -> Result<Response, Refusal> {
    let token = token.ok_or_else(id_required)?;
    let entry = endpoint.registry.get(&token).ok_or_else(no_connection)?;
    let long_poll = entry
        .http
        .get()
        .and_then(|http| Some((http, http.long_poll.as_ref()?)));
    let Some((http, long_poll)) = long_poll else {
        return Err(Refusal::text(
            StatusCode::BAD_REQUEST,
            "Cannot terminate this connection using the DELETE endpoint.",
        ));
    };
    long_poll.terminate();
    http.aborted.cancel();
    Ok(text(StatusCode::ACCEPTED, ""))
}
