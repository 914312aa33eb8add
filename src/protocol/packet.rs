//! The fifteen MQTT control packets as plain data.
//!
//! Owns: the in-memory shape of every packet for MQTT 3.1, 3.1.1 and 5.0. A field that only exists in
//! 5.0 (properties, most reason codes) is simply empty/`SUCCESS` for older versions. Must not touch:
//! the wire format (`decode`, `encode`) or any rule about when a packet is sent (`session`).

use bytes::Bytes;

use super::properties::Properties;
use super::reason::ReasonCode;
use super::types::{ProtocolVersion, QoS};

/// A control packet, decoded or about to be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Client request to connect (type 1). Boxed: it is large and rare.
    Connect(Box<Connect>),
    /// Connect acknowledgement (type 2).
    ConnAck(ConnAck),
    /// Application message (type 3).
    Publish(Publish),
    /// QoS 1 acknowledgement (type 4).
    PubAck(PubResponse),
    /// QoS 2 part 1 (type 5).
    PubRec(PubResponse),
    /// QoS 2 part 2 (type 6).
    PubRel(PubResponse),
    /// QoS 2 part 3 (type 7).
    PubComp(PubResponse),
    /// Subscribe request (type 8).
    Subscribe(Subscribe),
    /// Subscribe acknowledgement (type 9).
    SubAck(SubAck),
    /// Unsubscribe request (type 10).
    Unsubscribe(Unsubscribe),
    /// Unsubscribe acknowledgement (type 11).
    UnsubAck(UnsubAck),
    /// Ping request (type 12).
    PingReq,
    /// Ping response (type 13).
    PingResp,
    /// Disconnect notification (type 14); in 3.1.1 it has no body.
    Disconnect(Disconnect),
    /// Enhanced authentication exchange (type 15, MQTT 5.0 only).
    Auth(Auth),
}

impl Packet {
    /// The packet type name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect(_) => "DISCONNECT",
            Packet::Auth(_) => "AUTH",
        }
    }
}

/// CONNECT (MQTT 5.0 section 3.1; 3.1.1 section 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Protocol name and level taken together.
    pub protocol: ProtocolVersion,
    /// "Clean Session" in 3.1.1, "Clean Start" in 5.0.
    pub clean_start: bool,
    /// Keep-alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// Client identifier; may be empty (rules differ per version and are the session's business).
    pub client_id: String,
    /// The will message, if the will flag was set.
    pub will: Option<LastWill>,
    /// User name, if the flag was set.
    pub username: Option<String>,
    /// Password, if the flag was set (binary data).
    pub password: Option<Bytes>,
    /// CONNECT properties (5.0 only).
    pub properties: Properties,
}

/// The will message carried in CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Will topic (a topic name: no wildcards).
    pub topic: String,
    /// Will payload.
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will retain flag.
    pub retain: bool,
    /// Will properties (5.0 only): delay interval, expiry, content type, ...
    pub properties: Properties,
}

/// CONNACK. For 3.1.1 `reason` maps to the return code with [`ReasonCode::to_v3_connack`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server resumed an existing session.
    pub session_present: bool,
    /// Connect reason code (5.0) or return code (3.1.1, via the mapping).
    pub reason: ReasonCode,
    /// CONNACK properties (5.0 only).
    pub properties: Properties,
}

/// PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag: this may be a re-delivery.
    pub dup: bool,
    /// QoS of this transmission.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name; may be empty in 5.0 when a topic alias stands for it.
    pub topic: String,
    /// Packet identifier: `Some` exactly when `qos` is 1 or 2.
    pub packet_id: Option<u16>,
    /// PUBLISH properties (5.0 only).
    pub properties: Properties,
    /// Application payload, shared with the read buffer it was decoded from.
    pub payload: Bytes,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubResponse {
    /// Packet identifier of the PUBLISH being acknowledged.
    pub packet_id: u16,
    /// Reason code (5.0; always `SUCCESS` in 3.1.1).
    pub reason: ReasonCode,
    /// Properties (5.0 only): reason string, user properties.
    pub properties: Properties,
}

impl PubResponse {
    /// A successful response without properties, the common case.
    pub fn ok(packet_id: u16) -> PubResponse {
        PubResponse {
            packet_id,
            reason: ReasonCode::SUCCESS,
            properties: Properties::default(),
        }
    }
}

/// Retain Handling option of a subscription (MQTT 5.0 section 3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe,
    /// 1: send retained messages only if the subscription did not already exist.
    SendIfNew,
    /// 2: never send retained messages for this subscribe.
    DoNotSend,
}

/// Options byte of one SUBSCRIBE entry. In 3.1.1 only `qos` is meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS the subscriber wants.
    pub qos: QoS,
    /// Do not deliver messages this same client published (5.0).
    pub no_local: bool,
    /// Keep the RETAIN flag of forwarded messages as published (5.0).
    pub retain_as_published: bool,
    /// When to send retained messages (5.0).
    pub retain_handling: RetainHandling,
}

/// SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Non-zero packet identifier.
    pub packet_id: u16,
    /// At least one (filter, options) pair, in order.
    pub filters: Vec<(String, SubscriptionOptions)>,
    /// Properties (5.0): subscription identifier, user properties.
    pub properties: Properties,
}

/// SUBACK: one reason code per filter of the SUBSCRIBE, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Packet identifier of the SUBSCRIBE.
    pub packet_id: u16,
    /// Granted QoS (0x00-0x02) or a failure code; 3.1.1 maps failures to 0x80.
    pub reasons: Vec<ReasonCode>,
    /// Properties (5.0 only).
    pub properties: Properties,
}

/// UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Non-zero packet identifier.
    pub packet_id: u16,
    /// At least one topic filter.
    pub filters: Vec<String>,
    /// Properties (5.0 only): user properties.
    pub properties: Properties,
}

/// UNSUBACK. In 3.1.1 it carries no reason codes (`reasons` is empty and not encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet identifier of the UNSUBSCRIBE.
    pub packet_id: u16,
    /// One reason per filter (5.0 only).
    pub reasons: Vec<ReasonCode>,
    /// Properties (5.0 only).
    pub properties: Properties,
}

/// DISCONNECT. In 3.1.1 it has no body: `reason` is `SUCCESS` and properties are empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// Disconnect reason code.
    pub reason: ReasonCode,
    /// Properties (5.0): session expiry interval, reason string, server reference, user properties.
    pub properties: Properties,
}

impl Default for ReasonCode {
    fn default() -> Self {
        ReasonCode::SUCCESS
    }
}

/// AUTH (5.0 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// 0x00 success, 0x18 continue authentication, 0x19 re-authenticate.
    pub reason: ReasonCode,
    /// Properties: authentication method and data, reason string, user properties.
    pub properties: Properties,
}
