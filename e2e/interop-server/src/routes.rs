//! The plain HTTP endpoints of the interop server and its cross-cutting middleware
//! (TESTHUB.md, "Endpoints").

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use signalr_server::{HubContext, RawConnection};

use crate::tokens::Tokens;

/// How many times `/redirect...` answered; the first answer says 1.
static REDIRECTS: AtomicU64 = AtomicU64::new(0);

/// `GET /generateJwtToken`: a fresh bearer token as plain text.
pub async fn generate_jwt_token(State(tokens): State<Arc<Tokens>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        tokens.issue(),
    )
}

/// `GET /clientresult/{connectionId}`: invokes `Result` on that connection and answers with the
/// integer it returned, or with the error's text (the client's own text when it failed).
pub async fn client_result(
    State(clients): State<HubContext>,
    Path(connection_id): Path<String>,
) -> String {
    let answer = clients
        .clients()
        .client(&connection_id)
        .invoke::<i64, _>("Result", ())
        .await;
    match answer {
        Ok(value) => value.to_string(),
        Err(error) => error.to_string(),
    }
}

/// The raw `/echo` connection: every received chunk goes back once, as one message.
pub async fn echo(mut connection: RawConnection) {
    while let Some(bytes) = connection.receive().await {
        if connection.send(bytes).await.is_err() {
            break;
        }
    }
}

/// The prefix endpoints, matched in any casing: `/echoredirect...`, `/redirect...`,
/// `/bad-negotiate...`. Anything else is 404.
pub async fn prefixed(request: Request) -> Response {
    let path = request.uri().path();
    let lower = path.to_ascii_lowercase();
    if lower.starts_with("/echoredirect") {
        echo_redirect(&request)
    } else if lower.starts_with("/redirect") {
        redirect(&request)
    } else if lower.starts_with("/bad-negotiate") {
        (StatusCode::BAD_REQUEST, "Some response from server").into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// 307 to the same path with `echoredirect` replaced by `echo`, query kept; the `Location` is
/// relative.
fn echo_redirect(request: &Request) -> Response {
    let path = request.uri().path();
    let rest = &path["/echoredirect".len()..];
    let query = request
        .uri()
        .query()
        .map(|query| format!("?{query}"))
        .unwrap_or_default();
    let location = format!("/echo{rest}{query}");
    match HeaderValue::try_from(location) {
        Ok(location) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// A negotiate redirect to `<baseUrl>/testHub?numRedirects=<n>`.
fn redirect(request: &Request) -> Response {
    let count = REDIRECTS.fetch_add(1, Ordering::SeqCst) + 1;
    let base_url = Query::<HashMap<String, String>>::try_from_uri(request.uri())
        .ok()
        .and_then(|Query(query)| query.get("baseUrl").cloned())
        .unwrap_or_default();
    let url = format!("{base_url}/testHub?numRedirects={count}");
    Json(serde_json::json!({ "url": url })).into_response()
}

/// Cookies every negotiate (but the redirecting one) sets.
const NEGOTIATE_COOKIES: [&str; 3] = [
    "testCookie=testValue; path=/",
    "testCookie2=testValue2; path=/",
    "expiredCookie=doesntmatter; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT",
];

/// The outermost middleware: permissive credentialed CORS (every `OPTIONS` answered 204 at
/// once) and the test cookies on negotiate responses.
pub async fn cross_cutting(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let cors: Vec<(header::HeaderName, HeaderValue)> = match headers.get(header::ORIGIN) {
        Some(origin) => {
            let mut cors = vec![
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()),
                (
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                ),
            ];
            if let Some(method) = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
                cors.push((header::ACCESS_CONTROL_ALLOW_METHODS, method.clone()));
            }
            if let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                cors.push((header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone()));
            }
            cors
        }
        None => Vec::new(),
    };
    let path = request.uri().path().to_ascii_lowercase();
    let is_preflight = request.method() == Method::OPTIONS;
    let sets_cookies =
        !is_preflight && path.contains("/negotiate") && !path.starts_with("/redirect");

    let mut response = if is_preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let response_headers = response.headers_mut();
    for (name, value) in cors {
        response_headers.insert(name, value);
    }
    if sets_cookies {
        for cookie in NEGOTIATE_COOKIES {
            response_headers.append(header::SET_COOKIE, HeaderValue::from_static(cookie));
        }
    }
    response
}
