//! The HTTP endpoints beside the hubs: votes, orders and chat rooms.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use serde::Deserialize;
use signalr_server::HubUser;

use crate::Web;

use crate::rejection::Rejection;

/// The longest order field or room name accepted.
const MAX_TEXT: usize = 200;

fn internal(error: impl std::fmt::Display) -> Response {
    Rejection::internal(error).into_response()
}

#[derive(Deserialize)]
pub struct VoteQuery {
    #[serde(rename = "type", default)]
    kind: String,
}

/// `GET /home/DeathlyHallows?type=cloak|stone|wand`: one vote, pushed to every client; 202
/// even for an unknown type, which changes nothing.
pub async fn vote(State(web): State<Web>, Query(query): Query<VoteQuery>) -> Response {
    match web.store.vote(&query.kind.to_ascii_lowercase()) {
        Ok(Some(votes)) => {
            let counts = (votes.cloak, votes.stone, votes.wand);
            let sent = web
                .deathly_hallows
                .clients()
                .all()
                .send("updateDeathlyHallowCount", counts)
                .await;
            if let Err(error) = sent {
                tracing::warn!(%error, "vote counts were not pushed");
            }
            StatusCode::ACCEPTED.into_response()
        }
        Ok(None) => StatusCode::ACCEPTED.into_response(),
        Err(error) => internal(error),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderForm {
    name: String,
    item_name: String,
    count: i64,
}

/// `POST /Home/OrderPost`: stores the order, tells every order-hub client, and goes back to
/// the order list.
pub async fn post_order(State(web): State<Web>, Form(order): Form<OrderForm>) -> Response {
    let too_long = |text: &str| text.chars().count() > MAX_TEXT;
    if too_long(&order.name) || too_long(&order.item_name) || order.count < 1 {
        return Rejection::BadRequest("names: at most 200 characters; count: at least 1")
            .into_response();
    }
    if let Err(error) = web
        .store
        .add_order(&order.name, &order.item_name, order.count)
    {
        return internal(error);
    }
    if let Err(error) = web.orders.clients().all().send("NewOrderCreated", ()).await {
        tracing::warn!(%error, "the new order was not pushed");
    }
    Redirect::to("/orders.html").into_response()
}

/// `GET /Home/GetAllOrder`.
pub async fn all_orders(State(web): State<Web>) -> Response {
    match web.store.orders() {
        Ok(orders) => Json(serde_json::json!({ "data": orders })).into_response(),
        Err(error) => internal(error),
    }
}

/// The logged-in user, if any.
type LoggedIn = Option<Extension<HubUser>>;

/// The logged-in user, or 401.
fn require(user: LoggedIn) -> Result<HubUser, Rejection> {
    user.map(|Extension(user)| user)
        .ok_or(Rejection::Unauthorized(""))
}

/// `GET /ChatRooms/GetChatRoom`.
pub async fn chat_rooms(State(web): State<Web>, user: LoggedIn) -> Result<Response, Rejection> {
    require(user)?;
    let rooms = web.store.chat_rooms().map_err(Rejection::internal)?;
    Ok(Json(rooms).into_response())
}

/// `GET /ChatRooms/GetChatUser`: every account but the caller.
pub async fn chat_users(State(web): State<Web>, user: LoggedIn) -> Result<Response, Rejection> {
    let user = require(user)?;
    let users = web
        .store
        .other_accounts(&user.id)
        .map_err(Rejection::internal)?;
    Ok(Json(users).into_response())
}

#[derive(Deserialize)]
pub struct NewRoom {
    name: String,
}

/// `POST /ChatRooms/PostChatRoom` with `{"id": 0, "name": "..."}`: 201 and the stored room.
pub async fn create_chat_room(
    State(web): State<Web>,
    user: LoggedIn,
    Json(room): Json<NewRoom>,
) -> Result<Response, Rejection> {
    require(user)?;
    let name = room.name.trim();
    if name.is_empty() || name.chars().count() > MAX_TEXT {
        return Err(Rejection::BadRequest(
            "a room needs a name of at most 200 characters",
        ));
    }
    let room = web.store.add_chat_room(name).map_err(Rejection::internal)?;
    Ok((StatusCode::CREATED, Json(room)).into_response())
}

/// `DELETE /ChatRooms/DeleteChatRoom/{id}`: `{"deleted": id, "selected": first remaining or 0}`.
pub async fn delete_chat_room(
    State(web): State<Web>,
    user: LoggedIn,
    Path(id): Path<i64>,
) -> Result<Response, Rejection> {
    require(user)?;
    if !web
        .store
        .delete_chat_room(id)
        .map_err(Rejection::internal)?
    {
        return Err(Rejection::NotFound);
    }
    let rooms = web.store.chat_rooms().map_err(Rejection::internal)?;
    let selected = rooms.first().map_or(0, |room| room.id);
    Ok(Json(serde_json::json!({ "deleted": id, "selected": selected })).into_response())
}
