//! SUBSCRIBE / UNSUBSCRIBE and retained messages over real loopback sockets, for MQTT 3.1.1 and
//! 5.0: one SUBACK code per filter (invalid filters refused), UNSUBACK (v5 0x11 for an unknown
//! filter), overlapping subscriptions (one copy at the highest QoS; v5 with every subscription
//! identifier), re-subscribing replaces the subscription and resends retained messages, `$SYS`
//! topics and leading wildcards, and retained messages (stored per topic, RETAIN=1 on subscribe,
//! cleared by an empty payload, RETAIN=0 on live forwarding in 3.1.1, Retain As Published in 5.0),
//! and the wildcard matching examples of section 4.7 for retained and live messages.

mod common;

use std::time::Duration;

use common::*;
use picomq::protocol::{
    Properties, ProtocolVersion, QoS, ReasonCode, RetainHandling, Subscribe, SubscriptionOptions,
};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

fn suback_codes(version: ProtocolVersion) {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr, version, "codes");
    // An empty filter is refused per filter in 5.0 (SUBACK 0x8F) but closes a 3.1.1 connection
    // ([MQTT-4.7.3-1], [MQTT-4.8.0-1]; tests/spec_errors.rs), so only 5.0 sends one here.
    let mut filters = vec![
        ("a/b", QoS::AtMostOnce),
        ("a/#/b", QoS::AtLeastOnce),
        ("c/+", QoS::ExactlyOnce),
        ("#", QoS::AtLeastOnce),
        ("d+/e", QoS::AtMostOnce),
        ("$SYS/#", QoS::ExactlyOnce),
    ];
    if version.is_v5() {
        filters.insert(5, ("", QoS::AtMostOnce));
    }
    let codes = c.subscribe(1, &filters);
    let bad = if version.is_v5() {
        ReasonCode::TOPIC_FILTER_INVALID
    } else {
        ReasonCode::UNSPECIFIED_ERROR // decoded from the 3.1.1 failure code 0x80
    };
    let mut want = vec![
        ReasonCode(0),
        bad,
        ReasonCode(2),
        ReasonCode(1),
        bad,
        ReasonCode(2),
    ];
    if version.is_v5() {
        want.insert(5, bad);
    }
    assert_eq!(
        codes, want,
        "one SUBACK code per filter, in order ({version:?})"
    );
    // The valid filters are active, the refused one is not.
    let mut p = Client::connect(b.addr, version, "codes-pub");
    p.publish("c/x", b"1", QoS::ExactlyOnce, false, 1);
    let got = c.expect_publish_acked();
    assert_publish(&got, "c/x", b"1", QoS::ExactlyOnce);
    c.expect_nothing(QUIET);
}

#[test]
fn mqtt_3_8_4_5_suback_has_one_code_per_filter_v311() {
    with_deadline(Duration::from_secs(20), || suback_codes(V311));
}

#[test]
fn mqtt_3_8_4_5_suback_has_one_code_per_filter_v5() {
    with_deadline(Duration::from_secs(20), || suback_codes(V5));
}

#[test]
fn v311_suback_failure_code_is_0x80_on_the_wire() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut c = Client::connect(b.addr, V311, "wire-80");
        // SUBACK for id 5 with filters "a/#/b" (QoS 1) and "ok" (QoS 1): 90 04 00 05 80 01.
        c.send_raw(&[
            0x82, 0x0F, 0x00, 0x05, 0x00, 0x05, b'a', b'/', b'#', b'/', b'b', 0x01, 0x00, 0x02,
            b'o', b'k', 0x01,
        ]);
        let (got, closed) = c.read_raw_until_close(Duration::from_millis(300));
        assert_eq!(got, [0x90, 0x04, 0x00, 0x05, 0x80, 0x01]);
        assert!(!closed);
    });
}

fn unsubscribe_flow(version: ProtocolVersion) {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr, version, "unsub");
    c.sub_ok(1, "u/a", QoS::AtLeastOnce);
    c.sub_ok(2, "u/b", QoS::AtLeastOnce);
    let codes = c.unsubscribe(3, &["u/a", "u/never"]);
    if version.is_v5() {
        assert_eq!(
            codes,
            vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
            "v5 UNSUBACK codes"
        );
    } else {
        assert!(codes.is_empty(), "3.1.1 UNSUBACK has no payload");
    }
    // A filter with a leading wildcard lives in every router shard: it must go from all.
    c.sub_ok(4, "+/w", QoS::AtLeastOnce);
    c.unsubscribe(5, &["+/w"]);
    let mut p = Client::connect(b.addr, version, "unsub-pub");
    p.publish("u/a", b"gone", QoS::AtLeastOnce, false, 1);
    for (i, first) in ["a", "b", "c", "d", "e", "f"].iter().enumerate() {
        p.publish(
            &format!("{first}/w"),
            b"gone",
            QoS::AtLeastOnce,
            false,
            10 + i as u16,
        );
    }
    p.publish("u/b", b"kept", QoS::AtLeastOnce, false, 2);
    let got = c.expect_publish_acked();
    assert_publish(&got, "u/b", b"kept", QoS::AtLeastOnce);
    c.expect_nothing(QUIET);
}

#[test]
fn mqtt_3_10_4_unsubscribe_stops_delivery_v311() {
    with_deadline(Duration::from_secs(20), || unsubscribe_flow(V311));
}

#[test]
fn mqtt_3_11_3_unsuback_0x11_for_unknown_filter_v5() {
    with_deadline(Duration::from_secs(20), || unsubscribe_flow(V5));
}

#[test]
fn mqtt_3_3_5_1_overlapping_subscriptions_one_copy_at_max_qos_v311() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut c = Client::connect(b.addr, V311, "overlap311");
        c.subscribe(1, &[("ov/+", QoS::AtMostOnce), ("ov/#", QoS::AtLeastOnce)]);
        c.sub_ok(2, "ov/t", QoS::AtMostOnce);
        let mut p = Client::connect(b.addr, V311, "overlap311-pub");
        p.publish("ov/t", b"once", QoS::ExactlyOnce, false, 1);
        let got = c.expect_publish_acked();
        assert_publish(&got, "ov/t", b"once", QoS::AtLeastOnce);
        c.expect_nothing(QUIET);
    });
}

fn sub_with_id(packet_id: u16, filter: &str, qos: QoS, id: u32) -> Subscribe {
    Subscribe {
        packet_id,
        filters: vec![(filter.to_owned(), sub_opts(qos))],
        properties: Properties {
            subscription_identifiers: vec![id],
            ..Properties::default()
        },
    }
}

#[test]
fn mqtt_3_3_4_overlapping_subscriptions_one_copy_with_all_identifiers_v5() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut c = Client::connect(b.addr, V5, "overlap5");
        for (pid, filter, q, id) in [
            (1, "ov5/+", QoS::AtMostOnce, 11),
            (2, "ov5/#", QoS::ExactlyOnce, 22),
            (3, "+/t", QoS::AtLeastOnce, 33),
        ] {
            let codes = c.subscribe_with(sub_with_id(pid, filter, q, id));
            assert_eq!(codes, vec![ReasonCode(q.as_u8())]);
        }
        let mut p = Client::connect(b.addr, V5, "overlap5-pub");
        p.publish("ov5/t", b"one copy", QoS::ExactlyOnce, false, 1);
        let got = c.expect_publish_acked();
        assert_publish(&got, "ov5/t", b"one copy", QoS::ExactlyOnce);
        let mut ids = got.properties.subscription_identifiers.clone();
        ids.sort_unstable();
        assert_eq!(
            ids,
            vec![11, 22, 33],
            "every matching subscription identifier"
        );
        c.expect_nothing(QUIET);
        // Only the filters that match contribute their identifier.
        p.publish("ov5/u", b"two ids", QoS::AtLeastOnce, false, 2);
        let got = c.expect_publish_acked();
        assert_publish(&got, "ov5/u", b"two ids", QoS::AtLeastOnce);
        let mut ids = got.properties.subscription_identifiers.clone();
        ids.sort_unstable();
        assert_eq!(ids, vec![11, 22]);
    });
}

fn resubscribe_replaces(version: ProtocolVersion) {
    let b = TestBroker::start();
    let mut p = Client::connect(b.addr, version, "resub-pub");
    p.publish("rs/t", b"kept", QoS::ExactlyOnce, true, 1);
    let mut c = Client::connect(b.addr, version, "resub");
    c.sub_ok(1, "rs/t", QoS::AtMostOnce);
    let r = c.expect_publish_acked();
    assert_publish(&r, "rs/t", b"kept", QoS::AtMostOnce);
    assert!(r.retain, "retained message sent with RETAIN=1");
    // Same filter again at QoS 2: replaces the subscription and sends the retained message again.
    c.sub_ok(2, "rs/t", QoS::ExactlyOnce);
    let r = c.expect_publish_acked();
    assert_publish(&r, "rs/t", b"kept", QoS::ExactlyOnce);
    assert!(r.retain, "retained message resent with RETAIN=1");
    c.expect_nothing(QUIET);
    // One subscription, now at QoS 2: a live message arrives once, at QoS 2.
    p.publish("rs/t", b"live", QoS::ExactlyOnce, false, 2);
    let r = c.expect_publish_acked();
    assert_publish(&r, "rs/t", b"live", QoS::ExactlyOnce);
    c.expect_nothing(QUIET);
    // And back down to QoS 0.
    c.sub_ok(3, "rs/t", QoS::AtMostOnce);
    let r = c.expect_publish_acked();
    assert_publish(&r, "rs/t", b"kept", QoS::AtMostOnce);
    p.publish("rs/t", b"live 2", QoS::ExactlyOnce, false, 3);
    let r = c.expect_publish_acked();
    assert_publish(&r, "rs/t", b"live 2", QoS::AtMostOnce);
    c.expect_nothing(QUIET);
}

#[test]
fn mqtt_3_8_4_3_resubscribe_replaces_and_resends_retained_v311() {
    with_deadline(Duration::from_secs(20), || resubscribe_replaces(V311));
}

#[test]
fn mqtt_3_8_4_3_resubscribe_replaces_and_resends_retained_v5() {
    with_deadline(Duration::from_secs(20), || resubscribe_replaces(V5));
}

#[test]
fn mqtt_4_7_2_1_sys_topics_not_matched_by_leading_wildcards() {
    with_deadline(Duration::from_secs(20), || {
        // Clients may not publish under `$SYS/` (only the broker does, see sys_topics.rs), so a
        // client-published `$` topic stands in for it here.
        let b = TestBroker::start();
        let mut wild = Client::connect(b.addr, V311, "wild");
        wild.subscribe(1, &[("#", QoS::AtLeastOnce), ("+/x", QoS::AtLeastOnce)]);
        let mut sys = Client::connect(b.addr, V311, "sys");
        sys.sub_ok(1, "$dev/#", QoS::AtLeastOnce);
        let mut plus = Client::connect(b.addr, V311, "sysplus");
        plus.sub_ok(1, "$dev/+", QoS::AtLeastOnce);
        let mut p = Client::connect(b.addr, V311, "sys-pub");
        p.publish("$dev/x", b"internal", QoS::AtLeastOnce, false, 1);
        assert_publish(
            &sys.expect_publish_acked(),
            "$dev/x",
            b"internal",
            QoS::AtLeastOnce,
        );
        assert_publish(
            &plus.expect_publish_acked(),
            "$dev/x",
            b"internal",
            QoS::AtLeastOnce,
        );
        // A normal topic still reaches the wildcard subscriber (proving it is live), once.
        p.publish("n/x", b"normal", QoS::AtLeastOnce, false, 2);
        assert_publish(
            &wild.expect_publish_acked(),
            "n/x",
            b"normal",
            QoS::AtLeastOnce,
        );
        wild.expect_nothing(QUIET);
        sys.expect_nothing(Duration::from_millis(50));
    });
}

fn retained_basics(version: ProtocolVersion) {
    let b = TestBroker::start();
    let mut p = Client::connect(b.addr, version, "ret-pub");
    let mut live = Client::connect(b.addr, version, "ret-live");
    live.sub_ok(1, "ret/#", QoS::AtLeastOnce);
    p.publish("ret/a", b"first", QoS::AtLeastOnce, true, 1);
    p.publish("ret/a", b"second", QoS::AtLeastOnce, true, 2);
    p.publish("ret/b", b"bee", QoS::AtMostOnce, true, 0);
    p.publish("ret/c", b"not retained", QoS::AtLeastOnce, false, 3);
    // [MQTT-3.3.1-9] (3.1.1): live forwarding clears RETAIN; 5.0 without Retain As Published too.
    for (topic, payload) in [
        ("ret/a", &b"first"[..]),
        ("ret/a", b"second"),
        ("ret/b", b"bee"),
        ("ret/c", b"not retained"),
    ] {
        let got = live.expect_publish_acked();
        assert_eq!((got.topic.as_str(), &got.payload[..]), (topic, payload));
        assert!(!got.retain, "live {topic} forwarded with RETAIN=1");
    }
    // [MQTT-3.3.1-12]: a PUBLISH with RETAIN=0 leaves the retained message alone.
    p.publish("ret/a", b"not stored", QoS::AtLeastOnce, false, 5);
    let got = live.expect_publish_acked();
    assert_publish(&got, "ret/a", b"not stored", QoS::AtLeastOnce);
    // [MQTT-3.3.1-6]/[MQTT-3.3.1-8]: a new subscriber gets the last retained message of each
    // topic, RETAIN=1, QoS min(stored, granted).
    let mut late = Client::connect(b.addr, version, "ret-late");
    late.sub_ok(1, "ret/+", QoS::ExactlyOnce);
    let mut got = [late.expect_publish_acked(), late.expect_publish_acked()];
    got.sort_by(|x, y| x.topic.cmp(&y.topic));
    assert_publish(&got[0], "ret/a", b"second", QoS::AtLeastOnce);
    assert_publish(&got[1], "ret/b", b"bee", QoS::AtMostOnce);
    assert!(
        got.iter().all(|m| m.retain),
        "retained delivery without RETAIN"
    );
    late.expect_nothing(QUIET);
    // [MQTT-3.3.1-10]/[MQTT-3.3.1-11]: an empty retained payload is forwarded and deletes.
    p.publish("ret/a", b"", QoS::AtLeastOnce, true, 4);
    let del = live.expect_publish_acked();
    assert_publish(&del, "ret/a", b"", QoS::AtLeastOnce);
    let mut after = Client::connect(b.addr, version, "ret-after");
    after.sub_ok(1, "ret/+", QoS::ExactlyOnce);
    let only = after.expect_publish_acked();
    assert_publish(&only, "ret/b", b"bee", QoS::AtMostOnce);
    after.expect_nothing(QUIET);
}

#[test]
fn mqtt_3_3_1_5_retained_stored_per_topic_and_deleted_by_empty_payload_v311() {
    with_deadline(Duration::from_secs(20), || retained_basics(V311));
}

#[test]
fn mqtt_3_3_1_5_retained_stored_per_topic_and_deleted_by_empty_payload_v5() {
    with_deadline(Duration::from_secs(20), || retained_basics(V5));
}

#[test]
fn retained_messages_from_every_shard_reach_a_leading_wildcard_subscriber() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut p = Client::connect(b.addr, V311, "shards-pub");
        let topics: Vec<String> = (0..16).map(|i| format!("top{i}/x")).collect();
        for (i, t) in topics.iter().enumerate() {
            p.publish(t, t.as_bytes(), QoS::AtLeastOnce, true, i as u16 + 1);
        }
        let mut c = Client::connect(b.addr, V311, "shards-sub");
        c.sub_ok(1, "+/x", QoS::AtLeastOnce);
        let mut got: Vec<String> = (0..topics.len())
            .map(|_| {
                let m = c.expect_publish_acked();
                assert!(m.retain);
                assert_eq!(m.payload, m.topic.as_bytes());
                m.topic
            })
            .collect();
        got.sort();
        let mut want = topics.clone();
        want.sort();
        assert_eq!(got, want);
        c.expect_nothing(QUIET);
    });
}

fn opts(qos: QoS, rap: bool, rh: RetainHandling) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        no_local: false,
        retain_as_published: rap,
        retain_handling: rh,
    }
}

#[test]
fn mqtt_3_3_1_12_v5_retain_as_published_and_retain_handling() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut p = Client::connect(b.addr, V5, "rap-pub");
        p.publish("rap/t", b"stored", QoS::AtLeastOnce, true, 1);
        let sub = |pid: u16, o: SubscriptionOptions| Subscribe {
            packet_id: pid,
            filters: vec![("rap/t".to_owned(), o)],
            properties: Properties::default(),
        };
        let mut keep = Client::connect(b.addr, V5, "rap-keep");
        keep.subscribe_with(sub(
            1,
            opts(QoS::AtLeastOnce, true, RetainHandling::SendAtSubscribe),
        ));
        assert!(keep.expect_publish_acked().retain, "retained delivery");
        let mut clear = Client::connect(b.addr, V5, "rap-clear");
        clear.subscribe_with(sub(
            1,
            opts(QoS::AtLeastOnce, false, RetainHandling::DoNotSend),
        ));
        clear.expect_nothing(QUIET);
        // Retain Handling 1: retained sent for a new subscription only.
        let mut ifnew = Client::connect(b.addr, V5, "rap-ifnew");
        let o = opts(QoS::AtLeastOnce, false, RetainHandling::SendIfNew);
        ifnew.subscribe_with(sub(1, o));
        assert_publish(
            &ifnew.expect_publish_acked(),
            "rap/t",
            b"stored",
            QoS::AtLeastOnce,
        );
        ifnew.subscribe_with(sub(2, o));
        ifnew.expect_nothing(QUIET);
        // Live retained publish: RETAIN kept for Retain As Published, cleared otherwise.
        p.publish("rap/t", b"live", QoS::AtLeastOnce, true, 2);
        let k = keep.expect_publish_acked();
        assert_publish(&k, "rap/t", b"live", QoS::AtLeastOnce);
        assert!(k.retain, "Retain As Published: RETAIN=1 kept");
        let c = clear.expect_publish_acked();
        assert_publish(&c, "rap/t", b"live", QoS::AtLeastOnce);
        assert!(!c.retain, "without Retain As Published: RETAIN=0");
        let i = ifnew.expect_publish_acked();
        assert!(!i.retain);
    });
}

/// Topics used by the matching test: the examples of MQTT 3.1.1 / 5.0 section 4.7 (`$dev` in
/// place of `$SYS`, which clients may not publish to).
const MATCH_TOPICS: [&str; 9] = [
    "sport",
    "sport/tennis/player1",
    "sport/tennis/player1/ranking",
    "sport/tennis/player1/score/wimbledon",
    "sport/",
    "/finance",
    "a//b",
    "$dev/monitor/Clients",
    "$dev",
];

/// Filter -> the topics of [`MATCH_TOPICS`] it matches, by the specification's rules.
fn match_table() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (
            "sport/tennis/player1/#",
            vec![
                "sport/tennis/player1",
                "sport/tennis/player1/ranking",
                "sport/tennis/player1/score/wimbledon",
            ],
        ),
        (
            "sport/#",
            vec![
                "sport",
                "sport/tennis/player1",
                "sport/tennis/player1/ranking",
                "sport/tennis/player1/score/wimbledon",
                "sport/",
            ],
        ),
        ("sport/+", vec!["sport/"]),
        ("+", vec!["sport"]),
        ("+/+", vec!["sport/", "/finance"]),
        ("/+", vec!["/finance"]),
        ("a/+/b", vec!["a//b"]),
        (
            "+/tennis/#",
            vec![
                "sport/tennis/player1",
                "sport/tennis/player1/ranking",
                "sport/tennis/player1/score/wimbledon",
            ],
        ),
        ("$dev/#", vec!["$dev/monitor/Clients", "$dev"]),
        ("$dev/monitor/+", vec!["$dev/monitor/Clients"]),
        ("+/monitor/Clients", vec![]),
        (
            "#",
            vec![
                "sport",
                "sport/tennis/player1",
                "sport/tennis/player1/ranking",
                "sport/tennis/player1/score/wimbledon",
                "sport/",
                "/finance",
                "a//b",
            ],
        ),
    ]
}

#[test]
fn mqtt_4_7_1_wildcard_matching_for_retained_and_live_messages() {
    with_deadline(Duration::from_secs(30), || {
        let b = TestBroker::start();
        let mut p = Client::connect(b.addr, V311, "match-pub");
        for (i, t) in MATCH_TOPICS.iter().enumerate() {
            p.publish(t, t.as_bytes(), QoS::AtLeastOnce, true, i as u16 + 1);
        }
        let mut subs = Vec::new();
        for (i, (filter, want)) in match_table().into_iter().enumerate() {
            let mut c = Client::connect(b.addr, V311, &format!("match-{i}"));
            c.sub_ok(1, filter, QoS::AtLeastOnce);
            let mut got: Vec<String> = c
                .collect_publishes(want.len())
                .into_iter()
                .map(|m| {
                    assert!(m.retain, "{filter}: retained delivery without RETAIN");
                    m.topic
                })
                .collect();
            got.sort();
            let mut want_sorted: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            want_sorted.sort();
            assert_eq!(got, want_sorted, "retained messages matching {filter:?}");
            subs.push((c, filter, want));
        }
        for (c, _, _) in subs.iter_mut() {
            c.expect_nothing(Duration::from_millis(20));
        }
        // The same topics published live, not retained. Order is only guaranteed per topic
        // [MQTT-4.6.0-6], and topics of different router shards may overtake each other, so the
        // topics are compared as sets.
        for (i, t) in MATCH_TOPICS.iter().enumerate() {
            p.publish(t, b"live", QoS::AtLeastOnce, false, 100 + i as u16);
        }
        for (c, filter, want) in subs.iter_mut() {
            let mut got: Vec<String> = c
                .collect_publishes(want.len())
                .into_iter()
                .map(|m| {
                    assert!(!m.retain, "{filter}: live message with RETAIN=1");
                    m.topic
                })
                .collect();
            got.sort();
            let mut want_sorted: Vec<String> = want.iter().map(|t| t.to_string()).collect();
            want_sorted.sort();
            assert_eq!(got, want_sorted, "live messages matching {filter:?}");
            c.expect_nothing(Duration::from_millis(50));
        }
    });
}
