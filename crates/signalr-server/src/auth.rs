//! Bearer tokens: where SignalR clients put them, and a layer that turns a valid one into the
//! request's [`HubUser`].
//!
//! Clients send `Authorization: Bearer <token>`, except where a browser cannot set headers:
//! WebSocket upgrades and Server-Sent Events requests then carry the token in the
//! `access_token` query parameter (PROTOCOL.md §3.2, §3.3). The token is read once per request;
//! a connection keeps the user of the request that opened it. Neither the token nor the query
//! string is ever logged by this crate.
//!
//! ```no_run
//! use axum::Router;
//! use signalr_server::{BearerAuthLayer, HubUser};
//!
//! let app: Router = Router::new().layer(BearerAuthLayer::new(|token: &str| {
//!     (token == "let-me-in").then(|| HubUser::new("user-1", "Ann"))
//! }));
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{Request, header};
use tower::{Layer, Service};

use crate::hub::context::query_value;
use crate::user::HubUser;

/// The bearer token of a request: the `Authorization` header, or for WebSocket upgrades and
/// event-stream requests the `access_token` query parameter.
pub fn bearer_token<B>(request: &Request<B>) -> Option<String> {
    let headers = request.headers();
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| token.trim().to_owned());
    if from_header.is_some() {
        return from_header;
    }
    let is_upgrade = headers
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"));
    let is_event_stream = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("text/event-stream"));
    if !(is_upgrade || is_event_stream) {
        return None;
    }
    query_value(request.uri().query()?, "access_token")
}

/// A layer that validates the request's bearer token (see [`bearer_token`]) and, when the
/// validator accepts it, inserts the [`HubUser`] it returns into the request's extensions.
/// Requests without a valid token pass on without a user; hubs that require one refuse them.
pub struct BearerAuthLayer<F> {
    validate: Arc<F>,
}

impl<F> Clone for BearerAuthLayer<F> {
    fn clone(&self) -> Self {
        BearerAuthLayer {
            validate: self.validate.clone(),
        }
    }
}

impl<F: Fn(&str) -> Option<HubUser>> BearerAuthLayer<F> {
    /// Validates tokens with `validate`.
    pub fn new(validate: F) -> Self {
        BearerAuthLayer {
            validate: Arc::new(validate),
        }
    }
}

impl<S, F> Layer<S> for BearerAuthLayer<F> {
    type Service = BearerAuth<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            validate: self.validate.clone(),
        }
    }
}

/// The service made by [`BearerAuthLayer`].
pub struct BearerAuth<S, F> {
    inner: S,
    validate: Arc<F>,
}

impl<S: Clone, F> Clone for BearerAuth<S, F> {
    fn clone(&self) -> Self {
        BearerAuth {
            inner: self.inner.clone(),
            validate: self.validate.clone(),
        }
    }
}

impl<S, F, B> Service<Request<B>> for BearerAuth<S, F>
where
    S: Service<Request<B>>,
    F: Fn(&str) -> Option<HubUser>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let user = bearer_token(&request).and_then(|token| (self.validate)(&token));
        if let Some(user) = user {
            request.extensions_mut().insert(user);
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn the_header_wins() {
        let request = request(
            "/hub?access_token=query",
            &[("Authorization", "Bearer header")],
        );
        assert_eq!(bearer_token(&request).as_deref(), Some("header"));
    }

    #[test]
    fn the_query_counts_for_websockets_and_event_streams_only() {
        let websocket = request("/hub?id=1&access_token=a%2Eb", &[("Upgrade", "websocket")]);
        assert_eq!(bearer_token(&websocket).as_deref(), Some("a.b"));
        let events = request("/hub?access_token=t", &[("Accept", "text/event-stream")]);
        assert_eq!(bearer_token(&events).as_deref(), Some("t"));
        let poll = request("/hub?access_token=t", &[]);
        assert_eq!(bearer_token(&poll), None);
    }
}
