//! The byte stream under a connection: a plain TCP socket, or (feature `tls`) a TCP socket with a
//! rustls server connection on top.
//!
//! This is the transport slot: a new kind of stream (WebSocket) is a variant here and in the
//! acceptor's wrapping; the broker core never sees which one carries its bytes.
//!
//! Owns: [`Transport`] and, for TLS, driving rustls without blocking: `read_tls` /
//! `process_new_packets` / plaintext reads until the socket would block, `write_tls` until the
//! socket would block or nothing is pending, and `close_notify` on close. An enum rather than a
//! trait object, so the plain path is a direct call. Must not touch: MQTT bytes' meaning (the
//! connection decodes them), sessions, or the choice of certificates (`tls.rs`).

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;

use bytes::BytesMut;
use mio::net::TcpStream;

use crate::session::OutBuf;

/// Most bytes read from one socket per readiness event before others get a turn; a connection with
/// more waiting is put on the thread's retry list.
pub const READ_BUDGET: usize = 256 * 1024;
/// Most slices handed to one vectored write.
pub const MAX_IOVECS: usize = 64;

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

/// A connection's stream.
pub enum Transport {
    /// MQTT straight over TCP.
    Plain(TcpStream),
    /// MQTT over TLS (boxed: the rustls state is large and this keeps the plain variant small).
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Transport {
    /// The socket, e.g. to register it with a poll.
    pub fn socket(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) => s,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => &mut t.sock,
        }
    }

    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        !matches!(self, Transport::Plain(_))
    }

    /// TLS records (handshake messages, alerts) are waiting to be written.
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.tls.wants_write(),
        }
    }

    /// Queues a TLS close_notify (once); nothing for plain TCP. The next flush sends it.
    pub fn close_notify(&mut self) {
        #[cfg(feature = "tls")]
        if let Transport::Tls(t) = self {
            if !t.close_sent {
                t.close_sent = true;
                t.tls.send_close_notify();
            }
        }
    }

    /// Reads into `rbuf` until the socket would block, the budget is spent, or `rbuf` holds more
    /// than `max_buffered` bytes (the caller decodes and calls again). Reads go through the
    /// thread's `scratch` buffer and only the bytes received are kept, so a connection that sends
    /// a small packet now and then never holds a large buffer.
    ///
    /// With `short_read_ends`, a read that returns less than the scratch size ends the burst
    /// without the extra read that would only say `WouldBlock`: under edge-triggered readiness,
    /// bytes arriving after that read raise a new event. The caller passes false when the event
    /// also reported the peer's close (a FIN that arrived earlier raises no new edge) and when it
    /// reads without an event.
    pub fn read_some(
        &mut self,
        scratch: &mut [u8],
        rbuf: &mut BytesMut,
        max_buffered: usize,
        short_read_ends: bool,
    ) -> ReadState {
        match self {
            Transport::Plain(stream) => {
                read_plain(stream, scratch, rbuf, max_buffered, short_read_ends)
            }
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.read_some(scratch, rbuf, max_buffered),
        }
    }

    /// Writes `wire` until done or the socket would block. Returns whether everything was
    /// written (false: the socket would block, and a writable event will follow), or the socket
    /// error. Over TLS this also sends handshake messages and alerts rustls has queued.
    pub fn flush(&mut self, wire: &mut OutBuf) -> io::Result<bool> {
        match self {
            Transport::Plain(stream) => flush_plain(stream, wire),
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.flush(wire),
        }
    }

    /// Sends FIN after the last bytes.
    pub fn shutdown_write(&mut self) {
        let _ = self.socket().shutdown(Shutdown::Write);
    }

    /// The subject CN (else first text SAN) of the client's verified certificate (TLS with a client
    /// certificate only).
    pub fn peer_identity(&self) -> Option<String> {
        match self {
            Transport::Plain(_) => None,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t
                .tls
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|cert| super::tls::certificate_identity(cert)),
        }
    }
}

/// A socket and the rustls server state driven over it.
#[cfg(feature = "tls")]
pub struct TlsStream {
    sock: TcpStream,
    tls: rustls::ServerConnection,
    close_sent: bool,
}

#[cfg(feature = "tls")]
impl TlsStream {
    /// Wraps an accepted socket; the handshake runs as bytes arrive.
    pub fn new(sock: TcpStream, tls: rustls::ServerConnection) -> TlsStream {
        TlsStream {
            sock,
            tls,
            close_sent: false,
        }
    }

    /// Reads decrypted bytes into `rbuf` until the socket would block, the budget is spent or
    /// `rbuf` holds `max_buffered` bytes. Plaintext rustls already holds is taken before the
    /// socket is read again, so nothing is left behind when this says `Drained`. A TLS error
    /// (bad certificate, garbage instead of records) sends the alert if it can and reports
    /// `Closed`.
    pub fn read_some(
        &mut self,
        scratch: &mut [u8],
        rbuf: &mut BytesMut,
        max_buffered: usize,
    ) -> ReadState {
        let mut total = 0;
        loop {
            loop {
                if rbuf.len() >= max_buffered {
                    return ReadState::MoreWaiting;
                }
                match self.tls.reader().read(scratch) {
                    // close_notify received and every byte before it taken.
                    Ok(0) => return ReadState::Closed,
                    Ok(n) => rbuf.extend_from_slice(&scratch[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // TCP closed without close_notify.
                    Err(_) => return ReadState::Closed,
                }
            }
            if total >= READ_BUDGET {
                return ReadState::MoreWaiting;
            }
            match self.tls.read_tls(&mut self.sock) {
                Ok(0) => return ReadState::Closed,
                Ok(n) => {
                    total += n;
                    if let Err(e) = self.tls.process_new_packets() {
                        // Certificate and version problems are worth an operator's attention;
                        // garbage and protocol noise (scanners) only at debug level.
                        let level = match e {
                            rustls::Error::InvalidCertificate(_)
                            | rustls::Error::NoCertificatesPresented
                            | rustls::Error::PeerIncompatible(_) => log::Level::Info,
                            _ => log::Level::Debug,
                        };
                        let peer = self.sock.peer_addr().ok();
                        log::log!(level, "TLS handshake or record error with {peer:?}: {e}");
                        // The alert rustls queued, if the socket takes it.
                        let _ = self.tls.write_tls(&mut self.sock);
                        return ReadState::Closed;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadState::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return ReadState::Closed,
            }
        }
    }

    /// Encrypts `wire` and writes it, with any handshake data or alert, until everything is on
    /// the socket (`Ok(true)`) or it would block (`Ok(false)`: a writable event follows).
    pub fn flush(&mut self, wire: &mut OutBuf) -> io::Result<bool> {
        loop {
            while self.tls.wants_write() {
                match self.tls.write_tls(&mut self.sock) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if wire.writable() == 0 || self.close_sent {
                return Ok(true);
            }
            if self.tls.is_handshaking() {
                // Nothing is sent before the handshake ends; it ends on a read, which flushes.
                return Ok(false);
            }
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let n = wire.io_slices(&mut slices);
            // rustls takes up to its buffer limit (64 KiB) and encrypts at once.
            let taken = self.tls.writer().write_vectored(&slices[..n])?;
            if taken == 0 && !self.tls.wants_write() {
                return Err(io::ErrorKind::WriteZero.into());
            }
            wire.consume(taken);
        }
    }
}

/// Plain TCP: reads until the socket would block (see [`Transport::read_some`]).
#[inline]
pub fn read_plain(
    stream: &mut TcpStream,
    scratch: &mut [u8],
    rbuf: &mut BytesMut,
    max_buffered: usize,
    short_read_ends: bool,
) -> ReadState {
    let mut total = 0;
    loop {
        if total >= READ_BUDGET || rbuf.len() >= max_buffered {
            return ReadState::MoreWaiting;
        }
        match stream.read(scratch) {
            Ok(0) => return ReadState::Closed,
            Ok(n) => {
                rbuf.extend_from_slice(&scratch[..n]);
                total += n;
                if short_read_ends && n < scratch.len() {
                    return ReadState::Drained;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadState::Drained,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return ReadState::Closed,
        }
    }
}

/// Plain TCP: vectored writes of `wire` until done or the socket would block.
#[inline]
pub fn flush_plain(stream: &mut TcpStream, wire: &mut OutBuf) -> io::Result<bool> {
    while wire.writable() > 0 {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let n = wire.io_slices(&mut slices);
        match stream.write_vectored(&slices[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(w) => wire.consume(w),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
