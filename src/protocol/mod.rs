//! Sans-IO MQTT codec for MQTT 3.1 (`MQIsdp`, level 3), 3.1.1 (level 4) and 5.0 (level 5).
//!
//! Owns: packet types, properties, reason codes, the decoder (bytes in, packets or precise errors out)
//! and the encoder (packets in, bytes out), plus topic name/filter validation and matching.
//! Must not touch: sockets, threads, channels, clocks, or any session rule (who may send what when).

pub mod decode;
pub mod encode;
pub mod error;
pub mod packet;
pub mod properties;
pub mod publish_header;
pub mod reason;
pub mod topic;
pub mod types;
pub mod wire;

pub use error::DecodeError;
pub use packet::*;
pub use properties::Properties;
pub use reason::ReasonCode;
pub use types::{ProtocolVersion, QoS};
