//! The application message as it travels from a publisher through the router to subscribers, and
//! the identity of a session.
//!
//! Owns: [`Message`] (shared by `Arc`: one allocation per published message, whatever the fan-out)
//! and [`SessionRef`]. Must not touch: encoding (each subscriber's PUBLISH header is written by its
//! session) or routing.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::protocol::{Properties, QoS};

/// Where a session lives: the I/O thread that owns it, its slot in that thread's session table, and
/// the slot's generation. A slot is reused after its session ends; the generation makes late
/// deliveries to the old session fail the lookup instead of reaching a stranger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionRef {
    /// Index of the owning I/O thread.
    pub thread: u16,
    /// Slot in the thread's session table.
    pub slot: u32,
    /// Generation of the slot when this session was created.
    pub generation: u32,
}

/// One published application message, immutable once routed.
#[derive(Debug)]
pub struct Message {
    /// Topic name (validated; never an alias).
    pub topic: Box<str>,
    /// Payload, shared with every subscriber's write queue.
    pub payload: Bytes,
    /// QoS it was published with; each subscriber gets `min(this, subscription QoS)`.
    pub qos: QoS,
    /// RETAIN flag as published.
    pub retain: bool,
    /// Properties forwarded to v5 subscribers (payload format, content type, response topic,
    /// correlation data, user properties). Topic alias and subscription identifiers are per
    /// connection and never stored here; the expiry interval is recomputed from `expires_at`.
    pub properties: Properties,
    /// When the message expires (v5 Message Expiry Interval), if it does.
    pub expires_at: Option<Instant>,
    /// The session that published it (for No Local), if any.
    pub origin: Option<SessionRef>,
    /// [`Message::cost`], computed once by [`Message::new`] (it walks the user properties, and
    /// every queue add and removal and every retained store reads it). Private, so every message
    /// is built by `new`; a `u32` (a message is at most one packet, under 256 MiB, plus the
    /// in-memory overhead of its properties; saturating) sits in padding, so the struct does not
    /// grow.
    cost: u32,
}

impl Message {
    /// A message with its cost computed. The fields stay readable; the message is immutable once
    /// shared, so the cost stays true.
    pub fn new(
        topic: Box<str>,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        properties: Properties,
        expires_at: Option<Instant>,
        origin: Option<SessionRef>,
    ) -> Message {
        let cost = payload.len() + topic.len() + properties.message_bytes();
        Message {
            topic,
            payload,
            qos,
            retain,
            properties,
            expires_at,
            origin,
            cost: u32::try_from(cost).unwrap_or(u32::MAX),
        }
    }

    /// Whether the message has expired at `now` and must no longer be delivered.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }

    /// Topic, payload and message-property bytes (see [`Properties::message_bytes`]), the figure
    /// counted against per-client queue limits and the retained store's byte limit, so a message
    /// with a small payload and many user properties is not counted as small.
    ///
    /// This is what the message really holds because the decoder never lets a payload pin more
    /// than its own packet: a payload decoded from a connection's read buffer is a copy of its own
    /// bytes, or, for a large packet that was alone in the buffer, that buffer trimmed to the
    /// packet (`protocol::decode`, module docs). A sliced payload would keep the whole read
    /// buffer alive, uncounted.
    pub fn cost(&self) -> usize {
        self.cost as usize
    }
}

/// Messages are shared, never copied, between subscribers.
pub type SharedMessage = Arc<Message>;

/// What the router stores for one subscription of one session: the options it was made with and
/// its v5 Subscription Identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubEntry {
    /// Subscription options (QoS already capped to what the broker grants).
    pub options: crate::protocol::SubscriptionOptions,
    /// Subscription Identifier, if the SUBSCRIBE carried one.
    pub id: Option<u32>,
}

/// The Subscription Identifiers a delivery carries (v5). Most deliveries carry none or one, so
/// those cases do not allocate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SubIds {
    /// No identifier.
    #[default]
    None,
    /// One identifier.
    One(u32),
    /// Several, from overlapping subscriptions.
    Many(Arc<[u32]>),
}

impl SubIds {
    /// The identifiers as a slice.
    pub fn as_slice(&self) -> &[u32] {
        match self {
            SubIds::None => &[],
            SubIds::One(id) => std::slice::from_ref(id),
            SubIds::Many(ids) => ids,
        }
    }
}

#[cfg(test)]
impl Message {
    /// A field-by-field copy, for tests that derive one message from another.
    pub fn clone_for_test(m: &Message) -> Message {
        Message::new(
            m.topic.clone(),
            m.payload.clone(),
            m.qos,
            m.retain,
            m.properties.clone(),
            m.expires_at,
            m.origin,
        )
    }

    /// A copy with another payload (and the cost that goes with it).
    pub fn with_payload_for_test(m: &Message, payload: Bytes) -> Message {
        Message::new(
            m.topic.clone(),
            payload,
            m.qos,
            m.retain,
            m.properties.clone(),
            m.expires_at,
            m.origin,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(properties: Properties) -> Message {
        let payload = Bytes::from_static(b"12345");
        Message::new(
            "a/b".into(),
            payload,
            QoS::AtMostOnce,
            false,
            properties,
            None,
            None,
        )
    }

    #[test]
    fn cost_counts_topic_payload_and_message_properties() {
        assert_eq!(message(Properties::default()).cost(), 8);
        let mut p = Properties {
            correlation_data: Some(Bytes::from_static(b"cd")),
            content_type: Some("text".into()),
            ..Properties::default()
        };
        assert_eq!(message(p.clone()).cost(), 14);
        // Each user property also counts its in-memory overhead, so 1,000 empty ones are not free.
        p.user_properties = vec![(String::new(), String::new()); 1000];
        assert!(message(p).cost() >= 14 + 1000 * 2 * std::mem::size_of::<String>());
    }

    #[test]
    fn cost_is_what_a_decoded_small_message_holds() {
        use crate::protocol::decode::decode_packet;
        use crate::protocol::encode::encode_packet;
        use crate::protocol::{Packet, ProtocolVersion, Publish};
        // A small PUBLISH at the front of a 1 MiB read buffer, more input behind it.
        let publish = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: true,
            topic: "a/b".into(),
            packet_id: None,
            properties: Properties::default(),
            payload: Bytes::from_static(b"12345"),
        };
        let mut buf = bytes::BytesMut::with_capacity(1 << 20);
        encode_packet(&Packet::Publish(publish), ProtocolVersion::V311, &mut buf);
        buf.extend_from_slice(&[0xC0]);
        let v = Some(ProtocolVersion::V311);
        let Ok(Some(Packet::Publish(p))) = decode_packet(&mut buf, v, u32::MAX) else {
            panic!("expected PUBLISH");
        };
        let m = Message::new(
            p.topic.into_boxed_str(),
            p.payload,
            p.qos,
            p.retain,
            p.properties,
            None,
            None,
        );
        assert_eq!(m.cost(), 8);
        // The payload is the only handle on its allocation: the read buffer is not held.
        assert!(m.payload.is_unique());
        drop(buf);
        assert_eq!(&m.payload[..], b"12345");
    }

    #[test]
    fn stored_cost_fits_in_padding() {
        // The fields other than the four small ones, plus one 8-byte word for origin (12 bytes
        // with its tag: 16), qos, retain and cost together.
        let big = std::mem::size_of::<Box<str>>()
            + std::mem::size_of::<Bytes>()
            + std::mem::size_of::<Properties>()
            + std::mem::size_of::<Option<Instant>>();
        assert!(
            std::mem::size_of::<Message>() <= big + 24,
            "{} > {}",
            std::mem::size_of::<Message>(),
            big + 24
        );
    }
}
