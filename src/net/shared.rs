//! State shared by every I/O thread: configuration, the session registry and the channels to the
//! router shards and to the other I/O threads.
//!
//! Owns: [`Shared`] and [`Control`]. Nothing here is locked on a message's path: the only shared
//! mutable state is atomic counters. Must not touch: sockets' contents.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use crossbeam_channel::Sender;
use mio::net::TcpStream;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::protocol::Connect;
use crate::router::shard::Command;
use crate::session::connect::Admitted;

/// Messages to an I/O thread other than deliveries.
pub enum Control {
    /// A freshly accepted connection.
    NewConn(TcpStream),
    /// A connection whose CONNECT names a session this thread owns.
    Adopt(Box<Adopted>),
    /// Disconnect everyone and exit.
    Shutdown,
}

/// A connection handed over after its CONNECT was admitted elsewhere.
pub struct Adopted {
    /// The socket, deregistered from its first poll.
    pub stream: TcpStream,
    /// Bytes read after the CONNECT.
    pub rbuf: BytesMut,
    /// The decoded CONNECT.
    pub connect: Box<Connect>,
    /// Its admission.
    pub admitted: Admitted,
}

/// One I/O thread's inbox.
#[derive(Clone)]
pub struct IoHandle {
    /// Control messages.
    pub tx: Sender<Control>,
    /// Wakes the thread's poll.
    pub waker: Arc<mio::Waker>,
}

impl IoHandle {
    /// Sends a control message and wakes the thread.
    pub fn send(&self, msg: Control) {
        if self.tx.send(msg).is_ok() {
            if let Err(e) = self.waker.wake() {
                log::warn!("waking an I/O thread failed: {e}");
            }
        }
    }
}

/// Everything the I/O threads share.
pub struct Shared {
    /// Validated configuration.
    pub cfg: Arc<Config>,
    /// Password and ACL files in force (swapped on reload).
    pub auth: Arc<Authenticator>,
    /// Command channels of the router shards (bounded: a full shard slows its publishers).
    pub router: Vec<Sender<Command>>,
    /// Inboxes of the I/O threads.
    pub io: Vec<IoHandle>,
    /// Open client connections, for `max_connections`.
    pub connections: AtomicUsize,
    /// Counter for assigned client identifiers (32 bits: fine on MIPS, unique enough with the salt).
    pub next_assigned: AtomicU32,
    /// Per-process salt so assigned identifiers differ across restarts.
    pub salt: u32,
}

impl Shared {
    /// A broker-unique client identifier for a client that sent an empty one.
    pub fn assign_client_id(&self) -> String {
        let n = self.next_assigned.fetch_add(1, Ordering::Relaxed);
        format!("picomq-{:08x}-{n}", self.salt)
    }
}
