//! One mio event-loop thread: owns its sockets and the sessions attached to them, decodes input,
//! drives sessions, applies their actions and writes their output.
//!
//! Loop contract (mio): after a readiness event, read or write until `WouldBlock`; tolerate
//! spurious events; one `Waker` per poll. Each turn: socket events, control messages, router
//! deliveries (with a budget), then one flush per connection that has output — so everything a turn
//! produced for a socket leaves in one write. The periodic passes (timeouts, timers, shutdown) are
//! in `housekeeping.rs`. Must not touch: protocol rules (in `session`) or routing (in `router`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token};

use crate::config::RateLimitPolicy;
use crate::message::SessionRef;
use crate::protocol::decode::{decode_packet_limited, PropLimits};
use crate::protocol::{Packet, ProtocolVersion, ReasonCode};
use crate::router::shard::{Command, Delivery};
use crate::session::connect::{peek_protocol_level, write_refusal};
use crate::session::limits::PublishRate;
use crate::session::outbound::{Queued, WIRE_HIGH_WATER};
use crate::session::{Action, LinkLoss, Output, Session};

use super::conn::{Conn, Phase, ReadState};
use super::router_batch::RouterBatch;
use super::shared::{Control, Shared};
use super::slab::Slab;
use super::sys_stats::{flush_counted, IoStats};
use super::transport::Transport;

/// Token of the thread's waker; connection tokens are slab indexes below it.
pub const WAKER: Token = Token(usize::MAX);
const TICK: Duration = Duration::from_millis(250);
/// How long a closing connection may wait for its peer to close after our last bytes.
pub(super) const LINGER: Duration = Duration::from_secs(2);
/// Times one flush may refill a connection's output from its session queue before other
/// connections get their turn.
const FLUSH_ROUNDS: usize = 4;
/// Output a connection may have pending before its input is no longer read.
const OUTPUT_PAUSE: usize = 2 * WIRE_HIGH_WATER;
/// Output level below which a paused connection's input is read again.
const OUTPUT_RESUME: usize = WIRE_HIGH_WATER;
/// Router deliveries handled per turn before sockets get another look.
const DELIVERY_BUDGET: usize = 16 * 1024;

/// A session and the connection attached to it, if any.
pub struct SessionSlot {
    /// The session state machine.
    pub session: Session,
    /// Index of the attached connection.
    pub conn: Option<usize>,
    /// Listener of the connection last attached: its authenticator builds the session's ACL.
    pub listener: u16,
}

/// One I/O thread's state.
pub struct IoThread {
    /// Index of this thread (the `thread` of the `SessionRef`s it owns).
    pub index: u16,
    /// The thread's poll.
    pub poll: Poll,
    /// Shared broker state.
    pub shared: Arc<Shared>,
    /// Connections by token.
    pub conns: Slab<Conn>,
    /// Sessions by slot.
    pub sessions: Slab<SessionSlot>,
    /// Client identifier -> local session slot.
    pub by_client: crate::router::hash::FastMap<Arc<str>, u32>,
    /// Router deliveries for local sessions.
    pub deliveries: Receiver<Delivery>,
    /// Control messages.
    pub control: Receiver<Control>,
    /// Connections with output to flush at the end of the turn.
    pub dirty: Vec<usize>,
    /// Connections that still had input waiting when their read budget ran out.
    pub more_input: Vec<usize>,
    /// Connections whose output budget ran out with the socket still writable.
    pub flush_next_turn: Vec<usize>,
    /// Output sink for sessions without a connection.
    pub offline_out: Output,
    /// Every socket read lands here first; only the bytes received are copied to the connection.
    pub scratch: Box<[u8]>,
    /// Router commands gathered this turn.
    pub router_batch: RouterBatch,
    /// The clock read once per loop turn, for everything the turn does.
    pub now: Instant,
    /// Generation of the password/ACL files the sessions' ACL views were built from.
    pub auth_generation: u64,
    /// `$SYS` counters of this thread (`sys_stats.rs`).
    pub stats: IoStats,
    /// Publish rate state of clients whose session ended while their buckets were not full, for
    /// their next session (a client id always lives on the same thread): reconnecting with a
    /// clean start does not refill the burst. Entries go once their buckets are full again.
    pub rate_debts: crate::router::hash::FastMap<Arc<str>, PublishRate>,
}

impl IoThread {
    /// Runs the event loop until shutdown.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_tick = Instant::now() + TICK;
        loop {
            let now = Instant::now();
            let timeout = if self.more_input.is_empty() && self.flush_next_turn.is_empty() {
                next_tick.saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("io thread {}: poll failed: {e}", self.index);
                    return;
                }
            }
            self.now = Instant::now();
            for ev in events.iter() {
                if ev.token() == WAKER {
                    continue;
                }
                let id = ev.token().0;
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    // A short read ends the burst only when the peer has not closed: a FIN that
                    // came before this event would raise no new edge and must be read now.
                    let short_read_ends = !(ev.is_read_closed() || ev.is_error());
                    self.on_readable(id, short_read_ends);
                }
                if ev.is_writable() {
                    self.mark_dirty(id);
                }
            }
            for id in std::mem::take(&mut self.more_input) {
                self.on_readable(id, false);
            }
            for id in std::mem::take(&mut self.flush_next_turn) {
                self.mark_dirty(id);
            }
            if !self.drain_control() {
                self.shutdown();
                return;
            }
            self.drain_deliveries();
            // Router work before output: a SUBACK leaves only after its subscription is queued.
            self.router_batch.send();
            self.flush_dirty();
            let now = Instant::now();
            if now >= next_tick {
                self.tick(now);
                self.router_batch.send();
                self.flush_dirty();
                next_tick = now + TICK;
            }
            // Work from connections that failed while flushing (wills, unsubscribes).
            self.router_batch.send();
        }
    }

    fn drain_control(&mut self) -> bool {
        while let Ok(msg) = self.control.try_recv() {
            match msg {
                Control::NewConn(stream, listener) => {
                    if let Some(transport) = self.wrap(stream, listener) {
                        self.add_conn(transport, listener, None);
                    }
                }
                Control::Adopt(a) => self.adopt(*a),
                Control::Shutdown => return false,
            }
        }
        true
    }

    /// The transport for a socket accepted by `listener`: plain, or TLS with the listener's
    /// current certificate (the handshake then runs as bytes arrive).
    fn wrap(&mut self, stream: mio::net::TcpStream, listener: u16) -> Option<Transport> {
        #[cfg(feature = "tls")]
        if let Some(tls) = self
            .shared
            .listeners
            .get(usize::from(listener))
            .and_then(|l| l.tls.as_ref())
        {
            return match tls.new_connection() {
                Ok(state) => Some(Transport::Tls(Box::new(super::transport::TlsStream::new(
                    stream, state,
                )))),
                Err(e) => {
                    log::warn!("cannot start TLS: {e}");
                    self.shared.connection_closed(listener);
                    None
                }
            };
        }
        let _ = listener;
        Some(Transport::Plain(stream))
    }

    /// Registers a socket and returns its connection index.
    pub fn add_conn(
        &mut self,
        mut transport: Transport,
        listener: u16,
        rbuf: Option<bytes::BytesMut>,
    ) -> Option<usize> {
        let id = self.conns.vacant_key();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(transport.socket(), Token(id), interest)
        {
            log::warn!("io thread {}: register failed: {e}", self.index);
            self.shared.connection_closed(listener);
            return None;
        }
        let now = Instant::now();
        let mut conn = Conn::new(transport, listener, now);
        if let Some(b) = rbuf {
            conn.rbuf = b;
        }
        let id2 = self.conns.insert(conn);
        debug_assert_eq!(id, id2);
        Some(id)
    }

    fn on_readable(&mut self, id: usize, short_read_ends: bool) {
        let max = self.shared.cfg.mqtt.max_packet_size as usize;
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if let Phase::Closing { .. } = conn.phase {
            // Lingering close: discard input until the peer closes, so our last packet is not
            // destroyed by a reset caused by unread data.
            let state = conn.read_some(&mut self.scratch, usize::MAX, false);
            conn.rbuf.clear();
            if conn.transport.wants_write() {
                queue_flush(conn, id, &mut self.dirty);
            }
            match state {
                ReadState::Closed => self.close(id, None),
                ReadState::MoreWaiting => self.more_input.push(id),
                ReadState::Drained => {}
            }
            return;
        }
        if conn.out.wire.len() >= OUTPUT_PAUSE {
            // The client is not reading our replies: stop reading its requests until the output
            // drains (flush_one resumes it), so it cannot make us buffer without bound.
            conn.read_paused = true;
            return;
        }
        if conn.throttled_until.is_some() {
            // Over its publish rate: its bytes wait in the kernel until `tick` resumes it.
            return;
        }
        let buffered = conn.rbuf.len();
        let state = conn.read_some(&mut self.scratch, max.saturating_add(8), short_read_ends);
        self.stats.counters.bytes_received += conn.rbuf.len().saturating_sub(buffered) as u64;
        if conn.transport.wants_write() {
            // TLS handshake messages (or an alert) to send.
            queue_flush(conn, id, &mut self.dirty);
        }
        // Decode before acting on a close, so a DISCONNECT followed by FIN is honoured.
        self.decode_input(id);
        match state {
            ReadState::Drained => {}
            ReadState::Closed => return self.close(id, Some(LinkLoss::Network)),
            // Every packet fits in max_packet_size, so a buffer this full always decodes
            // something or fails: coming back next turn always makes progress.
            ReadState::MoreWaiting => self.more_input.push(id),
        }
        if let Some(conn) = self.conns.get_mut(id) {
            conn.shrink();
        }
    }

    /// Decodes and handles every complete packet in the connection's read buffer.
    fn decode_input(&mut self, id: usize) {
        let mqtt = &self.shared.cfg.mqtt;
        let max = mqtt.max_packet_size;
        let limits = PropLimits {
            max_user_properties: mqtt.limits.max_user_properties,
            max_size: mqtt.limits.max_properties_size,
        };
        let throttle = mqtt.limits.rate_limit_policy == RateLimitPolicy::Throttle;
        loop {
            let Some(conn) = self.conns.get_mut(id) else {
                return;
            };
            if let Phase::Closing { .. } = conn.phase {
                return;
            }
            if conn.throttled_until.is_some() {
                return;
            }
            if let Phase::Attached { slot } = conn.phase {
                // A PUBLISH waiting behind a debt is not read yet: pause again (each pause is
                // capped, so a large debt is paid in several).
                let publish_next = conn.rbuf.first().is_some_and(|b| b >> 4 == 3);
                if publish_next && throttle {
                    if let Some(s) = self.sessions.get_mut(slot as usize) {
                        let pause =
                            session_rate(&mut s.session, &mut self.rate_debts).pause(self.now);
                        if !pause.is_zero() {
                            conn.throttled_until = Some(self.now + pause);
                            return;
                        }
                    }
                }
            }
            let level = match conn.version {
                None => peek_protocol_level(&conn.rbuf),
                Some(_) => None,
            };
            let before = conn.rbuf.len();
            match decode_packet_limited(&mut conn.rbuf, conn.version, max, limits) {
                Ok(None) => {
                    if !conn.rbuf.is_empty() && conn.partial_since.is_none() {
                        conn.partial_since = Some(self.now);
                    }
                    return;
                }
                Ok(Some(packet)) => {
                    conn.partial_since = None;
                    let len = before - conn.rbuf.len();
                    self.stats.packet_in(&packet);
                    if !matches!(packet, Packet::Publish(_)) || self.within_rate(id, len) {
                        self.on_packet(id, packet);
                    }
                }
                Err(e) => return self.on_decode_error(id, e, level),
            }
            self.apply_actions(id);
        }
    }

    /// Charges a PUBLISH of `len` bytes to the rate limit of the client attached to connection
    /// `id` (the state is its session's, so it survives reconnects and takeovers). Over the rate,
    /// the throttle policy stops reading the connection until its budget is back (the packet
    /// itself is handled) and the disconnect policy drops the client with 0x96 (the packet is not
    /// handled, so nothing unacknowledged is lost). Before the client is attached nothing is
    /// charged: a PUBLISH then (after a CONNECT, during enhanced authentication; a PUBLISH as the
    /// very first packet never decodes) goes on to be refused as the protocol error it is.
    /// Returns whether to handle the packet.
    fn within_rate(&mut self, id: usize, len: usize) -> bool {
        let now = self.now;
        let limits = &self.shared.cfg.mqtt.limits;
        let Some(conn) = self.conns.get_mut(id) else {
            return false;
        };
        let Phase::Attached { slot } = conn.phase else {
            return true;
        };
        let Some(s) = self.sessions.get_mut(slot as usize) else {
            return true;
        };
        let pause = session_rate(&mut s.session, &mut self.rate_debts).charge(len, limits, now);
        if pause.is_zero() {
            return true;
        }
        match limits.rate_limit_policy {
            RateLimitPolicy::Throttle => {
                conn.throttled_until = Some(now + pause);
                true
            }
            RateLimitPolicy::Disconnect => {
                let why = "publish rate above limits.publish_rate / publish_bytes_rate";
                s.session
                    .violation(ReasonCode::MESSAGE_RATE_TOO_HIGH, why, &mut conn.out);
                false
            }
        }
    }

    fn on_decode_error(&mut self, id: usize, e: crate::protocol::DecodeError, level: Option<u8>) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        match conn.phase {
            Phase::AwaitingConnect { .. } => {
                log::debug!("connection {id}: refused before CONNECT: {e}");
                if e.reason == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION {
                    // [MQTT-3.1.2-2]: CONNACK 0x01 in the 3.1.1 format, which a client of any
                    // level can parse (as Mosquitto does).
                    write_refusal(ProtocolVersion::V311, e.reason, &mut conn.out.wire);
                } else if level == Some(5) {
                    write_refusal(ProtocolVersion::V5, e.reason, &mut conn.out.wire);
                }
                self.close_after_flush(id);
            }
            Phase::Attached { slot } => {
                if let Some(s) = self.sessions.get_mut(slot as usize) {
                    s.session.violation(e.reason, e.what, &mut conn.out);
                }
                self.apply_actions(id);
            }
            Phase::Closing { .. } => {}
        }
    }

    fn on_packet(&mut self, id: usize, packet: Packet) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        match conn.phase {
            Phase::AwaitingConnect { .. } if conn.pending_auth.is_some() => {
                self.on_connect_auth(id, packet)
            }
            Phase::AwaitingConnect { .. } => match packet {
                Packet::Connect(c) => self.on_connect(id, c),
                _ => self.close_after_flush(id),
            },
            Phase::Attached { slot } => {
                let now = self.now;
                if let Some(s) = self.sessions.get_mut(slot as usize) {
                    s.session
                        .handle(packet, &self.shared.cfg.mqtt, now, &mut conn.out);
                }
            }
            Phase::Closing { .. } => {}
        }
    }

    /// Carries out what the session asked for on connection `id`.
    pub fn apply_actions(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if !conn.out.wire.is_empty() {
            queue_flush(conn, id, &mut self.dirty);
        }
        if conn.out.actions.is_empty() {
            return;
        }
        let actions = std::mem::take(&mut conn.out.actions);
        let who = match conn.phase {
            Phase::Attached { slot } => self.session_ref(slot),
            _ => None,
        };
        let mut close = false;
        for action in actions {
            match action {
                Action::Close => close = true,
                other => self.route(who, other),
            }
        }
        if close {
            self.close_after_flush(id);
        }
    }

    fn session_ref(&self, slot: u32) -> Option<SessionRef> {
        self.sessions
            .get(slot as usize)
            .map(|s| s.session.session_ref())
    }

    /// Queues a session's router work for this turn's batch.
    pub fn route(&mut self, who: Option<SessionRef>, action: Action) {
        let batch = &mut self.router_batch;
        match (action, who) {
            (Action::Publish(msg), _) => batch.publish(msg),
            (
                Action::Subscribe {
                    filter,
                    entry,
                    send_retained,
                },
                Some(session),
            ) => batch.filter(&filter, || Command::Subscribe {
                session,
                filter: filter.clone(),
                entry,
                send_retained,
            }),
            (Action::Unsubscribe { filter }, Some(session)) => {
                batch.filter(&filter, || Command::Unsubscribe {
                    session,
                    filter: filter.clone(),
                })
            }
            (Action::Redeliver { filter, msg }, Some(exclude)) => {
                let topic = msg.topic.clone();
                batch.for_topic(
                    &topic,
                    Command::Redeliver {
                        filter,
                        msg,
                        exclude,
                    },
                );
            }
            (Action::Away { away }, Some(session)) => batch.all(|| Command::Away { session, away }),
            _ => {}
        }
    }

    fn drain_deliveries(&mut self) {
        let now = self.now;
        let cfg = self.shared.cfg.clone();
        let mut orphans = Vec::new();
        for d in self.deliveries.try_iter().take(DELIVERY_BUDGET) {
            let slot = self.sessions.get_mut(d.to.slot as usize);
            let Some(slot) = slot.filter(|s| s.session.session_ref() == d.to) else {
                // The session ended after the router chose it. A message for a shared
                // subscription goes back to the group; anything else had no one left to get it.
                if let Some(filter) = d.shared {
                    orphans.push((d.to, Action::Redeliver { filter, msg: d.msg }));
                }
                continue;
            };
            let out = match slot.conn.and_then(|c| self.conns.get_mut(c)) {
                Some(conn) => &mut conn.out,
                None => &mut self.offline_out,
            };
            let item = Queued {
                msg: d.msg,
                qos: d.qos,
                retain: d.retain,
                sub_ids: d.sub_ids,
                shared: d.shared,
            };
            slot.session.deliver(item, &cfg.mqtt, now, out);
            if let Some(c) = slot.conn {
                if let Some(conn) = self.conns.get_mut(c).filter(|c| !c.out.wire.is_empty()) {
                    queue_flush(conn, c, &mut self.dirty);
                }
            }
        }
        for (who, action) in orphans {
            self.route(Some(who), action);
        }
        if !self.deliveries.is_empty() {
            let _ = self.shared.io[usize::from(self.index)].waker.wake();
        }
    }

    /// Puts a connection on this turn's flush list (once).
    fn mark_dirty(&mut self, id: usize) {
        if let Some(conn) = self.conns.get_mut(id) {
            if !conn.flush_queued {
                conn.flush_queued = true;
                self.dirty.push(id);
            }
        }
    }

    fn flush_dirty(&mut self) {
        let now = Instant::now();
        while let Some(id) = self.dirty.pop() {
            self.flush_one(id, now);
        }
    }

    /// Writes a connection's output, refilling it from the session's queue while the socket takes
    /// it, up to a budget; a connection that still has output when the budget runs out (and whose
    /// socket did not block, so no writable event will come) is flushed again next turn.
    fn flush_one(&mut self, id: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        conn.flush_queued = false;
        let mut rounds = 0;
        loop {
            match flush_counted(conn, &mut self.stats) {
                Err(_) => return self.close(id, Some(LinkLoss::Network)),
                Ok(false) => break,
                Ok(true) => {}
            }
            // Buffer drained: let the session send what its window or the buffer held back.
            let Phase::Attached { slot } = conn.phase else {
                break;
            };
            let Some(s) = self.sessions.get_mut(slot as usize) else {
                break;
            };
            s.session.pump(now, &mut conn.out);
            if conn.out.wire.is_empty() {
                break;
            }
            rounds += 1;
            if rounds == FLUSH_ROUNDS {
                self.flush_next_turn.push(id);
                break;
            }
        }
        if conn.read_paused && conn.out.wire.len() < OUTPUT_RESUME {
            conn.read_paused = false;
            self.more_input.push(id);
        }
        if let Phase::Closing {
            since,
            fin_sent: false,
        } = conn.phase
        {
            if conn.out.wire.is_empty() {
                conn.transport.close_notify();
                match conn.flush() {
                    Ok(true) => {
                        conn.transport.shutdown_write();
                        conn.phase = Phase::Closing {
                            since,
                            fin_sent: true,
                        };
                    }
                    // The close_notify waits for a writable event.
                    Ok(false) => {}
                    Err(_) => self.close(id, None),
                }
            }
        }
    }

    /// Marks a connection to be closed once its output is written.
    pub fn close_after_flush(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if let Phase::Attached { slot } = conn.phase {
            self.detach_session(slot, None);
        }
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.out.wire.is_empty() {
            // Nothing left to say (e.g. the client sent DISCONNECT): no need to linger.
            return self.close(id, None);
        }
        if !matches!(conn.phase, Phase::Closing { .. }) {
            conn.phase = Phase::Closing {
                since: self.now,
                fin_sent: false,
            };
        }
        self.mark_dirty(id);
    }

    /// Closes a connection now; the session (if any) is detached with `loss`.
    pub fn close(&mut self, id: usize, loss: Option<LinkLoss>) {
        let Some(conn) = self.conns.get(id) else {
            return;
        };
        if let Phase::Attached { slot } = conn.phase {
            self.detach_session(slot, loss);
        }
        if let Some(mut conn) = self.conns.remove(id) {
            conn.transport.close_notify();
            let _ = flush_counted(&mut conn, &mut self.stats);
            let _ = self.poll.registry().deregister(conn.transport.socket());
            self.shared.connection_closed(conn.listener);
        }
    }

    /// Detaches the session in `slot` from its connection; ends it if its expiry is 0.
    pub fn detach_session(&mut self, slot: u32, loss: Option<LinkLoss>) {
        let now = Instant::now();
        let Some(s) = self.sessions.get_mut(slot as usize) else {
            return;
        };
        let Some(cid) = s.conn.take() else { return };
        let Some(conn) = self.conns.get_mut(cid) else {
            return;
        };
        let ends = s.session.detach(loss, now, &mut conn.out);
        conn.phase = Phase::Closing {
            since: now,
            fin_sent: false,
        };
        let who = Some(s.session.session_ref());
        let actions = std::mem::take(&mut conn.out.actions);
        if !conn.out.wire.is_empty() {
            queue_flush(conn, cid, &mut self.dirty);
        }
        for a in actions {
            if !matches!(a, Action::Close) {
                self.route(who, a);
            }
        }
        if ends {
            self.end_session(slot);
        }
    }

    /// Ends a session: publishes a will still waiting for its delay, removes its subscriptions
    /// from the router and forgets it.
    pub fn end_session(&mut self, slot: u32) {
        let Some(mut s) = self.sessions.remove(slot as usize) else {
            return;
        };
        let who = s.session.session_ref();
        self.stats.session_ended(&s.session);
        let now = Instant::now();
        let mut rate = std::mem::take(s.session.publish_rate());
        if !rate.is_rested(now) {
            self.rate_debts.insert(s.session.client_id().clone(), rate);
        }
        let mut out = Output::default();
        s.session.on_end(now, &mut out);
        for a in out.actions {
            self.route(Some(who), a);
        }
        for filter in s.session.filters() {
            self.route(
                Some(who),
                Action::Unsubscribe {
                    filter: filter.clone(),
                },
            );
        }
        let cid = s.session.client_id().clone();
        if self.by_client.get(&cid) == Some(&slot) {
            self.by_client.remove(&cid);
        }
    }
}

/// The publish rate state of `session`; a fresh session takes over what its client's previous
/// session left in `debts`.
fn session_rate<'a>(
    session: &'a mut Session,
    debts: &mut crate::router::hash::FastMap<Arc<str>, PublishRate>,
) -> &'a mut PublishRate {
    if session.publish_rate().is_unset() {
        if let Some(rate) = debts.remove(session.client_id()) {
            *session.publish_rate() = rate;
        }
    }
    session.publish_rate()
}

/// Puts `conn` (index `id`) on the flush list unless it is already there this turn.
fn queue_flush(conn: &mut Conn, id: usize, dirty: &mut Vec<usize>) {
    if !conn.flush_queued {
        conn.flush_queued = true;
        dirty.push(id);
    }
}
