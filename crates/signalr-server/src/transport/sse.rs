//! Server-Sent Events for server to client (PROTOCOL.md §3.3); the client sends by POST.
//!
//! The response opens with a comment line and a flush (some browsers fire `onopen` only after
//! data), then each outgoing batch becomes one event: `data: <line>` per line, then a blank
//! line. Batches hold whole messages, so an event does too.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::Outgoing;

/// The event stream response draining `outgoing`. Dropping the body (the client went away)
/// cancels `gone`.
pub(crate) fn response(outgoing: Outgoing, gone: CancellationToken) -> Response {
    let opening =
        futures_util::stream::once(async { Ok::<_, Infallible>(Bytes::from_static(b":\r\n")) });
    let events = futures_util::stream::unfold(
        (outgoing, gone.drop_guard()),
        |(mut outgoing, guard): (Outgoing, DropGuard)| async move {
            let batch = outgoing.next_batch().await?;
            Some((Ok(event(&batch)), (outgoing, guard)))
        },
    );
    let mut response = Body::from_stream(opening.chain(events)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache,no-store"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    response
}

/// One event holding `batch`: a `data:` line per line of it (a trailing `\r` dropped).
fn event(batch: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(batch.len() + 16);
    for line in batch.split(|&byte| byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.put_slice(b"data: ");
        out.put_slice(line);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_data_field() {
        assert_eq!(
            &event(b"{\"type\":6}\x1e")[..],
            b"data: {\"type\":6}\x1e\r\n\r\n"
        );
        assert_eq!(&event(b"a\r\nb")[..], b"data: a\r\ndata: b\r\n\r\n");
    }
}
