//! The handshake (PROTOCOL.md §4): always JSON text ended by `0x1E`, whatever hub protocol the
//! client asks for.

use serde::Deserialize;

use crate::RECORD_SEPARATOR;

/// The first message of a connection: which hub protocol and version the client wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRequest {
    /// The hub protocol name (`json`, `messagepack`), matched case-insensitively by servers.
    pub protocol: String,
    /// The protocol version (clients send 0, 1 or 2).
    pub version: u32,
}

/// A handshake request that could not be read.
///
/// Display texts are the reference server's detail texts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// A required property is absent.
    #[error("Missing required property '{0}'. Message content: {1}")]
    MissingProperty(&'static str, String),
    /// The text is not a JSON object of the expected shape.
    #[error("{0}")]
    Malformed(String),
}

/// The result of reading the front of a buffer as a handshake request.
#[derive(Debug, PartialEq, Eq)]
pub enum ParsedHandshake {
    /// No record separator yet.
    Incomplete,
    /// The request, and how many bytes it took (what follows are hub messages).
    Request(HandshakeRequest, usize),
}

#[derive(Deserialize)]
struct RawRequest {
    protocol: Option<String>,
    version: Option<u32>,
}

impl HandshakeRequest {
    /// Parses the first record of `input`.
    ///
    /// # Errors
    /// A record that is not a JSON object with a string `protocol` and an integer `version`.
    pub fn parse(input: &[u8]) -> Result<ParsedHandshake, HandshakeError> {
        let Some(end) = input.iter().position(|&byte| byte == RECORD_SEPARATOR) else {
            return Ok(ParsedHandshake::Incomplete);
        };
        let text = &input[..end];
        let raw: RawRequest = serde_json::from_slice(text)
            .map_err(|error| HandshakeError::Malformed(error.to_string()))?;
        let content = || String::from_utf8_lossy(text).into_owned();
        let protocol = raw
            .protocol
            .ok_or_else(|| HandshakeError::MissingProperty("protocol", content()))?;
        let version = raw
            .version
            .ok_or_else(|| HandshakeError::MissingProperty("version", content()))?;
        Ok(ParsedHandshake::Request(
            HandshakeRequest { protocol, version },
            end + 1,
        ))
    }

    /// The request as a client writes it, separator included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(&serde_json::json!({
            "protocol": self.protocol,
            "version": self.version,
        }))
        .expect("a string and a number serialize");
        out.push(RECORD_SEPARATOR);
        out
    }
}

/// The server's answer to a handshake request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeResponse {
    /// Accepted: exactly `{}` then the separator.
    Ok,
    /// Refused with this text; the server then ends the connection.
    Error(String),
}

impl HandshakeResponse {
    /// The response bytes, separator included. Never contains `type`, which clients would take
    /// for a hub message.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = match self {
            HandshakeResponse::Ok => b"{}".to_vec(),
            HandshakeResponse::Error(error) => {
                serde_json::to_vec(&serde_json::json!({ "error": error }))
                    .expect("a string serializes")
            }
        };
        out.push(RECORD_SEPARATOR);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_parses_and_leaves_what_follows() {
        let input = b"{\"protocol\":\"json\",\"version\":1}\x1e{\"type\":6}\x1e";
        let parsed = HandshakeRequest::parse(input).unwrap();
        assert_eq!(
            parsed,
            ParsedHandshake::Request(
                HandshakeRequest {
                    protocol: "json".into(),
                    version: 1
                },
                32
            )
        );
        assert_eq!(&input[32..], b"{\"type\":6}\x1e");
    }

    #[test]
    fn request_without_separator_is_incomplete() {
        let parsed = HandshakeRequest::parse(b"{\"protocol\":\"json\"").unwrap();
        assert_eq!(parsed, ParsedHandshake::Incomplete);
    }

    #[test]
    fn version_zero_and_unknown_properties_are_accepted() {
        let input = b"{\"version\":0,\"extra\":true,\"protocol\":\"json\"}\x1e";
        let ParsedHandshake::Request(request, _) = HandshakeRequest::parse(input).unwrap() else {
            panic!()
        };
        assert_eq!(request.version, 0);
    }

    #[test]
    fn missing_protocol_is_named_with_the_content() {
        let error = HandshakeRequest::parse(b"{\"version\":1}\x1e").unwrap_err();
        assert_eq!(
            error.to_string(),
            "Missing required property 'protocol'. Message content: {\"version\":1}"
        );
    }

    #[test]
    fn request_written_by_a_client() {
        let request = HandshakeRequest {
            protocol: "json".into(),
            version: 1,
        };
        assert_eq!(
            request.to_bytes(),
            b"{\"protocol\":\"json\",\"version\":1}\x1e"
        );
    }

    #[test]
    fn responses_are_exact() {
        assert_eq!(HandshakeResponse::Ok.to_bytes(), b"{}\x1e");
        assert_eq!(
            HandshakeResponse::Error("The protocol 'x' is not supported.".into()).to_bytes(),
            b"{\"error\":\"The protocol 'x' is not supported.\"}\x1e"
        );
    }
}
