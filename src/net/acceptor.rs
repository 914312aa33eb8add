//! The accept loop: owns the listening sockets and deals new connections to the I/O threads.
//!
//! Owns: listeners, `max_connections` (broker-wide and per listener), TCP_NODELAY on every
//! accepted socket. TLS handshakes are not done here: the I/O thread runs them without blocking. Must not touch: any
//! connection after it is handed to an I/O thread.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use super::shared::{Control, NetListener, Wiring};
use crate::broker::Shared;

/// How long to wait before retrying after a failed accept.
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Token of the acceptor's stop waker.
pub const STOP: Token = Token(usize::MAX);

/// Accepts until the stop waker fires, then tells the I/O threads to shut down.
pub fn run(
    mut poll: Poll,
    mut listeners: Vec<(TcpListener, NetListener)>,
    shared: Arc<Shared>,
    wiring: Arc<Wiring>,
) {
    let mut events = Events::with_capacity(64);
    let mut next = 0usize;
    for (i, (l, _)) in listeners.iter_mut().enumerate() {
        if let Err(e) = poll.registry().register(l, Token(i), Interest::READABLE) {
            log::error!("cannot watch listener: {e}");
        }
    }
    let mut backoff = false;
    loop {
        // After a failed accept (EMFILE...), retry on a timer: sockets already waiting in the
        // backlog raise no new readiness edge, so waiting for one could wait for ever.
        let timeout = backoff.then_some(ACCEPT_RETRY);
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            log::error!("acceptor poll failed: {e}");
            break;
        }
        if events.iter().any(|ev| ev.token() == STOP) {
            break;
        }
        if backoff || !events.is_empty() {
            // Accept on every listener: cheap (one WouldBlock each when idle) and it covers the
            // retry after a failure.
            backoff = false;
            for (socket, listener) in &listeners {
                backoff |= !accept_all(socket, listener, &shared, &wiring, &mut next);
            }
        }
    }
    for io in &wiring.io {
        io.send(Control::Shutdown);
    }
}

/// Accepts until the listener would block; false when an accept failed and must be retried.
fn accept_all(
    socket: &TcpListener,
    net: &NetListener,
    shared: &Shared,
    wiring: &Wiring,
    next: &mut usize,
) -> bool {
    let listener = &net.listener;
    let max_connections = shared.config().max_connections;
    let settings = listener.settings();
    loop {
        match socket.accept() {
            Ok((stream, peer)) => {
                let open = shared.connections.fetch_add(1, Ordering::Relaxed);
                if open >= max_connections {
                    shared.connections.fetch_sub(1, Ordering::Relaxed);
                    log::warn!("refusing {peer}: max_connections ({max_connections}) reached");
                    drop(stream);
                    continue;
                }
                let here = listener.connections.fetch_add(1, Ordering::Relaxed);
                if let Some(max) = settings.cfg.max_connections.filter(|&max| here >= max) {
                    shared.connection_closed(listener);
                    log::warn!(
                        "refusing {peer}: max_connections ({max}) of listener {} reached",
                        settings.cfg.bind
                    );
                    drop(stream);
                    continue;
                }
                if let Err(e) = stream.set_nodelay(true) {
                    log::debug!("{peer}: TCP_NODELAY failed: {e}");
                }
                let t = *next % wiring.io.len();
                *next = next.wrapping_add(1);
                wiring.io[t].send(Control::NewConn(stream, net.clone()));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // EMFILE and friends: retried after ACCEPT_RETRY.
                log::warn!("accept failed: {e}");
                return false;
            }
        }
    }
}
