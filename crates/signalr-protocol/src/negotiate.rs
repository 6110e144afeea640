//! The negotiate response (PROTOCOL.md §2): which transports a connection may use, and with
//! version 1 a secret connection token beside the public connection id.

use serde::Serialize;

use crate::TransferFormat;

/// The three HTTP transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportType {
    /// WebSockets.
    WebSockets,
    /// Server-Sent Events for server to client, HTTP POST for client to server.
    ServerSentEvents,
    /// Long polling.
    LongPolling,
}

impl TransportType {
    /// The name used in negotiate responses and error texts.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportType::WebSockets => "WebSockets",
            TransportType::ServerSentEvents => "ServerSentEvents",
            TransportType::LongPolling => "LongPolling",
        }
    }

    /// The transfer formats this transport can carry.
    pub fn transfer_formats(self) -> &'static [TransferFormat] {
        match self {
            TransportType::ServerSentEvents => &[TransferFormat::Text],
            _ => &[TransferFormat::Text, TransferFormat::Binary],
        }
    }
}

/// `value` percent-encoded for a URL query (everything but ASCII letters, digits and
/// `-_.~`), as a client puts the connection token after `id=`.
pub fn encode_query_value(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// One entry of `availableTransports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailableTransport {
    /// The transport's name.
    pub transport: &'static str,
    /// `Text` and/or `Binary`.
    pub transfer_formats: Vec<&'static str>,
}

impl From<TransportType> for AvailableTransport {
    fn from(transport: TransportType) -> Self {
        AvailableTransport {
            transport: transport.as_str(),
            transfer_formats: transport
                .transfer_formats()
                .iter()
                .map(|f| f.as_str())
                .collect(),
        }
    }
}

/// A successful negotiate response; properties serialize in the reference server's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NegotiateResponse {
    /// 0 or 1.
    pub negotiate_version: u32,
    /// The public connection id (with version 0 also the `id` the client connects with).
    pub connection_id: String,
    /// The secret `id` the client connects with (version 1 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_token: Option<String>,
    /// Present (and true) only when stateful reconnect was granted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub use_stateful_reconnect: bool,
    /// The enabled transports, in the order clients should try them.
    pub available_transports: Vec<AvailableTransport>,
}

/// A negotiate failure, sent with HTTP 200 as `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NegotiateError {
    /// The reference server's text.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_transports() -> Vec<AvailableTransport> {
        [
            TransportType::WebSockets,
            TransportType::ServerSentEvents,
            TransportType::LongPolling,
        ]
        .into_iter()
        .map(AvailableTransport::from)
        .collect()
    }

    #[test]
    fn version_one_has_a_token() {
        let response = NegotiateResponse {
            negotiate_version: 1,
            connection_id: "id".into(),
            connection_token: Some("token".into()),
            use_stateful_reconnect: false,
            available_transports: all_transports(),
        };
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"negotiateVersion":1,"connectionId":"id","connectionToken":"token","availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]},{"transport":"ServerSentEvents","transferFormats":["Text"]},{"transport":"LongPolling","transferFormats":["Text","Binary"]}]}"#
        );
    }

    #[test]
    fn version_zero_has_no_token() {
        let response = NegotiateResponse {
            negotiate_version: 0,
            connection_id: "id".into(),
            connection_token: None,
            use_stateful_reconnect: false,
            available_transports: vec![TransportType::WebSockets.into()],
        };
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"negotiateVersion":0,"connectionId":"id","availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]}"#
        );
    }

    #[test]
    fn error_form() {
        let error = NegotiateError { error: "x".into() };
        assert_eq!(serde_json::to_string(&error).unwrap(), r#"{"error":"x"}"#);
    }
}
