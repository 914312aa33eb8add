//! Whole-broker simulation on a virtual clock: N broker cores, no sockets, no threads, no sleeping.
//!
//! [`Sim`] builds the cores of `io_threads` I/O threads exactly as `net::Broker::start` does (one
//! `Shared`, one `SysShared`, one retained budget, shard `s` on thread `routing::shard_owner(s)`)
//! and then plays the I/O layer of every thread itself, the way `net::io_thread` does: bytes a
//! client wrote are read into the connection's `rbuf` on a readiness edge (when the core allows
//! the read), the outbox is carried out after every call (router batches into the target core's
//! bounded inboxes, handovers to the target core's `adopt`, closes to the client as EOF) and
//! dirty connections are flushed into the client's receive buffer, followed by `written` and
//! `flushed`. Time is an `Instant` the test moves with [`Sim::advance`], which runs every core's
//! `tick` each 250 ms of virtual time, as the I/O loop does.
//!
//! The transport slot: the harness is a transport of its own (bytes in memory, with an optional
//! receive window per client standing for a socket buffer), which shows the core needs no
//! socket: the only things a transport must do are fill `rbuf`, drain `out.wire` and report EOF.
//!
//! Placement (a client id's thread, a topic's shard) hashes with a per-process random seed
//! (`router::hash`), so tests never hard-code it: they ask [`client_id_on`] and [`topic_on`] for
//! ids and topics that land where the test needs them, or loop over every thread.
//!
//! Owns: the harness and the whole-broker tests in `sim/`. Must not touch: anything outside
//! tests; it drives the core only through the calls `net::io_thread` makes.

mod routing_tests;
mod session_tests;

use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::auth::Authenticator;
use crate::config::Config;
use crate::protocol::decode::decode_packet;
use crate::protocol::encode::encode_packet;
use crate::protocol::{
    ConnAck, Connect, LastWill, Packet, Properties, ProtocolVersion, PubResponse, Publish, QoS,
    Subscribe, SubscriptionOptions,
};
use crate::router::retained_limit::RetainedBudget;
use crate::router::shard::{shard_of_topic, Delivery, Shard};
use crate::session::LinkLoss;

use super::router_out::CommandBatch;
use super::routing::shard_owner;
use super::sys_stats::SysShared;
use super::{owner_thread, Closed, Core, Handover, Listener, Phase, Shared};

/// The I/O loop's tick period (`net::io_thread::TICK`).
const TICK: Duration = Duration::from_millis(250);
/// Refills of one connection's output per flush (`net::io_thread::FLUSH_ROUNDS`).
const FLUSH_ROUNDS: usize = 4;
/// Delivery batches taken per turn (`net::io_thread::DELIVERY_BATCHES`).
const DELIVERY_BATCHES: usize = 64;
/// Command batches taken per turn (`net::io_thread::COMMAND_BATCHES`).
const COMMAND_BATCHES: usize = 16;
/// Rounds over every thread [`Sim::settle`] allows before calling the broker stuck.
const MAX_ROUNDS: usize = 100_000;

/// A simulated client connection (an index into the harness's peers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client(usize);

/// The client end of a connection and the socket between it and the broker.
struct Peer {
    version: ProtocolVersion,
    /// Thread and connection id the broker knows it by; `None` once closed or while handed over.
    at: Option<(usize, usize)>,
    /// Written by the client, not read by the broker yet (the socket's receive buffer).
    to_broker: BytesMut,
    /// A readiness edge is pending (new bytes or the client's close).
    readable: bool,
    /// The client closed its end.
    hung_up: bool,
    /// Written by the broker, not decoded by the client yet.
    from_broker: BytesMut,
    /// Decoded but not yet returned by [`Sim::recv`] (what followed a CONNACK).
    unread: Vec<Packet>,
    /// Most bytes `from_broker` may hold (the socket's buffer; `usize::MAX`: unlimited).
    window: usize,
    /// The broker closed its end (FIN or close).
    eof: bool,
}

/// One simulated I/O thread: its core and what `net::io_thread::IoThread` keeps around it.
struct Thread {
    core: Core,
    /// Connection id -> peer index (the thread's sockets).
    links: HashMap<usize, usize>,
    /// Next connection id (never reused, which the core allows).
    next_id: usize,
    /// Bounded channel of delivery batches from other threads.
    deliveries: VecDeque<Vec<Delivery>>,
    /// Bounded channel of command batches from other threads.
    commands: VecDeque<CommandBatch>,
    /// Handed-over connections (with their peer) waiting to be adopted.
    adopt: VecDeque<(Handover, usize)>,
    more_input: Vec<usize>,
    flush_next_turn: Vec<usize>,
}

/// The whole broker (every I/O thread's core) and its clients, in memory, on a virtual clock.
pub struct Sim {
    threads: Vec<Thread>,
    peers: Vec<Peer>,
    listener: Arc<Listener>,
    /// Broker-wide state shared by the cores.
    pub shared: Arc<Shared>,
    now: Instant,
    next_tick: Instant,
    /// Capacity, in batches, of each thread's command channel (`net::COMMAND_QUEUE`).
    pub command_queue: usize,
    /// Capacity, in batches, of each thread's delivery channel (`net::DELIVERY_QUEUE`).
    pub delivery_queue: usize,
    /// Send attempts that left batches waiting for room (turns spent congested).
    pub congested_sends: usize,
}

/// The configuration simulations start from: `threads` I/O threads, one router shard per thread,
/// no `$SYS` topics (so subscribers see only what the test publishes).
pub fn sim_config(threads: usize) -> Config {
    let mut cfg = Config {
        io_threads: threads,
        router_shards: 0,
        ..Config::default()
    };
    cfg.sys.interval = None;
    cfg
}

impl Sim {
    /// A broker of `threads` I/O threads with [`sim_config`].
    pub fn new(threads: usize) -> Sim {
        Sim::with_config(sim_config(threads))
    }

    /// A broker of `threads` I/O threads with [`sim_config`] adjusted by `tweak`.
    pub fn with(threads: usize, tweak: impl FnOnce(&mut Config)) -> Sim {
        let mut cfg = sim_config(threads);
        tweak(&mut cfg);
        Sim::with_config(cfg)
    }

    /// A broker built from `cfg` as `net::Broker::start` builds one, minus sockets and threads.
    pub fn with_config(cfg: Config) -> Sim {
        let cfg = Arc::new(cfg);
        let auth = Arc::new(Authenticator::load(&cfg.auth).expect("auth config"));
        let listener = Arc::new(Listener::new(0, cfg.listeners[0].clone(), auth.clone()));
        let n = cfg.io_threads.max(1);
        let limits = &cfg.mqtt.limits;
        let budget = Arc::new(RetainedBudget::new(
            limits.max_retained_messages,
            limits.max_retained_bytes,
        ));
        let mut owned: Vec<Vec<(usize, Shard)>> = (0..n).map(|_| Vec::new()).collect();
        for i in 0..cfg.shards() {
            let shard = Shard::with_budget(cfg.mqtt.shared_strategy, budget.clone());
            owned[shard_owner(i, n)].push((i, shard));
        }
        let sys = Arc::new(SysShared::new(n, budget));
        let shared = Arc::new(Shared::new(cfg.clone(), auth, vec![listener.clone()], n));
        let now = Instant::now();
        let threads = owned
            .into_iter()
            .enumerate()
            .map(|(i, shards)| {
                let core = Core::new(
                    i as u16,
                    shared.clone(),
                    sys.clone(),
                    cfg.shards(),
                    shards,
                    now,
                );
                Thread {
                    core,
                    links: HashMap::new(),
                    next_id: 0,
                    deliveries: VecDeque::new(),
                    commands: VecDeque::new(),
                    adopt: VecDeque::new(),
                    more_input: Vec::new(),
                    flush_next_turn: Vec::new(),
                }
            })
            .collect();
        Sim {
            threads,
            peers: Vec::new(),
            listener,
            shared,
            now,
            next_tick: now + TICK,
            command_queue: 64,
            delivery_queue: 256,
            congested_sends: 0,
        }
    }

    /// Thread `t`'s core (for assertions on its state).
    pub fn core(&self, t: usize) -> &Core {
        &self.threads[t].core
    }

    /// The thread that owns the sessions of `client_id`.
    pub fn owner(&self, client_id: &str) -> usize {
        owner_thread(client_id, self.threads.len())
    }

    /// The thread that owns the shard of `topic`.
    pub fn shard_thread(&self, topic: &str) -> usize {
        let shards = self.shared.config().shards();
        shard_owner(shard_of_topic(topic, shards), self.threads.len())
    }

    // ---- the clients' side -------------------------------------------------------------------

    /// A new connection accepted on thread `t` (as the acceptor deals them), nothing sent yet.
    pub fn open(&mut self, t: usize, version: ProtocolVersion) -> Client {
        let p = self.peers.len();
        self.peers.push(Peer {
            version,
            at: None,
            to_broker: BytesMut::new(),
            readable: false,
            hung_up: false,
            from_broker: BytesMut::new(),
            unread: Vec::new(),
            window: usize::MAX,
            eof: false,
        });
        self.shared.connections.fetch_add(1, Ordering::Relaxed);
        self.listener.connections.fetch_add(1, Ordering::Relaxed);
        let now = self.now;
        let th = &mut self.threads[t];
        let id = th.next_id;
        th.next_id += 1;
        th.links.insert(id, p);
        th.core.open(id, self.listener.clone(), now);
        self.peers[p].at = Some((t, id));
        Client(p)
    }

    /// A connection on thread `t` that sends `connect`; returns once the broker is quiet.
    pub fn connect(&mut self, t: usize, connect: Connect) -> Client {
        let c = self.open(t, connect.protocol);
        self.send(c, &Packet::Connect(Box::new(connect)));
        c
    }

    /// [`Sim::connect`], expecting a successful CONNACK as the first packet; what came after it
    /// (a resumed session's messages) is left for [`Sim::recv`].
    pub fn connect_ok(&mut self, t: usize, connect: Connect) -> (Client, ConnAck) {
        let c = self.connect(t, connect);
        let mut got = self.recv(c).into_iter();
        match got.next() {
            Some(Packet::ConnAck(a)) if !a.reason.is_error() => {
                self.peers[c.0].unread = got.collect();
                (c, a)
            }
            other => panic!("expected a successful CONNACK, got {other:?}"),
        }
    }

    /// The client writes `packet`; returns once the broker is quiet.
    pub fn send(&mut self, c: Client, packet: &Packet) {
        self.write(c, packet);
        self.settle();
    }

    /// The client writes `packet` without letting the broker run (to batch several writes).
    pub fn write(&mut self, c: Client, packet: &Packet) {
        let peer = &mut self.peers[c.0];
        encode_packet(packet, peer.version, &mut peer.to_broker);
        peer.readable = true;
    }

    /// The client closes its end of the connection (no DISCONNECT: a network loss to the broker).
    pub fn hang_up(&mut self, c: Client) {
        let peer = &mut self.peers[c.0];
        peer.hung_up = true;
        peer.readable = true;
        self.settle();
    }

    /// Everything the client received since the last call, decoded. Reading frees the client's
    /// receive window, which the broker sees as a writable edge.
    pub fn recv(&mut self, c: Client) -> Vec<Packet> {
        let peer = &mut self.peers[c.0];
        let mut packets = std::mem::take(&mut peer.unread);
        while let Some(p) = decode_packet(&mut peer.from_broker, Some(peer.version), u32::MAX)
            .expect("the broker writes valid packets")
        {
            packets.push(p);
        }
        if let Some((t, id)) = peer.at {
            self.threads[t].core.mark_dirty(id);
            self.settle();
        }
        packets
    }

    /// Whether the broker closed this client's connection (and it has read everything).
    pub fn is_closed(&self, c: Client) -> bool {
        self.peers[c.0].eof && self.peers[c.0].at.is_none()
    }

    /// The thread the connection lives on now (after any handover); `None` once closed.
    pub fn thread_of(&self, c: Client) -> Option<usize> {
        self.peers[c.0].at.map(|(t, _)| t)
    }

    /// Limits the bytes the client's socket buffers before the client reads them.
    pub fn set_window(&mut self, c: Client, bytes: usize) {
        self.peers[c.0].window = bytes;
    }

    // ---- time ----------------------------------------------------------------------------------

    /// Moves the virtual clock `d` forward, ticking every core each 250 ms as the I/O loop does.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.next_tick <= end {
            self.now = self.next_tick;
            for t in 0..self.threads.len() {
                self.threads[t].core.tick(self.now);
                self.drain_outbox(t, true);
                self.flush_dirty(t);
            }
            self.settle();
            self.next_tick = self.now + TICK;
        }
        self.now = end;
        self.settle();
    }

    // ---- the I/O layer's side ------------------------------------------------------------------

    /// Runs turns of every thread until none has anything left to do. Panics if that never
    /// happens, or if a thread is left with router batches it cannot send (a deadlock).
    pub fn settle(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut progress = false;
            for t in 0..self.threads.len() {
                progress |= self.turn(t);
            }
            if !progress && !self.has_work() {
                for (t, th) in self.threads.iter().enumerate() {
                    assert!(
                        !th.core.out.router.has_unsent(),
                        "thread {t}: router batches can never be sent"
                    );
                }
                return;
            }
        }
        panic!("the broker did not settle within {MAX_ROUNDS} rounds");
    }

    fn has_work(&self) -> bool {
        let readable = self.peers.iter().any(|p| p.readable && p.at.is_some());
        readable
            || self.threads.iter().any(|th| {
                !th.more_input.is_empty()
                    || !th.flush_next_turn.is_empty()
                    || !th.deliveries.is_empty()
                    || (!th.commands.is_empty() && !th.core.is_congested())
                    || !th.adopt.is_empty()
            })
    }

    /// One turn of thread `t`'s event loop, in `IoThread::run`'s order. Returns whether anything
    /// moved.
    fn turn(&mut self, t: usize) -> bool {
        let now = self.now;
        let mut progress = false;
        let th = &mut self.threads[t];
        th.core.set_now(now);
        // Other threads' work first, deliveries always, commands unless congested.
        for _ in 0..DELIVERY_BATCHES {
            let Some(batch) = th.deliveries.pop_front() else {
                break;
            };
            progress = true;
            for d in batch {
                th.core.deliver(d);
            }
        }
        if !th.core.is_congested() {
            for _ in 0..COMMAND_BATCHES {
                let Some(batch) = th.commands.pop_front() else {
                    break;
                };
                progress = true;
                th.core.apply_commands(batch);
            }
        }
        // Readiness edges, then connections that still had input or were told to read again.
        let mut ready: Vec<usize> = th
            .links
            .iter()
            .filter(|&(_, &p)| self.peers[p].readable)
            .map(|(&id, _)| id)
            .collect();
        ready.sort_unstable();
        for &id in &ready {
            if let Some(&p) = th.links.get(&id) {
                self.peers[p].readable = false;
            }
        }
        ready.append(&mut th.more_input);
        for id in std::mem::take(&mut th.flush_next_turn) {
            th.core.mark_dirty(id);
        }
        for id in ready {
            progress |= self.on_readable(t, id);
        }
        // Control: handed-over connections.
        while let Some((h, p)) = self.threads[t].adopt.pop_front() {
            progress = true;
            let th = &mut self.threads[t];
            let id = th.next_id;
            th.next_id += 1;
            th.links.insert(id, p);
            self.peers[p].at = Some((t, id));
            th.core.adopt(id, h, now);
            self.drain_outbox(t, false);
        }
        progress |= self.drain_outbox(t, true);
        progress |= self.flush_dirty(t);
        progress |= self.drain_outbox(t, true);
        progress
    }

    /// `IoThread::on_readable`: reads what the client wrote (if the core allows it), decodes it,
    /// and acts on the client's close.
    fn on_readable(&mut self, t: usize, id: usize) -> bool {
        let now = self.now;
        let th = &mut self.threads[t];
        if !th.core.may_read(id) {
            return false;
        }
        let (Some(&p), Some(conn)) = (th.links.get(&id), th.core.conns.get_mut(id)) else {
            return false;
        };
        let peer = &mut self.peers[p];
        let closing = matches!(conn.phase, Phase::Closing { .. });
        let max = match closing {
            true => usize::MAX,
            false => (th.core.cfg.mqtt.max_packet_size as usize).saturating_add(8),
        };
        let n = peer.to_broker.len().min(max);
        conn.rbuf.extend_from_slice(&peer.to_broker.split_to(n));
        let more_waiting = !peer.to_broker.is_empty();
        let peer_closed = !more_waiting && peer.hung_up;
        let before = conn.rbuf.len();
        th.core.stats.counters.bytes_received += n as u64;
        th.core.input(id, now);
        let after = th.core.conns.get(id).map(|c| c.rbuf.len());
        let mut progress = n > 0 || after != Some(before);
        if peer_closed {
            let loss = (!closing).then_some(LinkLoss::Network);
            th.core.close(id, loss);
            progress = true;
        } else if more_waiting {
            th.more_input.push(id);
        }
        self.drain_outbox(t, false) || progress
    }

    /// `IoThread::drain_outbox`: router work, batches for other threads, closes, handovers and
    /// connections to read again. Returns whether it did anything.
    fn drain_outbox(&mut self, t: usize, all_router: bool) -> bool {
        let th = &mut self.threads[t];
        if all_router || th.core.out.router.is_full() {
            th.core.run_router();
        }
        let mut progress = self.send_batches(t);
        for closed in std::mem::take(&mut self.threads[t].core.out.closed) {
            progress = true;
            self.close_socket(t, closed);
        }
        for h in std::mem::take(&mut self.threads[t].core.out.handovers) {
            progress = true;
            let Some(p) = self.threads[t].links.remove(&h.id) else {
                continue;
            };
            self.peers[p].at = None;
            let to = h.to;
            self.threads[to].adopt.push_back((h, p));
        }
        let th = &mut self.threads[t];
        th.more_input.append(&mut th.core.out.read_again);
        progress
    }

    /// `IoThread::send_batches`: each waiting batch goes into its thread's channel if there is
    /// room; the core is told whether some are left.
    fn send_batches(&mut self, t: usize) -> bool {
        if !self.threads[t].core.out.router.has_unsent() {
            self.threads[t].core.set_congested(false);
            return false;
        }
        let mut progress = false;
        for dst in 0..self.threads.len() {
            let router = &mut self.threads[t].core.out.router;
            let commands = std::mem::take(&mut router.commands[dst]);
            let deliveries = std::mem::take(&mut router.deliveries[dst]);
            let target = &mut self.threads[dst];
            let mut left = (Vec::new(), Vec::new());
            if !commands.is_empty() {
                if target.commands.len() < self.command_queue {
                    target.commands.push_back(commands);
                    progress = true;
                } else {
                    left.0 = commands;
                }
            }
            if !deliveries.is_empty() {
                if target.deliveries.len() < self.delivery_queue {
                    target.deliveries.push_back(deliveries);
                    progress = true;
                } else {
                    left.1 = deliveries;
                }
            }
            let router = &mut self.threads[t].core.out.router;
            router.commands[dst] = left.0;
            router.deliveries[dst] = left.1;
        }
        let core = &mut self.threads[t].core;
        let unsent = core.out.router.has_unsent();
        core.set_congested(unsent);
        self.congested_sends += usize::from(unsent);
        progress
    }

    /// `IoThread::close_socket`: the client gets the last bytes and EOF; the counts go down.
    fn close_socket(&mut self, t: usize, mut closed: Closed) {
        let th = &mut self.threads[t];
        if let Some(p) = th.links.remove(&closed.id) {
            let peer = &mut self.peers[p];
            let written = take_into(&mut closed.wire, peer);
            th.core.stats.sent(written, &mut closed.wire);
            peer.eof = true;
            peer.at = None;
        }
        self.shared.connection_closed(&closed.listener);
    }

    /// `IoThread::flush_dirty`.
    fn flush_dirty(&mut self, t: usize) -> bool {
        let mut progress = false;
        while let Some(id) = self.threads[t].core.out.dirty.pop() {
            progress |= self.flush_one(t, id);
        }
        self.drain_outbox(t, false) || progress
    }

    /// `IoThread::flush_one`: the client's socket takes what its window allows; the session
    /// refills the output up to [`FLUSH_ROUNDS`] times; a closing connection whose output is out
    /// sends its FIN, and the client, like any client, closes its end on EOF.
    fn flush_one(&mut self, t: usize, id: usize) -> bool {
        let now = self.now;
        let th = &mut self.threads[t];
        let Some(&p) = th.links.get(&id) else {
            return false;
        };
        let peer = &mut self.peers[p];
        if th.core.conns.get(id).is_some_and(|c| c.output_held) {
            if let Some(conn) = th.core.conns.get_mut(id) {
                conn.flush_queued = false;
            }
            return false;
        }
        let mut progress = false;
        let mut rounds = 0;
        loop {
            let Some(conn) = th.core.conns.get_mut(id) else {
                return progress;
            };
            let written = take_into(&mut conn.out.wire, peer);
            th.core.stats.sent(written, &mut conn.out.wire);
            progress |= written > 0;
            if !conn.out.wire.is_empty() {
                // The window is full: a writable edge comes when the client reads (`recv`).
                break;
            }
            if !th.core.written(id, now) {
                break;
            }
            rounds += 1;
            if rounds == FLUSH_ROUNDS {
                th.flush_next_turn.push(id);
                break;
            }
        }
        th.core.flushed(id);
        if let Some(conn) = th.core.conns.get_mut(id) {
            if let Phase::Closing {
                since,
                fin_sent: false,
            } = conn.phase
            {
                if conn.out.wire.is_empty() {
                    conn.phase = Phase::Closing {
                        since,
                        fin_sent: true,
                    };
                    peer.eof = true;
                    peer.hung_up = true;
                    peer.readable = true;
                    progress = true;
                }
            }
        }
        progress
    }
}

/// Moves as many of `wire`'s bytes as the peer's window takes into its receive buffer (what a
/// socket write would do); returns how many.
fn take_into(wire: &mut crate::session::OutBuf, peer: &mut Peer) -> usize {
    let room = peer.window.saturating_sub(peer.from_broker.len());
    let mut slices = [IoSlice::new(&[]); 64];
    let filled = wire.io_slices(&mut slices);
    let mut n = 0;
    for s in &slices[..filled] {
        let k = s.len().min(room - n);
        peer.from_broker.extend_from_slice(&s[..k]);
        n += k;
        if n == room {
            break;
        }
    }
    wire.consume(n);
    n
}

// ---- packets for tests ---------------------------------------------------------------------------

/// A CONNECT without will, credentials or properties.
pub fn connect(v: ProtocolVersion, client_id: &str, clean: bool, keep_alive: u16) -> Connect {
    Connect {
        protocol: v,
        clean_start: clean,
        keep_alive,
        client_id: client_id.to_owned(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

/// A will message without properties.
pub fn will(topic: &str, payload: &'static [u8], qos: QoS) -> LastWill {
    LastWill {
        topic: topic.to_owned(),
        payload: Bytes::from_static(payload),
        qos,
        retain: false,
        properties: Properties::default(),
    }
}

/// A PUBLISH; `packet_id` is used for QoS 1 and 2 only.
pub fn publish(topic: &str, payload: &[u8], qos: QoS, retain: bool, packet_id: u16) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain,
        topic: topic.to_owned(),
        packet_id: (qos != QoS::AtMostOnce).then_some(packet_id),
        properties: Properties::default(),
        payload: Bytes::copy_from_slice(payload),
    })
}

/// A SUBSCRIBE of one filter at `qos`.
pub fn subscribe(packet_id: u16, filter: &str, qos: QoS) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id,
        filters: vec![(
            filter.to_owned(),
            SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        )],
        properties: Properties::default(),
    })
}

/// A PUBACK for `packet_id`.
pub fn puback(packet_id: u16) -> Packet {
    Packet::PubAck(PubResponse::ok(packet_id))
}

/// The PUBLISH packets among `packets`.
pub fn publishes(packets: &[Packet]) -> Vec<&Publish> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// The first client id of the form `{prefix}{n}` whose sessions live on thread `t`.
pub fn client_id_on(sim: &Sim, prefix: &str, t: usize) -> String {
    (0..10_000)
        .map(|n| format!("{prefix}{n}"))
        .find(|id| sim.owner(id) == t)
        .expect("some id lands on every thread")
}

/// The first topic of the form `{prefix}/{n}/x` whose shard lives on thread `t`.
pub fn topic_on(sim: &Sim, prefix: &str, t: usize) -> String {
    (0..10_000)
        .map(|n| format!("{prefix}/{n}/x"))
        .find(|topic| sim.shard_thread(topic) == t)
        .expect("some topic lands on every thread")
}

/// A client that subscribed to `filter` at `qos` (clean session) on thread `t`.
pub fn subscriber(
    sim: &mut Sim,
    t: usize,
    v: ProtocolVersion,
    id: &str,
    filter: &str,
    qos: QoS,
) -> Client {
    let (c, _) = sim.connect_ok(t, connect(v, id, true, 0));
    sim.send(c, &subscribe(1, filter, qos));
    match &sim.recv(c)[..] {
        [Packet::SubAck(a)] => assert!(!a.reasons[0].is_error(), "{a:?}"),
        other => panic!("expected a SUBACK, got {other:?}"),
    }
    c
}
