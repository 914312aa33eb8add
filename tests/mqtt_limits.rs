//! The `[limits]` settings enforced over real loopback sockets, each with its MQTT 5 reason code
//! and its MQTT 3.1.1 behaviour, and in each case a bystander that keeps being served:
//! `max_topic_length` (PUBLISH and will 0x90, SUBACK 0x8F / 0x80), `max_subscriptions_per_client`
//! (SUBACK 0x97 / 0x80, re-subscribing not counted), `max_retained_messages` and
//! `max_retained_bytes` (new topics delivered but not stored; replace and clear always work),
//! `max_user_properties` and `max_properties_size` (DISCONNECT / CONNACK 0x97), `packet_timeout`
//! (0x8D even with keep-alive 0) and the publish rate limit (throttle: slower, nothing lost;
//! disconnect: 0x96).
//!
//! Owns: nothing but tests. Must not touch: the broker beyond its public API.

mod common;

use std::time::{Duration, Instant};

use common::scene::*;
use common::*;
use picomq::config::RateLimitPolicy;
use picomq::protocol::{Packet, Properties, ProtocolVersion, QoS, ReasonCode};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

fn both(check: impl Fn(ProtocolVersion)) {
    check(V311);
    check(V5);
}

/// SUBACK failure code as decoded: the v5 reason, or 0x80 for 3.1.1.
fn refused(v: ProtocolVersion, reason: ReasonCode) -> ReasonCode {
    if v.is_v5() {
        reason
    } else {
        ReasonCode::UNSPECIFIED_ERROR
    }
}

#[test]
fn max_topic_length_publish_over_it_is_0x90_and_at_it_works() {
    with_deadline(Duration::from_secs(30), || {
        both(|v| {
            let scene = Scene::new(v, |c| c.mqtt.limits.max_topic_length = 32);
            let at = "a".repeat(32);
            let mut ok = scene.client("at-limit");
            ok.sub_ok(1, &at, QoS::AtLeastOnce);
            ok.publish(&at, b"fits", QoS::AtLeastOnce, false, 2);
            assert_publish(&ok.expect_publish_acked(), &at, b"fits", QoS::AtLeastOnce);
            let mut bad = scene.client("too-long");
            let p = publish_packet(&"a".repeat(33), b"x", QoS::AtLeastOnce, false, 1);
            bad.send(&Packet::Publish(p));
            bad.expect_disconnect(ReasonCode::TOPIC_NAME_INVALID);
            ok.ping();
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn max_topic_length_subscribe_over_it_is_suback_0x8f_or_0x80() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            let scene = Scene::new(v, |c| c.mqtt.limits.max_topic_length = 32);
            let mut c = scene.client("long-filter");
            let long = format!("{}/#", "b".repeat(31));
            let shared = format!("$share/g/{}", "c".repeat(24));
            let codes = c.subscribe(
                1,
                &[
                    (&long, QoS::AtMostOnce),
                    (&format!("{}/#", "b".repeat(30)), QoS::AtMostOnce),
                    (&shared, QoS::AtMostOnce),
                ],
            );
            let bad = refused(v, ReasonCode::TOPIC_FILTER_INVALID);
            assert_eq!(codes, vec![bad, ReasonCode(0), bad], "{v:?}");
            c.ping();
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn will_topic_longer_than_max_topic_length_is_refused() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.limits.max_topic_length = 32);
        let mut connect = connect_packet(V5, "long-will", true, 60);
        connect.will = Some(will(&"w".repeat(33), b"bye", QoS::AtMostOnce, false));
        let (mut c, ack) = Client::handshake(b.addr, connect);
        assert_eq!(ack.reason, ReasonCode::TOPIC_NAME_INVALID);
        c.expect_closed();
        // 3.1.1: a will the server cannot accept closes the connection without CONNACK.
        let mut connect = connect_packet(V311, "long-will-3", true, 60);
        connect.will = Some(will(&"w".repeat(33), b"bye", QoS::AtMostOnce, false));
        let mut c = Client::tcp(b.addr, V311);
        c.send(&Packet::Connect(Box::new(connect)));
        c.expect_closed();
        assert_broker_healthy(b.addr, V5, "after-long-will");
    });
}

#[test]
fn max_subscriptions_per_client_is_suback_0x97_or_0x80_and_resubscribing_is_free() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            let scene = Scene::new(v, |c| c.mqtt.limits.max_subscriptions_per_client = 3);
            let mut c = scene.client("greedy");
            let granted = c.subscribe(1, &[("s/1", QoS::AtMostOnce), ("s/2", QoS::AtMostOnce)]);
            assert_eq!(granted, vec![ReasonCode(0); 2]);
            // The third fits, the fourth is over; s/1 again replaces and does not count.
            let codes = c.subscribe(
                2,
                &[
                    ("s/3", QoS::AtLeastOnce),
                    ("s/4", QoS::AtMostOnce),
                    ("s/1", QoS::AtLeastOnce),
                ],
            );
            let quota = refused(v, ReasonCode::QUOTA_EXCEEDED);
            assert_eq!(codes, vec![ReasonCode(1), quota, ReasonCode(1)], "{v:?}");
            // Unsubscribing frees a place.
            c.unsubscribe(3, &["s/2"]);
            c.sub_ok(4, "s/4", QoS::AtMostOnce);
            assert_eq!(c.subscribe(5, &[("s/5", QoS::AtMostOnce)]), vec![quota]);
            // The subscriptions held still work.
            c.publish("s/4", b"held", QoS::AtMostOnce, false, 0);
            assert_publish(&c.expect_publish(), "s/4", b"held", QoS::AtMostOnce);
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn retained_store_full_delivers_new_topics_without_storing_and_replace_or_clear_always_work() {
    with_deadline(Duration::from_secs(30), || {
        let b = TestBroker::start_with(|c| c.mqtt.limits.max_retained_messages = 2);
        let mut live = Client::connect(b.addr, V5, "live");
        live.sub_ok(1, "r/#", QoS::AtLeastOnce);
        let mut p = Client::connect(b.addr, V5, "retainer");
        for (i, topic) in ["r/1", "r/2", "r/3"].iter().enumerate() {
            // Acknowledged with Success, and delivered live, even the one not stored.
            p.publish(topic, b"v1", QoS::AtLeastOnce, true, i as u16 + 1);
            assert_publish(&live.expect_publish_acked(), topic, b"v1", QoS::AtLeastOnce);
        }
        let stored = |tag: &str| -> Vec<(String, Vec<u8>)> {
            let mut c = Client::connect(b.addr, V5, &format!("late-{tag}"));
            c.sub_ok(1, "r/#", QoS::AtMostOnce);
            let mut got: Vec<(String, Vec<u8>)> = Vec::new();
            while let Recv::Packet(Packet::Publish(m)) = c.recv(QUIET) {
                got.push((m.topic.clone(), m.payload.to_vec()));
            }
            got.sort();
            got
        };
        let pair = |t: &str, v: &[u8]| (t.to_owned(), v.to_vec());
        assert_eq!(stored("a"), vec![pair("r/1", b"v1"), pair("r/2", b"v1")]);
        // Replacing a stored topic works while full; so does clearing one, which frees a place.
        p.publish("r/1", b"v2", QoS::AtLeastOnce, true, 10);
        p.publish("r/2", b"", QoS::AtLeastOnce, true, 11);
        p.publish("r/3", b"v3", QoS::AtLeastOnce, true, 12);
        assert_eq!(stored("b"), vec![pair("r/1", b"v2"), pair("r/3", b"v3")]);
        assert_broker_healthy(b.addr, V5, "after-retained-full");
    });
}

/// A v5 PUBLISH (QoS 0, topic `t`) whose property block is `props`.
fn publish_with_props(props: &[u8]) -> Vec<u8> {
    let mut body = field(b"t");
    body.extend_from_slice(props);
    body.extend_from_slice(b"payload");
    packet(0x30, &body)
}

#[test]
fn user_properties_over_max_user_properties_are_0x97_and_at_it_work() {
    with_deadline(Duration::from_secs(20), || {
        let scene = Scene::new(V5, |c| c.mqtt.limits.max_user_properties = 8);
        let mut ok = scene.client("eight-props");
        ok.sub_ok(1, "t", QoS::AtMostOnce);
        ok.send_raw(&publish_with_props(&user_properties_block(8)));
        assert_eq!(ok.expect_publish().properties.user_properties.len(), 8);
        let mut bad = scene.client("nine-props");
        bad.send_raw(&publish_with_props(&user_properties_block(9)));
        bad.expect_disconnect(ReasonCode::QUOTA_EXCEEDED);
        scene.assert_others_unaffected();
    });
}

#[test]
fn property_block_over_max_properties_size_is_0x97() {
    with_deadline(Duration::from_secs(20), || {
        let scene = Scene::new(V5, |c| c.mqtt.limits.max_properties_size = 100);
        let mut bad = scene.client("fat-props");
        // One Correlation Data property of 200 bytes: a block of 203 bytes.
        let mut props = vec![0x09];
        props.extend_from_slice(&field(&[7; 200]));
        let mut block = varint(props.len());
        block.extend_from_slice(&props);
        bad.send_raw(&publish_with_props(&block));
        bad.expect_disconnect(ReasonCode::QUOTA_EXCEEDED);
        scene.assert_others_unaffected();
    });
}

#[test]
fn connect_with_too_many_user_properties_gets_connack_0x97() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.limits.max_user_properties = 4);
        let mut connect = connect_packet(V5, "props-connect", true, 60);
        connect.properties = Properties {
            user_properties: vec![("k".into(), "v".into()); 5],
            ..Properties::default()
        };
        let (mut c, ack) = Client::handshake(b.addr, connect);
        assert_eq!(ack.reason, ReasonCode::QUOTA_EXCEEDED);
        c.expect_closed();
        assert_broker_healthy(b.addr, V5, "after-props-connect");
    });
}

#[test]
fn packet_timeout_closes_a_client_that_never_finishes_a_packet_even_with_keep_alive_0() {
    with_deadline(Duration::from_secs(30), || {
        both(|v| {
            let scene = Scene::new(v, |c| c.mqtt.limits.packet_timeout = Duration::from_secs(1));
            let (mut slow, ack) =
                Client::handshake(scene.addr(), connect_packet(v, "slowloris", true, 0));
            assert_eq!(ack.reason, ReasonCode::SUCCESS);
            // A PUBLISH announcing 100 bytes, of which 10 come, then a byte now and then.
            slow.send_raw(&[0x30, 100, 0, 1, b't', 1, 2, 3, 4, 5, 6, 7]);
            let start = Instant::now();
            for _ in 0..3 {
                std::thread::sleep(Duration::from_millis(200));
                let _ = slow.try_send_raw(&[0]);
            }
            slow.expect_disconnect(ReasonCode::KEEP_ALIVE_TIMEOUT);
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(900), "closed after {took:?}");
            assert!(took < Duration::from_secs(3), "closed after {took:?}");
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn packet_timeout_does_not_touch_idle_clients_between_packets() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.limits.packet_timeout = Duration::from_secs(1));
        let (mut idle, _) = Client::handshake(b.addr, connect_packet(V5, "idle", true, 0));
        idle.expect_nothing(Duration::from_millis(1600));
        idle.ping();
    });
}

/// Sends `n` QoS 1 PUBLISH packets at once and waits for every PUBACK; returns how long it took.
fn burst_qos1(c: &mut Client, topic: &str, n: u16, payload: &[u8]) -> Duration {
    let start = Instant::now();
    let mut bytes = Vec::new();
    for id in 1..=n {
        let p = publish_packet(topic, payload, QoS::AtLeastOnce, false, id);
        bytes.extend_from_slice(&encode(&Packet::Publish(p), c.version));
    }
    c.send_raw(&bytes);
    for id in 1..=n {
        match c.expect_packet_within(Duration::from_secs(10)) {
            Packet::PubAck(a) => assert_eq!((a.packet_id, a.reason), (id, ReasonCode::SUCCESS)),
            other => panic!("expected PUBACK {id}, got {other:?}"),
        }
    }
    start.elapsed()
}

#[test]
fn publish_rate_throttle_slows_the_client_and_loses_nothing() {
    with_deadline(Duration::from_secs(40), || {
        both(|v| {
            // 20 messages/s with a burst of 20: 50 messages need about 1.5 s.
            let scene = Scene::new(v, |c| c.mqtt.limits.publish_rate = 20);
            let mut sub = scene.client("rate-sub");
            sub.sub_ok(1, "rate/t", QoS::AtLeastOnce);
            let mut fast = scene.client("rate-pub");
            let took = burst_qos1(&mut fast, "rate/t", 50, b"m");
            assert!(
                took >= Duration::from_millis(1200),
                "50 at 20/s took {took:?}"
            );
            assert!(took < Duration::from_secs(6), "50 at 20/s took {took:?}");
            assert_eq!(sub.collect_publishes(50).len(), 50, "nothing lost");
            scene.assert_others_unaffected();
        });
    });
}

#[test]
fn publish_bytes_rate_throttle_counts_whole_packets() {
    with_deadline(Duration::from_secs(30), || {
        // 20 KB/s: 40 packets of ~1 KB need about 1 s beyond the first second's burst.
        let scene = Scene::new(V5, |c| c.mqtt.limits.publish_bytes_rate = 20_000);
        let mut fast = scene.client("bytes-pub");
        let took = burst_qos1(&mut fast, "bytes/t", 40, &[b'x'; 1000]);
        assert!(
            took >= Duration::from_millis(800),
            "40 KB at 20 KB/s took {took:?}"
        );
        assert!(
            took < Duration::from_secs(6),
            "40 KB at 20 KB/s took {took:?}"
        );
        scene.assert_others_unaffected();
    });
}

#[test]
fn publish_rate_disconnect_policy_is_0x96_or_close() {
    with_deadline(Duration::from_secs(20), || {
        both(|v| {
            let scene = Scene::new(v, |c| {
                c.mqtt.limits.publish_rate = 5;
                c.mqtt.limits.rate_limit_policy = RateLimitPolicy::Disconnect;
            });
            let mut fast = scene.client("rate-offender");
            let mut bytes = Vec::new();
            for _ in 0..20 {
                let p = publish_packet("rate/x", b"m", QoS::AtMostOnce, false, 0);
                bytes.extend_from_slice(&encode(&Packet::Publish(p), v));
            }
            fast.send_raw(&bytes);
            fast.expect_disconnect(ReasonCode::MESSAGE_RATE_TOO_HIGH);
            // A client within the rate is not disconnected.
            let mut calm = scene.client("rate-calm");
            for _ in 0..3 {
                calm.publish("rate/x", b"m", QoS::AtLeastOnce, false, 1);
            }
            calm.ping();
            scene.assert_others_unaffected();
        });
    });
}
