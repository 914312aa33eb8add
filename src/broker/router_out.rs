//! Commands for the router shards, gathered by the core during one I/O-thread turn; the I/O layer
//! sends them.
//!
//! Owns: [`RouterOut`]. Sending each publish on its own woke a parked shard thread (a futex
//! call, a context switch) per message at low load; one send per shard per turn wakes it once
//! for everything the turn produced. Commands keep their order per shard, so per-topic order and
//! "subscription in place before SUBACK is written" still hold: the I/O layer sends the lists
//! before the turn's output is flushed. Must not touch: channels (the I/O layer sends) or routing
//! decisions (which shard is `router::shard`'s rule).

use crate::message::SharedMessage;
use crate::router::shard::{shard_of_filter, shard_of_topic, Command};

/// A shard's list is handed out as soon as it holds this many commands, so a shard's bounded queue
/// bounds messages (queue slots x this), not whole turns of input.
const MAX_BATCH: usize = 128;

/// Per-shard command lists for the current turn.
pub struct RouterOut {
    pending: Vec<Vec<Command>>,
    /// Lists that reached [`MAX_BATCH`], ready to send before the turn ends.
    full: Vec<(usize, Command)>,
}

impl RouterOut {
    /// Empty lists for `shards` shards.
    pub fn new(shards: usize) -> RouterOut {
        RouterOut {
            pending: (0..shards.max(1)).map(|_| Vec::new()).collect(),
            full: Vec::new(),
        }
    }

    fn push(&mut self, shard: usize, cmd: Command) {
        self.pending[shard].push(cmd);
        if self.pending[shard].len() >= MAX_BATCH {
            if let Some(cmd) = take_list(&mut self.pending[shard]) {
                self.full.push((shard, cmd));
            }
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

    /// Whether lists that reached their size limit wait to be sent.
    pub fn has_full(&self) -> bool {
        !self.full.is_empty()
    }

    /// Hands out the lists that reached their size limit, in order, as `(shard, command)`.
    pub fn take_full(&mut self, mut send: impl FnMut(usize, Command)) {
        for (shard, cmd) in self.full.drain(..) {
            send(shard, cmd);
        }
    }

    /// Hands out everything gathered (full lists first, so per-shard order holds): a lone
    /// command as is, several as one `Batch`.
    pub fn take_all(&mut self, mut send: impl FnMut(usize, Command)) {
        self.take_full(&mut send);
        for (shard, list) in self.pending.iter_mut().enumerate() {
            if let Some(cmd) = take_list(list) {
                send(shard, cmd);
            }
        }
    }
}

fn take_list(list: &mut Vec<Command>) -> Option<Command> {
    match list.len() {
        0 => None,
        1 => list.pop(),
        _ => Some(Command::Batch(std::mem::take(list))),
    }
}
