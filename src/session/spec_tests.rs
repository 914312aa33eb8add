//! Session tests for spec-exact error handling, one per specification statement: the client's
//! Maximum Packet Size for every packet the session writes, acknowledgements of the wrong kind or
//! with a reason code their packet does not allow, PUBREC for an unknown id, and empty topic
//! filters. A child of `tests`, so it drives the same virtual-clock [`Sim`].
//!
//! Owns: tests only.

use super::*;
use crate::protocol::encode::encoded_len;

const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V311, ProtocolVersion::V5];

/// A v5 session whose client announced Maximum Packet Size `max` (nothing written yet).
fn v5_with_max(max: u32) -> Sim {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.written();
    sim.actions();
    let mut c = connect(ProtocolVersion::V5, true, 0);
    c.properties.maximum_packet_size = Some(max);
    sim.attach(c, false);
    sim
}

fn closed(sim: &mut Sim) -> bool {
    sim.actions().iter().any(|a| matches!(a, Action::Close))
}

/// The CONNACK a default v5 session writes, and its size.
fn default_connack_len() -> usize {
    let mut sim = Sim::new(ProtocolVersion::V5);
    let w = sim.written();
    encoded_len(&w[0], ProtocolVersion::V5)
}

#[test]
fn mqtt_3_1_2_24_connack_never_exceeds_client_maximum_packet_size() {
    let len = default_connack_len();
    // Exactly the size: sent.
    let mut sim = v5_with_max(len as u32);
    assert!(matches!(&sim.written()[..], [Packet::ConnAck(_)]));
    assert!(!closed(&mut sim));
    // One byte less: nothing is sent and the connection is closed, and nothing after it either.
    let mut sim = v5_with_max(len as u32 - 1);
    sim.deliver(msg("t", QoS::AtMostOnce, b"x"), QoS::AtMostOnce);
    assert!(sim.written().is_empty());
    assert!(closed(&mut sim));
}

#[test]
fn mqtt_3_2_2_19_disconnect_drops_reason_string_to_fit_client_maximum_packet_size() {
    // DISCONNECT 0x82 with this reason string is larger than the CONNACK; without it, it is 4
    // bytes (E0 02 82 00).
    let why = "a long explanation of what went wrong, longer than any CONNACK";
    let mut sim = v5_with_max(default_connack_len() as u32);
    sim.written();
    sim.s
        .violation(ReasonCode::PROTOCOL_ERROR, why, &mut sim.out);
    match &sim.written()[..] {
        [Packet::Disconnect(d)] => {
            assert_eq!(d.reason, ReasonCode::PROTOCOL_ERROR);
            assert_eq!(d.properties.reason_string, None);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(closed(&mut sim));
    // With room for it, the reason string is kept.
    let mut sim = v5_with_max(1000);
    sim.written();
    sim.s
        .violation(ReasonCode::PROTOCOL_ERROR, why, &mut sim.out);
    assert!(
        matches!(&sim.written()[..], [Packet::Disconnect(d)] if d.properties.reason_string.as_deref() == Some(why))
    );
}

#[test]
fn mqtt_3_1_2_24_suback_too_large_for_the_client_closes_without_it() {
    let len = default_connack_len() as u32;
    let mut sim = v5_with_max(len.max(12));
    sim.written();
    let filters = (0..20)
        .map(|i| (format!("f/{i}"), SubscriptionOptions::default()))
        .collect();
    sim.send(Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters,
        properties: Properties::default(),
    }));
    assert!(
        sim.written().is_empty(),
        "SUBACK of 25 bytes sent to a 12-byte client"
    );
    assert!(closed(&mut sim));
    // Closed: later input is ignored and writes nothing.
    sim.send(Packet::PingReq);
    assert!(sim.written().is_empty());
}

#[test]
fn mqtt_3_1_2_24_acks_fit_or_close() {
    // PUBACK, PUBREC, PUBCOMP, UNSUBACK, PINGRESP all fit a small client (4-6 bytes) ...
    let len = default_connack_len() as u32;
    let mut sim = v5_with_max(len);
    sim.written();
    sim.send(publish("t", QoS::AtLeastOnce, Some(1)));
    sim.send(publish("t", QoS::ExactlyOnce, Some(2)));
    sim.send(Packet::PubRel(PubResponse::ok(2)));
    sim.send(Packet::PingReq);
    let kinds: Vec<_> = sim.written().iter().map(Packet::name).collect();
    assert_eq!(kinds, ["PUBACK", "PUBREC", "PUBCOMP", "PINGRESP"]);
    assert!(!closed(&mut sim));
}

#[test]
fn mqtt_3_4_wrong_kind_of_acknowledgement_is_a_protocol_violation() {
    // (QoS of the message in flight, the wrong ack for it)
    type Step = fn(u16) -> Packet;
    let cases: [(QoS, Step); 4] = [
        (QoS::AtLeastOnce, |id| Packet::PubRec(PubResponse::ok(id))),
        (QoS::AtLeastOnce, |id| Packet::PubComp(PubResponse::ok(id))),
        (QoS::ExactlyOnce, |id| Packet::PubAck(PubResponse::ok(id))),
        // PUBCOMP before the PUBREL it answers was sent.
        (QoS::ExactlyOnce, |id| Packet::PubComp(PubResponse::ok(id))),
    ];
    for v in BOTH {
        for (qos, wrong) in cases {
            let mut sim = Sim::new(v);
            sim.written();
            sim.deliver(msg("t", qos, b"m"), qos);
            let id = ids_of(&sim.written())[0].0;
            sim.send(wrong(id));
            let w = sim.written();
            if v.is_v5() {
                assert!(
                    matches!(&w[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR),
                    "{v:?} {qos:?}: {w:?}"
                );
            } else {
                assert!(w.is_empty(), "{w:?}");
            }
            assert!(closed(&mut sim), "{v:?} {qos:?}");
        }
    }
}

#[test]
fn mqtt_3_4_2_1_ack_reason_code_not_allowed_for_its_packet_is_a_protocol_error() {
    let with = |p: fn(PubResponse) -> Packet, id: u16, code: u8| {
        p(PubResponse {
            reason: ReasonCode(code),
            ..PubResponse::ok(id)
        })
    };
    // (QoS of the message in flight, packet, code, allowed)
    type Make = fn(PubResponse) -> Packet;
    let cases: [(QoS, Make, u8, bool); 8] = [
        (QoS::AtLeastOnce, Packet::PubAck, 0xFF, false),
        (QoS::AtLeastOnce, Packet::PubAck, 0x92, false),
        (QoS::AtLeastOnce, Packet::PubAck, 0x10, true),
        (QoS::AtLeastOnce, Packet::PubAck, 0x97, true),
        (QoS::ExactlyOnce, Packet::PubRec, 0x04, false),
        (QoS::ExactlyOnce, Packet::PubRec, 0x99, true),
        (QoS::ExactlyOnce, Packet::PubComp, 0x80, false),
        (QoS::ExactlyOnce, Packet::PubComp, 0x92, true),
    ];
    for (qos, p, code, allowed) in cases {
        let mut sim = Sim::new(ProtocolVersion::V5);
        sim.written();
        sim.deliver(msg("t", qos, b"m"), qos);
        let id = ids_of(&sim.written())[0].0;
        if p(PubResponse::ok(0)).name() == "PUBCOMP" {
            sim.send(Packet::PubRec(PubResponse::ok(id)));
            sim.written();
        }
        sim.send(with(p, id, code));
        let w = sim.written();
        let protocol_error =
            matches!(&w[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR);
        assert_eq!(protocol_error, !allowed, "{code:#x}: {w:?}");
        assert_eq!(closed(&mut sim), !allowed, "{code:#x}");
    }
    // PUBREL from the client: 0x00 and 0x92 only.
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.written();
    sim.send(publish("t", QoS::ExactlyOnce, Some(5)));
    sim.written();
    sim.send(with(Packet::PubRel, 5, 0x10));
    assert!(
        matches!(&sim.written()[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR)
    );
}

#[test]
fn mqtt_3_6_2_1_pubrec_for_unknown_id_gets_pubrel_packet_identifier_not_found() {
    for v in BOTH {
        let mut sim = Sim::new(v);
        sim.written();
        sim.send(Packet::PubRec(PubResponse::ok(77)));
        match &sim.written()[..] {
            [Packet::PubRel(r)] => {
                assert_eq!(r.packet_id, 77);
                let want = if v.is_v5() {
                    ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
                } else {
                    ReasonCode::SUCCESS // 3.1.1 has no reason codes: a plain PUBREL
                };
                assert_eq!(r.reason, want);
            }
            other => panic!("{v:?}: unexpected {other:?}"),
        }
        assert!(!closed(&mut sim));
    }
}

#[test]
fn mqtt_4_3_3_duplicate_pubrec_gets_pubrel_again() {
    for v in BOTH {
        let mut sim = Sim::new(v);
        sim.written();
        sim.deliver(msg("t", QoS::ExactlyOnce, b"m"), QoS::ExactlyOnce);
        let id = ids_of(&sim.written())[0].0;
        for _ in 0..2 {
            sim.send(Packet::PubRec(PubResponse::ok(id)));
            match &sim.written()[..] {
                [Packet::PubRel(r)] => {
                    assert_eq!((r.packet_id, r.reason), (id, ReasonCode::SUCCESS))
                }
                other => panic!("{v:?}: unexpected {other:?}"),
            }
        }
        sim.send(Packet::PubComp(PubResponse::ok(id)));
        assert_eq!(sim.s.outbound().inflight(), 0);
    }
}

#[test]
fn mqtt_4_3_3_4_failed_pubrec_ends_the_exchange_without_pubrel_and_frees_the_slot() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.cfg.max_inflight = 1;
    sim.attach(connect(ProtocolVersion::V5, false, 0), true);
    sim.written();
    sim.deliver(msg("t", QoS::ExactlyOnce, b"a"), QoS::ExactlyOnce);
    sim.deliver(msg("t", QoS::ExactlyOnce, b"b"), QoS::ExactlyOnce);
    let first = ids_of(&sim.written());
    assert_eq!(first.len(), 1);
    sim.send(Packet::PubRec(PubResponse {
        reason: ReasonCode::QUOTA_EXCEEDED,
        ..PubResponse::ok(first[0].0)
    }));
    // No PUBREL; the slot went to the queued message.
    let w = sim.written();
    assert!(w.iter().all(|p| !matches!(p, Packet::PubRel(_))), "{w:?}");
    assert_eq!(ids_of(&w).len(), 1);
    assert_eq!(sim.s.outbound().inflight(), 1);
    assert_eq!(sim.s.outbound().queued(), 0);
    // A failed PUBREC for an id not in flight is not answered.
    sim.send(Packet::PubRec(PubResponse {
        reason: ReasonCode::UNSPECIFIED_ERROR,
        ..PubResponse::ok(999)
    }));
    assert!(sim.written().is_empty());
    assert!(!closed(&mut sim));
}

fn subscribe(filters: &[&str]) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: 3,
        filters: filters
            .iter()
            .map(|f| (f.to_string(), SubscriptionOptions::default()))
            .collect(),
        properties: Properties::default(),
    })
}

fn unsubscribe(filters: &[&str]) -> Packet {
    Packet::Unsubscribe(Unsubscribe {
        packet_id: 4,
        filters: filters.iter().map(|f| f.to_string()).collect(),
        properties: Properties::default(),
    })
}

#[test]
fn mqtt_4_7_3_1_empty_topic_filter_closes_in_3_1_1() {
    for packet in [subscribe(&["ok", ""]), unsubscribe(&["", "ok"])] {
        let mut sim = Sim::new(ProtocolVersion::V311);
        sim.written();
        sim.send(packet);
        assert!(sim.written().is_empty());
        assert!(closed(&mut sim));
    }
    // 3.1 too.
    let mut sim = Sim::new(ProtocolVersion::V31);
    sim.written();
    sim.send(subscribe(&[""]));
    assert!(sim.written().is_empty());
    assert!(closed(&mut sim));
}

#[test]
fn mqtt_4_7_3_1_empty_topic_filter_is_refused_per_filter_in_5() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.written();
    sim.send(subscribe(&["", "ok"]));
    match &sim.written()[..] {
        [Packet::SubAck(a)] => assert_eq!(
            a.reasons,
            [ReasonCode::TOPIC_FILTER_INVALID, ReasonCode::SUCCESS]
        ),
        other => panic!("unexpected {other:?}"),
    }
    sim.send(unsubscribe(&["ok", ""]));
    match &sim.written()[..] {
        [Packet::UnsubAck(a)] => assert_eq!(
            a.reasons,
            [ReasonCode::SUCCESS, ReasonCode::TOPIC_FILTER_INVALID]
        ),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!closed(&mut sim));
}
