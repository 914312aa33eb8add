//! Whole-broker tests of routing on the virtual clock: messages crossing the publisher's, the
//! shard's and the subscriber's threads, per-topic order, retained messages, QoS 1 delivery,
//! full router channels (the congestion rule) and the publish-rate throttle.
//!
//! Owns: tests only. Each test is named after the rule it checks and runs for MQTT 3.1.1 and 5.0
//! where the rule applies to both.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::RateLimitPolicy;
use crate::protocol::{Packet, ProtocolVersion, Publish, QoS, ReasonCode};

use super::*;

const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V311, ProtocolVersion::V5];

/// Receives until `n` PUBLISH packets arrived or nothing more comes, acknowledging each QoS 1 one
/// (so the inflight window keeps moving); returns them in arrival order.
fn collect(sim: &mut Sim, c: Client, n: usize) -> Vec<Publish> {
    let mut got = Vec::new();
    while got.len() < n {
        let mut new = 0;
        for p in sim.recv(c) {
            if let Packet::Publish(p) = p {
                if let Some(id) = p.packet_id {
                    sim.write(c, &puback(id));
                }
                got.push(p);
                new += 1;
            }
        }
        if new == 0 {
            break;
        }
        sim.settle();
    }
    got
}

/// How many PUBACKs are among `packets`.
fn pubacks(packets: &[Packet]) -> usize {
    packets
        .iter()
        .filter(|p| matches!(p, Packet::PubAck(_)))
        .count()
}

/// Every distinct (publisher thread, shard thread, subscriber thread) of three threads.
fn distinct_triples() -> Vec<(usize, usize, usize)> {
    let mut v = Vec::new();
    for a in 0..3 {
        for s in 0..3 {
            for b in 0..3 {
                if a != s && s != b && a != b {
                    v.push((a, s, b));
                }
            }
        }
    }
    v
}

/// [MQTT-4.6.0-6] (5.0: section 4.6, "Ordered Topic"): messages of one topic from one publisher
/// reach a subscriber in the order they were published, here with the publisher's session, the
/// topic's shard and the subscriber's session each on another thread (two thread hops), for a
/// literal and a wildcard subscription (the latter held by every shard). Every QoS 1 PUBLISH is
/// acknowledged to the publisher [MQTT-4.3.2-2].
#[test]
fn order_kept_across_publisher_shard_and_subscriber_threads_mqtt_4_6_0_6() {
    const N: usize = 200;
    for v in BOTH {
        for (a, s, b) in distinct_triples() {
            let mut sim = Sim::new(3);
            let topic = topic_on(&sim, "ord", s);
            let literal = subscriber(&mut sim, b, v, "sub-l", &topic, QoS::AtLeastOnce);
            let sub_id = client_id_on(&sim, "sub-w", b);
            let wildcard = subscriber(&mut sim, a, v, &sub_id, "ord/#", QoS::AtLeastOnce);
            assert_eq!(sim.thread_of(wildcard), Some(b));
            let pub_id = client_id_on(&sim, "pub", a);
            let (p, _) = sim.connect_ok(s, connect(v, &pub_id, true, 0));
            assert_eq!(sim.thread_of(p), Some(a));

            for i in 0..N {
                let payload = i.to_string();
                let qos = [QoS::AtMostOnce, QoS::AtLeastOnce][i % 2];
                sim.write(
                    p,
                    &publish(&topic, payload.as_bytes(), qos, false, i as u16 + 1),
                );
            }
            sim.settle();
            assert_eq!(pubacks(&sim.recv(p)), N / 2, "{v:?} {a}/{s}/{b}");
            for c in [literal, wildcard] {
                let got = collect(&mut sim, c, N);
                let seen: Vec<String> = got
                    .iter()
                    .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
                    .collect();
                let want: Vec<String> = (0..N).map(|i| i.to_string()).collect();
                assert_eq!(seen, want, "{v:?} publisher {a}, shard {s}, subscriber {b}");
                assert!(got.iter().all(|p| p.topic == topic && !p.dup));
            }
        }
    }
}

/// [MQTT-3.3.1-6] and [MQTT-3.3.1-8] (5.0: [MQTT-3.3.1-9] with Retain Handling 0): a new
/// subscription gets the last retained message of every matching topic, with RETAIN set, whichever
/// threads hold the topics' shards; a later retained message replaces the earlier one.
#[test]
fn retained_message_delivered_on_subscribe_from_every_shard_mqtt_3_3_1_6() {
    for v in BOTH {
        let mut sim = Sim::new(3);
        let (p, _) = sim.connect_ok(0, connect(v, "retainer", true, 0));
        let topics: Vec<String> = (0..3).map(|s| topic_on(&sim, "ret", s)).collect();
        for (i, topic) in topics.iter().enumerate() {
            sim.write(
                p,
                &publish(topic, b"old", QoS::AtLeastOnce, true, 1 + i as u16),
            );
            sim.write(
                p,
                &publish(topic, topic.as_bytes(), QoS::AtLeastOnce, true, 10),
            );
        }
        sim.settle();
        assert_eq!(pubacks(&sim.recv(p)), 6);

        for t in 0..3 {
            let (all, _) = sim.connect_ok(t, connect(v, &format!("all-{t}"), true, 0));
            sim.send(all, &subscribe(1, "ret/#", QoS::AtLeastOnce));
            let first = sim.recv(all);
            assert!(
                matches!(first.first(), Some(Packet::SubAck(_))),
                "SUBACK first"
            );
            sim.peers[all.0].unread = first[1..].to_vec();
            let got = collect(&mut sim, all, 3);
            let mut seen: Vec<&str> = got.iter().map(|p| p.topic.as_str()).collect();
            seen.sort_unstable();
            let mut want: Vec<&str> = topics.iter().map(String::as_str).collect();
            want.sort_unstable();
            assert_eq!(seen, want, "{v:?} thread {t}");
            assert!(got
                .iter()
                .all(|p| p.retain && p.payload == p.topic.as_bytes()));

            let (one, _) = sim.connect_ok(t, connect(v, &format!("one-{t}"), true, 0));
            sim.send(one, &subscribe(1, &topics[t], QoS::AtMostOnce));
            let got = sim.recv(one);
            assert!(
                matches!(got.first(), Some(Packet::SubAck(_))),
                "SUBACK first"
            );
            let got = publishes(&got);
            assert_eq!(got.len(), 1, "only the last retained message");
            assert!(got[0].retain && got[0].topic == topics[t]);
        }
    }
}

/// [MQTT-4.3.2-1] / [MQTT-4.3.2-2]: a QoS 1 PUBLISH is acknowledged with PUBACK and delivered to a
/// QoS 1 subscriber with a packet identifier; one the subscriber did not acknowledge is sent
/// again, with DUP set, when its session resumes on a new connection [MQTT-4.4.0-1] ([MQTT-3.3.1-1]
/// for DUP), even through a handover; once acknowledged it is not sent again.
#[test]
fn qos1_delivery_acknowledged_and_resent_with_dup_on_resume_mqtt_4_4_0_1() {
    for v in BOTH {
        let mut sim = Sim::new(3);
        let mut c = connect(v, &client_id_on(&sim, "q1", 2), false, 0);
        c.properties.session_expiry_interval = v.is_v5().then_some(300);
        let (sub, _) = sim.connect_ok(0, c.clone());
        sim.send(sub, &subscribe(1, "q/one", QoS::AtLeastOnce));
        sim.recv(sub);
        let (p, _) = sim.connect_ok(1, connect(v, "q1-pub", true, 0));
        sim.send(p, &publish("q/one", b"m", QoS::AtLeastOnce, false, 7));
        match &sim.recv(p)[..] {
            [Packet::PubAck(a)] => {
                assert_eq!(a.packet_id, 7);
                assert_eq!(a.reason, ReasonCode::SUCCESS);
            }
            other => panic!("expected PUBACK 7, got {other:?}"),
        }
        let first = sim.recv(sub);
        let first = publishes(&first);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].qos, QoS::AtLeastOnce);
        assert!(!first[0].dup);
        let pid = first[0].packet_id.expect("QoS 1 has a packet id");

        sim.hang_up(sub);
        let (sub, ack) = sim.connect_ok(1, c.clone());
        assert!(ack.session_present);
        let again = sim.recv(sub);
        let again = publishes(&again);
        assert_eq!(again.len(), 1, "{v:?}");
        assert!(again[0].dup, "{v:?}: resent with DUP");
        assert_eq!(again[0].packet_id, Some(pid));
        sim.send(sub, &puback(pid));

        sim.hang_up(sub);
        let (sub, _) = sim.connect_ok(2, c);
        assert!(
            publishes(&sim.recv(sub)).is_empty(),
            "acknowledged: not resent"
        );
    }
}

/// The congestion rule of `broker/routing.rs`: with room for one batch in every router channel,
/// publishers on every thread flooding topics whose shards are on other threads, to subscribers on
/// every thread, leave threads congested for a while, yet nothing deadlocks, no QoS 1 message is
/// lost or duplicated and each publisher's order on each topic holds.
#[test]
fn full_router_channels_neither_deadlock_nor_lose_nor_reorder() {
    const N: usize = 300;
    let v = ProtocolVersion::V5;
    let mut sim = Sim::new(3);
    sim.command_queue = 1;
    sim.delivery_queue = 1;
    let mut subs = Vec::new();
    for t in 0..3 {
        let id = client_id_on(&sim, "flood-sub", t);
        subs.push(subscriber(&mut sim, t, v, &id, "flood/#", QoS::AtLeastOnce));
        let id = client_id_on(&sim, "flood-lit", t);
        let topic = topic_on(&sim, "flood", (t + 1) % 3);
        subs.push(subscriber(&mut sim, t, v, &id, &topic, QoS::AtLeastOnce));
    }
    let mut pubs = Vec::new();
    for t in 0..3 {
        let id = client_id_on(&sim, "flood-pub", t);
        pubs.push(sim.connect_ok(t, connect(v, &id, true, 0)).0);
    }
    for i in 0..N {
        for (t, &p) in pubs.iter().enumerate() {
            let topic = topic_on(&sim, "flood", (t + 1 + i % 2) % 3);
            let payload = format!("{t}:{i}");
            sim.write(
                p,
                &publish(
                    &topic,
                    payload.as_bytes(),
                    QoS::AtLeastOnce,
                    false,
                    i as u16 + 1,
                ),
            );
        }
    }
    sim.settle();
    assert!(sim.congested_sends > 0, "the test must fill a channel");
    for &p in &pubs {
        assert_eq!(pubacks(&sim.recv(p)), N);
    }
    for (k, &c) in subs.iter().enumerate() {
        let wildcard = k % 2 == 0;
        // Each topic gets half of two publishers' messages.
        let want = if wildcard { 3 * N } else { N };
        let got = collect(&mut sim, c, want + 1);
        assert_eq!(got.len(), want, "subscriber {k}");
        let mut last: HashMap<(String, String), usize> = HashMap::new();
        for p in &got {
            let text = String::from_utf8_lossy(&p.payload).into_owned();
            let (publisher, seq) = text.split_once(':').expect("t:i");
            let seq: usize = seq.parse().expect("number");
            let key = (p.topic.clone(), publisher.to_owned());
            if let Some(&prev) = last.get(&key) {
                assert!(
                    seq > prev,
                    "subscriber {k}: {text} after {prev} on {}",
                    p.topic
                );
            }
            last.insert(key, seq);
            assert!(!p.dup);
        }
    }
}

/// `limits.publish_rate` with the throttle policy (`session/limits.rs`, `broker/input.rs`): a
/// client over its rate is not read until its bucket has refilled, and its input resumes on the
/// core's tick; nothing is lost, order holds, and the time held back does not count against its
/// keep-alive.
#[test]
fn publish_rate_throttle_holds_input_then_resumes_on_tick() {
    const N: usize = 40;
    for v in BOTH {
        let mut sim = Sim::with(2, |cfg| cfg.mqtt.limits.publish_rate = 10);
        let sub = subscriber(&mut sim, 1, v, "rate-sub", "rate/t", QoS::AtMostOnce);
        let (p, _) = sim.connect_ok(0, connect(v, "rate-pub", true, 2));
        for i in 0..N {
            let payload = i.to_string();
            sim.write(
                p,
                &publish(
                    "rate/t",
                    payload.as_bytes(),
                    QoS::AtLeastOnce,
                    false,
                    i as u16 + 1,
                ),
            );
        }
        sim.settle();
        // The burst is one second's worth; the packet that overdraws it is still handled.
        let mut acked = pubacks(&sim.recv(p));
        assert_eq!(acked, 11, "{v:?}");
        for second in 1..=3 {
            sim.advance(Duration::from_secs(1));
            acked += pubacks(&sim.recv(p));
            let expect = (11 + 10 * second).min(N);
            assert!(
                acked + 3 >= expect && acked <= expect + 1,
                "{v:?}: {acked} acknowledged after {second} s"
            );
        }
        sim.advance(Duration::from_millis(500));
        acked += pubacks(&sim.recv(p));
        assert_eq!(acked, N);
        assert!(!sim.is_closed(p), "{v:?}: throttled time is not idle time");
        let seen: Vec<String> = collect(&mut sim, sub, N)
            .iter()
            .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
            .collect();
        assert_eq!(seen, (0..N).map(|i| i.to_string()).collect::<Vec<_>>());
    }
}

/// `limits.publish_rate` with the disconnect policy: the PUBLISH over the rate is not handled (so
/// not acknowledged) and a 5.0 client is told DISCONNECT 0x96 Message rate too high; 3.1.1 is
/// closed.
#[test]
fn publish_rate_disconnect_policy_drops_the_client_with_0x96() {
    for v in BOTH {
        let mut sim = Sim::with(2, |cfg| {
            cfg.mqtt.limits.publish_rate = 5;
            cfg.mqtt.limits.rate_limit_policy = RateLimitPolicy::Disconnect;
        });
        let (p, _) = sim.connect_ok(1, connect(v, "greedy", true, 0));
        for i in 0..10 {
            sim.write(p, &publish("rate/x", b"x", QoS::AtLeastOnce, false, i + 1));
        }
        sim.settle();
        let got = sim.recv(p);
        assert_eq!(pubacks(&got), 5, "{v:?}: the burst, not the one over it");
        assert!(sim.is_closed(p));
        if v.is_v5() {
            match got.last() {
                Some(Packet::Disconnect(d)) => {
                    assert_eq!(d.reason, ReasonCode::MESSAGE_RATE_TOO_HIGH)
                }
                other => panic!("expected DISCONNECT 0x96, got {other:?}"),
            }
        }
    }
}

/// A subscriber whose socket takes little at a time (a small receive window, read now and then)
/// still gets every QoS 1 message once, in order, as it reads; a fast subscriber of the same topic
/// on another thread is not held back by it.
#[test]
fn slow_subscriber_gets_everything_in_order_without_holding_back_others() {
    const N: usize = 100;
    for v in BOTH {
        let mut sim = Sim::new(2);
        let fast = subscriber(&mut sim, 0, v, "fast", "slow/t", QoS::AtLeastOnce);
        let slow = subscriber(&mut sim, 1, v, "slow", "slow/t", QoS::AtLeastOnce);
        sim.set_window(slow, 200);
        let (p, _) = sim.connect_ok(0, connect(v, "slow-pub", true, 0));
        for i in 0..N {
            let payload = format!("{i:03}");
            sim.write(
                p,
                &publish(
                    "slow/t",
                    payload.as_bytes(),
                    QoS::AtLeastOnce,
                    false,
                    i as u16 + 1,
                ),
            );
        }
        sim.settle();
        assert_eq!(pubacks(&sim.recv(p)), N);
        assert_eq!(collect(&mut sim, fast, N).len(), N, "{v:?}");
        let want: Vec<String> = (0..N).map(|i| format!("{i:03}")).collect();
        let seen: Vec<String> = collect(&mut sim, slow, N)
            .iter()
            .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
            .collect();
        assert_eq!(seen, want, "{v:?}");
    }
}

/// The publish rate belongs to the client id, not the connection (`Core::rate_debts`): a client
/// that spent its burst gets no fresh one by reconnecting, whether it resumes its session, starts
/// clean, or takes over its own live connection from another thread.
#[test]
fn publish_rate_not_refilled_by_reconnecting() {
    for v in BOTH {
        for (clean, take_over) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut sim = Sim::with(2, |cfg| cfg.mqtt.limits.publish_rate = 10);
            let id = client_id_on(&sim, "greedy", 0);
            let mut c = connect(v, &id, clean, 0);
            if v.is_v5() && !clean {
                c.properties.session_expiry_interval = Some(60);
            }
            let (first, _) = sim.connect_ok(0, c.clone());
            for i in 0..11 {
                sim.write(
                    first,
                    &publish("rate/r", b"x", QoS::AtLeastOnce, false, i + 1),
                );
            }
            sim.settle();
            assert_eq!(pubacks(&sim.recv(first)), 11);
            if !take_over {
                sim.hang_up(first);
            }
            let (second, _) = sim.connect_ok(1, c);
            for i in 0..5 {
                sim.write(
                    second,
                    &publish("rate/r", b"x", QoS::AtLeastOnce, false, i + 1),
                );
            }
            sim.settle();
            let acked = pubacks(&sim.recv(second));
            assert!(
                acked <= 1,
                "{v:?} clean {clean} takeover {take_over}: {acked} acknowledged at once"
            );
            sim.advance(Duration::from_secs(1));
            assert_eq!(acked + pubacks(&sim.recv(second)), 5);
        }
    }
}
