//! The hubs of the showcase: the learning app's six, with its method and callback names, and a
//! streaming demo.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{Stream, StreamExt, stream};
use serde::Serialize;
use signalr_server::protocol::values::Timestamp;
use signalr_server::{CallContext, Hub, HubError, UploadStream};

use crate::AppState;
use crate::store::Votes;

/// The houses of `/hubs/houses`; each is a group.
const HOUSES: [&str; 4] = ["Gryffindor", "Slytherin", "Hufflepuff", "Ravenclaw"];

type Context = CallContext<AppState>;

/// A hub's answer when the database fails.
fn storage_error(error: rusqlite::Error) -> HubError {
    tracing::error!(%error, "database error");
    HubError::typed("StorageException", error.to_string())
}

/// `/hubs/userCount`: live counters of connected users and page views.
pub fn user_count(state: AppState) -> Hub<AppState> {
    async fn broadcast_users(context: Context, change: i64) -> Result<(), HubError> {
        let users = live_count(&context, "users", change)?;
        context
            .clients()
            .all()
            .send("updateTotalUsers", (users,))
            .await?;
        Ok(())
    }
    async fn new_window_loaded(context: Context, name: String) -> Result<String, HubError> {
        let views = live_count(&context, "views", 1)?;
        context
            .clients()
            .all()
            .send("updateTotalViews", (views,))
            .await?;
        Ok(format!("Total views for {name} - {views}"))
    }
    Hub::builder(state.clone())
        .with_messagepack()
        .on_connected(|context| broadcast_users(context, 1))
        .on_disconnected(|context| broadcast_users(context, -1))
        .method("NewWindowLoaded", new_window_loaded)
        .lifetime_manager(state.lifetime("userCount"))
        .build()
}

/// `/hubs/deathlyhallows`: vote counts; votes arrive over plain HTTP.
pub fn deathly_hallows(state: AppState) -> Hub<AppState> {
    async fn get_vote_status(context: Context) -> Result<Votes, HubError> {
        context.state().store.votes().map_err(storage_error)
    }
    Hub::builder(state.clone())
        .with_messagepack()
        .method("GetVoteStatus", get_vote_status)
        .lifetime_manager(state.lifetime("deathlyhallows"))
        .build()
}

/// The houses a connection has joined, in joining order.
#[derive(Clone, Default)]
struct JoinedHouses(Vec<String>);

/// `/hubs/houses`: the four houses as groups.
pub fn houses(state: AppState) -> Hub<AppState> {
    fn house_name(house: &str) -> Result<&'static str, HubError> {
        HOUSES
            .into_iter()
            .find(|known| known.eq_ignore_ascii_case(house))
            .ok_or_else(|| HubError::new(format!("There is no house named '{house}'.")))
    }
    /// Adds or removes `house` from the caller's list; `None` when nothing changed.
    fn update_joined(context: &Context, house: &str, join: bool) -> Option<String> {
        let mut items = context.items().lock().expect("items lock");
        let joined = &mut items.get_or_insert_default::<JoinedHouses>().0;
        let present = joined.iter().any(|name| name == house);
        match (join, present) {
            (true, false) => joined.push(house.to_owned()),
            (false, true) => joined.retain(|name| name != house),
            _ => return None,
        }
        Some(joined.join(" "))
    }
    async fn join_house(context: Context, house: String) -> Result<(), HubError> {
        let house = house_name(&house)?;
        let Some(joined) = update_joined(&context, house, true) else {
            return Ok(());
        };
        context.groups().add(context.connection_id(), house).await?;
        let clients = context.clients();
        clients
            .caller()
            .send("subscriptionStatus", (joined, house, true))
            .await?;
        clients
            .others_in_group(house)
            .send("userJoined", (house, ""))
            .await?;
        Ok(())
    }
    async fn leave_house(context: Context, house: String) -> Result<(), HubError> {
        let house = house_name(&house)?;
        let Some(joined) = update_joined(&context, house, false) else {
            return Ok(());
        };
        context
            .groups()
            .remove(context.connection_id(), house)
            .await?;
        let clients = context.clients();
        clients
            .caller()
            .send("subscriptionStatus", (joined, house, false))
            .await?;
        clients.group(house).send("userLeaved", (house, "")).await?;
        Ok(())
    }
    async fn send_notification(
        context: Context,
        house: String,
        message: String,
    ) -> Result<(), HubError> {
        let house = house_name(&house)?;
        context
            .clients()
            .group(house)
            .send("houseNotification", ("", house, message))
            .await?;
        Ok(())
    }
    Hub::builder(state.clone())
        .with_messagepack()
        .method("JoinHouse", join_house)
        .method("LeaveHouse", leave_house)
        .method("SendNotification", send_notification)
        .lifetime_manager(state.lifetime("houses"))
        .build()
}

/// `/hubs/basicChat`: chat for logged-in users, to everyone or to one user.
pub fn basic_chat(state: AppState) -> Hub<AppState> {
    async fn send_message(
        context: Context,
        sender: String,
        receiver: Option<String>,
        message: String,
    ) -> Result<(), HubError> {
        let clients = context.clients();
        let receiver = receiver.unwrap_or_default();
        if receiver.is_empty() {
            clients
                .all()
                .send("MessageReceived", (sender, message))
                .await?;
            return Ok(());
        }
        let account = context
            .state()
            .store
            .account_with_hash(&receiver)
            .map_err(storage_error)?;
        let Some((account, _)) = account else {
            return Err(HubError::new(format!(
                "There is no user named '{receiver}'."
            )));
        };
        clients
            .user(&account.id)
            .send("MessageReceived", (sender, message))
            .await?;
        Ok(())
    }
    Hub::builder(state.clone())
        .with_messagepack()
        .authorized_method("SendMessage", send_message)
        .lifetime_manager(state.lifetime("basicChat"))
        .build()
}

/// `/hubs/order`: no methods; order posts push `NewOrderCreated` through it.
pub fn order(state: AppState) -> Hub<AppState> {
    Hub::builder(state.clone())
        .with_messagepack()
        .lifetime_manager(state.lifetime("order"))
        .build()
}

/// Adds `change` to this node's live count `name`; the total over every node sharing the
/// database.
fn live_count(context: &Context, name: &str, change: i64) -> Result<i64, HubError> {
    let state = context.state();
    state
        .store
        .add_live_count(&state.node, name, change)
        .map_err(storage_error)
}

/// `/hubs/chat`: rooms, private messages and presence.
pub fn chat(state: AppState) -> Hub<AppState> {
    /// The caller's account id and name (the hub requires a logged-in user).
    fn caller(context: &Context) -> (String, String) {
        let user = context.user().expect("the chat hub requires a user");
        (user.id.clone(), user.name.clone().unwrap_or_default())
    }
    async fn to_everyone(
        context: &Context,
        target: &str,
        arguments: impl serde::Serialize,
    ) -> Result<(), HubError> {
        context.clients().all().send(target, arguments).await?;
        Ok(())
    }
    async fn on_connected(context: Context) -> Result<(), HubError> {
        let (id, name) = caller(&context);
        // The user's first connection over every node.
        if live_count(&context, &format!("chat:{id}"), 1)? == 1 {
            let others = context.clients().others();
            others.send("UserConnected", (id, name)).await?;
        }
        Ok(())
    }
    async fn on_disconnected(context: Context) -> Result<(), HubError> {
        let (id, name) = caller(&context);
        // The user's last connection over every node.
        if live_count(&context, &format!("chat:{id}"), -1)? == 0 {
            let others = context.clients().others();
            others.send("UserDisconnected", (id, name)).await?;
        }
        Ok(())
    }
    async fn new_room_created(
        context: Context,
        max_room: i64,
        room_id: i64,
        room_name: String,
    ) -> Result<(), HubError> {
        let (id, name) = caller(&context);
        let arguments = (max_room, room_id, room_name, id, name);
        to_everyone(&context, "NewRoomCreated", arguments).await
    }
    async fn room_deleted(
        context: Context,
        deleted_id: i64,
        deleted_name: String,
        selected_id: i64,
    ) -> Result<(), HubError> {
        let (id, name) = caller(&context);
        let arguments = (deleted_id, deleted_name, selected_id, id, name);
        to_everyone(&context, "RoomDeleted", arguments).await
    }
    async fn send_public_message(
        context: Context,
        room_id: i64,
        room_name: String,
        message: String,
    ) -> Result<(), HubError> {
        let (id, name) = caller(&context);
        let arguments = (room_id, room_name, id, name, message);
        to_everyone(&context, "PublicMessageReceived", arguments).await
    }
    async fn send_private_message(
        context: Context,
        receiver_id: String,
        receiver_name: String,
        message: String,
    ) -> Result<(), HubError> {
        let (id, name) = caller(&context);
        let chat_id = uuid::Uuid::new_v4().to_string();
        let recipients = [id.clone(), receiver_id.clone()];
        let arguments = (id, name, receiver_id, receiver_name, message, chat_id);
        context
            .clients()
            .users(&recipients)
            .send("PrivateMessageReceived", arguments)
            .await?;
        Ok(())
    }
    Hub::builder(state.clone())
        .with_messagepack()
        .require_authenticated_user()
        .on_connected(on_connected)
        .on_disconnected(on_disconnected)
        .method("NewRoomCreated", new_room_created)
        .method("RoomDeleted", room_deleted)
        .method("SendPublicMessage", send_public_message)
        .method("SendPrivateMessage", send_private_message)
        .lifetime_manager(state.lifetime("chat"))
        .build()
}

/// Bounds of `Ticker(count, intervalMs)`.
const TICKS: std::ops::RangeInclusive<i64> = 1..=1000;
const TICK_INTERVAL_MS: std::ops::RangeInclusive<i64> = 50..=5000;
/// Bounds of `Shout(upload)`: words, and bytes of text in all.
const SHOUT_MAX_WORDS: usize = 1000;
const SHOUT_MAX_BYTES: usize = 64 * 1024;

/// One item of `Ticker`: its number (from 1), the vote counts at that moment, and when.
#[derive(Debug, Serialize)]
struct Tick {
    seq: i64,
    votes: Votes,
    at: String,
}

/// The current time as RFC 3339 in UTC, to the millisecond (`2025-01-02T03:04:05.678Z`).
fn now_rfc3339() -> String {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let millis = since_epoch.subsec_millis();
    Timestamp::new(since_epoch.as_secs() as i64, millis * 1_000_000)
        .map(|time| time.to_string())
        .unwrap_or_default()
}

/// `/hubs/stream`: a live vote ticker streamed to the page, and words uploaded to shout back.
pub fn stream(state: AppState) -> Hub<AppState> {
    /// `count` ticks, one every `interval_ms` (the first at once), each with the live vote counts.
    async fn ticker(
        context: Context,
        count: i64,
        interval_ms: i64,
    ) -> Result<impl Stream<Item = Result<Tick, HubError>> + Send + 'static, HubError> {
        if !TICKS.contains(&count) {
            return Err(HubError::new(format!(
                "count must be between {} and {}, got {count}.",
                TICKS.start(),
                TICKS.end()
            )));
        }
        if !TICK_INTERVAL_MS.contains(&interval_ms) {
            return Err(HubError::new(format!(
                "intervalMs must be between {} and {}, got {interval_ms}.",
                TICK_INTERVAL_MS.start(),
                TICK_INTERVAL_MS.end()
            )));
        }
        let mut interval = tokio::time::interval(Duration::from_millis(interval_ms as u64));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let cancelled = context.cancellation_token().clone();
        let state = context.state().clone();
        let ticks = stream::unfold((1, interval), move |(seq, mut interval)| {
            // Each step owns what it needs, so the stream is `'static`.
            let (state, cancelled) = (state.clone(), cancelled.clone());
            async move {
                if seq > count {
                    return None;
                }
                // The client cancelling drops the stream; the token also ends a pending wait.
                tokio::select! {
                    _ = cancelled.cancelled() => return None,
                    _ = interval.tick() => {}
                }
                let item = state
                    .store
                    .votes()
                    .map_err(storage_error)
                    .map(|votes| Tick {
                        seq,
                        votes,
                        at: now_rfc3339(),
                    });
                Some((item, (seq + 1, interval)))
            }
        });
        Ok(ticks)
    }
    /// The uploaded words upper-cased and joined by single spaces.
    async fn shout(
        _context: Context,
        mut upload: UploadStream<String>,
    ) -> Result<String, HubError> {
        let mut words = Vec::new();
        let mut bytes = 0;
        while let Some(word) = upload.next().await {
            let word = word?;
            bytes += word.len();
            if words.len() == SHOUT_MAX_WORDS {
                return Err(HubError::new(format!(
                    "Shout takes at most {SHOUT_MAX_WORDS} words."
                )));
            }
            if bytes > SHOUT_MAX_BYTES {
                return Err(HubError::new(format!(
                    "Shout takes at most {SHOUT_MAX_BYTES} bytes of text."
                )));
            }
            words.push(word.to_uppercase());
        }
        Ok(words.join(" "))
    }
    Hub::builder(state.clone())
        .with_messagepack()
        .stream_method("Ticker", ticker)
        .method("Shout", shout)
        .lifetime_manager(state.lifetime("stream"))
        .build()
}
