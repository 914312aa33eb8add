//! The thread loop around one [`Shard`]: receive commands, apply them in batches, hand deliveries to
//! the owning I/O threads and wake each of those threads once per batch.
//!
//! Owns: the shard thread and [`Mailbox`]. Must not touch: routing logic (in `shard.rs`).

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::shard::{Command, Delivery, Shard};

/// Commands handled before the shard wakes the I/O threads it delivered to; bounds latency under load
/// while letting one wake-up cover many messages.
const BATCH: usize = 256;

/// Where deliveries for one I/O thread go: a channel and the waker of that thread's poll.
#[derive(Clone)]
pub struct Mailbox {
    /// Deliveries for sessions owned by the thread.
    pub tx: Sender<Delivery>,
    /// Wakes the thread's `mio::Poll`.
    pub waker: Arc<mio::Waker>,
}

/// Runs a shard until every command sender is dropped.
pub fn run_shard(mut shard: Shard, rx: Receiver<Command>, mailboxes: Vec<Mailbox>) {
    let mut dirty = vec![false; mailboxes.len()];
    while let Ok(first) = rx.recv() {
        let now = Instant::now();
        let mut emit = |d: Delivery| {
            let t = usize::from(d.to.thread);
            if let Some(mb) = mailboxes.get(t) {
                // The I/O thread outlives the shards; a send error only happens at shutdown.
                let _ = mb.tx.send(d);
                dirty[t] = true;
            }
        };
        shard.handle(first, now, &mut emit);
        for cmd in rx.try_iter().take(BATCH) {
            shard.handle(cmd, now, &mut emit);
        }
        for (t, flag) in dirty.iter_mut().enumerate() {
            if std::mem::take(flag) {
                if let Err(e) = mailboxes[t].waker.wake() {
                    log::warn!("router: waking I/O thread {t} failed: {e}");
                }
            }
        }
    }
}
