//! Admin input to the core: list the clients of this thread, describe one, disconnect one with a
//! reason. The HTTP API (and tests) reach it through `net::AdminHandle`, which asks every I/O
//! thread (a listing) or the client id's owner thread (one client).
//!
//! Owns: [`AdminRequest`], [`AdminReply`], [`ClientInfo`] and [`Core::admin`]. Must not touch:
//! channels or sockets (the I/O layer carries requests and replies), protocol rules (a disconnect
//! goes through the session, which writes the DISCONNECT its client's version allows).

use std::sync::Arc;

use crate::protocol::{ProtocolVersion, ReasonCode};

use super::conn::Phase;
use super::Core;

/// A question or an order for the cores.
#[derive(Debug, Clone)]
pub enum AdminRequest {
    /// Every session of the thread, connected or not.
    ListClients,
    /// One client's session.
    Client(Arc<str>),
    /// Disconnects a connected client: MQTT 5 clients get DISCONNECT with `reason` (and `why` as
    /// Reason String when they accept one); 3.1.1 clients are closed. The session then lives on
    /// or ends as its expiry says, and a will is published as for any server-side disconnect.
    Disconnect {
        /// The client identifier.
        client_id: Arc<str>,
        /// Reason code of the DISCONNECT, e.g. 0x98 Administrative action.
        reason: ReasonCode,
        /// Human-readable reason, logged and sent as Reason String.
        why: Option<String>,
    },
}

/// A core's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminReply {
    /// The clients asked for (one thread's share of a listing, or zero or one client).
    Clients(Vec<ClientInfo>),
    /// The client was connected and is being disconnected.
    Disconnected,
    /// No session has that client identifier on this thread.
    NotFound,
    /// The session exists but no connection is attached.
    NotConnected,
}

/// What an operator sees of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// Client identifier.
    pub client_id: Arc<str>,
    /// User name of the last CONNECT.
    pub username: Option<String>,
    /// Whether a connection is attached.
    pub connected: bool,
    /// Protocol version of the attached connection.
    pub protocol: Option<ProtocolVersion>,
    /// Listener of the last connection, as configured (`bind`).
    pub listener: std::net::SocketAddr,
    /// Subscriptions held.
    pub subscriptions: usize,
    /// Messages queued for delivery (not yet sent).
    pub queued: usize,
    /// Messages sent and not yet acknowledged.
    pub inflight: usize,
    /// Messages dropped for this session by a limit (queue full, ACL at delivery).
    pub dropped: u64,
    /// Output bytes waiting for the client to read them.
    pub pending_output: usize,
}

impl Core {
    /// Answers an admin request about this thread's sessions.
    pub fn admin(&mut self, req: AdminRequest) -> AdminReply {
        match req {
            AdminRequest::ListClients => {
                let slots: Vec<u32> = self.sessions.iter().map(|(k, _)| k as u32).collect();
                let list = slots
                    .into_iter()
                    .filter_map(|s| self.client_info(s))
                    .collect();
                AdminReply::Clients(list)
            }
            AdminRequest::Client(cid) => match self.by_client.get(&cid) {
                Some(&slot) => AdminReply::Clients(self.client_info(slot).into_iter().collect()),
                None => AdminReply::Clients(Vec::new()),
            },
            AdminRequest::Disconnect {
                client_id,
                reason,
                why,
            } => self.admin_disconnect(&client_id, reason, why.as_deref()),
        }
    }

    fn client_info(&self, slot: u32) -> Option<ClientInfo> {
        let s = self.sessions.get(slot as usize)?;
        let conn = s.conn().and_then(|c| self.conns.get(c));
        let outbound = s.session.outbound();
        Some(ClientInfo {
            client_id: s.session.client_id().clone(),
            username: s.session.username().map(str::to_owned),
            connected: conn.is_some(),
            protocol: conn.and_then(|c| c.version),
            listener: s.listener.settings().cfg.bind,
            subscriptions: s.session.filters().count(),
            queued: outbound.queued(),
            inflight: outbound.inflight(),
            dropped: outbound.dropped,
            pending_output: conn.map_or(0, |c| c.out.wire.len()),
        })
    }

    fn admin_disconnect(&mut self, cid: &str, reason: ReasonCode, why: Option<&str>) -> AdminReply {
        let Some(&slot) = self.by_client.get(cid) else {
            return AdminReply::NotFound;
        };
        let Some(s) = self.sessions.get_mut(slot as usize) else {
            return AdminReply::NotFound;
        };
        let Some(id) = s.conn() else {
            return AdminReply::NotConnected;
        };
        let Some(conn) = self.conns.get_mut(id) else {
            return AdminReply::NotConnected;
        };
        if !matches!(conn.phase, Phase::Attached { .. }) {
            return AdminReply::NotConnected;
        }
        log::info!(
            "client {cid}: disconnected by admin ({}{})",
            reason.name(),
            why.map(|w| format!(": {w}")).unwrap_or_default()
        );
        s.session.server_disconnect(reason, why, &mut conn.out);
        self.run_actions(id);
        AdminReply::Disconnected
    }
}
