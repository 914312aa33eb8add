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

/// A shard's list is sent as soon as it holds this many commands, so a shard's bounded queue
/// bounds messages (queue slots x this), not whole turns of input.
const MAX_BATCH: usize = 128;

/// Per-shard command lists for the current turn.
pub struct RouterBatch {
    pending: Vec<Vec<Command>>,
    router: Vec<Sender<Command>>,
}

impl RouterBatch {
    /// Empty lists for the shards behind `router`.
    pub fn new(router: Vec<Sender<Command>>) -> RouterBatch {
        RouterBatch {
            pending: router.iter().map(|_| Vec::new()).collect(),
            router,
        }
    }

    fn push(&mut self, shard: usize, cmd: Command) {
        self.pending[shard].push(cmd);
        if self.pending[shard].len() >= MAX_BATCH {
            send_one(&mut self.pending[shard], &self.router[shard]);
        }
    }

    /// A publish goes to its topic's shard.
    pub fn publish(&mut self, msg: SharedMessage) {
        let shard = shard_of_topic(&msg.topic, self.pending.len());
        self.push(shard, Command::Publish(msg));
    }

    /// A (un)subscribe goes to every shard that must hold the filter.
    pub fn filter(&mut self, filter: &str, mut make: impl FnMut() -> Command) {
        match shard_of_filter(filter, self.pending.len()) {
            Some(s) => self.push(s, make()),
            None => self.all(make),
        }
    }

    /// A command for the shard that owns `topic`.
    pub fn for_topic(&mut self, topic: &str, cmd: Command) {
        let shard = shard_of_topic(topic, self.pending.len());
        self.push(shard, cmd);
    }

    /// A command for every shard.
    pub fn all(&mut self, mut make: impl FnMut() -> Command) {
        for shard in 0..self.pending.len() {
            self.push(shard, make());
        }
    }

    /// Sends what was gathered: a lone command as is, several as one `Batch`. Blocks while a
    /// shard's queue is full (the backpressure from router to publishers).
    pub fn send(&mut self) {
        for (list, tx) in self.pending.iter_mut().zip(&self.router) {
            send_one(list, tx);
        }
    }
}

fn send_one(list: &mut Vec<Command>, tx: &Sender<Command>) {
    let cmd = match list.len() {
        0 => return,
        1 => list.pop(),
        _ => Some(Command::Batch(std::mem::take(list))),
    };
    if let Some(cmd) = cmd {
        // Shards outlive the I/O threads; a send error only happens at shutdown.
        let _ = tx.send(cmd);
    }
}
