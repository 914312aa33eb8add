//! The I/O side of broker-opened connections (`broker::dialled`): non-blocking TCP connects,
//! telling the core when one completes or fails, reading into and writing from the link's
//! buffers, and closing sockets of links the core declared lost.
//!
//! Owns: those socket operations for dialled links. Must not touch: the client protocol or
//! redial policy (the core decides), or client connections (`io_thread.rs`).

use std::time::Instant;

use mio::event::Event;
use mio::{Interest, Token};

use super::io_thread::IoThread;
use super::transport::{ReadState, Transport};

impl IoThread {
    /// Starts the connects the core asked for.
    pub(super) fn drain_dials(&mut self) {
        for id in std::mem::take(&mut self.core.out.dial_closed) {
            if let Some(mut t) = self.socks.remove(id) {
                let _ = self.poll.registry().deregister(t.socket());
            }
        }
        for (link, addr) in std::mem::take(&mut self.core.out.dials) {
            let mut stream = match mio::net::TcpStream::connect(addr) {
                Ok(s) => s,
                Err(e) => {
                    self.core
                        .dial_lost(link, &format!("cannot dial {addr}: {e}"));
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let id = self.socks.vacant_key();
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut stream, Token(id), interest)
            {
                self.core
                    .dial_lost(link, &format!("cannot watch a socket: {e}"));
                continue;
            }
            self.socks.insert(Transport::Plain(stream));
            self.core.dial_opened(link, id);
        }
        // A connect that failed at once, or a lost link, may have queued more of the above.
        if !self.core.out.dial_closed.is_empty() {
            for id in std::mem::take(&mut self.core.out.dial_closed) {
                if let Some(mut t) = self.socks.remove(id) {
                    let _ = self.poll.registry().deregister(t.socket());
                }
            }
        }
    }

    /// A readiness event on dialled socket `id` of `link`.
    pub(super) fn dial_event(&mut self, link: usize, id: usize, ev: &Event, now: Instant) {
        if self.core.dial_connecting(link) {
            if !(ev.is_writable() || ev.is_error() || ev.is_read_closed()) {
                return;
            }
            // A non-blocking connect has finished: peer_addr says whether it succeeded.
            let Some(t) = self.socks.get_mut(id) else {
                return;
            };
            let sock = t.socket();
            match (sock.take_error(), sock.peer_addr()) {
                (Ok(None), Ok(_)) => self.core.dial_connected(link, now),
                (Ok(Some(e)), _) | (Err(e), _) | (_, Err(e)) => {
                    self.core.dial_lost(link, &format!("connect failed: {e}"));
                    self.drain_dials();
                    return;
                }
            }
        }
        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
            self.dial_read(link, id, now);
        }
        if ev.is_writable() {
            self.dial_flush(id, now);
        }
    }

    fn dial_read(&mut self, link: usize, id: usize, now: Instant) {
        let (Some(t), Some(rbuf)) = (self.socks.get_mut(id), self.core.dial_rbuf(link)) else {
            return;
        };
        let state = t.read_some(&mut self.scratch, rbuf, usize::MAX, false);
        self.core.dial_input(link, now);
        if state == ReadState::Closed {
            self.core.dial_lost(link, "upstream closed the connection");
        }
        self.drain_dials();
    }

    /// Writes dialled socket `id`'s output.
    pub(super) fn dial_flush(&mut self, id: usize, now: Instant) {
        let Some(link) = self.core.dialled_link(id) else {
            return;
        };
        if self.core.dial_connecting(link) {
            return; // the writable event of the connect flushes
        }
        let (Some(t), Some(out)) = (self.socks.get_mut(id), self.core.dial_out(link)) else {
            return;
        };
        match t.flush(out) {
            Ok(true) => self.core.dial_written(link, now),
            Ok(false) => {}
            Err(e) => self.core.dial_lost(link, &format!("write failed: {e}")),
        }
        self.drain_dials();
    }
}
