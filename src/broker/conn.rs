//! The broker core's view of one connection: its undecoded input, its pending output and what it is
//! waiting for. No socket: the I/O layer appends what it reads to [`Conn::rbuf`] and writes
//! [`Conn::out`]'s bytes through whatever transport carries them (TCP, TLS, later WebSocket).
//!
//! Owns: [`Conn`], [`Phase`] and [`ConnTable`] (connections by the id the I/O layer gave them).
//! Must not touch: sockets, transports or protocol decisions (those are the core's and the
//! session's).

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use crate::protocol::ProtocolVersion;
use crate::session::enhanced_auth::ConnectAuth;
use crate::session::Output;

use super::listener::Listener;

/// What the connection is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, no CONNECT yet; closed if none arrives by the deadline.
    AwaitingConnect {
        /// When the socket was accepted.
        since: Instant,
    },
    /// Attached to the session in this slot of the core's session table.
    Attached {
        /// Session slot.
        slot: u32,
    },
    /// Flushing its last bytes, then waiting (briefly) for the peer to close.
    Closing {
        /// When closing began.
        since: Instant,
        /// Whether our FIN was sent after the last bytes.
        fin_sent: bool,
    },
}

/// A client connection as the core sees it.
pub struct Conn {
    /// The listener that accepted it (its limits and auth settings).
    pub listener: Arc<Listener>,
    /// Bytes read and not yet decoded; freed when empty.
    pub rbuf: BytesMut,
    /// Pending output and session actions.
    pub out: Output,
    /// What the connection waits for.
    pub phase: Phase,
    /// Protocol version once CONNECT is decoded.
    pub version: Option<ProtocolVersion>,
    /// Already on the flush list for this turn.
    pub flush_queued: bool,
    /// Input is not read while too much output is pending.
    pub read_paused: bool,
    /// Since when the read buffer has held an incomplete packet (cleared by every complete one);
    /// checked against `limits.packet_timeout` while input is being read.
    pub partial_since: Option<Instant>,
    /// Input is not read or decoded before this time: the client is over its publish rate, or
    /// (before attachment) its CONNECT's password is being checked off the thread: then it is
    /// the connect deadline and the verdict clears it.
    pub throttled_until: Option<Instant>,
    /// An enhanced authentication exchange between CONNECT and CONNACK (phase stays
    /// `AwaitingConnect`, so the connect timeout bounds a stalled exchange).
    pub pending_auth: Option<Box<ConnectAuth>>,
    /// Slot of its pending timer entry (0: none), see `timers.rs`.
    pub timer: u32,
    /// Not read while the thread's router batches wait for room and a PUBLISH is next.
    pub router_paused: bool,
    /// Output not written while the thread's router batches wait (a SUBACK behind its
    /// subscription command).
    pub output_held: bool,
    /// The verified client certificate's identity, set by the transport before the CONNECT is
    /// handled on a `use_identity_as_username` listener (`Some(None)`: no certificate). Boxed:
    /// most connections never have one.
    pub peer_identity: Option<Box<Option<String>>>,
    /// Tells this connection from earlier ones that had the same id on this thread (ids are
    /// reused as soon as a connection is gone): an answer that comes back later, such as a
    /// password check's verdict, names both and is dropped when they differ. 32 bits: a verdict
    /// would have to wait for 2^32 connections on one thread to be mistaken.
    pub serial: u32,
}

impl Conn {
    /// A connection that has just been accepted (or adopted), numbered `serial` by its core.
    pub fn new(listener: Arc<Listener>, now: Instant, serial: u32) -> Conn {
        Conn {
            listener,
            rbuf: BytesMut::new(),
            out: Output::default(),
            phase: Phase::AwaitingConnect { since: now },
            version: None,
            flush_queued: false,
            read_paused: false,
            partial_since: None,
            throttled_until: None,
            pending_auth: None,
            timer: 0,
            router_paused: false,
            output_held: false,
            peer_identity: None,
            serial,
        }
    }

    /// Frees the read buffer if it is empty, so idle connections hold no buffer.
    pub fn shrink(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            self.rbuf = BytesMut::new();
        }
    }
}

/// Connections by the id the I/O layer chose (its poll token), so both sides name a connection
/// the same way and an id is only reused once the I/O layer has let its socket go.
#[derive(Default)]
pub struct ConnTable {
    slots: Vec<Option<Conn>>,
    len: usize,
}

impl ConnTable {
    /// Stores `conn` under `id`, replacing nothing (the I/O layer never reuses a live id).
    pub fn insert(&mut self, id: usize, conn: Conn) {
        if self.slots.len() <= id {
            self.slots.resize_with(id + 1, || None);
        }
        debug_assert!(
            self.slots[id].is_none(),
            "connection id {id} reused while live"
        );
        if self.slots[id].replace(conn).is_none() {
            self.len += 1;
        }
    }

    /// The connection under `id`.
    pub fn get(&self, id: usize) -> Option<&Conn> {
        self.slots.get(id)?.as_ref()
    }

    /// The connection under `id`, mutably.
    pub fn get_mut(&mut self, id: usize) -> Option<&mut Conn> {
        self.slots.get_mut(id)?.as_mut()
    }

    /// Removes and returns the connection under `id`.
    pub fn remove(&mut self, id: usize) -> Option<Conn> {
        let conn = self.slots.get_mut(id)?.take()?;
        self.len -= 1;
        Some(conn)
    }

    /// Number of connections.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every connection with its id.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Conn)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(id, c)| Some((id, c.as_ref()?)))
    }

    /// Every connection with its id, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut Conn)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(id, c)| Some((id, c.as_mut()?)))
    }

    /// The ids in use.
    pub fn ids(&self) -> Vec<usize> {
        self.iter().map(|(id, _)| id).collect()
    }
}
