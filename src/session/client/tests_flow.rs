//! Client session message-flow tests with a scripted server and a virtual clock: our QoS 0/1/2
//! publishes and their settling events, the window and queue, the server's CONNACK limits,
//! inbound QoS 1/2, and resumption after a link loss with and without a session present.
//!
//! Owns: tests only; the harness is `tests.rs`'s [`Sim`].

use bytes::Bytes;

use super::tests::{cfg, connack, publish_in, violation, Sim};
use super::*;

const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V311, ProtocolVersion::V5];

/// The single PUBLISH the client wrote, or a panic.
fn one_publish(sim: &mut Sim) -> Publish {
    match sim.sent().as_slice() {
        [Packet::Publish(p)] => p.clone(),
        other => panic!("expected one PUBLISH, got {other:?}"),
    }
}

/// A resumable config: 3.1.1 persistent session, or 5.0 with a session expiry.
fn resumable(v: ProtocolVersion) -> ClientConfig {
    let mut c = cfg(v);
    if v.is_v5() {
        c.session_expiry = 3600;
    } else {
        c.clean_start = false;
    }
    c
}

#[test]
fn qos0_publish_is_sent_and_settled_at_once() {
    for v in BOTH {
        let mut sim = Sim::new(cfg(v));
        sim.connect(false);
        assert_eq!(sim.publish("up/t", QoS::AtMostOnce, 7), Submitted::Settled);
        let p = one_publish(&mut sim);
        assert_eq!(
            (p.qos, p.packet_id, &p.topic[..]),
            (QoS::AtMostOnce, None, "up/t")
        );
        assert_eq!(sim.events(), vec![ClientEvent::Sent(Token(7))]);
    }
}

#[test]
fn qos1_publish_is_delivered_only_on_puback() {
    for v in BOTH {
        let mut sim = Sim::new(cfg(v));
        sim.connect(false);
        let Submitted::InFlight(id) = sim.publish("up/t", QoS::AtLeastOnce, 11) else {
            panic!()
        };
        let p = one_publish(&mut sim);
        assert_eq!(
            (p.qos, p.packet_id, p.dup),
            (QoS::AtLeastOnce, Some(id), false)
        );
        assert!(sim.events().is_empty(), "not delivered before the ack");
        assert_eq!(sim.c.inflight(), 1);
        sim.feed(Packet::PubAck(PubResponse::ok(id)));
        assert_eq!(sim.events(), vec![ClientEvent::Delivered(Token(11))]);
        assert_eq!(sim.c.inflight(), 0);
    }
}

#[test]
fn qos2_publish_is_delivered_only_on_pubcomp() {
    for v in BOTH {
        let mut sim = Sim::new(cfg(v));
        sim.connect(false);
        let Submitted::InFlight(id) = sim.publish("up/t", QoS::ExactlyOnce, 12) else {
            panic!()
        };
        assert_eq!(one_publish(&mut sim).qos, QoS::ExactlyOnce);
        sim.feed(Packet::PubRec(PubResponse::ok(id)));
        assert_eq!(sim.sent(), vec![Packet::PubRel(PubResponse::ok(id))]);
        assert!(sim.events().is_empty(), "PUBREC is not delivery yet");
        sim.feed(Packet::PubComp(PubResponse::ok(id)));
        assert_eq!(sim.events(), vec![ClientEvent::Delivered(Token(12))]);
        // A second PUBCOMP for the same id acknowledges nothing we have.
        sim.feed(Packet::PubComp(PubResponse::ok(id)));
        assert_eq!(violation(&sim.events()), Some(ReasonCode::PROTOCOL_ERROR));
    }
}

#[test]
fn failure_codes_in_puback_and_pubrec_reject_the_message_v5() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V5));
    sim.connect(false);
    let Submitted::InFlight(a) = sim.publish("a", QoS::AtLeastOnce, 1) else {
        panic!()
    };
    let Submitted::InFlight(b) = sim.publish("b", QoS::ExactlyOnce, 2) else {
        panic!()
    };
    sim.sent();
    let refuse = |id| PubResponse {
        reason: ReasonCode::NOT_AUTHORIZED,
        ..PubResponse::ok(id)
    };
    sim.feed(Packet::PubAck(refuse(a)));
    sim.feed(Packet::PubRec(refuse(b)));
    let rejected = |n| ClientEvent::Rejected {
        token: Token(n),
        reason: ReasonCode::NOT_AUTHORIZED,
    };
    assert_eq!(sim.events(), vec![rejected(1), rejected(2)]);
    assert!(sim.sent().is_empty(), "no PUBREL after a failed PUBREC");
    // "No matching subscribers" is a success: the server took the message.
    let Submitted::InFlight(c) = sim.publish("c", QoS::AtLeastOnce, 3) else {
        panic!()
    };
    sim.sent();
    sim.feed(Packet::PubAck(PubResponse {
        reason: ReasonCode::NO_MATCHING_SUBSCRIBERS,
        ..PubResponse::ok(c)
    }));
    assert_eq!(sim.events(), vec![ClientEvent::Delivered(Token(3))]);
}

#[test]
fn server_receive_maximum_bounds_the_window_and_acks_release_the_queue_v5() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V5));
    let props = Properties {
        receive_maximum: Some(2),
        ..Properties::default()
    };
    sim.connect_with(false, props);
    sim.events();
    assert!(matches!(
        sim.publish("t", QoS::AtLeastOnce, 1),
        Submitted::InFlight(_)
    ));
    assert!(matches!(
        sim.publish("t", QoS::ExactlyOnce, 2),
        Submitted::InFlight(_)
    ));
    assert_eq!(sim.publish("t", QoS::AtLeastOnce, 3), Submitted::Queued);
    // QoS 0 keeps its place behind the queued message rather than overtaking it.
    assert_eq!(sim.publish("t", QoS::AtMostOnce, 4), Submitted::Queued);
    let sent = sim.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!((sim.c.inflight(), sim.c.queued()), (2, 2));
    let Packet::Publish(first) = &sent[0] else {
        panic!()
    };
    sim.feed(Packet::PubAck(PubResponse::ok(first.packet_id.unwrap())));
    assert_eq!(
        sim.events(),
        vec![
            ClientEvent::Delivered(Token(1)),
            ClientEvent::Sent(Token(4))
        ]
    );
    let sent = sim.sent();
    assert_eq!(sent.len(), 2, "the queued QoS 1 and the QoS 0 behind it");
    assert_eq!((sim.c.inflight(), sim.c.queued()), (2, 0));
}

#[test]
fn our_max_inflight_bounds_the_window_v311() {
    let mut c = cfg(ProtocolVersion::V311);
    c.max_inflight = 1;
    let mut sim = Sim::new(c);
    sim.connect(false);
    let Submitted::InFlight(id) = sim.publish("t", QoS::ExactlyOnce, 1) else {
        panic!()
    };
    assert_eq!(sim.publish("t", QoS::AtLeastOnce, 2), Submitted::Queued);
    sim.sent();
    // PUBREC does not free the slot: the message is in flight until PUBCOMP.
    sim.feed(Packet::PubRec(PubResponse::ok(id)));
    assert_eq!(sim.sent().len(), 1, "only the PUBREL");
    sim.feed(Packet::PubComp(PubResponse::ok(id)));
    assert_eq!(one_publish(&mut sim).qos, QoS::AtLeastOnce);
}

#[test]
fn full_queue_hands_the_message_back() {
    let mut c = cfg(ProtocolVersion::V311);
    c.max_queued = 2;
    let mut sim = Sim::new(c);
    // Not connected: everything queues.
    sim.publish("t", QoS::AtLeastOnce, 1);
    sim.publish("t", QoS::AtLeastOnce, 2);
    let msg = OutMessage::new("t", Bytes::from_static(b"x"), QoS::AtLeastOnce, Token(3));
    match sim.c.publish(msg, sim.now, &mut sim.out) {
        Err(PublishError::QueueFull(m)) => assert_eq!(m.token, Token(3)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_topic_is_refused_at_publish() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V5));
    sim.connect(false);
    for topic in ["", "a/+", "a/#"] {
        let msg = OutMessage::new(topic, Bytes::new(), QoS::AtMostOnce, Token(1));
        let r = sim.c.publish(msg, sim.now, &mut sim.out);
        assert!(
            matches!(r, Err(PublishError::InvalidTopic(..))),
            "{topic:?}"
        );
    }
    assert!(sim.sent().is_empty());
}

#[test]
fn messages_published_before_connack_go_out_after_it() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V311));
    assert_eq!(sim.publish("t", QoS::AtLeastOnce, 1), Submitted::Queued);
    sim.c.start(sim.now, &mut sim.out);
    assert_eq!(sim.publish("t", QoS::AtMostOnce, 2), Submitted::Queued);
    assert!(
        matches!(&sim.sent()[..], [Packet::Connect(_)]),
        "nothing before CONNACK"
    );
    sim.feed(connack(false, ReasonCode::SUCCESS, Properties::default()));
    let sent = sim.sent();
    assert_eq!(sent.len(), 2);
    assert!(matches!(&sent[0], Packet::Publish(p) if p.qos == QoS::AtLeastOnce));
    assert!(matches!(&sent[1], Packet::Publish(p) if p.qos == QoS::AtMostOnce));
}

#[test]
fn server_maximum_qos_and_retain_available_are_respected_v5() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V5));
    let props = Properties {
        maximum_qos: Some(1),
        retain_available: Some(0),
        ..Properties::default()
    };
    sim.connect_with(false, props);
    sim.events();
    let mut msg = OutMessage::new("t", Bytes::from_static(b"x"), QoS::ExactlyOnce, Token(5));
    msg.retain = true;
    let Ok(Submitted::InFlight(id)) = sim.c.publish(msg, sim.now, &mut sim.out) else {
        panic!()
    };
    let p = one_publish(&mut sim);
    assert_eq!((p.qos, p.retain), (QoS::AtLeastOnce, false));
    sim.feed(Packet::PubAck(PubResponse::ok(id)));
    assert_eq!(sim.events(), vec![ClientEvent::Delivered(Token(5))]);
}

#[test]
fn server_maximum_qos_0_settles_as_sent_v5() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V5));
    let props = Properties {
        maximum_qos: Some(0),
        ..Properties::default()
    };
    sim.connect_with(false, props);
    sim.events();
    assert_eq!(sim.publish("t", QoS::ExactlyOnce, 6), Submitted::Settled);
    assert_eq!(one_publish(&mut sim).qos, QoS::AtMostOnce);
    assert_eq!(sim.events(), vec![ClientEvent::Sent(Token(6))]);
}

#[test]
fn message_above_server_maximum_packet_size_is_dropped_v5() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V5));
    let props = Properties {
        maximum_packet_size: Some(64),
        ..Properties::default()
    };
    sim.connect_with(false, props);
    sim.events();
    let big = OutMessage::new("t", Bytes::from(vec![0u8; 100]), QoS::AtLeastOnce, Token(8));
    assert_eq!(
        sim.c.publish(big, sim.now, &mut sim.out),
        Ok(Submitted::Settled)
    );
    assert!(sim.sent().is_empty());
    assert_eq!(
        sim.events(),
        vec![ClientEvent::Dropped {
            token: Token(8),
            reason: ReasonCode::PACKET_TOO_LARGE
        }]
    );
}

#[test]
fn subscription_identifiers_and_topic_alias_are_not_sent_upstream_v5() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V5));
    sim.connect(false);
    let mut msg = OutMessage::new("t", Bytes::new(), QoS::AtMostOnce, Token(1));
    msg.properties.subscription_identifiers = vec![4];
    msg.properties.topic_alias = Some(3);
    msg.properties.content_type = Some("text/plain".into());
    sim.c.publish(msg, sim.now, &mut sim.out).unwrap();
    let p = one_publish(&mut sim);
    assert!(p.properties.subscription_identifiers.is_empty());
    assert_eq!(p.properties.topic_alias, None);
    assert_eq!(p.properties.content_type.as_deref(), Some("text/plain"));
}

#[test]
fn inbound_qos0_and_qos1_are_reported_and_qos1_acknowledged() {
    for v in BOTH {
        let mut sim = Sim::new(cfg(v));
        sim.connect(false);
        sim.feed(publish_in("down/a", QoS::AtMostOnce, None, false));
        assert!(sim.sent().is_empty());
        sim.feed(publish_in("down/b", QoS::AtLeastOnce, Some(3), false));
        assert_eq!(sim.sent(), vec![Packet::PubAck(PubResponse::ok(3))]);
        let topics: Vec<String> = sim
            .events()
            .into_iter()
            .map(|e| match e {
                ClientEvent::Message(p) => p.topic,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(topics, ["down/a", "down/b"]);
    }
}

#[test]
fn mqtt_4_3_3_10_inbound_qos2_duplicate_publish_is_acknowledged_but_not_reported_again() {
    for v in BOTH {
        let mut sim = Sim::new(cfg(v));
        sim.connect(false);
        sim.feed(publish_in("down/q2", QoS::ExactlyOnce, Some(9), false));
        assert_eq!(sim.sent(), vec![Packet::PubRec(PubResponse::ok(9))]);
        assert_eq!(sim.events().len(), 1);
        sim.feed(publish_in("down/q2", QoS::ExactlyOnce, Some(9), true));
        assert_eq!(sim.sent(), vec![Packet::PubRec(PubResponse::ok(9))]);
        assert!(
            sim.events().is_empty(),
            "the duplicate is not a new message"
        );
        sim.feed(Packet::PubRel(PubResponse::ok(9)));
        assert_eq!(sim.sent(), vec![Packet::PubComp(PubResponse::ok(9))]);
        // After PUBREL the id is free again: the same id is a new message.
        sim.feed(publish_in("down/q2", QoS::ExactlyOnce, Some(9), false));
        assert_eq!(sim.events().len(), 1);
    }
}

#[test]
fn unknown_pubrel_is_answered_with_packet_identifier_not_found_v5() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V5));
    sim.connect(false);
    sim.feed(Packet::PubRel(PubResponse::ok(4)));
    let expected = PubResponse {
        reason: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        ..PubResponse::ok(4)
    };
    assert_eq!(sim.sent(), vec![Packet::PubComp(expected)]);
    assert!(sim.events().is_empty());
}

#[test]
fn inbound_qos2_beyond_our_receive_maximum_is_a_violation() {
    let mut c = cfg(ProtocolVersion::V5);
    c.receive_maximum = 2;
    let mut sim = Sim::new(c);
    sim.connect(false);
    for id in 1..=3 {
        sim.feed(publish_in("d", QoS::ExactlyOnce, Some(id), false));
    }
    assert_eq!(
        violation(&sim.events()),
        Some(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)
    );
}

#[test]
fn a_v311_server_cannot_know_our_receive_maximum_and_is_not_cut_off() {
    let mut c = cfg(ProtocolVersion::V311);
    c.receive_maximum = 2;
    let mut sim = Sim::new(c);
    sim.connect(false);
    for id in 1..=3 {
        sim.feed(publish_in("d", QoS::ExactlyOnce, Some(id), false));
    }
    let events = sim.events();
    assert_eq!(violation(&events), None);
    assert_eq!(events.len(), 3);
}

#[test]
fn mqtt_4_4_0_1_resend_unacknowledged_publish_with_dup_on_reconnect() {
    for v in BOTH {
        let mut sim = Sim::new(resumable(v));
        sim.connect(false);
        let Submitted::InFlight(a) = sim.publish("t/a", QoS::AtLeastOnce, 1) else {
            panic!()
        };
        let Submitted::InFlight(b) = sim.publish("t/b", QoS::ExactlyOnce, 2) else {
            panic!()
        };
        sim.sent();
        sim.c.link_lost();
        let connect = sim.connect(true);
        assert!(!connect.clean_start, "{v:?}: a redial resumes");
        let sent = sim.sent();
        let resent: Vec<_> = sent
            .iter()
            .map(|p| match p {
                Packet::Publish(p) => (p.packet_id, p.dup, p.qos, p.topic.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            resent,
            vec![
                (Some(a), true, QoS::AtLeastOnce, "t/a".into()),
                (Some(b), true, QoS::ExactlyOnce, "t/b".into())
            ],
            "{v:?}: [MQTT-3.3.1-1] DUP and original ids, in order"
        );
        sim.feed(Packet::PubAck(PubResponse::ok(a)));
        assert_eq!(sim.events(), vec![ClientEvent::Delivered(Token(1))]);
    }
}

#[test]
fn mqtt_4_4_0_1_resend_pubrel_after_pubrec_on_reconnect() {
    for v in BOTH {
        let mut sim = Sim::new(resumable(v));
        sim.connect(false);
        let Submitted::InFlight(id) = sim.publish("t", QoS::ExactlyOnce, 1) else {
            panic!()
        };
        sim.sent();
        sim.feed(Packet::PubRec(PubResponse::ok(id)));
        sim.sent();
        sim.c.link_lost();
        sim.connect(true);
        assert_eq!(
            sim.sent(),
            vec![Packet::PubRel(PubResponse::ok(id))],
            "{v:?}"
        );
        sim.feed(Packet::PubComp(PubResponse::ok(id)));
        assert_eq!(sim.events(), vec![ClientEvent::Delivered(Token(1))]);
    }
}

#[test]
fn mqtt_3_2_2_5_without_session_present_unsettled_messages_are_resent_as_new() {
    for v in BOTH {
        let mut sim = Sim::new(resumable(v));
        sim.connect(false);
        sim.publish("t/1", QoS::AtLeastOnce, 1);
        let Submitted::InFlight(q2) = sim.publish("t/2", QoS::ExactlyOnce, 2) else {
            panic!()
        };
        sim.sent();
        sim.feed(Packet::PubRec(PubResponse::ok(q2)));
        sim.sent();
        sim.c.link_lost();
        // The server lost our session (expired, or restarted without persistence).
        sim.connect(false);
        let sent = sim.sent();
        let resent: Vec<_> = sent
            .iter()
            .map(|p| match p {
                Packet::Publish(p) => (p.dup, p.topic.clone()),
                other => panic!("{v:?}: expected PUBLISH only, got {other:?}"),
            })
            .collect();
        assert_eq!(
            resent,
            vec![(false, "t/1".into()), (false, "t/2".into())],
            "{v:?}"
        );
        assert!(sim.events().is_empty(), "nothing settled yet");
    }
}

#[test]
fn a_clean_session_v311_redial_resends_unsettled_messages_as_new() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V311));
    sim.connect(false);
    sim.publish("t", QoS::AtLeastOnce, 1);
    sim.sent();
    sim.c.link_lost();
    let connect = sim.connect(false);
    assert!(connect.clean_start);
    let Packet::Publish(p) = &sim.sent()[0] else {
        panic!()
    };
    assert!(!p.dup);
    sim.feed(Packet::PubAck(PubResponse::ok(p.packet_id.unwrap())));
    assert_eq!(sim.events(), vec![ClientEvent::Delivered(Token(1))]);
}

#[test]
fn inbound_qos2_table_survives_a_resumed_session_and_is_cleared_by_a_new_one() {
    for present in [true, false] {
        let mut sim = Sim::new(resumable(ProtocolVersion::V5));
        sim.connect(false);
        sim.feed(publish_in("d", QoS::ExactlyOnce, Some(7), false));
        assert_eq!(sim.events().len(), 1);
        sim.sent();
        sim.c.link_lost();
        sim.connect(present);
        // The server did not see our PUBREC and sends the PUBLISH again.
        sim.feed(publish_in("d", QoS::ExactlyOnce, Some(7), present));
        let reported = sim.events().len();
        // Resumed: the same message, not reported twice. New session: id 7 is a new message.
        assert_eq!(reported, usize::from(!present), "present={present}");
    }
}

#[test]
fn queued_messages_wait_across_a_link_loss_and_drain_on_the_next_link() {
    let mut c = cfg(ProtocolVersion::V5);
    c.max_inflight = 1;
    let mut sim = Sim::new(c);
    sim.connect(false);
    sim.publish("t", QoS::AtLeastOnce, 1);
    sim.publish("t", QoS::AtLeastOnce, 2);
    sim.sent();
    sim.c.link_lost();
    sim.connect(false);
    // The unsettled first message goes out again first; the second waits for the window.
    let p = one_publish(&mut sim);
    sim.feed(Packet::PubAck(PubResponse::ok(p.packet_id.unwrap())));
    let q = one_publish(&mut sim);
    sim.feed(Packet::PubAck(PubResponse::ok(q.packet_id.unwrap())));
    assert_eq!(
        sim.events(),
        vec![
            ClientEvent::Delivered(Token(1)),
            ClientEvent::Delivered(Token(2))
        ]
    );
    assert!(sim.c.take_unsettled().is_empty());
}
