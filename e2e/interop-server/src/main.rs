//! The interop server: the surface of the test server the official SignalR clients' functional
//! tests run against (shared/interop/TESTHUB.md), served by `signalr-server`.
//!
//! `cargo run -p interop-server -- --addr 127.0.0.1:5000 [--redis redis://127.0.0.1:6379]`; the
//! only line on stdout is `Now listening on: http://HOST:PORT`, logs go to stderr (`RUST_LOG`,
//! default `warn`). With `--redis`, the test hub's connections are tracked on that Redis server
//! under the reference's hub name, `FunctionalTests.TestHub`, so several interop servers (or
//! an ASP.NET Core test server) serve one audience.

mod hub;
mod routes;
mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use signalr_server::lifetime::{HubLifetimeManager, InMemoryLifetimeManager};
use signalr_server::{BearerAuthLayer, CaseInsensitivePaths, HubOptions, HubRouterExt};
use tower::Layer;

use tokens::Tokens;

/// Every path served, as the reference spells it; requests match them in any casing.
const PATHS: [&str; 7] = [
    "/testhub",
    "/testhub-nowebsockets",
    "/authorizedhub",
    "/uncreatable",
    "/echo",
    "/generateJwtToken",
    "/clientresult",
];

struct Arguments {
    addr: SocketAddr,
    redis: Option<String>,
}

fn parse_arguments() -> Result<Arguments, String> {
    let mut parsed = Arguments {
        addr: "127.0.0.1:0".parse().expect("valid"),
        redis: None,
    };
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        let mut value = || {
            arguments
                .next()
                .ok_or_else(|| format!("{argument} needs a value"))
        };
        match argument.as_str() {
            "--addr" => {
                parsed.addr = value()?
                    .parse()
                    .map_err(|error| format!("--addr: {error}"))?;
            }
            "--redis" => parsed.redis = Some(value()?),
            "--help" | "-h" => {
                eprintln!("usage: interop-server [--addr HOST:PORT] [--redis URL]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}; try --help")),
        }
    }
    Ok(parsed)
}

fn app(lifetime: Arc<dyn HubLifetimeManager>) -> Router {
    let tokens = Arc::new(Tokens::random());
    let validator = tokens.clone();
    let authorized = Router::new()
        .map_hub("/authorizedhub", hub::authorized_hub())
        .layer(BearerAuthLayer::new(move |token: &str| {
            validator.check(token)
        }));
    let test_hub = hub::test_hub(hub::options(), lifetime.clone());
    let clients = test_hub.context();
    Router::new()
        .map_hub("/testhub", test_hub)
        .map_hub(
            "/testhub-nowebsockets",
            hub::test_hub(hub::options_without_websockets(), lifetime),
        )
        .route(
            "/clientresult/{connection_id}",
            get(routes::client_result).with_state(clients),
        )
        .map_hub("/uncreatable", hub::uncreatable_hub())
        .map_connection("/echo", routes::echo, HubOptions::default())
        .merge(authorized)
        .route(
            "/generateJwtToken",
            get(routes::generate_jwt_token).with_state(tokens),
        )
        .fallback(routes::prefixed)
        .layer(axum::middleware::from_fn(routes::cross_cutting))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Arguments { addr, redis } = parse_arguments().unwrap_or_else(|error| {
        eprintln!("{error}");
        std::process::exit(2);
    });
    // One lifetime manager for both test hub endpoints, as the reference's two endpoints of
    // one hub type share theirs.
    let lifetime: Arc<dyn HubLifetimeManager> = match redis {
        None => Arc::new(InMemoryLifetimeManager::new()),
        Some(url) => {
            let options = signalr_redis::RedisOptions::default();
            let connected = signalr_redis::RedisLifetimeManager::connect(
                &url,
                "FunctionalTests.TestHub",
                options,
            )
            .await;
            Arc::new(connected.unwrap_or_else(|error| {
                eprintln!("{error}");
                std::process::exit(1);
            }))
        }
    };
    let service = CaseInsensitivePaths::new(PATHS).layer(app(lifetime));

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|error| {
            eprintln!("cannot listen on {addr}: {error}");
            std::process::exit(1);
        });
    let address = listener.local_addr().expect("bound");
    println!("Now listening on: http://{address}");
    let server = axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service(service),
    );
    tokio::select! {
        result = server => result.expect("the server runs"),
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate() => {}
    }
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    if let Ok(mut terminate) = signal(SignalKind::terminate()) {
        terminate.recv().await;
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await
}
