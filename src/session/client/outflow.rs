//! Our messages going upstream: the QoS 1/2 inflight window, the bounded queue behind it, and
//! packet identifier allocation for the whole client session.
//!
//! Owns: [`Outflow`]. A message enters with `offer`, leaves the queue when the window, the output
//! buffer and a link allow, and leaves the inflight table when the server acknowledges it — each
//! exit produces exactly one settling event (`Delivered`, `Sent`, `Rejected` or `Dropped`), so the
//! bridge can release its disk queue on facts, never on hopes. Must not touch: the inbound
//! direction, link state (keep-alive, CONNACK) or anything about sockets and clocks.

use std::collections::VecDeque;

use crate::protocol::publish_header::{PublishExtras, PublishHeader};
use crate::protocol::{Packet, ProtocolVersion, PubResponse, QoS, ReasonCode};
use crate::session::outbound::WIRE_HIGH_WATER;
use crate::session::outbuf::OutBuf;

use super::events::{ClientEvent, OutMessage, ServerLimits, Submitted};

/// Where one of our QoS 1/2 messages stands: the acknowledgement it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    /// QoS 1 PUBLISH written, PUBACK awaited.
    Ack,
    /// QoS 2 PUBLISH written, PUBREC awaited.
    Rec,
    /// PUBREL written, PUBCOMP awaited: the server owns the message now.
    Comp,
}

#[derive(Debug)]
struct Inflight {
    id: u16,
    stage: Awaiting,
    /// QoS on the wire, which the server's Maximum QoS may have lowered from `msg.qos`; a
    /// retransmission must repeat it.
    qos: QoS,
    msg: OutMessage,
}

/// What the current link accepts, computed from our config and the server's CONNACK.
#[derive(Debug, Clone, Copy)]
pub(super) struct LinkView {
    /// Protocol of the session (fixed by config, the same on every link).
    pub version: ProtocolVersion,
    /// Our `max_inflight` lowered to the server's Receive Maximum.
    pub window: u16,
    /// What the server announced in CONNACK.
    pub limits: ServerLimits,
}

/// Why an acknowledgement could not be matched: the server acknowledged something we did not
/// send, or not at this stage. Always a protocol violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UnknownId;

/// The upstream flow of one client session. Survives link losses: that is what makes resumption
/// and "resend as new" possible.
#[derive(Debug, Default)]
pub(super) struct Outflow {
    /// In send order, which is also retransmission order [MQTT-4.4.0-1].
    inflight: VecDeque<Inflight>,
    queue: VecDeque<OutMessage>,
    last_id: u16,
}

impl Outflow {
    /// Messages waiting behind the window.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Messages written and not yet settled by the server.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Sends `msg` now if nothing waits before it and the link allows, else queues it (the
    /// caller has checked the queue limit). Order is kept: behind a non-empty queue a message
    /// always queues, even QoS 0.
    pub fn offer(
        &mut self,
        msg: OutMessage,
        link: Option<&LinkView>,
        reserved: &[u16],
        out: &mut OutBuf,
        events: &mut VecDeque<ClientEvent>,
    ) -> Submitted {
        match link {
            Some(link) if self.queue.is_empty() && self.can_send(&msg, link, out) => {
                match self.try_send(msg, link, reserved, out, events) {
                    SendOutcome::InFlight(id) => Submitted::InFlight(id),
                    SendOutcome::Settled => Submitted::Settled,
                    SendOutcome::NoId(msg) => {
                        self.queue.push_back(*msg);
                        Submitted::Queued
                    }
                }
            }
            _ => {
                self.queue.push_back(msg);
                Submitted::Queued
            }
        }
    }

    fn can_send(&self, msg: &OutMessage, link: &LinkView, out: &OutBuf) -> bool {
        let qos = msg.qos.min(link.limits.maximum_qos);
        out.len() < WIRE_HIGH_WATER
            && (qos == QoS::AtMostOnce || self.inflight.len() < usize::from(link.window))
    }

    /// Sends queued messages while the window and the output buffer allow. Call after every
    /// acknowledgement, after CONNACK and after the output buffer drained.
    pub fn pump(
        &mut self,
        link: &LinkView,
        reserved: &[u16],
        out: &mut OutBuf,
        events: &mut VecDeque<ClientEvent>,
    ) {
        while let Some(front) = self.queue.front() {
            if !self.can_send(front, link, out) {
                break;
            }
            let Some(msg) = self.queue.pop_front() else {
                break;
            };
            if let SendOutcome::NoId(msg) = self.try_send(msg, link, reserved, out, events) {
                // Every identifier is taken (only possible with a window near 65,535 plus
                // pending SUBSCRIBEs): wait for an acknowledgement to free one.
                self.queue.push_front(*msg);
                break;
            }
        }
    }

    fn try_send(
        &mut self,
        msg: OutMessage,
        link: &LinkView,
        reserved: &[u16],
        out: &mut OutBuf,
        events: &mut VecDeque<ClientEvent>,
    ) -> SendOutcome {
        let qos = msg.qos.min(link.limits.maximum_qos);
        let id = match qos {
            QoS::AtMostOnce => None,
            _ => match self.alloc_id(reserved) {
                Some(id) => Some(id),
                None => return SendOutcome::NoId(Box::new(msg)),
            },
        };
        if !write_publish(&msg, qos, id, false, link, out) {
            events.push_back(ClientEvent::Dropped {
                token: msg.token,
                reason: ReasonCode::PACKET_TOO_LARGE,
            });
            return SendOutcome::Settled;
        }
        let Some(id) = id else {
            events.push_back(ClientEvent::Sent(msg.token));
            return SendOutcome::Settled;
        };
        let stage = match qos {
            QoS::AtLeastOnce => Awaiting::Ack,
            _ => Awaiting::Rec,
        };
        self.inflight.push_back(Inflight {
            id,
            stage,
            qos,
            msg,
        });
        SendOutcome::InFlight(id)
    }

    /// A packet identifier used by no message in flight and not in `reserved` (the pending
    /// SUBSCRIBEs), or `None` when all 65,535 are taken.
    pub fn alloc_id(&mut self, reserved: &[u16]) -> Option<u16> {
        for _ in 0..u16::MAX {
            self.last_id = self.last_id.checked_add(1).unwrap_or(1);
            let id = self.last_id;
            if !reserved.contains(&id) && !self.inflight.iter().any(|f| f.id == id) {
                return Some(id);
            }
        }
        None
    }

    fn take(&mut self, id: u16, stage: Awaiting) -> Result<Inflight, UnknownId> {
        let pos = self
            .inflight
            .iter()
            .position(|f| f.id == id && f.stage == stage)
            .ok_or(UnknownId)?;
        self.inflight.remove(pos).ok_or(UnknownId)
    }

    /// PUBACK: settles a QoS 1 message, delivered or (5.0, code >= 0x80) rejected.
    pub fn on_puback(&mut self, ack: &PubResponse) -> Result<ClientEvent, UnknownId> {
        let done = self.take(ack.packet_id, Awaiting::Ack)?;
        Ok(settled(done.msg.token, ack.reason))
    }

    /// PUBREC: a success moves the message to the PUBREL stage and writes PUBREL; a failure code
    /// (5.0) settles it as rejected and ends the exchange: no PUBREL follows (MQTT 5.0 section 4.3.3).
    pub fn on_pubrec(
        &mut self,
        ack: &PubResponse,
        version: ProtocolVersion,
        out: &mut OutBuf,
    ) -> Result<Option<ClientEvent>, UnknownId> {
        if ack.reason.is_error() {
            let done = self.take(ack.packet_id, Awaiting::Rec)?;
            return Ok(Some(settled(done.msg.token, ack.reason)));
        }
        let f = self
            .inflight
            .iter_mut()
            .find(|f| f.id == ack.packet_id && f.stage == Awaiting::Rec)
            .ok_or(UnknownId)?;
        f.stage = Awaiting::Comp;
        out.packet(&Packet::PubRel(PubResponse::ok(f.id)), version);
        Ok(None)
    }

    /// PUBCOMP: settles a QoS 2 message. A failure code here can only be Packet Identifier not
    /// found, meaning the server lost its record after taking ownership at PUBREC; the message
    /// was received, so it still counts as delivered.
    pub fn on_pubcomp(&mut self, ack: &PubResponse) -> Result<ClientEvent, UnknownId> {
        let done = self.take(ack.packet_id, Awaiting::Comp)?;
        Ok(ClientEvent::Delivered(done.msg.token))
    }

    /// After CONNACK with Session Present 1: retransmits every unsettled message in the original
    /// order with the original packet identifiers — PUBLISH with DUP 1 [MQTT-3.3.1-1] until
    /// PUBREC, PUBREL after it [MQTT-4.4.0-1].
    pub fn resend(
        &mut self,
        link: &LinkView,
        out: &mut OutBuf,
        events: &mut VecDeque<ClientEvent>,
    ) {
        let mut dropped = Vec::new();
        self.inflight.retain(|f| match f.stage {
            Awaiting::Comp => {
                out.packet(&Packet::PubRel(PubResponse::ok(f.id)), link.version);
                true
            }
            // The server may have shrunk its Maximum Packet Size since: a message it can no
            // longer take is settled as dropped rather than kept for ever.
            _ if write_publish(&f.msg, f.qos, Some(f.id), true, link, out) => true,
            _ => {
                dropped.push(f.msg.token);
                false
            }
        });
        events.extend(dropped.into_iter().map(|token| ClientEvent::Dropped {
            token,
            reason: ReasonCode::PACKET_TOO_LARGE,
        }));
    }

    /// After CONNACK with Session Present 0: the server has no record of our packet
    /// identifiers, so the protocol state is discarded (MQTT 5.0 [MQTT-3.2.2-5]) and every unsettled
    /// message goes back to the front of the queue, in order, to be published as new. Nothing
    /// is lost; QoS 1 may be duplicated, and so may a QoS 2 message past PUBREC — brokers differ
    /// in whether they forward at PUBLISH or at PUBREL, and a bridge prefers a duplicate to a loss.
    pub fn restart_as_new(&mut self) {
        while let Some(f) = self.inflight.pop_back() {
            self.queue.push_front(f.msg);
        }
    }

    /// Takes back every unsettled message, in flight first then queued, in order: for a caller
    /// that gives up on this session and wants to hand them elsewhere.
    pub fn drain(&mut self) -> Vec<OutMessage> {
        let inflight = self.inflight.drain(..).map(|f| f.msg);
        inflight.chain(self.queue.drain(..)).collect()
    }
}

/// What `try_send` did with a message.
enum SendOutcome {
    /// Written and now waiting for its acknowledgement.
    InFlight(u16),
    /// Written at QoS 0, or dropped as too large: its event is out.
    Settled,
    /// No free packet identifier: handed back untouched.
    NoId(Box<OutMessage>),
}

/// The settling event for an acknowledgement's reason code.
fn settled(token: super::events::Token, reason: ReasonCode) -> ClientEvent {
    if reason.is_error() {
        ClientEvent::Rejected { token, reason }
    } else {
        ClientEvent::Delivered(token)
    }
}

/// Encodes one of our PUBLISH packets at `qos`, with RETAIN cleared when the server does not
/// support it (Retain Available 0 in a 5.0 CONNACK). Returns false, writing nothing, when the packet would
/// exceed the server's Maximum Packet Size.
fn write_publish(
    msg: &OutMessage,
    qos: QoS,
    id: Option<u16>,
    dup: bool,
    link: &LinkView,
    out: &mut OutBuf,
) -> bool {
    let head = PublishHeader {
        dup,
        qos,
        retain: msg.retain && link.limits.retain_available,
        topic: &msg.topic,
        packet_id: id,
        properties: &msg.properties,
        extras: PublishExtras::default(),
    };
    let size = head.len(msg.payload.len(), link.version) + msg.payload.len();
    if size > link.limits.maximum_packet_size as usize {
        return false;
    }
    out.publish(&head, &msg.payload, link.version);
    true
}
