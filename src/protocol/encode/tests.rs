//! Encoder unit tests: the short forms, what is left out before 5.0, the neutralised caller
//! mistakes, and the single reservation.
//!
//! Owns: encoder-only expectations. Must not touch: decoding rules (`decode::tests`) or the
//! fixtures shared with the decoder (`tests/codec_fixtures.rs`).

use bytes::{Bytes, BytesMut};

use super::*;
use crate::protocol::packet::{LastWill, Publish};

fn enc(packet: &Packet, v: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_packet(packet, v, &mut out);
    assert_eq!(out.len(), encoded_len(packet, v), "encoded_len disagrees");
    out.to_vec()
}

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;

fn reason_only(reason: ReasonCode) -> PubResponse {
    PubResponse {
        reason,
        ..PubResponse::ok(0x1234)
    }
}

fn with_reason_string() -> Properties {
    Properties {
        reason_string: Some("r".into()),
        ..Properties::default()
    }
}

#[test]
fn v5_acks_use_the_short_forms() {
    let ok = Packet::PubAck(PubResponse::ok(0x1234));
    assert_eq!(enc(&ok, V5), [0x40, 2, 0x12, 0x34]);
    let reason = Packet::PubRec(reason_only(ReasonCode::NO_MATCHING_SUBSCRIBERS));
    assert_eq!(enc(&reason, V5), [0x50, 3, 0x12, 0x34, 0x10]);
    let full = Packet::PubComp(PubResponse {
        properties: with_reason_string(),
        ..PubResponse::ok(0x1234)
    });
    assert_eq!(
        enc(&full, V5),
        [0x70, 8, 0x12, 0x34, 0x00, 4, 0x1F, 0, 1, b'r']
    );
    let rel = Packet::PubRel(reason_only(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND));
    assert_eq!(
        enc(&rel, V311),
        [0x62, 2, 0x12, 0x34],
        "3.1.1 drops the reason"
    );
}

#[test]
fn disconnect_and_auth_forms() {
    let normal = Packet::Disconnect(Disconnect::default());
    assert_eq!(enc(&normal, V5), [0xE0, 0]);
    assert_eq!(enc(&normal, V311), [0xE0, 0]);
    let with_will = Packet::Disconnect(Disconnect {
        reason: ReasonCode::DISCONNECT_WITH_WILL,
        properties: Properties::default(),
    });
    assert_eq!(enc(&with_will, V5), [0xE0, 1, 0x04]);
    assert_eq!(enc(&with_will, V311), [0xE0, 0]);
    let with_props = Packet::Disconnect(Disconnect {
        reason: ReasonCode::SUCCESS,
        properties: Properties {
            session_expiry_interval: Some(0),
            ..Properties::default()
        },
    });
    assert_eq!(enc(&with_props, V5), [0xE0, 7, 0, 5, 0x11, 0, 0, 0, 0]);
    let auth_ok = Packet::Auth(Auth {
        reason: ReasonCode::SUCCESS,
        properties: Properties::default(),
    });
    assert_eq!(enc(&auth_ok, V5), [0xF0, 0]);
    let auth_continue = Packet::Auth(Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: Properties::default(),
    });
    assert_eq!(
        enc(&auth_continue, V5),
        [0xF0, 2, 0x18, 0],
        "AUTH keeps its property length"
    );
    assert_eq!(enc(&auth_continue, V311), [0xF0, 0]);
}

#[test]
fn v3_ignores_v5_only_fields() {
    let connack = Packet::ConnAck(ConnAck {
        session_present: true,
        reason: ReasonCode::BANNED,
        properties: Properties {
            maximum_qos: Some(1),
            ..Properties::default()
        },
    });
    assert_eq!(enc(&connack, V311), [0x20, 2, 1, 5]);
    let suback = Packet::SubAck(SubAck {
        packet_id: 1,
        reasons: vec![ReasonCode::GRANTED_QOS_2, ReasonCode::QUOTA_EXCEEDED],
        properties: with_reason_string(),
    });
    assert_eq!(enc(&suback, V311), [0x90, 4, 0, 1, 2, 0x80]);
    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: 1,
        reasons: vec![ReasonCode::SUCCESS],
        properties: with_reason_string(),
    });
    assert_eq!(enc(&unsuback, V311), [0xB0, 2, 0, 1]);
    let options = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        no_local: true,
        retain_as_published: true,
        retain_handling: crate::protocol::packet::RetainHandling::DoNotSend,
    };
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: 2,
        filters: vec![("a".into(), options)],
        properties: Properties {
            subscription_identifiers: vec![5],
            ..Properties::default()
        },
    });
    assert_eq!(enc(&subscribe, V311), [0x82, 6, 0, 2, 0, 1, b'a', 0x01]);
    assert_eq!(
        enc(&subscribe, V5),
        [0x82, 9, 0, 2, 2, 0x0B, 5, 0, 1, b'a', 0x2D]
    );
}

#[test]
fn connect_uses_its_own_protocol_version() {
    let connect = Packet::Connect(Box::new(Connect {
        protocol: ProtocolVersion::V31,
        clean_start: true,
        keep_alive: 10,
        client_id: "c".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties {
            receive_maximum: Some(5),
            ..Properties::default()
        },
    }));
    let expected = [
        0x10, 15, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0, 10, 0, 1, b'c',
    ];
    assert_eq!(enc(&connect, V5), expected);
}

#[test]
fn connect_flags_cover_will_and_credentials() {
    let connect = Packet::Connect(Box::new(Connect {
        protocol: ProtocolVersion::V311,
        clean_start: false,
        keep_alive: 0,
        client_id: String::new(),
        will: Some(LastWill {
            topic: "w".into(),
            payload: Bytes::from_static(b"x"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties::default(),
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
        properties: Properties::default(),
    }));
    let bytes = enc(&connect, V311);
    assert_eq!(bytes[9], 0x80 | 0x40 | 0x20 | 0x08 | 0x04);
}

#[test]
fn dup_is_cleared_on_qos0_and_missing_packet_id_is_zero() {
    let publish = Publish {
        dup: true,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t".into(),
        packet_id: Some(5),
        properties: Properties::default(),
        payload: Bytes::from_static(b"x"),
    };
    assert_eq!(
        enc(&Packet::Publish(publish.clone()), V311),
        [0x30, 4, 0, 1, b't', b'x']
    );
    let qos1 = Publish {
        qos: QoS::AtLeastOnce,
        packet_id: None,
        ..publish
    };
    assert_eq!(
        enc(&Packet::Publish(qos1), V311),
        [0x3A, 6, 0, 1, b't', 0, 0, b'x']
    );
}

#[test]
fn properties_not_allowed_on_a_packet_are_left_out() {
    let puback = Packet::PubAck(PubResponse {
        properties: Properties {
            topic_alias: Some(3),
            ..Properties::default()
        },
        ..PubResponse::ok(1)
    });
    assert_eq!(enc(&puback, V5), [0x40, 2, 0, 1]);
}

#[test]
fn remaining_length_grows_to_two_bytes() {
    let publish = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t".into(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::from(vec![0xAB; 200]),
    });
    let bytes = enc(&publish, V311);
    assert_eq!(&bytes[..3], &[0x30, 0xCB, 0x01]); // 203 = 0x4B + 1 * 128
    assert_eq!(bytes.len(), 3 + 203);
}

#[test]
fn encoding_reserves_exactly_once() {
    let publish = Packet::Publish(Publish {
        dup: false,
        qos: QoS::ExactlyOnce,
        retain: true,
        topic: "a/b/c".into(),
        packet_id: Some(9),
        properties: Properties {
            user_properties: vec![("k".into(), "v".into())],
            ..Properties::default()
        },
        payload: Bytes::from(vec![1; 1000]),
    });
    let mut out = BytesMut::with_capacity(encoded_len(&publish, V5));
    let before = out.as_ptr();
    encode_packet(&publish, V5, &mut out);
    assert_eq!(
        out.as_ptr(),
        before,
        "the exact-size buffer must not be reallocated"
    );
}

#[test]
fn overlong_strings_are_clamped_and_lengths_agree() {
    let publish = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "x".repeat(70_000),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::new(),
    });
    let bytes = enc(&publish, V311);
    assert_eq!(&bytes[4..6], &[0xFF, 0xFF]);
    assert_eq!(bytes.len(), 4 + 2 + 65_535);
}

#[test]
fn mqtt_3_1_connack_has_no_session_present_flag() {
    let ack = Packet::ConnAck(ConnAck {
        session_present: true,
        reason: ReasonCode::SUCCESS,
        properties: Properties::default(),
    });
    assert_eq!(enc(&ack, ProtocolVersion::V31), [0x20, 2, 0, 0]);
    assert_eq!(enc(&ack, V311), [0x20, 2, 1, 0]);
}
