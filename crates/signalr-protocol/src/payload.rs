//! Values kept in their encoded form until a caller binds them to Rust types.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// The encoding of values inside messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// JSON text.
    Json,
}

/// An encoded value: the arguments array of an invocation, a stream item or a result.
#[derive(Debug, Clone)]
pub enum Payload {
    /// A JSON value, exactly as received or written.
    Json(Box<RawValue>),
}

/// A borrowed view of one encoded value, for example one element of an arguments array.
#[derive(Debug, Clone, Copy)]
pub enum PayloadRef<'a> {
    /// A JSON value.
    Json(&'a RawValue),
}

/// A value that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(String);

impl Payload {
    /// Encodes `value` in `format`.
    ///
    /// # Errors
    /// When the value's `Serialize` implementation fails.
    pub fn encode<T: Serialize + ?Sized>(
        format: PayloadFormat,
        value: &T,
    ) -> Result<Payload, PayloadError> {
        match format {
            PayloadFormat::Json => serde_json::value::to_raw_value(value)
                .map(Payload::Json)
                .map_err(|error| PayloadError(error.to_string())),
        }
    }

    /// An encoded JSON value taken as it is; `None` if `text` is not valid JSON.
    pub fn json(text: &str) -> Option<Payload> {
        RawValue::from_string(text.to_owned())
            .ok()
            .map(Payload::Json)
    }

    /// The format this value is encoded in.
    pub fn format(&self) -> PayloadFormat {
        match self {
            Payload::Json(_) => PayloadFormat::Json,
        }
    }

    /// A borrowed view of the whole value.
    pub fn as_ref(&self) -> PayloadRef<'_> {
        match self {
            Payload::Json(raw) => PayloadRef::Json(raw),
        }
    }

    /// Decodes the value into `T`.
    ///
    /// # Errors
    /// When the value does not fit `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        self.as_ref().decode()
    }

    /// The elements of an encoded array, each still encoded.
    ///
    /// # Errors
    /// When the value is not an array.
    pub fn elements(&self) -> Result<Vec<PayloadRef<'_>>, PayloadError> {
        match self {
            Payload::Json(raw) => serde_json::from_str::<Vec<&RawValue>>(raw.get())
                .map(|items| items.into_iter().map(PayloadRef::Json).collect())
                .map_err(|error| PayloadError(error.to_string())),
        }
    }
}

impl PayloadRef<'_> {
    /// Decodes the value into `T`.
    ///
    /// # Errors
    /// When the value does not fit `T`.
    pub fn decode<T: DeserializeOwned>(self) -> Result<T, PayloadError> {
        match self {
            PayloadRef::Json(raw) => {
                serde_json::from_str(raw.get()).map_err(|error| PayloadError(error.to_string()))
            }
        }
    }

    /// An owned copy of the value.
    pub fn to_owned(self) -> Payload {
        match self {
            PayloadRef::Json(raw) => Payload::Json(raw.to_owned()),
        }
    }
}

/// Two payloads are equal when their encoded bytes are.
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Payload::Json(a), Payload::Json(b)) => a.get() == b.get(),
        }
    }
}
