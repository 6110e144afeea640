//! Errors hub code returns, and the texts clients see for them (PROTOCOL.md §8).

use std::fmt;

/// An error returned by a hub method or hook.
///
/// Two kinds, as in the reference: a *hub error* ([`HubError::new`]) is meant for clients, and
/// its message always reaches them; any other error (made from a Rust error with `?`, or with
/// [`HubError::typed`]) shows only a generic text unless detailed errors are enabled.
///
/// Like `anyhow::Error`, this type does not implement `std::error::Error`, so that `?` converts
/// any error into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubError {
    type_name: String,
    message: String,
    for_clients: bool,
}

impl HubError {
    /// An error whose message clients always see (the reference's `HubException`).
    pub fn new(message: impl Into<String>) -> Self {
        HubError {
            type_name: "HubException".into(),
            message: message.into(),
            for_clients: true,
        }
    }

    /// An unexpected error of the named type (for example `InvalidOperationException`), shown to
    /// clients only with detailed errors on.
    pub fn typed(type_name: impl Into<String>, message: impl Into<String>) -> Self {
        HubError {
            type_name: type_name.into(),
            message: message.into(),
            for_clients: false,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error type name shown in detailed texts.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// Whether clients see the message even without detailed errors.
    pub fn is_for_clients(&self) -> bool {
        self.for_clients
    }

    /// `<text>`, followed by ` <Type>: <message>` when the details may be shown.
    pub(crate) fn describe(&self, text: &str, detailed: bool) -> String {
        if detailed || self.for_clients {
            format!("{text} {}: {}", self.type_name, self.message)
        } else {
            text.to_owned()
        }
    }
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name, self.message)
    }
}

impl<E: std::error::Error> From<E> for HubError {
    fn from(error: E) -> Self {
        let full_name = std::any::type_name::<E>();
        let short_name = full_name.rsplit("::").next().unwrap_or(full_name);
        HubError::typed(short_name, error.to_string())
    }
}

/// A message that could not be delivered by the lifetime manager.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The arguments could not be encoded.
    #[error("the arguments could not be encoded: {0}")]
    Encode(String),
    /// A group name was empty.
    #[error("Cannot send to an empty group name.")]
    EmptyGroupName,
    /// The backplane could not carry the message.
    #[error("the backplane failed: {0}")]
    Backplane(String),
}

/// Why a client result ([`SingleClientProxy::invoke`](crate::SingleClientProxy::invoke)) has no
/// value. The texts are the reference's, so code that forwards them shows clients what an
/// ASP.NET Core server would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The client answered with an error; the text is the client's, unchanged (the JavaScript
    /// client sends `Client didn't provide a result.` when no handler returned a value).
    #[error("{0}")]
    Client(String),
    /// No connection of the hub has this id.
    #[error("Connection '{0}' does not exist.")]
    NoConnection(String),
    /// The connection closed before it answered.
    #[error("Connection '{0}' disconnected.")]
    Disconnected(String),
    /// No answer came within the given time.
    #[error("The client did not answer within {0:?}.")]
    TimedOut(std::time::Duration),
    /// Client results are refused where they would deadlock (the reference's text).
    #[error("Client results inside OnConnectedAsync Hub methods are not allowed.")]
    InsideConnectHook,
    /// The arguments could not be encoded.
    #[error("the arguments could not be encoded: {0}")]
    Encode(String),
    /// The client's result does not decode as the requested type.
    #[error("the client's result could not be read: {0}")]
    Decode(String),
    /// The backplane could not carry the invocation or its answer.
    #[error("the backplane failed: {0}")]
    Backplane(String),
}

impl InvokeError {
    /// The error as hub code would return it: a client's own error becomes a hub error (its
    /// text reaches the caller, as the reference's `HubException` does); the others keep their
    /// text behind the reference's exception type names.
    pub fn into_hub_error(self) -> HubError {
        match self {
            InvokeError::Client(text) => HubError::new(text),
            InvokeError::NoConnection(_) | InvokeError::Disconnected(_) => {
                HubError::typed("IOException", self.to_string())
            }
            InvokeError::TimedOut(_) => {
                HubError::typed("OperationCanceledException", self.to_string())
            }
            InvokeError::InsideConnectHook => {
                HubError::typed("InvalidOperationException", self.to_string())
            }
            InvokeError::Encode(_) | InvokeError::Decode(_) | InvokeError::Backplane(_) => {
                HubError::typed("InvalidOperationException", self.to_string())
            }
        }
    }
}

impl From<SendError> for InvokeError {
    fn from(error: SendError) -> Self {
        match error {
            SendError::Encode(detail) => InvokeError::Encode(detail),
            SendError::EmptyGroupName => InvokeError::Encode(error.to_string()),
            SendError::Backplane(detail) => InvokeError::Backplane(detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_errors_are_always_described() {
        let error = HubError::new("Method does not exist.");
        assert_eq!(
            error.describe("Failed to invoke 'X' due to an error on the server.", false),
            "Failed to invoke 'X' due to an error on the server. HubException: Method does not exist."
        );
    }

    #[test]
    fn other_errors_only_with_detailed_errors() {
        let error = HubError::typed("InvalidOperationException", "boom");
        let text = "An unexpected error occurred invoking 'X' on the server.";
        assert_eq!(error.describe(text, false), text);
        assert_eq!(
            error.describe(text, true),
            format!("{text} InvalidOperationException: boom")
        );
    }

    #[test]
    fn rust_errors_convert_with_their_short_type_name() {
        let error: HubError = "x".parse::<i32>().unwrap_err().into();
        assert_eq!(error.type_name(), "ParseIntError");
        assert!(!error.is_for_clients());
    }
}
