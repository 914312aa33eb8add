//! The admin seam of a running broker: list clients, describe one, disconnect one with a reason.
//! The HTTP API will call it; tests do now.
//!
//! Owns: [`AdminHandle`], which carries [`AdminRequest`]s to the I/O threads' cores over their
//! control channels and waits (bounded) for the replies. Must not touch: what the answers mean
//! (`crate::broker::admin`) or any socket.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::bounded;

use super::shared::{Control, IoHandle};
use crate::broker::admin::{AdminReply, AdminRequest, ClientInfo};
use crate::broker::owner_thread;
use crate::protocol::ReasonCode;

/// Longest wait for one I/O thread's reply; a thread that does not answer in time (stuck, or
/// stopping) is left out of the answer rather than blocking the caller.
const REPLY_WAIT: Duration = Duration::from_secs(2);

/// Asks the running broker's cores about their clients. Holds only the I/O threads' inboxes, so
/// it never keeps a stopped broker's router alive.
#[derive(Clone)]
pub struct AdminHandle {
    io: Arc<Vec<IoHandle>>,
}

impl AdminHandle {
    /// A handle over these I/O threads' inboxes.
    pub(super) fn new(io: Vec<IoHandle>) -> AdminHandle {
        AdminHandle { io: Arc::new(io) }
    }

    /// Sends a control message to I/O thread `thread` (ignored past the last one).
    pub(super) fn send_control(&self, thread: usize, msg: Control) {
        if let Some(io) = self.io.get(thread) {
            io.send(msg);
        }
    }

    fn ask(&self, thread: usize, req: AdminRequest) -> Option<AdminReply> {
        let (tx, rx) = bounded(1);
        self.io.get(thread)?.send(Control::Admin(req, tx));
        rx.recv_timeout(REPLY_WAIT).ok()
    }

    /// Every session of the broker, connected or not, in no particular order.
    pub fn list_clients(&self) -> Vec<ClientInfo> {
        let mut all = Vec::new();
        for t in 0..self.io.len() {
            if let Some(AdminReply::Clients(list)) = self.ask(t, AdminRequest::ListClients) {
                all.extend(list);
            }
        }
        all
    }

    /// One client's session, if it exists.
    pub fn client(&self, client_id: &str) -> Option<ClientInfo> {
        let t = owner_thread(client_id, self.io.len());
        match self.ask(t, AdminRequest::Client(client_id.into()))? {
            AdminReply::Clients(mut list) => list.pop(),
            _ => None,
        }
    }

    /// Disconnects a connected client with `reason` (MQTT 5 clients get it in a DISCONNECT).
    /// `None` when the owner thread did not answer.
    pub fn disconnect(
        &self,
        client_id: &str,
        reason: ReasonCode,
        why: Option<String>,
    ) -> Option<AdminReply> {
        let t = owner_thread(client_id, self.io.len());
        let req = AdminRequest::Disconnect {
            client_id: client_id.into(),
            reason,
            why,
        };
        self.ask(t, req)
    }
}
