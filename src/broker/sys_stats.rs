//! Gathering the `$SYS` figures from the I/O threads' cores and publishing them through the router.
//!
//! Owns: [`IoStats`] (one I/O thread's plain counters, bumped on its hot path with no atomics),
//! [`SysShared`] (one `Mutex`'d sample per I/O thread, overwritten by its owner once per `[sys]
//! interval`, so no cache line bounces between threads per message and no 64-bit atomic is needed
//! on 32-bit targets), and the refresh on I/O thread 0, which sums the samples every `[sys]
//! interval` and routes the changed topics as retained QoS 0 messages, like any publish (so ACLs
//! and the `$`-topic matching rules apply). Must not touch: what the figures mean or how they are
//! named (`crate::sys`), sessions' state (read only), sockets (the I/O layer reports bytes sent).
//!
//! Timing: refreshes happen at `started + k * interval`. Every thread, on its own timer, walks its
//! sessions for the gauges (sessions, subscriptions, queues, drops) and folds its counters into its
//! slot a little before each refresh time ([`GAUGE_LEAD`]); thread 0 publishes at that time. With
//! `$SYS` off no thread wakes for it at all.

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

/// How long before a refresh every thread folds its figures: more than the core's timer
/// granularity (250 ms), so each has folded before thread 0 sums them.
const GAUGE_LEAD: Duration = Duration::from_millis(300);

/// What the I/O threads share for `$SYS`: one sample slot per thread and the start time.
pub struct SysShared {
    started: Instant,
    slots: Vec<Mutex<Sample>>,
    retained: Arc<RetainedBudget>,
}

impl SysShared {
    /// Slots for `threads` I/O threads. Whether and how often the topics are published is the
    /// configuration's `[sys] interval`, read on every tick (a reload may change it).
    pub fn new(threads: usize, retained: Arc<RetainedBudget>) -> SysShared {
        SysShared {
            started: Instant::now(),
            slots: (0..threads).map(|_| Mutex::default()).collect(),
            retained,
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
    topics: SysTopics,
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
    /// The next refresh time (`started + k * interval`).
    next_refresh: Instant,
    /// This thread's figures were folded for `next_refresh`.
    folded: bool,
    index: usize,
    shared: Arc<SysShared>,
    refresh: Option<Refresh>,
}

impl IoStats {
    /// Counters of I/O thread `index`; thread 0 also refreshes the topics.
    pub fn new(index: usize, shared: Arc<SysShared>) -> IoStats {
        let refresh = (index == 0).then(|| Refresh {
            topics: SysTopics::new(),
        });
        IoStats {
            counters: Counters::default(),
            ended_dropped: 0,
            gauges: Gauges::default(),
            live_dropped: 0,
            next_refresh: shared.started,
            folded: false,
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

    /// A dialled link's queue refused a message (the admission rule's per-subscriber drop,
    /// `admission.rs`): counted with the other drops.
    pub fn dialled_dropped(&mut self) {
        self.ended_dropped = self.ended_dropped.saturating_add(1);
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
    /// Runs the `$SYS` work due at `now` and returns when some is next due (`None`: `$SYS` is
    /// off). Every thread walks its sessions and folds its figures into its slot shortly before
    /// each refresh time (`started + k * interval`); thread 0 then publishes at that time.
    pub(super) fn sys_tick(&mut self, now: Instant) -> Option<Instant> {
        let interval = self.cfg.sys.interval?;
        // A reload that shortened the interval takes effect now, not after the old one.
        if self.stats.next_refresh > now + interval {
            self.stats.next_refresh = now + interval;
            self.stats.folded = false;
        }
        if !self.stats.folded && now + GAUGE_LEAD >= self.stats.next_refresh {
            self.walk_sessions();
            self.fold();
            self.stats.folded = true;
        }
        if self.stats.folded && now >= self.stats.next_refresh {
            if self.stats.refresh.is_some() {
                self.fold();
                self.sys_publish(now);
            }
            while self.stats.next_refresh <= now {
                self.stats.next_refresh += interval;
            }
            self.stats.folded = false;
        }
        let next = self.stats.next_refresh;
        Some(match self.stats.folded {
            true => next,
            false => next.checked_sub(GAUGE_LEAD).unwrap_or(next),
        })
    }

    /// Writes this thread's figures into its slot.
    fn fold(&mut self) {
        let refused = self
            .shards
            .iter()
            .flatten()
            .map(|s| s.retained_refused())
            .sum();
        let stats = &self.stats;
        let mut counters = stats.counters;
        counters.retained_refused = refused;
        counters.pub_dropped = stats.ended_dropped.saturating_add(stats.live_dropped);
        let sample = Sample {
            counters,
            gauges: stats.gauges,
        };
        *stats.shared.slots[stats.index].lock() = sample;
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

    /// Thread 0: routes the changed topics as retained messages.
    fn sys_publish(&mut self, now: Instant) {
        let Some(refresh) = self.stats.refresh.as_mut() else {
            return;
        };
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
