//! Decoding errors that carry the reason code to answer with.
//!
//! Owns: [`DecodeError`]. Must not touch: what the session does with it (v5 sends DISCONNECT with
//! `reason`, v3.1.1 just closes).

use std::fmt;

use super::reason::ReasonCode;

/// A packet that cannot be accepted. "Need more bytes" is never an error: the decoder returns
/// `Ok(None)` for that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// Reason code to report: usually `MALFORMED_PACKET` or `PROTOCOL_ERROR`, or a more precise one
    /// (`PACKET_TOO_LARGE`, `TOPIC_NAME_INVALID`, `TOPIC_FILTER_INVALID`, `UNSUPPORTED_PROTOCOL_VERSION`,
    /// `TOPIC_ALIAS_INVALID`, ...).
    pub reason: ReasonCode,
    /// Which rule was broken, for the log and the v5 Reason String.
    pub what: &'static str,
}

impl DecodeError {
    /// Malformed Packet (0x81) with a description of the broken rule.
    pub fn malformed(what: &'static str) -> DecodeError {
        DecodeError {
            reason: ReasonCode::MALFORMED_PACKET,
            what,
        }
    }

    /// Protocol Error (0x82) with a description of the broken rule.
    pub fn protocol(what: &'static str) -> DecodeError {
        DecodeError {
            reason: ReasonCode::PROTOCOL_ERROR,
            what,
        }
    }

    /// Any other reason code.
    pub fn new(reason: ReasonCode, what: &'static str) -> DecodeError {
        DecodeError { reason, what }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.name(), self.what)
    }
}

impl std::error::Error for DecodeError {}
