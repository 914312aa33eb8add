//! What the acceptor and the I/O threads pass between them: control messages, the channels to the
//! router shards and to each I/O thread, and each listener's transport settings.
//!
//! Owns: [`Control`], [`Adopted`], [`IoHandle`], [`Wiring`] and [`NetListener`]. Nothing here is
//! locked on a message's path. Must not touch: broker logic (in `crate::broker`) or sockets'
//! contents.

use std::sync::Arc;

use crossbeam_channel::Sender;
use mio::net::TcpStream;

use super::transport::Transport;
use crate::broker::admin::{AdminReply, AdminRequest};
use crate::broker::router_out::CommandBatch;
use crate::broker::{AuthJob, Handover, Listener};
use crate::protocol::ReasonCode;
use crate::router::shard::Delivery;

/// A listener as the I/O layer sees it: the core's [`Listener`] plus what only transports use.
#[derive(Clone)]
pub struct NetListener {
    /// The listener's settings and counters.
    pub listener: Arc<Listener>,
    /// Certificates of a TLS listener (reloadable).
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<super::tls::TlsAcceptor>>,
}

/// Messages to an I/O thread other than deliveries.
pub enum Control {
    /// A freshly accepted connection and its listener.
    NewConn(TcpStream, NetListener),
    /// A connection whose CONNECT names a session this thread owns.
    Adopt(Box<Adopted>),
    /// An admin request; the core's reply goes back on the channel.
    Admin(AdminRequest, Sender<AdminReply>),
    /// The broker-wide configuration was reloaded (`broker::Shared` holds the new one).
    Reconfigure,
    /// The password worker's verdict on a CONNECT of this thread (`Err`: the CONNACK reason).
    AuthDone(Box<AuthJob>, Result<(), ReasonCode>),
    /// Dial a link to another broker (`broker::dialled`).
    Dial(Box<crate::broker::dialled::DialSpec>),
    /// Disconnect everyone and exit.
    Shutdown,
}

/// A connection handed over after its CONNECT was admitted elsewhere.
pub struct Adopted {
    /// The socket (and its TLS state), deregistered from its first poll.
    pub transport: Transport,
    /// What the first thread's core knew of it.
    pub handover: Handover,
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

/// The bounded channels into one I/O thread for router work from the others.
pub struct WorkTx {
    /// Commands for the shards it owns.
    pub commands: Sender<CommandBatch>,
    /// Deliveries for its sessions.
    pub deliveries: Sender<Vec<Delivery>>,
}

/// The channels every I/O thread holds.
pub struct Wiring {
    /// Router work channels of the I/O threads, by thread (bounded: senders never block, see
    /// `broker::routing`).
    pub work: Vec<WorkTx>,
    /// Control inboxes and wakers of the I/O threads.
    pub io: Vec<IoHandle>,
    /// The password worker's queue (bounded, `auth_worker::AUTH_QUEUE`; senders never block: a
    /// job that does not fit is refused as Server busy). The worker holds no `Wiring`, only a
    /// weak reference, so this sender goes when the last I/O thread does and the worker ends.
    pub auth: Sender<AuthJob>,
}
