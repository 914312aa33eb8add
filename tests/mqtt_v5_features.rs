//! MQTT 5.0 features over real loopback sockets: the client's Receive Maximum and Maximum Packet
//! Size limiting what the broker sends, Message Expiry (queued, retained and forwarded), the Will
//! Delay Interval, what CONNACK advertises for configured limits (retain unavailable, Maximum QoS,
//! no wildcard subscriptions, no subscription identifiers) and how the broker enforces them,
//! topic aliases assigned by the broker, Response Information, a will whose payload is not the
//! UTF-8 it claims, PUBREL for an unknown packet id,
//! Payload Format Indicator checks, subscription identifiers on retained messages, an
//! unsupported authentication method, a DISCONNECT that must fit the client's Maximum Packet Size,
//! and DISCONNECT 0x8B when the broker shuts down.

mod common;

use std::time::{Duration, Instant};

use common::*;
use picomq::protocol::{
    Packet, Properties, ProtocolVersion, PubResponse, QoS, ReasonCode, Subscribe,
};

const V5: ProtocolVersion = ProtocolVersion::V5;

fn props(f: impl FnOnce(&mut Properties)) -> Properties {
    let mut p = Properties::default();
    f(&mut p);
    p
}

#[test]
fn mqtt_3_3_4_9_broker_respects_the_clients_receive_maximum() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let rm2 = props(|p| p.receive_maximum = Some(2));
        let (mut c, ack) = Client::connect_v5(b.addr, "rm-sub", true, 60, rm2);
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        c.sub_ok(1, "rm/t", QoS::ExactlyOnce);
        let mut p = Client::connect(b.addr, V5, "rm-pub");
        for i in 0..5u16 {
            let q = if i % 2 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            };
            p.publish("rm/t", &i.to_be_bytes(), q, false, i + 1);
        }
        let m0 = c.expect_publish();
        let m1 = c.expect_publish();
        assert_eq!(
            (&m0.payload[..], &m1.payload[..]),
            (&[0, 0][..], &[0, 1][..])
        );
        // Two unacknowledged: the broker must wait.
        c.expect_nothing(QUIET);
        c.ack(&m0);
        let m2 = c.expect_publish();
        assert_eq!(&m2.payload[..], &[0, 2]);
        c.expect_nothing(QUIET);
        // QoS 2 counts until PUBCOMP, not PUBREC.
        let id1 = m1.packet_id.expect("id");
        c.send(&Packet::PubRec(PubResponse::ok(id1)));
        c.expect_ack(6, id1);
        c.expect_nothing(QUIET);
        c.send(&Packet::PubComp(PubResponse::ok(id1)));
        let m3 = c.expect_publish();
        assert_eq!(&m3.payload[..], &[0, 3]);
        // m2 (QoS 1) and m3 (QoS 2) in flight: completing m3 frees the slot for m4.
        c.ack(&m3);
        let m4 = c.expect_publish_acked();
        assert_eq!(&m4.payload[..], &[0, 4]);
        c.ack(&m2);
        c.expect_nothing(QUIET);
    });
}

#[test]
fn mqtt_3_1_2_25_broker_never_sends_more_than_the_clients_maximum_packet_size() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let small = props(|p| p.maximum_packet_size = Some(64));
        let (mut c, _) = Client::connect_v5(b.addr, "mps-sub", true, 60, small);
        c.sub_ok(1, "mps/t", QoS::AtLeastOnce);
        let mut p = Client::connect(b.addr, V5, "mps-pub");
        p.publish("mps/t", &[b'x'; 100], QoS::AtLeastOnce, false, 1);
        p.publish("mps/t", b"fits", QoS::AtLeastOnce, false, 2);
        // The big one is discarded as if delivered; the small one arrives.
        let got = c.expect_publish_acked();
        assert_publish(&got, "mps/t", b"fits", QoS::AtLeastOnce);
        c.expect_nothing(QUIET);
    });
}

#[test]
fn mqtt_3_3_2_5_expired_messages_are_not_delivered() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let keep = props(|p| p.session_expiry_interval = Some(60));
        let (mut s, _) = Client::connect_v5(b.addr, "mexp", false, 60, keep.clone());
        s.sub_ok(1, "mexp/#", QoS::AtLeastOnce);
        s.disconnect();
        let mut p = Client::connect(b.addr, V5, "mexp-pub");
        let mut short = publish_packet("mexp/q", b"expires", QoS::AtLeastOnce, false, 1);
        short.properties.message_expiry_interval = Some(1);
        p.publish_with(short);
        p.publish("mexp/q", b"stays", QoS::AtLeastOnce, false, 2);
        let mut ret = publish_packet("mexp/r", b"retained, expires", QoS::AtLeastOnce, true, 3);
        ret.properties.message_expiry_interval = Some(1);
        p.publish_with(ret);
        std::thread::sleep(Duration::from_millis(1500));
        let (mut s, ack) = Client::connect_v5(b.addr, "mexp", false, 60, keep);
        assert!(ack.session_present);
        let got = s.expect_publish_acked();
        assert_publish(&got, "mexp/q", b"stays", QoS::AtLeastOnce);
        s.expect_nothing(QUIET);
        let mut late = Client::connect(b.addr, V5, "mexp-late");
        late.sub_ok(1, "mexp/r", QoS::AtLeastOnce);
        late.expect_nothing(QUIET);
        // Forwarded live: the interval is passed on (minus the time spent in the broker).
        let mut live = publish_packet("mexp/q", b"live", QoS::AtLeastOnce, false, 4);
        live.properties.message_expiry_interval = Some(60);
        p.publish_with(live);
        let got = s.expect_publish_acked();
        let left = got.properties.message_expiry_interval;
        assert!(
            matches!(left, Some(59..=60)),
            "forwarded Message Expiry Interval {left:?}"
        );
    });
}

/// A will with Will Delay Interval 1 s on a session that outlives the connection (expiry 10 s).
fn connect_with_delayed_will(b: &TestBroker, id: &str) -> Client {
    let mut c = connect_packet(V5, id, false, 60);
    c.properties.session_expiry_interval = Some(10);
    let mut w = will(&format!("wd/{id}"), b"delayed", QoS::AtLeastOnce, false);
    w.properties.will_delay_interval = Some(1);
    c.will = Some(w);
    let (client, ack) = Client::handshake(b.addr, c);
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    client
}

#[test]
fn mqtt_3_1_3_9_will_delay_interval_is_honoured() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut w = Client::connect(b.addr, V5, "wd-watcher");
        w.sub_ok(1, "wd/#", QoS::AtLeastOnce);
        // Dropped and not back: the will comes after the delay, not before.
        let gone = connect_with_delayed_will(&b, "gone");
        let dropped = Instant::now();
        drop(gone);
        let p = w.expect_publish_within(Duration::from_secs(4));
        let after = dropped.elapsed();
        w.ack(&p);
        assert_publish(&p, "wd/gone", b"delayed", QoS::AtLeastOnce);
        assert!(
            after >= Duration::from_millis(900),
            "will published {after:?} after the drop, before its 1 s delay"
        );
        // Dropped and back within the delay: no will at all [MQTT-3.1.3-9].
        let back = connect_with_delayed_will(&b, "back");
        drop(back);
        std::thread::sleep(Duration::from_millis(300));
        let mut again = connect_packet(V5, "back", false, 60);
        again.properties.session_expiry_interval = Some(10);
        let (_back, ack) = Client::handshake(b.addr, again);
        assert!(ack.session_present);
        w.expect_nothing(Duration::from_millis(1500));
    });
}

#[test]
fn retain_unavailable_is_advertised_and_enforced() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.retain_available = false);
        let (mut c, ack) = Client::connect_v5(b.addr, "noret", true, 60, Properties::default());
        assert_eq!(
            ack.properties.retain_available,
            Some(0),
            "CONNACK Retain Available"
        );
        c.publish("nr/t", b"plain", QoS::AtLeastOnce, false, 1);
        c.send(&Packet::Publish(publish_packet(
            "nr/t",
            b"r",
            QoS::AtMostOnce,
            true,
            0,
        )));
        c.expect_disconnect(ReasonCode::RETAIN_NOT_SUPPORTED);
        // A will with RETAIN=1 is refused at CONNECT [MQTT-3.2.2-13].
        let mut conn = connect_packet(V5, "noret-will", true, 60);
        conn.will = Some(will("nr/w", b"w", QoS::AtMostOnce, true));
        let (mut c, ack) = Client::handshake(b.addr, conn);
        assert_eq!(ack.reason, ReasonCode::RETAIN_NOT_SUPPORTED);
        c.expect_closed();
    });
}

#[test]
fn maximum_qos_1_is_advertised_and_enforced() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.max_qos = QoS::AtLeastOnce);
        let (mut c, ack) = Client::connect_v5(b.addr, "q1max", true, 60, Properties::default());
        assert_eq!(ack.properties.maximum_qos, Some(1), "CONNACK Maximum QoS");
        let codes = c.subscribe(1, &[("mq/t", QoS::ExactlyOnce)]);
        assert_eq!(
            codes,
            vec![ReasonCode::GRANTED_QOS_1],
            "QoS 2 request granted as 1"
        );
        let body = [0x00, 0x04, b'm', b'q', b'/', b't', 0x00, 0x01, 0x00, b'x'];
        let mut bytes = vec![0x34, body.len() as u8];
        bytes.extend_from_slice(&body);
        c.send_raw(&bytes);
        c.expect_disconnect(ReasonCode::QOS_NOT_SUPPORTED);
    });
}

#[test]
fn mqtt_3_6_4_pubrel_for_unknown_id_gets_pubcomp_0x92() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut c = Client::connect(b.addr, V5, "unknown-rel");
        c.send(&Packet::PubRel(PubResponse::ok(99)));
        match c.expect_packet() {
            Packet::PubComp(r) => {
                assert_eq!(r.packet_id, 99);
                assert_eq!(r.reason, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND);
            }
            other => panic!("expected PUBCOMP 0x92, got {other:?}"),
        }
        c.ping();
        // 3.1.1 has no reason code: a plain PUBCOMP for the id.
        let mut c3 = Client::connect(b.addr, ProtocolVersion::V311, "unknown-rel-3");
        c3.send_raw(&[0x62, 0x02, 0x00, 0x63]);
        let (got, closed) = c3.read_raw_until_close(Duration::from_millis(300));
        assert_eq!(got, [0x70, 0x02, 0x00, 0x63]);
        assert!(!closed);
    });
}

#[test]
fn payload_format_indicator_with_invalid_utf8_is_refused_with_0x99() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut sub = Client::connect(b.addr, V5, "pfi-sub");
        sub.sub_ok(1, "pfi/t", QoS::AtLeastOnce);
        let mut c = Client::connect(b.addr, V5, "pfi-pub");
        let mut p = publish_packet("pfi/t", b"\xFF\xFE", QoS::AtLeastOnce, false, 4);
        p.properties.payload_format_indicator = Some(1);
        c.send(&Packet::Publish(p));
        match c.expect_packet() {
            Packet::PubAck(r) => {
                assert_eq!(r.packet_id, 4);
                assert_eq!(r.reason, ReasonCode::PAYLOAD_FORMAT_INVALID);
            }
            other => panic!("expected PUBACK 0x99, got {other:?}"),
        }
        sub.expect_nothing(QUIET);
    });
}

#[test]
fn retained_delivery_carries_the_subscription_identifier() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut p = Client::connect(b.addr, V5, "sid-pub");
        p.publish("sid/t", b"retained", QoS::AtLeastOnce, true, 1);
        let mut c = Client::connect(b.addr, V5, "sid-sub");
        let codes = c.subscribe_with(Subscribe {
            packet_id: 1,
            filters: vec![("sid/+".to_owned(), sub_opts(QoS::AtLeastOnce))],
            properties: props(|p| p.subscription_identifiers = vec![268_435_455]),
        });
        assert_eq!(codes, vec![ReasonCode::GRANTED_QOS_1]);
        let got = c.expect_publish_acked();
        assert!(got.retain);
        assert_eq!(got.properties.subscription_identifiers, vec![268_435_455]);
    });
}

#[test]
fn mqtt_4_12_0_1_unsupported_authentication_method_gets_0x8c() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let auth = props(|p| p.authentication_method = Some("SCRAM-SHA-1".into()));
        let (mut c, ack) = Client::connect_v5(b.addr, "auth", true, 60, auth);
        assert_eq!(ack.reason, ReasonCode::BAD_AUTHENTICATION_METHOD);
        c.expect_closed();
    });
}

#[test]
fn mqtt_3_14_2_3_disconnect_never_exceeds_the_clients_maximum_packet_size() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let limit = 30u32;
        let small = props(|p| p.maximum_packet_size = Some(limit));
        let mut c = Client::tcp(b.addr, V5);
        let mut connect = connect_packet(V5, "tiny", true, 60);
        connect.properties = small;
        c.send(&Packet::Connect(Box::new(connect)));
        let ack = c.expect_connack();
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        // PINGREQ with a reserved flag bit: the broker must say 0x81, in at most 30 bytes (a
        // Reason String that does not fit must be left out, MQTT 5.0 section 3.14.2.2.2).
        c.send_raw(&[0xC1, 0x00]);
        let (bytes, closed) = c.read_raw_until_close(WAIT);
        assert!(closed, "connection must be closed");
        assert!(
            bytes.len() <= limit as usize,
            "DISCONNECT of {} bytes sent to a client whose Maximum Packet Size is {limit}: \
             {bytes:02x?}",
            bytes.len()
        );
        assert_eq!(&bytes[..1], &[0xE0], "a DISCONNECT");
        assert_eq!(bytes.get(2), Some(&0x81), "reason Malformed Packet");
    });
}

#[test]
fn broker_shutdown_sends_v5_disconnect_0x8b_and_closes_everyone() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut c5 = Client::connect(b.addr, V5, "until-shutdown-5");
        let mut c3 = Client::connect(b.addr, ProtocolVersion::V311, "until-shutdown-3");
        let mut raw = Client::tcp(b.addr, V5);
        c5.ping();
        c3.ping();
        b.shutdown();
        c5.expect_disconnect(ReasonCode::SERVER_SHUTTING_DOWN);
        c3.expect_closed();
        raw.expect_closed();
    });
}

#[test]
fn wildcards_and_subscription_identifiers_off_by_config() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| {
            c.mqtt.wildcard_subscriptions = false;
            c.mqtt.subscription_identifiers = false;
        });
        let (mut c, ack) =
            Client::connect_v5(b.addr, "plain-only", true, 60, Properties::default());
        assert_eq!(ack.properties.wildcard_subscription_available, Some(0));
        assert_eq!(ack.properties.subscription_identifier_available, Some(0));
        let codes = c.subscribe(
            1,
            &[
                ("w/+", QoS::AtMostOnce),
                ("w/#", QoS::AtMostOnce),
                ("w/x", QoS::AtMostOnce),
            ],
        );
        assert_eq!(
            codes,
            vec![
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
                ReasonCode::SUCCESS
            ]
        );
        let codes = c.subscribe_with(Subscribe {
            packet_id: 2,
            filters: vec![("w/y".to_owned(), sub_opts(QoS::AtMostOnce))],
            properties: props(|p| p.subscription_identifiers = vec![3]),
        });
        assert_eq!(
            codes,
            vec![ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED]
        );
        let mut c3 = Client::connect(b.addr, ProtocolVersion::V311, "plain-only-3");
        assert_eq!(
            c3.subscribe(1, &[("w/#", QoS::AtMostOnce)]),
            vec![ReasonCode::UNSPECIFIED_ERROR]
        );
    });
}

#[test]
fn mqtt_3_3_2_3_4_broker_assigned_topic_aliases_resolve_correctly() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let two = props(|p| p.topic_alias_maximum = Some(2));
        let (mut c, ack) = Client::connect_v5(b.addr, "alias-in", true, 60, two);
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        c.sub_ok(1, "al/#", QoS::AtMostOnce);
        let mut p = Client::connect(b.addr, V5, "alias-out-pub");
        let topics = [
            "al/one", "al/two", "al/one", "al/three", "al/one", "al/two", "al/two",
        ];
        for (i, t) in topics.iter().enumerate() {
            p.publish(t, format!("{i}").as_bytes(), QoS::AtMostOnce, false, 0);
        }
        // Resolve as a client must: a topic with an alias sets it, an empty topic uses it.
        let mut table: [Option<String>; 2] = [None, None];
        let mut reused = 0;
        for (i, want) in topics.iter().enumerate() {
            let m = c.expect_publish();
            assert_eq!(&m.payload[..], format!("{i}").as_bytes());
            let topic = match m.properties.topic_alias {
                None => m.topic.clone(),
                Some(a) => {
                    assert!(
                        (1..=2).contains(&a),
                        "alias {a} above the client's maximum 2"
                    );
                    let slot = &mut table[usize::from(a - 1)];
                    if m.topic.is_empty() {
                        reused += 1;
                        slot.clone()
                            .unwrap_or_else(|| panic!("alias {a} used before being set"))
                    } else {
                        *slot = Some(m.topic.clone());
                        m.topic.clone()
                    }
                }
            };
            assert_eq!(&topic, want, "message {i}");
        }
        assert!(reused > 0, "the broker never used an alias it assigned");
        // Aliases belong to the connection: a new connection starts with none known.
        drop(c);
        let (mut c, _) = Client::connect_v5(
            b.addr,
            "alias-in",
            true,
            60,
            props(|p| p.topic_alias_maximum = Some(2)),
        );
        c.sub_ok(1, "al/#", QoS::AtMostOnce);
        p.publish("al/one", b"fresh", QoS::AtMostOnce, false, 0);
        let m = c.expect_publish();
        assert_eq!(
            m.topic, "al/one",
            "first message on a new connection carries the topic"
        );
    });
}

#[test]
fn mqtt_3_2_2_3_15_response_information_when_requested() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.response_information = "replies/".into());
        let ask = props(|p| p.request_response_information = Some(1));
        let (_c, ack) = Client::connect_v5(b.addr, "ri-ask", true, 60, ask);
        assert_eq!(
            ack.properties.response_information.as_deref(),
            Some("replies/")
        );
        let (_c, ack) = Client::connect_v5(b.addr, "ri-quiet", true, 60, Properties::default());
        assert_eq!(ack.properties.response_information, None, "not requested");
        let b2 = TestBroker::start();
        let ask = props(|p| p.request_response_information = Some(1));
        let (_c, ack) = Client::connect_v5(b2.addr, "ri-none", true, 60, ask);
        assert_eq!(ack.properties.response_information, None, "none configured");
    });
}

#[test]
fn will_with_payload_format_utf8_but_invalid_payload_is_refused_0x99() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut conn = connect_packet(V5, "bad-will-utf8", true, 60);
        let mut w = will("w/t", b"\xC3\x28", QoS::AtMostOnce, false);
        w.properties.payload_format_indicator = Some(1);
        conn.will = Some(w);
        let (mut c, ack) = Client::handshake(b.addr, conn);
        assert_eq!(ack.reason, ReasonCode::PAYLOAD_FORMAT_INVALID);
        c.expect_closed();
    });
}

#[test]
fn mqtt_3_2_2_3_2_session_expiry_capped_by_config_is_returned_in_connack() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.max_session_expiry = 1);
        let ask = props(|p| p.session_expiry_interval = Some(300));
        let (mut c, ack) = Client::connect_v5(b.addr, "capped-exp", false, 60, ask.clone());
        assert_eq!(
            ack.properties.session_expiry_interval,
            Some(1),
            "CONNACK Session Expiry"
        );
        c.sub_ok(1, "cexp/t", QoS::AtLeastOnce);
        c.disconnect();
        // The cap is what counts: 1.5 s later the session is gone.
        std::thread::sleep(Duration::from_millis(1500));
        let (_c, ack) = Client::connect_v5(b.addr, "capped-exp", false, 60, ask);
        assert!(!ack.session_present, "session outlived the 1 s cap");
    });
}
