//! Placing an admitted CONNECT: find where the client's session lives, hand the connection to that
//! thread if it is another one, take over an attached connection, resume or replace the session.
//!
//! Session placement: every client id has one owner thread, `hash(client id) % I/O threads`, and
//! its session lives there for life; a connection whose CONNECT arrived elsewhere is handed to the
//! owner. So everything about one client id (lookup, takeover, resume, end) happens on one thread,
//! in order, with no shared registry and no race between threads. Must not touch: protocol rules
//! (admission is `session::connect`).

use std::sync::Arc;

use crate::auth::AuthMethod;
use crate::message::SessionRef;
use crate::protocol::Connect;
use crate::protocol::Packet;
use crate::session::connect::{admit, write_refusal, write_refusal_to, Admitted};
use crate::session::enhanced_auth::{ConnectAuth, ConnectStep, LinkAuth};
use crate::session::{LinkLoss, Session};

/// The enhanced authentication method that authenticated a CONNECT, if any.
type Method = Option<Arc<dyn AuthMethod>>;

use super::conn::Phase;
use super::{Core, Handover, SessionSlot};
use crate::router::hash::FastHasher;
use std::hash::{Hash, Hasher};

/// The I/O thread that owns the sessions of `client_id`.
pub fn owner_thread(client_id: &str, threads: usize) -> usize {
    let mut h = FastHasher::default();
    client_id.hash(&mut h);
    (h.finish() % threads.max(1) as u64) as usize
}

impl Core {
    /// A CONNECT arrived on connection `id`: admit it, then place it.
    pub(super) fn on_connect(&mut self, id: usize, mut connect: Box<Connect>) {
        let shared = self.shared.clone();
        let cfg = self.cfg.clone();
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let listener = conn.listener.settings();
        let identity_as_username = listener
            .cfg
            .tls
            .as_ref()
            .is_some_and(|t| t.use_identity_as_username);
        // Set by the transport before this input (None if it had no certificate to give).
        let identity = identity_as_username.then(|| conn.peer_identity.take().and_then(|b| *b));
        let admitted = match admit(&connect, &cfg.mqtt, || shared.assign_client_id()) {
            Ok(a) => a,
            Err(refusal) => {
                log::info!(
                    "refused client {:?}: {}",
                    connect.client_id,
                    refusal.reason.name()
                );
                if let Some(conn) = self.conns.get_mut(id) {
                    if refusal.send_connack {
                        let reference = cfg.mqtt.redirect.server_reference.as_deref();
                        let out = &mut conn.out.wire;
                        let max = connect.properties.maximum_packet_size.unwrap_or(u32::MAX);
                        write_refusal_to(connect.protocol, refusal.reason, reference, max, out);
                    }
                }
                return self.close_after_flush(id);
            }
        };
        if let Some(name) = &connect.properties.authentication_method {
            // MQTT 5 enhanced authentication: the listener's method decides instead of the
            // password file. Not on a listener with use_identity_as_username: there the
            // certificate is the credential, and a method could stand in for a missing one or
            // name another user, so every method is refused there (0x8C, as for an unknown one).
            let method = match identity {
                Some(_) => None,
                None => listener.auth.auth_method(name),
            };
            let Some(conn) = self.conns.get_mut(id) else {
                return;
            };
            conn.version = Some(connect.protocol);
            let step = ConnectAuth::begin(connect, admitted, method, &mut conn.out.wire);
            return self.on_connect_step(id, step);
        }
        let verdict = match identity {
            // use_identity_as_username (Mosquitto's meaning): the verified certificate is the
            // credential; its CN is the user name the ACL sees and the password file is not read.
            Some(Some(cn)) => {
                connect.username = Some(cn);
                connect.password = None;
                Ok(())
            }
            Some(None) => Err(crate::protocol::ReasonCode::NOT_AUTHORIZED),
            None => listener
                .auth
                .check_connect(connect.username.as_deref(), connect.password.as_deref()),
        };
        if let Err(reason) = verdict {
            log::info!(
                "refused client {:?} (user {:?}): {}",
                admitted.client_id,
                connect.username,
                reason.name()
            );
            if let Some(conn) = self.conns.get_mut(id) {
                write_refusal(connect.protocol, reason, &mut conn.out.wire);
            }
            return self.close_after_flush(id);
        }
        if let Some(conn) = self.conns.get_mut(id) {
            conn.version = Some(connect.protocol);
        }
        self.place(id, connect, admitted, None);
    }

    /// A packet on a connection whose enhanced authentication is in progress.
    pub(super) fn on_connect_auth(&mut self, id: usize, packet: Packet) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let Some(pending) = conn.pending_auth.take() else {
            return;
        };
        let step = pending.on_packet(packet, &mut conn.out.wire);
        self.on_connect_step(id, step);
    }

    fn on_connect_step(&mut self, id: usize, step: ConnectStep) {
        match step {
            ConnectStep::Pending(auth) => {
                if let Some(conn) = self.conns.get_mut(id) {
                    conn.pending_auth = Some(auth);
                }
            }
            ConnectStep::Accepted(connect, admitted, method) => {
                self.place(id, connect, admitted, Some(method));
            }
            ConnectStep::Refused(_) | ConnectStep::Closed => self.close_after_flush(id),
        }
    }

    /// A connection handed over by another thread's core (`Handover`), known here as `id`.
    pub fn adopt(&mut self, id: usize, a: Handover, now: std::time::Instant) {
        self.now = now;
        let mut conn = super::Conn::new(a.listener, now);
        conn.rbuf = a.rbuf;
        conn.version = Some(a.connect.protocol);
        self.conns.insert(id, conn);
        self.place(id, a.connect, a.admitted, a.auth_method);
        // Readiness may already have fired on the old poll and bytes may sit behind the CONNECT:
        // read and decode on this turn rather than wait for an edge that will not come.
        self.out.read_again.push(id);
    }

    /// `method`: the enhanced authentication method that authenticated the CONNECT, if any.
    fn place(&mut self, id: usize, connect: Box<Connect>, admitted: Admitted, method: Method) {
        let owner = owner_thread(&admitted.client_id, self.shared.threads);
        if owner != usize::from(self.index) {
            return self.hand_over(id, connect, admitted, method, owner);
        }
        let cid: Arc<str> = admitted.client_id.as_str().into();
        match self.by_client.get(&cid) {
            Some(&slot) => self.attach_existing(id, slot, &connect, &admitted, method),
            None => self.attach_new(id, cid, &connect, &admitted, false, method),
        }
    }

    fn next_session_ref(&self) -> SessionRef {
        let slot = self.sessions.vacant_key();
        SessionRef {
            thread: self.index,
            slot: slot as u32,
            generation: self.sessions.generation(slot),
        }
    }

    fn hand_over(
        &mut self,
        id: usize,
        connect: Box<Connect>,
        admitted: Admitted,
        auth_method: Method,
        to: usize,
    ) {
        let Some(conn) = self.conns.remove(id) else {
            return;
        };
        self.out.handovers.push(Handover {
            id,
            to,
            listener: conn.listener,
            rbuf: conn.rbuf,
            connect,
            admitted,
            auth_method,
        });
    }

    /// Creates a session in a new slot and attaches connection `id`.
    fn attach_new(
        &mut self,
        id: usize,
        cid: Arc<str>,
        connect: &Connect,
        admitted: &Admitted,
        present: bool,
        method: Method,
    ) {
        let me = self.next_session_ref();
        let Some(listener) = self.conns.get(id).map(|c| c.listener.clone()) else {
            return;
        };
        let session = Session::new(cid.clone(), me);
        let slot = self.sessions.insert(SessionSlot {
            session,
            conn: None,
            listener,
            timer: 0,
        }) as u32;
        debug_assert_eq!(slot, me.slot);
        self.by_client.insert(cid, slot);
        self.attach(id, slot, connect, admitted, present, method);
    }

    fn attach_existing(
        &mut self,
        id: usize,
        slot: u32,
        connect: &Connect,
        admitted: &Admitted,
        method: Method,
    ) {
        let old_conn = self.sessions.get(slot as usize).and_then(|s| s.conn);
        if let Some(old) = old_conn {
            log::info!("client {}: session taken over", admitted.client_id);
            self.detach_session(slot, Some(LinkLoss::TakenOver));
            self.close_after_flush(old);
        }
        // detach_session may have ended the session (expiry 0).
        let alive = self.sessions.get(slot as usize).is_some();
        if connect.clean_start || !alive {
            if alive {
                self.end_session(slot);
            }
            let cid: Arc<str> = admitted.client_id.as_str().into();
            return self.attach_new(id, cid, connect, admitted, false, method);
        }
        self.attach(id, slot, connect, admitted, true, method);
    }

    fn attach(
        &mut self,
        id: usize,
        slot: u32,
        connect: &Connect,
        admitted: &Admitted,
        present: bool,
        method: Method,
    ) {
        let now = self.now;
        let cfg = self.cfg.clone();
        let (Some(s), Some(conn)) = (self.sessions.get_mut(slot as usize), self.conns.get_mut(id))
        else {
            return;
        };
        s.conn = Some(id);
        s.listener = conn.listener.clone();
        conn.phase = Phase::Attached { slot };
        let auth = conn.listener.auth();
        let acl = auth.client_acl(&admitted.client_id, connect.username.as_deref());
        if acl.patterns_refused() {
            log::warn!(
                "client {}: id or user name contains + or #: ACL patterns do not apply",
                admitted.client_id
            );
        }
        s.session.attach(
            connect,
            admitted.assigned,
            present,
            acl,
            &cfg.mqtt,
            now,
            &mut conn.out,
        );
        // The very method that authenticated the CONNECT (not one looked up again by name), so
        // CONNECT and re-authentication cannot use different authenticators.
        if let Some(method) = method {
            s.session
                .enable_reauth(LinkAuth::new(method, connect.username.clone()));
        }
        log::debug!(
            "client {} connected ({:?}, session present: {present})",
            admitted.client_id,
            connect.protocol
        );
        self.run_actions(id);
        // Keep-alive from now on.
        self.arm_conn(id);
    }
}
