//! The hub message model shared by every hub protocol (PROTOCOL.md §5).

use std::collections::BTreeMap;

use crate::payload::Payload;

/// String headers that messages of types 1 to 5 may carry (for example `traceparent`).
pub type Headers = BTreeMap<String, String>;

/// One hub message, in either direction.
#[derive(Debug, Clone, PartialEq)]
pub enum HubMessage {
    /// Type 1: call a method; with an id the callee answers with a [`Completion`].
    Invocation(Invocation),
    /// Type 2: one item of a stream, in either direction.
    StreamItem(StreamItem),
    /// Type 3: the end of an invocation or of a stream.
    Completion(Completion),
    /// Type 4: call a streaming method (client to server only).
    StreamInvocation(StreamInvocation),
    /// Type 5: stop a stream the client asked for (client to server only).
    CancelInvocation(CancelInvocation),
    /// Type 6: keep-alive.
    Ping,
    /// Type 7: the sender is closing the connection.
    Close(Close),
    /// Type 8: stateful reconnect acknowledgement.
    Ack(Ack),
    /// Type 9: stateful reconnect resume point.
    Sequence(Sequence),
}

impl HubMessage {
    /// The numeric `type` of this message on the wire.
    pub fn type_id(&self) -> u8 {
        match self {
            HubMessage::Invocation(_) => 1,
            HubMessage::StreamItem(_) => 2,
            HubMessage::Completion(_) => 3,
            HubMessage::StreamInvocation(_) => 4,
            HubMessage::CancelInvocation(_) => 5,
            HubMessage::Ping => 6,
            HubMessage::Close(_) => 7,
            HubMessage::Ack(_) => 8,
            HubMessage::Sequence(_) => 9,
        }
    }
}

/// A method call. Without an `invocation_id` it is non-blocking: the callee sends nothing back.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// Message headers.
    pub headers: Headers,
    /// The id the Completion will carry; `None` for a non-blocking call.
    pub invocation_id: Option<String>,
    /// The method name.
    pub target: String,
    /// The arguments, as one encoded array.
    pub arguments: Payload,
    /// Ids of the streams the caller will upload, bound to the method's stream parameters in
    /// order.
    pub stream_ids: Vec<String>,
}

/// A call of a streaming method: the answer is StreamItems and then a Completion.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInvocation {
    /// Message headers.
    pub headers: Headers,
    /// The id every StreamItem and the Completion will carry.
    pub invocation_id: String,
    /// The method name.
    pub target: String,
    /// The arguments, as one encoded array.
    pub arguments: Payload,
    /// Ids of the streams the caller will upload.
    pub stream_ids: Vec<String>,
}

/// One item of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamItem {
    /// Message headers.
    pub headers: Headers,
    /// The stream's invocation id (or upload stream id).
    pub invocation_id: String,
    /// The item (may be an encoded null).
    pub item: Payload,
}

/// How an invocation or a stream ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionOutcome {
    /// Ended without a value (a void method, or the end of a stream).
    Void,
    /// Ended with a value.
    Result(Payload),
    /// Failed with this text.
    Error(String),
}

/// The end of an invocation or of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Message headers.
    pub headers: Headers,
    /// The invocation or stream this completes.
    pub invocation_id: String,
    /// Void, a value, or an error.
    pub outcome: CompletionOutcome,
}

/// A request to stop a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelInvocation {
    /// Message headers.
    pub headers: Headers,
    /// The stream to stop.
    pub invocation_id: String,
}

/// The sender is closing the connection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Close {
    /// Why, when the connection ends with an error.
    pub error: Option<String>,
    /// Whether the client may reconnect automatically.
    pub allow_reconnect: bool,
}

/// The highest trackable message id received (stateful reconnect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The acknowledged sequence id.
    pub sequence_id: u64,
}

/// The id of the next trackable message the sender will replay (stateful reconnect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequence {
    /// The sequence id.
    pub sequence_id: u64,
}
