//! Commands for the router shards, gathered during one I/O-thread turn and sent at its end.
//!
//! Owns: [`RouterBatch`]. Sending each publish on its own woke a parked shard thread (a futex
//! call, a context switch) per message at low load; one send per shard per turn wakes it once
//! for everything the turn produced. Commands keep their order per shard, so per-topic order and
//! "subscription in place before SUBACK is written" still hold: the batch is sent before the turn's
//! output is flushed. Must not touch: routing decisions (which shard is `router::shard`'s rule).

use crossbeam_channel::Sender;

use crate::message::SharedMessage;
use crate::router::shard::{shard_of_filter, shard_of_topic, Command};

/// Per-shard command lists for the current turn.
pub struct RouterBatch {
    pending: Vec<Vec<Command>>,
}

impl RouterBatch {
    /// Empty lists for `shards` shards.
    pub fn new(shards: usize) -> RouterBatch {
        RouterBatch {
            pending: (0..shards.max(1)).map(|_| Vec::new()).collect(),
        }
    }

    /// A publish goes to its topic's shard.
    pub fn publish(&mut self, msg: SharedMessage) {
        let shard = shard_of_topic(&msg.topic, self.pending.len());
        self.pending[shard].push(Command::Publish(msg));
    }

    /// A (un)subscribe goes to every shard that must hold the filter.
    pub fn filter(&mut self, filter: &str, mut make: impl FnMut() -> Command) {
        match shard_of_filter(filter, self.pending.len()) {
            Some(s) => self.pending[s].push(make()),
            None => self.all(make),
        }
    }

    /// A command for the shard that owns `topic`.
    pub fn for_topic(&mut self, topic: &str, cmd: Command) {
        let shard = shard_of_topic(topic, self.pending.len());
        self.pending[shard].push(cmd);
    }

    /// A command for every shard.
    pub fn all(&mut self, mut make: impl FnMut() -> Command) {
        for list in &mut self.pending {
            list.push(make());
        }
    }

    /// Sends what was gathered: a lone command as is, several as one `Batch`. Blocks while a
    /// shard's queue is full (the backpressure from router to publishers).
    pub fn send(&mut self, router: &[Sender<Command>]) {
        for (list, tx) in self.pending.iter_mut().zip(router) {
            let cmd = match list.len() {
                0 => continue,
                1 => list.pop(),
                _ => Some(Command::Batch(std::mem::take(list))),
            };
            if let Some(cmd) = cmd {
                // Shards outlive the I/O threads; a send error only happens at shutdown.
                let _ = tx.send(cmd);
            }
        }
    }
}
