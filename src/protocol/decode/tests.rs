//! Decoder unit tests: one test per validation rule, each checking the exact reason code, plus
//! framing (need-more-bytes, size limit, back-to-back packets, zero copy).
//!
//! Owns: hand-built malformed inputs. Must not touch: the round-trip generator
//! (`roundtrip_tests`) or the byte-exact fixtures (`tests/codec_fixtures.rs`).

use bytes::{Bytes, BytesMut};

use super::*;
use crate::protocol::encode::encode_packet;
use crate::protocol::packet::{LastWill, RetainHandling};

const MAX: u32 = 1 << 20;
const V5: Option<ProtocolVersion> = Some(ProtocolVersion::V5);
const V311: Option<ProtocolVersion> = Some(ProtocolVersion::V311);
const V31: Option<ProtocolVersion> = Some(ProtocolVersion::V31);

fn decode(bytes: &[u8], v: Option<ProtocolVersion>) -> Result<Option<Packet>, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    decode_packet(&mut buf, v, MAX)
}

fn ok(bytes: &[u8], v: Option<ProtocolVersion>) -> Packet {
    match decode(bytes, v) {
        Ok(Some(p)) => p,
        other => panic!("expected a packet from {bytes:02x?}, got {other:?}"),
    }
}

fn reason(bytes: &[u8], v: Option<ProtocolVersion>) -> ReasonCode {
    match decode(bytes, v) {
        Err(e) => e.reason,
        other => panic!("expected an error from {bytes:02x?}, got {other:?}"),
    }
}

/// A packet from its first byte and body, with the Remaining Length computed.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.extend_from_slice(&[first]);
    wire::write_varint(body.len() as u32, &mut out);
    out.extend_from_slice(body);
    out.to_vec()
}

/// A UTF-8 string / binary field.
fn s(text: &[u8]) -> Vec<u8> {
    let mut out = (text.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(text);
    out
}

const MALFORMED: ReasonCode = ReasonCode::MALFORMED_PACKET;
const PROTOCOL: ReasonCode = ReasonCode::PROTOCOL_ERROR;

// ---- fixed header ----------------------------------------------------------------------------

#[test]
fn reserved_fixed_header_flags_are_malformed() {
    let wrong: [u8; 14] = [
        0x21, 0x41, 0x51, 0x60, 0x63, 0x71, 0x80, 0x83, 0x91, 0xA0, 0xB1, 0xC1, 0xD8, 0xE2,
    ];
    for first in wrong {
        for v in [V311, V5] {
            assert_eq!(
                reason(&[first, 0x00], v),
                MALFORMED,
                "first byte {first:#04x}"
            );
        }
    }
    assert_eq!(reason(&[0xF1, 0x00], V5), MALFORMED);
    assert_eq!(reason(&[0x12, 0x00], None), MALFORMED);
}

#[test]
fn packet_type_zero_is_malformed() {
    assert_eq!(reason(&[0x00, 0x00], V5), MALFORMED);
    assert_eq!(reason(&[0x00, 0x00], None), MALFORMED);
}

#[test]
fn auth_before_v5_is_malformed() {
    assert_eq!(reason(&[0xF0, 0x00], V311), MALFORMED);
    assert_eq!(reason(&[0xF0, 0x00], V31), MALFORMED);
    assert_eq!(
        ok(&[0xF0, 0x00], V5),
        Packet::Auth(Auth {
            reason: ReasonCode::SUCCESS,
            properties: Properties::default()
        })
    );
}

#[test]
fn first_packet_must_be_connect() {
    let e = decode(&[0xC0, 0x00], None).unwrap_err();
    assert_eq!(e.reason, PROTOCOL);
    assert_eq!(e.what, "first packet must be CONNECT");
    assert_eq!(reason(&[0x30, 0x03, 0, 1, b'a'], None), PROTOCOL);
}

#[test]
fn remaining_length_over_four_bytes_is_malformed() {
    assert_eq!(reason(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], V5), MALFORMED);
    assert_eq!(reason(&[0x30, 0x80, 0x80, 0x80, 0x80], V5), MALFORMED);
}

#[test]
fn packet_too_large_is_detected_from_the_fixed_header_alone() {
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0x7F][..]); // 16,383 bytes announced, none present
    let e = decode_packet(&mut buf, V5, 1000).unwrap_err();
    assert_eq!(e.reason, ReasonCode::PACKET_TOO_LARGE);
    // The limit counts the fixed header: 2 + 98 = 100 is fine with a limit of 100, 101 is not.
    assert_eq!(
        peek_fixed_header(&[0x30, 98], 100)
            .unwrap()
            .map(|h| h.total_len()),
        Some(100)
    );
    let e = peek_fixed_header(&[0x30, 99], 100).unwrap_err();
    assert_eq!(e.reason, ReasonCode::PACKET_TOO_LARGE);
}

#[test]
fn peek_reports_header_fields() {
    assert_eq!(peek_fixed_header(&[], MAX), Ok(None));
    assert_eq!(peek_fixed_header(&[0x30], MAX), Ok(None));
    assert_eq!(peek_fixed_header(&[0x30, 0x80], MAX), Ok(None));
    let h = peek_fixed_header(&[0x32, 0x80, 0x01, 0xAA], MAX)
        .unwrap()
        .unwrap();
    assert_eq!(
        h,
        FixedHeader {
            first_byte: 0x32,
            remaining_len: 128,
            header_len: 3
        }
    );
}

/// A mix of small valid packets, used for the prefix and back-to-back tests.
fn sample_packets() -> Vec<(Packet, ProtocolVersion)> {
    let publish = Publish {
        dup: true,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: "a/b".into(),
        packet_id: Some(7),
        properties: Properties {
            message_expiry_interval: Some(9),
            ..Properties::default()
        },
        payload: Bytes::from_static(b"hello"),
    };
    let connect = Connect {
        protocol: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 30,
        client_id: "c".into(),
        will: Some(LastWill {
            topic: "w".into(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::ExactlyOnce,
            retain: false,
            properties: Properties {
                will_delay_interval: Some(5),
                ..Properties::default()
            },
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
        properties: Properties {
            receive_maximum: Some(10),
            ..Properties::default()
        },
    };
    vec![
        (Packet::Connect(Box::new(connect)), ProtocolVersion::V5),
        (Packet::Publish(publish.clone()), ProtocolVersion::V5),
        (
            Packet::Publish(Publish {
                properties: Properties::default(),
                ..publish
            }),
            ProtocolVersion::V311,
        ),
        (Packet::PubRel(PubResponse::ok(3)), ProtocolVersion::V5),
        (Packet::PingReq, ProtocolVersion::V311),
        (
            Packet::Disconnect(Disconnect::default()),
            ProtocolVersion::V5,
        ),
    ]
}

#[test]
fn every_prefix_of_a_valid_packet_needs_more_bytes() {
    for (packet, v) in sample_packets() {
        let mut full = BytesMut::new();
        encode_packet(&packet, v, &mut full);
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert_eq!(
                decode_packet(&mut buf, Some(v), MAX),
                Ok(None),
                "{} cut at {cut}",
                packet.name()
            );
            assert_eq!(buf.len(), cut, "a partial packet must stay in the buffer");
        }
        let mut buf = full.clone();
        assert_eq!(decode_packet(&mut buf, Some(v), MAX), Ok(Some(packet)));
        assert!(buf.is_empty());
    }
}

#[test]
fn back_to_back_packets_decode_one_at_a_time() {
    let mut buf = BytesMut::new();
    let packets: Vec<Packet> = sample_packets()
        .into_iter()
        .filter(|(_, v)| v.is_v5())
        .map(|(p, _)| p)
        .collect();
    for p in &packets {
        encode_packet(p, ProtocolVersion::V5, &mut buf);
    }
    buf.extend_from_slice(&[0xC0]); // start of a next packet
    for p in &packets {
        assert_eq!(
            decode_packet(&mut buf, V5, MAX).as_ref(),
            Ok(&Some(p.clone()))
        );
    }
    assert_eq!(decode_packet(&mut buf, V5, MAX), Ok(None));
    assert_eq!(&buf[..], &[0xC0]);
}

#[test]
fn small_decoded_payload_does_not_pin_the_read_buffer() {
    // A 1 MiB read buffer holding a small PUBLISH and the start of the next packet.
    let bytes = frame(0x30, &[s(b"t"), b"payload".to_vec()].concat());
    let mut buf = BytesMut::with_capacity(1 << 20);
    buf.extend_from_slice(&bytes);
    buf.extend_from_slice(&[0xC0]);
    let capacity = buf.capacity();
    let Ok(Some(Packet::Publish(p))) = decode_packet(&mut buf, V311, MAX) else {
        panic!("expected PUBLISH");
    };
    assert_eq!(&p.payload[..], b"payload");
    // The payload is its own allocation, held by nobody else...
    assert!(p.payload.is_unique(), "payload shares an allocation");
    // ...and the read buffer is still owned by the connection alone: its consumed front can be
    // reused in place, which a buffer shared with a decoded message cannot.
    assert_eq!(&buf[..], &[0xC0]);
    assert!(buf.try_reclaim(capacity - 1), "read buffer is shared");
    drop(p);
}

#[test]
fn large_packet_alone_in_the_buffer_is_taken_over_without_a_copy() {
    let payload = vec![7u8; SHARE_MIN];
    let bytes = frame(0x30, &[s(b"t"), payload.clone()].concat());
    let mut buf = BytesMut::from(&bytes[..]);
    let base = buf.as_ptr() as usize;
    let header = bytes.len() - payload.len() - 3;
    let Ok(Some(Packet::Publish(p))) = decode_packet(&mut buf, V311, MAX) else {
        panic!("expected PUBLISH");
    };
    assert!(buf.is_empty());
    assert_eq!(p.payload.len(), SHARE_MIN);
    assert_eq!(
        p.payload.as_ptr() as usize,
        base + header + 3,
        "payload must not be copied"
    );
    // Nothing but the payload holds the (packet-sized) allocation.
    assert!(p.payload.is_unique());
}

#[test]
fn large_packet_followed_by_more_bytes_is_copied() {
    let payload = vec![7u8; SHARE_MIN];
    let bytes = frame(0x30, &[s(b"t"), payload].concat());
    let mut buf = BytesMut::from(&bytes[..]);
    buf.extend_from_slice(&[0xC0, 0x00]);
    let Ok(Some(Packet::Publish(p))) = decode_packet(&mut buf, V311, MAX) else {
        panic!("expected PUBLISH");
    };
    assert!(p.payload.is_unique());
    assert_eq!(p.payload.len(), SHARE_MIN);
    assert_eq!(
        decode_packet(&mut buf, V311, MAX),
        Ok(Some(Packet::PingReq))
    );
}

#[test]
fn trailing_bytes_are_malformed() {
    assert_eq!(reason(&[0xC0, 0x01, 0x00], V311), MALFORMED);
    assert_eq!(reason(&[0xD0, 0x01, 0x00], V5), MALFORMED);
    assert_eq!(reason(&[0x40, 0x03, 0x00, 0x01, 0x00], V311), MALFORMED);
    assert_eq!(reason(&[0xE0, 0x01, 0x00], V311), MALFORMED);
    assert_eq!(reason(&[0xB0, 0x03, 0x00, 0x01, 0x00], V311), MALFORMED);
    assert_eq!(reason(&[0x20, 0x03, 0x00, 0x00, 0x00], V311), MALFORMED);
    let mut connect = connect_body(b"MQTT", 4, 0x02, &[]);
    connect.push(0);
    assert_eq!(reason(&frame(0x10, &connect), None), MALFORMED);
}

#[test]
fn truncation_inside_the_body_is_malformed() {
    // String length says 5, only 1 byte follows before the packet ends.
    assert_eq!(reason(&frame(0x30, &[0, 5, b'a']), V311), MALFORMED);
    // QoS 1 PUBLISH without room for the packet identifier.
    assert_eq!(reason(&frame(0x32, &s(b"t")), V311), MALFORMED);
    // SUBSCRIBE filter without its options byte.
    assert_eq!(
        reason(&frame(0x82, &[&[0, 1][..], &s(b"a")].concat()), V311),
        MALFORMED
    );
    // PUBACK with a 1-byte body.
    assert_eq!(reason(&[0x40, 0x01, 0x00], V5), MALFORMED);
    // v5 CONNACK without its property length.
    assert_eq!(reason(&[0x20, 0x02, 0x00, 0x00], V5), MALFORMED);
}

// ---- CONNECT ---------------------------------------------------------------------------------

/// CONNECT body: name, level, flags, keep-alive 60, (v5: empty properties), then `payload`
/// (client id "c" is prepended).
fn connect_body(name: &[u8], level: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = s(name);
    body.extend_from_slice(&[level, flags, 0, 60]);
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(&s(b"c"));
    body.extend_from_slice(payload);
    body
}

fn connect_reason(name: &[u8], level: u8, flags: u8, payload: &[u8]) -> ReasonCode {
    reason(
        &frame(0x10, &connect_body(name, level, flags, payload)),
        None,
    )
}

fn connect_ok(name: &[u8], level: u8, flags: u8, payload: &[u8]) -> Connect {
    match ok(
        &frame(0x10, &connect_body(name, level, flags, payload)),
        None,
    ) {
        Packet::Connect(c) => *c,
        other => panic!("expected CONNECT, got {other:?}"),
    }
}

#[test]
fn connect_protocol_name_and_level_select_the_version() {
    assert_eq!(
        connect_ok(b"MQTT", 4, 0x02, &[]).protocol,
        ProtocolVersion::V311
    );
    assert_eq!(
        connect_ok(b"MQTT", 5, 0x02, &[]).protocol,
        ProtocolVersion::V5
    );
    assert_eq!(
        connect_ok(b"MQIsdp", 3, 0x02, &[]).protocol,
        ProtocolVersion::V31
    );
}

#[test]
fn connect_wrong_level_is_unsupported_protocol_version() {
    let unsupported = ReasonCode::UNSUPPORTED_PROTOCOL_VERSION;
    assert_eq!(connect_reason(b"MQTT", 3, 0x02, &[]), unsupported);
    assert_eq!(connect_reason(b"MQTT", 6, 0x02, &[]), unsupported);
    assert_eq!(connect_reason(b"MQIsdp", 4, 0x02, &[]), unsupported);
}

#[test]
fn connect_unknown_protocol_name_is_malformed() {
    assert_eq!(connect_reason(b"MQTX", 4, 0x02, &[]), MALFORMED);
    assert_eq!(connect_reason(b"mqtt", 4, 0x02, &[]), MALFORMED);
}

#[test]
fn connect_is_decoded_whatever_the_current_version() {
    let bytes = frame(0x10, &connect_body(b"MQTT", 4, 0x02, &[]));
    for v in [None, V31, V311, V5] {
        assert!(matches!(ok(&bytes, v), Packet::Connect(c) if c.protocol == ProtocolVersion::V311));
    }
}

#[test]
fn connect_reserved_flag_is_malformed() {
    assert_eq!(connect_reason(b"MQTT", 4, 0x03, &[]), MALFORMED);
    assert_eq!(connect_reason(b"MQTT", 5, 0x01, &[]), MALFORMED);
}

#[test]
fn connect_will_qos_3_is_malformed() {
    let will = [s(b"w"), s(b"x")].concat();
    assert_eq!(connect_reason(b"MQTT", 4, 0x04 | 0x18, &will), MALFORMED);
}

#[test]
fn connect_will_qos_or_retain_without_will_flag_is_malformed() {
    assert_eq!(connect_reason(b"MQTT", 4, 0x08, &[]), MALFORMED);
    assert_eq!(connect_reason(b"MQTT", 4, 0x10, &[]), MALFORMED);
    assert_eq!(connect_reason(b"MQTT", 4, 0x20, &[]), MALFORMED);
}

#[test]
fn connect_password_without_user_name_is_malformed_before_v5_only() {
    let password = s(b"pw");
    assert_eq!(connect_reason(b"MQTT", 4, 0x40, &password), MALFORMED);
    assert_eq!(connect_reason(b"MQIsdp", 3, 0x40, &password), MALFORMED);
    let c = connect_ok(b"MQTT", 5, 0x40, &password);
    assert_eq!(
        (c.username, c.password),
        (None, Some(Bytes::from_static(b"pw")))
    );
}

#[test]
fn connect_will_fields_and_v5_will_properties() {
    // Will properties: Will Delay Interval 10, Payload Format Indicator 1.
    let will = [
        &[7, 0x18, 0, 0, 0, 10, 0x01, 1][..],
        &s(b"w/t"),
        &s(b"gone"),
    ]
    .concat();
    let c = connect_ok(b"MQTT", 5, 0x04 | 0x10 | 0x20, &will);
    let w = c.will.expect("will");
    assert_eq!(
        (w.topic.as_str(), &w.payload[..], w.qos, w.retain),
        ("w/t", &b"gone"[..], QoS::ExactlyOnce, true)
    );
    assert_eq!(w.properties.will_delay_interval, Some(10));
    assert_eq!(w.properties.payload_format_indicator, Some(1));
    // Session Expiry Interval belongs to CONNECT, not to the will: an identifier not valid there
    // is Malformed (MQTT 5.0 section 2.2.2.2).
    let bad = [&[5, 0x11, 0, 0, 0, 10][..], &s(b"w"), &s(b"x")].concat();
    assert_eq!(connect_reason(b"MQTT", 5, 0x04, &bad), MALFORMED);
}

#[test]
fn connect_client_id_must_be_valid_utf8_without_nul() {
    let mut body = s(b"MQTT");
    body.extend_from_slice(&[4, 0x02, 0, 60]);
    let nul = [&body[..], &s(b"a\0b")].concat();
    assert_eq!(reason(&frame(0x10, &nul), None), MALFORMED);
    let invalid = [&body[..], &s(&[0xFF, 0xFE])].concat();
    assert_eq!(reason(&frame(0x10, &invalid), None), MALFORMED);
    let controls = [&body[..], &s("\u{1}\u{7f}\u{9f}".as_bytes())].concat();
    assert!(
        matches!(ok(&frame(0x10, &controls), None), Packet::Connect(c) if c.client_id == "\u{1}\u{7f}\u{9f}")
    );
}

#[test]
fn connect_v5_property_rules_apply() {
    let mut body = s(b"MQTT");
    body.extend_from_slice(&[5, 0x02, 0, 60, 3, 0x21, 0, 0]); // Receive Maximum 0
    body.extend_from_slice(&s(b"c"));
    assert_eq!(reason(&frame(0x10, &body), None), PROTOCOL);
}

// ---- PUBLISH ---------------------------------------------------------------------------------

#[test]
fn publish_qos_3_is_malformed() {
    assert_eq!(
        reason(&frame(0x36, &[s(b"t"), vec![0, 1]].concat()), V311),
        MALFORMED
    );
}

#[test]
fn publish_dup_on_qos_0_is_malformed() {
    assert_eq!(reason(&frame(0x38, &s(b"t")), V311), MALFORMED);
}

#[test]
fn publish_packet_id_0_is_malformed() {
    assert_eq!(
        reason(&frame(0x32, &[s(b"t"), vec![0, 0]].concat()), V311),
        MALFORMED
    );
    assert_eq!(
        reason(&frame(0x34, &[s(b"t"), vec![0, 0, 0]].concat()), V5),
        MALFORMED
    );
}

#[test]
fn publish_wildcard_topic_is_topic_name_invalid() {
    for topic in [&b"a/+"[..], b"#", b"a/#/b", b"a+"] {
        assert_eq!(
            reason(&frame(0x30, &s(topic)), V311),
            ReasonCode::TOPIC_NAME_INVALID
        );
        assert_eq!(
            reason(&frame(0x30, &[s(topic), vec![0]].concat()), V5),
            ReasonCode::TOPIC_NAME_INVALID
        );
    }
}

#[test]
fn publish_topic_with_nul_is_malformed() {
    assert_eq!(reason(&frame(0x30, &s(b"a\0")), V311), MALFORMED);
}

#[test]
fn publish_empty_topic_rules() {
    assert_eq!(reason(&frame(0x30, &s(b"")), V311), PROTOCOL);
    assert_eq!(
        reason(&frame(0x30, &[s(b""), vec![0]].concat()), V5),
        PROTOCOL
    );
    // v5 with a Topic Alias: allowed.
    let p = ok(
        &frame(0x30, &[s(b""), vec![3, 0x23, 0, 4], b"x".to_vec()].concat()),
        V5,
    );
    assert!(
        matches!(p, Packet::Publish(p) if p.topic.is_empty() && p.properties.topic_alias == Some(4))
    );
}

#[test]
fn publish_topic_alias_0_is_topic_alias_invalid() {
    let bytes = frame(0x30, &[s(b"t"), vec![3, 0x23, 0, 0]].concat());
    assert_eq!(reason(&bytes, V5), ReasonCode::TOPIC_ALIAS_INVALID);
}

#[test]
fn publish_payload_is_the_rest_of_the_body() {
    let p = ok(
        &frame(
            0x3B,
            &[s(b"t"), vec![0, 9], b"\0\xFFdata".to_vec()].concat(),
        ),
        V311,
    );
    let expected = Publish {
        dup: true,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: "t".into(),
        packet_id: Some(9),
        properties: Properties::default(),
        payload: Bytes::from_static(b"\0\xFFdata"),
    };
    assert_eq!(p, Packet::Publish(expected));
}

#[test]
fn publish_property_errors() {
    // Property length beyond the body.
    assert_eq!(
        reason(&frame(0x30, &[s(b"t"), vec![9, 0x01]].concat()), V5),
        MALFORMED
    );
    // Unknown property identifier.
    assert_eq!(
        reason(&frame(0x30, &[s(b"t"), vec![2, 0x05, 0]].concat()), V5),
        MALFORMED
    );
    // Property not allowed on PUBLISH (Session Expiry Interval): Malformed, MQTT 5.0 2.2.2.2.
    assert_eq!(
        reason(
            &frame(0x30, &[s(b"t"), vec![5, 0x11, 0, 0, 0, 1]].concat()),
            V5
        ),
        MALFORMED
    );
    // Duplicate Content Type.
    let dup = [s(b"t"), vec![8, 0x03], s(b"a"), vec![0x03], s(b"b")].concat();
    assert_eq!(reason(&frame(0x30, &dup), V5), PROTOCOL);
}

// ---- SUBSCRIBE / UNSUBSCRIBE -----------------------------------------------------------------

fn subscribe(v5: bool, packet_id: u16, entries: &[(&[u8], u8)]) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    if v5 {
        body.push(0);
    }
    for (filter, options) in entries {
        body.extend_from_slice(&s(filter));
        body.push(*options);
    }
    frame(0x82, &body)
}

#[test]
fn subscribe_packet_id_0_is_malformed() {
    assert_eq!(reason(&subscribe(false, 0, &[(b"a", 0)]), V311), MALFORMED);
    assert_eq!(reason(&subscribe(true, 0, &[(b"a", 0)]), V5), MALFORMED);
}

#[test]
fn subscribe_without_filters() {
    assert_eq!(reason(&subscribe(false, 1, &[]), V311), MALFORMED);
    assert_eq!(reason(&subscribe(true, 1, &[]), V5), PROTOCOL);
}

#[test]
fn subscribe_options_qos_3() {
    assert_eq!(reason(&subscribe(false, 1, &[(b"a", 3)]), V311), MALFORMED);
    assert_eq!(reason(&subscribe(true, 1, &[(b"a", 3)]), V5), PROTOCOL);
}

#[test]
fn subscribe_options_reserved_bits_are_malformed() {
    assert_eq!(reason(&subscribe(true, 1, &[(b"a", 0x40)]), V5), MALFORMED);
    assert_eq!(reason(&subscribe(true, 1, &[(b"a", 0x80)]), V5), MALFORMED);
    for bit in 2..8 {
        assert_eq!(
            reason(&subscribe(false, 1, &[(b"a", 1 << bit)]), V311),
            MALFORMED,
            "bit {bit}"
        );
    }
}

#[test]
fn subscribe_retain_handling_3_is_protocol_error() {
    assert_eq!(reason(&subscribe(true, 1, &[(b"a", 0x30)]), V5), PROTOCOL);
}

#[test]
fn subscribe_options_and_filters_decode() {
    let p = ok(&subscribe(true, 5, &[(b"a/+", 0x2E), (b"#", 0x11)]), V5);
    let Packet::Subscribe(sub) = p else {
        panic!("expected SUBSCRIBE")
    };
    assert_eq!(sub.packet_id, 5);
    let first = SubscriptionOptions {
        qos: QoS::ExactlyOnce,
        no_local: true,
        retain_as_published: true,
        retain_handling: RetainHandling::DoNotSend,
    };
    let second = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        retain_handling: RetainHandling::SendIfNew,
        ..Default::default()
    };
    assert_eq!(
        sub.filters,
        [("a/+".to_owned(), first), ("#".to_owned(), second)]
    );
}

#[test]
fn subscribe_filter_syntax_is_left_to_the_session() {
    // Wildcards in odd places and an empty filter decode; topic.rs judges them per entry.
    let p = ok(
        &subscribe(false, 1, &[(b"a/#/b", 0), (b"", 1), (b"x+", 2)]),
        V311,
    );
    assert!(matches!(p, Packet::Subscribe(s) if s.filters.len() == 3));
    // But the UTF-8 rules still apply.
    assert_eq!(
        reason(&subscribe(false, 1, &[(b"a\0", 0)]), V311),
        MALFORMED
    );
}

#[test]
fn subscribe_subscription_identifier_rules() {
    let with_props = |props: &[u8]| frame(0x82, &[&[0, 1][..], props, &s(b"a"), &[0]].concat());
    assert_eq!(reason(&with_props(&[2, 0x0B, 0]), V5), PROTOCOL);
    assert_eq!(reason(&with_props(&[4, 0x0B, 1, 0x0B, 2]), V5), PROTOCOL);
    let p = ok(&with_props(&[3, 0x0B, 0x80, 0x01]), V5);
    assert!(matches!(p, Packet::Subscribe(s) if s.properties.subscription_identifiers == [128]));
}

fn unsubscribe(v5: bool, packet_id: u16, filters: &[&[u8]]) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    if v5 {
        body.push(0);
    }
    for filter in filters {
        body.extend_from_slice(&s(filter));
    }
    frame(0xA2, &body)
}

#[test]
fn unsubscribe_rules() {
    assert_eq!(reason(&unsubscribe(false, 0, &[b"a"]), V311), MALFORMED);
    assert_eq!(reason(&unsubscribe(false, 1, &[]), V311), MALFORMED);
    assert_eq!(reason(&unsubscribe(true, 1, &[]), V5), PROTOCOL);
    assert_eq!(reason(&unsubscribe(true, 1, &[b"\xC0\x80"]), V5), MALFORMED);
    let p = ok(&unsubscribe(true, 2, &[b"a/#", b"b"]), V5);
    assert!(matches!(p, Packet::Unsubscribe(u) if u.filters == ["a/#", "b"] && u.packet_id == 2));
}

// ---- acknowledgements ------------------------------------------------------------------------

#[test]
fn pub_responses_short_forms_in_v5() {
    for first in [0x40, 0x50, 0x62, 0x70] {
        let two = ok(&[first, 2, 0, 9], V5);
        let three = ok(&[first, 3, 0, 9, 0x10], V5);
        let four = ok(&[first, 4, 0, 9, 0x92, 0], V5);
        let get = |p: Packet| match p {
            Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => r,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(get(two), PubResponse::ok(9));
        assert_eq!(get(three).reason, ReasonCode::NO_MATCHING_SUBSCRIBERS);
        assert_eq!(get(four).reason, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND);
    }
}

#[test]
fn pub_response_packet_id_0_is_malformed() {
    for first in [0x40, 0x50, 0x62, 0x70] {
        assert_eq!(reason(&[first, 2, 0, 0], V311), MALFORMED);
        assert_eq!(reason(&[first, 2, 0, 0], V5), MALFORMED);
    }
}

#[test]
fn mqtt_2_2_2_2_pub_response_property_not_valid_for_packet_is_malformed() {
    // Topic Alias in PUBACK, PUBREC, PUBREL, PUBCOMP.
    for first in [0x40, 0x50, 0x62, 0x70] {
        assert_eq!(
            reason(&[first, 7, 0, 1, 0x00, 3, 0x23, 0, 1], V5),
            MALFORMED
        );
    }
    // Subscription Identifier in SUBSCRIBE is fine, in UNSUBSCRIBE it is not.
    let sub = frame(0x82, &[vec![0, 1, 2, 0x0B, 1], s(b"a"), vec![0]].concat());
    assert!(matches!(ok(&sub, V5), Packet::Subscribe(_)));
    let unsub = frame(0xA2, &[vec![0, 1, 2, 0x0B, 1], s(b"a")].concat());
    assert_eq!(reason(&unsub, V5), MALFORMED);
}

#[test]
fn connack_return_codes() {
    for (code, expected) in [
        (0, ReasonCode::SUCCESS),
        (1, ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
        (2, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
        (3, ReasonCode::SERVER_UNAVAILABLE),
        (4, ReasonCode::BAD_USER_NAME_OR_PASSWORD),
        (5, ReasonCode::NOT_AUTHORIZED),
    ] {
        let p = ok(&[0x20, 2, 1, code], V311);
        assert_eq!(
            p,
            Packet::ConnAck(ConnAck {
                session_present: true,
                reason: expected,
                properties: Properties::default()
            })
        );
    }
    assert_eq!(reason(&[0x20, 2, 0, 6], V311), MALFORMED);
    assert_eq!(reason(&[0x20, 2, 2, 0], V311), MALFORMED);
    // MQTT 3.1 has no Session Present flag: the byte is reserved (decode fuzz target finding).
    assert_eq!(
        reason(&[0x20, 2, 1, 0], Some(ProtocolVersion::V31)),
        MALFORMED
    );
    assert!(matches!(
        ok(&[0x20, 2, 0, 0], Some(ProtocolVersion::V31)),
        Packet::ConnAck(_)
    ));
    assert_eq!(reason(&[0x20, 3, 0x80, 0, 0], V5), MALFORMED);
    let p = ok(&[0x20, 5, 0, 0x9C, 2, 0x24, 1], V5);
    assert!(
        matches!(p, Packet::ConnAck(c) if c.reason == ReasonCode::USE_ANOTHER_SERVER && c.properties.maximum_qos == Some(1))
    );
}

#[test]
fn suback_return_codes() {
    let p = ok(&[0x90, 6, 0, 1, 0, 1, 2, 0x80], V311);
    let expected = [
        ReasonCode(0),
        ReasonCode(1),
        ReasonCode(2),
        ReasonCode::UNSPECIFIED_ERROR,
    ];
    assert!(matches!(p, Packet::SubAck(s) if s.reasons == expected));
    assert_eq!(reason(&[0x90, 3, 0, 1, 3], V311), MALFORMED);
    assert_eq!(reason(&[0x90, 2, 0, 1], V311), MALFORMED);
    assert_eq!(reason(&[0x90, 3, 0, 1, 0], V5), PROTOCOL);
    assert_eq!(reason(&[0x90, 3, 0, 0, 0], V311), MALFORMED);
    let p = ok(&[0x90, 5, 0, 1, 0, 0x97, 0x01], V5);
    assert!(
        matches!(p, Packet::SubAck(s) if s.reasons == [ReasonCode::QUOTA_EXCEEDED, ReasonCode::GRANTED_QOS_1])
    );
}

#[test]
fn unsuback_forms() {
    let p = ok(&[0xB0, 2, 0, 4], V311);
    assert_eq!(
        p,
        Packet::UnsubAck(UnsubAck {
            packet_id: 4,
            reasons: vec![],
            properties: Properties::default()
        })
    );
    assert_eq!(reason(&[0xB0, 3, 0, 4, 0], V5), PROTOCOL);
    let p = ok(&[0xB0, 5, 0, 4, 0, 0x00, 0x11], V5);
    assert!(
        matches!(p, Packet::UnsubAck(u) if u.reasons == [ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED])
    );
}

#[test]
fn ping_must_have_no_body() {
    assert_eq!(ok(&[0xC0, 0], V311), Packet::PingReq);
    assert_eq!(ok(&[0xD0, 0], V5), Packet::PingResp);
    assert_eq!(reason(&[0xC0, 1, 0], V5), MALFORMED);
    assert_eq!(reason(&[0xD0, 1, 0], V311), MALFORMED);
}

#[test]
fn disconnect_forms() {
    assert_eq!(
        ok(&[0xE0, 0], V311),
        Packet::Disconnect(Disconnect::default())
    );
    assert_eq!(
        ok(&[0xE0, 0], V5),
        Packet::Disconnect(Disconnect::default())
    );
    let p = ok(&[0xE0, 1, 0x04], V5);
    assert!(matches!(p, Packet::Disconnect(d) if d.reason == ReasonCode::DISCONNECT_WITH_WILL));
    let p = ok(&[0xE0, 7, 0x00, 5, 0x11, 0, 0, 0, 30], V5);
    assert!(matches!(p, Packet::Disconnect(d) if d.properties.session_expiry_interval == Some(30)));
    // Receive Maximum is not valid in DISCONNECT: Malformed (MQTT 5.0 section 2.2.2.2).
    assert_eq!(reason(&[0xE0, 5, 0x00, 3, 0x21, 0, 1], V5), MALFORMED);
}

#[test]
fn auth_forms() {
    let p = ok(&[0xF0, 2, 0x18, 0], V5);
    assert!(matches!(p, Packet::Auth(a) if a.reason == ReasonCode::CONTINUE_AUTHENTICATION));
    let p = ok(&[0xF0, 8, 0x19, 6, 0x15, 0, 3, b'k', b'r', b'b'], V5);
    assert!(
        matches!(p, Packet::Auth(a) if a.properties.authentication_method.as_deref() == Some("krb"))
    );
    // Payload Format Indicator is not valid in AUTH: Malformed (MQTT 5.0 section 2.2.2.2).
    assert_eq!(reason(&[0xF0, 4, 0x18, 2, 0x01, 0], V5), MALFORMED);
}

// ---- spec-exact rules added with the spec_errors work ------------------------------------------

#[test]
fn mqtt_3_1_2_3_reserved_connect_flag_is_malformed_in_3_1_1_and_5_but_ignored_in_3_1() {
    assert_eq!(connect_reason(b"MQTT", 4, 0x03, &[]), MALFORMED);
    assert_eq!(connect_reason(b"MQTT", 5, 0x03, &[]), MALFORMED);
    // MQTT 3.1 (MQIsdp, level 3) has no reserved-flag rule: bit 0 is ignored.
    let c = connect_ok(b"MQIsdp", 3, 0x03, &[]);
    assert_eq!(c.protocol, ProtocolVersion::V31);
    assert!(c.clean_start);
}

/// `bytes` with its Remaining Length re-encoded in `extra` more bytes than needed.
fn padded_remaining_length(first: u8, body: &[u8], extra: usize) -> Vec<u8> {
    let mut len = BytesMut::new();
    wire::write_varint(body.len() as u32, &mut len);
    let mut out = vec![first];
    let last = len.len() - 1;
    for (i, b) in len.iter().enumerate() {
        out.push(if i == last && extra > 0 { b | 0x80 } else { *b });
    }
    for i in 0..extra {
        out.push(if i + 1 == extra { 0x00 } else { 0x80 });
    }
    out.extend_from_slice(body);
    out
}

#[test]
fn mqtt_1_5_5_1_non_minimal_remaining_length_is_malformed_in_5_only() {
    // PINGREQ with Remaining Length 0 as `80 00`.
    assert_eq!(reason(&[0xC0, 0x80, 0x00], V5), MALFORMED);
    assert_eq!(ok(&[0xC0, 0x80, 0x00], V311), Packet::PingReq);
    assert_eq!(ok(&[0xC0, 0x80, 0x00], V31), Packet::PingReq);
    // A PUBLISH (body 9 bytes) with a 3-byte Remaining Length.
    let body = [s(b"t"), b"payload".to_vec()].concat();
    let bytes = padded_remaining_length(0x30, &body, 2);
    assert_eq!(reason(&bytes, V5), MALFORMED);
    assert!(matches!(ok(&bytes, V311), Packet::Publish(p) if &p.payload[..] == b"payload"));
    // CONNECT: the version is only known from its body, and the rule follows it.
    let v5 = padded_remaining_length(0x10, &connect_body(b"MQTT", 5, 0x02, &[]), 1);
    assert_eq!(reason(&v5, None), MALFORMED);
    let v4 = padded_remaining_length(0x10, &connect_body(b"MQTT", 4, 0x02, &[]), 1);
    assert!(matches!(ok(&v4, None), Packet::Connect(_)));
}

#[test]
fn mqtt_1_5_5_1_non_minimal_subscription_identifier_is_malformed_in_5() {
    // SUBSCRIBE id 1, properties: Subscription Identifier 0 written as `80 00`.
    let bad = frame(
        0x82,
        &[vec![0, 1, 3, 0x0B, 0x80, 0x00], s(b"a"), vec![0]].concat(),
    );
    assert_eq!(reason(&bad, V5), MALFORMED);
    // Property length 3 written as `83 00`.
    let bad = frame(
        0x82,
        &[vec![0, 1, 0x83, 0x00, 0x0B, 1, 0], s(b"a"), vec![0]].concat(),
    );
    assert_eq!(reason(&bad, V5), MALFORMED);
    // CONNECT v5 with its property length 0 as `80 00`.
    let mut body = s(b"MQTT");
    body.extend_from_slice(&[5, 0x02, 0, 60, 0x80, 0x00]);
    body.extend_from_slice(&s(b"c"));
    assert_eq!(reason(&frame(0x10, &body), None), MALFORMED);
}

#[test]
fn hostile_bytes_never_panic_in_either_copy_or_share_mode() {
    // Every truncation and a byte flip at every position of a few valid packets, small (copied)
    // and large (taken over), for every version: errors or packets, never a panic.
    let big = frame(0x32, &[s(b"t"), vec![0, 9], vec![0x5a; SHARE_MIN]].concat());
    let v5_sub = frame(0x82, &[vec![0, 1, 2, 0x0B, 5], s(b"a/+"), vec![1]].concat());
    let conn = frame(
        0x10,
        &connect_body(b"MQTT", 5, 0x06, &[&[0][..], &s(b"w"), &s(b"x")].concat()),
    );
    for packet in [big, v5_sub, conn] {
        for v in [None, V31, V311, V5] {
            for cut in (0..packet.len()).step_by(97).chain(0..40.min(packet.len())) {
                let _ = decode(&packet[..cut], v);
            }
            for pos in (0..packet.len()).step_by(53).chain(0..40.min(packet.len())) {
                for flip in [0x80, 0xFF, 0x01] {
                    let mut bad = packet.clone();
                    bad[pos] ^= flip;
                    let _ = decode(&bad, v);
                }
            }
        }
    }
}
