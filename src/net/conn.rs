//! One client socket: its read buffer, its pending output and what it is waiting for.
//!
//! Owns: [`Conn`], non-blocking reads into a buffer that grows on demand and is freed when empty,
//! and vectored writes of the session's [`OutBuf`](crate::session::OutBuf) until `WouldBlock`,
//! through the connection's [`Transport`] (plain TCP or TLS). Must not touch: protocol decisions
//! (the I/O thread hands decoded packets to the session).

use std::io;
use std::time::Instant;

use bytes::BytesMut;

use super::transport::{flush_plain, read_plain, Transport};

use crate::protocol::ProtocolVersion;
use crate::session::enhanced_auth::ConnectAuth;
use crate::session::Output;

/// Most bytes read from one socket per readiness event before others get a turn; a connection with
/// more waiting is put on the thread's retry list.
pub const READ_BUDGET: usize = 256 * 1024;
/// Size of each I/O thread's read scratch buffer.
pub const READ_SCRATCH: usize = 16 * 1024;
pub const MAX_IOVECS: usize = 64;

/// What the connection is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, no CONNECT yet; closed if none arrives by the deadline.
    AwaitingConnect {
        /// When the socket was accepted.
        since: Instant,
    },
    /// Attached to the session in this slot of the thread's session table.
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

/// Outcome of a read burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadState {
    /// The socket would block: all available bytes were read.
    Drained,
    /// The read budget ran out with more bytes possibly waiting.
    MoreWaiting,
    /// The peer closed the connection or the socket failed.
    Closed,
}

/// A client connection.
pub struct Conn {
    /// The socket, plain or under TLS.
    pub transport: Transport,
    /// Index of the listener that accepted it (for its limits and auth settings).
    pub listener: u16,
    /// Bytes read and not yet decoded; freed when empty.
    pub rbuf: BytesMut,
    /// Pending output and session actions.
    pub out: Output,
    /// What the connection waits for.
    pub phase: Phase,
    /// Protocol version once CONNECT is decoded.
    pub version: Option<ProtocolVersion>,
    /// Already on the thread's flush list for this turn.
    pub flush_queued: bool,
    /// Input is not read while too much output is pending.
    pub read_paused: bool,
    /// Since when the read buffer has held an incomplete packet (cleared by every complete one);
    /// checked against `limits.packet_timeout` while input is being read.
    pub partial_since: Option<Instant>,
    /// Input is not read or decoded before this time: the client is over its publish rate.
    pub throttled_until: Option<Instant>,
    /// An enhanced authentication exchange between CONNECT and CONNACK (phase stays
    /// `AwaitingConnect`, so the connect timeout bounds a stalled exchange).
    pub pending_auth: Option<Box<ConnectAuth>>,
}

impl Conn {
    /// A connection that has just been accepted.
    pub fn new(transport: Transport, listener: u16, now: Instant) -> Conn {
        Conn {
            transport,
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
        }
    }

    /// Reads until the socket would block, the budget is spent, or the buffer holds more than
    /// `max_buffered` bytes (the caller decodes and calls again). Reads go through the thread's
    /// `scratch` buffer and only the bytes received are kept, so a connection that sends a small
    /// packet now and then never holds a large buffer.
    ///
    /// With `short_read_ends`, a read that returns less than the scratch size ends the burst
    /// without the extra read that would only say `WouldBlock`: under edge-triggered readiness,
    /// bytes arriving after that read raise a new event. The caller passes false when the event
    /// also reported the peer's close (a FIN that arrived earlier raises no new edge) and when it
    /// reads without an event.
    pub fn read_some(
        &mut self,
        scratch: &mut [u8],
        max_buffered: usize,
        short_read_ends: bool,
    ) -> ReadState {
        match &mut self.transport {
            Transport::Plain(stream) => read_plain(
                stream,
                scratch,
                &mut self.rbuf,
                max_buffered,
                short_read_ends,
            ),
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.read_some(scratch, &mut self.rbuf, max_buffered),
        }
    }

    /// Frees the read buffer if it is empty, so idle connections hold no buffer.
    pub fn shrink(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            self.rbuf = BytesMut::new();
        }
    }

    /// Writes pending output until done or the socket would block. Returns whether everything was
    /// written (false: the socket would block, and a writable event will follow), or the socket
    /// error. Over TLS this also sends handshake messages and alerts rustls has queued.
    pub fn flush(&mut self) -> io::Result<bool> {
        match &mut self.transport {
            Transport::Plain(stream) => flush_plain(stream, &mut self.out.wire),
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.flush(&mut self.out.wire),
        }
    }
}
