//! The core's one timer table: a min-heap of (slot, what) with lazy deletion, instead of scanning
//! every connection and session on a periodic tick.
//!
//! Time is counted in 250 ms slots from the table's start; a deadline is rounded up to its slot,
//! so timers due close together are handled by one wake-up (keep-alive, expiry and connect
//! deadlines are seconds long; a quarter second late is within what MQTT allows). Each
//! connection and offline session records the slot of its earliest pending entry; scheduling a
//! later one is a no-op, an earlier one pushes a new entry, and an entry whose slot no longer
//! matches its owner's record is stale and skipped. So each owner has at most one live entry, and
//! an idle broker with no deadline pending sleeps until a packet arrives.
//!
//! Owns: [`Timers`], [`TimerKey`], slot arithmetic. Must not touch: what a timer does
//! (`housekeeping.rs`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Width of a slot.
pub const SLOT: Duration = Duration::from_millis(250);

/// What a timer entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerKey {
    /// A connection's deadlines (connect timeout, linger, throttle, packet timeout, keep-alive).
    Conn(usize),
    /// An offline session's deadlines (delayed will, expiry).
    Session(u32),
    /// `$SYS` folding and publishing.
    Sys,
    /// Forgetting rested publish-rate debts.
    RateDebts,
    /// A dialled link's session timer or redial.
    Dial(u32),
}

/// The heap of pending entries.
pub struct Timers {
    start: Instant,
    heap: BinaryHeap<Reverse<(u32, TimerKey)>>,
}

impl Timers {
    /// An empty table counting slots from `start`.
    pub fn new(start: Instant) -> Timers {
        Timers {
            start,
            heap: BinaryHeap::new(),
        }
    }

    /// The slot `at` falls in, rounded up; slot numbers start at 1 (0 means "none" to owners).
    pub fn slot_of(&self, at: Instant) -> u32 {
        let since = at.saturating_duration_since(self.start);
        let slots = since.as_nanos().div_ceil(SLOT.as_nanos());
        u32::try_from(slots.saturating_add(1)).unwrap_or(u32::MAX)
    }

    /// When slot `slot` is due.
    pub fn instant_of(&self, slot: u32) -> Instant {
        let n = slot.saturating_sub(1);
        self.start + SLOT * n
    }

    /// Schedules `key` at `at` unless its owner's earliest entry (`current`, 0 = none) is sooner;
    /// returns the owner's new earliest slot.
    pub fn schedule(&mut self, key: TimerKey, at: Instant, current: u32) -> u32 {
        let slot = self.slot_of(at);
        if current != 0 && current <= slot {
            return current;
        }
        self.heap.push(Reverse((slot, key)));
        slot
    }

    /// When the earliest entry is due.
    pub fn next(&self) -> Option<Instant> {
        self.heap
            .peek()
            .map(|Reverse((slot, _))| self.instant_of(*slot))
    }

    /// Takes the next entry due at `now`, with its slot.
    pub fn pop_due(&mut self, now: Instant) -> Option<(u32, TimerKey)> {
        // The slots whose instant has come: floor, where `slot_of` rounds up.
        let since = now.saturating_duration_since(self.start);
        let due = u32::try_from(since.as_nanos() / SLOT.as_nanos() + 1).unwrap_or(u32::MAX);
        match self.heap.peek() {
            Some(Reverse((slot, _))) if *slot <= due => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Entries pending (stale ones included).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_their_slot_and_pop_in_order() {
        let start = Instant::now();
        let mut t = Timers::new(start);
        let a = t.schedule(TimerKey::Conn(1), start + Duration::from_millis(600), 0);
        let b = t.schedule(TimerKey::Conn(2), start + Duration::from_millis(100), 0);
        assert_eq!((a, b), (4, 2));
        assert_eq!(t.instant_of(b), start + SLOT);
        // A later deadline for an owner with an earlier one is a no-op.
        assert_eq!(
            t.schedule(TimerKey::Conn(2), start + Duration::from_secs(9), b),
            b
        );
        assert_eq!(t.len(), 2);
        assert_eq!(t.next(), Some(start + SLOT));
        assert_eq!(t.pop_due(start), None);
        assert_eq!(t.pop_due(start + Duration::from_millis(249)), None);
        assert_eq!(t.pop_due(start + SLOT), Some((2, TimerKey::Conn(2))));
        assert_eq!(t.pop_due(start + SLOT), None);
        assert_eq!(t.pop_due(start + SLOT * 3), Some((4, TimerKey::Conn(1))));
        assert!(t.is_empty());
    }
}
