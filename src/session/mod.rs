//! Per-client session logic, sans-IO.
//!
//! Owns: CONNECT admission (`connect`), the session state machine (`state`), the outbound QoS flow
//! (`outbound`) and the output byte queue (`outbuf`). Everything here is driven by decoded packets,
//! router deliveries and a `now: Instant` passed in, and answers with bytes and [`Action`]s; it never
//! touches sockets, threads, channels or the clock, so it is tested with a virtual clock.
//!
//! `client` is the other side of the same protocol: the session of a connection picomq dialled
//! itself (a bridge to an upstream broker), equally sans-IO.

pub mod aliases;
pub mod client;
pub mod connect;
pub mod enhanced_auth;
pub mod limits;
pub mod outbound;
pub mod outbuf;
pub mod state;

pub use outbuf::OutBuf;
pub use state::{Action, LinkLoss, Output, Session};

#[cfg(test)]
mod tests;
