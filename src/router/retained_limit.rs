//! The broker-wide cap on retained messages (count and bytes), shared by every router shard.
//!
//! Owns: [`RetainedBudget`] (two atomic counters against two maxima) and [`RefusalLog`], the
//! rate-limited warning a shard logs when it cannot store a new retained topic. Policy, applied by
//! the shard: a retained PUBLISH to a topic not stored yet is stored only if the budget has room;
//! otherwise it is still delivered to current subscribers (it was acknowledged) but not stored.
//! Replacing or clearing a stored topic always works, so the store never holds a value older than
//! the last one acknowledged for that topic. Must not touch: the store itself (`retained.rs`),
//! threads, channels or the clock (time comes in as `now`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often a shard may log that it refused to store retained messages.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Room left for retained messages across all shards. Cost of a message is its topic, payload and
/// message-property bytes ([`crate::message::Message::cost`]).
#[derive(Debug)]
pub struct RetainedBudget {
    /// Maxima (a config reload may change them; stored messages above a lowered maximum stay
    /// until replaced, cleared or expired, and no new topic is stored meanwhile).
    max_count: AtomicUsize,
    max_bytes: AtomicUsize,
    count: AtomicUsize,
    bytes: AtomicUsize,
}

impl RetainedBudget {
    /// An empty store allowed `max_count` messages and `max_bytes` bytes.
    pub fn new(max_count: usize, max_bytes: usize) -> RetainedBudget {
        RetainedBudget {
            max_count: AtomicUsize::new(max_count),
            max_bytes: AtomicUsize::new(max_bytes),
            count: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
        }
    }

    /// New maxima (config reload).
    pub fn set_limits(&self, max_count: usize, max_bytes: usize) {
        self.max_count.store(max_count, Ordering::Relaxed);
        self.max_bytes.store(max_bytes, Ordering::Relaxed);
    }

    /// No limit at all.
    pub fn unlimited() -> RetainedBudget {
        RetainedBudget::new(usize::MAX, usize::MAX)
    }

    /// Reserves room for one new topic costing `cost` bytes; false (and nothing reserved) when
    /// either maximum would be passed. Exact across shards (compare-and-swap, no overshoot).
    pub fn try_add(&self, cost: usize) -> bool {
        let (max_count, max_bytes) = (
            self.max_count.load(Ordering::Relaxed),
            self.max_bytes.load(Ordering::Relaxed),
        );
        let counted = self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                (c < max_count).then_some(c + 1)
            })
            .is_ok();
        if !counted {
            return false;
        }
        let sized = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                b.checked_add(cost).filter(|&n| n <= max_bytes)
            })
            .is_ok();
        if !sized {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        sized
    }

    /// A stored topic got a new value: always allowed (see the module policy), so the byte count
    /// can pass its maximum by at most the growth of replaced values, each bounded by the maximum
    /// packet size.
    pub fn replace(&self, old_cost: usize, new_cost: usize) {
        if new_cost >= old_cost {
            self.bytes.fetch_add(new_cost - old_cost, Ordering::AcqRel);
        } else {
            self.bytes.fetch_sub(old_cost - new_cost, Ordering::AcqRel);
        }
    }

    /// A stored topic was cleared or expired.
    pub fn release(&self, cost: usize) {
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.bytes.fetch_sub(cost, Ordering::AcqRel);
    }

    /// Retained messages stored, all shards together.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Bytes of retained messages stored, all shards together.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }
}

/// Counts refusals (or drops) and says when a warning is due (at most once a minute), with the
/// count since the last one. Also the drop log of the admission rule (`broker::admission`).
#[derive(Debug, Default)]
pub struct RefusalLog {
    refused: u64,
    last_warned: Option<Instant>,
}

impl RefusalLog {
    /// Notes one refusal; returns how many refusals the warning due now should report, if one is.
    pub fn note(&mut self, now: Instant) -> Option<u64> {
        self.note_many(1, now)
    }

    /// Notes `n` refusals at once; like [`RefusalLog::note`].
    pub fn note_many(&mut self, n: u64, now: Instant) -> Option<u64> {
        self.refused = self.refused.saturating_add(n);
        let due = match self.last_warned {
            None => true,
            Some(t) => now.saturating_duration_since(t) >= WARN_EVERY,
        };
        if !due {
            return None;
        }
        self.last_warned = Some(now);
        Some(std::mem::take(&mut self.refused))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_and_bytes_are_both_enforced_and_released() {
        let b = RetainedBudget::new(2, 100);
        assert!(b.try_add(40));
        assert!(!b.try_add(61), "bytes full");
        assert_eq!(b.count(), 1, "a byte refusal gives the count back");
        assert!(b.try_add(60));
        assert!(!b.try_add(0), "count full");
        b.replace(60, 90);
        assert_eq!(b.bytes(), 130, "replacing always works");
        b.release(90);
        assert_eq!((b.count(), b.bytes()), (1, 40));
        assert!(b.try_add(10));
    }

    #[test]
    fn refusals_are_logged_at_most_once_a_minute_with_their_count() {
        let t0 = Instant::now();
        let mut log = RefusalLog::default();
        assert_eq!(log.note(t0), Some(1));
        assert_eq!(log.note(t0 + Duration::from_secs(1)), None);
        assert_eq!(log.note(t0 + Duration::from_secs(2)), None);
        assert_eq!(log.note(t0 + WARN_EVERY), Some(3));
    }
}
