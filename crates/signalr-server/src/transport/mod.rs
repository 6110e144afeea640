//! Transports move bytes between a client and its hub connection handler; they know nothing
//! of the hub protocol.

pub(crate) mod websocket;
