//! CONNECT admission: the rules a CONNECT must pass before a session is looked up or created.
//!
//! Owns: protocol-level checks, client identifier rules per version, will checks, and the CONNACK
//! that refuses a client. Must not touch: the session registry, takeover or authentication (the I/O
//! layer does those after these checks pass).

use crate::config::MqttConfig;
use crate::protocol::{ConnAck, Connect, Packet, Properties, ProtocolVersion, QoS, ReasonCode};

use super::outbuf::OutBuf;

/// MQTT 3.1 limits client identifiers to 23 characters (3.1 section 3.1, "Client Identifier").
pub const V31_MAX_CLIENT_ID: usize = 23;

/// A CONNECT that passed admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The client identifier to use: the client's own, or one the broker assigned.
    pub client_id: String,
    /// True when the broker assigned `client_id` (v5 then returns it in CONNACK).
    pub assigned: bool,
}

/// Why a CONNECT was refused, and whether a CONNACK is owed before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Reason code (v5) or its 3.1.1 return-code equivalent.
    pub reason: ReasonCode,
    /// False when the spec says to just close (a malformed will in 3.1.1).
    pub send_connack: bool,
}

/// Checks a decoded CONNECT against the spec and our config. `assign_id` is called only when the
/// client sent an empty identifier that we accept; it must return a broker-unique identifier.
pub fn admit(
    connect: &Connect,
    cfg: &MqttConfig,
    assign_id: impl FnOnce() -> String,
) -> Result<Admitted, Refusal> {
    let refuse = |reason| {
        Err(Refusal {
            reason,
            send_connack: true,
        })
    };
    if let Some(reason) = cfg.redirect.at_connect() {
        // A drained or retired broker: MQTT 5 clients are pointed elsewhere by write_refusal_to
        // when a reference is configured; 3.1.1 clients just see "server unavailable".
        return refuse(reason);
    }
    let id_len = connect.client_id.chars().count();
    if connect.protocol == ProtocolVersion::V31 && (id_len == 0 || id_len > V31_MAX_CLIENT_ID) {
        return refuse(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    }
    if id_len > cfg.max_client_id_len {
        return refuse(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    }
    if let Some(will) = &connect.will {
        if super::limits::check_topic_name(&will.topic, cfg).is_err() {
            if !connect.protocol.is_v5() {
                return Err(Refusal {
                    reason: ReasonCode::TOPIC_NAME_INVALID,
                    send_connack: false,
                });
            }
            return refuse(ReasonCode::TOPIC_NAME_INVALID);
        }
        if will.qos > cfg.max_qos {
            return refuse(ReasonCode::QOS_NOT_SUPPORTED);
        }
        if will.retain && !cfg.retain_available {
            return refuse(ReasonCode::RETAIN_NOT_SUPPORTED);
        }
        if will.properties.payload_format_indicator == Some(1)
            && std::str::from_utf8(&will.payload).is_err()
        {
            // MQTT 5.0 section 3.1.3.2.3: a will declared UTF-8 that is not.
            return refuse(ReasonCode::PAYLOAD_FORMAT_INVALID);
        }
    }
    let p = &connect.properties;
    if p.authentication_data.is_some() && p.authentication_method.is_none() {
        // MQTT 5.0 section 3.1.2.11.10: Authentication Data without a method is a protocol error.
        return refuse(ReasonCode::PROTOCOL_ERROR);
    }
    if !connect.client_id.is_empty() {
        return Ok(Admitted {
            client_id: connect.client_id.clone(),
            assigned: false,
        });
    }
    // Empty identifier: 3.1.1 allows it only with a clean session [MQTT-3.1.3-7, -8]; 5.0 always
    // allows it and the server assigns one [MQTT-3.1.3-6].
    let allowed = cfg.allow_empty_client_id && (connect.protocol.is_v5() || connect.clean_start);
    if !allowed {
        return refuse(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    }
    Ok(Admitted {
        client_id: assign_id(),
        assigned: true,
    })
}

/// Writes the CONNACK that refuses a client (the caller closes the connection after flushing).
/// [MQTT-3.2.2-6] session present must be 0 with a non-zero return code.
pub fn write_refusal(version: ProtocolVersion, reason: ReasonCode, out: &mut OutBuf) {
    write_refusal_to(version, reason, None, u32::MAX, out);
}

/// [`write_refusal`] with a Server Reference for MQTT 5 clients: sent only with the redirect
/// reasons 0x9C / 0x9D, the only ones it belongs with (MQTT 5.0 section 4.11). `max_packet` is
/// the client's Maximum Packet Size: the reference is left out when it would not fit
/// [MQTT-3.1.2-24] (a bare CONNACK is 5 bytes at most, within any legal maximum).
pub fn write_refusal_to(
    version: ProtocolVersion,
    reason: ReasonCode,
    server_reference: Option<&str>,
    max_packet: u32,
    out: &mut OutBuf,
) {
    let mut ack = ConnAck {
        session_present: false,
        reason,
        properties: Properties::default(),
    };
    if version.is_v5() && is_redirect(reason) {
        ack.properties.server_reference = server_reference.map(str::to_owned);
    }
    out.packet_within(Packet::ConnAck(ack), version, max_packet);
}

/// True for the two reasons that send a client to another server.
pub fn is_redirect(reason: ReasonCode) -> bool {
    reason == ReasonCode::USE_ANOTHER_SERVER || reason == ReasonCode::SERVER_MOVED
}

/// Reads the protocol level byte of a CONNECT at the front of `buf` without decoding it, so a
/// CONNECT with an unsupported level can be refused in the format its sender will understand.
/// Returns `None` when the bytes are not a CONNECT or are too short.
pub fn peek_protocol_level(buf: &[u8]) -> Option<u8> {
    if buf.first()? >> 4 != 1 {
        return None;
    }
    let mut i = 1;
    while buf.get(i)? & 0x80 != 0 {
        i += 1;
        if i > 4 {
            return None;
        }
    }
    let name_len = u16::from_be_bytes([*buf.get(i + 1)?, *buf.get(i + 2)?]) as usize;
    buf.get(i + 3 + name_len).copied()
}

/// The QoS actually granted for a requested one.
pub fn grant_qos(requested: QoS, cfg: &MqttConfig) -> QoS {
    requested.min(cfg.max_qos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::LastWill;
    use bytes::Bytes;

    fn connect(v: ProtocolVersion, id: &str, clean: bool) -> Connect {
        Connect {
            protocol: v,
            clean_start: clean,
            keep_alive: 0,
            client_id: id.into(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }
    }

    fn reason(c: &Connect) -> Option<ReasonCode> {
        admit(c, &MqttConfig::default(), || "assigned".into())
            .err()
            .map(|r| r.reason)
    }

    #[test]
    fn mqtt_3_1_client_ids_are_1_to_23_characters() {
        let v = ProtocolVersion::V31;
        assert_eq!(reason(&connect(v, &"x".repeat(23), true)), None);
        assert_eq!(
            reason(&connect(v, &"x".repeat(24), true)),
            Some(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID)
        );
        assert_eq!(
            reason(&connect(v, "", true)),
            Some(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID)
        );
        assert_eq!(
            reason(&connect(ProtocolVersion::V311, &"x".repeat(24), true)),
            None
        );
    }

    #[test]
    fn mqtt_3_1_3_8_empty_client_id_needs_clean_session_in_3_1_1_and_is_assigned_in_5() {
        assert_eq!(
            reason(&connect(ProtocolVersion::V311, "", false)),
            Some(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID)
        );
        let ok = admit(
            &connect(ProtocolVersion::V311, "", true),
            &MqttConfig::default(),
            || "a1".into(),
        );
        assert_eq!(
            ok.map(|a| (a.client_id, a.assigned)),
            Ok(("a1".to_string(), true))
        );
        let v5 = admit(
            &connect(ProtocolVersion::V5, "", false),
            &MqttConfig::default(),
            || "a2".into(),
        );
        assert_eq!(v5.map(|a| a.assigned), Ok(true));
        let cfg = MqttConfig {
            allow_empty_client_id: false,
            ..MqttConfig::default()
        };
        let refused = admit(&connect(ProtocolVersion::V5, "", true), &cfg, || {
            "a3".into()
        });
        assert_eq!(
            refused.err().map(|r| r.reason),
            Some(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID)
        );
    }

    #[test]
    fn will_checks() {
        let will = |topic: &str, pfi: Option<u8>, payload: &'static [u8]| LastWill {
            topic: topic.into(),
            payload: Bytes::from_static(payload),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties {
                payload_format_indicator: pfi,
                ..Properties::default()
            },
        };
        let mut c = connect(ProtocolVersion::V5, "c", true);
        c.will = Some(will("a/+", None, b""));
        assert_eq!(reason(&c), Some(ReasonCode::TOPIC_NAME_INVALID));
        c.will = Some(will("a", Some(1), &[0xff, 0xfe]));
        assert_eq!(reason(&c), Some(ReasonCode::PAYLOAD_FORMAT_INVALID));
        c.will = Some(will("a", Some(1), "ok".as_bytes()));
        assert_eq!(reason(&c), None);
        // 3.1.1: a bad will topic is a malformed CONNECT: close without CONNACK.
        let mut c3 = connect(ProtocolVersion::V311, "c", true);
        c3.will = Some(will("a/#", None, b""));
        let r = admit(&c3, &MqttConfig::default(), || "x".into()).err();
        assert_eq!(r.map(|r| r.send_connack), Some(false));
    }

    #[test]
    fn mqtt_3_1_2_11_10_authentication_data_without_method_is_a_protocol_error() {
        let mut c = connect(ProtocolVersion::V5, "c", true);
        c.properties.authentication_data = Some(Bytes::from_static(b"x"));
        assert_eq!(reason(&c), Some(ReasonCode::PROTOCOL_ERROR));
        // A method (supported or not) is decided by enhanced_auth, not here.
        c.properties.authentication_method = Some("KERBEROS".into());
        assert_eq!(reason(&c), None);
    }

    #[test]
    fn redirect_refusal_carries_the_server_reference_only_in_v5() {
        let mut cfg = MqttConfig::default();
        cfg.redirect.refuse_connections = true;
        cfg.redirect.server_reference = Some("other:1883".into());
        let c = connect(ProtocolVersion::V5, "c", true);
        let r = admit(&c, &cfg, || "x".into()).unwrap_err().reason;
        assert_eq!(r, ReasonCode::USE_ANOTHER_SERVER);
        let mut out = OutBuf::new();
        write_refusal_to(
            ProtocolVersion::V5,
            r,
            Some("other:1883"),
            u32::MAX,
            &mut out,
        );
        // CONNACK, flags 0, reason 0x9C, properties: Server Reference (0x1C) "other:1883".
        let mut want = vec![0x20, 16, 0, 0x9C, 13, 0x1C, 0, 10];
        want.extend_from_slice(b"other:1883");
        assert_eq!(&out.take_all()[..], &want[..]);
        let mut out = OutBuf::new();
        write_refusal_to(
            ProtocolVersion::V311,
            r,
            Some("other:1883"),
            u32::MAX,
            &mut out,
        );
        assert_eq!(&out.take_all()[..], &[0x20, 2, 0, 3]);
        // Never with a reason that is not a redirect.
        let mut out = OutBuf::new();
        let other = ReasonCode::NOT_AUTHORIZED;
        write_refusal_to(
            ProtocolVersion::V5,
            other,
            Some("other:1883"),
            u32::MAX,
            &mut out,
        );
        assert_eq!(&out.take_all()[..], &[0x20, 3, 0, 0x87, 0]);
    }

    #[test]
    fn peek_protocol_level_reads_the_level_byte() {
        // CONNECT, remaining 12, "MQTT", level 5.
        let bytes = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 0, 0];
        assert_eq!(peek_protocol_level(&bytes), Some(5));
        assert_eq!(peek_protocol_level(&bytes[..5]), None);
        assert_eq!(peek_protocol_level(&[0x30, 0]), None);
    }
}
