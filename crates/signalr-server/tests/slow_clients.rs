//! Clients that stop reading or polling: the connection is closed within the configured
//! timeouts and its work stops, instead of every further write waiting out the send timeout
//! (PROTOCOL.md §3.4, §3.5).

mod common;

use std::time::Duration;

use axum::Router;
use signalr_server::{CallContext, Hub, HubError, HubOptions, HubRouterExt, RawConnection};
use tokio::sync::mpsc;

use common::{
    JSON_HANDSHAKE, bounded, fire_and_forget, negotiate_token, poll, post_text, send, start,
};

/// Short timeouts and a tiny outgoing queue, so that a client that stops reading is found out
/// quickly.
fn impatient() -> HubOptions {
    HubOptions {
        send_timeout: Duration::from_millis(200),
        disconnect_timeout: Duration::from_millis(500),
        outbound_queue_capacity: 4,
        ..HubOptions::default()
    }
}

async fn flood(
    context: CallContext<mpsc::UnboundedSender<String>>,
    count: u32,
) -> Result<(), HubError> {
    for index in 0..count {
        context.clients().caller().send("Number", (index,)).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_long_polling_client_that_stops_polling_is_disposed_while_the_hub_floods_it() {
    let (disconnected, mut disconnected_rx) = mpsc::unbounded_channel::<String>();
    let hub = Hub::builder(disconnected)
        .method("Flood", flood)
        .on_disconnected(
            |context: CallContext<mpsc::UnboundedSender<String>>| async move {
                let _ = context.state().send(context.connection_id().to_owned());
                Ok(())
            },
        )
        .options(impatient())
        .build();
    let base = start(Router::new().map_hub("/hub", hub)).await;
    let url = format!("{base}/hub?id={}", negotiate_token(&base).await);
    assert_eq!(poll(&url).await.status, 200, "the first poll");

    // 10 000 messages with 200 ms per stuck write would take over half an hour; the
    // connection must instead be gone within the disconnect timeout and one send timeout.
    let body = format!("{JSON_HANDSHAKE}{}", fire_and_forget("Flood", "[10000]"));
    assert_eq!(post_text(&url, &body).await.status, 200);
    bounded("the disconnect hook", disconnected_rx.recv()).await;
    common::eventually("the token to be forgotten", || async {
        poll(&url).await.status == 404
    })
    .await;
}

#[tokio::test]
async fn a_raw_connection_blocked_on_a_client_that_never_polls_ends_on_delete() {
    let (ended, mut ended_rx) = mpsc::unbounded_channel::<()>();
    let echo = move |mut connection: RawConnection| {
        let ended = ended.clone();
        async move {
            while let Some(bytes) = connection.receive().await {
                if connection.send(bytes).await.is_err() {
                    break;
                }
            }
            let _ = ended.send(());
        }
    };
    let options = HubOptions {
        send_timeout: Duration::from_secs(60),
        ..impatient()
    };
    let base = start(Router::new().map_connection("/echo", echo, options)).await;
    let negotiated = common::negotiate(&base, "/echo", "?negotiateVersion=1").await;
    let token = negotiated["connectionToken"].as_str().expect("a token");
    let url = format!("{base}/echo?id={token}");
    assert_eq!(poll(&url).await.status, 200, "the first poll");

    // Fill the outgoing queue (4) and the handler; the last POST waits for room.
    for index in 0..6 {
        assert_eq!(post_text(&url, &format!("chunk {index}")).await.status, 200);
    }
    let stuck = tokio::spawn({
        let url = url.clone();
        async move { post_text(&url, "one too many").await }
    });

    let deleted = send(common::http().delete(&url)).await;
    assert_eq!(deleted.status, 202);
    bounded("the raw handler to end", ended_rx.recv()).await;
    let stuck = bounded("the waiting POST", stuck)
        .await
        .expect("the POST task");
    assert!(
        stuck.status == 200 || stuck.status == 404,
        "the waiting POST is answered: {stuck:?}"
    );
    common::eventually("the token to be forgotten", || async {
        poll(&url).await.status == 404
    })
    .await;
}

#[tokio::test]
async fn an_empty_id_is_a_missing_id() {
    let hub = Hub::builder(()).options(impatient()).build();
    let base = start(Router::new().map_hub("/hub", hub)).await;
    let reply = poll(&format!("{base}/hub?id=")).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body, "Connection ID required");
}
