//! PUBLISH flows over real loopback sockets, for MQTT 3.1.1 and 5.0: QoS 0/1/2 in both directions
//! with the complete PUBACK / PUBREC / PUBREL / PUBCOMP exchanges, delivered QoS = min(published,
//! granted), a QoS 2 PUBLISH resent before PUBREL delivered once, per-topic ordering of 500 QoS 1
//! messages, per-publisher order with concurrent publishers and fan-out to several subscribers,
//! v5 properties forwarded to subscribers, v5 topic aliases from clients, and v5 No Local.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use picomq::protocol::{Packet, Properties, ProtocolVersion, PubResponse, QoS, ReasonCode};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// Every (published QoS, subscribed QoS) pair: the subscriber gets min of the two, and both sides
/// run the full acknowledgement flow with matching packet ids.
fn qos_matrix(version: ProtocolVersion) {
    let b = TestBroker::start();
    let mut publisher = Client::connect(b.addr, version, "matrix-pub");
    let mut subs = Vec::new();
    for sq in 0..=2u8 {
        let mut s = Client::connect(b.addr, version, &format!("matrix-sub-{sq}"));
        s.sub_ok(1, "m/+", qos(sq));
        subs.push(s);
    }
    let mut next_id = 10u16;
    for pq in 0..=2u8 {
        let topic = format!("m/{pq}");
        let payload = format!("published at QoS {pq}");
        next_id += 1;
        publisher.publish(&topic, payload.as_bytes(), qos(pq), false, next_id);
        for (sq, s) in subs.iter_mut().enumerate() {
            let p = s.expect_publish();
            let want = qos(pq.min(sq as u8));
            assert_publish(&p, &topic, payload.as_bytes(), want);
            assert!(!p.retain, "live message forwarded with RETAIN");
            assert!(!p.dup, "first delivery with DUP");
            s.ack(&p);
        }
    }
    for s in subs.iter_mut() {
        s.expect_nothing(QUIET);
    }
}

#[test]
fn mqtt_3_8_4_6_delivered_qos_is_min_of_published_and_granted_v311() {
    with_deadline(Duration::from_secs(20), || qos_matrix(V311));
}

#[test]
fn mqtt_3_8_4_6_delivered_qos_is_min_of_published_and_granted_v5() {
    with_deadline(Duration::from_secs(20), || qos_matrix(V5));
}

/// Asserts the bytes of one acknowledgement: `first` byte, length 2, packet id; a v5 Success may
/// also be spelled with an explicit 0x00 reason code (MQTT 5.0 section 3.4.2.1).
fn assert_ack_bytes(got: &[u8], first: u8, id: u16, version: ProtocolVersion) {
    let [hi, lo] = id.to_be_bytes();
    let short = [first, 0x02, hi, lo];
    let long = [first, 0x03, hi, lo, 0x00];
    let ok = got == short || (version.is_v5() && got == long);
    assert!(ok, "expected {short:02x?} ({version:?}), got {got:02x?}");
}

/// The exact bytes of the broker's acknowledgements to a publisher.
fn publisher_ack_bytes(version: ProtocolVersion) {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr, version, "ack-bytes");
    // QoS 1, packet id 0x1234: PUBACK 40 02 12 34.
    c.send(&Packet::Publish(publish_packet(
        "acks/1",
        b"x",
        QoS::AtLeastOnce,
        false,
        0x1234,
    )));
    let (got, _) = c.read_raw_until_close(Duration::from_millis(300));
    assert_ack_bytes(&got, 0x40, 0x1234, version);
    // QoS 2, packet id 0x0102: PUBREC 50 02 01 02; PUBREL 62 02 01 02 -> PUBCOMP 70 02 01 02.
    c.send(&Packet::Publish(publish_packet(
        "acks/2",
        b"y",
        QoS::ExactlyOnce,
        false,
        0x0102,
    )));
    let (got, _) = c.read_raw_until_close(Duration::from_millis(300));
    assert_ack_bytes(&got, 0x50, 0x0102, version);
    c.send_raw(&[0x62, 0x02, 0x01, 0x02]);
    let (got, _) = c.read_raw_until_close(Duration::from_millis(300));
    assert_ack_bytes(&got, 0x70, 0x0102, version);
    c.disconnect();
}

#[test]
fn mqtt_4_3_publisher_acknowledgement_bytes_v311() {
    with_deadline(Duration::from_secs(20), || publisher_ack_bytes(V311));
}

#[test]
fn mqtt_4_3_publisher_acknowledgement_bytes_v5() {
    with_deadline(Duration::from_secs(20), || publisher_ack_bytes(V5));
}

/// Broker -> subscriber QoS 2: the PUBREL must carry the PUBLISH's packet id, and nothing is
/// redelivered once PUBCOMP is sent.
fn outbound_qos2(version: ProtocolVersion) {
    let b = TestBroker::start();
    let mut sub = Client::connect(b.addr, version, "out2-sub");
    sub.sub_ok(1, "out2", QoS::ExactlyOnce);
    let mut publisher = Client::connect(b.addr, version, "out2-pub");
    for i in 0..3u16 {
        publisher.publish(
            "out2",
            format!("m{i}").as_bytes(),
            QoS::ExactlyOnce,
            false,
            100 + i,
        );
    }
    // All three are in flight at once (window 32); ids must be distinct.
    let mut ids = Vec::new();
    for i in 0..3u16 {
        let p = sub.expect_publish();
        assert_publish(&p, "out2", format!("m{i}").as_bytes(), QoS::ExactlyOnce);
        let id = p.packet_id.expect("QoS 2 has an id");
        assert!(!ids.contains(&id), "packet id {id} reused while in flight");
        ids.push(id);
    }
    for &id in &ids {
        sub.send(&Packet::PubRec(PubResponse::ok(id)));
        sub.expect_ack(6, id);
    }
    for &id in &ids {
        sub.send(&Packet::PubComp(PubResponse::ok(id)));
    }
    sub.expect_nothing(QUIET);
    sub.ping();
}

#[test]
fn mqtt_4_3_3_outbound_qos2_flow_v311() {
    with_deadline(Duration::from_secs(20), || outbound_qos2(V311));
}

#[test]
fn mqtt_4_3_3_outbound_qos2_flow_v5() {
    with_deadline(Duration::from_secs(20), || outbound_qos2(V5));
}

/// A QoS 2 PUBLISH resent (DUP=1, same id) before PUBREL is acknowledged again but routed once.
fn qos2_duplicate_once(version: ProtocolVersion) {
    let b = TestBroker::start();
    let mut sub = Client::connect(b.addr, version, "dup-sub");
    sub.sub_ok(1, "dup/t", QoS::ExactlyOnce);
    let mut publisher = Client::connect(b.addr, version, "dup-pub");
    let mut p = publish_packet("dup/t", b"exactly once", QoS::ExactlyOnce, false, 7);
    publisher.send(&Packet::Publish(p.clone()));
    publisher.expect_ack(5, 7);
    p.dup = true;
    publisher.send(&Packet::Publish(p.clone()));
    publisher.expect_ack(5, 7);
    publisher.send(&Packet::Publish(p));
    publisher.expect_ack(5, 7);
    publisher.send(&Packet::PubRel(PubResponse::ok(7)));
    publisher.expect_ack(7, 7);
    let got = sub.expect_publish_acked();
    assert_publish(&got, "dup/t", b"exactly once", QoS::ExactlyOnce);
    sub.expect_nothing(Duration::from_millis(500));
    // After PUBCOMP the id is free again: the same id now carries a new message.
    publisher.publish("dup/t", b"second", QoS::ExactlyOnce, false, 7);
    let got = sub.expect_publish_acked();
    assert_publish(&got, "dup/t", b"second", QoS::ExactlyOnce);
    sub.expect_nothing(QUIET);
}

#[test]
fn mqtt_4_3_3_qos2_duplicate_before_pubrel_delivered_once_v311() {
    with_deadline(Duration::from_secs(20), || qos2_duplicate_once(V311));
}

#[test]
fn mqtt_4_3_3_qos2_duplicate_before_pubrel_delivered_once_v5() {
    with_deadline(Duration::from_secs(20), || qos2_duplicate_once(V5));
}

/// 500 QoS 1 messages on one topic, published back to back, arrive complete and in order.
fn ordered_500(version: ProtocolVersion) {
    const N: u16 = 500;
    let b = TestBroker::start();
    let mut sub = Client::connect(b.addr, version, "order-sub");
    sub.sub_ok(1, "order/t", QoS::AtLeastOnce);
    let mut publisher = Client::connect(b.addr, version, "order-pub");
    // Pipelined in batches of 50 (under any Receive Maximum), then the PUBACKs of the batch.
    for batch in 0..N / 50 {
        for i in batch * 50..(batch + 1) * 50 {
            let p = publish_packet("order/t", &i.to_be_bytes(), QoS::AtLeastOnce, false, i + 1);
            publisher.send(&Packet::Publish(p));
        }
        for i in batch * 50..(batch + 1) * 50 {
            publisher.expect_ack(4, i + 1);
        }
    }
    for i in 0..N {
        let p = sub.expect_publish();
        assert_eq!(
            &p.payload[..],
            &i.to_be_bytes(),
            "message {i} out of order or missing"
        );
        assert_eq!(p.qos, QoS::AtLeastOnce);
        assert!(!p.dup, "message {i} delivered with DUP");
        sub.ack(&p);
    }
    sub.expect_nothing(QUIET);
}

#[test]
fn mqtt_4_6_0_6_500_qos1_messages_arrive_in_order_v311() {
    with_deadline(Duration::from_secs(30), || ordered_500(V311));
}

#[test]
fn mqtt_4_6_0_6_500_qos1_messages_arrive_in_order_v5() {
    with_deadline(Duration::from_secs(30), || ordered_500(V5));
}

#[test]
fn qos0_publish_is_forwarded_without_acknowledgement() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut sub = Client::connect(b.addr, V311, "q0-sub");
        sub.sub_ok(1, "q0/#", QoS::ExactlyOnce);
        let mut publisher = Client::connect(b.addr, V311, "q0-pub");
        publisher.publish("q0/a/b", b"", QoS::AtMostOnce, false, 0);
        publisher.publish("q0/a/b", b"fire and forget", QoS::AtMostOnce, false, 0);
        // The publisher gets nothing back for QoS 0.
        publisher.expect_nothing(QUIET);
        assert_publish(&sub.expect_publish(), "q0/a/b", b"", QoS::AtMostOnce);
        assert_publish(
            &sub.expect_publish(),
            "q0/a/b",
            b"fire and forget",
            QoS::AtMostOnce,
        );
    });
}

#[test]
fn v5_publish_properties_are_forwarded() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut sub = Client::connect(b.addr, V5, "props-sub");
        sub.sub_ok(1, "props/t", QoS::AtLeastOnce);
        let mut publisher = Client::connect(b.addr, V5, "props-pub");
        let mut p = publish_packet("props/t", b"{\"v\":1}", QoS::AtLeastOnce, false, 3);
        p.properties = Properties {
            payload_format_indicator: Some(1),
            content_type: Some("application/json".into()),
            response_topic: Some("props/reply".into()),
            correlation_data: Some(Bytes::from_static(b"\x01\x02\x03")),
            user_properties: vec![("k".into(), "v1".into()), ("k".into(), "v2".into())],
            ..Properties::default()
        };
        let sent = p.properties.clone();
        publisher.publish_with(p);
        let got = sub.expect_publish_acked();
        assert_publish(&got, "props/t", b"{\"v\":1}", QoS::AtLeastOnce);
        assert_eq!(got.properties, sent, "properties forwarded unchanged");
    });
}

#[test]
fn v5_topic_alias_from_client_is_resolved() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let (_, ack) = Client::connect_v5(b.addr, "alias-probe", true, 60, Properties::default());
        assert_eq!(
            ack.properties.topic_alias_maximum,
            Some(16),
            "CONNACK Topic Alias Maximum"
        );
        let mut sub = Client::connect(b.addr, V5, "alias-sub");
        sub.sub_ok(1, "alias/#", QoS::AtMostOnce);
        let mut publisher = Client::connect(b.addr, V5, "alias-pub");
        let with_alias = |topic: &str, alias: u16, payload: &[u8]| {
            let mut p = publish_packet(topic, payload, QoS::AtMostOnce, false, 0);
            p.properties.topic_alias = Some(alias);
            p
        };
        // Set alias 3, use it with an empty topic, then re-map it.
        publisher.publish_with(with_alias("alias/one", 3, b"a"));
        publisher.publish_with(with_alias("", 3, b"b"));
        publisher.publish_with(with_alias("alias/two", 3, b"c"));
        publisher.publish_with(with_alias("", 3, b"d"));
        publisher.publish_with(with_alias("", 16, b"unknown alias"));
        for (topic, payload) in [
            ("alias/one", b"a"),
            ("alias/one", b"b"),
            ("alias/two", b"c"),
            ("alias/two", b"d"),
        ] {
            let p = sub.expect_publish();
            assert_publish(&p, topic, payload, QoS::AtMostOnce);
            assert_eq!(p.properties.topic_alias, None, "alias leaked to subscriber");
        }
        // Alias 16 was never set: a Protocol Error (MQTT 5.0 section 3.3.2.3.4).
        publisher.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
        sub.expect_nothing(QUIET);
    });
}

#[test]
fn v5_no_local_subscription_skips_own_messages() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut c = Client::connect(b.addr, V5, "nolocal");
        let mut opts = sub_opts(QoS::AtLeastOnce);
        opts.no_local = true;
        let codes = c.subscribe_with(picomq::protocol::Subscribe {
            packet_id: 1,
            filters: vec![("nl/t".into(), opts)],
            properties: Properties::default(),
        });
        assert_eq!(codes, vec![ReasonCode::GRANTED_QOS_1]);
        c.publish("nl/t", b"mine", QoS::AtLeastOnce, false, 2);
        c.expect_nothing(QUIET);
        let mut other = Client::connect(b.addr, V5, "nolocal-other");
        other.publish("nl/t", b"theirs", QoS::AtLeastOnce, false, 1);
        assert_publish(
            &c.expect_publish_acked(),
            "nl/t",
            b"theirs",
            QoS::AtLeastOnce,
        );
    });
}

#[test]
fn mqtt_4_6_0_6_concurrent_publishers_keep_their_own_order_and_fan_out_reaches_all() {
    with_deadline(Duration::from_secs(30), || {
        const PUBLISHERS: u8 = 4;
        const EACH: u16 = 150;
        const SUBSCRIBERS: usize = 6;
        let b = TestBroker::start();
        let mut subs: Vec<Client> = (0..SUBSCRIBERS)
            .map(|i| {
                let version = if i % 2 == 0 { V311 } else { V5 };
                let mut s = Client::connect(b.addr, version, &format!("fan-sub-{i}"));
                s.sub_ok(1, "fan/t", qos(1 + (i % 2) as u8));
                s
            })
            .collect();
        // Publishers run at the same time, from threads, spread over both I/O threads.
        let addr = b.addr;
        let handles: Vec<_> = (0..PUBLISHERS)
            .map(|n| {
                std::thread::spawn(move || {
                    let mut p = Client::connect(addr, V5, &format!("fan-pub-{n}"));
                    for i in 0..EACH {
                        let q = if i % 3 == 0 {
                            QoS::ExactlyOnce
                        } else {
                            QoS::AtLeastOnce
                        };
                        p.publish("fan/t", &[n, (i >> 8) as u8, i as u8], q, false, i + 1);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("publisher thread");
        }
        for (i, s) in subs.iter_mut().enumerate() {
            let got = s.collect_publishes(usize::from(PUBLISHERS) * usize::from(EACH));
            let mut next = [0u16; PUBLISHERS as usize];
            for m in &got {
                let (n, seq) = (
                    usize::from(m.payload[0]),
                    u16::from_be_bytes([m.payload[1], m.payload[2]]),
                );
                assert_eq!(seq, next[n], "subscriber {i}: publisher {n} out of order");
                next[n] += 1;
            }
            s.expect_nothing(Duration::from_millis(50));
        }
    });
}

/// A payload of `len` bytes whose content depends on `seed` and the position.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(7).wrapping_add(u32::from(seed)) as u8)
        .collect()
}

#[test]
fn payloads_of_every_size_class_arrive_intact() {
    with_deadline(Duration::from_secs(40), || {
        let b = TestBroker::start();
        let mut s3 = Client::connect(b.addr, V311, "big-sub-3");
        s3.sub_ok(1, "big/#", QoS::ExactlyOnce);
        let mut s5 = Client::connect(b.addr, V5, "big-sub-5");
        s5.sub_ok(1, "big/#", QoS::AtLeastOnce);
        let mut p = Client::connect(b.addr, V5, "big-pub");
        // Remaining Length boundaries (1 to 3 bytes), the 512-byte sharing threshold, and close
        // to the 1 MiB default maximum packet size.
        let sizes = [
            0usize, 1, 100, 120, 511, 512, 513, 4096, 16_370, 16_384, 65_536, 300_000, 1_000_000,
        ];
        for (i, &len) in sizes.iter().enumerate() {
            let q = if i % 2 == 0 {
                QoS::ExactlyOnce
            } else {
                QoS::AtLeastOnce
            };
            p.publish("big/t", &pattern(len, i as u8), q, false, i as u16 + 1);
            for (s, granted) in [(&mut s3, QoS::ExactlyOnce), (&mut s5, QoS::AtLeastOnce)] {
                let m = s.expect_publish_acked();
                assert_eq!(m.payload.len(), len, "size {len}");
                assert!(
                    m.payload[..] == pattern(len, i as u8)[..],
                    "payload of {len} bytes corrupted"
                );
                assert_eq!(m.qos, q.min(granted));
            }
        }
        // A burst of 64 KiB QoS 0 messages in one go: all arrive, intact and in order.
        let mut burst = Vec::new();
        for i in 0..40u8 {
            let m = publish_packet("big/burst", &pattern(65_536, i), QoS::AtMostOnce, false, 0);
            burst.extend(encode(&Packet::Publish(m), V5));
        }
        p.send_raw(&burst);
        for i in 0..40u8 {
            for s in [&mut s3, &mut s5] {
                let m = s.expect_publish();
                assert!(
                    m.payload[..] == pattern(65_536, i)[..],
                    "burst message {i} corrupted or out of order"
                );
            }
        }
    });
}

#[test]
fn mqtt_3_3_1_3_incoming_dup_flag_is_not_propagated() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut sub = Client::connect(b.addr, V311, "dupflag-sub");
        sub.sub_ok(1, "dupflag/t", QoS::ExactlyOnce);
        let mut p = Client::connect(b.addr, V5, "dupflag-pub");
        for (id, q) in [(1u16, QoS::AtLeastOnce), (2, QoS::ExactlyOnce)] {
            let mut m = publish_packet("dupflag/t", b"first try", q, false, id);
            m.dup = true;
            p.publish_with(m);
            let got = sub.expect_publish_acked();
            assert_publish(&got, "dupflag/t", b"first try", q);
            assert!(
                !got.dup,
                "DUP copied from the publisher to a first delivery ({q:?})"
            );
        }
    });
}
