//! The three transports (PROTOCOL.md §3), each reduced to a stream of received byte chunks
//! and a sender of outgoing ones.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, BoxStream, SplitSink};
use futures_util::{SinkExt, StreamExt};
use signalr_protocol::negotiate::{TransportType, encode_query_value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::error::ClientError;

/// What the server sends, in chunks of whole or partial messages; the stream ends when the
/// server ends the connection.
pub(crate) type Inbound = BoxStream<'static, Result<Bytes, ClientError>>;

/// How long one long poll may take before the client gives up on it (the server answers
/// within its poll timeout, 90 s by default).
const POLL_TIMEOUT: Duration = Duration::from_secs(120);

/// Where and how to reach the server.
#[derive(Clone)]
pub(crate) struct Target {
    /// The hub URL (`http(s)://` or `ws(s)://`).
    pub(crate) url: String,
    /// The connection token from negotiate (`None` when negotiation was skipped).
    pub(crate) id: Option<String>,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) access_token: Option<String>,
    /// Whether messages are binary (MessagePack).
    pub(crate) binary: bool,
    pub(crate) network: Network,
}

/// How the client's connections reach the server.
#[derive(Clone)]
pub(crate) struct Network {
    /// The local address connections come from (`None`: the system's choice).
    pub(crate) local_address: Option<std::net::IpAddr>,
    /// TLS settings for `https://` and `wss://`.
    pub(crate) tls: std::sync::Arc<rustls::ClientConfig>,
}

impl Target {
    /// The URL with `id` in its query.
    fn url_with_id(&self, url: &str) -> String {
        match &self.id {
            None => url.to_owned(),
            Some(id) => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}id={}", encode_query_value(id))
            }
        }
    }

    fn http_url(&self) -> String {
        let url = if let Some(rest) = self.url.strip_prefix("ws://") {
            format!("http://{rest}")
        } else if let Some(rest) = self.url.strip_prefix("wss://") {
            format!("https://{rest}")
        } else {
            self.url.clone()
        };
        self.url_with_id(&url)
    }

    fn websocket_url(&self) -> String {
        let url = if let Some(rest) = self.url.strip_prefix("http://") {
            format!("ws://{rest}")
        } else if let Some(rest) = self.url.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            self.url.clone()
        };
        self.url_with_id(&url)
    }

    fn request(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        url: &str,
    ) -> reqwest::RequestBuilder {
        let request = http.request(method, url).headers(self.headers.clone());
        match &self.access_token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The sending half of an open transport.
pub(crate) enum Outbound {
    WebSocket {
        sink: SplitSink<Socket, Message>,
        binary: bool,
    },
    /// Server-Sent Events and Long Polling send with HTTP POST.
    Http {
        http: reqwest::Client,
        target: Target,
        long_polling: bool,
    },
}

impl Outbound {
    /// Sends one chunk of framed messages.
    pub(crate) async fn send(&mut self, bytes: Bytes) -> Result<(), ClientError> {
        match self {
            Outbound::WebSocket { sink, binary } => {
                let message = match binary {
                    true => Message::binary(bytes),
                    false => Message::text(String::from_utf8_lossy(&bytes).into_owned()),
                };
                sink.send(message).await.map_err(ClientError::transport)
            }
            Outbound::Http { http, target, .. } => {
                let content_type = match target.binary {
                    true => "application/octet-stream",
                    false => "text/plain;charset=UTF-8",
                };
                let response = target
                    .request(http, reqwest::Method::POST, &target.http_url())
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(bytes)
                    .send()
                    .await
                    .map_err(ClientError::transport)?;
                match response.status() {
                    status if status.is_success() => Ok(()),
                    status => Err(ClientError::Transport(format!("POST answered {status}"))),
                }
            }
        }
    }

    /// Ends the transport: a WebSocket close, or a DELETE for Long Polling.
    pub(crate) async fn close(&mut self) {
        match self {
            Outbound::WebSocket { sink, .. } => {
                let _ = sink.close().await;
            }
            Outbound::Http {
                http,
                target,
                long_polling: true,
            } => {
                let _ = target
                    .request(http, reqwest::Method::DELETE, &target.http_url())
                    .send()
                    .await;
            }
            Outbound::Http { .. } => {}
        }
    }

    /// Whether keep-alive pings are sent (not on Long Polling, as the official clients do).
    pub(crate) fn pings(&self) -> bool {
        !matches!(
            self,
            Outbound::Http {
                long_polling: true,
                ..
            }
        )
    }
}

/// Opens `transport` to `target`.
pub(crate) async fn open(
    transport: TransportType,
    target: &Target,
) -> Result<(Inbound, Outbound), ClientError> {
    match transport {
        TransportType::WebSockets => open_websocket(target).await,
        TransportType::ServerSentEvents => open_event_stream(target).await,
        TransportType::LongPolling => open_long_polling(target).await,
    }
}

async fn open_websocket(target: &Target) -> Result<(Inbound, Outbound), ClientError> {
    let mut request = target
        .websocket_url()
        .into_client_request()
        .map_err(ClientError::transport)?;
    for (name, value) in &target.headers {
        request.headers_mut().append(name.clone(), value.clone());
    }
    if let Some(token) = &target.access_token {
        let value = format!("Bearer {token}").parse().map_err(|_| {
            ClientError::Transport("the access token is not a valid header value".into())
        })?;
        request.headers_mut().insert("authorization", value);
    }
    let uri = request.uri();
    let host = uri
        .host()
        .ok_or_else(|| ClientError::Transport("the URL has no host".into()))?;
    let secure = uri.scheme_str() == Some("wss");
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let remote = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(ClientError::transport)?
        .next()
        .ok_or_else(|| ClientError::Transport(format!("{host} has no address")))?;
    let socket = match remote {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .map_err(ClientError::transport)?;
    if let Some(local) = target.network.local_address {
        socket
            .bind(std::net::SocketAddr::new(local, 0))
            .map_err(ClientError::transport)?;
    }
    let stream = socket
        .connect(remote)
        .await
        .map_err(ClientError::transport)?;
    let _ = stream.set_nodelay(true);
    // Small buffers: tungstenite's defaults allocate (and clear) 128 KiB per read.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    // `wss://` gets TLS from the connector, `ws://` stays plain.
    let connector = Connector::Rustls(target.network.tls.clone());
    let (socket, _) = tokio_tungstenite::client_async_tls_with_config(
        request,
        stream,
        Some(config),
        Some(connector),
    )
    .await
    .map_err(ClientError::transport)?;
    let (sink, source) = socket.split();
    let inbound = source
        .take_while(|frame| std::future::ready(!matches!(frame, Ok(Message::Close(_)))))
        .filter_map(|frame| {
            std::future::ready(match frame {
                Ok(Message::Text(text)) => Some(Ok(Bytes::copy_from_slice(text.as_bytes()))),
                Ok(Message::Binary(bytes)) => Some(Ok(bytes)),
                Ok(_) => None,
                Err(error) => Some(Err(ClientError::transport(error))),
            })
        })
        .boxed();
    let outbound = Outbound::WebSocket {
        sink,
        binary: target.binary,
    };
    Ok((inbound, outbound))
}

/// An HTTP client whose connections come from the network's local address and use its TLS
/// settings.
pub(crate) fn http_client(network: &Network) -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .local_address(network.local_address)
        .use_preconfigured_tls(rustls::ClientConfig::clone(&network.tls))
        .build()
        .map_err(ClientError::transport)
}

async fn open_event_stream(target: &Target) -> Result<(Inbound, Outbound), ClientError> {
    let http = http_client(&target.network)?;
    let response = target
        .request(&http, reqwest::Method::GET, &target.http_url())
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(ClientError::transport)?;
    if !response.status().is_success() {
        return Err(ClientError::Transport(format!(
            "the event stream answered {}",
            response.status()
        )));
    }
    let body = response
        .bytes_stream()
        .map(|chunk| chunk.map_err(ClientError::transport));
    let inbound = stream::unfold(
        (body.boxed(), BytesMut::new()),
        |(mut body, mut buffer)| async move {
            loop {
                if let Some(event) = take_event(&mut buffer) {
                    return Some((Ok(event), (body, buffer)));
                }
                match body.next().await {
                    Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                    Some(Err(error)) => return Some((Err(error), (body, buffer))),
                    None => return None,
                }
            }
        },
    )
    .filter(|event| std::future::ready(!matches!(event, Ok(data) if data.is_empty())))
    .boxed();
    let outbound = Outbound::Http {
        http,
        target: target.clone(),
        long_polling: false,
    };
    Ok((inbound, outbound))
}

/// Takes one whole event from the buffer and returns its data (the `data:` lines joined with
/// `\n`); comments and other fields give empty data.
fn take_event(buffer: &mut BytesMut) -> Option<Bytes> {
    let text = &buffer[..];
    let (end, separator) = [&b"\r\n\r\n"[..], b"\n\n"]
        .iter()
        .filter_map(|separator| {
            text.windows(separator.len())
                .position(|window| window == *separator)
                .map(|end| (end, separator.len()))
        })
        .min()?;
    let event = buffer.split_to(end + separator);
    let mut data = Vec::new();
    for line in event[..end].split(|&byte| byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(value) = line.strip_prefix(b"data:") {
            if !data.is_empty() {
                data.push(b'\n');
            }
            data.extend_from_slice(value.strip_prefix(b" ").unwrap_or(value));
        }
    }
    Some(Bytes::from(data))
}

async fn open_long_polling(target: &Target) -> Result<(Inbound, Outbound), ClientError> {
    let http = http_client(&target.network)?;
    // The first poll answers at once; it proves the connection exists.
    poll(&http, target).await?;
    let inbound = stream::unfold(
        (http.clone(), target.clone()),
        |(http, target)| async move {
            loop {
                match poll(&http, &target).await {
                    Ok(Some(body)) if body.is_empty() => continue,
                    Ok(Some(body)) => return Some((Ok(body), (http, target))),
                    Ok(None) => return None,
                    Err(error) => return Some((Err(error), (http, target))),
                }
            }
        },
    )
    .boxed();
    let outbound = Outbound::Http {
        http,
        target: target.clone(),
        long_polling: true,
    };
    Ok((inbound, outbound))
}

/// One long poll: `Some(body)` on 200, `None` when the server ended the connection (204).
async fn poll(http: &reqwest::Client, target: &Target) -> Result<Option<Bytes>, ClientError> {
    let response = target
        .request(http, reqwest::Method::GET, &target.http_url())
        .timeout(POLL_TIMEOUT)
        .send()
        .await
        .map_err(ClientError::transport)?;
    match response.status() {
        reqwest::StatusCode::NO_CONTENT => Ok(None),
        status if status.is_success() => response
            .bytes()
            .await
            .map(Some)
            .map_err(ClientError::transport),
        status => Err(ClientError::Transport(format!(
            "the poll answered {status}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, id: Option<&str>) -> Target {
        Target {
            url: url.to_owned(),
            id: id.map(str::to_owned),
            headers: Default::default(),
            access_token: None,
            binary: false,
            network: Network {
                local_address: None,
                tls: crate::tls::client_config(&[]).unwrap(),
            },
        }
    }

    #[test]
    fn urls_per_transport() {
        let with_id = target("http://h:1/hub?a=1", Some("x y+/"));
        assert_eq!(with_id.websocket_url(), "ws://h:1/hub?a=1&id=x%20y%2B%2F");
        assert_eq!(with_id.http_url(), "http://h:1/hub?a=1&id=x%20y%2B%2F");
        assert_eq!(target("wss://h/hub", None).http_url(), "https://h/hub");
    }

    #[test]
    fn events_are_split_and_their_data_joined() {
        let mut buffer =
            BytesMut::from(&b":\r\n\r\ndata: a\x1e\r\n\r\ndata: b\ndata: c\n\ndata: par"[..]);
        assert_eq!(take_event(&mut buffer).unwrap(), Bytes::new());
        assert_eq!(
            take_event(&mut buffer).unwrap(),
            Bytes::from_static(b"a\x1e")
        );
        assert_eq!(
            take_event(&mut buffer).unwrap(),
            Bytes::from_static(b"b\nc")
        );
        assert_eq!(take_event(&mut buffer), None);
        assert_eq!(&buffer[..], b"data: par");
    }
}
