//! Outbound message flow of one session: the QoS 1/2 inflight window and the queue behind it.
//!
//! Owns: packet identifier allocation, the inflight table in send order, the bounded queue with its
//! full-queue policy, and the retransmission set on reconnect. Must not touch: encoding details
//! beyond handing `OutBuf` a PUBLISH, and anything about the inbound direction.
//!
//! Full-queue policy: when a client's queue holds `max_queued_messages` or `max_queued_bytes`, a new
//! QoS 0 message is dropped; a new QoS 1/2 message first evicts the oldest queued QoS 0 message and is
//! dropped only if there is none. Drops are counted in [`Outbound::dropped`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::config::MqttConfig;
use crate::message::{SharedMessage, SubIds};
use crate::protocol::publish_header::{PublishExtras, PublishHeader};
use crate::protocol::{Packet, ProtocolVersion, PubResponse, QoS};

use super::aliases::{AliasUse, OutboundAliases};
use super::outbuf::OutBuf;

/// Above this many unwritten bytes a session stops writing into its connection's buffer and queues
/// instead, so one slow reader holds at most this much encoded data plus its bounded queue.
pub const WIRE_HIGH_WATER: usize = 256 * 1024;

/// A message waiting for a window slot or a connection.
#[derive(Debug, Clone)]
pub struct Queued {
    /// The shared message.
    pub msg: SharedMessage,
    /// QoS granted to this subscriber.
    pub qos: QoS,
    /// RETAIN flag as this subscriber must see it.
    pub retain: bool,
    /// Subscription identifiers to send with it (v5).
    pub sub_ids: SubIds,
    /// The shared subscription (full `$share/...` filter) it came through, if any.
    pub shared: Option<Arc<str>>,
}

/// Where an outbound QoS 1/2 message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// QoS 1 PUBLISH sent, waiting for PUBACK.
    AwaitPubAck,
    /// QoS 2 PUBLISH sent, waiting for PUBREC.
    AwaitPubRec,
    /// PUBREL sent, waiting for PUBCOMP.
    AwaitPubComp,
}

/// What a PUBACK or PUBCOMP did to the inflight window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// The flow it ends is over; its id and window slot are free.
    Done,
    /// No message with that id is in flight (a late duplicate): ignored.
    NotInFlight,
    /// The id is in flight at a stage this acknowledgement does not answer (PUBACK for QoS 2,
    /// PUBCOMP for QoS 1 or before PUBREL): a protocol violation.
    WrongKind,
}

/// What a PUBREC asks of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecOutcome {
    /// Send PUBREL (the first one, or again for a repeated PUBREC).
    Release,
    /// The id is not in flight: send PUBREL with Packet Identifier not found (0x92) in 5.0, a
    /// plain PUBREL in 3.1.1 (MQTT 5.0 section 3.6.2.1).
    NotFound,
    /// The client refused the message (reason >= 0x80): the exchange is over, nothing to send.
    Ended,
    /// Nothing to send and nothing changed.
    Ignored,
    /// The id is a QoS 1 message in flight: a protocol violation.
    WrongKind,
}

#[derive(Debug, Clone)]
struct Inflight {
    id: u16,
    stage: Stage,
    item: Queued,
}

/// The connected client as the outbound flow sees it: what it accepts, and the topic aliases
/// assigned on this connection.
#[derive(Debug)]
pub struct Peer {
    /// Protocol version of the connection.
    pub version: ProtocolVersion,
    /// Most unacknowledged QoS 1/2 messages (our config and the client's Receive Maximum).
    pub window: u16,
    /// Largest packet the client accepts.
    pub max_packet: u32,
    /// Topic aliases we assigned (v5, when the client allows them).
    pub aliases: OutboundAliases,
}

/// The outbound side of a session.
#[derive(Debug, Default)]
pub struct Outbound {
    /// The inflight window and the queue, allocated by the first message that has to wait for an
    /// acknowledgement or for room, and freed as soon as both are empty again (`None` exactly when
    /// both are empty). Most sessions are idle most of the time: inline, two empty `VecDeque`s
    /// would cost each of them 64 bytes.
    flows: Option<Box<Flows>>,
    last_id: u16,
    /// Messages dropped by the full-queue policy, expiry or the client's Maximum Packet Size.
    pub dropped: u64,
}

/// What an active session holds on the outbound side.
#[derive(Debug, Default)]
struct Flows {
    /// QoS 1/2 messages sent and not yet fully acknowledged, in send order.
    inflight: VecDeque<Inflight>,
    /// Messages waiting for a window slot, room in the write buffer or a connection.
    queue: VecDeque<Queued>,
    /// Sum of the queued messages' costs, for `max_queued_bytes`.
    queued_bytes: usize,
}

impl Flows {
    /// Queues `item` under the full-queue policy; returns how many messages were dropped (the new
    /// one or older QoS 0 ones).
    fn enqueue(&mut self, item: Queued, cfg: &MqttConfig) -> u64 {
        let cost = item.msg.cost();
        let full = |f: &Flows| {
            f.queue.len() >= cfg.max_queued_messages || f.queued_bytes + cost > cfg.max_queued_bytes
        };
        let mut dropped = 0;
        if full(self) {
            if item.qos == QoS::AtMostOnce {
                return 1;
            }
            while full(self) {
                let Some(pos) = self.queue.iter().position(|q| q.qos == QoS::AtMostOnce) else {
                    return dropped + 1;
                };
                if let Some(old) = self.queue.remove(pos) {
                    self.queued_bytes -= old.msg.cost();
                }
                dropped += 1;
            }
        }
        self.queued_bytes += cost;
        self.queue.push_back(item);
        dropped
    }

    /// Takes out the queued messages that `matches` selects.
    fn take_queued(&mut self, matches: impl Fn(&Queued) -> bool, taken: &mut Vec<Queued>) {
        let (shared, rest): (VecDeque<_>, VecDeque<_>) = self.queue.drain(..).partition(matches);
        self.queue = rest;
        for q in shared {
            self.queued_bytes -= q.msg.cost();
            taken.push(q);
        }
    }
}

impl Outbound {
    /// Messages waiting behind the window.
    pub fn queued(&self) -> usize {
        self.flows.as_ref().map_or(0, |f| f.queue.len())
    }

    /// Messages sent and not yet fully acknowledged.
    pub fn inflight(&self) -> usize {
        self.flows.as_ref().map_or(0, |f| f.inflight.len())
    }

    /// Frees the flows once nothing is in flight or queued; call after anything that removes.
    fn tidy(&mut self) {
        if self
            .flows
            .as_ref()
            .is_some_and(|f| f.inflight.is_empty() && f.queue.is_empty())
        {
            self.flows = None;
        }
    }

    /// Offers one message: sent at once when the link, the window and the write buffer allow,
    /// otherwise queued under the full-queue policy. Offline sessions drop QoS 0 (as Mosquitto does).
    pub fn offer(
        &mut self,
        item: Queued,
        peer: Option<&mut Peer>,
        cfg: &MqttConfig,
        now: Instant,
        out: &mut OutBuf,
    ) {
        match peer {
            None if item.qos == QoS::AtMostOnce => self.dropped += 1,
            Some(p) if self.queued() == 0 && self.can_send(&item, p, out) => {
                self.send(item, p, now, out)
            }
            _ => {
                let flows = self.flows.get_or_insert_with(Box::default);
                self.dropped += flows.enqueue(item, cfg);
                // A message refused by a full queue may have left a just-made box empty.
                self.tidy();
            }
        }
    }

    fn can_send(&self, item: &Queued, peer: &Peer, out: &OutBuf) -> bool {
        out.len() < WIRE_HIGH_WATER
            && (item.qos == QoS::AtMostOnce || self.inflight() < usize::from(peer.window))
    }

    /// Sends queued messages while the window and the write buffer allow; call after an ack, after
    /// the buffer drained, and after a reconnect.
    pub fn pump(&mut self, peer: &mut Peer, now: Instant, out: &mut OutBuf) {
        while let Some(front) = self.flows.as_ref().and_then(|f| f.queue.front()) {
            if !self.can_send(front, peer, out) {
                break;
            }
            let Some(flows) = self.flows.as_mut() else {
                break;
            };
            let Some(item) = flows.queue.pop_front() else {
                break;
            };
            flows.queued_bytes -= item.msg.cost();
            self.send(item, peer, now, out);
        }
        self.tidy();
    }

    fn send(&mut self, item: Queued, peer: &mut Peer, now: Instant, out: &mut OutBuf) {
        if item.msg.is_expired(now) {
            self.dropped += 1;
            return;
        }
        let id = match item.qos {
            QoS::AtMostOnce => None,
            _ => Some(self.next_id()),
        };
        if !write_publish(&item, id, false, peer, now, out) {
            // Larger than the client accepts: MQTT 5.0 [MQTT-3.1.2-25] says to discard it as if it
            // had been delivered.
            self.dropped += 1;
            return;
        }
        if let Some(id) = id {
            let stage = match item.qos {
                QoS::AtLeastOnce => Stage::AwaitPubAck,
                _ => Stage::AwaitPubRec,
            };
            let flows = self.flows.get_or_insert_with(Box::default);
            flows.inflight.push_back(Inflight { id, stage, item });
        }
    }

    fn next_id(&mut self) -> u16 {
        // The window is at most 65535 and an id is only allocated below it, so a free id exists.
        loop {
            self.last_id = self.last_id.checked_add(1).unwrap_or(1);
            let id = self.last_id;
            if self.find(id).is_none() {
                return id;
            }
        }
    }

    /// Where the message with packet identifier `id` is in flight, and its stage.
    fn find(&self, id: u16) -> Option<(usize, Stage)> {
        let inflight = &self.flows.as_ref()?.inflight;
        inflight
            .iter()
            .position(|f| f.id == id)
            .map(|pos| (pos, inflight[pos].stage))
    }

    /// Ends the flow at `pos` of the inflight table (found by [`Outbound::find`]).
    fn end(&mut self, pos: usize) {
        if let Some(flows) = self.flows.as_mut() {
            flows.inflight.remove(pos);
        }
        self.tidy();
    }

    /// PUBACK received: ends a QoS 1 flow. A PUBACK for a QoS 2 message is the wrong kind of
    /// acknowledgement; one for an id not in flight is ignored (a late duplicate).
    pub fn on_puback(&mut self, id: u16) -> AckOutcome {
        match self.find(id) {
            Some((pos, Stage::AwaitPubAck)) => {
                self.end(pos);
                AckOutcome::Done
            }
            Some(_) => AckOutcome::WrongKind,
            None => AckOutcome::NotInFlight,
        }
    }

    /// PUBREC received (MQTT 5.0 section 4.3.3). The caller writes the PUBREL this asks for.
    /// `failed` is a reason code of 0x80 or above: the client refused the message, which ends the
    /// exchange with no PUBREL [MQTT-4.3.3-4] and frees its id and window slot.
    pub fn on_pubrec(&mut self, id: u16, failed: bool) -> RecOutcome {
        match self.find(id) {
            Some((pos, Stage::AwaitPubRec)) if failed => {
                self.end(pos);
                RecOutcome::Ended
            }
            Some((pos, Stage::AwaitPubRec)) => {
                if let Some(flows) = self.flows.as_mut() {
                    flows.inflight[pos].stage = Stage::AwaitPubComp;
                }
                RecOutcome::Release
            }
            // A repeated PUBREC (ours PUBREL may have crossed it, or been lost with the link):
            // PUBREL again. A refusal after acceptance changes nothing: PUBREL was already sent
            // and the flow now ends with PUBCOMP [MQTT-4.3.3-3].
            Some((_, Stage::AwaitPubComp)) if failed => RecOutcome::Ignored,
            Some((_, Stage::AwaitPubComp)) => RecOutcome::Release,
            Some((_, Stage::AwaitPubAck)) => RecOutcome::WrongKind,
            None if failed => RecOutcome::Ignored,
            None => RecOutcome::NotFound,
        }
    }

    /// PUBCOMP received: ends a QoS 2 flow whose PUBREL was sent. A PUBCOMP for a QoS 1 message,
    /// or for a QoS 2 message not released yet, is the wrong kind of acknowledgement.
    pub fn on_pubcomp(&mut self, id: u16) -> AckOutcome {
        match self.find(id) {
            Some((pos, Stage::AwaitPubComp)) => {
                self.end(pos);
                AckOutcome::Done
            }
            Some(_) => AckOutcome::WrongKind,
            None => AckOutcome::NotInFlight,
        }
    }

    /// After a reconnect: resend every unacknowledged PUBLISH with DUP set and every PUBREL, in the
    /// original order [MQTT-4.4.0-1].
    pub fn resend_inflight(&mut self, peer: &mut Peer, now: Instant, out: &mut OutBuf) {
        let Some(flows) = self.flows.as_mut() else {
            return;
        };
        let before = flows.inflight.len();
        flows.inflight.retain(|f| match f.stage {
            Stage::AwaitPubComp => {
                // A PUBREL (4 bytes) always fits when the CONNACK before it (5 or more) did.
                let rel = Packet::PubRel(PubResponse::ok(f.id));
                out.packet_within(rel, peer.version, peer.max_packet);
                true
            }
            // A message the reconnected client no longer accepts (a smaller Maximum Packet Size)
            // is discarded as if delivered [MQTT-3.1.2-25], so it cannot hold its window slot
            // for ever.
            _ => write_publish(&f.item, Some(f.id), true, peer, now, out),
        });
        self.dropped += (before - flows.inflight.len()) as u64;
        self.tidy();
    }

    /// Takes out the messages that came through a shared subscription: the queued ones of
    /// `filter`, or, with `None`, all queued ones and the QoS 1 ones in flight. A QoS 2 message
    /// in flight stays: the client may already have it, and [MQTT-4.8.2-5] forbids giving it to
    /// another member.
    pub fn take_shared(&mut self, filter: Option<&str>) -> Vec<Queued> {
        let mut taken = Vec::new();
        let Some(flows) = self.flows.as_mut() else {
            return taken;
        };
        if filter.is_none() {
            let (shared, rest): (VecDeque<_>, VecDeque<_>) = flows
                .inflight
                .drain(..)
                .partition(|f| f.item.shared.is_some() && f.stage == Stage::AwaitPubAck);
            flows.inflight = rest;
            taken.extend(shared.into_iter().map(|f| f.item));
        }
        let matches = |q: &Queued| match (&q.shared, filter) {
            (Some(_), None) => true,
            (Some(g), Some(f)) => &**g == f,
            (None, _) => false,
        };
        flows.take_queued(matches, &mut taken);
        self.tidy();
        taken
    }

    /// Everything still held, for moving unacknowledged messages elsewhere or for tests.
    pub fn drain_all(&mut self) -> Vec<Queued> {
        let Some(flows) = self.flows.take() else {
            return Vec::new();
        };
        let Flows {
            inflight, queue, ..
        } = *flows;
        let inflight = inflight.into_iter().map(|f| f.item);
        inflight.chain(queue).collect()
    }
}

/// Encodes one PUBLISH for a subscriber, with a topic alias when the client allows them. Returns
/// false (writing nothing, assigning no alias) when it would exceed the client's Maximum Packet Size.
fn write_publish(
    item: &Queued,
    id: Option<u16>,
    dup: bool,
    peer: &mut Peer,
    now: Instant,
    out: &mut OutBuf,
) -> bool {
    let msg = &item.msg;
    let v5 = peer.version.is_v5();
    let message_expiry = msg.expires_at.filter(|_| v5).map(|at| {
        let left = at.saturating_duration_since(now);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        u32::try_from(secs).unwrap_or(u32::MAX)
    });
    let mut head = PublishHeader {
        dup,
        qos: item.qos,
        retain: item.retain,
        topic: &msg.topic,
        packet_id: id,
        properties: &msg.properties,
        extras: PublishExtras {
            message_expiry,
            // Sized as if an alias were added, so the check below holds whatever use_for decides.
            topic_alias: (v5 && peer.aliases.enabled()).then_some(1),
            subscription_ids: item.sub_ids.as_slice(),
        },
    };
    let size = head.len(msg.payload.len(), peer.version) + msg.payload.len();
    if size > peer.max_packet as usize {
        return false;
    }
    head.extras.topic_alias = None;
    if v5 {
        match peer.aliases.use_for(&msg.topic) {
            AliasUse::None => {}
            AliasUse::Assign(a) => head.extras.topic_alias = Some(a),
            AliasUse::Reuse(a) => {
                head.extras.topic_alias = Some(a);
                head.topic = "";
            }
        }
    }
    out.publish(&head, &msg.payload, peer.version);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::protocol::Properties;
    use bytes::Bytes;

    fn item(qos: QoS) -> Queued {
        let msg = Message::new(
            "t".into(),
            Bytes::from_static(b"x"),
            qos,
            false,
            Properties::default(),
            None,
            None,
        );
        Queued {
            msg: Arc::new(msg),
            qos,
            retain: false,
            sub_ids: SubIds::default(),
            shared: None,
        }
    }

    fn peer(window: u16) -> Peer {
        Peer {
            version: ProtocolVersion::V5,
            window,
            max_packet: u32::MAX,
            aliases: OutboundAliases::new(0),
        }
    }

    /// The flows exist exactly while something is in flight or queued: an idle session holds
    /// none, whichever way its last message left (acknowledged, refused, completed).
    #[test]
    fn flows_are_allocated_on_first_use_and_freed_when_empty() {
        let (cfg, now, mut out) = (MqttConfig::default(), Instant::now(), OutBuf::new());
        let mut p = peer(1);
        let mut o = Outbound::default();
        o.offer(item(QoS::AtMostOnce), Some(&mut p), &cfg, now, &mut out);
        assert!(
            o.flows.is_none(),
            "a QoS 0 message sent at once leaves nothing"
        );
        o.offer(item(QoS::AtLeastOnce), Some(&mut p), &cfg, now, &mut out);
        o.offer(item(QoS::ExactlyOnce), Some(&mut p), &cfg, now, &mut out);
        assert_eq!((o.inflight(), o.queued()), (1, 1));
        assert_eq!(o.on_puback(1), AckOutcome::Done);
        assert!(o.flows.is_some(), "the queued message is still held");
        o.pump(&mut p, now, &mut out);
        assert_eq!((o.inflight(), o.queued()), (1, 0));
        assert_eq!(o.on_pubrec(2, false), RecOutcome::Release);
        assert_eq!(o.on_pubcomp(2), AckOutcome::Done);
        assert!(o.flows.is_none());
        o.offer(item(QoS::ExactlyOnce), Some(&mut p), &cfg, now, &mut out);
        assert_eq!(o.on_pubrec(3, true), RecOutcome::Ended);
        assert!(o.flows.is_none());
        assert_eq!(o.on_puback(3), AckOutcome::NotInFlight);
        let full = MqttConfig {
            max_queued_messages: 0,
            ..MqttConfig::default()
        };
        o.offer(item(QoS::AtLeastOnce), None, &full, now, &mut out);
        assert_eq!(o.dropped, 1);
        assert!(
            o.flows.is_none(),
            "a refused message leaves no empty flows behind"
        );
        o.offer(item(QoS::AtLeastOnce), None, &cfg, now, &mut out);
        assert_eq!(o.drain_all().len(), 1);
        assert!(o.flows.is_none());
    }
}
