//! The header of an outgoing PUBLISH (everything before the payload), with the per-delivery MQTT 5
//! properties the broker adds to a message's own.
//!
//! Owns: [`PublishHeader`]. A routed message is shared by all its subscribers; what differs per
//! subscriber — packet id, QoS, DUP, RETAIN, topic alias, subscription identifiers, the remaining
//! message expiry — is passed here by value and written after the message's own properties (the
//! specification puts no order on properties), so a delivery never copies the message's property
//! set. Must not touch: the payload (the caller writes or queues it) or any session rule.

use bytes::{BufMut, BytesMut};

use super::properties::{id, Properties};
use super::types::{ProtocolVersion, QoS};
use super::wire::props::{properties_len, write_property_list, PropCtx};
use super::wire::{len_to_u32, string_len, varint_len, write_string, write_varint};

/// Properties added per delivery. The message's own property set must not also carry them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishExtras<'a> {
    /// Remaining Message Expiry Interval in seconds.
    pub message_expiry: Option<u32>,
    /// Topic alias for this connection.
    pub topic_alias: Option<u16>,
    /// Subscription identifiers of the matching subscriptions.
    pub subscription_ids: &'a [u32],
}

impl PublishExtras<'_> {
    fn len(&self) -> usize {
        let expiry = self.message_expiry.map_or(0, |_| 5);
        let alias = self.topic_alias.map_or(0, |_| 3);
        let ids: usize = self
            .subscription_ids
            .iter()
            .map(|&i| 1 + varint_len(i))
            .sum();
        expiry + alias + ids
    }

    fn write(&self, out: &mut BytesMut) {
        if let Some(e) = self.message_expiry {
            out.put_u8(id::MESSAGE_EXPIRY_INTERVAL);
            out.put_u32(e);
        }
        if let Some(a) = self.topic_alias {
            out.put_u8(id::TOPIC_ALIAS);
            out.put_u16(a);
        }
        for &i in self.subscription_ids {
            out.put_u8(id::SUBSCRIPTION_IDENTIFIER);
            write_varint(i, out);
        }
    }
}

/// Everything of a PUBLISH but its payload.
#[derive(Debug, Clone, Copy)]
pub struct PublishHeader<'a> {
    /// DUP flag (ignored for QoS 0, where it is not allowed).
    pub dup: bool,
    /// QoS of this transmission.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name; empty when `extras.topic_alias` names a topic the client already knows.
    pub topic: &'a str,
    /// Packet identifier, written exactly when `qos` is 1 or 2.
    pub packet_id: Option<u16>,
    /// The message's own properties (v5 only).
    pub properties: &'a Properties,
    /// Per-delivery properties (v5 only).
    pub extras: PublishExtras<'a>,
}

impl PublishHeader<'_> {
    fn props_len(&self) -> usize {
        properties_len(self.properties, PropCtx::Publish) + self.extras.len()
    }

    fn body_len(&self, version: ProtocolVersion) -> usize {
        let id = if self.qos == QoS::AtMostOnce { 0 } else { 2 };
        let props = if version.is_v5() {
            let p = self.props_len();
            varint_len(len_to_u32(p)) + p
        } else {
            0
        };
        string_len(self.topic) + id + props
    }

    /// Size of the header for a payload of `payload_len` bytes; the packet is this plus the payload.
    pub fn len(&self, payload_len: usize, version: ProtocolVersion) -> usize {
        let body = self.body_len(version);
        1 + varint_len(len_to_u32(body + payload_len)) + body
    }

    /// Appends the header for a payload of `payload_len` bytes.
    pub fn encode(&self, payload_len: usize, version: ProtocolVersion, out: &mut BytesMut) {
        let body = self.body_len(version);
        let remaining = len_to_u32(body + payload_len);
        out.reserve(1 + varint_len(remaining) + body);
        let dup = self.dup && self.qos != QoS::AtMostOnce;
        out.put_u8(0x30 | (u8::from(dup) << 3) | (self.qos.as_u8() << 1) | u8::from(self.retain));
        write_varint(remaining, out);
        write_string(self.topic, out);
        if self.qos != QoS::AtMostOnce {
            out.put_u16(self.packet_id.unwrap_or(0));
        }
        if version.is_v5() {
            let own = properties_len(self.properties, PropCtx::Publish);
            write_varint(len_to_u32(own + self.extras.len()), out);
            if own > 0 {
                write_property_list(self.properties, PropCtx::Publish, out);
            }
            self.extras.write(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode::decode_packet;
    use crate::protocol::Packet;

    fn decode(bytes: &BytesMut, v: ProtocolVersion) -> crate::protocol::Publish {
        let mut b = bytes.clone();
        match decode_packet(&mut b, Some(v), u32::MAX) {
            Ok(Some(Packet::Publish(p))) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn extras_are_added_to_the_message_properties() {
        let own = Properties {
            content_type: Some("text/plain".into()),
            user_properties: vec![("k".into(), "v".into())],
            ..Properties::default()
        };
        let ids = [3, 200_000];
        let h = PublishHeader {
            dup: true,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "a/b",
            packet_id: Some(9),
            properties: &own,
            extras: PublishExtras {
                message_expiry: Some(42),
                topic_alias: Some(2),
                subscription_ids: &ids,
            },
        };
        let mut out = BytesMut::new();
        h.encode(5, ProtocolVersion::V5, &mut out);
        assert_eq!(out.len(), h.len(5, ProtocolVersion::V5));
        out.extend_from_slice(b"hello");
        let p = decode(&out, ProtocolVersion::V5);
        assert!(p.dup && p.packet_id == Some(9) && &p.payload[..] == b"hello");
        assert_eq!(p.properties.content_type.as_deref(), Some("text/plain"));
        assert_eq!(p.properties.user_properties, own.user_properties);
        assert_eq!(p.properties.message_expiry_interval, Some(42));
        assert_eq!(p.properties.topic_alias, Some(2));
        assert_eq!(p.properties.subscription_identifiers, ids.to_vec());
    }

    #[test]
    fn v311_has_no_properties_and_qos0_no_id_or_dup() {
        let own = Properties {
            content_type: Some("x".into()),
            ..Properties::default()
        };
        let h = PublishHeader {
            dup: true,
            qos: QoS::AtMostOnce,
            retain: true,
            topic: "t",
            packet_id: Some(1),
            properties: &own,
            extras: PublishExtras {
                topic_alias: Some(1),
                ..PublishExtras::default()
            },
        };
        let mut out = BytesMut::new();
        h.encode(0, ProtocolVersion::V311, &mut out);
        assert_eq!(&out[..], &[0x31, 3, 0, 1, b't']);
    }
}
