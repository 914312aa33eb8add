//! Byte-exact codec fixtures: every packet type in MQTT 3.1.1 and 5.0, plus an MQTT 3.1 (`MQIsdp`)
//! CONNECT, each written out by hand from the OASIS specifications (field by field, lengths
//! counted by hand in the comments). Every fixture is checked both ways: decoding the bytes gives
//! the packet, and encoding the packet gives the bytes (and `encoded_len` agrees).
//!
//! Owns: the fixtures. Must not touch: the codec itself; a fixture that disagrees with the codec
//! must be re-derived from the specification before either side is changed.

use bytes::{Bytes, BytesMut};
use picomq::protocol::decode::decode_packet;
use picomq::protocol::encode::{encode_packet, encoded_len};
use picomq::protocol::{
    Auth, ConnAck, Connect, Disconnect, LastWill, Packet, Properties, ProtocolVersion, PubResponse,
    Publish, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck,
    Unsubscribe,
};

const V31: ProtocolVersion = ProtocolVersion::V31;
const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// Parses "10 0F 00 .." into bytes.
fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("fixture hex"))
        .collect()
}

/// Decodes `bytes` (as the first packet when it is a CONNECT) and encodes `packet`, both for `v`.
fn check(v: ProtocolVersion, bytes: &str, packet: Packet) {
    let bytes = hex(bytes);
    let current = if matches!(packet, Packet::Connect(_)) {
        None
    } else {
        Some(v)
    };
    let mut buf = BytesMut::from(&bytes[..]);
    let decoded = decode_packet(&mut buf, current, 1 << 20);
    assert_eq!(
        decoded,
        Ok(Some(packet.clone())),
        "decoding {} for {v:?}",
        packet.name()
    );
    assert!(buf.is_empty(), "{} left bytes behind", packet.name());
    let mut out = BytesMut::new();
    encode_packet(&packet, v, &mut out);
    assert_eq!(out.to_vec(), bytes, "encoding {} for {v:?}", packet.name());
    assert_eq!(encoded_len(&packet, v), bytes.len());
}

fn user(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

fn pub_response(packet_id: u16, reason: ReasonCode, properties: Properties) -> PubResponse {
    PubResponse {
        packet_id,
        reason,
        properties,
    }
}

// ---- MQTT 3.1 and 3.1.1 ----------------------------------------------------------------------

#[test]
fn v31_mqisdp_connect() {
    // "MQIsdp" (2+6) level 3, flags 02 (clean), keep-alive 10 (2), client id "c" (2+1): 15 bytes.
    let connect = Connect {
        protocol: V31,
        clean_start: true,
        keep_alive: 10,
        client_id: "c".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    };
    check(
        V31,
        "10 0F 00 06 4D 51 49 73 64 70 03 02 00 0A 00 01 63",
        Packet::Connect(Box::new(connect)),
    );
}

#[test]
fn v311_connect_with_will_and_credentials() {
    // Variable header 10 bytes; payload: "abc" 5, will topic "w/t" 5, will payload "bye" 5,
    // user "u" 3, password "pw" 4 = 22; remaining 32. Flags: user 80 | password 40 | will QoS 1
    // 08 | will 04 | clean 02 = CE.
    let connect = Connect {
        protocol: V311,
        clean_start: true,
        keep_alive: 60,
        client_id: "abc".into(),
        will: Some(LastWill {
            topic: "w/t".into(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"pw")),
        properties: Properties::default(),
    };
    check(
        V311,
        "10 20 00 04 4D 51 54 54 04 CE 00 3C 00 03 61 62 63 00 03 77 2F 74 00 03 62 79 65 \
         00 01 75 00 02 70 77",
        Packet::Connect(Box::new(connect)),
    );
}

#[test]
fn v311_connack() {
    let accepted = ConnAck {
        session_present: true,
        reason: ReasonCode::SUCCESS,
        properties: Properties::default(),
    };
    check(V311, "20 02 01 00", Packet::ConnAck(accepted));
    let refused = ConnAck {
        session_present: false,
        reason: ReasonCode::NOT_AUTHORIZED,
        properties: Properties::default(),
    };
    check(V311, "20 02 00 05", Packet::ConnAck(refused));
}

#[test]
fn v311_publish_all_qos() {
    let qos0 = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "a/b".into(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::from_static(b"hi"),
    };
    check(V311, "30 07 00 03 61 2F 62 68 69", Packet::Publish(qos0));
    // DUP 08 | QoS 1 02 | RETAIN 01 = 3B; topic "t" 3, id 0x0102 2, payload "x" 1.
    let qos1 = Publish {
        dup: true,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: "t".into(),
        packet_id: Some(0x0102),
        properties: Properties::default(),
        payload: Bytes::from_static(b"x"),
    };
    check(V311, "3B 06 00 01 74 01 02 78", Packet::Publish(qos1));
    let qos2 = Publish {
        dup: false,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "t".into(),
        packet_id: Some(10),
        properties: Properties::default(),
        payload: Bytes::new(),
    };
    check(V311, "34 05 00 01 74 00 0A", Packet::Publish(qos2));
}

#[test]
fn v311_publish_responses() {
    check(V311, "40 02 00 01", Packet::PubAck(PubResponse::ok(1)));
    check(V311, "50 02 00 02", Packet::PubRec(PubResponse::ok(2)));
    check(V311, "62 02 00 03", Packet::PubRel(PubResponse::ok(3)));
    check(V311, "70 02 00 04", Packet::PubComp(PubResponse::ok(4)));
}

#[test]
fn v311_subscribe_and_suback() {
    let subscribe = Subscribe {
        packet_id: 10,
        filters: vec![
            (
                "a/+".into(),
                SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    ..Default::default()
                },
            ),
            ("#".into(), SubscriptionOptions::default()),
        ],
        properties: Properties::default(),
    };
    check(
        V311,
        "82 0C 00 0A 00 03 61 2F 2B 01 00 01 23 00",
        Packet::Subscribe(subscribe),
    );
    let suback = SubAck {
        packet_id: 10,
        reasons: vec![ReasonCode::GRANTED_QOS_1, ReasonCode::UNSPECIFIED_ERROR],
        properties: Properties::default(),
    };
    check(V311, "90 04 00 0A 01 80", Packet::SubAck(suback));
}

#[test]
fn v311_unsubscribe_and_unsuback() {
    let unsubscribe = Unsubscribe {
        packet_id: 11,
        filters: vec!["a/+".into()],
        properties: Properties::default(),
    };
    check(
        V311,
        "A2 07 00 0B 00 03 61 2F 2B",
        Packet::Unsubscribe(unsubscribe),
    );
    let unsuback = UnsubAck {
        packet_id: 11,
        reasons: vec![],
        properties: Properties::default(),
    };
    check(V311, "B0 02 00 0B", Packet::UnsubAck(unsuback));
}

#[test]
fn v311_ping_and_disconnect() {
    check(V311, "C0 00", Packet::PingReq);
    check(V311, "D0 00", Packet::PingResp);
    check(V311, "E0 00", Packet::Disconnect(Disconnect::default()));
}

// ---- MQTT 5.0 --------------------------------------------------------------------------------

#[test]
fn v5_connect_with_properties_will_properties_and_password_only() {
    // Variable header: "MQTT" 6, level 05, flags 66 (password 40 | will retain 20 | will 04 |
    // clean 02), keep-alive 30 = 10 bytes.
    // Properties (15): 11 Session Expiry 3600 (5), 21 Receive Maximum 20 (3), 26 k=v (7).
    // Payload: client id "id" 4; will properties (12): 03 Content Type "text" (7), 18 Will Delay
    // 5 (5); will topic "w" 3; will payload "x" 3; password "s" 3. Remaining 52 = 0x34.
    let connect = Connect {
        protocol: V5,
        clean_start: true,
        keep_alive: 30,
        client_id: "id".into(),
        will: Some(LastWill {
            topic: "w".into(),
            payload: Bytes::from_static(b"x"),
            qos: QoS::AtMostOnce,
            retain: true,
            properties: Properties {
                content_type: Some("text".into()),
                will_delay_interval: Some(5),
                ..Properties::default()
            },
        }),
        username: None,
        password: Some(Bytes::from_static(b"s")),
        properties: Properties {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(20),
            user_properties: vec![user("k", "v")],
            ..Properties::default()
        },
    };
    check(
        V5,
        "10 34 00 04 4D 51 54 54 05 66 00 1E \
         0F 11 00 00 0E 10 21 00 14 26 00 01 6B 00 01 76 \
         00 02 69 64 \
         0C 03 00 04 74 65 78 74 18 00 00 00 05 \
         00 01 77 00 01 78 00 01 73",
        Packet::Connect(Box::new(connect)),
    );
}

#[test]
fn v5_connack_with_properties() {
    // Properties (16): 12 Assigned Client Identifier "auto-1" (9), 22 Topic Alias Maximum 10 (3),
    // 24 Maximum QoS 1 (2), 25 Retain Available 0 (2). Remaining 2 + 1 + 16 = 19.
    let connack = ConnAck {
        session_present: false,
        reason: ReasonCode::SUCCESS,
        properties: Properties {
            assigned_client_identifier: Some("auto-1".into()),
            topic_alias_maximum: Some(10),
            maximum_qos: Some(1),
            retain_available: Some(0),
            ..Properties::default()
        },
    };
    check(
        V5,
        "20 13 00 00 10 12 00 06 61 75 74 6F 2D 31 22 00 0A 24 01 25 00",
        Packet::ConnAck(connack),
    );
    let refused = ConnAck {
        session_present: false,
        reason: ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        properties: Properties::default(),
    };
    check(V5, "20 03 00 86 00", Packet::ConnAck(refused));
}

#[test]
fn v5_publish_with_every_message_property() {
    // Topic "a/b" 5, id 5 2, properties (24): 01 PFI 1 (2), 02 Expiry 60 (5), 08 Response Topic
    // "r" (4), 09 Correlation "cd" (5), 0B Subscription Id 1 (2), 0B Subscription Id 200 (3),
    // 23 Topic Alias 3 (3); payload "hey" 3. Remaining 5 + 2 + 1 + 24 + 3 = 35.
    let publish = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "a/b".into(),
        packet_id: Some(5),
        properties: Properties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(60),
            response_topic: Some("r".into()),
            correlation_data: Some(Bytes::from_static(b"cd")),
            subscription_identifiers: vec![1, 200],
            topic_alias: Some(3),
            ..Properties::default()
        },
        payload: Bytes::from_static(b"hey"),
    };
    check(
        V5,
        "32 23 00 03 61 2F 62 00 05 18 01 01 02 00 00 00 3C 08 00 01 72 09 00 02 63 64 \
         0B 01 0B C8 01 23 00 03 68 65 79",
        Packet::Publish(publish),
    );
}

#[test]
fn v5_publish_with_topic_alias_and_empty_topic() {
    let publish = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: String::new(),
        packet_id: None,
        properties: Properties {
            topic_alias: Some(7),
            ..Properties::default()
        },
        payload: Bytes::from_static(b"z"),
    };
    check(V5, "30 07 00 00 03 23 00 07 7A", Packet::Publish(publish));
}

#[test]
fn v5_publish_responses_all_three_lengths() {
    check(V5, "40 02 00 07", Packet::PubAck(PubResponse::ok(7)));
    check(
        V5,
        "50 03 00 08 10",
        Packet::PubRec(pub_response(
            8,
            ReasonCode::NO_MATCHING_SUBSCRIBERS,
            Properties::default(),
        )),
    );
    let gone = Properties {
        reason_string: Some("gone".into()),
        ..Properties::default()
    };
    check(
        V5,
        "62 0B 00 09 92 07 1F 00 04 67 6F 6E 65",
        Packet::PubRel(pub_response(
            9,
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
            gone,
        )),
    );
    let tagged = Properties {
        user_properties: vec![user("a", "b")],
        ..Properties::default()
    };
    check(
        V5,
        "70 0B 00 0A 00 07 26 00 01 61 00 01 62",
        Packet::PubComp(pub_response(10, ReasonCode::SUCCESS, tagged)),
    );
}

#[test]
fn v5_subscribe_with_options_and_largest_subscription_identifier() {
    // id 2 bytes; properties 0B FF FF FF 7F (5); "a/#" 5 + options 2E (QoS 2 | No Local 04 |
    // Retain As Published 08 | Retain Handling 2 << 4); "$share/g/t" 12 + options 10 (Retain
    // Handling 1). Remaining 2 + 6 + 6 + 13 = 27.
    let subscribe = Subscribe {
        packet_id: 1,
        filters: vec![
            (
                "a/#".into(),
                SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            ),
            (
                "$share/g/t".into(),
                SubscriptionOptions {
                    retain_handling: RetainHandling::SendIfNew,
                    ..Default::default()
                },
            ),
        ],
        properties: Properties {
            subscription_identifiers: vec![268_435_455],
            ..Properties::default()
        },
    };
    check(
        V5,
        "82 1B 00 01 05 0B FF FF FF 7F 00 03 61 2F 23 2E 00 0A 24 73 68 61 72 65 2F 67 2F 74 10",
        Packet::Subscribe(subscribe),
    );
}

#[test]
fn v5_suback() {
    let suback = SubAck {
        packet_id: 1,
        reasons: vec![
            ReasonCode::GRANTED_QOS_2,
            ReasonCode::SUCCESS,
            ReasonCode::TOPIC_FILTER_INVALID,
            ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
        ],
        properties: Properties {
            reason_string: Some("ok".into()),
            ..Properties::default()
        },
    };
    check(
        V5,
        "90 0C 00 01 05 1F 00 02 6F 6B 02 00 8F A2",
        Packet::SubAck(suback),
    );
}

#[test]
fn v5_unsubscribe_and_unsuback() {
    let unsubscribe = Unsubscribe {
        packet_id: 2,
        filters: vec!["a/#".into(), "b".into()],
        properties: Properties {
            user_properties: vec![user("k", "v")],
            ..Properties::default()
        },
    };
    check(
        V5,
        "A2 12 00 02 07 26 00 01 6B 00 01 76 00 03 61 2F 23 00 01 62",
        Packet::Unsubscribe(unsubscribe),
    );
    let unsuback = UnsubAck {
        packet_id: 2,
        reasons: vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
        properties: Properties::default(),
    };
    check(V5, "B0 05 00 02 00 00 11", Packet::UnsubAck(unsuback));
}

#[test]
fn v5_ping() {
    check(V5, "C0 00", Packet::PingReq);
    check(V5, "D0 00", Packet::PingResp);
}

#[test]
fn v5_disconnect_all_three_lengths() {
    check(V5, "E0 00", Packet::Disconnect(Disconnect::default()));
    let with_will = Disconnect {
        reason: ReasonCode::DISCONNECT_WITH_WILL,
        properties: Properties::default(),
    };
    check(V5, "E0 01 04", Packet::Disconnect(with_will));
    // Reason 8B, properties (8): 1C Server Reference "other".
    let moved = Disconnect {
        reason: ReasonCode::SERVER_SHUTTING_DOWN,
        properties: Properties {
            server_reference: Some("other".into()),
            ..Properties::default()
        },
    };
    check(
        V5,
        "E0 0A 8B 08 1C 00 05 6F 74 68 65 72",
        Packet::Disconnect(moved),
    );
}

#[test]
fn v5_auth() {
    check(
        V5,
        "F0 00",
        Packet::Auth(Auth {
            reason: ReasonCode::SUCCESS,
            properties: Properties::default(),
        }),
    );
    // Reason 18, properties (13): 15 Method "SCRAM" (8), 16 Data 01 02 (5). Remaining 15.
    let auth = Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: Properties {
            authentication_method: Some("SCRAM".into()),
            authentication_data: Some(Bytes::from_static(&[1, 2])),
            ..Properties::default()
        },
    };
    check(
        V5,
        "F0 0F 18 0D 15 00 05 53 43 52 41 4D 16 00 02 01 02",
        Packet::Auth(auth),
    );
}
