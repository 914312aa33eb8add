//! MQTT 5.0 properties (OASIS MQTT 5.0 section 2.2.2) as one plain struct.
//!
//! Owns: the in-memory shape of a property set and the identifier of each property. Must not touch:
//! the wire format (see `decode`/`encode`), which also enforces which properties each packet may carry.
//!
//! One struct with an `Option` per property (rather than a `Vec` of enum values) makes duplicates
//! impossible to represent after decoding and keeps reads cheap; user properties and subscription
//! identifiers are the only properties allowed more than once, so they are `Vec`s. An empty set costs
//! no heap allocation.

use bytes::Bytes;

/// Property identifiers (MQTT 5.0 section 2.2.2.2).
#[allow(missing_docs)]
pub mod id {
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// A decoded MQTT 5.0 property set. Every field is `None`/empty when absent. For MQTT 3.1.1 packets
/// the set is always empty and is neither read nor written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// 0x01: 0 = unspecified bytes, 1 = UTF-8 payload.
    pub payload_format_indicator: Option<u8>,
    /// 0x02: seconds until the message expires.
    pub message_expiry_interval: Option<u32>,
    /// 0x03: MIME-like description of the payload.
    pub content_type: Option<String>,
    /// 0x08: topic name for a response (request/response pattern).
    pub response_topic: Option<String>,
    /// 0x09: opaque data echoed in a response.
    pub correlation_data: Option<Bytes>,
    /// 0x0B: subscription identifiers; SUBSCRIBE carries at most one, PUBLISH to a client may carry
    /// several. Value 0 is a protocol error.
    pub subscription_identifiers: Vec<u32>,
    /// 0x11: seconds the session outlives the network connection (0xFFFF_FFFF = never expires).
    pub session_expiry_interval: Option<u32>,
    /// 0x12: client identifier the server assigned (CONNACK).
    pub assigned_client_identifier: Option<String>,
    /// 0x13: keep-alive the server imposes (CONNACK).
    pub server_keep_alive: Option<u16>,
    /// 0x15: enhanced authentication method name.
    pub authentication_method: Option<String>,
    /// 0x16: enhanced authentication data.
    pub authentication_data: Option<Bytes>,
    /// 0x17: 0 asks the server to leave out reason strings and user properties on most packets.
    pub request_problem_information: Option<u8>,
    /// 0x18: seconds to wait before publishing the will.
    pub will_delay_interval: Option<u32>,
    /// 0x19: 1 asks the server for Response Information in CONNACK.
    pub request_response_information: Option<u8>,
    /// 0x1A: basis for response topics (CONNACK).
    pub response_information: Option<String>,
    /// 0x1C: another server to use (CONNACK, DISCONNECT).
    pub server_reference: Option<String>,
    /// 0x1F: human-readable diagnostic text.
    pub reason_string: Option<String>,
    /// 0x21: how many unacknowledged QoS 1/2 PUBLISH the sender of this property accepts. 0 is a
    /// protocol error.
    pub receive_maximum: Option<u16>,
    /// 0x22: highest topic alias the sender of this property accepts.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23: topic alias of a PUBLISH. 0 is a protocol error.
    pub topic_alias: Option<u16>,
    /// 0x24: highest QoS the server supports (CONNACK; 0 or 1 only).
    pub maximum_qos: Option<u8>,
    /// 0x25: whether the server supports retained messages (CONNACK).
    pub retain_available: Option<u8>,
    /// 0x26: name/value pairs, order preserved, duplicates allowed.
    pub user_properties: Vec<(String, String)>,
    /// 0x27: largest packet the sender of this property accepts. 0 is a protocol error.
    pub maximum_packet_size: Option<u32>,
    /// 0x28: whether wildcard subscriptions are supported (CONNACK).
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29: whether subscription identifiers are supported (CONNACK).
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A: whether shared subscriptions are supported (CONNACK).
    pub shared_subscription_available: Option<u8>,
}

impl Properties {
    /// True when no property is set, i.e. the encoded property length is 0.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }

    /// Memory the variable-length values of a message take (content type, response topic,
    /// correlation data, user properties): what storing the message costs beyond its topic and
    /// payload, counted against queue and retained-store limits. A user property is counted with
    /// its two `String` headers and two small heap blocks, so thousands of tiny properties are not
    /// counted as a few bytes. No allocation; one pass over the user properties.
    pub fn message_bytes(&self) -> usize {
        const USER_PROPERTY_OVERHEAD: usize = 2 * std::mem::size_of::<String>() + 2 * 16;
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let user: usize = self
            .user_properties
            .iter()
            .map(|(k, v)| USER_PROPERTY_OVERHEAD + k.len() + v.len())
            .sum();
        text(&self.content_type)
            + text(&self.response_topic)
            + self.correlation_data.as_ref().map_or(0, |d| d.len())
            + user
    }
}
