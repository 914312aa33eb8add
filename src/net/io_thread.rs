//! One mio event-loop thread: owns its sockets and transports, reads into the core's buffers,
//! writes the core's output, and carries out the core's outbox (router sends, closes, handovers).
//!
//! Loop contract (mio): after a readiness event, read or write until `WouldBlock`; tolerate
//! spurious events; one `Waker` per poll. Each turn: socket events, control messages, router
//! deliveries (with a budget), then one flush per connection that has output — so everything a
//! turn produced for a socket leaves in one write. Must not touch: broker logic (the core in
//! `crate::broker` decides; this file only moves bytes and wakes threads).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TrySendError};
use mio::{Events, Interest, Poll, Token};

use crate::broker::router_out::CommandBatch;
use crate::broker::slab::Slab;
use crate::broker::{Closed, Core, Listener, Phase};
use crate::router::shard::Delivery;
use crate::session::LinkLoss;

use super::shared::{Adopted, Control, NetListener, Wiring};
use super::transport::{ReadState, Transport};

/// Token of the thread's waker; connection tokens are slab indexes below it.
pub const WAKER: Token = Token(usize::MAX);
/// Times one flush may refill a connection's output from its session queue before other
/// connections get their turn.
const FLUSH_ROUNDS: usize = 4;
/// Delivery batches from other threads taken per turn before sockets get another look.
const DELIVERY_BATCHES: usize = 64;
/// Command batches from other threads taken per turn before sockets get another look.
const COMMAND_BATCHES: usize = 16;
/// How soon a congested thread (router batches waiting for room) tries to send again.
const CONGESTED_RETRY: Duration = Duration::from_millis(1);
/// Size of each I/O thread's read scratch buffer.
pub const READ_SCRATCH: usize = 16 * 1024;

/// One I/O thread's state.
pub struct IoThread {
    /// Index of this thread.
    pub index: u16,
    pub(super) poll: Poll,
    /// The broker logic of this thread.
    pub(super) core: Core,
    /// Transports by connection id (the poll token; the core uses the same ids).
    pub(super) socks: Slab<Transport>,
    wiring: Arc<Wiring>,
    /// Deliveries from other threads' shards for this thread's sessions.
    deliveries: Receiver<Vec<Delivery>>,
    /// Commands from other threads for this thread's shards.
    commands: Receiver<CommandBatch>,
    /// Work was left in the channels last turn: poll without sleeping.
    work_left: bool,
    /// Control messages.
    control: Receiver<Control>,
    /// Connections that still had input waiting when their read budget ran out.
    more_input: Vec<usize>,
    /// Connections whose output budget ran out with the socket still writable.
    flush_next_turn: Vec<usize>,
    /// Every socket read lands here first; only the bytes received are copied to the connection.
    pub(super) scratch: Box<[u8]>,
}

impl IoThread {
    /// An I/O thread around `core`, polling `poll`.
    pub fn new(
        core: Core,
        poll: Poll,
        wiring: Arc<Wiring>,
        deliveries: Receiver<Vec<Delivery>>,
        commands: Receiver<CommandBatch>,
        control: Receiver<Control>,
    ) -> IoThread {
        IoThread {
            index: core.index,
            poll,
            core,
            socks: Slab::default(),
            wiring,
            deliveries,
            commands,
            work_left: false,
            control,
            more_input: Vec::new(),
            flush_next_turn: Vec::new(),
            scratch: vec![0; READ_SCRATCH].into_boxed_slice(),
        }
    }

    /// Runs the event loop until shutdown.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let busy = !self.more_input.is_empty() || !self.flush_next_turn.is_empty();
            // Sleep until input, a wake-up, or the core's next deadline (none: until input).
            let timer = self
                .core
                .next_timeout()
                .map(|at| at.saturating_duration_since(now));
            let timeout = if busy || self.work_left {
                Some(Duration::ZERO)
            } else if self.core.is_congested() {
                Some(timer.map_or(CONGESTED_RETRY, |t| t.min(CONGESTED_RETRY)))
            } else {
                timer
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("io thread {}: poll failed: {e}", self.index);
                    return;
                }
            }
            let now = Instant::now();
            self.core.begin_turn(now);
            // Other threads' work first: a subscription sent before its SUBACK was written is in
            // place before any PUBLISH that SUBACK may have prompted is read below.
            self.take_work();
            for ev in events.iter() {
                if ev.token() == WAKER {
                    continue;
                }
                let id = ev.token().0;
                if let Some(link) = self.core.dialled_link(id) {
                    self.dial_event(link, id, ev, now);
                    continue;
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    // A short read ends the burst only when the peer has not closed: a FIN that
                    // came before this event would raise no new edge and must be read now.
                    let short_read_ends = !(ev.is_read_closed() || ev.is_error());
                    self.on_readable(id, short_read_ends, now);
                }
                if ev.is_writable() {
                    self.core.mark_dirty(id);
                }
                // Write what this event produced now, as Mosquitto does, rather than after every
                // event of the turn: in a burst, the first message no longer waits for all the
                // others. Writes stay batched per connection within the event (a read burst
                // yields many messages), and router work still goes first.
                if !self.core.out.dirty.is_empty() {
                    self.drain_outbox(true);
                    self.flush_dirty();
                }
            }
            for id in std::mem::take(&mut self.more_input) {
                self.on_readable(id, false, now);
            }
            for id in std::mem::take(&mut self.flush_next_turn) {
                self.core.mark_dirty(id);
            }
            if !self.drain_control(now) {
                self.core.shutdown();
                self.drain_outbox(true);
                return;
            }
            // Router work before output: a SUBACK leaves only after its subscription is queued.
            self.drain_outbox(true);
            self.flush_dirty();
            let now = Instant::now();
            if self.core.next_timeout().is_some_and(|at| at <= now) {
                self.core.tick(now);
                self.drain_outbox(true);
                self.flush_dirty();
            }
            // Work from connections that failed while flushing (wills, unsubscribes).
            self.drain_outbox(true);
        }
    }

    /// Takes delivery batches (always: they only queue in sessions, so taking them never waits
    /// on anything) and, unless this thread is congested, command batches for its shards.
    fn take_work(&mut self) {
        for batch in self.deliveries.try_iter().take(DELIVERY_BATCHES) {
            for d in batch {
                self.core.deliver(d);
            }
        }
        let congested = self.core.is_congested();
        if !congested {
            for batch in self.commands.try_iter().take(COMMAND_BATCHES) {
                self.core.apply_commands(batch);
            }
        }
        let commands_left = !self.commands.is_empty();
        self.core.set_backlog(commands_left);
        self.work_left = !self.deliveries.is_empty() || (!congested && commands_left);
    }

    /// Carries out the core's outbox: router work (all of it, or only when a list is full), the
    /// batches for other threads (never blocking: what does not fit stays and the core is told
    /// it is congested), closes, handovers and connections to read again.
    fn drain_outbox(&mut self, all_router: bool) {
        if all_router || self.core.out.router.is_full() {
            self.core.run_router();
        }
        self.send_batches();
        self.send_auth_jobs();
        for closed in std::mem::take(&mut self.core.out.closed) {
            self.close_socket(closed);
        }
        self.drain_dials();
        let out = &mut self.core.out;
        for h in std::mem::take(&mut out.handovers) {
            let Some(mut transport) = self.socks.remove(h.id) else {
                continue;
            };
            let _ = self.poll.registry().deregister(transport.socket());
            let to = h.to;
            let adopted = Adopted {
                transport,
                handover: h,
            };
            self.wiring.io[to].send(Control::Adopt(Box::new(adopted)));
        }
        self.more_input.append(&mut self.core.out.read_again);
    }

    /// Tries to send each waiting batch to its thread, waking each thread that got one.
    fn send_batches(&mut self) {
        let router = &mut self.core.out.router;
        if !router.has_unsent() {
            self.core.set_congested(false);
            return;
        }
        for (t, peer) in self.wiring.work.iter().enumerate() {
            let mut sent = false;
            if !router.commands[t].is_empty() {
                let batch = std::mem::take(&mut router.commands[t]);
                match peer.commands.try_send(batch) {
                    Ok(()) => sent = true,
                    Err(TrySendError::Full(batch)) => router.commands[t] = batch,
                    // That thread has exited (shutdown): nothing left to route to.
                    Err(TrySendError::Disconnected(_)) => {}
                }
            }
            if !router.deliveries[t].is_empty() {
                let batch = std::mem::take(&mut router.deliveries[t]);
                match peer.deliveries.try_send(batch) {
                    Ok(()) => sent = true,
                    Err(TrySendError::Full(batch)) => router.deliveries[t] = batch,
                    Err(TrySendError::Disconnected(_)) => {}
                }
            }
            if sent {
                if let Err(e) = self.wiring.io[t].waker.wake() {
                    log::warn!("waking I/O thread {t} failed: {e}");
                }
            }
        }
        let unsent = router.has_unsent();
        self.core.set_congested(unsent);
    }

    /// Hands the core's password checks to the password worker, never blocking: a job its queue
    /// has no room for (or that finds it gone) goes back to the core, which refuses the CONNECT
    /// as Server busy (its close is carried out below in `drain_outbox`).
    fn send_auth_jobs(&mut self) {
        for job in std::mem::take(&mut self.core.out.auth_jobs) {
            match self.wiring.auth.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                    self.core.auth_refused_busy(job)
                }
            }
        }
    }

    /// Lets a closed connection's socket go: its last bytes if the socket takes them, TLS
    /// close_notify, deregistration, and the connection counts.
    fn close_socket(&mut self, mut closed: Closed) {
        if let Some(mut t) = self.socks.remove(closed.id) {
            t.close_notify();
            let pending = closed.wire.len();
            let _ = t.flush(&mut closed.wire);
            let written = pending - closed.wire.len();
            self.core.stats.sent(written, &mut closed.wire);
            let _ = self.poll.registry().deregister(t.socket());
        }
        self.core.shared.connection_closed(&closed.listener);
    }

    fn drain_control(&mut self, now: Instant) -> bool {
        while let Ok(msg) = self.control.try_recv() {
            match msg {
                Control::NewConn(stream, listener) => {
                    super::fault::hit("io-new-connection");
                    if let Some(transport) = self.wrap(stream, &listener) {
                        self.add_conn(transport, listener.listener, now);
                    }
                }
                Control::Adopt(a) => {
                    let listener = a.handover.listener.clone();
                    if let Some(id) = self.register(a.transport, &listener) {
                        self.core.adopt(id, a.handover, now);
                        self.drain_outbox(false);
                    }
                }
                Control::Admin(req, reply) => {
                    // The asker may have given up waiting: nothing to do then.
                    let _ = reply.send(self.core.admin(req));
                    self.drain_outbox(false);
                }
                Control::Reconfigure => {
                    self.core.reconfigure();
                    self.drain_outbox(false);
                }
                Control::AuthDone(job, verdict) => {
                    self.core.auth_done(*job, verdict);
                    self.drain_outbox(false);
                }
                Control::Dial(spec) => {
                    if let Err(e) = self.core.add_dial(*spec) {
                        log::error!("cannot start a dialled link: {e}");
                    }
                    self.drain_outbox(false);
                }
                Control::Shutdown => return false,
            }
        }
        true
    }

    /// The transport for a socket accepted by `listener`: plain, or TLS with the listener's
    /// current certificate (the handshake then runs as bytes arrive).
    fn wrap(&mut self, stream: mio::net::TcpStream, listener: &NetListener) -> Option<Transport> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &listener.tls {
            return match tls.new_connection() {
                Ok(state) => Some(Transport::Tls(Box::new(super::transport::TlsStream::new(
                    stream, state,
                )))),
                Err(e) => {
                    log::warn!("cannot start TLS: {e}");
                    self.core.shared.connection_closed(&listener.listener);
                    None
                }
            };
        }
        let _ = listener;
        Some(Transport::Plain(stream))
    }

    /// Registers a socket with the poll and stores it; returns its id.
    fn register(&mut self, mut transport: Transport, listener: &Listener) -> Option<usize> {
        let id = self.socks.vacant_key();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(transport.socket(), Token(id), interest)
        {
            log::warn!("io thread {}: register failed: {e}", self.index);
            self.core.shared.connection_closed(listener);
            return None;
        }
        let id2 = self.socks.insert(transport);
        debug_assert_eq!(id, id2);
        Some(id)
    }

    /// Registers a new connection and opens it in the core.
    fn add_conn(&mut self, transport: Transport, listener: Arc<Listener>, now: Instant) {
        if let Some(id) = self.register(transport, &listener) {
            self.core.open(id, listener, now);
        }
    }

    fn on_readable(&mut self, id: usize, short_read_ends: bool, now: Instant) {
        if !self.core.may_read(id) {
            return;
        }
        let (Some(t), Some(conn)) = (self.socks.get_mut(id), self.core.conns.get_mut(id)) else {
            return;
        };
        let closing = matches!(conn.phase, Phase::Closing { .. });
        let max = match closing {
            // Lingering close: read (and discard) until the peer closes, so our last packet is
            // not destroyed by a reset caused by unread data.
            true => usize::MAX,
            false => (self.core.cfg.mqtt.max_packet_size as usize).saturating_add(8),
        };
        let buffered = conn.rbuf.len();
        let state = t.read_some(&mut self.scratch, &mut conn.rbuf, max, short_read_ends);
        let received = conn.rbuf.len().saturating_sub(buffered);
        if conn.version.is_none() && t.is_tls() && conn.peer_identity.is_none() {
            // The core needs the certificate's name only for a CONNECT on a
            // use_identity_as_username listener; the handshake is over once plaintext arrives.
            if received > 0 && uses_identity(&conn.listener) {
                conn.peer_identity = Some(Box::new(t.peer_identity()));
            }
        }
        let tls_output = t.wants_write();
        self.core.stats.counters.bytes_received += received as u64;
        if tls_output {
            // TLS handshake messages (or an alert) to send.
            self.core.mark_dirty(id);
        }
        // Decode before acting on a close, so a DISCONNECT followed by FIN is honoured.
        self.core.input(id, now);
        match state {
            ReadState::Drained => {}
            ReadState::Closed => {
                let loss = (!closing).then_some(LinkLoss::Network);
                self.core.close(id, loss);
            }
            // Every packet fits in max_packet_size, so a buffer this full always decodes
            // something or fails: coming back next turn always makes progress.
            ReadState::MoreWaiting => self.more_input.push(id),
        }
        self.drain_outbox(false);
    }

    fn flush_dirty(&mut self) {
        let now = Instant::now();
        // In the order the output was produced: the message that arrived first in a burst
        // leaves first (a LIFO pop made the first one wait for every other write of the turn).
        let mut batch = std::mem::take(&mut self.core.out.dirty);
        while !batch.is_empty() {
            for id in batch.drain(..) {
                self.flush_one(id, now);
            }
            // Flushing may mark more (rare): take them too, reusing the buffer.
            std::mem::swap(&mut batch, &mut self.core.out.dirty);
        }
        self.core.out.dirty = batch;
        for id in std::mem::take(&mut self.core.out.dial_dirty) {
            self.dial_flush(id, now);
        }
        self.drain_outbox(false);
    }

    /// Writes a connection's output, refilling it from the session's queue while the socket takes
    /// it, up to a budget; a connection that still has output when the budget runs out (and whose
    /// socket did not block, so no writable event will come) is flushed again next turn.
    fn flush_one(&mut self, id: usize, now: Instant) {
        let Some(t) = self.socks.get_mut(id) else {
            return;
        };
        if self.core.conns.get(id).is_some_and(|c| c.output_held) {
            // Held behind a subscription still waiting to be sent; released when it is.
            if let Some(conn) = self.core.conns.get_mut(id) {
                conn.flush_queued = false;
            }
            return;
        }
        let mut rounds = 0;
        loop {
            let core = &mut self.core;
            let Some(conn) = core.conns.get_mut(id) else {
                return;
            };
            let pending = conn.out.wire.len();
            let result = t.flush(&mut conn.out.wire);
            let written = pending - conn.out.wire.len();
            core.stats.sent(written, &mut conn.out.wire);
            match result {
                Err(_) => return self.core.close(id, Some(LinkLoss::Network)),
                Ok(false) => break,
                Ok(true) => {}
            }
            // Buffer drained: let the session send what its window or the buffer held back.
            if !core.written(id, now) {
                break;
            }
            rounds += 1;
            if rounds == FLUSH_ROUNDS {
                self.flush_next_turn.push(id);
                break;
            }
        }
        self.core.flushed(id);
        let Some(conn) = self.core.conns.get_mut(id) else {
            return;
        };
        if let Phase::Closing {
            since,
            fin_sent: false,
        } = conn.phase
        {
            if conn.out.wire.writable() == 0 {
                t.close_notify();
                match t.flush(&mut conn.out.wire) {
                    Ok(true) => {
                        t.shutdown_write();
                        conn.phase = Phase::Closing {
                            since,
                            fin_sent: true,
                        };
                    }
                    // The close_notify waits for a writable event.
                    Ok(false) => {}
                    Err(_) => self.core.close(id, None),
                }
            }
        }
    }
}

/// Whether `listener` makes the client certificate's name the user name.
fn uses_identity(listener: &Listener) -> bool {
    listener
        .settings()
        .cfg
        .tls
        .as_ref()
        .is_some_and(|t| t.use_identity_as_username)
}
