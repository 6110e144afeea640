//! Wire formats of ASP.NET Core SignalR, with no async runtime and no I/O.
//!
//! This crate holds what the bytes on the wire mean:
//!
//! | module | what it covers | protocol reference |
//! |---|---|---|
//! | [`message`] | the nine hub messages, headers, stream ids | PROTOCOL.md §5 |
//! | [`payload`] | argument, item and result values kept in their encoded form | §5, §6 |
//! | [`json`] | the `json` hub protocol with record-separator framing | §6 |
//! | [`messagepack`] | the `messagepack` hub protocol with VarInt length prefixes | §7 |
//! | [`handshake`] | the handshake request and response | §4 |
//! | [`negotiate`] | the negotiate response, versions 0 and 1 | §2 |
//! | [`values`] | byte arrays and timestamps as each protocol encodes them | §6, §7 |
//!
//! A server or client reads bytes into a buffer and asks a [`HubProtocol`] to
//! [`parse`](HubProtocol::parse) the front of it: the buffer may hold half a message or many, and
//! JSON properties may come in any order. Values (`arguments`, `item`, `result`) stay encoded
//! until the caller knows the Rust types to bind them to, so nothing is decoded twice.
//!
//! # Features
//! | feature | default | what it adds |
//! |---|---|---|
//! | `json` | yes | [`json::JsonHubProtocol`] |
//! | `messagepack` | yes | [`messagepack::MessagePackHubProtocol`] |
//!
//! Display texts of errors are not an API, except where the wire protocol fixes them (those are
//! named on the items that produce them).
#![warn(missing_docs)]

pub mod handshake;
#[cfg(feature = "json")]
pub mod json;
pub mod message;
#[cfg(feature = "messagepack")]
pub mod messagepack;
pub mod negotiate;
pub mod payload;
pub mod values;

pub use message::{
    Ack, CancelInvocation, Close, Completion, CompletionOutcome, Headers, HubMessage, Invocation,
    Sequence, StreamInvocation, StreamItem,
};
pub use payload::{Payload, PayloadError, PayloadFormat, PayloadRef};

/// The record separator (`0x1E`) that ends every JSON hub message and every handshake message.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// How a transport must carry a protocol's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferFormat {
    /// UTF-8 text (WebSocket text frames, Server-Sent Events).
    Text,
    /// Arbitrary bytes (WebSocket binary frames, HTTP bodies).
    Binary,
}

impl TransferFormat {
    /// The name used in negotiate responses and error texts: `Text` or `Binary`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferFormat::Text => "Text",
            TransferFormat::Binary => "Binary",
        }
    }
}

/// The outcome of asking a protocol to parse the front of a buffer.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// The buffer does not yet hold a whole message; read more and ask again.
    Incomplete,
    /// One message, and how many bytes of the buffer it took.
    Message(HubMessage, usize),
    /// A whole message of a type this crate does not know; skip that many bytes.
    ///
    /// The protocol asks both sides to ignore unknown message types for forward compatibility.
    Ignored(usize),
}

/// A message that could not be parsed or written.
///
/// The Display texts of [`ProtocolError::MissingProperty`] and
/// [`ProtocolError::MutuallyExclusive`] are the reference server's texts; a server puts them
/// after `InvalidDataException: ` in a Close error when detailed errors are on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// A required property is absent.
    #[error("Missing required property '{0}'.")]
    MissingProperty(&'static str),
    /// A Completion carries both `result` and `error`.
    #[error("The 'error' and 'result' properties are mutually exclusive.")]
    MutuallyExclusive,
    /// A property has the wrong shape (for example `arguments` that is not an array).
    #[error("{0}")]
    InvalidProperty(String),
    /// The bytes are not well-formed for this protocol.
    #[error("{0}")]
    Malformed(String),
    /// A message to write carries a value encoded for another protocol.
    #[error("a {found:?} payload cannot be written by a {expected:?} protocol")]
    PayloadFormat {
        /// The format the protocol writes.
        expected: PayloadFormat,
        /// The format the value was encoded in.
        found: PayloadFormat,
    },
}

/// One hub protocol: a name, a version, how it frames messages and how it encodes values.
///
/// Implementations are stateless, so one instance serves every connection that chose it.
pub trait HubProtocol: Send + Sync + 'static {
    /// The name a client asks for in the handshake (`json`, `messagepack`).
    fn name(&self) -> &'static str;

    /// The highest handshake version this protocol accepts.
    fn version(&self) -> u32;

    /// How transports must carry this protocol's bytes.
    fn transfer_format(&self) -> TransferFormat;

    /// The encoding of values inside messages of this protocol.
    fn payload_format(&self) -> PayloadFormat;

    /// Parses the first message of `input`.
    ///
    /// # Errors
    /// A message that is whole but invalid; the connection cannot go on after it.
    fn parse(&self, input: &[u8]) -> Result<Parsed, ProtocolError>;

    /// Appends `message`, framed, to `out`.
    ///
    /// # Errors
    /// [`ProtocolError::PayloadFormat`] when a value in the message was encoded for another
    /// protocol; `out` is then left as it was.
    fn write(&self, message: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError>;

    /// `message`, framed, as bytes of its own.
    ///
    /// # Errors
    /// As [`write`](Self::write).
    fn to_bytes(&self, message: &HubMessage) -> Result<bytes::Bytes, ProtocolError> {
        let mut out = Vec::new();
        self.write(message, &mut out)?;
        Ok(out.into())
    }
}
