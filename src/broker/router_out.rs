//! Router work the core produced and has not applied or handed out yet.
//!
//! Owns: [`RouterOut`]: per-shard command lists gathered from session actions during a turn, and
//! per-I/O-thread batches bound for shards and sessions that live on other threads. The core
//! applies the lists of its own shards inline (`routing.rs`); the I/O layer sends the batches, one
//! channel send per destination thread per turn (at low load one wake-up covers everything a turn
//! produced; at high load a batch carries many messages). Commands keep their order per shard and
//! deliveries their order per destination thread, so per-topic order holds. Must not touch:
//! channels (the I/O layer sends) or routing decisions (which shard is `router::shard`'s rule).

use crate::message::SharedMessage;
use crate::router::shard::{shard_of_filter, shard_of_topic, Command, Delivery};

/// A shard's list is applied (or handed out) once it holds this many commands, even mid-turn, so
/// what one turn gathers stays bounded.
const MAX_LIST: usize = 128;

/// Commands for shards on another thread, tagged with their shard index.
pub type CommandBatch = Vec<(u16, Command)>;

/// Router work waiting in the core.
pub struct RouterOut {
    /// Per shard: commands gathered this turn, not yet applied or handed out.
    pending: Vec<Vec<Command>>,
    /// A list reached [`MAX_LIST`]: route before reading more input.
    full: bool,
    /// Per I/O thread: commands for its shards, waiting to be sent.
    pub commands: Vec<CommandBatch>,
    /// Per I/O thread: deliveries for its sessions, waiting to be sent.
    pub deliveries: Vec<Vec<Delivery>>,
}

impl RouterOut {
    /// Empty lists for `shards` shards spread over `threads` I/O threads.
    pub fn new(shards: usize, threads: usize) -> RouterOut {
        RouterOut {
            pending: (0..shards.max(1)).map(|_| Vec::new()).collect(),
            full: false,
            commands: (0..threads.max(1)).map(|_| Vec::new()).collect(),
            deliveries: (0..threads.max(1)).map(|_| Vec::new()).collect(),
        }
    }

    fn push(&mut self, shard: usize, cmd: Command) {
        self.pending[shard].push(cmd);
        self.full |= self.pending[shard].len() >= MAX_LIST;
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

    /// Whether some shard's list is long enough to route before reading more input.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Whether any shard has commands not yet applied or handed out.
    pub fn has_pending(&self) -> bool {
        self.pending.iter().any(|l| !l.is_empty())
    }

    /// Takes every shard's list (index, commands), leaving them empty.
    pub fn take_pending(&mut self) -> Vec<(usize, Vec<Command>)> {
        self.full = false;
        self.pending
            .iter_mut()
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .map(|(s, l)| (s, std::mem::take(l)))
            .collect()
    }

    /// Whether batches for other threads wait to be sent.
    pub fn has_unsent(&self) -> bool {
        self.commands.iter().any(|b| !b.is_empty()) || self.deliveries.iter().any(|b| !b.is_empty())
    }
}
