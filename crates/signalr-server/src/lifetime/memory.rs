//! The default lifetime manager: everything in this process's memory.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use signalr_protocol::Completion;

use super::{
    Audience, ClientAnswer, ClientInvocation, ConnectionHandle, HubLifetimeManager, PendingResults,
    SerializedMessage, deliver,
};
use crate::error::{InvokeError, SendError};

/// Connections, groups and users of one hub in one process.
///
/// Lookups take a read lock only long enough to collect the recipients; delivery happens after
/// the lock is released. Group and user names are case-sensitive.
#[derive(Debug, Default)]
pub struct InMemoryLifetimeManager {
    state: RwLock<State>,
    results: Arc<PendingResults>,
}

#[derive(Debug, Default)]
struct State {
    connections: HashMap<String, Arc<ConnectionHandle>>,
    /// group name -> member connection ids
    groups: HashMap<String, HashSet<String>>,
    /// connection id -> the groups it is in (to leave them on disconnect)
    memberships: HashMap<String, HashSet<String>>,
    /// user id -> connection ids
    users: HashMap<String, HashSet<String>>,
}

impl InMemoryLifetimeManager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many connections are registered.
    pub fn connection_count(&self) -> usize {
        self.state.read().expect("lock").connections.len()
    }

    /// The handle of a registered connection.
    pub fn connection(&self, connection_id: &str) -> Option<Arc<ConnectionHandle>> {
        self.state
            .read()
            .expect("lock")
            .connections
            .get(connection_id)
            .cloned()
    }

    /// The groups a connection is in.
    pub fn groups_of(&self, connection_id: &str) -> Vec<String> {
        self.state
            .read()
            .expect("lock")
            .memberships
            .get(connection_id)
            .map(|groups| groups.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn recipients(&self, audience: &Audience) -> Vec<Arc<ConnectionHandle>> {
        let state = self.state.read().expect("lock");
        let by_ids = |ids: &mut dyn Iterator<Item = &String>, excluded: &[String]| {
            let mut seen = HashSet::new();
            ids.filter(|id| !excluded.contains(id) && seen.insert(*id))
                .filter_map(|id| state.connections.get(id).cloned())
                .collect::<Vec<_>>()
        };
        let members = |group: &String| state.groups.get(group).into_iter().flatten();
        let of_user = |user: &String| state.users.get(user).into_iter().flatten();
        match audience {
            Audience::All => state.connections.values().cloned().collect(),
            Audience::AllExcept(excluded) => by_ids(&mut state.connections.keys(), excluded),
            Audience::Connection(id) => by_ids(&mut std::iter::once(id), &[]),
            Audience::Connections(ids) => by_ids(&mut ids.iter(), &[]),
            Audience::Group(group) => by_ids(&mut members(group), &[]),
            Audience::Groups(groups) => by_ids(&mut groups.iter().flat_map(members), &[]),
            Audience::GroupExcept(group, excluded) => by_ids(&mut members(group), excluded),
            Audience::User(user) => by_ids(&mut of_user(user), &[]),
            Audience::Users(users) => by_ids(&mut users.iter().flat_map(of_user), &[]),
        }
    }
}

fn check_group_names(audience: &Audience) -> Result<(), SendError> {
    let empty = match audience {
        Audience::Group(group) | Audience::GroupExcept(group, _) => group.is_empty(),
        Audience::Groups(groups) => groups.iter().any(String::is_empty),
        _ => false,
    };
    if empty {
        Err(SendError::EmptyGroupName)
    } else {
        Ok(())
    }
}

#[async_trait]
impl HubLifetimeManager for InMemoryLifetimeManager {
    async fn on_connected(&self, connection: Arc<ConnectionHandle>) {
        let mut state = self.state.write().expect("lock");
        let id = connection.connection_id().to_owned();
        if let Some(user) = connection.user_id() {
            state
                .users
                .entry(user.to_owned())
                .or_default()
                .insert(id.clone());
        }
        state.connections.insert(id, connection);
    }

    async fn on_disconnected(&self, connection_id: &str) {
        {
            let mut state = self.state.write().expect("lock");
            let Some(connection) = state.connections.remove(connection_id) else {
                return;
            };
            if let Some(user) = connection.user_id() {
                remove_member(&mut state.users, user, connection_id);
            }
            for group in state.memberships.remove(connection_id).unwrap_or_default() {
                remove_member(&mut state.groups, &group, connection_id);
            }
        }
        self.results.connection_closed(connection_id);
    }

    async fn send(
        &self,
        audience: &Audience,
        message: &SerializedMessage,
    ) -> Result<(), SendError> {
        check_group_names(audience)?;
        deliver(&self.recipients(audience), message).await;
        Ok(())
    }

    async fn add_to_group(&self, connection_id: &str, group: &str) -> Result<(), SendError> {
        let mut state = self.state.write().expect("lock");
        if !state.connections.contains_key(connection_id) {
            return Ok(());
        }
        state
            .groups
            .entry(group.to_owned())
            .or_default()
            .insert(connection_id.to_owned());
        state
            .memberships
            .entry(connection_id.to_owned())
            .or_default()
            .insert(group.to_owned());
        Ok(())
    }

    async fn remove_from_group(&self, connection_id: &str, group: &str) -> Result<(), SendError> {
        let mut state = self.state.write().expect("lock");
        remove_member(&mut state.groups, group, connection_id);
        if let Some(groups) = state.memberships.get_mut(connection_id) {
            groups.remove(group);
        }
        Ok(())
    }

    async fn invoke_connection(
        &self,
        connection_id: &str,
        invocation: &ClientInvocation,
    ) -> ClientAnswer {
        // Registered before the lookup: a connection closing after the lookup fails the wait.
        let pending = self.results.register(connection_id);
        let connection = self
            .state
            .read()
            .expect("lock")
            .connections
            .get(connection_id)
            .cloned();
        let Some(connection) = connection else {
            return Err(InvokeError::NoConnection(connection_id.to_owned()));
        };
        let message = invocation.to_message(pending.invocation_id())?;
        connection.send(&message).await;
        tokio::select! {
            biased;
            answer = pending.answer() => answer,
            // Closing connections answer nothing; do not wait for them to be unregistered.
            () = connection.ended() => Err(InvokeError::Disconnected(connection_id.to_owned())),
        }
    }

    async fn set_connection_result(&self, connection_id: &str, completion: Completion) -> bool {
        self.results.complete(connection_id, completion)
    }
}

/// Removes `member` from the set under `key`, dropping the set when it empties.
fn remove_member(index: &mut HashMap<String, HashSet<String>>, key: &str, member: &str) {
    if let Some(members) = index.get_mut(key) {
        members.remove(member);
        if members.is_empty() {
            index.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn two_nodes() -> (Arc<dyn HubLifetimeManager>, Arc<dyn HubLifetimeManager>) {
        let manager: Arc<dyn HubLifetimeManager> = Arc::new(InMemoryLifetimeManager::new());
        (manager.clone(), manager)
    }

    crate::lifetime_manager_spec!(two_nodes);
}
