//! The HTTP surface of one hub: negotiate, connect, and the registry of connection tokens
//! (PROTOCOL.md §1 to §3).

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
use signalr_protocol::negotiate::{
    AvailableTransport, NegotiateError, NegotiateResponse, TransportType,
};

use crate::hub::context::query_value;
use crate::hub::{HubShared, RequestInfo};
use crate::transport::websocket;
use crate::user::HubUser;

/// The transports this endpoint serves, in the order clients should try them.
const TRANSPORTS: [TransportType; 1] = [TransportType::WebSockets];

/// One hub mounted at one path.
pub(crate) struct Endpoint<S> {
    pub(crate) hub: Arc<HubShared<S>>,
    pub(crate) registry: Arc<Registry>,
}

/// A connection known to the endpoint, keyed by its secret token.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) connection_id: String,
    negotiated_at: Instant,
    /// Set when a transport took the connection; a second one is refused.
    active: AtomicBool,
}

/// The connections of one endpoint, by connection token. The public connection id is never a
/// key: knowing it grants nothing.
#[derive(Debug)]
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
        self.insert(&token, connection_id.clone(), false);
        (connection_id, token)
    }

    /// Records a connection that skipped negotiation and is active at once; its token is its
    /// connection id, as with version 0.
    fn connect_without_negotiation(&self) -> (String, Arc<Entry>) {
        let token = random_id();
        let entry = self.insert(&token, token.clone(), true);
        (token, entry)
    }

    fn insert(&self, token: &str, connection_id: String, active: bool) -> Arc<Entry> {
        let entry = Arc::new(Entry {
            connection_id,
            negotiated_at: Instant::now(),
            active: AtomicBool::new(active),
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

    /// Forgets negotiated connections that no transport took within the disconnect timeout.
    fn sweep(&self) {
        let timeout = self.disconnect_timeout;
        self.entries.lock().expect("lock").retain(|_, entry| {
            entry.active.load(Ordering::Acquire) || entry.negotiated_at.elapsed() < timeout
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

/// `POST <hub>/negotiate`.
pub(crate) async fn negotiate<S>(endpoint: Arc<Endpoint<S>>, request: Request) -> Response {
    if request.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "");
    }
    if endpoint.hub.requires_user && user_of(&request).is_none() {
        return empty(StatusCode::UNAUTHORIZED);
    }
    let minimum = endpoint.hub.options.minimum_negotiate_version;
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
    let response = NegotiateResponse {
        negotiate_version: version,
        connection_id,
        connection_token: (version > 0).then_some(token),
        use_stateful_reconnect: false,
        available_transports: TRANSPORTS
            .iter()
            .map(|&t| AvailableTransport::from(t))
            .collect(),
    };
    axum::Json(response).into_response()
}

fn negotiate_error(error: String) -> Response {
    axum::Json(NegotiateError { error }).into_response()
}

fn not_supported(transport: TransportType) -> Response {
    let body = format!(
        "{} transport not supported by this end point type",
        transport.as_str()
    );
    text(StatusCode::NOT_FOUND, body)
}

/// Requests to the hub path itself: WebSocket upgrades, and the other transports' requests.
pub(crate) async fn connect<S>(endpoint: Arc<Endpoint<S>>, request: Request) -> Response
where
    S: Clone + Send + Sync + 'static,
{
    if endpoint.hub.requires_user && user_of(&request).is_none() {
        return empty(StatusCode::UNAUTHORIZED);
    }
    let token = request
        .uri()
        .query()
        .and_then(|query| query_value(query, "id"));
    match *request.method() {
        Method::GET => {}
        Method::POST | Method::DELETE => {
            return not_websocket_request(&endpoint, request.method(), token);
        }
        _ => return text(StatusCode::METHOD_NOT_ALLOWED, ""),
    }
    let wants_events = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    if wants_events {
        return not_supported(TransportType::ServerSentEvents);
    }

    let user = user_of(&request);
    let (mut parts, _body) = request.into_parts();
    let Ok(upgrade) = WebSocketUpgrade::from_request_parts(&mut parts, &()).await else {
        return not_supported(TransportType::LongPolling);
    };
    let (token, entry) = match token {
        None => endpoint.registry.connect_without_negotiation(),
        Some(token) => {
            let Some(entry) = endpoint.registry.get(&token) else {
                return text(StatusCode::NOT_FOUND, "No Connection with that ID");
            };
            if entry.active.swap(true, Ordering::AcqRel) {
                return empty(StatusCode::CONFLICT);
            }
            (token, entry)
        }
    };
    let request = RequestInfo {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
    };
    let hub = endpoint.hub.clone();
    let registration = Registration {
        registry: endpoint.registry.clone(),
        token,
    };
    let connection_id = entry.connection_id.clone();
    websocket::configure(upgrade, &hub.options).on_upgrade(move |socket| async move {
        websocket::serve(socket, hub, connection_id, request, user).await;
        drop(registration);
    })
}

/// Forgets a connection's token when dropped: after its transport ended, or when the upgrade
/// never completed.
struct Registration {
    registry: Arc<Registry>,
    token: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.remove(&self.token);
    }
}

/// POST and DELETE: the sends and terminations of the HTTP transports.
fn not_websocket_request<S>(
    endpoint: &Endpoint<S>,
    method: &Method,
    token: Option<String>,
) -> Response {
    let Some(token) = token else {
        return text(StatusCode::BAD_REQUEST, "Connection ID required");
    };
    if endpoint.registry.get(&token).is_none() {
        return text(StatusCode::NOT_FOUND, "No Connection with that ID");
    }
    if method == Method::POST {
        text(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST requests are not allowed for WebSocket connections.",
        )
    } else {
        text(
            StatusCode::BAD_REQUEST,
            "Cannot terminate this connection using the DELETE endpoint.",
        )
    }
}
