//! Gathering the `$SYS` figures from the I/O threads' cores and publishing them through the router.
//!
//! Owns: [`IoStats`] (one I/O thread's plain counters, bumped on its hot path with no atomics),
//! [`SysShared`] (one `Mutex`'d sample per I/O thread, overwritten by its owner once per 250 ms
//! tick, so no cache line bounces between threads per message and no 64-bit atomic is needed on
//! 32-bit targets), and the refresh on I/O thread 0, which sums the samples every `[sys]
//! interval` and routes the changed topics as retained QoS 0 messages, like any publish (so ACLs
//! and the `$`-topic matching rules apply). Must not touch: what the figures mean or how they are
//! named (`crate::sys`), sessions' state (read only), sockets (the I/O layer reports bytes sent).
//!
//! Gauges (sessions, subscriptions, queues, drops) take a walk over the thread's sessions, so
//! they are not taken every tick: shortly before each refresh thread 0 bumps a shared round
//! number (a 32-bit atomic, written once per interval) and every thread walks its sessions once
//! when it sees a new round.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::message::Message;
use crate::protocol::{Packet, Properties, QoS};
use crate::router::retained_limit::RetainedBudget;
use crate::session::Session;
use crate::sys::{Counters, Gauges, Status, SysTopics};

use crate::session::OutBuf;

use super::Core;

/// One I/O thread's figures as last folded on its tick.
#[derive(Debug, Default, Clone, Copy)]
struct Sample {
    counters: Counters,
    gauges: Gauges,
}

/// How long before a refresh thread 0 asks the threads for fresh gauges: a little more than one
/// 250 ms tick, so every thread has ticked once in between.
const GAUGE_LEAD: Duration = Duration::from_millis(300);

/// What the I/O threads share for `$SYS`: one sample slot per thread and the start time.
pub struct SysShared {
    started: Instant,
    slots: Vec<Mutex<Sample>>,
    retained: Arc<RetainedBudget>,
    /// Bumped by thread 0 when the next refresh needs fresh gauges (wraps harmlessly: only
    /// "different from the last one seen" matters).
    gauge_round: AtomicU32,
}

impl SysShared {
    /// Slots for `threads` I/O threads. Whether and how often the topics are published is the
    /// configuration's `[sys] interval`, read on every tick (a reload may change it).
    pub fn new(threads: usize, retained: Arc<RetainedBudget>) -> SysShared {
        SysShared {
            started: Instant::now(),
            slots: (0..threads).map(|_| Mutex::default()).collect(),
            retained,
            gauge_round: AtomicU32::new(0),
        }
    }

    /// The broker's figures: every thread's last sample, summed.
    fn status(&self, now: Instant) -> Status {
        let mut status = Status {
            retained: self.retained.count() as u64,
            uptime: now.saturating_duration_since(self.started),
            ..Status::default()
        };
        for slot in &self.slots {
            let sample = *slot.lock();
            status.counters.add(&sample.counters);
            status.gauges.add(&sample.gauges);
        }
        status
    }
}

/// When thread 0 refreshes the topics next, and what it published last.
struct Refresh {
    next: Instant,
    topics: SysTopics,
    /// Fresh gauges were asked for the coming refresh.
    asked: bool,
}

/// One I/O thread's counters. Only that thread touches them; they reach [`SysShared`] on its tick.
pub struct IoStats {
    /// Counters bumped on the hot path (publish drops come from the sessions, on each walk).
    pub counters: Counters,
    /// Drops counted by sessions that have ended on this thread.
    ended_dropped: u64,
    /// Gauges and live sessions' drops as of the last walk over the sessions.
    gauges: Gauges,
    live_dropped: u64,
    /// The gauge round those were taken for.
    round_seen: u32,
    index: usize,
    shared: Arc<SysShared>,
    refresh: Option<Refresh>,
}

impl IoStats {
    /// Counters of I/O thread `index`; thread 0 also refreshes the topics.
    pub fn new(index: usize, shared: Arc<SysShared>) -> IoStats {
        let refresh = (index == 0).then(|| Refresh {
            next: shared.started,
            topics: SysTopics::new(),
            asked: false,
        });
        IoStats {
            counters: Counters::default(),
            ended_dropped: 0,
            gauges: Gauges::default(),
            live_dropped: 0,
            round_seen: 0,
            index,
            shared,
            refresh,
        }
    }

    /// Counts a packet decoded from a client.
    pub fn packet_in(&mut self, packet: &Packet) {
        self.counters.msgs_received += 1;
        match packet {
            Packet::Publish(_) => self.counters.pub_received += 1,
            Packet::Connect(_) => self.counters.connects += 1,
            _ => {}
        }
    }

    /// Keeps the drop count of a session that is ending. Its drops also leave the live sum of
    /// the last walk (at most what was counted there for it and for its neighbours), so the
    /// total never goes down between walks; the next walk makes it exact again.
    pub fn session_ended(&mut self, session: &Session) {
        let dropped = session.outbound().dropped;
        self.ended_dropped = self.ended_dropped.saturating_add(dropped);
        self.live_dropped = self.live_dropped.saturating_sub(dropped);
    }
}

impl IoStats {
    /// Counts `written` bytes sent from `wire` and the packets queued on it since the last call.
    pub fn sent(&mut self, written: usize, wire: &mut OutBuf) {
        let c = &mut self.counters;
        c.bytes_sent += written as u64;
        let (packets, publishes) = wire.take_counts();
        c.msgs_sent += packets;
        c.pub_sent += publishes;
    }
}

impl Core {
    /// Runs on every tick: folds this thread's figures into its slot and, on thread 0 when the
    /// interval is up, publishes the topics that changed.
    pub(super) fn sys_tick(&mut self, now: Instant) {
        let shared = self.stats.shared.clone();
        let Some(interval) = self.cfg.sys.interval else {
            return;
        };
        if let Some(refresh) = self.stats.refresh.as_mut().filter(|r| !r.asked) {
            if now + GAUGE_LEAD >= refresh.next {
                refresh.asked = true;
                shared.gauge_round.fetch_add(1, Ordering::Relaxed);
            }
        }
        let round = shared.gauge_round.load(Ordering::Relaxed);
        if round != self.stats.round_seen {
            self.stats.round_seen = round;
            self.walk_sessions();
        }
        let stats = &self.stats;
        let mut counters = stats.counters;
        counters.pub_dropped = stats.ended_dropped.saturating_add(stats.live_dropped);
        let sample = Sample {
            counters,
            gauges: stats.gauges,
        };
        *shared.slots[stats.index].lock() = sample;
        self.sys_refresh(now, interval);
    }

    /// Takes the gauges and the live sessions' drop counts from this thread's sessions.
    fn walk_sessions(&mut self) {
        let mut gauges = Gauges::default();
        let mut dropped = 0u64;
        for (_, s) in self.sessions.iter() {
            if s.conn.is_some() {
                gauges.connected += 1;
            } else {
                gauges.disconnected += 1;
            }
            let outbound = s.session.outbound();
            gauges.subscriptions += s.session.filters().count() as u64;
            gauges.queued += outbound.queued() as u64;
            dropped = dropped.saturating_add(outbound.dropped);
        }
        self.stats.gauges = gauges;
        self.stats.live_dropped = dropped;
    }

    /// Thread 0: routes the changed topics as retained messages once the interval is up.
    fn sys_refresh(&mut self, now: Instant, interval: Duration) {
        let Some(refresh) = self.stats.refresh.as_mut() else {
            return;
        };
        // A reload that shortened the interval takes effect now, not after the old one.
        refresh.next = refresh.next.min(now + interval);
        if now < refresh.next {
            return;
        }
        refresh.next = now + interval;
        refresh.asked = false;
        let status = self.stats.shared.status(now);
        let version = env!("CARGO_PKG_VERSION");
        for (topic, payload) in refresh.topics.update(&status, version) {
            self.out.router.publish(Arc::new(Message::new(
                topic.into_boxed_str(),
                Bytes::from(payload),
                QoS::AtMostOnce,
                true,
                Properties::default(),
                None,
                None,
            )));
        }
    }
}
