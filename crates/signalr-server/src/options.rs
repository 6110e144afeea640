//! Options of an endpoint, with the reference server's names and defaults.

use std::time::Duration;

use signalr_protocol::negotiate::TransportType;

/// Options of a hub or raw endpoint: the reference's `HubOptions` and the transport options of
/// its `HttpConnectionDispatcherOptions` in one place. Every field states its default; a raw
/// connection handler uses only the transport and timeout fields.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// Send a Ping when nothing was sent for this long. Default 15 s.
    pub keep_alive_interval: Duration,
    /// After the client's first Ping, close the connection when nothing arrives for this long.
    /// Default 30 s.
    pub client_timeout_interval: Duration,
    /// Close the connection when the handshake has not arrived within this time. Default 15 s.
    pub handshake_timeout: Duration,
    /// The largest message (and handshake) a client may send, in bytes; `None` for no limit.
    /// Default 32 KiB (32 768).
    pub maximum_receive_message_size: Option<usize>,
    /// How many invocations of one connection may run at once. With 1, a connection's
    /// invocations run one after another and their completions come back in order; while none
    /// is free, the server reads nothing more from that client. Streaming methods and methods
    /// that take upload streams do not count, and a method awaiting a client result gives its
    /// slot back while it waits. Default 1.
    pub maximum_parallel_invocations_per_client: usize,
    /// How many items of one client upload stream the server buffers before it stops reading
    /// the connection until the hub method takes some (the reference's `StreamBufferCapacity`).
    /// Default 10.
    pub stream_buffer_capacity: usize,
    /// How many streams one connection may have open at once: server-to-client streams still
    /// running plus client uploads not yet completed. A call that would open more fails with
    /// an error and the connection stays open; this bounds what one client can make the server
    /// hold. Default 100 (the reference has no such limit).
    pub maximum_streams_per_client: usize,
    /// Put exception types and messages into error texts sent to clients. Default false.
    pub enable_detailed_errors: bool,
    /// How many outgoing messages may wait for one connection's writer. Default 256.
    pub outbound_queue_capacity: usize,
    /// How long a send may wait for room in a full outgoing queue before the connection is
    /// closed as too slow (the reference's `TransportSendTimeout`). Default 10 s.
    pub send_timeout: Duration,
    /// How long a negotiated connection may stay unused before it is forgotten (the
    /// reference's `DisconnectTimeout`). Default 15 s.
    pub disconnect_timeout: Duration,
    /// The lowest negotiate version accepted. Default 0.
    pub minimum_negotiate_version: u32,
    /// The transports the endpoint serves, listed by negotiate in this order. Default all
    /// three: WebSockets, Server-Sent Events, Long Polling.
    pub transports: Vec<TransportType>,
    /// How long a long poll waits for data before an empty answer asks the client to poll
    /// again. Default 90 s.
    pub long_polling_poll_timeout: Duration,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions {
            keep_alive_interval: Duration::from_secs(15),
            client_timeout_interval: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(15),
            maximum_receive_message_size: Some(32 * 1024),
            maximum_parallel_invocations_per_client: 1,
            stream_buffer_capacity: 10,
            maximum_streams_per_client: 100,
            enable_detailed_errors: false,
            outbound_queue_capacity: 256,
            send_timeout: Duration::from_secs(10),
            disconnect_timeout: Duration::from_secs(15),
            minimum_negotiate_version: 0,
            transports: vec![
                TransportType::WebSockets,
                TransportType::ServerSentEvents,
                TransportType::LongPolling,
            ],
            long_polling_poll_timeout: Duration::from_secs(90),
        }
    }
}
