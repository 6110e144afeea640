//! Streams in both directions: what a streaming hub method returns ([`IntoHubStream`]) and what
//! a method receives for a client's upload ([`UploadStream`]).

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use signalr_protocol::{Payload, PayloadFormat};
use tokio::sync::mpsc;

use super::handler::UploadBuffer;
use crate::error::HubError;

/// A stream of encoded items, as the dispatcher sends them.
pub(crate) type ItemStream = BoxStream<'static, Result<Payload, HubError>>;

/// The value a streaming hub method's future resolves to: `Result<St, E>` where `St` is a
/// [`Stream`](futures_util::Stream) of serializable items, or of `Result<item, E2>` when producing an item can fail.
///
/// An `Err` from the method itself fails the invocation before any item (`An unexpected error
/// occurred invoking '<method>' on the server.`); an `Err` item ends the stream with `An error
/// occurred on the server while streaming results.`. The `Marker` parameter only tells the two
/// kinds of items apart. The compiler picks it, except for items of type `Result<T, E>` whose
/// `E` is itself serializable: such a stream fits both kinds, so map its items to
/// `Result<T, HubError>` first.
pub trait IntoHubStream<Marker>: Send + 'static {
    /// Turns the value into a stream of items encoded in the connection's format.
    ///
    /// # Errors
    /// The method's error.
    fn into_hub_stream(self, format: PayloadFormat) -> Result<ItemStreamOutput, HubError>;
}

/// A stream of encoded items (not part of the stable API).
#[doc(hidden)]
pub struct ItemStreamOutput(pub(crate) ItemStream);

/// The [`IntoHubStream`] marker of streams whose items are plain values.
pub enum PlainItems {}

/// The [`IntoHubStream`] marker of streams whose items are `Result`s.
pub enum FallibleItems {}

fn encode_item<T: Serialize>(format: PayloadFormat, item: &T) -> Result<Payload, HubError> {
    Payload::encode(format, item)
        .map_err(|error| HubError::typed("SerializationException", error.to_string()))
}

impl<St, E> IntoHubStream<PlainItems> for Result<St, E>
where
    St: Stream + Send + 'static,
    St::Item: Serialize + Send + 'static,
    E: Into<HubError> + Send + 'static,
{
    fn into_hub_stream(self, format: PayloadFormat) -> Result<ItemStreamOutput, HubError> {
        let items = self.map_err(Into::into)?;
        Ok(ItemStreamOutput(
            items.map(move |item| encode_item(format, &item)).boxed(),
        ))
    }
}

impl<St, T, E, F> IntoHubStream<(FallibleItems, T, F)> for Result<St, E>
where
    St: Stream<Item = Result<T, F>> + Send + 'static,
    T: Serialize + Send + 'static,
    F: Into<HubError> + Send + 'static,
    E: Into<HubError> + Send + 'static,
{
    fn into_hub_stream(self, format: PayloadFormat) -> Result<ItemStreamOutput, HubError> {
        let items = self.map_err(Into::into)?;
        Ok(ItemStreamOutput(
            items
                .map(move |item| encode_item(format, &item.map_err(Into::into)?))
                .boxed(),
        ))
    }
}

/// What the dispatcher puts into an upload's buffer.
#[derive(Debug)]
pub(crate) enum UploadItem {
    /// One item, decoded when the method reads it.
    Item(Payload),
    /// The client ended the upload with an error, or the connection closed.
    Failed(HubError),
}

/// A stream the client uploads to a hub method: take it as a parameter
/// (`upload: UploadStream<String>`) and it is bound, in order, to the stream ids of the
/// invocation instead of to its arguments.
///
/// Items are `Ok` as they arrive; the stream ends when the client completes the upload. When the
/// client completes it with an error, the last item is `Err` with that error as a hub error (so
/// returning it with `?` shows the client's text); an item that does not decode as `T`, or the
/// connection closing first, also ends the stream with an `Err`.
///
/// The server buffers [`HubOptions::stream_buffer_capacity`](crate::HubOptions) items per upload;
/// while that buffer is full, the connection reads nothing more, so a method that stops reading
/// slows its client down rather than growing the server's memory.
pub struct UploadStream<T> {
    items: mpsc::Receiver<UploadItem>,
    ended: bool,
    /// Whether a binding failure shows its detail.
    detailed: bool,
    item_type: PhantomData<fn() -> T>,
}

impl<T> UploadStream<T> {
    pub(crate) fn new(buffer: UploadBuffer) -> Self {
        UploadStream {
            items: buffer.items,
            ended: false,
            detailed: buffer.detailed,
            item_type: PhantomData,
        }
    }
}

/// The error of an upload item that does not decode: a hub error, so its text reaches the
/// client as the reference's does, with the decoder's detail when errors are detailed.
fn bind_failure(detail: &dyn fmt::Display, detailed: bool) -> HubError {
    const TEXT: &str = "Failed to bind Stream message.";
    match detailed {
        true => HubError::new(format!("{TEXT} InvalidDataException: {detail}")),
        false => HubError::new(TEXT),
    }
}

impl<T> fmt::Debug for UploadStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadStream")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> Stream for UploadStream<T> {
    type Item = Result<T, HubError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let item = match self.items.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => None,
            Poll::Ready(Some(UploadItem::Item(payload))) => {
                let detailed = self.detailed;
                Some(
                    payload
                        .decode::<T>()
                        .map_err(|error| bind_failure(&error, detailed)),
                )
            }
            Poll::Ready(Some(UploadItem::Failed(error))) => Some(Err(error)),
        };
        if !matches!(item, Some(Ok(_))) {
            self.ended = true;
            self.items.close();
        }
        Poll::Ready(item)
    }
}
