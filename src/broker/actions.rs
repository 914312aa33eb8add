//! The one path by which session actions leave the core, and the ends of connections and sessions.
//!
//! Owns: [`Core::run_actions`] (a connection's pending session actions: router work, closes),
//! [`Core::route`] (an action as router commands), closing a connection now or after its last
//! bytes, detaching and ending sessions, and the input pause while a client does not read its
//! output. Must not touch: sockets (closes and flushes are outbox entries), protocol rules.

use std::time::Instant;

use crate::message::SessionRef;
use crate::router::shard::Command;
use crate::session::outbound::WIRE_HIGH_WATER;
use crate::session::{Action, LinkLoss, Output};

use super::conn::Phase;
use super::{queue_flush, Closed, Core};

/// Output a connection may have pending before its input is no longer read.
const OUTPUT_PAUSE: usize = 2 * WIRE_HIGH_WATER;
/// Output level below which a paused connection's input is read again.
const OUTPUT_RESUME: usize = WIRE_HIGH_WATER;

impl Core {
    /// Carries out what the session asked for on connection `id`: its router work goes to the
    /// outbox, its bytes to the flush list, a close request closes the connection after them.
    pub fn run_actions(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if !conn.out.wire.is_empty() {
            queue_flush(conn, id, &mut self.out.dirty);
        }
        if conn.out.actions.is_empty() {
            return;
        }
        let actions = std::mem::take(&mut conn.out.actions);
        let who = match conn.phase {
            Phase::Attached { slot } => self.session_ref(slot),
            _ => None,
        };
        let subscribes = actions
            .iter()
            .any(|a| matches!(a, Action::Subscribe { .. } | Action::Unsubscribe { .. }));
        if subscribes {
            self.subscribed.push(id);
        }
        let close = self.route_all(who, actions);
        if close {
            self.close_after_flush(id);
        }
    }

    /// Routes `actions` of session `who`; returns whether one of them asked to close.
    fn route_all(&mut self, who: Option<SessionRef>, actions: Vec<Action>) -> bool {
        let mut close = false;
        for action in actions {
            match action {
                Action::Close => close = true,
                other => self.route(who, other),
            }
        }
        close
    }

    fn session_ref(&self, slot: u32) -> Option<SessionRef> {
        self.sessions
            .get(slot as usize)
            .map(|s| s.session.session_ref())
    }

    /// Queues a session's router work for this turn's batch.
    pub(super) fn route(&mut self, who: Option<SessionRef>, action: Action) {
        let batch = &mut self.out.router;
        match (action, who) {
            (Action::Publish(msg), _) => batch.publish(msg),
            (
                Action::Subscribe {
                    filter,
                    entry,
                    send_retained,
                },
                Some(session),
            ) => batch.filter(&filter, || Command::Subscribe {
                session,
                filter: filter.clone(),
                entry,
                send_retained,
            }),
            (Action::Unsubscribe { filter }, Some(session)) => {
                batch.filter(&filter, || Command::Unsubscribe {
                    session,
                    filter: filter.clone(),
                })
            }
            (Action::Redeliver { filter, msg }, Some(exclude)) => {
                let topic = msg.topic.clone();
                batch.for_topic(
                    &topic,
                    Command::Redeliver {
                        filter,
                        msg,
                        exclude,
                    },
                );
            }
            (Action::Away { away }, Some(session)) => batch.all(|| Command::Away { session, away }),
            _ => {}
        }
    }

    /// Whether the I/O layer may read connection `id` now. A client that does not read our
    /// replies stops being read until its output drains ([`Core::flushed`] resumes it), so it
    /// cannot make us buffer without bound; a throttled client waits for its tick. A closing
    /// connection is read (and its input discarded) so the peer's close is seen.
    pub fn may_read(&mut self, id: usize) -> bool {
        let Some(conn) = self.conns.get_mut(id) else {
            return false;
        };
        if let Phase::Closing { .. } = conn.phase {
            return true;
        }
        if conn.out.wire.len() >= OUTPUT_PAUSE {
            conn.read_paused = true;
            return false;
        }
        conn.throttled_until.is_none() && !conn.router_paused
    }

    /// After a flush of connection `id`: input paused for its output resumes once the output is
    /// small again.
    pub fn flushed(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        conn.flush_queued = false;
        if conn.read_paused && conn.out.wire.len() < OUTPUT_RESUME {
            conn.read_paused = false;
            self.out.read_again.push(id);
        }
    }

    /// Marks a connection to be closed once its output is written.
    pub fn close_after_flush(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if let Phase::Attached { slot } = conn.phase {
            self.detach_session(slot, None);
        }
        let now = self.now;
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.out.wire.writable() == 0 {
            // Nothing left to say (e.g. the client sent DISCONNECT): no need to linger.
            return self.close(id, None);
        }
        if !matches!(conn.phase, Phase::Closing { .. }) {
            conn.phase = Phase::Closing {
                since: now,
                fin_sent: false,
            };
        }
        queue_flush(conn, id, &mut self.out.dirty);
        self.arm_conn(id);
    }

    /// Closes a connection now; the session (if any) is detached with `loss`. Its last bytes go
    /// to the outbox with it.
    pub fn close(&mut self, id: usize, loss: Option<LinkLoss>) {
        let Some(conn) = self.conns.get(id) else {
            return;
        };
        if let Phase::Attached { slot } = conn.phase {
            self.detach_session(slot, loss);
        }
        if let Some(conn) = self.conns.remove(id) {
            self.out.closed.push(Closed {
                id,
                wire: conn.out.wire,
                listener: conn.listener,
            });
        }
    }

    /// Detaches the session in `slot` from its connection; ends it if its expiry is 0.
    pub(super) fn detach_session(&mut self, slot: u32, loss: Option<LinkLoss>) {
        let now = self.now;
        let Some(s) = self.sessions.get_mut(slot as usize) else {
            return;
        };
        let Some(cid) = s.conn.take().map(|c| c as usize) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(cid) else {
            return;
        };
        let ends = s.session.detach(loss, now, &mut conn.out);
        conn.phase = Phase::Closing {
            since: now,
            fin_sent: false,
        };
        let who = Some(s.session.session_ref());
        let actions = std::mem::take(&mut conn.out.actions);
        if !conn.out.wire.is_empty() {
            queue_flush(conn, cid, &mut self.out.dirty);
        }
        // The connection is closing whatever the session says: a Close among these is moot.
        self.route_all(who, actions);
        self.arm_conn(cid);
        if ends {
            self.end_session(slot);
        } else {
            self.arm_session(slot);
        }
    }

    /// Ends a session: publishes a will still waiting for its delay, removes its subscriptions
    /// from the router and forgets it.
    pub(super) fn end_session(&mut self, slot: u32) {
        let Some(mut s) = self.sessions.remove(slot as usize) else {
            return;
        };
        let who = s.session.session_ref();
        self.stats.session_ended(&s.session);
        let now = self.now;
        let mut rate = std::mem::take(s.session.publish_rate());
        if !rate.is_rested(now) {
            self.rate_debts.insert(s.session.client_id().clone(), rate);
            self.arm_debts();
        }
        let mut out = Output::default();
        s.session.on_end(now, &mut out);
        self.route_all(Some(who), out.actions);
        for filter in s.session.filters() {
            self.route(
                Some(who),
                Action::Unsubscribe {
                    filter: filter.clone(),
                },
            );
        }
        let cid = s.session.client_id().clone();
        if self.by_client.get(&cid) == Some(&slot) {
            self.by_client.remove(&cid);
        }
    }

    /// Sets the core's clock for work not started by an input (the I/O layer's turn start).
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }
}
