//! Who is on the other end of a connection.

use std::collections::BTreeMap;

/// An authenticated user.
///
/// Authentication happens in ordinary axum middleware: insert a `HubUser` into the request's
/// extensions and every hub connection opened by that request carries it for its whole life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubUser {
    /// The stable identifier (the reference's name identifier claim).
    pub id: String,
    /// A display name, if any.
    pub name: Option<String>,
    /// Further claims.
    pub claims: BTreeMap<String, String>,
}

impl HubUser {
    /// A user with an id and a display name and no further claims.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        HubUser {
            id: id.into(),
            name: Some(name.into()),
            claims: BTreeMap::new(),
        }
    }
}

/// Decides the user id that `Clients.user(id)` style targeting matches (the reference's
/// `IUserIdProvider`).
pub trait UserIdProvider: Send + Sync + 'static {
    /// The user id of a connection, or `None` for a connection that no user target reaches.
    fn user_id(&self, user: Option<&HubUser>) -> Option<String>;
}

/// The default provider: the authenticated user's [`HubUser::id`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultUserIdProvider;

impl UserIdProvider for DefaultUserIdProvider {
    fn user_id(&self, user: Option<&HubUser>) -> Option<String> {
        user.map(|user| user.id.clone())
    }
}
