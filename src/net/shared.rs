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

use super::transport::Transport;
use crate::auth::{AuthMethod, Authenticator};
use crate::config::{Config, ListenerConfig};
use crate::protocol::Connect;
use crate::router::shard::Command;
use crate::session::connect::Admitted;

/// Messages to an I/O thread other than deliveries.
pub enum Control {
    /// A freshly accepted connection and the index of its listener.
    NewConn(TcpStream, u16),
    /// A connection whose CONNECT names a session this thread owns.
    Adopt(Box<Adopted>),
    /// Disconnect everyone and exit.
    Shutdown,
}

/// A connection handed over after its CONNECT was admitted elsewhere.
pub struct Adopted {
    /// The socket (and its TLS state), deregistered from its first poll.
    pub transport: Transport,
    /// Index of the listener that accepted it.
    pub listener: u16,
    /// Bytes read after the CONNECT.
    pub rbuf: BytesMut,
    /// The decoded CONNECT.
    pub connect: Box<Connect>,
    /// Its admission.
    pub admitted: Admitted,
    /// The enhanced authentication method that authenticated the CONNECT, if any: its
    /// re-authentications use this same one.
    pub auth_method: Option<Arc<dyn AuthMethod>>,
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

/// One listener's settings and state shared by the acceptor and the I/O threads.
pub struct ListenerRuntime {
    /// Its configuration.
    pub cfg: ListenerConfig,
    /// The authenticator its clients are checked with: the broker-wide one, or its own when the
    /// listener overrides `[auth]`.
    pub auth: Arc<Authenticator>,
    /// Certificates of a TLS listener (reloadable).
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<super::tls::TlsAcceptor>>,
    /// Open connections accepted by this listener, for its `max_connections`.
    pub connections: AtomicUsize,
}

/// Everything the I/O threads share.
pub struct Shared {
    /// Validated configuration.
    pub cfg: Arc<Config>,
    /// Password and ACL files in force (swapped on reload) for listeners without their own.
    pub auth: Arc<Authenticator>,
    /// The listeners, in config order (a connection's `listener` indexes this).
    pub listeners: Vec<ListenerRuntime>,
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
    /// The sum of every authenticator's generation: changes whenever any of them is reloaded.
    pub fn auth_generation(&self) -> u64 {
        self.listeners
            .iter()
            .map(|l| l.auth.generation())
            .fold(self.auth.generation(), u64::wrapping_add)
    }

    /// Counts a closed connection of listener `index` out of the global and listener totals.
    pub fn connection_closed(&self, index: u16) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
        if let Some(l) = self.listeners.get(usize::from(index)) {
            l.connections.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A broker-unique client identifier for a client that sent an empty one.
    pub fn assign_client_id(&self) -> String {
        let n = self.next_assigned.fetch_add(1, Ordering::Relaxed);
        format!("picomq-{:08x}-{n}", self.salt)
    }
}
