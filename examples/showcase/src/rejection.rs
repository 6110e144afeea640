//! Why an HTTP request of the showcase failed, and the response for it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A failed request.
#[derive(Debug)]
pub enum Rejection {
    /// 400 with a hint.
    BadRequest(&'static str),
    /// 401 with a hint (empty for hub-style refusals).
    Unauthorized(&'static str),
    /// 404.
    NotFound,
    /// 409 with a hint.
    Conflict(&'static str),
    /// 500; the cause is logged, not sent.
    Internal,
}

impl Rejection {
    /// Logs `error` and answers 500.
    pub fn internal(error: impl std::fmt::Display) -> Rejection {
        tracing::error!(%error, "request failed");
        Rejection::Internal
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Rejection::BadRequest(hint) => (StatusCode::BAD_REQUEST, hint).into_response(),
            Rejection::Unauthorized(hint) => (StatusCode::UNAUTHORIZED, hint).into_response(),
            Rejection::NotFound => StatusCode::NOT_FOUND.into_response(),
            Rejection::Conflict(hint) => (StatusCode::CONFLICT, hint).into_response(),
            Rejection::Internal => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
}
