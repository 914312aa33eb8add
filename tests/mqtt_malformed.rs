//! Malformed and forbidden input after CONNECT, sent as hand-made bytes over real loopback
//! sockets. MQTT 5.0 clients must get DISCONNECT with the exact reason code and then be closed;
//! MQTT 3.1.1 clients must just be closed, without any packet. In every case a well-behaved client
//! that was connected before keeps receiving, and a new client can still connect and work.
//!
//! Covered: reserved fixed-header flag bits, a 5-byte Remaining Length, a packet larger than
//! `max_packet_size` (v5 0x95), wildcards in a PUBLISH topic (0x90), PUBLISH QoS 3, QoS 1 with
//! packet id 0, DUP on QoS 0, invalid UTF-8 and U+0000 in a topic, bad subscription options and
//! SUBSCRIBE/UNSUBSCRIBE without filters, server-only packets sent by a client (0x82),
//! topic alias 0 or above the maximum (0x94), more unreleased QoS 2 messages than Receive Maximum
//! (0x93), a duplicate property and subscription identifier 0 (0x82), length fields running past
//! the packet, and a truncated packet followed by a close.

mod common;

use std::time::Duration;

use common::*;
use picomq::config::Config;
use picomq::protocol::{ProtocolVersion, QoS, ReasonCode};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// Builds a packet from a first byte and a body (Remaining Length is one byte: bodies < 128).
fn pkt(first: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128);
    let mut out = vec![first, body.len() as u8];
    out.extend_from_slice(body);
    out
}

/// A PUBLISH body: topic bytes as given, optional packet id, v5 property block, payload.
fn publish_body(version: ProtocolVersion, topic: &[u8], id: Option<u16>, props: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    b.extend_from_slice(topic);
    if let Some(id) = id {
        b.extend_from_slice(&id.to_be_bytes());
    }
    if version.is_v5() {
        b.push(props.len() as u8);
        b.extend_from_slice(props);
    }
    b.extend_from_slice(b"payload");
    b
}

/// The fixture of every case: a bystander subscribed before the bad client arrives.
struct Scene {
    broker: TestBroker,
    version: ProtocolVersion,
    bystander: Client,
}

impl Scene {
    fn new(version: ProtocolVersion, tweak: impl FnOnce(&mut Config)) -> Scene {
        let broker = TestBroker::start_with(tweak);
        let mut bystander = Client::connect(broker.addr, version, "bystander");
        bystander.sub_ok(1, "by/t", QoS::AtLeastOnce);
        Scene {
            broker,
            version,
            bystander,
        }
    }

    fn bad_client(&self) -> Client {
        Client::connect(self.broker.addr, self.version, "offender")
    }

    /// The bystander still receives, and a fresh client connects and works.
    fn assert_others_unaffected(mut self) {
        let mut p = Client::connect(self.broker.addr, self.version, "by-pub");
        p.publish("by/t", b"unaffected", QoS::AtLeastOnce, false, 1);
        let got = self.bystander.expect_publish_acked();
        assert_publish(&got, "by/t", b"unaffected", QoS::AtLeastOnce);
        self.bystander.ping();
        assert_broker_healthy(self.broker.addr, self.version, "after-offence");
    }
}

/// Sends `bytes` from a connected client; v5 expects DISCONNECT `reason` then close, 3.1.1 a bare
/// close; then checks that other clients are unaffected.
fn offence(version: ProtocolVersion, bytes: &[u8], reason: ReasonCode) {
    offence_with(version, |_| {}, bytes, reason);
}

fn offence_with(
    version: ProtocolVersion,
    tweak: impl FnOnce(&mut Config),
    bytes: &[u8],
    reason: ReasonCode,
) {
    let scene = Scene::new(version, tweak);
    let mut bad = scene.bad_client();
    bad.send_raw(bytes);
    bad.expect_disconnect(reason);
    scene.assert_others_unaffected();
}

fn both(check: impl Fn(ProtocolVersion)) {
    check(V311);
    check(V5);
}

const MALFORMED: ReasonCode = ReasonCode::MALFORMED_PACKET;
const PROTOCOL: ReasonCode = ReasonCode::PROTOCOL_ERROR;

#[test]
fn mqtt_2_1_3_1_pingreq_with_reserved_flag_bits() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| offence(v, &[0xC1, 0x00], MALFORMED));
    });
}

#[test]
fn mqtt_3_8_1_1_subscribe_with_reserved_flags_0000() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            let mut body = vec![0x00, 0x01];
            if v.is_v5() {
                body.push(0);
            }
            body.extend_from_slice(&[0x00, 0x01, b'a', 0x00]);
            offence(v, &pkt(0x80, &body), MALFORMED);
        });
    });
}

#[test]
fn mqtt_3_6_1_1_pubrel_with_reserved_flags_0000() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| offence(v, &[0x60, 0x02, 0x00, 0x01], MALFORMED));
    });
}

#[test]
fn mqtt_1_5_5_remaining_length_of_five_bytes() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| offence(v, &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], MALFORMED));
    });
}

#[test]
fn mqtt_3_2_2_3_6_packet_larger_than_maximum_packet_size() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            // Only the fixed header of a 2,000-byte PUBLISH: refused before the body arrives.
            let header = [0x30, 0xD0, 0x0F];
            offence_with(
                v,
                |c| c.mqtt.max_packet_size = 1024,
                &header,
                ReasonCode::PACKET_TOO_LARGE,
            );
        });
        // The whole oversized packet, sent at once: same answer.
        let scene = Scene::new(V5, |c| c.mqtt.max_packet_size = 1024);
        let mut bad = scene.bad_client();
        let mut big = vec![0x30, 0xD0, 0x0F, 0x00, 0x01, b'x', 0x00];
        big.resize(3 + 2000, b'z');
        let _ = bad.try_send_raw(&big);
        bad.expect_disconnect(ReasonCode::PACKET_TOO_LARGE);
        scene.assert_others_unaffected();
    });
}

#[test]
fn v5_connack_advertises_maximum_packet_size_and_a_packet_at_the_limit_is_accepted() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.max_packet_size = 1024);
        let (mut c, ack) = Client::connect_v5(
            b.addr,
            "limit",
            true,
            60,
            picomq::protocol::Properties::default(),
        );
        assert_eq!(ack.properties.maximum_packet_size, Some(1024));
        c.sub_ok(1, "lim", QoS::AtMostOnce);
        // 1,024 bytes in all: 1 + 2 (Remaining Length 1021) + 5 (topic) + 1 (properties) + 1015.
        let payload = vec![b'p'; 1015];
        let p = publish_packet("lim", &payload, QoS::AtMostOnce, false, 0);
        let bytes = encode(&picomq::protocol::Packet::Publish(p), V5);
        assert_eq!(bytes.len(), 1024);
        c.send_raw(&bytes);
        assert_publish(&c.expect_publish(), "lim", &payload, QoS::AtMostOnce);
    });
}

#[test]
fn mqtt_3_3_2_2_publish_topic_with_wildcard() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            for topic in [&b"a/#"[..], b"a/+/b", b"+"] {
                let body = publish_body(v, topic, None, &[]);
                offence(v, &pkt(0x30, &body), ReasonCode::TOPIC_NAME_INVALID);
            }
        });
    });
}

#[test]
fn mqtt_3_3_1_4_publish_with_qos_3() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            let body = publish_body(v, b"a/b", Some(1), &[]);
            offence(v, &pkt(0x36, &body), MALFORMED);
        });
    });
}

#[test]
fn mqtt_2_3_1_1_publish_qos1_with_packet_id_0() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            let body = publish_body(v, b"a/b", Some(0), &[]);
            offence(v, &pkt(0x32, &body), MALFORMED);
        });
    });
}

#[test]
fn mqtt_1_5_3_1_publish_topic_with_invalid_utf8() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            for topic in [&b"a\xFFb"[..], b"\xC0\xAF", b"\xED\xA0\x80"] {
                let body = publish_body(v, topic, None, &[]);
                offence(v, &pkt(0x30, &body), MALFORMED);
            }
        });
    });
}

#[test]
fn mqtt_1_5_3_2_publish_topic_with_u0000() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            let body = publish_body(v, b"a\x00b", None, &[]);
            offence(v, &pkt(0x30, &body), MALFORMED);
        });
    });
}

#[test]
fn client_sending_connack_is_a_protocol_error() {
    with_deadline(Duration::from_secs(20), || {
        offence(V311, &[0x20, 0x02, 0x00, 0x00], PROTOCOL);
        offence(V5, &[0x20, 0x03, 0x00, 0x00, 0x00], PROTOCOL);
    });
}

#[test]
fn client_sending_suback_is_a_protocol_error() {
    with_deadline(Duration::from_secs(20), || {
        offence(V311, &[0x90, 0x03, 0x00, 0x01, 0x00], PROTOCOL);
        offence(V5, &[0x90, 0x04, 0x00, 0x01, 0x00, 0x00], PROTOCOL);
    });
}

#[test]
fn client_sending_unsuback_or_pingresp_is_a_protocol_error() {
    with_deadline(Duration::from_secs(20), || {
        offence(V311, &[0xB0, 0x02, 0x00, 0x01], PROTOCOL);
        offence(V5, &[0xB0, 0x04, 0x00, 0x01, 0x00, 0x00], PROTOCOL);
        both(|v| offence(v, &[0xD0, 0x00], PROTOCOL));
    });
}

#[test]
fn mqtt_3_3_2_10_v5_topic_alias_above_maximum_or_zero() {
    with_deadline(Duration::from_secs(20), || {
        // Topic Alias Maximum is 16 by default.
        for alias in [17u16, 0, 0xFFFF] {
            let [hi, lo] = alias.to_be_bytes();
            let body = publish_body(V5, b"a", None, &[0x23, hi, lo]);
            offence(V5, &pkt(0x30, &body), ReasonCode::TOPIC_ALIAS_INVALID);
        }
        // With aliases disabled (maximum 0), alias 1 is invalid too.
        let body = publish_body(V5, b"a", None, &[0x23, 0x00, 0x01]);
        offence_with(
            V5,
            |c| c.mqtt.topic_alias_maximum = 0,
            &pkt(0x30, &body),
            ReasonCode::TOPIC_ALIAS_INVALID,
        );
    });
}

#[test]
fn mqtt_3_3_4_9_v5_more_unreleased_qos2_than_receive_maximum() {
    with_deadline(Duration::from_secs(20), || {
        let scene = Scene::new(V5, |c| c.mqtt.receive_maximum = 3);
        let (mut bad, ack) = Client::connect_v5(
            scene.broker.addr,
            "greedy",
            true,
            60,
            picomq::protocol::Properties::default(),
        );
        assert_eq!(
            ack.properties.receive_maximum,
            Some(3),
            "CONNACK Receive Maximum"
        );
        for id in 1..=3u16 {
            let body = publish_body(V5, b"q2/t", Some(id), &[]);
            bad.send_raw(&pkt(0x34, &body));
            bad.expect_ack(5, id);
        }
        let body = publish_body(V5, b"q2/t", Some(4), &[]);
        bad.send_raw(&pkt(0x34, &body));
        bad.expect_disconnect(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
        scene.assert_others_unaffected();
    });
}

#[test]
fn mqtt_2_2_2_2_v5_duplicate_property() {
    with_deadline(Duration::from_secs(20), || {
        // Payload Format Indicator twice in a PUBLISH.
        let body = publish_body(V5, b"a/b", None, &[0x01, 0x01, 0x01, 0x01]);
        offence(V5, &pkt(0x30, &body), PROTOCOL);
        // Topic Alias twice.
        let body = publish_body(V5, b"a/b", None, &[0x23, 0x00, 0x01, 0x23, 0x00, 0x02]);
        offence(V5, &pkt(0x30, &body), PROTOCOL);
    });
}

#[test]
fn mqtt_3_8_2_1_2_v5_subscription_identifier_0() {
    with_deadline(Duration::from_secs(20), || {
        let body = [0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, b'a', 0x00];
        offence(V5, &pkt(0x82, &body), PROTOCOL);
    });
}

#[test]
fn mqtt_3_3_4_6_v5_client_publish_with_subscription_identifier() {
    with_deadline(Duration::from_secs(20), || {
        let body = publish_body(V5, b"a/b", None, &[0x0B, 0x05]);
        offence(V5, &pkt(0x30, &body), PROTOCOL);
    });
}

#[test]
fn length_field_running_past_the_packet() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            // Topic length says 10, the whole body is 5 bytes.
            offence(v, &[0x30, 0x05, 0x00, 0x0A, b'a', b'b', b'c'], MALFORMED);
            // SUBSCRIBE whose filter length runs past the end.
            let mut body = vec![0x00, 0x01];
            if v.is_v5() {
                body.push(0);
            }
            body.extend_from_slice(&[0x00, 0x09, b'a', 0x00]);
            offence(v, &pkt(0x82, &body), MALFORMED);
        });
    });
}

#[test]
fn truncated_packet_followed_by_close() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            let scene = Scene::new(v, |_| {});
            let mut bad = scene.bad_client();
            // Remaining Length says 10; 5 bytes come, then FIN.
            bad.send_raw(&[0x30, 0x0A, 0x00, 0x03, b'a', b'/', b'b']);
            bad.shutdown_write();
            bad.expect_closed();
            // A fixed header cut inside the Remaining Length, then FIN.
            let mut bad2 = Client::connect(scene.broker.addr, v, "offender-2");
            bad2.send_raw(&[0x30, 0x80]);
            bad2.shutdown_write();
            bad2.expect_closed();
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn truncated_connect_followed_by_close() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut c = Client::tcp(b.addr, V311);
        c.send_raw(&[0x10, 0x10, 0x00, 0x04, b'M', b'Q']);
        c.shutdown_write();
        c.expect_closed();
        assert_broker_healthy(b.addr, V311, "after-truncated-connect");
        assert_broker_healthy(b.addr, V5, "after-truncated-connect-5");
    });
}

#[test]
fn mqtt_3_3_1_2_qos0_publish_with_dup_flag() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            let body = publish_body(v, b"a/b", None, &[]);
            offence(v, &pkt(0x38, &body), MALFORMED);
        });
    });
}

/// A SUBSCRIBE with one filter "a" and the given options byte.
fn subscribe_with_options(v: ProtocolVersion, options: u8) -> Vec<u8> {
    let mut body = vec![0x00, 0x01];
    if v.is_v5() {
        body.push(0);
    }
    body.extend_from_slice(&[0x00, 0x01, b'a', options]);
    pkt(0x82, &body)
}

#[test]
fn mqtt_3_8_3_4_subscribe_options_qos_3_and_reserved_bits() {
    with_deadline(Duration::from_secs(20), || {
        // QoS 3: Malformed in 3.1.1 (close), a Protocol Error in 5.0.
        offence(V311, &subscribe_with_options(V311, 0x03), MALFORMED);
        offence(V5, &subscribe_with_options(V5, 0x03), PROTOCOL);
        // Bits above QoS are reserved in 3.1.1; bits 6-7 are reserved in 5.0.
        offence(V311, &subscribe_with_options(V311, 0x04), MALFORMED);
        offence(V5, &subscribe_with_options(V5, 0x41), MALFORMED);
        // Retain Handling 3 (5.0): a Protocol Error.
        offence(V5, &subscribe_with_options(V5, 0x31), PROTOCOL);
    });
}

#[test]
fn mqtt_3_8_3_3_subscribe_and_unsubscribe_without_filters() {
    with_deadline(Duration::from_secs(20), || {
        offence(V311, &[0x82, 0x02, 0x00, 0x01], MALFORMED);
        offence(V5, &[0x82, 0x03, 0x00, 0x01, 0x00], PROTOCOL);
        offence(V311, &[0xA2, 0x02, 0x00, 0x01], MALFORMED);
        offence(V5, &[0xA2, 0x03, 0x00, 0x01, 0x00], PROTOCOL);
    });
}

#[test]
fn mqtt_4_7_3_1_publish_with_empty_topic_and_no_alias() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            let body = publish_body(v, b"", None, &[]);
            offence(v, &pkt(0x30, &body), PROTOCOL);
        });
    });
}
