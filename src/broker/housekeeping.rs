//! Housekeeping of a core: the deadlines kept in its timer table (`timers.rs`) — connect and
//! packet timeouts, lingering closes, keep-alive, throttled input coming back, offline sessions
//! (delayed wills, expiry), `$SYS` refreshes, rested publish-rate debts — plus ACL views after a
//! reload, a configuration reload, and the shutdown that disconnects everyone and publishes
//! pending wills.
//!
//! Owns: what each timer does when it fires and when its owner is due next ("arming"). Must not
//! touch: socket reads and writes (`net`), protocol rules (in `session`) or routing.

use std::time::{Duration, Instant};

use crate::protocol::ReasonCode;
use crate::session::{Action, LinkLoss, Output, Session};

use super::conn::{Conn, Phase};
use super::timers::TimerKey;
use super::Core;

/// How long a closing connection may wait for its peer to close after our last bytes.
pub const LINGER: Duration = Duration::from_secs(2);
/// How often rested publish-rate debts are forgotten while there are any.
const DEBT_SWEEP: Duration = Duration::from_secs(1);
/// How often, at most, a busy thread looks for reloaded password/ACL files.
const ACL_CHECK: Duration = Duration::from_millis(250);

impl Core {
    /// Runs every timer due at `now`. The I/O layer calls it when [`Core::next_timeout`] has
    /// come; calling it at other times is harmless (nothing is due, nothing happens).
    pub fn tick(&mut self, now: Instant) {
        self.now = now;
        self.refresh_acls(now);
        while let Some((slot, key)) = self.timers.pop_due(now) {
            match key {
                TimerKey::Conn(id) => {
                    let Some(conn) = self.conns.get_mut(id).filter(|c| c.timer == slot) else {
                        continue; // stale: the connection was re-armed sooner, or is gone
                    };
                    conn.timer = 0;
                    self.conn_timer(id, now);
                }
                TimerKey::Session(slot_id) => {
                    let Some(s) = self.sessions.get_mut(slot_id as usize) else {
                        continue;
                    };
                    if s.timer != slot {
                        continue;
                    }
                    s.timer = 0;
                    self.session_timer(slot_id, now);
                }
                TimerKey::Sys => {
                    if self.sys_timer != slot {
                        continue;
                    }
                    self.sys_timer = 0;
                    if let Some(next) = self.sys_tick(now) {
                        self.sys_timer = self.timers.schedule(TimerKey::Sys, next, 0);
                    }
                }
                TimerKey::Dial(link) => self.dial_timer(link as usize, slot, now),
                TimerKey::RateDebts => {
                    self.debt_timer = 0;
                    self.rate_debts.retain(|_, rate| !rate.is_rested(now));
                    self.arm_debts();
                }
            }
        }
    }

    /// When the next timer is due (`None`: nothing is; the thread may sleep until input).
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// A connection's deadlines at `now`: closes what timed out, resumes throttled input, checks
    /// the packet timeout and the session's keep-alive, then arms the next one.
    fn conn_timer(&mut self, id: usize, now: Instant) {
        let cfg = self.cfg.clone();
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        match conn.phase {
            Phase::AwaitingConnect { since }
                if now.saturating_duration_since(since) >= cfg.mqtt.connect_timeout =>
            {
                return self.close(id, None);
            }
            Phase::Closing { since, .. } if now.saturating_duration_since(since) >= LINGER => {
                return self.close(id, None);
            }
            Phase::Attached { slot } => {
                if let Some(s) = self.sessions.get_mut(slot as usize) {
                    let limits = &cfg.mqtt.limits;
                    let mut resume = Vec::new();
                    check_input_deadlines(conn, id, &mut s.session, limits, now, &mut resume);
                    s.session.on_tick(now, &mut conn.out);
                    self.out.read_again.extend(resume);
                    self.run_actions(id);
                }
            }
            _ => {}
        }
        self.arm_conn(id);
    }

    /// An offline session's deadlines at `now`: expiry, a delayed will.
    fn session_timer(&mut self, slot: u32, now: Instant) {
        let Some(s) = self.sessions.get_mut(slot as usize) else {
            return;
        };
        if s.conn.is_some() {
            return; // attached again: its connection's timer covers it
        }
        if s.session.is_expired(now) {
            return self.end_session(slot);
        }
        s.session.on_tick(now, &mut self.offline_out);
        let who = s.session.session_ref();
        let actions: Vec<Action> = self.offline_out.actions.drain(..).collect();
        for a in actions {
            self.route(Some(who), a);
        }
        self.arm_session(slot);
    }

    /// Schedules connection `id`'s earliest deadline, if it has one.
    pub(super) fn arm_conn(&mut self, id: usize) {
        let Some(at) = self.conn_deadline(id) else {
            return;
        };
        if let Some(conn) = self.conns.get_mut(id) {
            conn.timer = self.timers.schedule(TimerKey::Conn(id), at, conn.timer);
        }
    }

    fn conn_deadline(&self, id: usize) -> Option<Instant> {
        let conn = self.conns.get(id)?;
        match conn.phase {
            Phase::AwaitingConnect { since } => since.checked_add(self.cfg.mqtt.connect_timeout),
            Phase::Closing { since, .. } => since.checked_add(LINGER),
            Phase::Attached { slot } => {
                let packet_timeout = self.cfg.mqtt.limits.packet_timeout;
                let partial = conn
                    .partial_since
                    .and_then(|t| t.checked_add(packet_timeout));
                let session = self.sessions.get(slot as usize)?.session.next_timeout();
                [conn.throttled_until, partial, session]
                    .into_iter()
                    .flatten()
                    .min()
            }
        }
    }

    /// Schedules an offline session's earliest deadline (expiry, delayed will), if any.
    pub(super) fn arm_session(&mut self, slot: u32) {
        let Some(s) = self.sessions.get_mut(slot as usize) else {
            return;
        };
        if s.conn.is_some() {
            return;
        }
        if let Some(at) = s.session.next_timeout() {
            s.timer = self.timers.schedule(TimerKey::Session(slot), at, s.timer);
        }
    }

    /// Schedules `$SYS` work now (it says when it is next due); off when `[sys] interval` is 0.
    pub(super) fn arm_sys(&mut self) {
        if self.cfg.sys.interval.is_some() {
            self.sys_timer = self
                .timers
                .schedule(TimerKey::Sys, self.now, self.sys_timer);
        }
    }

    /// Schedules a sweep of rested publish-rate debts while there are any.
    pub(super) fn arm_debts(&mut self) {
        if !self.rate_debts.is_empty() {
            let at = self.now + DEBT_SWEEP;
            self.debt_timer = self
                .timers
                .schedule(TimerKey::RateDebts, at, self.debt_timer);
        }
    }

    /// Takes up the configuration now in force (a reload): limits and timeouts apply from the next
    /// packet on; connections of a listener the reload removed are disconnected (MQTT 5:
    /// DISCONNECT 0x8B Server shutting down; before or without a session: closed); ACL views are
    /// rebuilt on the next tick.
    pub fn reconfigure(&mut self) {
        self.cfg = self.shared.config();
        for id in self.conns.ids() {
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            if !conn.listener.is_removed() {
                continue;
            }
            match conn.phase {
                Phase::Attached { slot } => {
                    if let Some(s) = self.sessions.get_mut(slot as usize) {
                        let why = Some("listener removed by a configuration reload");
                        s.session.server_disconnect(
                            ReasonCode::SERVER_SHUTTING_DOWN,
                            why,
                            &mut conn.out,
                        );
                    }
                    self.run_actions(id);
                }
                Phase::AwaitingConnect { .. } => self.close(id, None),
                Phase::Closing { .. } => {}
            }
        }
        // The `[sys] interval` may have changed.
        self.arm_sys();
    }

    /// After an ACL reload, rebuilds every session's view of it; connections stay up. Looked at
    /// when the thread is woken anyway (at most every [`ACL_CHECK`]): an idle thread does not
    /// wake for it, and a session's next packet or delivery wakes the thread first.
    pub(super) fn refresh_acls(&mut self, now: Instant) {
        if now < self.next_acl_check {
            return;
        }
        self.next_acl_check = now + ACL_CHECK;
        let generation = self.shared.auth_generation();
        if generation == self.auth_generation {
            return;
        }
        self.auth_generation = generation;
        for (_, s) in self.sessions.iter_mut() {
            let auth = s.listener.auth();
            let acl = auth.client_acl(s.session.client_id(), s.session.username());
            s.session.set_acl(acl);
        }
    }

    /// Disconnects every client (v5: DISCONNECT 0x8B, or the configured redirect) and ends
    /// every session; their wills go to the router.
    pub fn shutdown(&mut self) {
        let ids = self.conns.ids();
        let cfg = self.cfg.clone();
        if let Some((reason, reference)) = cfg.mqtt.redirect.at_shutdown() {
            for &id in &ids {
                let Some(conn) = self.conns.get_mut(id) else {
                    continue;
                };
                let Phase::Attached { slot } = conn.phase else {
                    continue;
                };
                if let Some(s) = self.sessions.get_mut(slot as usize) {
                    let why = Some("server shutting down, use the referenced server");
                    s.session
                        .server_disconnect_to(reason, why, Some(reference), &mut conn.out);
                }
            }
        }
        for id in ids {
            self.close(id, Some(LinkLoss::Shutdown));
        }
        // Sessions live in memory, so they all end now: wills still waiting out their delay are
        // published with those of the clients just disconnected.
        let mut out = Output::default();
        let mut wills = Vec::new();
        for (_, s) in self.sessions.iter_mut() {
            s.session.on_end(self.now, &mut out);
            for a in out.actions.drain(..) {
                if let Action::Publish(msg) = a {
                    wills.push(msg);
                }
            }
        }
        for msg in wills {
            self.route(None, Action::Publish(msg));
        }
    }
}

/// Input-side deadlines of an attached connection, checked every tick: a throttled connection
/// whose time is up is put on `resume` (its session counts it as active, since it was held back
/// by us), and one that has held an incomplete packet for `packet_timeout` while we were reading
/// is disconnected (MQTT 5: 0x8D; no complete packet arrived in time, the same judgement as
/// keep-alive, which a client with keep-alive 0 or a slow dribble would otherwise escape).
fn check_input_deadlines(
    conn: &mut Conn,
    id: usize,
    session: &mut Session,
    limits: &crate::config::LimitsConfig,
    now: Instant,
    resume: &mut Vec<usize>,
) {
    if let Some(until) = conn.throttled_until {
        session.note_activity(now);
        if now >= until {
            conn.throttled_until = None;
            conn.partial_since = None;
            resume.push(id);
        }
        return;
    }
    if conn.read_paused {
        conn.partial_since = None;
        return;
    }
    if let Some(since) = conn.partial_since {
        if now.saturating_duration_since(since) >= limits.packet_timeout {
            let why = "packet not completed within limits.packet_timeout";
            session.server_disconnect(ReasonCode::KEEP_ALIVE_TIMEOUT, Some(why), &mut conn.out);
        }
    }
}
