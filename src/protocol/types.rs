//! Small value types shared by every packet: protocol version and QoS.
//!
//! Owns: the numeric mapping of protocol levels and QoS levels. Must not touch: encoding of whole
//! packets (see `encode`/`decode`) or any I/O.

/// The MQTT protocol level announced in CONNECT.
///
/// MQTT 3.1 uses the protocol name `MQIsdp` and level 3; 3.1.1 uses `MQTT` and level 4; 5.0 uses `MQTT`
/// and level 5. The wire format of 3.1 and 3.1.1 is the same except for CONNECT rules, so most code only
/// asks [`ProtocolVersion::is_v5`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// MQTT 3.1 (`MQIsdp`, level 3).
    V31,
    /// MQTT 3.1.1 (`MQTT`, level 4).
    V311,
    /// MQTT 5.0 (`MQTT`, level 5).
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte sent in CONNECT.
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V31 => 3,
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    /// True for MQTT 5.0, the only version with properties and reason codes everywhere.
    pub fn is_v5(self) -> bool {
        self == ProtocolVersion::V5
    }
}

/// Quality of service of a PUBLISH or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum QoS {
    /// Fire and forget.
    #[default]
    AtMostOnce = 0,
    /// Acknowledged with PUBACK; may be duplicated.
    AtLeastOnce = 1,
    /// Four-way PUBREC/PUBREL/PUBCOMP flow; delivered exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// Parses the two QoS bits; 3 is not a QoS and yields `None` (the caller reports it as malformed).
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    /// The wire value, 0 to 2.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}
