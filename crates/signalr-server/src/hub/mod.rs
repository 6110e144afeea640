//! Hubs: named methods that clients invoke, and hooks for connections opening and closing.
//!
//! ```no_run
//! use signalr_server::{CallContext, Hub, HubError, HubRouterExt};
//!
//! async fn echo(_context: CallContext<()>, text: String) -> Result<String, HubError> {
//!     Ok(text)
//! }
//!
//! let hub = Hub::builder(()).method("Echo", echo).build();
//! let app: axum::Router = axum::Router::new().map_hub("/hubs/echo", hub);
//! ```

mod clients;
pub(crate) mod context;
mod handler;
mod streaming;

use std::collections::HashMap;
use std::sync::Arc;

use signalr_protocol::json::JsonHubProtocol;
use signalr_protocol::{HubProtocol, Payload};

pub(crate) use clients::Sender;
pub use clients::{CallerClients, ClientProxy, Clients, Groups, HubContext, SingleClientProxy};
pub use context::{CallContext, RequestInfo};
pub use handler::{
    ArgumentSource, BoxFuture, CallInput, HubArgument, HubCallError, HubMethod, HubStreamMethod,
    IntoHubResult, UploadBuffer,
};
pub(crate) use streaming::UploadItem;
pub use streaming::{FallibleItems, IntoHubStream, ItemStreamOutput, PlainItems, UploadStream};

use crate::error::HubError;
use crate::lifetime::{HubLifetimeManager, InMemoryLifetimeManager};
use crate::options::HubOptions;
use crate::user::{DefaultUserIdProvider, UserIdProvider};
pub(crate) use handler::ErasedMethod;
use handler::{erase, erase_stream};

/// A hook run when a connection opens or closes.
type Hook<S> = Box<dyn Fn(CallContext<S>) -> BoxFuture<Result<(), HubError>> + Send + Sync>;

/// One method of the table.
pub(crate) struct MethodEntry<S> {
    pub(crate) call: MethodCall<S>,
    pub(crate) requires_user: bool,
    /// How many upload streams the method takes.
    pub(crate) uploads: usize,
}

/// How a method answers: one Completion, or a stream of items.
pub(crate) enum MethodCall<S> {
    Plain(ErasedMethod<S, Option<Payload>>),
    Streaming(ErasedMethod<S, ItemStreamOutput>),
}

/// A hub ready to be mounted with [`HubRouterExt::map_hub`](crate::HubRouterExt::map_hub).
///
/// Cloning shares the hub.
pub struct Hub<S> {
    pub(crate) shared: Arc<HubShared<S>>,
}

impl<S> Clone for Hub<S> {
    fn clone(&self) -> Self {
        Hub {
            shared: self.shared.clone(),
        }
    }
}

/// What every connection of a hub shares.
pub(crate) struct HubShared<S> {
    pub(crate) state: S,
    pub(crate) methods: HashMap<String, MethodEntry<S>>,
    pub(crate) on_connected: Option<Hook<S>>,
    pub(crate) on_disconnected: Option<Hook<S>>,
    pub(crate) options: HubOptions,
    /// The lifetime manager and the protocols, shared with every client proxy.
    pub(crate) sender: Arc<Sender>,
    pub(crate) user_ids: Arc<dyn UserIdProvider>,
    pub(crate) requires_user: bool,
}

impl<S> HubShared<S> {
    /// The method a client names, matched case-insensitively as the reference does.
    pub(crate) fn method(&self, name: &str) -> Option<&MethodEntry<S>> {
        self.methods.get(&name.to_lowercase())
    }
}

impl<S: Clone + Send + Sync + 'static> Hub<S> {
    /// Starts a hub whose methods and hooks receive `state` through their [`CallContext`].
    pub fn builder(state: S) -> HubBuilder<S> {
        HubBuilder {
            state,
            methods: HashMap::new(),
            on_connected: None,
            on_disconnected: None,
            options: HubOptions::default(),
            protocols: vec![Arc::new(JsonHubProtocol)],
            lifetime: None,
            user_ids: Arc::new(DefaultUserIdProvider),
            requires_user: false,
        }
    }

    /// A handle to send to this hub's clients from outside hub methods (for example from an
    /// ordinary HTTP handler).
    pub fn context(&self) -> HubContext {
        HubContext::new(self.shared.sender.clone())
    }

    /// The hub's options.
    pub fn options(&self) -> &HubOptions {
        &self.shared.options
    }
}

/// Declares a hub's methods, hooks and options.
pub struct HubBuilder<S> {
    state: S,
    methods: HashMap<String, MethodEntry<S>>,
    on_connected: Option<Hook<S>>,
    on_disconnected: Option<Hook<S>>,
    options: HubOptions,
    protocols: Vec<Arc<dyn HubProtocol>>,
    lifetime: Option<Arc<dyn HubLifetimeManager>>,
    user_ids: Arc<dyn UserIdProvider>,
    requires_user: bool,
}

impl<S: Clone + Send + Sync + 'static> HubBuilder<S> {
    /// Adds a method clients invoke by `name` (matched case-insensitively).
    ///
    /// # Panics
    /// When another method already has this name in any casing: the reference refuses
    /// overloads too.
    pub fn method<Args, M: HubMethod<S, Args>>(self, name: &str, method: M) -> Self {
        self.add_method(name, MethodCall::Plain(erase(method)), false, M::UPLOADS)
    }

    /// Adds a method that only authenticated users may invoke; others get the reference error
    /// `Failed to invoke '<name>' because user is unauthorized`.
    ///
    /// # Panics
    /// As [`method`](Self::method).
    pub fn authorized_method<Args, M: HubMethod<S, Args>>(self, name: &str, method: M) -> Self {
        self.add_method(name, MethodCall::Plain(erase(method)), true, M::UPLOADS)
    }

    /// Adds a streaming method: it resolves to a [`Stream`](futures_util::Stream) whose items
    /// the client receives one by one (the official clients' `stream()`), then a Completion.
    ///
    /// The method can watch [`CallContext::cancellation_token`] to learn that the client
    /// cancelled; the stream is dropped then in any case. Streams run beside the connection's
    /// other invocations and do not count against
    /// [`HubOptions::maximum_parallel_invocations_per_client`].
    ///
    /// ```
    /// use futures_util::stream::{self, Stream};
    /// use signalr_server::{CallContext, Hub, HubError};
    ///
    /// async fn count_to(
    ///     _context: CallContext<()>,
    ///     to: u32,
    /// ) -> Result<impl Stream<Item = u32> + Send + 'static, HubError> {
    ///     Ok(stream::iter(1..=to))
    /// }
    ///
    /// let hub = Hub::builder(()).stream_method("CountTo", count_to).build();
    /// ```
    ///
    /// # Panics
    /// As [`method`](Self::method).
    pub fn stream_method<Args, Marker, M: HubStreamMethod<S, Args, Marker>>(
        self,
        name: &str,
        method: M,
    ) -> Self {
        self.add_method(
            name,
            MethodCall::Streaming(erase_stream(method)),
            false,
            M::UPLOADS,
        )
    }

    /// A [`stream_method`](Self::stream_method) only authenticated users may invoke.
    ///
    /// # Panics
    /// As [`method`](Self::method).
    pub fn authorized_stream_method<Args, Marker, M: HubStreamMethod<S, Args, Marker>>(
        self,
        name: &str,
        method: M,
    ) -> Self {
        self.add_method(
            name,
            MethodCall::Streaming(erase_stream(method)),
            true,
            M::UPLOADS,
        )
    }

    fn add_method(
        mut self,
        name: &str,
        call: MethodCall<S>,
        requires_user: bool,
        uploads: usize,
    ) -> Self {
        let entry = MethodEntry {
            call,
            requires_user,
            uploads,
        };
        let previous = self.methods.insert(name.to_lowercase(), entry);
        assert!(
            previous.is_none(),
            "the hub already has a method named '{name}'"
        );
        self
    }

    /// Runs `hook` after a connection's handshake succeeded and it was registered. An error
    /// closes the connection with `Connection closed with an error.` and no reconnect.
    pub fn on_connected<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(CallContext<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HubError>> + Send + 'static,
    {
        self.on_connected = Some(Box::new(move |context| Box::pin(hook(context))));
        self
    }

    /// Runs `hook` when a connection has closed, before it leaves its groups.
    pub fn on_disconnected<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(CallContext<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HubError>> + Send + 'static,
    {
        self.on_disconnected = Some(Box::new(move |context| Box::pin(hook(context))));
        self
    }

    /// Adds a hub protocol beside JSON; each client picks one by name in its handshake.
    pub fn protocol(mut self, protocol: Arc<dyn HubProtocol>) -> Self {
        self.protocols.push(protocol);
        self
    }

    /// Replaces the hub protocols clients may choose from (the reference's
    /// `SupportedProtocols`; default: JSON only).
    pub fn supported_protocols(mut self, protocols: Vec<Arc<dyn HubProtocol>>) -> Self {
        self.protocols = protocols;
        self
    }

    /// Lets clients choose the MessagePack hub protocol too (the reference's
    /// `AddMessagePackProtocol`).
    #[cfg(feature = "messagepack")]
    pub fn with_messagepack(self) -> Self {
        self.protocol(Arc::new(
            signalr_protocol::messagepack::MessagePackHubProtocol,
        ))
    }

    /// Replaces the options (see [`HubOptions`] for the defaults).
    pub fn options(mut self, options: HubOptions) -> Self {
        self.options = options;
        self
    }

    /// Replaces the lifetime manager (default: [`InMemoryLifetimeManager`]).
    pub fn lifetime_manager(mut self, lifetime: Arc<dyn HubLifetimeManager>) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// Replaces how user ids are derived (default: [`DefaultUserIdProvider`]).
    pub fn user_id_provider(mut self, provider: impl UserIdProvider) -> Self {
        self.user_ids = Arc::new(provider);
        self
    }

    /// Requires an authenticated user for negotiate and connect (401 with an empty body
    /// otherwise).
    pub fn require_authenticated_user(mut self) -> Self {
        self.requires_user = true;
        self
    }

    /// Finishes the hub.
    pub fn build(self) -> Hub<S> {
        let lifetime = self
            .lifetime
            .unwrap_or_else(|| Arc::new(InMemoryLifetimeManager::new()));
        Hub {
            shared: Arc::new(HubShared {
                state: self.state,
                methods: self.methods,
                on_connected: self.on_connected,
                on_disconnected: self.on_disconnected,
                options: self.options,
                sender: Arc::new(Sender::new(lifetime, self.protocols)),
                user_ids: self.user_ids,
                requires_user: self.requires_user,
            }),
        }
    }
}
