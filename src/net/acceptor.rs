//! The accept loop: owns the listening sockets and deals new connections to the I/O threads.
//!
//! Owns: the listening sockets (added and removed by a config reload through [`AcceptorMsg`]),
//! `max_connections` (broker-wide and per listener), TCP_NODELAY on every accepted socket. TLS
//! handshakes are not done here: the I/O thread runs them without blocking. Must not touch: any
//! connection after it is handed to an I/O thread.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use super::shared::{Control, NetListener, Wiring};
use crate::broker::Shared;

/// How long to wait before retrying after a failed accept.
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Token of the acceptor's waker (a message waits).
pub const WAKE: Token = Token(usize::MAX);

/// Orders for the accept loop.
pub enum AcceptorMsg {
    /// Stop accepting and tell the I/O threads to shut down.
    Stop,
    /// A config reload changed the listeners.
    Listeners(ListenerUpdate),
}

/// What a config reload changes in the listening sockets.
#[derive(Default)]
pub struct ListenerUpdate {
    /// New listening sockets, already bound.
    pub add: Vec<(TcpListener, NetListener)>,
    /// Listeners (by [`crate::broker::Listener::id`]) to close.
    pub remove: Vec<u32>,
    /// Kept listeners whose transport settings (TLS certificates) were rebuilt.
    pub replace: Vec<NetListener>,
}

/// Sends [`AcceptorMsg`]s to the accept loop and wakes it.
#[derive(Clone)]
pub struct AcceptorHandle {
    tx: Sender<AcceptorMsg>,
    waker: Arc<Waker>,
}

impl AcceptorHandle {
    /// A handle over the loop's channel and waker.
    pub fn new(tx: Sender<AcceptorMsg>, waker: Arc<Waker>) -> AcceptorHandle {
        AcceptorHandle { tx, waker }
    }

    /// Sends `msg`; returns at once.
    pub fn send(&self, msg: AcceptorMsg) {
        // After the loop has stopped, nothing is left to tell.
        if self.tx.send(msg).is_ok() {
            if let Err(e) = self.waker.wake() {
                log::error!("cannot wake the acceptor: {e}");
            }
        }
    }
}

/// The listening sockets by poll token (a removed one leaves a hole, reused by the next added).
struct Sockets(Vec<Option<(TcpListener, NetListener)>>);

impl Sockets {
    fn add(&mut self, poll: &Poll, mut socket: TcpListener, net: NetListener) {
        let token = self
            .0
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.0.len());
        if let Err(e) = poll
            .registry()
            .register(&mut socket, Token(token), Interest::READABLE)
        {
            log::error!("cannot watch listener: {e}");
        }
        if token == self.0.len() {
            self.0.push(Some((socket, net)));
        } else {
            self.0[token] = Some((socket, net));
        }
    }

    fn apply(&mut self, poll: &Poll, update: ListenerUpdate) {
        for slot in &mut self.0 {
            let Some((socket, net)) = slot else { continue };
            let id = net.listener.id;
            if update.remove.contains(&id) {
                let _ = poll.registry().deregister(socket);
                *slot = None;
            } else if let Some(new) = update.replace.iter().find(|n| n.listener.id == id) {
                *net = new.clone();
            }
        }
        for (socket, net) in update.add {
            self.add(poll, socket, net);
        }
    }
}

/// Accepts until told to stop, then tells the I/O threads to shut down.
pub fn run(
    mut poll: Poll,
    listeners: Vec<(TcpListener, NetListener)>,
    inbox: Receiver<AcceptorMsg>,
    shared: Arc<Shared>,
    wiring: Arc<Wiring>,
) {
    let mut events = Events::with_capacity(64);
    let mut next = 0usize;
    let mut sockets = Sockets(Vec::new());
    for (socket, net) in listeners {
        sockets.add(&poll, socket, net);
    }
    let mut backoff = false;
    'run: loop {
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
        while let Ok(msg) = inbox.try_recv() {
            match msg {
                AcceptorMsg::Stop => break 'run,
                AcceptorMsg::Listeners(update) => sockets.apply(&poll, update),
            }
        }
        if backoff || !events.is_empty() {
            // Accept on every listener: cheap (one WouldBlock each when idle) and it covers the
            // retry after a failure.
            backoff = false;
            for (socket, listener) in sockets.0.iter().flatten() {
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
