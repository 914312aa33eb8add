//! Hostile-input regression corpus: one test per class of input that has crashed, hung or bloated
//! MQTT brokers before, each over real loopback sockets against an in-process broker. In every
//! case the offending client gets the right answer (MQTT 5: DISCONNECT or CONNACK with the reason
//! code named below; 3.1.1: the connection is just closed, or SUBACK 0x80), a bystander subscribed
//! beforehand still gets its messages and a fresh client still works, and the process's resident
//! memory grows by less than a bound across the attack (loops are bounded in count and time).
//!
//! Where the classes come from (summarised in our own words from public advisories):
//! - Variable Byte Integers running to a fifth byte, and Remaining Length values that promise more
//!   data than ever arrives: NanoMQ and Mosquitto both had reads past buffers or connections that
//!   sat forever on such headers.
//! - Length fields inside a complete frame that run past its end (truncated CONNECT, PUBLISH,
//!   SUBSCRIBE, property blocks): NanoMQ's heap over-reads in its CONNECT, SUBSCRIBE and property
//!   parsers; Mosquitto's CONNECT/SUBSCRIBE parsing bugs of the same shape.
//! - QoS 1/2 PUBLISH with no packet identifier, zero-length topics, wildcards and invalid UTF-8 in
//!   topic names: crashes and ACL bypasses in several brokers that trusted the topic field.
//! - `$` topics matched by `#`: brokers leaking `$SYS` to ordinary wildcard subscribers.
//! - Deep topics (thousands of levels): stack exhaustion in recursive topic-tree matching.
//! - Thousands of User Properties in one packet: memory blow-up per property in MQTT 5 brokers.
//! - Clients sending server-only packets (CONNACK, SUBACK), a first packet other than CONNECT and
//!   a second CONNECT: state-machine confusion and NULL dereferences in NanoMQ.
//! - QoS 2 packet identifiers repeated and never released: unbounded inbound QoS 2 state.
//! - `$share/ab` and `$share//x`: NanoMQ crashed on a share name with no second slash or an empty
//!   group.
//! - Client-id takeover storms with subscribe churn: use-after-free and leaked subscriptions when
//!   a session is replaced while its subscriptions are being changed (Mosquitto, NanoMQ).
//!
//! | class | test (this file unless named) | v5 reason |
//! |---|---|---|
//! | 5-byte Remaining Length | `mqtt_malformed::mqtt_1_5_5_remaining_length_of_five_bytes` | 0x81 |
//! | 5-byte varints in the body | `overlong_varints_inside_the_body` | 0x81 |
//! | Remaining Length > data | `remaining_length_larger_than_the_data_times_out` | 0x8D |
//! | oversized Remaining Length | `mqtt_malformed::mqtt_3_2_2_3_6_packet_larger_than_maximum_packet_size` | 0x95 |
//! | truncated CONNECT/PUBLISH/SUBSCRIBE/properties | `truncated_fields_inside_complete_frames`; `mqtt_malformed::length_field_running_past_the_packet`, `truncated_packet_followed_by_close`, `truncated_connect_followed_by_close` | 0x81 |
//! | QoS>0 PUBLISH without packet id | `qos1_and_qos2_publish_without_packet_id` | 0x81 |
//! | zero-length topic | `zero_length_topic_flood`; `mqtt_malformed::mqtt_4_7_3_1_publish_with_empty_topic_and_no_alias` | 0x82 |
//! | `$` topics | `dollar_topics_are_not_matched_by_leading_wildcards` | (delivered only to `$` filters) |
//! | deep topics | `deep_topics_and_filters_are_refused_cheaply` | 0x90 / SUBACK 0x8F |
//! | wildcards in topic names | `mqtt_malformed::mqtt_3_3_2_2_publish_topic_with_wildcard` | 0x90 |
//! | invalid UTF-8 | `invalid_utf8_in_client_id_user_property_and_filter`; `mqtt_malformed::mqtt_1_5_3_1_publish_topic_with_invalid_utf8` | 0x81 |
//! | thousands of user properties | `thousands_of_user_properties_from_many_clients` | 0x97 |
//! | client sends CONNACK/SUBACK | `server_packets_and_second_connect_from_many_clients`; `mqtt_malformed::client_sending_connack_is_a_protocol_error`, `client_sending_suback_is_a_protocol_error` | 0x82 |
//! | non-CONNECT first packet | `non_connect_first_packet_flood`; `mqtt_connect::mqtt_3_1_0_1_first_packet_not_connect_is_closed` | close |
//! | second CONNECT | `server_packets_and_second_connect_from_many_clients`; `mqtt_connect::mqtt_3_1_0_2_second_connect_v5_gets_disconnect_0x82` | 0x82 |
//! | QoS 2 ids never completed | `repeated_qos2_id_never_released_holds_one_slot`; `mqtt_malformed::mqtt_3_3_4_9_v5_more_unreleased_qos2_than_receive_maximum` | 0x93 |
//! | `$share/ab`, `$share//x` | `invalid_share_names_flood`; `mqtt_shared::invalid_share_names_are_refused` | SUBACK 0x8F |
//! | takeover storm + subscribe churn | `client_id_takeover_storm_with_subscribe_churn`, `concurrent_takeover_race_with_subscribe_churn` | 0x8E to the replaced |
//!
//! Owns: nothing but tests. Must not touch: the broker beyond its public API.

mod common;

use std::time::{Duration, Instant};

use common::scene::*;
use common::*;
use picomq::protocol::{
    Packet, Properties, ProtocolVersion, QoS, ReasonCode, Subscribe, Unsubscribe,
};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;
const MALFORMED: ReasonCode = ReasonCode::MALFORMED_PACKET;
const PROTOCOL: ReasonCode = ReasonCode::PROTOCOL_ERROR;
/// RSS growth allowed across one attack, in MiB (see `assert_memory_bounded`).
const MEMORY_BOUND_MIB: u64 = 64;

fn both(check: impl Fn(ProtocolVersion)) {
    check(V311);
    check(V5);
}

/// Connects a client called `id`, sends `bytes` and expects the v5 DISCONNECT `reason` (3.1.1:
/// a bare close).
fn offend(scene: &Scene, id: &str, bytes: &[u8], reason: ReasonCode) {
    let mut bad = scene.client(id);
    bad.send_raw(bytes);
    bad.expect_disconnect(reason);
}

/// A PUBLISH: topic field, packet id if given, the v5 property block `props` (empty block if
/// `None`), payload `p`.
fn publish(v: ProtocolVersion, flags: u8, topic: &[u8], id: Option<u16>, props: &[u8]) -> Vec<u8> {
    let mut body = field(topic);
    if let Some(id) = id {
        body.extend_from_slice(&id.to_be_bytes());
    }
    if v.is_v5() {
        body.extend_from_slice(if props.is_empty() { &[0] } else { props });
    }
    body.extend_from_slice(b"p");
    packet(0x30 | flags, &body)
}

/// A SUBSCRIBE (id 1) with one filter given as raw bytes and options byte `options`.
fn subscribe(v: ProtocolVersion, filter: &[u8], options: Option<u8>) -> Vec<u8> {
    let mut body = vec![0, 1];
    if v.is_v5() {
        body.push(0);
    }
    body.extend_from_slice(&field(filter));
    body.extend(options);
    packet(0x82, &body)
}

/// Hand-made CONNECT bytes: protocol `level` (4 or 5), clean start, keep-alive 60, `rest` after
/// the keep-alive (v5 properties, client id, ...), as given.
fn raw_connect(level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = field(b"MQTT");
    body.extend_from_slice(&[level, flags, 0, 60]);
    body.extend_from_slice(rest);
    packet(0x10, &body)
}

/// Sends a hand-made CONNECT on a new socket; v5 must get CONNACK `reason` then a close, 3.1.1
/// a close (no CONNACK can say "malformed" before 5.0).
fn refused_connect(
    addr: std::net::SocketAddr,
    v: ProtocolVersion,
    bytes: &[u8],
    reason: ReasonCode,
) {
    let mut c = Client::tcp(addr, v);
    c.send_raw(bytes);
    if v.is_v5() {
        assert_eq!(c.expect_connack().reason, reason, "CONNACK reason");
    }
    c.expect_closed();
}

#[test]
fn overlong_varints_inside_the_body() {
    with_deadline(Duration::from_secs(20), || {
        let scene = Scene::new(V5, |_| {});
        assert_memory_bounded(MEMORY_BOUND_MIB, || {
            // Property length in five bytes.
            let block = [0xFF, 0xFF, 0xFF, 0xFF, 0x01];
            offend(&scene, "v1", &publish(V5, 0, b"t", None, &block), MALFORMED);
            // Subscription Identifier in five bytes inside a SUBSCRIBE property block.
            let mut body = vec![0, 1, 6, 0x0B, 0x80, 0x80, 0x80, 0x80, 0x01];
            body.extend_from_slice(&field(b"t"));
            body.push(0);
            offend(&scene, "v2", &packet(0x82, &body), MALFORMED);
            // Remaining Length cut short in a fourth continuation byte, then more data.
            offend(
                &scene,
                "v3",
                &[0x30, 0x80, 0x80, 0x80, 0x80, 0x00],
                MALFORMED,
            );
        });
        scene.assert_others_unaffected();
    });
}

#[test]
fn remaining_length_larger_than_the_data_times_out() {
    with_deadline(Duration::from_secs(30), || {
        both(|v| {
            let scene = Scene::new(v, |c| c.mqtt.limits.packet_timeout = Duration::from_secs(1));
            let mut bad = scene.client("promiser");
            // Promises 200,000 bytes (within max_packet_size), sends 7.
            bad.send_raw(&[0x30, 0xC0, 0x9A, 0x0C, 0x00, 0x01, b't']);
            let start = Instant::now();
            bad.expect_disconnect(ReasonCode::KEEP_ALIVE_TIMEOUT);
            assert!(start.elapsed() < Duration::from_secs(4));
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn truncated_fields_inside_complete_frames() {
    with_deadline(Duration::from_secs(30), || {
        both(|v| {
            let scene = Scene::new(v, |_| {});
            let level = if v.is_v5() { 5 } else { 4 };
            let props: &[u8] = if v.is_v5() { &[0] } else { &[] };
            assert_memory_bounded(MEMORY_BOUND_MIB, || {
                // CONNECT: client id length 50, 2 bytes follow.
                let mut rest = props.to_vec();
                rest.extend_from_slice(&[0, 50, b'a', b'b']);
                refused_connect(scene.addr(), v, &raw_connect(level, 0x02, &rest), MALFORMED);
                // CONNECT with a will flag but no will topic.
                let mut rest = props.to_vec();
                rest.extend_from_slice(&field(b"willy"));
                refused_connect(scene.addr(), v, &raw_connect(level, 0x06, &rest), MALFORMED);
                // SUBSCRIBE whose options byte is missing.
                offend(&scene, "t1", &subscribe(v, b"a/b", None), MALFORMED);
                if v.is_v5() {
                    // CONNECT property block longer than the packet.
                    let rest = [0x20, 0x11, 0, 0, 0, 5, 0, 1, b'x'];
                    refused_connect(scene.addr(), v, &raw_connect(5, 0x02, &rest), MALFORMED);
                    // PUBLISH property block longer than the packet.
                    offend(
                        &scene,
                        "t2",
                        &publish(v, 0, b"t", None, &[40, 0x26]),
                        MALFORMED,
                    );
                    // User Property whose value runs past the block.
                    let block = [8, 0x26, 0, 1, b'k', 0, 9, b'v', b'v', b'v'];
                    offend(
                        &scene,
                        "t3",
                        &publish(v, 0, b"t", None, &block[..9]),
                        MALFORMED,
                    );
                }
            });
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn qos1_and_qos2_publish_without_packet_id() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            let scene = Scene::new(v, |_| {});
            // The body ends right after the topic: no room for a packet identifier.
            for (n, flags) in [(1, 0x02u8), (2, 0x04)] {
                let bytes = packet(0x30 | flags, &field(b"a/b"));
                offend(&scene, &format!("no-id-{n}"), &bytes, MALFORMED);
            }
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn zero_length_topic_flood() {
    with_deadline(Duration::from_secs(30), || {
        both(|v| {
            let scene = Scene::new(v, |_| {});
            assert_memory_bounded(MEMORY_BOUND_MIB, || {
                for i in 0..50 {
                    let bytes = publish(v, 0x02, b"", Some(1), &[]);
                    offend(&scene, &format!("empty-{i}"), &bytes, PROTOCOL);
                }
            });
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn dollar_topics_are_not_matched_by_leading_wildcards() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            let scene = Scene::new(v, |_| {});
            let mut wild = scene.client("wild");
            let codes = wild.subscribe(1, &[("#", QoS::AtMostOnce), ("+/x", QoS::AtMostOnce)]);
            assert_eq!(codes, vec![ReasonCode(0); 2]);
            let mut dollar = scene.client("dollar");
            // Not `$SYS/`: clients may not publish there (sys_topics.rs), other `$` topics they may.
            dollar.sub_ok(1, "$dev/#", QoS::AtMostOnce);
            let mut p = scene.client("dollar-pub");
            p.publish("$dev/x", b"fake", QoS::AtLeastOnce, false, 1);
            p.publish("$x/x", b"fake", QoS::AtLeastOnce, true, 2);
            assert_publish(&dollar.expect_publish(), "$dev/x", b"fake", QoS::AtMostOnce);
            // The wildcard subscriber sees neither: the first message it gets is a later one to
            // a normal topic (one copy for its two overlapping filters), then nothing.
            p.publish("n/x", b"normal", QoS::AtLeastOnce, false, 3);
            let got = wild.expect_publish();
            assert_eq!(got.topic, "n/x", "{got:?}");
            wild.expect_nothing(QUIET);
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn deep_topics_and_filters_are_refused_cheaply() {
    with_deadline(Duration::from_secs(30), || {
        both(|v| {
            // Lift the length limit so the level limit (64) is what refuses.
            let scene = Scene::new(v, |c| c.mqtt.limits.max_topic_length = 65535);
            let deep_name = vec!["a"; 20_000].join("/");
            let deep_filter = format!("{}/#", vec!["+"; 20_000].join("/"));
            assert_memory_bounded(MEMORY_BOUND_MIB, || {
                let mut c = scene.client("deep-sub");
                let codes = c.subscribe(1, &[(&deep_filter, QoS::AtMostOnce)]);
                let want = if v.is_v5() {
                    ReasonCode::TOPIC_FILTER_INVALID
                } else {
                    ReasonCode::UNSPECIFIED_ERROR
                };
                assert_eq!(codes, vec![want]);
                let p = publish_packet(&deep_name, b"x", QoS::AtMostOnce, false, 0);
                let mut bad = scene.client("deep-pub");
                bad.send(&Packet::Publish(p));
                bad.expect_disconnect(ReasonCode::TOPIC_NAME_INVALID);
            });
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn invalid_utf8_in_client_id_user_property_and_filter() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            let scene = Scene::new(v, |_| {});
            let level = if v.is_v5() { 5 } else { 4 };
            let mut rest: Vec<u8> = if v.is_v5() { vec![0] } else { vec![] };
            rest.extend_from_slice(&field(b"id\xFF\xFE"));
            refused_connect(scene.addr(), v, &raw_connect(level, 0x02, &rest), MALFORMED);
            offend(
                &scene,
                "u1",
                &subscribe(v, b"a/\xC0\xAF", Some(0)),
                MALFORMED,
            );
            if v.is_v5() {
                let block = [7, 0x26, 0, 1, 0xFF, 0, 1, b'v'];
                offend(&scene, "u2", &publish(v, 0, b"t", None, &block), MALFORMED);
            }
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn thousands_of_user_properties_from_many_clients() {
    with_deadline(Duration::from_secs(30), || {
        let scene = Scene::new(V5, |_| {});
        // 10,000 properties (70 KB) per packet, 20 clients: refused before they are stored.
        let bytes = publish(V5, 0, b"t", None, &user_properties_block(10_000));
        assert_memory_bounded(MEMORY_BOUND_MIB, || {
            let mut clients: Vec<Client> = (0..20)
                .map(|i| scene.client(&format!("props-{i}")))
                .collect();
            for c in &mut clients {
                c.send_raw(&bytes);
            }
            for c in &mut clients {
                c.expect_disconnect(ReasonCode::QUOTA_EXCEEDED);
            }
            // The same flood in CONNECT: CONNACK 0x97 before any session exists.
            let mut connect = connect_packet(V5, "props-connect", true, 60);
            connect.properties = Properties {
                user_properties: vec![("k".into(), "v".into()); 10_000],
                ..Properties::default()
            };
            let (mut c, ack) = Client::handshake(scene.addr(), connect);
            assert_eq!(ack.reason, ReasonCode::QUOTA_EXCEEDED);
            c.expect_closed();
        });
        scene.assert_others_unaffected();
    });
}

#[test]
fn server_packets_and_second_connect_from_many_clients() {
    with_deadline(Duration::from_secs(30), || {
        both(|v| {
            let scene = Scene::new(v, |_| {});
            let connack: &[u8] = if v.is_v5() {
                &[0x20, 3, 0, 0, 0]
            } else {
                &[0x20, 2, 0, 0]
            };
            let suback: &[u8] = &[0x90, 3, 0, 1, 0];
            let again = encode(
                &Packet::Connect(Box::new(connect_packet(v, "x", true, 60))),
                v,
            );
            assert_memory_bounded(MEMORY_BOUND_MIB, || {
                for i in 0..20 {
                    offend(&scene, &format!("connack-{i}"), connack, PROTOCOL);
                    offend(&scene, &format!("suback-{i}"), suback, PROTOCOL);
                    offend(&scene, &format!("again-{i}"), &again, PROTOCOL);
                }
            });
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn non_connect_first_packet_flood() {
    with_deadline(Duration::from_secs(30), || {
        let scene = Scene::new(V5, |_| {});
        let firsts: [&[u8]; 4] = [
            &[0xC0, 0],                   // PINGREQ
            &[0x30, 4, 0, 1, b't', b'p'], // PUBLISH
            &[0x20, 2, 0, 0],             // CONNACK
            &[0xE0, 0],                   // DISCONNECT
        ];
        assert_memory_bounded(MEMORY_BOUND_MIB, || {
            for i in 0..100 {
                let mut c = Client::tcp(scene.addr(), V5);
                c.send_raw(firsts[i % firsts.len()]);
                c.expect_closed();
            }
        });
        scene.assert_others_unaffected();
    });
}

#[test]
fn repeated_qos2_id_never_released_holds_one_slot() {
    with_deadline(Duration::from_secs(30), || {
        both(|v| {
            let scene = Scene::new(v, |c| c.mqtt.receive_maximum = 4);
            let mut bad = scene.client("q2-hoarder");
            assert_memory_bounded(MEMORY_BOUND_MIB, || {
                // The same id 500 times, never released: one PUBREC each, one slot held.
                let one = publish(v, 0x04, b"q2/t", Some(7), &[]);
                bad.send_raw(&one.repeat(500));
                for _ in 0..500 {
                    match bad.expect_packet() {
                        Packet::PubRec(r) => assert_eq!(r.packet_id, 7),
                        other => panic!("expected PUBREC 7, got {other:?}"),
                    }
                }
            });
            // Three more distinct ids fit in Receive Maximum 4 ...
            for id in 1..=3 {
                bad.send_raw(&publish(v, 0x04, b"q2/t", Some(id), &[]));
                bad.expect_ack(5, id);
            }
            // ... and a fifth is over it.
            bad.send_raw(&publish(v, 0x04, b"q2/t", Some(9), &[]));
            bad.expect_disconnect(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn invalid_share_names_flood() {
    with_deadline(Duration::from_secs(30), || {
        both(|v| {
            let scene = Scene::new(v, |_| {});
            let mut c = scene.client("share-abuser");
            let bad = if v.is_v5() {
                ReasonCode::TOPIC_FILTER_INVALID
            } else {
                ReasonCode::UNSPECIFIED_ERROR
            };
            assert_memory_bounded(MEMORY_BOUND_MIB, || {
                for id in 1..=200u16 {
                    let filters = [
                        ("$share/ab", QoS::AtLeastOnce),
                        ("$share//x", QoS::AtMostOnce),
                    ];
                    assert_eq!(c.subscribe(id, &filters), vec![bad; 2]);
                }
            });
            c.ping();
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn client_id_takeover_storm_with_subscribe_churn() {
    with_deadline(Duration::from_secs(60), || {
        both(|v| {
            let scene = Scene::new(v, |c| c.mqtt.limits.max_subscriptions_per_client = 50);
            let persistent = |id: &str| {
                let mut c = connect_packet(v, id, false, 60);
                if v.is_v5() {
                    c.properties.session_expiry_interval = Some(60);
                }
                c
            };
            let quota = if v.is_v5() {
                ReasonCode::QUOTA_EXCEEDED
            } else {
                ReasonCode::UNSPECIFIED_ERROR
            };
            assert_memory_bounded(MEMORY_BOUND_MIB, || {
                // Each connection takes the session over from the previous one (which is left
                // unread) and adds a filter: the session keeps 50, the rest hit the quota.
                let mut previous: Option<Client> = None;
                for i in 0..120u16 {
                    let (mut c, ack) = Client::handshake(scene.addr(), persistent("storm"));
                    assert_eq!(ack.reason, ReasonCode::SUCCESS);
                    assert_eq!(ack.session_present, i > 0);
                    let filter = format!("churn/{i}");
                    let want = if i < 50 { ReasonCode(1) } else { quota };
                    assert_eq!(c.subscribe(1, &[(&filter, QoS::AtLeastOnce)]), vec![want]);
                    if let Some(mut old) = previous.replace(c) {
                        if v.is_v5() {
                            match old.expect_packet() {
                                Packet::Disconnect(d) => {
                                    assert_eq!(d.reason, ReasonCode::SESSION_TAKEN_OVER)
                                }
                                other => panic!("expected DISCONNECT 0x8E, got {other:?}"),
                            }
                        }
                        old.expect_closed();
                    }
                }
                // Clean-start churn on a second id: every connection starts empty.
                for i in 0..60u16 {
                    let (mut c, ack) =
                        Client::handshake(scene.addr(), connect_packet(v, "churn2", true, 60));
                    assert!(!ack.session_present);
                    c.sub_ok(1, &format!("churn2/{i}"), QoS::AtMostOnce);
                    c.unsubscribe(2, &[&format!("churn2/{i}")]);
                }
                let mut last = previous.expect("a last connection");
                let mut p = scene.client("storm-pub");
                p.publish("churn/60", b"over quota", QoS::AtLeastOnce, false, 1);
                p.publish("churn/49", b"kept", QoS::AtLeastOnce, false, 2);
                let got = last.expect_publish_acked();
                assert_publish(&got, "churn/49", b"kept", QoS::AtLeastOnce);
                last.expect_nothing(QUIET);
            });
            scene.assert_others_unaffected();
        });
    });
}

/// One racer connection: CONNECT with a persistent session, SUBSCRIBE `filter`, UNSUBSCRIBE
/// `previous`, then read until the SUBACK, a close, or a short while. Another racer may take the
/// session over at any point, so every send may fail and only the packets that may legally come
/// are accepted.
fn race_once(addr: std::net::SocketAddr, v: ProtocolVersion, filter: String, previous: String) {
    let mut connect = connect_packet(v, "racer", false, 60);
    if v.is_v5() {
        connect.properties.session_expiry_interval = Some(60);
    }
    let mut c = Client::tcp(addr, v);
    let sub = Subscribe {
        packet_id: 1,
        filters: vec![(filter, sub_opts(QoS::AtLeastOnce))],
        properties: Properties::default(),
    };
    let unsub = Unsubscribe {
        packet_id: 2,
        filters: vec![previous],
        properties: Properties::default(),
    };
    let mut bytes = encode(&Packet::Connect(Box::new(connect)), v);
    bytes.extend_from_slice(&encode(&Packet::Subscribe(sub), v));
    bytes.extend_from_slice(&encode(&Packet::Unsubscribe(unsub), v));
    if c.try_send_raw(&bytes).is_err() {
        return;
    }
    for _ in 0..5 {
        match c.recv(Duration::from_millis(200)) {
            Recv::Packet(Packet::ConnAck(a)) => assert_eq!(a.reason, ReasonCode::SUCCESS),
            Recv::Packet(Packet::SubAck(_)) => {}
            Recv::Packet(Packet::UnsubAck(_)) => return,
            Recv::Packet(Packet::Disconnect(d)) => {
                assert_eq!(d.reason, ReasonCode::SESSION_TAKEN_OVER);
            }
            Recv::Packet(other) => panic!("racer got {other:?}"),
            Recv::Closed | Recv::Timeout => return,
        }
    }
}

#[test]
fn concurrent_takeover_race_with_subscribe_churn() {
    with_deadline(Duration::from_secs(60), || {
        both(|v| {
            let scene = Scene::new(v, |c| c.mqtt.limits.max_subscriptions_per_client = 50);
            let addr = scene.addr();
            assert_memory_bounded(MEMORY_BOUND_MIB, || {
                // Four threads, 25 connections each, all with one client id, each connection
                // adding a filter and dropping its previous one while the others take over.
                let racers: Vec<_> = (0..4)
                    .map(|t| {
                        std::thread::spawn(move || {
                            for i in 0..25 {
                                let prev = format!("race/{t}/{}", i.max(1) - 1);
                                race_once(addr, v, format!("race/{t}/{i}"), prev);
                            }
                        })
                    })
                    .collect();
                for r in racers {
                    r.join().expect("racer thread");
                }
            });
            // The id still works, and a clean start empties the session whatever the race left.
            let (mut c, ack) = Client::handshake(addr, connect_packet(v, "racer", true, 60));
            assert_eq!(ack.reason, ReasonCode::SUCCESS);
            assert!(!ack.session_present);
            let mut p = scene.client("race-pub");
            p.publish("race/0/24", b"stale", QoS::AtLeastOnce, false, 1);
            c.expect_nothing(QUIET);
            c.sub_ok(1, "race/final", QoS::AtLeastOnce);
            p.publish("race/final", b"fresh", QoS::AtLeastOnce, false, 2);
            assert_publish(
                &c.expect_publish_acked(),
                "race/final",
                b"fresh",
                QoS::AtLeastOnce,
            );
            scene.assert_others_unaffected();
        });
    });
}
