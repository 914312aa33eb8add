//! The broker core of one I/O thread, sans-IO (as quinn-proto is to quinn): connections' protocol
//! state, the sessions that live on this thread, CONNECT placement, timers and `$SYS` counters.
//!
//! Inputs: bytes the I/O layer appended to a connection's read buffer ([`Core::input`]), router
//! deliveries ([`Core::deliver`]), the clock ([`Core::tick`]), connections opened or handed over
//! ([`Core::open`], [`Core::adopt`]), admin requests and shutdown. Outputs, all in [`Outbox`]:
//! connections with bytes to write (the bytes stay in [`Conn::out`]), router commands,
//! connections to close (with their last bytes), connections to hand to another thread,
//! connections whose input may be read again, and password checks to run off the thread
//! ([`AuthJob`]; the verdict comes back through [`Core::auth_done`]). Session actions reach the outbox by one path,
//! [`Core::run_actions`].
//!
//! The I/O layer (`net::io_thread`) owns sockets, transports (TCP, TLS, later WebSocket), the poll,
//! channels and wake-ups; it names connections by its own ids (poll tokens) and only reuses an id
//! after the core has closed or handed over that connection and the outbox entry was taken.
//!
//! Must not touch: sockets, mio, channels, TLS, `Instant::now()` on its own (the I/O layer passes
//! `now`; `tick` and the input calls set [`Core::now`]), protocol rules (in `session`) or routing
//! (in `router`).

mod ack_gate;
mod actions;
pub mod admin;
pub mod admission;
pub mod conn;
mod connect_flow;
pub mod dialled;
mod housekeeping;
mod input;
pub mod listener;
pub mod router_out;
pub mod routing;
#[cfg(test)]
mod sim;
pub mod slab;
pub mod sys_stats;
pub mod timers;

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use crate::auth::{AuthMethod, Authenticator};
use crate::config::Config;
use crate::protocol::{Connect, ReasonCode};
use crate::router::hash::FastMap;
use crate::router::shard::{Delivery, Shard};
use crate::session::connect::Admitted;
use crate::session::limits::PublishRate;
use crate::session::outbound::Queued;
use crate::session::{Action, OutBuf, Output, Session};

pub use conn::{Conn, ConnTable, Phase};
pub use connect_flow::owner_thread;
pub use listener::{Listener, Shared};
pub use router_out::RouterOut;
use slab::Slab;
use sys_stats::{IoStats, SysShared};

/// A session and the connection attached to it, if any.
pub struct SessionSlot {
    /// The session state machine.
    pub session: Session,
    /// Id of the attached connection ([`SessionSlot::conn`] widens it). 32 bits: ids are the I/O
    /// layer's poll tokens, reused as sockets close, so they stay below the open-file limit; this
    /// saves 8 bytes per session.
    pub conn: Option<u32>,
    /// Listener of the connection last attached: its authenticator builds the session's ACL.
    pub listener: Arc<Listener>,
    /// Slot of its pending timer entry while offline (0: none), see `timers.rs`.
    pub timer: u32,
}

impl SessionSlot {
    /// Id of the attached connection, as the connection table names it.
    pub fn conn(&self) -> Option<usize> {
        self.conn.map(|id| id as usize)
    }
}

/// A connection the core let go of: the I/O layer writes `wire` if the socket takes it, closes
/// the socket and counts the connection out of `listener`.
pub struct Closed {
    /// The connection's id.
    pub id: usize,
    /// Its last bytes (best effort: nothing waits for them).
    pub wire: OutBuf,
    /// The listener that accepted it.
    pub listener: Arc<Listener>,
}

/// A connection whose CONNECT names a session another thread owns: the I/O layer deregisters its
/// socket and sends both to thread `to`, whose core [`adopt`](Core::adopt)s it.
pub struct Handover {
    /// The connection's id on this thread.
    pub id: usize,
    /// The owner thread.
    pub to: usize,
    /// The listener that accepted it.
    pub listener: Arc<Listener>,
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

/// A CONNECT whose password must be checked before it is placed. Checking means PBKDF2 with as
/// many rounds as the password file says (thousands for a hardened `$7$` entry, and the same for
/// an unknown user, who is checked against a decoy hash), which must not run on an I/O thread: a
/// flood of CONNECTs with wrong or unknown user names would stall every client of that thread.
/// So the I/O layer hands the job to the password worker (`net::auth_worker`), which runs
/// [`AuthJob::check`] and sends job and verdict back to this core's thread for
/// [`Core::auth_done`]; a job the worker's queue has no room for goes to
/// [`Core::auth_refused_busy`]. Meanwhile the connection waits in `AwaitingConnect` (the connect
/// timeout still bounds it) and nothing it sent after the CONNECT is read or decoded.
pub struct AuthJob {
    /// The connection's id on the core's thread.
    pub id: usize,
    /// The connection's [`Conn::serial`]: a verdict for a connection that is gone (its id perhaps
    /// already reused) is dropped.
    pub serial: u32,
    /// The I/O thread whose core made the job and takes the verdict.
    pub thread: u16,
    /// The authenticator of the listener that accepted the connection.
    pub auth: Arc<Authenticator>,
    /// The decoded CONNECT (user name and password inside).
    pub connect: Box<Connect>,
    /// Its admission, for placement after the verdict.
    pub admitted: Admitted,
}

impl AuthJob {
    /// The verdict on the CONNECT's user name and password: `Err` carries the CONNACK reason.
    /// The same [`Authenticator::check_connect`] as for any CONNECT, so an unknown user pays
    /// the same hashing as a known one (no user-enumeration oracle).
    pub fn check(&self) -> Result<(), ReasonCode> {
        let c = &self.connect;
        self.auth
            .check_connect(c.username.as_deref(), c.password.as_deref())
    }
}

/// What the core asks the I/O layer to do. The I/O layer takes it after every call into the core.
pub struct Outbox {
    /// Connections with bytes to write (each once; `Conn::flush_queued` marks them).
    pub dirty: Vec<usize>,
    /// Connections whose input may be read again (unthrottled, adopted with bytes behind).
    pub read_again: Vec<usize>,
    /// Connections to close now.
    pub closed: Vec<Closed>,
    /// Connections to hand to another thread.
    pub handovers: Vec<Handover>,
    /// Router commands.
    pub router: RouterOut,
    /// Links to dial now: (link, address) (`dialled.rs`).
    pub dials: Vec<(usize, std::net::SocketAddr)>,
    /// Dialled sockets to close (their links are down).
    pub dial_closed: Vec<usize>,
    /// Dialled sockets with bytes to write.
    pub dial_dirty: Vec<usize>,
    /// Password checks for the password worker, in the order the CONNECTs were decoded.
    pub auth_jobs: Vec<AuthJob>,
}

/// The broker logic of one I/O thread.
pub struct Core {
    /// Index of this thread (the `thread` of the `SessionRef`s it owns).
    pub index: u16,
    /// Broker-wide state.
    pub shared: Arc<Shared>,
    /// The configuration in force on this thread.
    pub cfg: Arc<Config>,
    /// Connections by id.
    pub conns: ConnTable,
    /// Sessions by slot.
    pub sessions: Slab<SessionSlot>,
    /// Client identifier -> local session slot.
    pub by_client: FastMap<Arc<str>, u32>,
    /// Output sink for sessions without a connection.
    offline_out: Output,
    /// The clock as of the current input.
    pub now: Instant,
    /// Generation of the password/ACL files the sessions' ACL views were built from.
    auth_generation: u64,
    /// `$SYS` counters of this thread (`sys_stats.rs`).
    pub stats: IoStats,
    /// Publish rate state of clients whose session ended while their buckets were not full, for
    /// their next session (a client id always lives on the same thread): reconnecting with a
    /// clean start does not refill the burst. Entries go once their buckets are full again.
    rate_debts: FastMap<Arc<str>, PublishRate>,
    /// Work for the I/O layer.
    pub out: Outbox,
    /// Router shards by index; `Some` for those this thread owns (`routing::shard_owner`).
    shards: Vec<Option<Shard>>,
    /// Reused buffer for the deliveries of one shard call.
    delivery_scratch: Vec<Delivery>,
    /// Router batches wait for room in another thread's channel (`routing.rs`).
    congested: bool,
    /// Commands from other threads are still queued for this thread's shards (`routing.rs`).
    backlog: bool,
    /// Connections whose actions this turn included a (un)subscribe.
    subscribed: Vec<usize>,
    /// Connections not decoded while congested because a PUBLISH was next.
    paused_publishers: Vec<usize>,
    /// Connections whose output is held while congested (a SUBACK behind its subscription).
    held_output: Vec<usize>,
    /// The ack gate, when on (`ack_gate.rs`).
    ack_gate: Option<ack_gate::AckGate>,
    /// Every deadline of this thread (`timers.rs`, `housekeeping.rs`).
    timers: timers::Timers,
    /// Slot of the pending `$SYS` timer entry (0: none).
    sys_timer: u32,
    /// Slot of the pending rate-debt sweep (0: none).
    debt_timer: u32,
    /// When the thread next looks for reloaded password/ACL files.
    next_acl_check: Instant,
    /// Connections picomq dialled itself (`dialled.rs`).
    dialled: Vec<dialled::Dialled>,
    /// Rate-limited log of messages dropped for subscribers (`admission.rs`).
    drop_log: admission::DropLog,
    /// The [`Conn::serial`] of the next connection opened or adopted here.
    next_serial: u32,
}

impl Core {
    /// The core of I/O thread `index`, with `shards` router shards in all, of which it owns
    /// `owned` (index, shard); `now` starts its clock and timer table.
    pub fn new(
        index: u16,
        shared: Arc<Shared>,
        sys: Arc<SysShared>,
        shards: usize,
        owned: Vec<(usize, Shard)>,
        now: Instant,
    ) -> Core {
        let cfg = shared.config();
        let threads = shared.threads;
        let mut table: Vec<Option<Shard>> = (0..shards.max(1)).map(|_| None).collect();
        for (i, shard) in owned {
            table[i] = Some(shard);
        }
        let mut core = Core {
            index,
            auth_generation: shared.auth_generation(),
            shared,
            cfg,
            conns: ConnTable::default(),
            sessions: Slab::default(),
            by_client: FastMap::default(),
            offline_out: Output::default(),
            now,
            stats: IoStats::new(usize::from(index), sys),
            rate_debts: FastMap::default(),
            out: Outbox {
                dirty: Vec::new(),
                read_again: Vec::new(),
                closed: Vec::new(),
                handovers: Vec::new(),
                router: RouterOut::new(shards, threads),
                dials: Vec::new(),
                dial_closed: Vec::new(),
                dial_dirty: Vec::new(),
                auth_jobs: Vec::new(),
            },
            shards: table,
            delivery_scratch: Vec::new(),
            congested: false,
            backlog: false,
            subscribed: Vec::new(),
            paused_publishers: Vec::new(),
            held_output: Vec::new(),
            ack_gate: None,
            timers: timers::Timers::new(now),
            sys_timer: 0,
            debt_timer: 0,
            next_acl_check: now,
            dialled: Vec::new(),
            drop_log: admission::DropLog::default(),
            next_serial: 0,
        };
        core.arm_sys();
        core
    }

    /// A connection accepted by `listener`, known from now on as `id`.
    pub fn open(&mut self, id: usize, listener: Arc<Listener>, now: Instant) {
        self.now = now;
        let serial = self.take_serial();
        self.conns.insert(id, Conn::new(listener, now, serial));
        self.arm_conn(id);
    }

    /// Starts an I/O turn at `now` (after a wake-up): sets the clock and, at most every 250 ms,
    /// looks for reloaded password/ACL files.
    pub fn begin_turn(&mut self, now: Instant) {
        self.now = now;
        self.refresh_acls(now);
    }

    /// A [`Conn::serial`] no live connection of this thread has (wrapping after 2^32).
    fn take_serial(&mut self) -> u32 {
        self.next_serial = self.next_serial.wrapping_add(1);
        self.next_serial
    }

    /// A message the router chose for a session of this thread.
    pub fn deliver(&mut self, d: Delivery) {
        if d.to.slot & dialled::DIALLED_SLOT != 0 {
            return self.deliver_dialled(d);
        }
        let slot = self.sessions.get_mut(d.to.slot as usize);
        let Some(slot) = slot.filter(|s| s.session.session_ref() == d.to) else {
            // The session ended after the router chose it. A message for a shared subscription
            // goes back to the group; anything else had no one left to get it.
            if let Some(filter) = d.shared {
                self.route(Some(d.to), Action::Redeliver { filter, msg: d.msg });
            }
            return;
        };
        let out = match slot.conn().and_then(|c| self.conns.get_mut(c)) {
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
        let dropped = slot.session.outbound().dropped;
        slot.session.deliver(item, &self.cfg.mqtt, self.now, out);
        let newly = slot.session.outbound().dropped.saturating_sub(dropped);
        if newly > 0 {
            // The admission rule, case 3 (`admission.rs`): counted by the session, logged here.
            if let Some(n) = self.drop_log.note_many(newly, self.now) {
                log::warn!(
                    "{n} message(s) dropped for subscribers by their limits since the last \
                     report (latest: client {}): queue full (mqtt.max_queued_messages / \
                     max_queued_bytes), expired, too large for the client, or QoS 0 while \
                     offline",
                    slot.session.client_id()
                );
            }
        }
        if let Some(c) = slot.conn() {
            if let Some(conn) = self.conns.get_mut(c).filter(|c| !c.out.wire.is_empty()) {
                queue_flush(conn, c, &mut self.out.dirty);
            }
        }
    }

    /// The connection's output buffer was written out: let its session send what its window or
    /// the buffer held back. Returns whether there is new output.
    pub fn written(&mut self, id: usize, now: Instant) -> bool {
        let Some(conn) = self.conns.get_mut(id) else {
            return false;
        };
        let Phase::Attached { slot } = conn.phase else {
            return false;
        };
        let Some(s) = self.sessions.get_mut(slot as usize) else {
            return false;
        };
        s.session.pump(now, &mut conn.out);
        conn.out.wire.writable() > 0
    }

    /// Puts a connection on the flush list (once).
    pub fn mark_dirty(&mut self, id: usize) {
        if let Some(conn) = self.conns.get_mut(id) {
            queue_flush(conn, id, &mut self.out.dirty);
        }
    }
}

/// Puts `conn` (id `id`) on the flush list unless it is already there this turn.
fn queue_flush(conn: &mut Conn, id: usize, dirty: &mut Vec<usize>) {
    if !conn.flush_queued {
        conn.flush_queued = true;
        dirty.push(id);
    }
}

/// The publish rate state of `session`; a fresh session takes over what its client's previous
/// session left in `debts`.
fn session_rate<'a>(
    session: &'a mut Session,
    debts: &mut FastMap<Arc<str>, PublishRate>,
) -> &'a mut PublishRate {
    if session.publish_rate().is_unset() {
        if let Some(rate) = debts.remove(session.client_id()) {
            *session.publish_rate() = rate;
        }
    }
    session.publish_rate()
}
/// Per-connection memory is a target (issue 9: at most 700 bytes per idle connection, measured
/// with `loadgen --idle-clients 10000`); these sizes are most of it, so growth shows up here
/// first. 64-bit targets only: 32-bit ones are smaller.
#[cfg(all(test, target_pointer_width = "64"))]
mod size_guard {
    #[test]
    fn per_connection_structs_stay_within_the_idle_memory_budget() {
        let conn = std::mem::size_of::<super::Conn>();
        let slot = std::mem::size_of::<super::SessionSlot>();
        assert!(conn <= 240, "broker::Conn grew to {conn} bytes");
        assert!(slot <= 240, "SessionSlot grew to {slot} bytes");
    }
}
