//! The interop server: the surface of the test server the official SignalR clients' functional
//! tests run against (shared/interop/TESTHUB.md), served by `signalr-server`.
//!
//! `cargo run -p interop-server -- --addr 127.0.0.1:5000`; the only line on stdout is
//! `Now listening on: http://HOST:PORT`, logs go to stderr (`RUST_LOG`, default `warn`).

mod hub;
mod routes;
mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use signalr_server::lifetime::InMemoryLifetimeManager;
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

fn parse_arguments() -> Result<SocketAddr, String> {
    let mut addr: SocketAddr = "127.0.0.1:0".parse().expect("valid");
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--addr" => {
                let value = arguments
                    .next()
                    .ok_or_else(|| format!("{argument} needs a value"))?;
                addr = value.parse().map_err(|error| format!("--addr: {error}"))?;
            }
            "--help" | "-h" => {
                eprintln!("usage: interop-server [--addr HOST:PORT]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}; try --help")),
        }
    }
    Ok(addr)
}

fn app() -> Router {
    let tokens = Arc::new(Tokens::random());
    let validator = tokens.clone();
    let authorized = Router::new()
        .map_hub("/authorizedhub", hub::authorized_hub())
        .layer(BearerAuthLayer::new(move |token: &str| {
            validator.check(token)
        }));
    let lifetime = Arc::new(InMemoryLifetimeManager::new());
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
    let addr = parse_arguments().unwrap_or_else(|error| {
        eprintln!("{error}");
        std::process::exit(2);
    });
    let service = CaseInsensitivePaths::new(PATHS).layer(app());

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
