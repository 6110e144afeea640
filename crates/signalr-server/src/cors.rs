//! Cross-origin access for browser clients served from another origin.
//!
//! Same-origin is the default: without a CORS layer browsers refuse cross-origin responses.
//! [`cors`](fn@cors) makes the policy SignalR's clients need: credentials (cookies) allowed, the
//! request's origin echoed when it is allowed (never `*` together with credentials), and the
//! headers the clients send (`X-Requested-With`, `X-SignalR-User-Agent`, `Authorization`).
//! Put the layer outermost, so that preflight requests are answered before any
//! authentication or redirect.

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// A CORS layer for SignalR endpoints that allows credentialed requests from `origins`
/// (for example `["https://app.example"]`).
pub fn cors<I: IntoIterator<Item = HeaderValue>>(origins: I) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            HeaderName::from_static("x-requested-with"),
            HeaderName::from_static("x-signalr-user-agent"),
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
        ])
}
