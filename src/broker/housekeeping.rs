//! Housekeeping of a core, run on its 250 ms tick and at shutdown: connect and packet
//! timeouts, lingering closes, keep-alive and other session timers, throttled input coming back,
//! offline sessions (delayed wills, expiry), ACL views after a reload, `$SYS` refreshes, and the
//! shutdown that disconnects everyone and publishes pending wills.
//!
//! Owns: those periodic passes over the thread's connections and sessions. Must not touch: socket
//! reads and writes (`io_thread.rs`, `conn.rs`), protocol rules (in `session`) or routing.

use std::time::Instant;

use crate::protocol::ReasonCode;
use crate::session::{Action, LinkLoss, Output, Session};

use super::conn::{Conn, Phase};
use super::Core;

/// How long a closing connection may wait for its peer to close after our last bytes.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

impl Core {
    /// The periodic pass (every 250 ms and whenever the loop wakes past it): deadlines, timers,
    /// offline sessions, ACL refresh and `$SYS`.
    pub fn tick(&mut self, now: Instant) {
        self.now = now;
        let cfg = self.cfg.clone();
        let (timeout, limits) = (cfg.mqtt.connect_timeout, &cfg.mqtt.limits);
        let mut resume = Vec::new();
        let mut to_close = Vec::new();
        let mut touched = Vec::new();
        for (id, conn) in self.conns.iter_mut() {
            match conn.phase {
                Phase::AwaitingConnect { since }
                    if now.saturating_duration_since(since) >= timeout =>
                {
                    to_close.push(id)
                }
                Phase::Closing { since, .. } if now.saturating_duration_since(since) >= LINGER => {
                    to_close.push(id)
                }
                Phase::Attached { slot } => {
                    if let Some(s) = self.sessions.get_mut(slot as usize) {
                        check_input_deadlines(conn, id, &mut s.session, limits, now, &mut resume);
                        s.session.on_tick(now, &mut conn.out);
                        if !conn.out.actions.is_empty() || !conn.out.wire.is_empty() {
                            touched.push(id);
                        }
                    }
                }
                _ => {}
            }
        }
        for id in to_close {
            self.close(id, None);
        }
        for id in touched {
            self.run_actions(id);
        }
        self.out.read_again.extend(resume);
        self.rate_debts.retain(|_, rate| !rate.is_rested(now));
        self.tick_offline_sessions(now);
        self.refresh_acls();
        self.sys_tick(now);
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
    }

    /// After an ACL reload, rebuilds every session's view of it; connections stay up.
    fn refresh_acls(&mut self) {
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

    /// Offline sessions: delayed wills whose time has come, and expiry.
    fn tick_offline_sessions(&mut self, now: Instant) {
        let mut expired = Vec::new();
        let mut actions = Vec::new();
        for (slot, s) in self.sessions.iter_mut() {
            if s.conn.is_some() {
                continue;
            }
            if s.session.is_expired(now) {
                expired.push(slot as u32);
                continue;
            }
            s.session.on_tick(now, &mut self.offline_out);
            for a in self.offline_out.actions.drain(..) {
                actions.push((s.session.session_ref(), a));
            }
        }
        for (who, a) in actions {
            self.route(Some(who), a);
        }
        for slot in expired {
            self.end_session(slot);
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
