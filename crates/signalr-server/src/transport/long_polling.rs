//! Long Polling (PROTOCOL.md §3.4): the client asks with GET for what is queued and sends with
//! POST.
//!
//! The first poll starts the connection and is answered at once. Later polls wait for data:
//! everything queued comes back in one body; after the poll timeout an empty 200 asks the
//! client to poll again. A newer poll supersedes a waiting one (204, the connection lives on),
//! and once the connection is finished a poll gets 204, which tells the client to stop. No
//! pings: every poll is a keep-alive. A connection without a poll for the disconnect timeout
//! is disposed by the endpoint's sweeper, using [`LongPoll::idle_for`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::Outgoing;

/// The polling side of one Long Polling connection.
pub(crate) struct LongPoll {
    outgoing: tokio::sync::Mutex<Outgoing>,
    /// Cancelled once the client knows the connection is over: a poll answered 204 after the
    /// connection finished, or the client ended it with DELETE. Later polls get 204 at once.
    ended: CancellationToken,
    /// Cancels the poll that is waiting, if any.
    waiting: Mutex<Option<CancellationToken>>,
    activity: Mutex<Activity>,
}

struct Activity {
    polls_in_flight: usize,
    last_poll_ended: Instant,
}

/// Counts a poll as in flight until dropped (also when the client goes away mid-poll).
struct InFlight<'a>(&'a LongPoll);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut activity = self.0.activity.lock().expect("activity lock");
        activity.polls_in_flight -= 1;
        activity.last_poll_ended = Instant::now();
    }
}

impl LongPoll {
    pub(crate) fn new(outgoing: Outgoing) -> Self {
        LongPoll {
            outgoing: tokio::sync::Mutex::new(outgoing),
            ended: CancellationToken::new(),
            waiting: Mutex::new(None),
            activity: Mutex::new(Activity {
                polls_in_flight: 0,
                last_poll_ended: Instant::now(),
            }),
        }
    }

    /// The answer to the first poll, which started the connection.
    pub(crate) fn started() -> Response {
        let mut response = no_cache(StatusCode::OK.into_response());
        set_content_type(&mut response, "application/octet-stream");
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        response
    }

    /// Answers a later poll.
    pub(crate) async fn poll(&self, timeout: Duration) -> Response {
        if self.ended.is_cancelled() {
            return no_cache(StatusCode::NO_CONTENT.into_response());
        }
        let this_poll = CancellationToken::new();
        if let Some(previous) = self
            .waiting
            .lock()
            .expect("poll lock")
            .replace(this_poll.clone())
        {
            previous.cancel();
        }
        self.activity.lock().expect("activity lock").polls_in_flight += 1;
        let _in_flight = InFlight(self);

        let mut outgoing = tokio::select! {
            outgoing = self.outgoing.lock() => outgoing,
            _ = this_poll.cancelled() => return no_cache(StatusCode::NO_CONTENT.into_response()),
        };
        let answer = tokio::select! {
            biased;
            _ = this_poll.cancelled() => Answer::Superseded,
            batch = outgoing.wait_queued() => batch.map_or(Answer::Finished, Answer::Data),
            _ = tokio::time::sleep(timeout) => Answer::TimedOut,
        };
        if matches!(answer, Answer::Finished) {
            self.ended.cancel();
        }
        no_cache(answer.into_response())
    }

    /// The client ended the connection: the waiting poll and every later one get 204.
    pub(crate) fn terminate(&self) {
        self.ended.cancel();
        if let Some(waiting) = self.waiting.lock().expect("poll lock").take() {
            waiting.cancel();
        }
    }

    /// Resolves once the client knows the connection is over (see `ended`).
    pub(crate) async fn ended(&self) {
        self.ended.cancelled().await;
    }

    /// How long no poll has been in flight; `None` while one is.
    pub(crate) fn idle_for(&self) -> Option<Duration> {
        let activity = self.activity.lock().expect("activity lock");
        (activity.polls_in_flight == 0).then(|| activity.last_poll_ended.elapsed())
    }
}

enum Answer {
    Data(Bytes),
    TimedOut,
    Superseded,
    Finished,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Answer::Data(bytes) => {
                let mut response = Body::from(bytes).into_response();
                set_content_type(&mut response, "application/octet-stream");
                response
            }
            Answer::TimedOut => {
                let mut response = StatusCode::OK.into_response();
                set_content_type(&mut response, "text/plain");
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
                response
            }
            Answer::Superseded | Answer::Finished => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

fn set_content_type(response: &mut Response, value: &'static str) {
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
}

/// The reference's caching headers for every poll answer.
fn no_cache(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
    );
    response
}
