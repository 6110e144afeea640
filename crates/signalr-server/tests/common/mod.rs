//! Shared helpers for the integration tests: a server on an ephemeral loopback port, an HTTP
//! client, and a small SignalR-over-WebSocket client that speaks the JSON hub protocol.
//!
//! Every await that could hang is bounded by [`WAIT`].
#![allow(dead_code)]

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use axum::Router;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The record separator ending every JSON hub message.
pub const RS: char = '\u{1e}';

/// The upper bound of any single wait in these tests. Generous: the tests must not flake on a
/// loaded two-core machine, and a correct server answers in milliseconds.
pub const WAIT: Duration = Duration::from_secs(10);

/// The handshake every JSON client sends first.
pub const JSON_HANDSHAKE: &str = "{\"protocol\":\"json\",\"version\":1}\u{1e}";

/// Awaits `future` for at most [`WAIT`]; panics naming `what` when it takes longer.
pub async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(WAIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Serves `router` on 127.0.0.1 at a port the OS picks; returns `http://127.0.0.1:<port>`.
pub async fn start(router: Router) -> String {
    let listener = bounded("bind", tokio::net::TcpListener::bind("127.0.0.1:0"))
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the server runs");
    });
    format!("http://{address}")
}

/// `http://...` to `ws://...`.
pub fn ws_base(base: &str) -> String {
    base.replacen("http://", "ws://", 1)
}

/// An HTTP client whose requests all time out.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("an HTTP client")
}

/// A plain HTTP response, read whole.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl HttpReply {
    /// The value of a response header, if present and printable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Sends a request and reads the whole response.
pub async fn send(request: reqwest::RequestBuilder) -> HttpReply {
    let response = bounded("an HTTP response", request.send())
        .await
        .expect("the HTTP request succeeds");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let headers = response.headers().clone();
    let body = bounded("an HTTP body", response.text())
        .await
        .expect("the body reads");
    HttpReply {
        status,
        content_type,
        body,
        headers,
    }
}

/// `POST <base><path>/negotiate<query>`, the body parsed as JSON.
pub async fn negotiate(base: &str, path: &str, query: &str) -> serde_json::Value {
    let reply = send(http().post(format!("{base}{path}/negotiate{query}"))).await;
    assert_eq!(reply.status, 200, "negotiate status; body {:?}", reply.body);
    serde_json::from_str(&reply.body).expect("negotiate returns JSON")
}

/// The token a v1 negotiate hands out for `/hub`.
pub async fn negotiate_token(base: &str) -> String {
    let body = negotiate(base, "/hub", "?negotiateVersion=1").await;
    body["connectionToken"]
        .as_str()
        .expect("a connection token")
        .to_owned()
}

/// A WebSocket upgrade request the server is expected to refuse, made over plain HTTP so the
/// status and the body are read deterministically.
pub async fn refused_upgrade(base: &str, path_and_query: &str) -> HttpReply {
    let request = http()
        .get(format!("{base}{path_and_query}"))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==");
    let reply = send(request).await;
    assert_ne!(reply.status, 101, "the upgrade was expected to be refused");
    reply
}

/// What the server sent, one WebSocket frame at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    /// A close frame with its code (`None` when the frame had no payload) and reason.
    Close(Option<u16>, String),
    /// The stream ended (or failed) without a close frame.
    Ended,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A SignalR client on one WebSocket. Received text frames are split into records (the JSON
/// messages without their separators); each text frame must end with the separator.
pub struct Client {
    socket: Socket,
    records: VecDeque<String>,
}

impl Client {
    /// Opens a WebSocket to `url` (a `ws://` URL) without sending anything.
    pub async fn connect(url: &str) -> Client {
        let (socket, response) = bounded(
            "the WebSocket upgrade",
            tokio_tungstenite::connect_async(url),
        )
        .await
        .unwrap_or_else(|error| panic!("WebSocket connect to {url} failed: {error}"));
        assert_eq!(response.status().as_u16(), 101);
        Client {
            socket,
            records: VecDeque::new(),
        }
    }

    /// Connects to `<base>/hub<query>` (base is `http://...`), sends the JSON handshake and
    /// checks the response is exactly `{}`.
    pub async fn open(base: &str, query: &str) -> Client {
        Self::open_path(base, "/hub", query).await
    }

    /// As [`open`](Self::open) for another hub path.
    pub async fn open_path(base: &str, path: &str, query: &str) -> Client {
        let mut client = Client::connect(&format!("{}{path}{query}", ws_base(base))).await;
        client.send_text(JSON_HANDSHAKE).await;
        assert_eq!(client.recv().await, "{}", "the handshake response");
        client
    }

    /// Sends one text frame.
    pub async fn send_text(&mut self, text: &str) {
        bounded("a send", self.socket.send(Message::text(text)))
            .await
            .expect("the frame is sent");
    }

    /// Sends one binary frame.
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        bounded("a send", self.socket.send(Message::binary(bytes.to_vec())))
            .await
            .expect("the frame is sent");
    }

    /// Sends JSON hub messages (without separators) in one frame, each followed by `0x1E`.
    pub async fn send_records(&mut self, records: &[&str]) {
        let mut text = String::new();
        for record in records {
            text.push_str(record);
            text.push(RS);
        }
        self.send_text(&text).await;
    }

    /// Sends one invocation expecting a completion.
    pub async fn invoke(&mut self, invocation_id: &str, target: &str, arguments: &str) {
        let record = format!(
            "{{\"type\":1,\"invocationId\":\"{invocation_id}\",\"target\":\"{target}\",\"arguments\":{arguments}}}"
        );
        self.send_records(&[&record]).await;
    }

    /// Sends one non-blocking invocation (no invocation id).
    pub async fn send_invocation(&mut self, target: &str, arguments: &str) {
        let record = format!("{{\"type\":1,\"target\":\"{target}\",\"arguments\":{arguments}}}");
        self.send_records(&[&record]).await;
    }

    /// Invokes and returns the next record, which must be the completion of this invocation.
    pub async fn call(&mut self, invocation_id: &str, target: &str, arguments: &str) -> String {
        self.invoke(invocation_id, target, arguments).await;
        let record = self.recv().await;
        let parsed: serde_json::Value = serde_json::from_str(&record).expect("JSON");
        assert_eq!(parsed["type"], 3, "expected a completion, got {record}");
        assert_eq!(
            parsed["invocationId"], invocation_id,
            "completion of {record}"
        );
        record
    }

    /// Sends a WebSocket close frame with `code`.
    pub async fn close_socket(&mut self, code: u16) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        bounded("a close", self.socket.send(Message::Close(Some(frame))))
            .await
            .expect("the close frame is sent");
    }

    /// The next frame from the server (pings and pongs of the WebSocket layer skipped).
    pub async fn next_frame(&mut self) -> Frame {
        loop {
            let next = bounded("a frame from the server", self.socket.next()).await;
            return match next {
                None | Some(Err(_)) => Frame::Ended,
                Some(Ok(Message::Text(text))) => Frame::Text(text.as_str().to_owned()),
                Some(Ok(Message::Binary(bytes))) => Frame::Binary(bytes.to_vec()),
                Some(Ok(Message::Close(frame))) => match frame {
                    Some(frame) => Frame::Close(
                        Some(u16::from(frame.code)),
                        frame.reason.as_str().to_owned(),
                    ),
                    None => Frame::Close(None, String::new()),
                },
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            };
        }
    }

    /// The next JSON record (without its separator). Panics on a binary frame (JSON travels
    /// in text frames), on a text frame not ending with the separator, and on a close.
    pub async fn recv(&mut self) -> String {
        loop {
            if let Some(record) = self.records.pop_front() {
                return record;
            }
            match self.next_frame().await {
                Frame::Text(text) => self.push_frame(&text),
                other => panic!("expected a JSON record, got {other:?}"),
            }
        }
    }

    fn push_frame(&mut self, text: &str) {
        assert!(
            text.ends_with(RS),
            "a text frame must hold whole records ending with 0x1E: {text:?}"
        );
        self.records
            .extend(text[..text.len() - 1].split(RS).map(str::to_owned));
    }

    /// The next record, parsed.
    pub async fn recv_json(&mut self) -> serde_json::Value {
        let record = self.recv().await;
        serde_json::from_str(&record).unwrap_or_else(|_| panic!("not JSON: {record:?}"))
    }

    /// The next record that is not a Ping (`{"type":6}`).
    pub async fn recv_skipping_pings(&mut self) -> String {
        loop {
            let record = self.recv().await;
            if record != "{\"type\":6}" {
                return record;
            }
        }
    }

    /// Expects no further records, then the close frame; returns its code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        assert!(
            self.records.is_empty(),
            "unexpected records before the close: {:?}",
            self.records
        );
        match self.next_frame().await {
            Frame::Close(code, _) => code,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    /// Expects the next record to be `record` and then the close frame with code 1000.
    pub async fn expect_record_then_close(&mut self, record: &str) {
        assert_eq!(self.recv().await, record);
        assert_eq!(self.expect_close().await, Some(1000), "the close code");
    }
}

/// Waits until `probe` returns true, checking every 20 ms, for at most [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    bounded(what, async {
        loop {
            if probe().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Test authentication: a `user=<id>` query parameter becomes the request's
/// [`signalr_server::HubUser`]. Mount with `axum::middleware::from_fn(user_from_query)`.
pub async fn user_from_query(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let user = request.uri().query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("user="))
            .map(str::to_owned)
    });
    if let Some(user) = user {
        request
            .extensions_mut()
            .insert(signalr_server::HubUser::new(user.clone(), user));
    }
    next.run(request).await
}

/// The `(connectionId, connectionToken)` a v1 negotiate hands out for `path`.
pub async fn negotiate_ids(base: &str, path: &str) -> (String, String) {
    let body = negotiate(base, path, "?negotiateVersion=1").await;
    let field = |name: &str| {
        body[name]
            .as_str()
            .unwrap_or_else(|| panic!("negotiate returns {name}: {body}"))
            .to_owned()
    };
    (field("connectionId"), field("connectionToken"))
}

/// A JSON invocation record expecting a completion, with its separator.
pub fn invocation(invocation_id: &str, target: &str, arguments: &str) -> String {
    format!(
        "{{\"type\":1,\"invocationId\":\"{invocation_id}\",\"target\":\"{target}\",\"arguments\":{arguments}}}{RS}"
    )
}

/// A non-blocking JSON invocation record (no invocation id), with its separator.
pub fn fire_and_forget(target: &str, arguments: &str) -> String {
    format!("{{\"type\":1,\"target\":\"{target}\",\"arguments\":{arguments}}}{RS}")
}

/// A POST of `body` as the JS client sends strings (`text/plain;charset=UTF-8`).
pub async fn post_text(url: &str, body: &str) -> HttpReply {
    let request = http()
        .post(url)
        .header("Content-Type", "text/plain;charset=UTF-8")
        .body(body.to_owned());
    send(request).await
}

/// One long poll: a plain `GET`.
pub async fn poll(url: &str) -> HttpReply {
    send(http().get(url)).await
}

/// The `Accept` value that makes a GET a Server-Sent Events request.
pub const EVENT_STREAM: &str = "text/event-stream";

/// The Ping message as one Server-Sent Event.
pub const PING_EVENT: &str = "data: {\"type\":6}\u{1e}\r\n\r\n";

/// A Server-Sent Events response read event by event (`reqwest` without its `stream` feature:
/// the body is pulled with `chunk()`, every pull bounded by [`WAIT`]).
pub struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
    pub headers: reqwest::header::HeaderMap,
}

impl EventStream {
    /// `GET url` with `Accept: text/event-stream`; expects 200 and the opening comment `:\r\n`
    /// as the first bytes, which it consumes.
    pub async fn open(url: &str) -> EventStream {
        Self::open_with(http().get(url)).await
    }

    /// As [`open`](Self::open) with a prepared request (extra headers).
    pub async fn open_with(request: reqwest::RequestBuilder) -> EventStream {
        let response = bounded(
            "the event stream response",
            request.header("Accept", EVENT_STREAM).send(),
        )
        .await
        .expect("the event stream request succeeds");
        assert_eq!(response.status().as_u16(), 200, "the event stream status");
        let headers = response.headers().clone();
        let mut stream = EventStream {
            response,
            buffer: Vec::new(),
            headers,
        };
        while stream.buffer.len() < 3 {
            assert!(
                stream.read_more().await,
                "the event stream ended before its opening comment: {:?}",
                String::from_utf8_lossy(&stream.buffer)
            );
        }
        assert!(
            stream.buffer.starts_with(b":\r\n"),
            "the event stream must open with the comment line `:\\r\\n`, got {:?}",
            String::from_utf8_lossy(&stream.buffer)
        );
        stream.buffer.drain(..3);
        stream
    }

    /// Appends the next body chunk to the buffer; false once the body ended.
    async fn read_more(&mut self) -> bool {
        let chunk = bounded("an event stream chunk", self.response.chunk())
            .await
            .expect("the event stream reads");
        match chunk {
            Some(chunk) => {
                self.buffer.extend_from_slice(&chunk);
                true
            }
            None => false,
        }
    }

    /// The next event, whole: its `data:` lines and the blank line ending it.
    pub async fn next_event(&mut self) -> String {
        loop {
            if let Some(at) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let event: Vec<u8> = self.buffer.drain(..at + 4).collect();
                return String::from_utf8(event).expect("events are UTF-8");
            }
            assert!(
                self.read_more().await,
                "the event stream ended; unread {:?}",
                String::from_utf8_lossy(&self.buffer)
            );
        }
    }

    /// The next event that is not a Ping.
    pub async fn next_event_skipping_pings(&mut self) -> String {
        loop {
            let event = self.next_event().await;
            if event != PING_EVENT {
                return event;
            }
        }
    }

    /// Expects the response to end with nothing more than pings before the end.
    pub async fn expect_end(&mut self) {
        loop {
            if let Some(rest) = self.buffer.strip_prefix(PING_EVENT.as_bytes()) {
                self.buffer = rest.to_vec();
                continue;
            }
            if !self.read_more().await {
                assert!(
                    self.buffer.is_empty(),
                    "the event stream ended inside an event: {:?}",
                    String::from_utf8_lossy(&self.buffer)
                );
                return;
            }
        }
    }
}

/// `data: <text>` as one event, as the server frames one outgoing batch.
pub fn event(text: &str) -> String {
    format!("data: {text}\r\n\r\n")
}
