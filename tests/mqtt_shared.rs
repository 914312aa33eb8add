//! Shared subscriptions (`$share/{group}/{filter}`, MQTT 5.0 section 4.8.2, also offered to 3.1.1
//! clients) over real loopback sockets: each message goes to exactly one member of each group
//! (round-robin by default, sticky and random by config), groups are independent of each other and
//! of normal subscriptions, no retained messages on a shared subscribe, online members preferred
//! to offline persistent ones, messages of a member whose session ends handed to another member,
//! invalid share names refused, No Local on a shared subscription a Protocol Error, and the
//! feature switched off by config (0x9E).

mod common;

use std::time::Duration;

use common::*;
use picomq::config::SharedStrategy;
use picomq::protocol::{
    Packet, Properties, ProtocolVersion, QoS, ReasonCode, Subscribe, SubscriptionOptions,
};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// Reads exactly `n` PUBLISH packets (acknowledged) and returns their payloads as numbers.
fn payload_numbers(c: &mut Client, n: usize) -> Vec<u16> {
    c.collect_publishes(n)
        .iter()
        .map(|m| u16::from_be_bytes([m.payload[0], m.payload[1]]))
        .collect()
}

/// Publishes messages `range` on `topic` (payload = the number, QoS 1).
fn publish_numbers(p: &mut Client, topic: &str, range: std::ops::Range<u16>) {
    for i in range {
        p.publish(topic, &i.to_be_bytes(), QoS::AtLeastOnce, false, i + 1);
    }
}

#[test]
fn mqtt_4_8_2_each_message_goes_to_one_member_round_robin() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut m1 = Client::connect(b.addr, V311, "rr-m1");
        m1.sub_ok(1, "$share/g/sh/t", QoS::AtLeastOnce);
        let mut m2 = Client::connect(b.addr, V5, "rr-m2");
        m2.sub_ok(1, "$share/g/sh/t", QoS::AtLeastOnce);
        let mut plain = Client::connect(b.addr, V5, "rr-plain");
        plain.sub_ok(1, "sh/t", QoS::AtLeastOnce);
        let mut p = Client::connect(b.addr, V311, "rr-pub");
        publish_numbers(&mut p, "sh/t", 0..10);
        // The normal subscriber gets everything; the members split it evenly, one copy each.
        assert_eq!(payload_numbers(&mut plain, 10), (0..10).collect::<Vec<_>>());
        let a = payload_numbers(&mut m1, 5);
        let b2 = payload_numbers(&mut m2, 5);
        m1.expect_nothing(QUIET);
        m2.expect_nothing(Duration::from_millis(50));
        let mut all: Vec<u16> = a.iter().chain(&b2).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>(), "m1 {a:?}, m2 {b2:?}");
    });
}

#[test]
fn mqtt_4_8_2_two_groups_each_get_every_message_once() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut ga = Client::connect(b.addr, V5, "grp-a");
        ga.sub_ok(1, "$share/a/two/+", QoS::AtLeastOnce);
        let mut gb1 = Client::connect(b.addr, V5, "grp-b1");
        gb1.sub_ok(1, "$share/b/two/+", QoS::AtLeastOnce);
        let mut gb2 = Client::connect(b.addr, V5, "grp-b2");
        gb2.sub_ok(1, "$share/b/two/+", QoS::AtLeastOnce);
        let mut p = Client::connect(b.addr, V5, "grp-pub");
        publish_numbers(&mut p, "two/x", 0..6);
        assert_eq!(payload_numbers(&mut ga, 6), (0..6).collect::<Vec<_>>());
        let mut bs = payload_numbers(&mut gb1, 3);
        bs.extend(payload_numbers(&mut gb2, 3));
        bs.sort_unstable();
        assert_eq!(bs, (0..6).collect::<Vec<_>>());
        ga.expect_nothing(QUIET);
        gb1.expect_nothing(Duration::from_millis(50));
        gb2.expect_nothing(Duration::from_millis(50));
    });
}

#[test]
fn shared_group_with_leading_wildcard_spans_every_shard() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut m1 = Client::connect(b.addr, V311, "wide-m1");
        m1.sub_ok(1, "$share/w/+/wide", QoS::AtLeastOnce);
        let mut m2 = Client::connect(b.addr, V311, "wide-m2");
        m2.sub_ok(1, "$share/w/+/wide", QoS::AtLeastOnce);
        let mut p = Client::connect(b.addr, V311, "wide-pub");
        let firsts = ["a", "b", "c", "d", "e", "f", "g", "h"];
        for (i, f) in firsts.iter().enumerate() {
            let i = i as u16;
            p.publish(
                &format!("{f}/wide"),
                &i.to_be_bytes(),
                QoS::AtLeastOnce,
                false,
                i + 1,
            );
        }
        // Each message exactly once across the group, whatever shard its topic hashes to.
        let mut got = Vec::new();
        for _ in 0..40 {
            if got.len() == firsts.len() {
                break;
            }
            for m in [&mut m1, &mut m2] {
                if let Recv::Packet(Packet::Publish(x)) = m.recv(Duration::from_millis(50)) {
                    m.ack(&x);
                    got.push(u16::from_be_bytes([x.payload[0], x.payload[1]]));
                }
            }
        }
        got.sort_unstable();
        assert_eq!(got, (0..firsts.len() as u16).collect::<Vec<_>>());
        m1.expect_nothing(QUIET);
        m2.expect_nothing(Duration::from_millis(50));
    });
}

#[test]
fn mqtt_4_8_2_no_retained_messages_on_a_shared_subscribe() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut p = Client::connect(b.addr, V5, "shret-pub");
        p.publish("shret/t", b"retained", QoS::AtLeastOnce, true, 1);
        let mut m = Client::connect(b.addr, V5, "shret-m");
        m.sub_ok(1, "$share/g/shret/t", QoS::AtLeastOnce);
        m.expect_nothing(QUIET);
        p.publish("shret/t", b"live", QoS::AtLeastOnce, false, 2);
        assert_publish(
            &m.expect_publish_acked(),
            "shret/t",
            b"live",
            QoS::AtLeastOnce,
        );
    });
}

#[test]
fn sticky_strategy_keeps_one_member_until_it_leaves() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.shared_strategy = SharedStrategy::Sticky);
        let mut m1 = Client::connect(b.addr, V5, "sticky-m1");
        m1.sub_ok(1, "$share/s/st/t", QoS::AtLeastOnce);
        let mut m2 = Client::connect(b.addr, V5, "sticky-m2");
        m2.sub_ok(1, "$share/s/st/t", QoS::AtLeastOnce);
        let mut p = Client::connect(b.addr, V5, "sticky-pub");
        publish_numbers(&mut p, "st/t", 0..6);
        // All six go to the same member, in order.
        let first = match m1.recv(Duration::from_millis(500)) {
            Recv::Packet(Packet::Publish(x)) => {
                m1.ack(&x);
                1
            }
            _ => 2,
        };
        let (stuck, other) = if first == 1 {
            (&mut m1, &mut m2)
        } else {
            (&mut m2, &mut m1)
        };
        let rest = payload_numbers(stuck, if first == 1 { 5 } else { 6 });
        assert_eq!(rest.last(), Some(&5), "sticky member got {rest:?}");
        other.expect_nothing(QUIET);
        // The sticky member unsubscribes: the other one takes over.
        stuck.unsubscribe(9, &["$share/s/st/t"]);
        publish_numbers(&mut p, "st/t", 6..9);
        assert_eq!(payload_numbers(other, 3), vec![6, 7, 8]);
        stuck.expect_nothing(Duration::from_millis(50));
    });
}

#[test]
fn random_strategy_still_delivers_each_message_once() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.shared_strategy = SharedStrategy::Random);
        let mut members: Vec<Client> = (0..3)
            .map(|i| {
                let mut m = Client::connect(b.addr, V311, &format!("rnd-{i}"));
                m.sub_ok(1, "$share/r/rnd", QoS::AtLeastOnce);
                m
            })
            .collect();
        let mut p = Client::connect(b.addr, V311, "rnd-pub");
        publish_numbers(&mut p, "rnd", 0..30);
        p.ping();
        let mut got = Vec::new();
        for m in members.iter_mut() {
            for _ in 0..31 {
                match m.recv(Duration::from_millis(300)) {
                    Recv::Packet(Packet::Publish(x)) => {
                        m.ack(&x);
                        got.push(u16::from_be_bytes([x.payload[0], x.payload[1]]));
                    }
                    Recv::Timeout => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        got.sort_unstable();
        assert_eq!(
            got,
            (0..30).collect::<Vec<_>>(),
            "each message exactly once"
        );
    });
}

#[test]
fn online_members_preferred_and_offline_member_gets_queued_messages() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        // A persistent member goes offline; an online member is preferred while there is one.
        let (mut away, _) = Client::connect_v311_ack(b.addr, "away-member", false, 60);
        away.sub_ok(1, "$share/o/off/t", QoS::AtLeastOnce);
        away.disconnect();
        let mut online = Client::connect(b.addr, V311, "online-member");
        online.sub_ok(1, "$share/o/off/t", QoS::AtLeastOnce);
        let mut p = Client::connect(b.addr, V311, "off-pub");
        publish_numbers(&mut p, "off/t", 0..4);
        assert_eq!(payload_numbers(&mut online, 4), vec![0, 1, 2, 3]);
        // With nobody online, the offline persistent member's session queues the messages.
        online.disconnect();
        publish_numbers(&mut p, "off/t", 4..6);
        p.ping();
        std::thread::sleep(Duration::from_millis(200));
        let (mut back, ack) = Client::connect_v311_ack(b.addr, "away-member", false, 60);
        assert!(ack.session_present);
        assert_eq!(payload_numbers(&mut back, 2), vec![4, 5]);
        back.expect_nothing(QUIET);
    });
}

#[test]
fn mqtt_4_8_2_unacknowledged_message_of_an_ending_member_goes_to_another() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.shared_strategy = SharedStrategy::Sticky);
        let mut m1 = Client::connect(b.addr, V311, "hand-m1");
        m1.sub_ok(1, "$share/h/hand/t", QoS::AtLeastOnce);
        let mut p = Client::connect(b.addr, V311, "hand-pub");
        publish_numbers(&mut p, "hand/t", 0..1);
        // m1 receives it and vanishes without PUBACK; its clean session ends.
        let got = m1.expect_publish();
        assert_eq!(&got.payload[..], &[0, 0]);
        let mut m2 = Client::connect(b.addr, V311, "hand-m2");
        m2.sub_ok(1, "$share/h/hand/t", QoS::AtLeastOnce);
        drop(m1);
        let again = m2.expect_publish_acked();
        assert_publish(&again, "hand/t", &[0, 0], QoS::AtLeastOnce);
        m2.expect_nothing(QUIET);
    });
}

#[test]
fn invalid_share_names_are_refused() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        for (version, bad) in [
            (V311, ReasonCode::UNSPECIFIED_ERROR),
            (V5, ReasonCode::TOPIC_FILTER_INVALID),
        ] {
            let mut c = Client::connect(b.addr, version, &format!("badshare-{version:?}"));
            let filters = [
                "$share/g",
                "$share//t",
                "$share/g+/t",
                "$share/g/",
                "$share/g/a/#/b",
            ];
            let request: Vec<(&str, QoS)> = filters.iter().map(|f| (*f, QoS::AtMostOnce)).collect();
            let codes = c.subscribe(1, &request);
            assert_eq!(codes, vec![bad; filters.len()], "{version:?}");
        }
    });
}

#[test]
fn mqtt_3_8_3_4_no_local_on_a_shared_subscription_is_a_protocol_error() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut c = Client::connect(b.addr, V5, "nl-share");
        let opts = SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            no_local: true,
            ..SubscriptionOptions::default()
        };
        c.send(&Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![("$share/g/nl".to_owned(), opts)],
            properties: Properties::default(),
        }));
        c.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
    });
}

#[test]
fn shared_subscriptions_off_by_config_are_refused_with_0x9e() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.shared_subscriptions = false);
        let (mut c, ack) = Client::connect_v5(b.addr, "noshare", true, 60, Properties::default());
        assert_eq!(ack.properties.shared_subscription_available, Some(0));
        let codes = c.subscribe(
            1,
            &[("$share/g/t", QoS::AtLeastOnce), ("t", QoS::AtMostOnce)],
        );
        assert_eq!(
            codes,
            vec![
                ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
                ReasonCode::SUCCESS
            ]
        );
        let mut c3 = Client::connect(b.addr, V311, "noshare-3");
        let codes = c3.subscribe(1, &[("$share/g/t", QoS::AtLeastOnce)]);
        assert_eq!(codes, vec![ReasonCode::UNSPECIFIED_ERROR], "3.1.1: 0x80");
    });
}
