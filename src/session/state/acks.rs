//! Acknowledgements from the client for both QoS flows: PUBACK, PUBREC and PUBCOMP for the
//! messages the session sent, PUBREL for the QoS 2 messages it received.
//!
//! Owns: `Session::on_ack`, `on_pubrec` and `on_pubrel`, the set of inbound QoS 2 ids awaiting
//! their PUBREL ([`AwaitingRel`]), and the rules that make an acknowledgement a protocol violation (the wrong kind for the message in flight, a reason code
//! its packet does not allow). A child module of `state`, so it reads the session's private
//! fields. Must not touch: the inflight table itself (`outbound` keeps it and reports an outcome)
//! or sockets, threads, channels and the clock.

use std::time::Instant;

use crate::protocol::{Packet, Properties, PubResponse, ReasonCode};

use super::super::outbound::{AckOutcome, RecOutcome};
use super::{Output, Session};

/// Inbound QoS 2 packet ids received and not yet released (PUBREC sent, PUBREL awaited). Made by
/// the first such id and freed when the last is released: most sessions never receive QoS 2, and
/// an empty `Vec` inline would cost each of them 24 bytes instead of 8.
#[derive(Debug, Default)]
// Boxed on purpose: `None` is one word where an empty `Vec` is three.
#[allow(clippy::box_collection)]
pub(super) struct AwaitingRel(Option<Box<Vec<u16>>>);

impl AwaitingRel {
    /// The ids, in no particular order.
    fn ids(&self) -> &[u16] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Whether `id` awaits its PUBREL.
    pub(super) fn contains(&self, id: u16) -> bool {
        self.ids().contains(&id)
    }

    /// How many ids await their PUBREL.
    pub(super) fn len(&self) -> usize {
        self.ids().len()
    }

    /// Adds `id` (the caller checked it is not there yet).
    pub(super) fn insert(&mut self, id: u16) {
        self.0.get_or_insert_with(Box::default).push(id);
    }

    /// Removes `id`; returns whether it was there.
    fn release(&mut self, id: u16) -> bool {
        let Some(ids) = self.0.as_mut() else {
            return false;
        };
        let Some(pos) = ids.iter().position(|&x| x == id) else {
            return false;
        };
        ids.swap_remove(pos);
        if ids.is_empty() {
            self.0 = None;
        }
        true
    }
}

/// Which of the four acknowledgement packets (they share one layout, [`PubResponse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AckKind {
    /// PUBACK.
    Ack,
    /// PUBREC.
    Rec,
    /// PUBREL.
    Rel,
    /// PUBCOMP.
    Comp,
}

impl AckKind {
    /// Whether MQTT 5.0 lets this packet carry `reason` (sections 3.4.2.1 to 3.7.2.1).
    fn allows(self, reason: ReasonCode) -> bool {
        match self {
            AckKind::Ack | AckKind::Rec => reason.allowed_in_puback_or_pubrec(),
            AckKind::Rel | AckKind::Comp => reason.allowed_in_pubrel_or_pubcomp(),
        }
    }

    /// The violation logged (and sent as v5 Reason String) for a reason code it does not allow.
    fn bad_reason(self) -> &'static str {
        match self {
            AckKind::Ack => "reason code not allowed in PUBACK",
            AckKind::Rec => "reason code not allowed in PUBREC",
            AckKind::Rel => "reason code not allowed in PUBREL",
            AckKind::Comp => "reason code not allowed in PUBCOMP",
        }
    }
}

impl Session {
    /// Reports a v5 acknowledgement whose reason code its packet does not allow, and returns
    /// whether it did (the packet is then not acted on).
    ///
    /// The check is here and answered with Protocol Error (0x82), not in the decoder as Malformed
    /// Packet (0x81): such a packet parses fine, and MQTT 5.0 section 1.2 defines a Protocol Error
    /// as "an error that is detected after the packet has been parsed and found to contain data
    /// that is not allowed by the protocol", a Malformed Packet as one that "cannot be parsed
    /// according to this specification". Mosquitto answers it the same way. 3.1.1 acks carry no
    /// reason code (the decoder reads none), so the check cannot fire there.
    fn bad_ack_reason(&mut self, kind: AckKind, a: &PubResponse, out: &mut Output) -> bool {
        let v5 = self.link.as_ref().is_some_and(|l| l.version.is_v5());
        if v5 && !kind.allows(a.reason) {
            self.violation(ReasonCode::PROTOCOL_ERROR, kind.bad_reason(), out);
            return true;
        }
        false
    }

    /// PUBACK or PUBCOMP from the client. The wrong kind for the message in flight (PUBACK for
    /// QoS 2; PUBCOMP for QoS 1 or before our PUBREL) is a protocol violation: 3.1.1 closes
    /// [MQTT-4.8.0-1], 5.0 sends DISCONNECT 0x82 (section 4.13). An id not in flight is ignored.
    pub(super) fn on_ack(&mut self, kind: AckKind, a: PubResponse, now: Instant, out: &mut Output) {
        if self.bad_ack_reason(kind, &a, out) {
            return;
        }
        let outcome = match kind {
            AckKind::Comp => self.outbound.on_pubcomp(a.packet_id),
            _ => self.outbound.on_puback(a.packet_id),
        };
        match outcome {
            AckOutcome::Done => self.pump(now, out),
            AckOutcome::NotInFlight => {}
            AckOutcome::WrongKind => {
                let what = match kind {
                    AckKind::Comp => "PUBCOMP for a message not released",
                    _ => "PUBACK for a QoS 2 message",
                };
                self.violation(ReasonCode::PROTOCOL_ERROR, what, out)
            }
        }
    }

    /// PUBREC from the client: PUBREL for a message in flight (again for a repeat), PUBREL 0x92
    /// for an id not in flight (5.0 section 3.6.2.1; a plain PUBREL in 3.1.1, which has no reason
    /// codes), nothing when the client refused the message (its id and window slot are then free
    /// and the next queued message may go).
    pub(super) fn on_pubrec(&mut self, a: PubResponse, now: Instant, out: &mut Output) {
        if self.bad_ack_reason(AckKind::Rec, &a, out) {
            return;
        }
        let id = a.packet_id;
        match self.outbound.on_pubrec(id, a.reason.is_error()) {
            RecOutcome::Release => {
                self.send(Packet::PubRel(PubResponse::ok(id)), out);
            }
            RecOutcome::NotFound => {
                let rel = PubResponse {
                    reason: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                    ..PubResponse::ok(id)
                };
                self.send(Packet::PubRel(rel), out);
            }
            RecOutcome::Ended => self.pump(now, out),
            RecOutcome::Ignored => {}
            RecOutcome::WrongKind => self.violation(
                ReasonCode::PROTOCOL_ERROR,
                "PUBREC for a QoS 1 message",
                out,
            ),
        }
    }

    /// PUBREL from the client: releases an inbound QoS 2 id and answers PUBCOMP, with 0x92 when
    /// the id was not waiting (v5; the encoder leaves the code out for 3.1.1).
    pub(super) fn on_pubrel(&mut self, a: PubResponse, out: &mut Output) {
        let id = a.packet_id;
        if self.bad_ack_reason(AckKind::Rel, &a, out) {
            return;
        }
        let reason = if self.awaiting_rel.release(id) {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        };
        let ack = PubResponse {
            packet_id: id,
            reason,
            properties: Properties::default(),
        };
        self.send(Packet::PubComp(ack), out);
    }
}
