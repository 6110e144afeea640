//! Mounting hubs on an axum [`Router`](axum::Router), and matching paths case-insensitively as ASP.NET does.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::http::Uri;
use axum::routing::any;
use tower::{Layer, Service};

use crate::endpoint::{self, Endpoint};
use crate::hub::Hub;
use crate::options::HubOptions;
use crate::raw::{ConnectionHandler, RawEndpoint};

/// Adds [`map_hub`](HubRouterExt::map_hub) and
/// [`map_connection`](HubRouterExt::map_connection) to axum's [`Router`](axum::Router).
pub trait HubRouterExt {
    /// Serves `hub` at `path`: `POST {path}/negotiate` and the transports at `path`.
    #[must_use]
    fn map_hub<S: Clone + Send + Sync + 'static>(self, path: &str, hub: Hub<S>) -> Self;

    /// Serves a raw connection handler at `path`, with the transport fields of `options`.
    #[must_use]
    fn map_connection<H: ConnectionHandler>(
        self,
        path: &str,
        handler: H,
        options: HubOptions,
    ) -> Self;
}

impl HubRouterExt for Router {
    fn map_hub<S: Clone + Send + Sync + 'static>(self, path: &str, hub: Hub<S>) -> Self {
        let options = hub.shared.options.clone();
        let requires_user = hub.shared.requires_user;
        let endpoint = Endpoint::new(hub.shared, options, requires_user);
        mount(self, path, endpoint)
    }

    fn map_connection<H: ConnectionHandler>(
        self,
        path: &str,
        handler: H,
        options: HubOptions,
    ) -> Self {
        let endpoint = Endpoint::new(Arc::new(RawEndpoint(handler)), options, false);
        mount(self, path, endpoint)
    }
}

fn mount(router: Router, path: &str, endpoint: Endpoint) -> Router {
    let endpoint = Arc::new(endpoint);
    let negotiate_endpoint = endpoint.clone();
    let path = path.trim_end_matches('/');
    router
        .route(
            path,
            any(move |request: Request| endpoint::connect(endpoint.clone(), request)),
        )
        .route(
            &format!("{path}/negotiate"),
            any(move |request: Request| endpoint::negotiate(negotiate_endpoint.clone(), request)),
        )
}

/// A layer that rewrites request paths matching one of the given paths in any ASCII casing
/// (at a segment boundary) to the given spelling, before routing; a `/negotiate` right below
/// a given path is folded too.
///
/// ASP.NET routes match case-insensitively and clients rely on it (`/testHub` for `/testhub`).
/// Wrap the whole router, because axum routes before `Router::layer` middleware runs:
///
/// ```no_run
/// # use axum::Router;
/// use signalr_server::CaseInsensitivePaths;
/// use tower::Layer;
/// let app = CaseInsensitivePaths::new(["/hubs/chat"]).layer(Router::<()>::new());
/// ```
#[derive(Debug, Clone)]
pub struct CaseInsensitivePaths {
    canonical: Arc<[String]>,
}

impl CaseInsensitivePaths {
    /// Matches these paths (and everything below them) in any casing.
    pub fn new<I: IntoIterator<Item = P>, P: Into<String>>(paths: I) -> Self {
        CaseInsensitivePaths {
            canonical: paths.into_iter().map(Into::into).collect(),
        }
    }

    fn rewrite(&self, uri: &Uri) -> Option<Uri> {
        let path = uri.path();
        // The longest match wins, so a path listed below another is folded whole.
        let canonical = self
            .canonical
            .iter()
            .filter(|canonical| {
                let length = canonical.len();
                path.len() >= length
                    && path.as_bytes()[..length].eq_ignore_ascii_case(canonical.as_bytes())
                    && (path.len() == length || path.as_bytes()[length] == b'/')
            })
            .max_by_key(|canonical| canonical.len())?;
        // Every SignalR endpoint has a negotiate below it; it folds with the endpoint.
        let rest = match &path[canonical.len()..] {
            rest if rest.eq_ignore_ascii_case("/negotiate") => "/negotiate",
            rest => rest,
        };
        let folded = format!("{canonical}{rest}");
        if folded == path {
            return None;
        }
        let query = uri
            .query()
            .map(|query| format!("?{query}"))
            .unwrap_or_default();
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = Some(format!("{folded}{query}").parse().ok()?);
        Uri::from_parts(parts).ok()
    }
}

impl<S> Layer<S> for CaseInsensitivePaths {
    type Service = CaseInsensitivePathsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CaseInsensitivePathsService {
            paths: self.clone(),
            inner,
        }
    }
}

/// The service made by [`CaseInsensitivePaths`].
#[derive(Debug, Clone)]
pub struct CaseInsensitivePathsService<S> {
    paths: CaseInsensitivePaths,
    inner: S,
}

impl<S, B> Service<axum::http::Request<B>> for CaseInsensitivePathsService<S>
where
    S: Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: axum::http::Request<B>) -> Self::Future {
        if let Some(uri) = self.paths.rewrite(request.uri()) {
            *request.uri_mut() = uri;
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_any_casing_at_segment_boundaries() {
        let paths = CaseInsensitivePaths::new(["/hubs/deathlyhallows", "/Home/GetAllOrder"]);
        let rewrite = |uri: &str| {
            paths
                .rewrite(&uri.parse().unwrap())
                .map(|uri| uri.to_string())
        };
        assert_eq!(
            rewrite("/hubs/deathlyHallows/negotiate?negotiateVersion=1").as_deref(),
            Some("/hubs/deathlyhallows/negotiate?negotiateVersion=1")
        );
        assert_eq!(
            rewrite("/home/getallorder").as_deref(),
            Some("/Home/GetAllOrder")
        );
        assert_eq!(rewrite("/hubs/deathlyhallows"), None);
        let paths = CaseInsensitivePaths::new(["/hub"]);
        let rewrite = |uri: &str| {
            paths
                .rewrite(&uri.parse().unwrap())
                .map(|uri| uri.to_string())
        };
        assert_eq!(rewrite("/HUB/NEGOTIATE").as_deref(), Some("/hub/negotiate"));
        assert_eq!(rewrite("/hubs/deathlyhallowsX"), None);
    }
}
