//! Router shards co-located with the I/O threads: the core applies commands for the shards its
//! thread owns inline (no thread hop, no wake-up), batches commands for other threads' shards and
//! deliveries for other threads' sessions, and delivers to its own sessions directly.
//!
//! Placement: shard `s` lives on I/O thread `s % threads`. A message therefore crosses at most two
//! threads (publisher's → shard owner's → subscriber's), and none when all three are one.
//!
//! Back-pressure (the admission rule's "refused before its acknowledgement" side is untouched:
//! nothing here drops a message). Channels between threads are bounded; the I/O layer never blocks
//! on a send. What it cannot send stays in [`RouterOut`] and the thread is *congested*: it stops
//! decoding PUBLISH packets (the publishing connections wait in their socket buffers; other
//! packets of those and other connections are still served), stops taking commands from other
//! threads (which may produce more deliveries), and holds the output of connections that just
//! subscribed (a SUBACK must not overtake its subscription). It always takes deliveries, which
//! only queue in sessions, so every thread's outgoing deliveries drain and no cycle of full
//! channels can block for good. When everything is sent, held connections resume.
//!
//! Owns: [`Core::run_router`], [`Core::apply_commands`], shard placement and the congestion state.
//! Must not touch: channels (the I/O layer sends and receives batches) or routing rules (`router`).

use crate::router::shard::{Command, Delivery};

use super::router_out::CommandBatch;
use super::Core;

/// Rounds of "apply local lists, deliver locally" per call: a delivery can produce router work
/// (a shared-subscription message handed back); what is left after these rounds waits for the
/// next call.
const ROUNDS: usize = 4;

/// The I/O thread that owns shard `shard` when there are `threads` I/O threads.
pub fn shard_owner(shard: usize, threads: usize) -> usize {
    shard % threads.max(1)
}

impl Core {
    /// Routes what the turn gathered: local shards' lists are applied now, other shards' lists
    /// become batches for their threads; deliveries go to local sessions or into batches.
    pub fn run_router(&mut self) {
        for _ in 0..ROUNDS {
            if !self.out.router.has_pending() {
                return;
            }
            for (shard, cmds) in self.out.router.take_pending() {
                let owner = shard_owner(shard, self.shared.threads);
                if owner == usize::from(self.index) {
                    self.apply_local(shard, cmds);
                } else {
                    let batch = &mut self.out.router.commands[owner];
                    batch.extend(cmds.into_iter().map(|c| (shard as u16, c)));
                }
            }
        }
    }

    /// Applies commands another thread sent for shards of this one.
    pub fn apply_commands(&mut self, batch: CommandBatch) {
        let now = self.now;
        let mut deliveries = std::mem::take(&mut self.delivery_scratch);
        for (shard, cmd) in batch {
            match self
                .shards
                .get_mut(usize::from(shard))
                .and_then(Option::as_mut)
            {
                Some(owned) => owned.handle(cmd, now, &mut |d: Delivery| deliveries.push(d)),
                // A batch sent to the wrong thread would be a bug: say so, lose only it.
                None => log::error!(
                    "thread {}: command for shard {shard} it does not own",
                    self.index
                ),
            }
        }
        self.dispatch(deliveries);
        self.run_router();
    }

    fn apply_local(&mut self, shard: usize, cmds: Vec<Command>) {
        let now = self.now;
        let mut deliveries = std::mem::take(&mut self.delivery_scratch);
        match self.shards.get_mut(shard).and_then(Option::as_mut) {
            Some(owned) => {
                for cmd in cmds {
                    owned.handle(cmd, now, &mut |d: Delivery| deliveries.push(d));
                }
            }
            None => log::error!(
                "thread {}: commands for shard {shard} it does not own",
                self.index
            ),
        }
        self.dispatch(deliveries);
    }

    /// Deliveries from a local shard: to this thread's sessions now, to others' in batches.
    fn dispatch(&mut self, mut deliveries: Vec<Delivery>) {
        for d in deliveries.drain(..) {
            let to = usize::from(d.to.thread);
            if to == usize::from(self.index) {
                self.deliver(d);
            } else if let Some(batch) = self.out.router.deliveries.get_mut(to) {
                batch.push(d);
            }
        }
        self.delivery_scratch = deliveries;
    }

    /// Whether the thread has router work it could not hand to other threads yet.
    pub fn is_congested(&self) -> bool {
        self.congested
    }

    /// Called by the I/O layer after each turn's take of other threads' commands: `waiting` is
    /// whether commands are still queued for this thread's shards (its per-turn budget ran out).
    /// A subscription among them may have had its SUBACK written already, so no PUBLISH is
    /// decoded here until they are applied: one prompted by that SUBACK must not overtake it.
    pub fn set_backlog(&mut self, waiting: bool) {
        self.backlog = waiting;
        if !waiting {
            self.resume_publishers();
        }
    }

    /// Whether PUBLISH packets wait (congested, or commands from other threads still queued).
    pub(super) fn publishes_wait(&self) -> bool {
        self.congested || self.backlog
    }

    /// Called by the I/O layer after each send attempt: `unsent` is whether batches remain. On
    /// the way out of congestion, paused publishers are read again and held output goes out.
    pub fn set_congested(&mut self, unsent: bool) {
        if unsent {
            if !self.congested {
                log::debug!("thread {}: router batches wait for room", self.index);
            }
            self.congested = true;
            // A SUBACK (or UNSUBACK) must not reach its client before its command reaches the
            // shard: hold those connections' output while commands wait.
            for id in std::mem::take(&mut self.subscribed) {
                if let Some(conn) = self.conns.get_mut(id) {
                    if !conn.output_held {
                        conn.output_held = true;
                        self.held_output.push(id);
                    }
                }
            }
            return;
        }
        self.subscribed.clear();
        if !self.congested {
            return;
        }
        self.congested = false;
        self.resume_publishers();
        for id in std::mem::take(&mut self.held_output) {
            if let Some(conn) = self.conns.get_mut(id) {
                conn.output_held = false;
                super::queue_flush(conn, id, &mut self.out.dirty);
            }
        }
    }

    /// Publishers paused by [`Core::publishes_wait`] are read again once nothing waits.
    fn resume_publishers(&mut self) {
        if self.publishes_wait() {
            return;
        }
        for id in std::mem::take(&mut self.paused_publishers) {
            if let Some(conn) = self.conns.get_mut(id) {
                conn.router_paused = false;
                self.out.read_again.push(id);
            }
        }
    }
}
