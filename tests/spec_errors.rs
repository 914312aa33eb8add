//! Spec-exact error handling over real loopback sockets: hand-made bytes to an in-process broker,
//! one test (at least) per rule, for MQTT 3.1.1 and 5.0 where the rule applies. The exhaustive
//! cases are unit tests beside the code (`protocol::decode::tests`, `session::spec_tests`); these
//! check that the broker as a whole answers as the spec says.
//!
//! Covered: a property identifier not valid for its packet (0x81, MQTT 5.0 section 2.2.2.2),
//! non-minimal Variable Byte Integers (0x81 in 5.0 [MQTT-1.5.5-1], accepted in 3.1.1), the client's
//! Maximum Packet Size for CONNACK and SUBACK [MQTT-3.1.2-24], acks of the wrong kind or with a
//! reason code their packet does not allow (0x82), PUBREC for an unknown id (PUBREL 0x92), empty
//! topic filters ([MQTT-4.7.3-1]), the MQTT 3.1 reserved CONNECT flag, and large and small
//! retained payloads decoded in share and copy mode.

mod common;

use std::time::Duration;

use common::*;
use picomq::protocol::{Packet, Properties, ProtocolVersion, PubResponse, QoS, ReasonCode};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// A packet from a first byte and a body, Remaining Length in one byte (bodies < 128).
fn pkt(first: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128);
    let mut out = vec![first, body.len() as u8];
    out.extend_from_slice(body);
    out
}

/// A UTF-8 string field.
fn s(text: &str) -> Vec<u8> {
    let mut out = (text.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out
}

#[test]
fn mqtt_2_2_2_2_property_not_valid_for_packet_is_malformed_0x81() {
    with_deadline(Duration::from_secs(20), || {
        let broker = TestBroker::start();
        let mut c = Client::connect(broker.addr, V5, "props");
        // PUBLISH QoS 0 "t" with a Session Expiry Interval property (valid in CONNECT, CONNACK
        // and DISCONNECT only).
        let body = [s("t"), vec![5, 0x11, 0, 0, 0, 1], b"x".to_vec()].concat();
        c.send_raw(&pkt(0x30, &body));
        c.expect_disconnect(ReasonCode::MALFORMED_PACKET);
        assert_broker_healthy(broker.addr, V5, "after-props");
    });
}

#[test]
fn mqtt_1_5_5_1_non_minimal_variable_byte_integer_is_malformed_in_5_only() {
    with_deadline(Duration::from_secs(20), || {
        let broker = TestBroker::start();
        // 5.0: Subscription Identifier 1 written as `81 00`.
        let mut c = Client::connect(broker.addr, V5, "vbi5");
        let body = [vec![0, 1, 3, 0x0B, 0x81, 0x00], s("a"), vec![0]].concat();
        c.send_raw(&pkt(0x82, &body));
        c.expect_disconnect(ReasonCode::MALFORMED_PACKET);
        // 5.0: PINGREQ with Remaining Length 0 written as `80 00`.
        let mut c = Client::connect(broker.addr, V5, "vbi5b");
        c.send_raw(&[0xC0, 0x80, 0x00]);
        c.expect_disconnect(ReasonCode::MALFORMED_PACKET);
        // 3.1.1 has no such rule: the same PINGREQ is answered.
        let mut c = Client::connect(broker.addr, V311, "vbi3");
        c.send_raw(&[0xC0, 0x80, 0x00]);
        c.expect_pingresp();
    });
}

#[test]
fn mqtt_3_1_2_24_connack_never_exceeds_client_maximum_packet_size() {
    with_deadline(Duration::from_secs(20), || {
        let broker = TestBroker::start();
        // A 5-byte limit: the broker's CONNACK (with its Receive Maximum, Maximum Packet Size...)
        // cannot fit, so the connection is closed without it.
        let mut connect = connect_packet(V5, "tiny", true, 60);
        connect.properties.maximum_packet_size = Some(5);
        let mut c = Client::tcp(broker.addr, V5);
        c.send(&Packet::Connect(Box::new(connect)));
        c.expect_closed();
        assert_broker_healthy(broker.addr, V5, "after-tiny");
    });
}

#[test]
fn mqtt_3_1_2_24_suback_too_large_for_the_client_closes_without_it() {
    with_deadline(Duration::from_secs(20), || {
        let broker = TestBroker::start();
        let props = Properties {
            maximum_packet_size: Some(64),
            ..Properties::default()
        };
        let (mut c, ack) = Client::connect_v5(broker.addr, "small", true, 60, props);
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        // 70 filters: the SUBACK would be 2 + 2 + 1 + 70 = 75 bytes.
        let filters: Vec<String> = (0..70).map(|i| format!("f/{i}")).collect();
        let filters: Vec<(&str, QoS)> = filters
            .iter()
            .map(|f| (f.as_str(), QoS::AtMostOnce))
            .collect();
        let sub = picomq::protocol::Subscribe {
            packet_id: 1,
            filters: filters
                .iter()
                .map(|(f, q)| (f.to_string(), sub_opts(*q)))
                .collect(),
            properties: Properties::default(),
        };
        c.send(&Packet::Subscribe(sub));
        c.expect_closed();
    });
}

/// A subscriber of `version` on "w/t" that has received one message of `qos` (not acked yet);
/// returns it and the message's packet id.
fn receiver_with_inflight(
    broker: &TestBroker,
    version: ProtocolVersion,
    qos: QoS,
) -> (Client, u16) {
    let mut sub = Client::connect(broker.addr, version, "receiver");
    sub.sub_ok(1, "w/t", qos);
    let mut publisher = Client::connect(broker.addr, version, "sender");
    publisher.publish("w/t", b"m", qos, false, 1);
    let p = sub.expect_publish();
    (sub, p.packet_id.expect("QoS > 0"))
}

#[test]
fn mqtt_4_8_0_1_wrong_kind_of_acknowledgement_closes_3_1_1_and_is_0x82_in_5() {
    with_deadline(Duration::from_secs(30), || {
        for v in [V311, V5] {
            let broker = TestBroker::start();
            // PUBREC for a QoS 1 message.
            let (mut sub, id) = receiver_with_inflight(&broker, v, QoS::AtLeastOnce);
            sub.send(&Packet::PubRec(PubResponse::ok(id)));
            sub.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
            // PUBACK for a QoS 2 message.
            let broker = TestBroker::start();
            let (mut sub, id) = receiver_with_inflight(&broker, v, QoS::ExactlyOnce);
            sub.send(&Packet::PubAck(PubResponse::ok(id)));
            sub.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
            assert_broker_healthy(broker.addr, v, "after-wrong-ack");
        }
    });
}

#[test]
fn mqtt_3_4_2_1_puback_with_reason_code_0xff_is_a_protocol_error() {
    with_deadline(Duration::from_secs(20), || {
        let broker = TestBroker::start();
        let (mut sub, id) = receiver_with_inflight(&broker, V5, QoS::AtLeastOnce);
        let mut body = id.to_be_bytes().to_vec();
        body.push(0xFF);
        sub.send_raw(&pkt(0x40, &body));
        sub.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
        // PUBCOMP 0x80 for a QoS 2 message after its PUBREL.
        let broker = TestBroker::start();
        let (mut sub, id) = receiver_with_inflight(&broker, V5, QoS::ExactlyOnce);
        sub.send(&Packet::PubRec(PubResponse::ok(id)));
        sub.expect_ack(6, id);
        let mut body = id.to_be_bytes().to_vec();
        body.push(0x80);
        sub.send_raw(&pkt(0x70, &body));
        sub.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
    });
}

#[test]
fn mqtt_3_6_2_1_pubrec_for_unknown_id_gets_pubrel_0x92_and_duplicates_get_pubrel_again() {
    with_deadline(Duration::from_secs(20), || {
        let broker = TestBroker::start();
        for v in [V311, V5] {
            let mut c = Client::connect(broker.addr, v, "pubrec");
            c.send(&Packet::PubRec(PubResponse::ok(77)));
            match c.expect_packet() {
                Packet::PubRel(r) => {
                    assert_eq!(r.packet_id, 77);
                    let want = if v.is_v5() {
                        ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
                    } else {
                        ReasonCode::SUCCESS
                    };
                    assert_eq!(r.reason, want, "{v:?}");
                }
                other => panic!("{v:?}: expected PUBREL, got {other:?}"),
            }
            c.ping();
        }
        // A repeated PUBREC while waiting for PUBCOMP gets PUBREL again.
        let (mut sub, id) = receiver_with_inflight(&broker, V5, QoS::ExactlyOnce);
        for _ in 0..2 {
            sub.send(&Packet::PubRec(PubResponse::ok(id)));
            sub.expect_ack(6, id);
        }
        sub.send(&Packet::PubComp(PubResponse::ok(id)));
        sub.ping();
    });
}

#[test]
fn mqtt_4_7_3_1_empty_topic_filter_closes_3_1_1_and_is_0x8f_in_5() {
    with_deadline(Duration::from_secs(20), || {
        let broker = TestBroker::start();
        // 3.1.1 SUBSCRIBE [""]: closed, no SUBACK.
        let mut c = Client::connect(broker.addr, V311, "empty3");
        c.send_raw(&pkt(0x82, &[vec![0, 1], s(""), vec![0]].concat()));
        c.expect_closed();
        // 3.1.1 UNSUBSCRIBE [""]: closed, no UNSUBACK.
        let mut c = Client::connect(broker.addr, V311, "empty3u");
        c.send_raw(&pkt(0xA2, &[vec![0, 1], s("")].concat()));
        c.expect_closed();
        // 5.0: refused per filter, the other filter is granted, the connection stays.
        let mut c = Client::connect(broker.addr, V5, "empty5");
        c.send_raw(&pkt(
            0x82,
            &[vec![0, 1, 0], s(""), vec![0], s("ok"), vec![0]].concat(),
        ));
        let ack = c.expect_suback(1);
        assert_eq!(
            ack.reasons,
            [ReasonCode::TOPIC_FILTER_INVALID, ReasonCode::SUCCESS]
        );
        c.ping();
    });
}

#[test]
fn mqtt_3_1_reserved_connect_flag_is_accepted_at_level_3_and_malformed_at_4() {
    with_deadline(Duration::from_secs(20), || {
        let broker = TestBroker::start();
        // MQIsdp level 3, flags: clean session + reserved bit 0.
        let body = [s("MQIsdp"), vec![3, 0x03, 0, 60], s("old31")].concat();
        let mut c = Client::tcp(broker.addr, ProtocolVersion::V31);
        c.send_raw(&pkt(0x10, &body));
        assert_eq!(c.expect_connack().reason, ReasonCode::SUCCESS);
        c.ping();
        // MQTT level 4 with the same flags: malformed, closed without CONNACK [MQTT-3.1.2-3].
        let body = [s("MQTT"), vec![4, 0x03, 0, 60], s("new311")].concat();
        let mut c = Client::tcp(broker.addr, V311);
        c.send_raw(&pkt(0x10, &body));
        c.expect_closed();
    });
}

#[test]
fn decoded_retained_payloads_are_intact_in_copy_and_share_mode() {
    with_deadline(Duration::from_secs(20), || {
        let broker = TestBroker::start();
        for v in [V311, V5] {
            let mut publisher = Client::connect(broker.addr, v, "retainer");
            // A large packet alone in the read buffer (taken over, no copy) ...
            let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
            publisher.publish("r/big", &big, QoS::AtLeastOnce, true, 1);
            // ... and small ones sent back to back in one write (copied out of the buffer).
            let mut burst = Vec::new();
            for i in 0..20u8 {
                let p = publish_packet(&format!("r/s{i}"), &[i; 10], QoS::AtMostOnce, true, 0);
                burst.extend_from_slice(&encode(&Packet::Publish(p), v));
            }
            publisher.send_raw(&burst);
            publisher.ping();
            let mut sub = Client::connect(broker.addr, v, "late");
            sub.sub_ok(1, "r/big", QoS::AtLeastOnce);
            let got = sub.expect_publish_acked();
            assert_eq!(&got.payload[..], &big[..], "{v:?}");
            sub.sub_ok(2, "r/s7", QoS::AtMostOnce);
            let got = sub.expect_publish();
            assert_eq!(&got.payload[..], &[7u8; 10], "{v:?}");
        }
    });
}
