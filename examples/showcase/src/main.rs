//! The showcase: the SignalR learning app's hubs and pages, served by `signalr-server`.
//!
//! Run it from the repository root with `./scripts/showcase` (installs the page packages
//! first), or `cargo run -p showcase -- --addr 127.0.0.1:5000 --database showcase.db`; add
//! `--redis redis://127.0.0.1:6379` to run several nodes as one (each on its own `--addr`,
//! all on one `--database`).

mod accounts;
mod hubs;
mod rejection;
mod rest;
mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};
use signalr_server::lifetime::{HubLifetimeManager, InMemoryLifetimeManager};
use signalr_server::{CaseInsensitivePaths, HubContext, HubRouterExt};
use tower::Layer;
use tower_http::services::ServeDir;

use accounts::Tokens;
use store::Store;

/// What the hubs share.
pub struct Inner {
    pub store: Store,
    pub tokens: Tokens,
    /// This node's name in the live counts: its listening address (a node restarted on the
    /// same address forgets what it counted before).
    pub node: String,
    /// Each hub's Redis backplane, by hub name; empty without `--redis`.
    pub backplanes: HashMap<String, Arc<dyn HubLifetimeManager>>,
}

/// The hubs' state; cloning shares it.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// Where the hub named `hub` keeps its connections: on Redis with `--redis`, else in
    /// this process.
    pub fn lifetime(&self, hub: &str) -> Arc<dyn HubLifetimeManager> {
        match self.backplanes.get(hub) {
            Some(backplane) => backplane.clone(),
            None => Arc::new(InMemoryLifetimeManager::new()),
        }
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// What the HTTP handlers share: the hubs' state and handles to push to two hubs.
#[derive(Clone)]
pub struct Web {
    app: AppState,
    deathly_hallows: HubContext,
    orders: HubContext,
}

impl Deref for Web {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.app
    }
}

/// Hub paths as the learning app spells them; they and the REST paths match in any casing.
const HUB_PATHS: [&str; 7] = [
    "/hubs/userCount",
    "/hubs/deathlyhallows",
    "/hubs/houses",
    "/hubs/basicChat",
    "/hubs/order",
    "/hubs/chat",
    "/hubs/stream",
];
const REST_PATHS: [&str; 12] = [
    "/account/register",
    "/account/login",
    "/account/token",
    "/account/logout",
    "/account/me",
    "/home/DeathlyHallows",
    "/home/OrderPost",
    "/home/GetAllOrder",
    "/ChatRooms/GetChatRoom",
    "/ChatRooms/GetChatUser",
    "/ChatRooms/PostChatRoom",
    "/ChatRooms/DeleteChatRoom",
];

struct Arguments {
    addr: SocketAddr,
    database: PathBuf,
    redis: Option<String>,
}

fn parse_arguments() -> Result<Arguments, String> {
    let mut parsed = Arguments {
        addr: "127.0.0.1:5000".parse().expect("valid"),
        database: "showcase.db".into(),
        redis: None,
    };
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        let mut value = || arguments.next().ok_or(format!("{argument} needs a value"));
        match argument.as_str() {
            "--addr" => {
                parsed.addr = value()?
                    .parse()
                    .map_err(|error| format!("--addr: {error}"))?
            }
            "--database" => parsed.database = value()?.into(),
            "--redis" => parsed.redis = Some(value()?),
            "--help" | "-h" => {
                println!("usage: showcase [--addr HOST:PORT] [--database PATH] [--redis URL]");
                println!();
                println!("--redis redis://HOST:PORT puts every hub on that Redis server: nodes");
                println!("sharing it (and one --database) serve one audience.");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}; try --help")),
        }
    }
    Ok(parsed)
}

/// Connects every hub to the Redis server at `url`; hub names are `Showcase.<last path part>`.
async fn backplanes(
    url: &str,
) -> Result<HashMap<String, Arc<dyn HubLifetimeManager>>, signalr_redis::RedisError> {
    let mut backplanes = HashMap::new();
    for path in HUB_PATHS {
        let name = path.rsplit('/').next().expect("a path").to_owned();
        let manager = signalr_redis::RedisLifetimeManager::connect(
            url,
            &format!("Showcase.{name}"),
            signalr_redis::RedisOptions::default(),
        )
        .await?;
        backplanes.insert(name, Arc::new(manager) as Arc<dyn HubLifetimeManager>);
    }
    Ok(backplanes)
}

fn app(
    store: Store,
    node: String,
    backplanes: HashMap<String, Arc<dyn HubLifetimeManager>>,
) -> Result<axum::Router, rusqlite::Error> {
    let tokens = Tokens::new(&store.token_secret()?);
    store.clear_live_counts(&node)?;
    let state = AppState(Arc::new(Inner {
        store,
        tokens,
        node,
        backplanes,
    }));
    let deathly_hallows = hubs::deathly_hallows(state.clone());
    let order = hubs::order(state.clone());
    let web = Web {
        app: state.clone(),
        deathly_hallows: deathly_hallows.context(),
        orders: order.context(),
    };

    let assets = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bundle = assets.join("node_modules/@microsoft/signalr/dist/browser");
    let rest = Router::new()
        .route("/account/register", post(accounts::register))
        .route("/account/login", post(accounts::login))
        .route("/account/token", post(accounts::token))
        .route("/account/logout", post(accounts::logout))
        .route("/account/me", get(accounts::me))
        .route("/home/DeathlyHallows", get(rest::vote))
        .route("/home/OrderPost", post(rest::post_order))
        .route("/home/GetAllOrder", get(rest::all_orders))
        .route("/ChatRooms/GetChatRoom", get(rest::chat_rooms))
        .route("/ChatRooms/GetChatUser", get(rest::chat_users))
        .route("/ChatRooms/PostChatRoom", post(rest::create_chat_room))
        .route(
            "/ChatRooms/DeleteChatRoom/{id}",
            delete(rest::delete_chat_room),
        )
        .with_state(web.clone());
    let router = Router::new()
        .map_hub(HUB_PATHS[0], hubs::user_count(state.clone()))
        .map_hub(HUB_PATHS[1], deathly_hallows)
        .map_hub(HUB_PATHS[2], hubs::houses(state.clone()))
        .map_hub(HUB_PATHS[3], hubs::basic_chat(state.clone()))
        .map_hub(HUB_PATHS[4], order)
        .map_hub(HUB_PATHS[5], hubs::chat(state.clone()))
        .map_hub(HUB_PATHS[6], hubs::stream(state))
        .merge(rest)
        .nest_service("/lib/signalr", ServeDir::new(bundle))
        .fallback_service(ServeDir::new(assets.join("wwwroot")))
        .layer(axum::middleware::from_fn_with_state(
            web,
            accounts::authenticate,
        ));
    Ok(router)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let arguments = parse_arguments().unwrap_or_else(|error| {
        eprintln!("{error}");
        std::process::exit(2);
    });
    let store = Store::open(&arguments.database).unwrap_or_else(|error| {
        eprintln!(
            "cannot open the database {}: {error}",
            arguments.database.display()
        );
        std::process::exit(1);
    });
    let backplanes = match &arguments.redis {
        None => HashMap::new(),
        Some(url) => backplanes(url).await.unwrap_or_else(|error| {
            eprintln!("{error}");
            std::process::exit(1);
        }),
    };
    let listener = tokio::net::TcpListener::bind(arguments.addr)
        .await
        .unwrap_or_else(|error| {
            eprintln!("cannot listen on {}: {error}", arguments.addr);
            std::process::exit(1);
        });
    let address = listener.local_addr().expect("bound");
    let router = app(store, address.to_string(), backplanes).expect("the database answers");
    let negotiate_paths = HUB_PATHS.map(|path| format!("{path}/negotiate"));
    let paths = HUB_PATHS
        .iter()
        .chain(REST_PATHS.iter())
        .map(|path| path.to_string());
    let paths = paths.chain(negotiate_paths);
    let service = CaseInsensitivePaths::new(paths).layer(router);

    println!("listening on http://{address}");
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
