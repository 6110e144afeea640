//! What can go wrong talking to a hub.

/// An error of a hub connection or of one call on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The hub answered the call with an error; the text is the server's (for example
    /// `An unexpected error occurred invoking 'Add' on the server.`).
    #[error("{0}")]
    Hub(String),
    /// Negotiate failed: an HTTP status with its body, an `error` answer, or an unusable
    /// response.
    #[error("negotiate failed: {0}")]
    Negotiate(String),
    /// The transport could not connect or broke.
    #[error("transport error: {0}")]
    Transport(String),
    /// The server refused the handshake with this text.
    #[error("the server refused the handshake: {0}")]
    Handshake(String),
    /// The connection is not started, or has closed (with the server's error text, if any).
    #[error("the connection is closed{}", .0.as_ref().map(|error| format!(": {error}")).unwrap_or_default())]
    Closed(Option<String>),
    /// Arguments could not be encoded, or a value did not decode as the requested type.
    #[error("{0}")]
    Serialization(String),
    /// The server sent something this client cannot read.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// A transport error with `error`'s causes, so that a failure deep in the stack (a
    /// certificate the client does not trust, a refused TCP connection) is in the text.
    pub(crate) fn transport<E: std::error::Error + 'static>(error: E) -> Self {
        ClientError::Transport(with_causes(&error))
    }
}

/// `error`'s text followed by each cause's text not already in it, joined with `: `.
pub(crate) fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}
