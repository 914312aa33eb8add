//! Placing an admitted CONNECT: find where the client's session lives, hand the connection to that
//! thread if it is another one, take over an attached connection, resume or replace the session.
//!
//! Password checks: a CONNECT whose password must be hashed (a user name on a listener with a
//! password file) waits for the password worker's verdict (an [`AuthJob`] in the outbox,
//! [`Core::auth_done`]); every other decision (anonymous, certificate identity, no password file)
//! is cheap and taken inline.
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
use super::{AuthJob, Core, Handover, SessionSlot};
use crate::auth::Authenticator;
use crate::protocol::ReasonCode;
use crate::router::hash::FastHasher;
use std::hash::{Hash, Hasher};

/// Whether deciding `connect` on a listener checked by `auth` means hashing a password: it names a
/// user and there is a password file (whose entry, or a decoy for an unknown user, is hashed).
fn needs_hashing(auth: &Authenticator, connect: &Connect) -> bool {
    connect.username.is_some() && auth.password_source().current().is_some()
}

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
            Some(None) => Err(ReasonCode::NOT_AUTHORIZED),
            None if needs_hashing(&listener.auth, &connect) => {
                let auth = listener.auth.clone();
                return self.defer_password_check(id, auth, connect, admitted);
            }
            None => listener
                .auth
                .check_connect(connect.username.as_deref(), connect.password.as_deref()),
        };
        self.decided(id, connect, admitted, verdict);
    }

    /// Hands the password check of connection `id`'s CONNECT to the password worker (through
    /// the outbox). Until the verdict the connection stays in `AwaitingConnect`, so the connect
    /// timeout still closes it, and nothing after its CONNECT is read or decoded: it is marked
    /// throttled until its connect deadline, which stops both the input path and the I/O
    /// layer's reads (the verdict lifts it, or the tick closes the connection first).
    fn defer_password_check(
        &mut self,
        id: usize,
        auth: Arc<Authenticator>,
        connect: Box<Connect>,
        admitted: Admitted,
    ) {
        let timeout = self.cfg.mqtt.connect_timeout;
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let Phase::AwaitingConnect { since } = conn.phase else {
            return;
        };
        conn.throttled_until = Some(since.checked_add(timeout).unwrap_or(since));
        self.out.auth_jobs.push(AuthJob {
            id,
            serial: conn.serial,
            thread: self.index,
            auth,
            connect,
            admitted,
        });
    }

    /// The password worker's verdict on a CONNECT ([`AuthJob`]): carries on where `on_connect`
    /// left off, with a refusal CONNACK or placement, and lets the input that waited behind the
    /// CONNECT be read and decoded. Dropped if the connection is gone meanwhile (connect
    /// timeout, shutdown, removed listener), even when its id now names a newer connection.
    pub fn auth_done(&mut self, job: AuthJob, verdict: Result<(), ReasonCode>) {
        let AuthJob {
            id,
            serial,
            connect,
            admitted,
            ..
        } = job;
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let waiting = matches!(conn.phase, Phase::AwaitingConnect { .. });
        if conn.serial != serial || !waiting {
            log::debug!("connection {id}: password verdict for a connection that is gone");
            return;
        }
        conn.throttled_until = None;
        self.out.read_again.push(id);
        self.decided(id, connect, admitted, verdict);
    }

    /// A password check the worker's queue had no room for: the CONNECT is refused with 0x89
    /// Server busy (3.1.1 and 3.1: return code 3, server unavailable), which tells a client to
    /// retry later, and counted (`$SYS/broker/clients/refused/busy`).
    pub fn auth_refused_busy(&mut self, job: AuthJob) {
        self.stats.counters.refused_busy += 1;
        self.auth_done(job, Err(ReasonCode::SERVER_BUSY));
    }

    /// Carries out the decision on a CONNECT's credentials: a refusal CONNACK and close, or
    /// placement.
    fn decided(
        &mut self,
        id: usize,
        connect: Box<Connect>,
        admitted: Admitted,
        verdict: Result<(), ReasonCode>,
    ) {
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
        let serial = self.take_serial();
        let mut conn = super::Conn::new(a.listener, now, serial);
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
        let old_conn = self.sessions.get(slot as usize).and_then(SessionSlot::conn);
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
        s.conn = Some(u32::try_from(id).expect("connection ids stay below the open-file limit"));
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use bytes::{Bytes, BytesMut};

    use crate::auth::{Authenticator, PasswordFile, PasswordHash};
    use crate::broker::sys_stats::SysShared;
    use crate::broker::{Core, Listener, Phase, Shared};
    use crate::config::Config;
    use crate::protocol::encode::encode_packet;
    use crate::protocol::{Connect, Packet, Properties, ProtocolVersion, ReasonCode};
    use crate::router::retained_limit::RetainedBudget;
    use crate::router::shard::Shard;

    /// A one-thread core whose listener checks alice/secret (one PBKDF2 round: speed, not
    /// strength, matters here), and that listener.
    fn core() -> (Core, Arc<Listener>) {
        let cfg = Arc::new(Config::default());
        let mut file = PasswordFile::new();
        let hash = PasswordHash::pbkdf2(b"secret", [1; 12], 1);
        file.set("alice", hash).expect("valid user name");
        let auth = Arc::new(Authenticator::from_parts(true, Some(file), None));
        let listener = Arc::new(Listener::new(0, cfg.listeners[0].clone(), auth.clone()));
        let shared = Arc::new(Shared::new(cfg.clone(), auth, vec![listener.clone()], 1));
        let budget = Arc::new(RetainedBudget::unlimited());
        let sys = Arc::new(SysShared::new(1, budget.clone()));
        let shard = Shard::with_budget(cfg.mqtt.shared_strategy, budget);
        let core = Core::new(0, shared, sys, 1, vec![(0, shard)], Instant::now());
        (core, listener)
    }

    /// The bytes of a CONNECT with `login` (user name and password, if any), followed by those
    /// of `then`.
    fn connect_then(v: ProtocolVersion, login: Option<(&str, &[u8])>, then: &[Packet]) -> BytesMut {
        let connect = Connect {
            protocol: v,
            clean_start: true,
            keep_alive: 60,
            client_id: "c1".into(),
            will: None,
            username: login.map(|(user, _)| user.into()),
            password: login.map(|(_, password)| Bytes::copy_from_slice(password)),
            properties: Properties::default(),
        };
        let mut out = BytesMut::new();
        encode_packet(&Packet::Connect(Box::new(connect)), v, &mut out);
        for p in then {
            encode_packet(p, v, &mut out);
        }
        out
    }

    /// Opens connection `id` and feeds it `bytes`.
    fn receive(core: &mut Core, listener: &Arc<Listener>, id: usize, bytes: BytesMut) {
        let now = Instant::now();
        core.open(id, listener.clone(), now);
        core.conns.get_mut(id).expect("open").rbuf = bytes;
        core.input(id, now);
    }

    #[test]
    fn a_password_check_leaves_the_core_and_holds_later_input_until_its_verdict() {
        let (mut core, listener) = core();
        let bytes = connect_then(
            ProtocolVersion::V5,
            Some(("alice", b"secret")),
            &[Packet::PingReq],
        );
        receive(&mut core, &listener, 0, bytes);
        let job = core
            .out
            .auth_jobs
            .pop()
            .expect("a password check for the worker");
        let conn = core.conns.get_mut(0).expect("still open");
        assert!(matches!(conn.phase, Phase::AwaitingConnect { .. }));
        assert_eq!(conn.rbuf.len(), 2, "the PINGREQ waits, not decoded");
        assert!(conn.out.wire.is_empty(), "no CONNACK before the verdict");
        assert!(!core.may_read(0), "the socket is not read meanwhile");
        let verdict = job.check();
        assert_eq!(verdict, Ok(()));
        core.auth_done(job, verdict);
        assert!(matches!(
            core.conns.get(0).unwrap().phase,
            Phase::Attached { .. }
        ));
        assert!(
            core.out.read_again.contains(&0),
            "waiting input is read again"
        );
        assert!(core.may_read(0));
        core.input(0, Instant::now());
        let conn = core.conns.get_mut(0).unwrap();
        assert!(conn.rbuf.is_empty());
        let wire = conn.out.wire.take_all();
        // CONNACK (v5, success) and then PINGRESP.
        assert_eq!(wire[0], 0x20);
        assert_eq!(&wire[wire.len() - 2..], [0xD0, 0]);
    }

    #[test]
    fn a_verdict_for_a_connection_that_is_gone_is_dropped_even_when_its_id_is_reused() {
        let (mut core, listener) = core();
        let bytes = connect_then(ProtocolVersion::V5, Some(("alice", b"secret")), &[]);
        receive(&mut core, &listener, 0, bytes);
        let job = core.out.auth_jobs.pop().expect("a password check");
        // The connect timeout closes it; the I/O layer reuses the id for the next socket.
        core.close(0, None);
        core.out.closed.clear();
        core.open(0, listener.clone(), Instant::now());
        core.auth_done(job, Ok(()));
        let conn = core.conns.get(0).expect("the new connection stays");
        assert!(matches!(conn.phase, Phase::AwaitingConnect { .. }));
        assert!(conn.out.wire.is_empty() && core.out.closed.is_empty());
        assert!(core.sessions.is_empty(), "nothing was placed");
    }

    #[test]
    fn a_check_the_worker_has_no_room_for_is_refused_as_server_busy_and_counted() {
        for (v, connack) in [
            (ProtocolVersion::V5, &[0x20, 3, 0, 0x89, 0][..]),
            (ProtocolVersion::V311, &[0x20, 2, 0, 3][..]),
        ] {
            let (mut core, listener) = core();
            receive(
                &mut core,
                &listener,
                0,
                connect_then(v, Some(("mallory", b"x")), &[]),
            );
            let job = core.out.auth_jobs.pop().expect("a password check");
            core.auth_refused_busy(job);
            assert_eq!(core.stats.counters.refused_busy, 1);
            let conn = core.conns.get_mut(0).expect("closing after its CONNACK");
            assert!(matches!(conn.phase, Phase::Closing { .. }));
            assert_eq!(&conn.out.wire.take_all()[..], connack, "{v:?}");
            assert_eq!(ReasonCode::SERVER_BUSY.to_v3_connack(), 3);
        }
    }

    #[test]
    fn decisions_without_hashing_stay_inline() {
        let (mut core, listener) = core();
        let anonymous = connect_then(ProtocolVersion::V311, None, &[]);
        receive(&mut core, &listener, 0, anonymous);
        assert!(core.out.auth_jobs.is_empty());
        assert!(matches!(
            core.conns.get(0).unwrap().phase,
            Phase::Attached { .. }
        ));
    }
}
