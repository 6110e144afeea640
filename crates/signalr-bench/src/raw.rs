//! Hub connections opened by hand, each from a chosen local address.
//!
//! The `connect` and `idle` scenarios open many connections; one source address has only
//! about 28 000 ephemeral ports (Linux's default range 32768–60999), so connections are spread
//! over several 127.0.0.x addresses. These connections do the three steps themselves, so that
//! each costs the bench little: negotiate (`reqwest`, bound with
//! `local_address`), the WebSocket upgrade (`tokio-tungstenite` over a [`TcpSocket`] bound to
//! the address) and the handshake (`{"protocol":"json","version":1}` + `0x1E`). After that
//! they only answer to keep the connection alive: a Ping every keep-alive interval, and
//! whatever the server sends is read and dropped. `echo --raw` uses them too
//! ([`RawConnection::feed`], [`RawConnection::receive`]), so that a plain WebSocket echo
//! server and a hub are driven by the same code.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use signalr_protocol::negotiate::encode_query_value;
use signalr_protocol::{HubMessage, HubProtocol, Parsed, RECORD_SEPARATOR};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use crate::{BenchError, Settings};

/// How long one step (negotiate, connect, handshake) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the hub is: the parts of its URL the raw connections need.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port`.
    authority: String,
    /// The resolved address.
    address: SocketAddr,
    /// The path, without a trailing slash.
    path: String,
    /// The query, without `?`.
    query: Option<String>,
}

impl Target {
    /// Parses and resolves an `http://` or `ws://` hub URL.
    ///
    /// # Errors
    /// A URL of another scheme (TLS is not supported here), or a host that does not resolve.
    pub async fn resolve(url: &str) -> Result<Target, BenchError> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("ws://"))
            .ok_or_else(|| {
                BenchError(format!("{url}: only http:// and ws:// URLs are supported"))
            })?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query.to_owned())),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, ""),
        };
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let address = tokio::net::lookup_host(&authority)
            .await
            .map_err(|error| BenchError(format!("cannot resolve {authority}: {error}")))?
            .next()
            .ok_or_else(|| BenchError(format!("{authority} resolves to no address")))?;
        Ok(Target {
            authority,
            address,
            path: path.trim_end_matches('/').to_owned(),
            query,
        })
    }

    /// The server's socket address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://host:port/path/negotiate?query&negotiateVersion=1`.
    pub fn negotiate_url(&self) -> String {
        let query = match &self.query {
            Some(query) => format!("{query}&"),
            None => String::new(),
        };
        format!(
            "http://{}{}/negotiate?{query}negotiateVersion=1",
            self.authority, self.path
        )
    }

    /// `ws://host:port/path?query&id=<id>`.
    pub fn websocket_url(&self, id: Option<&str>) -> String {
        let mut url = format!("ws://{}{}", self.authority, self.path);
        if self.path.is_empty() {
            url.push('/');
        }
        let mut query: Vec<String> = self.query.iter().cloned().collect();
        if let Some(id) = id {
            query.push(format!("id={}", encode_query_value(id)));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        url
    }
}

/// Which step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Negotiate: HTTP error, refusal, unreadable answer.
    Negotiate(String),
    /// The TCP connect or the WebSocket upgrade.
    Connect(String),
    /// The handshake was refused or not answered.
    Handshake(String),
    /// A step took longer than [`STEP_TIMEOUT`].
    Timeout(&'static str),
}

impl Failure {
    /// `negotiate`, `connect`, `handshake` or `timeout`.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Negotiate(_) => "negotiate",
            Failure::Connect(_) => "connect",
            Failure::Handshake(_) => "handshake",
            Failure::Timeout(_) => "timeout",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Negotiate(text) | Failure::Connect(text) | Failure::Handshake(text) => {
                f.write_str(text)
            }
            Failure::Timeout(step) => write!(f, "{step} took more than {STEP_TIMEOUT:?}"),
        }
    }
}

/// How long each step of an open took.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// Negotiate, unless skipped.
    pub negotiate: Option<Duration>,
    /// TCP connect and WebSocket upgrade.
    pub connect: Duration,
    /// Handshake request until its answer.
    pub handshake: Duration,
}

impl Timings {
    /// All three steps.
    pub fn total(&self) -> Duration {
        self.negotiate.unwrap_or_default() + self.connect + self.handshake
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NegotiateAnswer {
    #[serde(default)]
    negotiate_version: u32,
    connection_id: Option<String>,
    connection_token: Option<String>,
    url: Option<String>,
    error: Option<String>,
}

/// Opens hub connections from the configured source addresses, round robin.
pub struct Connector {
    target: Target,
    /// One HTTP client (and so one pool of negotiate connections) per source address.
    sources: Vec<(IpAddr, reqwest::Client)>,
    protocol: Arc<dyn HubProtocol>,
    skip_negotiation: bool,
    next: AtomicUsize,
}

impl Connector {
    /// A connector for `settings` (URL, protocol, negotiate, source addresses).
    ///
    /// # Errors
    /// A URL that cannot be used, or an HTTP client that cannot be built.
    pub async fn new(settings: &Settings) -> Result<Connector, BenchError> {
        let target = Target::resolve(&settings.url).await?;
        let sources = settings
            .source_ips
            .iter()
            .map(|&ip| {
                reqwest::Client::builder()
                    .local_address(ip)
                    .tcp_nodelay(true)
                    .build()
                    .map(|client| (ip, client))
                    .map_err(|error| BenchError(format!("HTTP client for {ip}: {error}")))
            })
            .collect::<Result<_, _>>()?;
        let protocol: Arc<dyn HubProtocol> = if settings.messagepack {
            Arc::new(signalr_protocol::messagepack::MessagePackHubProtocol)
        } else {
            Arc::new(signalr_protocol::json::JsonHubProtocol)
        };
        Ok(Connector {
            target,
            sources,
            protocol,
            skip_negotiation: settings.skip_negotiation,
            next: AtomicUsize::new(0),
        })
    }

    /// Where the connections go.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Negotiates (unless skipped), connects and completes the handshake from the next
    /// source address.
    ///
    /// # Errors
    /// The step that failed.
    pub async fn open(&self) -> Result<(RawConnection, Timings), Failure> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.sources.len();
        let (source, http) = &self.sources[index];

        let started = Instant::now();
        let (id, negotiate) = if self.skip_negotiation {
            (None, None)
        } else {
            let id = tokio::time::timeout(STEP_TIMEOUT, self.negotiate(http))
                .await
                .map_err(|_| Failure::Timeout("negotiate"))??;
            (Some(id), Some(started.elapsed()))
        };

        let connecting = Instant::now();
        let socket = tokio::time::timeout(STEP_TIMEOUT, self.connect(*source, id.as_deref()))
            .await
            .map_err(|_| Failure::Timeout("connect"))??;
        let connect = connecting.elapsed();

        let handshaking = Instant::now();
        let mut connection = RawConnection {
            socket,
            protocol: self.protocol.clone(),
        };
        tokio::time::timeout(STEP_TIMEOUT, connection.handshake())
            .await
            .map_err(|_| Failure::Timeout("handshake"))??;
        let timings = Timings {
            negotiate,
            connect,
            handshake: handshaking.elapsed(),
        };
        Ok((connection, timings))
    }

    /// POSTs negotiate; the id to connect with.
    async fn negotiate(&self, http: &reqwest::Client) -> Result<String, Failure> {
        let failed = |error: reqwest::Error| Failure::Negotiate(error.to_string());
        let response = http
            .post(self.target.negotiate_url())
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        let body = response.bytes().await.map_err(failed)?;
        if !status.is_success() {
            return Err(Failure::Negotiate(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        let answer: NegotiateAnswer = serde_json::from_slice(&body)
            .map_err(|error| Failure::Negotiate(format!("unreadable answer: {error}")))?;
        if let Some(error) = answer.error {
            return Err(Failure::Negotiate(error));
        }
        if answer.url.is_some() {
            return Err(Failure::Negotiate(
                "the server redirects; the bench does not follow redirects".into(),
            ));
        }
        let id = match answer.negotiate_version {
            0 => answer.connection_id,
            _ => answer.connection_token,
        };
        id.ok_or_else(|| Failure::Negotiate("the answer has no connection token".into()))
    }

    /// TCP from `source`, then the WebSocket upgrade.
    async fn connect(
        &self,
        source: IpAddr,
        id: Option<&str>,
    ) -> Result<WebSocketStream<TcpStream>, Failure> {
        let failed = |error: std::io::Error| Failure::Connect(format!("from {source}: {error}"));
        let address = self.target.address;
        let socket = if address.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(failed)?;
        socket.bind(SocketAddr::new(source, 0)).map_err(failed)?;
        let stream = socket.connect(address).await.map_err(failed)?;
        stream.set_nodelay(true).map_err(failed)?;
        let request = self
            .target
            .websocket_url(id)
            .into_client_request()
            .map_err(|error| Failure::Connect(error.to_string()))?;
        // A small read buffer: the default (128 KiB) is zero-filled on every read and, over
        // tens of thousands of idle connections, would cost the bench gigabytes.
        let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
        let (socket, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                .await
                .map_err(|error| Failure::Connect(error.to_string()))?;
        Ok(socket)
    }
}

/// How a held connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldEnd {
    /// The bench closed it.
    Closed,
    /// The server closed it or it broke, with why.
    Dropped(String),
}

/// A hub connection past its handshake.
pub struct RawConnection {
    socket: WebSocketStream<TcpStream>,
    protocol: Arc<dyn HubProtocol>,
}

impl RawConnection {
    async fn handshake(&mut self) -> Result<(), Failure> {
        let failed =
            |error: tokio_tungstenite::tungstenite::Error| Failure::Handshake(error.to_string());
        let request = signalr_protocol::handshake::HandshakeRequest {
            protocol: self.protocol.name().to_owned(),
            version: 1,
        };
        let text = String::from_utf8(request.to_bytes()).expect("the handshake is JSON text");
        self.socket
            .send(Message::text(text))
            .await
            .map_err(failed)?;
        let mut answer = Vec::new();
        let end = loop {
            if let Some(end) = answer.iter().position(|&byte| byte == RECORD_SEPARATOR) {
                break end;
            }
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => answer.extend_from_slice(text.as_bytes()),
                Some(Ok(Message::Binary(bytes))) => answer.extend_from_slice(&bytes),
                Some(Ok(Message::Close(_))) | None => {
                    return Err(Failure::Handshake(
                        "the server closed the connection before answering".into(),
                    ));
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(failed(error)),
            }
        };
        // `{}` accepts; `{"error":"..."}` refuses. Messages after the separator are dropped.
        let value: serde_json::Value = serde_json::from_slice(&answer[..end])
            .map_err(|error| Failure::Handshake(format!("unreadable answer: {error}")))?;
        match value.get("error") {
            Some(error) => Err(Failure::Handshake(
                error.as_str().unwrap_or("refused").to_owned(),
            )),
            None => Ok(()),
        }
    }

    /// Sends Close and waits (at most a second) for the server to close, so that the server's
    /// side of the TCP connection closes first and the bench's port is free again at once.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = self.socket.close(None).await;
            while let Some(Ok(_)) = self.socket.next().await {}
        })
        .await;
    }

    /// The hub protocol chosen in the handshake.
    pub fn protocol(&self) -> &dyn HubProtocol {
        &*self.protocol
    }

    /// Queues `message` as one frame (text for JSON, binary for MessagePack) without writing
    /// it yet: [`flush`](Self::flush) writes what is queued, so that several frames can go in
    /// one write.
    ///
    /// # Errors
    /// The socket failed.
    pub async fn feed(&mut self, message: &HubMessage) -> Result<(), String> {
        let bytes = self
            .protocol
            .to_bytes(message)
            .map_err(|error| error.to_string())?;
        let frame = match self.protocol.transfer_format() {
            signalr_protocol::TransferFormat::Text => {
                Message::Text(Utf8Bytes::try_from(bytes).map_err(|error| error.to_string())?)
            }
            signalr_protocol::TransferFormat::Binary => Message::binary(bytes),
        };
        self.socket
            .feed(frame)
            .await
            .map_err(|error| error.to_string())
    }

    /// Writes the frames [`feed`](Self::feed) queued.
    ///
    /// # Errors
    /// The socket failed.
    pub async fn flush(&mut self) -> Result<(), String> {
        self.socket.flush().await.map_err(|error| error.to_string())
    }

    /// Reads the next frame that carries data and appends the hub messages in it to `out`
    /// (a frame may hold several; the rest of a message split over frames waits in
    /// `pending`). `Ok(false)` when the connection ended.
    ///
    /// # Errors
    /// The socket failed or a message could not be parsed.
    pub async fn receive(
        &mut self,
        pending: &mut Vec<u8>,
        out: &mut Vec<HubMessage>,
    ) -> Result<bool, String> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => pending.extend_from_slice(text.as_bytes()),
                Some(Ok(Message::Binary(bytes))) => pending.extend_from_slice(&bytes),
                Some(Ok(Message::Close(_))) | None => return Ok(false),
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error.to_string()),
            }
            let mut start = 0;
            while start < pending.len() {
                match self.protocol.parse(&pending[start..]) {
                    Ok(Parsed::Message(message, used)) => {
                        out.push(message);
                        start += used;
                    }
                    Ok(Parsed::Ignored(used)) => start += used,
                    Ok(Parsed::Incomplete) => break,
                    Err(error) => return Err(error.to_string()),
                }
            }
            pending.drain(..start);
            return Ok(true);
        }
    }

    /// Keeps the connection open until `stop` is cancelled: sends a Ping every `keep_alive`
    /// (the server closes connections it hears nothing from for its client timeout, 30 s by
    /// default) and reads and drops whatever arrives.
    pub async fn hold(mut self, stop: CancellationToken, keep_alive: Duration) -> HoldEnd {
        let ping = self
            .protocol
            .to_bytes(&HubMessage::Ping)
            .expect("a ping always writes");
        let ping = match self.protocol.transfer_format() {
            signalr_protocol::TransferFormat::Text => {
                Message::text(String::from_utf8_lossy(&ping).into_owned())
            }
            signalr_protocol::TransferFormat::Binary => Message::binary(ping),
        };
        let mut pings =
            tokio::time::interval_at(tokio::time::Instant::now() + keep_alive, keep_alive);
        loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    self.close().await;
                    return HoldEnd::Closed;
                }
                frame = self.socket.next() => match frame {
                    Some(Ok(Message::Close(frame))) => {
                        let reason = frame.map(|frame| frame.reason.to_string()).unwrap_or_default();
                        return HoldEnd::Dropped(format!("the server closed the connection {reason}").trim_end().to_owned());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return HoldEnd::Dropped(error.to_string()),
                    None => return HoldEnd::Dropped("the connection ended".into()),
                },
                _ = pings.tick() => {
                    if let Err(error) = self.socket.send(ping.clone()).await {
                        return HoldEnd::Dropped(error.to_string());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_for_negotiate_and_websockets() {
        let target = Target::resolve("http://127.0.0.1:5000/hub/").await.unwrap();
        assert_eq!(target.address(), "127.0.0.1:5000".parse().unwrap());
        assert_eq!(
            target.negotiate_url(),
            "http://127.0.0.1:5000/hub/negotiate?negotiateVersion=1"
        );
        assert_eq!(
            target.websocket_url(Some("a+b/c")),
            "ws://127.0.0.1:5000/hub?id=a%2Bb%2Fc"
        );
        assert_eq!(target.websocket_url(None), "ws://127.0.0.1:5000/hub");

        let target = Target::resolve("ws://127.0.0.1/hubs/x?k=v").await.unwrap();
        assert_eq!(target.address(), "127.0.0.1:80".parse().unwrap());
        assert_eq!(
            target.negotiate_url(),
            "http://127.0.0.1:80/hubs/x/negotiate?k=v&negotiateVersion=1"
        );
        assert_eq!(
            target.websocket_url(Some("t")),
            "ws://127.0.0.1:80/hubs/x?k=v&id=t"
        );

        let target = Target::resolve("http://[::1]:7/h").await.unwrap();
        assert_eq!(target.address(), "[::1]:7".parse().unwrap());

        assert!(Target::resolve("https://127.0.0.1/hub").await.is_err());
    }

    #[tokio::test]
    async fn connections_come_from_the_chosen_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, peer) = listener.accept().await.unwrap();
            let _socket = tokio_tungstenite::accept_async(stream).await.unwrap();
            peer
        });
        let mut settings = Settings::new(format!("http://{address}/hub"));
        settings.source_ips = vec!["127.0.0.3".parse().unwrap()];
        let connector = Connector::new(&settings).await.unwrap();
        let _socket = connector
            .connect("127.0.0.3".parse().unwrap(), Some("token"))
            .await
            .unwrap();
        let peer = server.await.unwrap();
        assert_eq!(peer.ip(), "127.0.0.3".parse::<IpAddr>().unwrap());
    }
}
