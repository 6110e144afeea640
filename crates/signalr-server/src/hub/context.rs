//! What a hub method knows about its call: the connection, the user, the request, the state.

use std::sync::{Arc, Mutex};

use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, Uri};
use signalr_protocol::negotiate::TransportType;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::HubShared;
use super::clients::{CallerClients, Groups};
use crate::lifetime::ConnectionHandle;
use crate::user::HubUser;

/// The HTTP request that opened a connection (for WebSockets, the upgrade request).
///
/// It never holds the request body; the query string may hold an access token, so do not log
/// [`uri`](Self::uri) whole.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// The request method.
    pub method: Method,
    /// The request URI, query included.
    pub uri: Uri,
    /// The request headers.
    pub headers: HeaderMap,
}

impl RequestInfo {
    /// A copy of the request's method, URI and headers in allocations of their own.
    ///
    /// The parsed request's URI and header values are slices of the HTTP server's read buffer
    /// (about 16 KiB); keeping them for a connection's life would keep that whole buffer
    /// alive per connection.
    pub(crate) fn detached(method: Method, uri: &Uri, headers: &HeaderMap) -> Self {
        let uri = Uri::try_from(uri.to_string()).unwrap_or_else(|_| uri.clone());
        let mut copied = HeaderMap::with_capacity(headers.len());
        for (name, value) in headers {
            let value = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
            let name =
                HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
            copied.append(name, value);
        }
        RequestInfo {
            method,
            uri,
            headers: copied,
        }
    }

    /// The first value of a query parameter, the name matched case-insensitively.
    pub fn query_value(&self, name: &str) -> Option<String> {
        query_value(self.uri.query()?, name)
    }

    /// The value of a request header (repeated headers joined with `,`), if any.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }
}

/// The first value of `name` (case-insensitive) in a query string, percent-decoded.
pub(crate) fn query_value(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.into_owned())
}

/// One open hub connection, as its methods and hooks see it.
pub(crate) struct ConnectionInfo {
    pub(crate) handle: Arc<ConnectionHandle>,
    pub(crate) user: Option<HubUser>,
    pub(crate) request: RequestInfo,
    pub(crate) transport: TransportType,
    pub(crate) items: Mutex<Extensions>,
}

/// One of a connection's invocation slots
/// ([`HubOptions::maximum_parallel_invocations_per_client`](crate::HubOptions)), held by a
/// running hub method.
pub(crate) struct InvocationSlot {
    semaphore: Arc<Semaphore>,
    state: Mutex<SlotState>,
}

enum SlotState {
    /// The method runs and holds this permit (released when the state changes).
    Held { _permit: OwnedSemaphorePermit },
    /// The method gave the permit up while it waits for a client.
    Lent,
    /// The invocation has finished: the slot is never taken again, even by a client result
    /// the method left running in a task of its own.
    Finished,
}

impl InvocationSlot {
    pub(crate) fn new(semaphore: Arc<Semaphore>, permit: OwnedSemaphorePermit) -> Self {
        InvocationSlot {
            semaphore,
            state: Mutex::new(SlotState::Held { _permit: permit }),
        }
    }

    /// Gives the slot back for good (the invocation finished).
    pub(crate) fn release(&self) {
        *self.state.lock().expect("lock") = SlotState::Finished;
    }

    /// Gives the permit up while the method waits; `false` when it held none.
    fn lend(&self) -> bool {
        let mut state = self.state.lock().expect("lock");
        if !matches!(*state, SlotState::Held { .. }) {
            return false;
        }
        *state = SlotState::Lent;
        true
    }

    /// Takes a permit back after a wait, unless the invocation finished meanwhile.
    fn take_back(&self, permit: OwnedSemaphorePermit) {
        let mut state = self.state.lock().expect("lock");
        if matches!(*state, SlotState::Lent) {
            *state = SlotState::Held { _permit: permit };
        }
    }
}

/// A slot given up while its method waits for a client; [`restore`](Self::restore) takes one
/// again. Dropped without `restore` (the wait was cancelled), it takes one only if one is free
/// at once, so the method may then run beside one invocation more than the limit.
pub(crate) struct ReleasedSlot {
    scope: Option<Arc<CallScope>>,
}

impl ReleasedSlot {
    fn slot(&self) -> Option<&InvocationSlot> {
        self.scope.as_ref().and_then(|scope| scope.slot.as_ref())
    }

    pub(crate) async fn restore(mut self) {
        if let Some(slot) = self.slot()
            && let Ok(permit) = slot.semaphore.clone().acquire_owned().await
        {
            slot.take_back(permit);
        }
        self.scope = None;
    }
}

impl Drop for ReleasedSlot {
    fn drop(&mut self) {
        if let Some(slot) = self.slot()
            && let Ok(permit) = slot.semaphore.clone().try_acquire_owned()
        {
            slot.take_back(permit);
        }
    }
}

/// What one call (a method invocation or a hook) has of its own.
pub(crate) struct CallScope {
    /// Cancelled when the client cancels the invocation or the connection ends.
    pub(crate) cancellation: CancellationToken,
    /// The invocation slot the call holds, if it counts against the limit.
    pub(crate) slot: Option<InvocationSlot>,
    /// Set in the connect hook, where client results are refused.
    pub(crate) in_connect_hook: bool,
}

impl CallScope {
    /// A call that holds no slot.
    pub(crate) fn new(cancellation: CancellationToken) -> Self {
        CallScope {
            cancellation,
            slot: None,
            in_connect_hook: false,
        }
    }

    /// Gives up the call's slot while it waits for a client; `None` when it holds none.
    pub(crate) fn release_slot(self: &Arc<Self>) -> Option<ReleasedSlot> {
        let slot = self.slot.as_ref()?;
        slot.lend().then(|| ReleasedSlot {
            scope: Some(self.clone()),
        })
    }
}

/// The context of one hub method call or hook: who called, from which request, and handles to
/// reach clients and groups.
pub struct CallContext<S> {
    pub(crate) hub: Arc<HubShared<S>>,
    pub(crate) connection: Arc<ConnectionInfo>,
    pub(crate) scope: Arc<CallScope>,
}

impl<S> Clone for CallContext<S> {
    fn clone(&self) -> Self {
        CallContext {
            hub: self.hub.clone(),
            connection: self.connection.clone(),
            scope: self.scope.clone(),
        }
    }
}

impl<S> CallContext<S> {
    /// The hub's state, as given to [`Hub::builder`](crate::Hub::builder).
    pub fn state(&self) -> &S {
        &self.hub.state
    }

    /// The caller's public connection id.
    pub fn connection_id(&self) -> &str {
        self.connection.handle.connection_id()
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<&HubUser> {
        self.connection.user.as_ref()
    }

    /// The user id that user targets match (from the hub's user-id provider).
    pub fn user_id(&self) -> Option<&str> {
        self.connection.handle.user_id()
    }

    /// The request that opened the connection.
    pub fn request(&self) -> &RequestInfo {
        &self.connection.request
    }

    /// The transport the connection uses.
    pub fn transport(&self) -> TransportType {
        self.connection.transport
    }

    /// Values stored per connection for its whole life (the reference's `Context.Items`).
    pub fn items(&self) -> &Mutex<Extensions> {
        &self.connection.items
    }

    /// Closes the connection: it receives a Close without reconnect.
    pub fn abort(&self) {
        self.connection.handle.abort();
    }

    /// Cancelled when this call should stop: the client cancelled the stream
    /// (CancelInvocation), or the connection closed. Hooks see only the connection closing.
    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.scope.cancellation
    }

    /// The hub's clients as seen from this caller.
    pub fn clients(&self) -> CallerClients {
        CallerClients::new(
            self.hub.sender.clone(),
            self.connection_id().to_owned(),
            self.scope.clone(),
        )
    }

    /// The same connection and hub with another call's scope.
    pub(crate) fn with_scope(&self, scope: CallScope) -> Self {
        CallContext {
            hub: self.hub.clone(),
            connection: self.connection.clone(),
            scope: Arc::new(scope),
        }
    }

    /// Group membership of any connection of the hub.
    pub fn groups(&self) -> Groups {
        Groups::new(self.hub.sender.lifetime.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_case_insensitive_and_decoded() {
        let query = "id=abc&NegotiateVersion=1&access_token=a%2Bb+c";
        assert_eq!(query_value(query, "negotiateVersion").as_deref(), Some("1"));
        assert_eq!(query_value(query, "access_token").as_deref(), Some("a+b c"));
        assert_eq!(query_value(query, "missing"), None);
    }
}
