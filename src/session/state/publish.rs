//! Inbound PUBLISH handling of a [`Session`]: topic alias resolution, the topic and ACL checks,
//! the QoS 0/1/2 acknowledgement flow (inbound QoS 2 ids kept until PUBREL) and the building of the
//! routed [`Message`].
//!
//! Owns: `Session::on_publish` and `Session::message_from` (also used for wills). A child module
//! of `state`, so it reads the session's private fields. Must not touch: sockets, threads,
//! channels or the clock (time comes in as `now`), nor the publish rate (the I/O thread charges
//! it before handing the packet over).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::Access;
use crate::config::MqttConfig;
use crate::message::{Message, SharedMessage};
use crate::protocol::topic::has_wildcard;
use crate::protocol::{Packet, Properties, PubResponse, Publish, QoS, ReasonCode};
use crate::sys::is_sys_topic;

use super::super::limits::check_topic_name;
use super::{Action, Output, Session};

impl Session {
    /// Handles an inbound PUBLISH from the attached client.
    pub(super) fn on_publish(
        &mut self,
        mut p: Publish,
        cfg: &MqttConfig,
        now: Instant,
        out: &mut Output,
    ) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        let v = link.version;
        if let Some(alias) = p.properties.topic_alias.take() {
            if alias == 0 || alias > cfg.topic_alias_maximum {
                return self.violation(
                    ReasonCode::TOPIC_ALIAS_INVALID,
                    "topic alias out of range",
                    out,
                );
            }
            if p.topic.is_empty() {
                match link.aliases.get(alias) {
                    Some(t) => p.topic = t.to_owned(),
                    None => {
                        return self.violation(
                            ReasonCode::PROTOCOL_ERROR,
                            "unknown topic alias",
                            out,
                        )
                    }
                }
            } else {
                link.aliases.set(alias, &p.topic);
            }
        }
        if let Err(e) = check_topic_name(&p.topic, cfg) {
            return self.violation(e.reason, e.what, out);
        }
        if !p.properties.subscription_identifiers.is_empty() {
            return self.violation(
                ReasonCode::PROTOCOL_ERROR,
                "subscription identifier in PUBLISH",
                out,
            );
        }
        if p.properties
            .response_topic
            .as_deref()
            .is_some_and(|t| has_wildcard(t) || t.is_empty())
        {
            // [MQTT-3.3.2-14]: the Response Topic is a topic name.
            return self.violation(
                ReasonCode::PROTOCOL_ERROR,
                "Response Topic is not a topic name",
                out,
            );
        }
        if p.qos > cfg.max_qos {
            return self.violation(ReasonCode::QOS_NOT_SUPPORTED, "QoS above Maximum QoS", out);
        }
        if p.retain && !cfg.retain_available {
            return self.violation(
                ReasonCode::RETAIN_NOT_SUPPORTED,
                "retain not available",
                out,
            );
        }
        let id = p.packet_id.unwrap_or(0);
        if !self.acl.check(&p.topic, Access::Write) || is_sys_topic(&p.topic) {
            // Not authorized (by the ACL, or `$SYS/`, which only the broker publishes to, as with
            // Mosquitto): dropped. v5 acknowledges with 0x87; 3.1.1 has no way to say no,
            // so the ack is the normal one (as Mosquitto does).
            log::debug!(
                "client {}: publish to {:?} denied (ACL or $SYS)",
                self.client_id,
                p.topic
            );
            let reason = if v.is_v5() {
                ReasonCode::NOT_AUTHORIZED
            } else {
                ReasonCode::SUCCESS
            };
            return self.ack_publish(p.qos, id, reason, out);
        }
        if p.qos == QoS::ExactlyOnce && self.awaiting_rel.contains(id) {
            // A resend of a QoS 2 message we already routed: acknowledge again, route nothing.
            self.send(Packet::PubRec(PubResponse::ok(id)), out);
            return;
        }
        if p.qos == QoS::ExactlyOnce && self.awaiting_rel.len() >= usize::from(cfg.receive_maximum)
        {
            return self.violation(
                ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                "too many QoS 2 in flight",
                out,
            );
        }
        let bad_utf8 = p.properties.payload_format_indicator == Some(1)
            && std::str::from_utf8(&p.payload).is_err();
        let reason = if bad_utf8 {
            ReasonCode::PAYLOAD_FORMAT_INVALID
        } else {
            ReasonCode::SUCCESS
        };
        let qos = p.qos;
        if !bad_utf8 {
            let msg = self.message_from(p.topic, p.payload, qos, p.retain, p.properties, now);
            out.actions.push(Action::Publish(msg));
        }
        self.ack_publish(qos, id, reason, out);
    }

    /// Acknowledges an inbound PUBLISH (nothing for QoS 0). A QoS 2 id acknowledged with success
    /// waits for its PUBREL; one refused with an error code ends its flow at PUBREC
    /// [MQTT-4.3.3-5 / 4.3.3-10].
    fn ack_publish(&mut self, qos: QoS, id: u16, reason: ReasonCode, out: &mut Output) {
        let ack = PubResponse {
            packet_id: id,
            reason,
            properties: Properties::default(),
        };
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                self.send(Packet::PubAck(ack), out);
            }
            QoS::ExactlyOnce => {
                if !reason.is_error() && !self.awaiting_rel.contains(id) {
                    self.awaiting_rel.insert(id);
                }
                self.send(Packet::PubRec(ack), out);
            }
        }
    }

    pub(super) fn message_from(
        &self,
        topic: String,
        payload: bytes::Bytes,
        qos: QoS,
        retain: bool,
        mut properties: Properties,
        now: Instant,
    ) -> SharedMessage {
        let expires_at = properties
            .message_expiry_interval
            .take()
            .map(|s| now + Duration::from_secs(u64::from(s)));
        properties.topic_alias = None;
        Arc::new(Message::new(
            topic.into_boxed_str(),
            payload,
            qos,
            retain,
            properties,
            expires_at,
            Some(self.me),
        ))
    }
}
