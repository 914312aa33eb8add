//! State-machine tests for the session with a virtual clock: no sockets, no threads, no sleeping.
//!
//! Owns: tests only. Each test drives a [`Session`] with packets and `now` values it makes up and
//! decodes what the session wrote.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::outbound::Queued;
use super::state::{Action, LinkLoss, Output, Session};
use crate::auth::ClientAcl;
use crate::config::MqttConfig;
use crate::message::{Message, SessionRef, SubIds};
use crate::protocol::decode::decode_packet;
use crate::protocol::*;

const ME: SessionRef = SessionRef {
    thread: 0,
    slot: 1,
    generation: 0,
};

struct Sim {
    s: Session,
    cfg: MqttConfig,
    out: Output,
    now: Instant,
    v: ProtocolVersion,
}

fn connect(v: ProtocolVersion, clean: bool, keep_alive: u16) -> Connect {
    Connect {
        protocol: v,
        clean_start: clean,
        keep_alive,
        client_id: "c1".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

fn msg(topic: &str, qos: QoS, payload: &'static [u8]) -> Arc<Message> {
    let payload = Bytes::from_static(payload);
    let props = Properties::default();
    Arc::new(Message::new(
        topic.into(),
        payload,
        qos,
        false,
        props,
        None,
        None,
    ))
}

fn publish(topic: &str, qos: QoS, id: Option<u16>) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        properties: Properties::default(),
        payload: Bytes::from_static(b"x"),
    })
}

impl Sim {
    fn new(v: ProtocolVersion) -> Sim {
        let mut sim = Sim {
            s: Session::new("c1".into(), ME),
            cfg: MqttConfig::default(),
            out: Output::default(),
            now: Instant::now(),
            v,
        };
        sim.attach(connect(v, false, 0), false);
        sim
    }

    fn attach(&mut self, c: Connect, present: bool) {
        self.s.attach(
            &c,
            false,
            present,
            ClientAcl::allow_all(),
            &self.cfg,
            self.now,
            &mut self.out,
        );
    }

    fn send(&mut self, p: Packet) {
        self.s.handle(p, &self.cfg, self.now, &mut self.out);
    }

    fn deliver(&mut self, m: Arc<Message>, qos: QoS) {
        let item = Queued {
            msg: m,
            qos,
            retain: false,
            sub_ids: SubIds::None,
            shared: None,
        };
        self.s.deliver(item, &self.cfg, self.now, &mut self.out);
    }

    /// Everything written since the last call, decoded.
    fn written(&mut self) -> Vec<Packet> {
        let mut buf = self.out.wire.take_all();
        let mut v = Vec::new();
        while let Some(p) = decode_packet(&mut buf, Some(self.v), u32::MAX).expect("valid output") {
            v.push(p);
        }
        assert!(buf.is_empty());
        v
    }

    fn actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out.actions)
    }

    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
    }
}

fn ids_of(packets: &[Packet]) -> Vec<(u16, bool)> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((p.packet_id.unwrap_or(0), p.dup)),
            _ => None,
        })
        .collect()
}

#[test]
fn attach_writes_connack() {
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut sim = Sim::new(v);
        match &sim.written()[..] {
            [Packet::ConnAck(a)] => {
                assert!(!a.session_present);
                assert_eq!(a.reason, ReasonCode::SUCCESS);
                if v.is_v5() {
                    assert_eq!(a.properties.receive_maximum, Some(sim.cfg.receive_maximum));
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn mqtt_3_1_2_24_keep_alive_closes_after_one_and_a_half_intervals() {
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut sim = Sim::new(v);
        sim.attach(connect(v, false, 10), true);
        sim.written();
        sim.advance(14);
        sim.s.on_tick(sim.now, &mut sim.out);
        assert!(sim.actions().is_empty(), "closed too early");
        sim.send(Packet::PingReq);
        assert!(matches!(sim.written()[..], [Packet::PingResp]));
        sim.advance(14);
        sim.s.on_tick(sim.now, &mut sim.out);
        assert!(sim.actions().is_empty(), "PINGREQ did not reset the timer");
        sim.advance(1);
        sim.s.on_tick(sim.now, &mut sim.out);
        assert!(matches!(sim.actions()[..], [Action::Close]));
        let w = sim.written();
        if v.is_v5() {
            assert!(
                matches!(&w[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::KEEP_ALIVE_TIMEOUT)
            );
        } else {
            assert!(w.is_empty());
        }
    }
}

#[test]
fn qos1_window_queues_and_pumps_on_ack() {
    let mut sim = Sim::new(ProtocolVersion::V311);
    sim.cfg.max_inflight = 2;
    sim.attach(connect(ProtocolVersion::V311, false, 0), true);
    sim.written();
    for _ in 0..3 {
        sim.deliver(msg("t", QoS::AtLeastOnce, b"a"), QoS::AtLeastOnce);
    }
    assert_eq!(ids_of(&sim.written()), vec![(1, false), (2, false)]);
    assert_eq!(sim.s.outbound().queued(), 1);
    sim.send(Packet::PubAck(PubResponse::ok(1)));
    assert_eq!(ids_of(&sim.written()), vec![(3, false)]);
    assert_eq!(sim.s.outbound().inflight(), 2);
}

#[test]
fn mqtt_4_4_0_1_resends_unacked_with_dup_on_reconnect() {
    let mut sim = Sim::new(ProtocolVersion::V311);
    sim.written();
    sim.deliver(msg("t", QoS::AtLeastOnce, b"a"), QoS::AtLeastOnce);
    sim.deliver(msg("t", QoS::ExactlyOnce, b"b"), QoS::ExactlyOnce);
    sim.written();
    sim.send(Packet::PubRec(PubResponse::ok(2)));
    assert!(matches!(
        sim.written()[..],
        [Packet::PubRel(PubResponse { packet_id: 2, .. })]
    ));
    assert!(!sim.s.detach(Some(LinkLoss::Network), sim.now, &mut sim.out));
    sim.attach(connect(ProtocolVersion::V311, false, 0), true);
    let w = sim.written();
    assert!(matches!(&w[0], Packet::ConnAck(a) if a.session_present));
    assert_eq!(ids_of(&w[1..2]), vec![(1, true)]);
    assert!(matches!(
        w[2],
        Packet::PubRel(PubResponse { packet_id: 2, .. })
    ));
    sim.send(Packet::PubComp(PubResponse::ok(2)));
    sim.send(Packet::PubAck(PubResponse::ok(1)));
    assert_eq!(sim.s.outbound().inflight(), 0);
}

#[test]
fn inbound_qos2_routes_once_and_completes() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.written();
    sim.send(publish("a/b", QoS::ExactlyOnce, Some(7)));
    assert_eq!(sim.actions().len(), 1);
    assert!(matches!(
        sim.written()[..],
        [Packet::PubRec(PubResponse { packet_id: 7, .. })]
    ));
    // Duplicate before PUBREL: acknowledged again, not routed again.
    sim.send(publish("a/b", QoS::ExactlyOnce, Some(7)));
    assert!(sim.actions().is_empty());
    assert!(matches!(
        sim.written()[..],
        [Packet::PubRec(PubResponse { packet_id: 7, .. })]
    ));
    sim.send(Packet::PubRel(PubResponse::ok(7)));
    assert!(matches!(&sim.written()[..], [Packet::PubComp(a)] if a.reason == ReasonCode::SUCCESS));
    sim.send(Packet::PubRel(PubResponse::ok(7)));
    assert!(matches!(&sim.written()[..],
        [Packet::PubComp(a)] if a.reason == ReasonCode::PACKET_IDENTIFIER_NOT_FOUND));
}

#[test]
fn will_published_on_network_loss_not_after_disconnect() {
    let will = LastWill {
        topic: "w".into(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Properties::default(),
    };
    for (how, expect_will) in [
        ("network", true),
        ("disconnect", false),
        ("with-will", true),
    ] {
        let mut sim = Sim::new(ProtocolVersion::V5);
        let mut c = connect(ProtocolVersion::V5, true, 0);
        c.will = Some(will.clone());
        sim.attach(c, false);
        sim.actions();
        match how {
            "disconnect" => sim.send(Packet::Disconnect(Disconnect::default())),
            "with-will" => sim.send(Packet::Disconnect(Disconnect {
                reason: ReasonCode::DISCONNECT_WITH_WILL,
                properties: Properties::default(),
            })),
            _ => {}
        }
        sim.actions();
        assert!(
            sim.s.detach(Some(LinkLoss::Network), sim.now, &mut sim.out),
            "expiry 0 ends it"
        );
        let published: Vec<_> = sim
            .actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Publish(m) => Some(m),
                _ => None,
            })
            .collect();
        assert_eq!(published.len(), usize::from(expect_will), "{how}");
        if let Some(m) = published.first() {
            assert!(m.retain && &*m.topic == "w" && m.qos == QoS::AtLeastOnce);
        }
    }
}

#[test]
fn offline_session_queues_qos1_drops_qos0_and_delivers_in_order() {
    let mut sim = Sim::new(ProtocolVersion::V311);
    sim.written();
    sim.s.detach(Some(LinkLoss::Network), sim.now, &mut sim.out);
    sim.deliver(msg("t", QoS::AtLeastOnce, b"1"), QoS::AtLeastOnce);
    sim.deliver(msg("t", QoS::AtMostOnce, b"x"), QoS::AtMostOnce);
    sim.deliver(msg("t", QoS::AtLeastOnce, b"2"), QoS::AtLeastOnce);
    assert_eq!(sim.s.outbound().queued(), 2);
    sim.attach(connect(ProtocolVersion::V311, false, 0), true);
    let payloads: Vec<_> = sim
        .written()
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p.payload),
            _ => None,
        })
        .collect();
    assert_eq!(
        payloads,
        vec![Bytes::from_static(b"1"), Bytes::from_static(b"2")]
    );
}

#[test]
fn full_queue_drops_qos0_first_then_new_messages() {
    let mut sim = Sim::new(ProtocolVersion::V311);
    sim.cfg.max_inflight = 1;
    sim.cfg.max_queued_messages = 2;
    sim.attach(connect(ProtocolVersion::V311, false, 0), true);
    sim.deliver(msg("t", QoS::AtLeastOnce, b"in"), QoS::AtLeastOnce); // inflight
    sim.deliver(msg("t", QoS::AtLeastOnce, b"q1"), QoS::AtLeastOnce);
    sim.deliver(msg("t", QoS::AtMostOnce, b"q0"), QoS::AtMostOnce);
    sim.deliver(msg("t", QoS::AtLeastOnce, b"q2"), QoS::AtLeastOnce); // evicts q0
    sim.deliver(msg("t", QoS::AtLeastOnce, b"q3"), QoS::AtLeastOnce); // dropped
    assert_eq!(sim.s.outbound().queued(), 2);
    assert_eq!(sim.s.outbound().dropped, 2);
}

#[test]
fn mqtt_3_1_0_2_second_connect_is_a_protocol_error() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.written();
    sim.send(Packet::Connect(Box::new(connect(
        ProtocolVersion::V5,
        true,
        0,
    ))));
    assert!(matches!(sim.actions()[..], [Action::Close]));
    assert!(
        matches!(&sim.written()[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR)
    );
    // Input after the session asked to close is ignored.
    sim.send(Packet::PingReq);
    assert!(sim.written().is_empty());
}

#[test]
fn client_sending_server_packets_is_disconnected() {
    let bad = [
        Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::SUCCESS,
            properties: Properties::default(),
        }),
        Packet::SubAck(SubAck {
            packet_id: 1,
            reasons: vec![],
            properties: Properties::default(),
        }),
        Packet::PingResp,
    ];
    for p in bad {
        let mut sim = Sim::new(ProtocolVersion::V311);
        sim.written();
        sim.send(p);
        assert!(matches!(sim.actions()[..], [Action::Close]));
        assert!(sim.written().is_empty(), "3.1.1 gets no DISCONNECT");
    }
}

#[test]
fn topic_alias_maps_and_rejects_out_of_range() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.written();
    let mut p = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "long/topic".into(),
        packet_id: None,
        properties: Properties {
            topic_alias: Some(3),
            ..Properties::default()
        },
        payload: Bytes::new(),
    };
    sim.send(Packet::Publish(p.clone()));
    p.topic.clear();
    sim.send(Packet::Publish(p.clone()));
    let topics: Vec<_> = sim
        .actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::Publish(m) => Some(m.topic.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(topics, vec!["long/topic", "long/topic"]);
    p.properties.topic_alias = Some(sim.cfg.topic_alias_maximum + 1);
    sim.send(Packet::Publish(p));
    assert!(
        matches!(&sim.written()[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::TOPIC_ALIAS_INVALID)
    );
}

#[test]
fn subscribe_grants_and_refuses_per_filter() {
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut sim = Sim::new(v);
        sim.cfg.max_qos = QoS::AtLeastOnce;
        sim.written();
        let opts = |qos| SubscriptionOptions {
            qos,
            ..Default::default()
        };
        sim.send(Packet::Subscribe(Subscribe {
            packet_id: 9,
            filters: vec![
                ("a/+".into(), opts(QoS::ExactlyOnce)),
                ("a/#/b".into(), opts(QoS::AtMostOnce)),
                ("$share//x".into(), opts(QoS::AtMostOnce)),
            ],
            properties: Properties::default(),
        }));
        let subs = sim.actions();
        assert!(
            matches!(&subs[..], [Action::Subscribe { filter, send_retained: true, .. }] if &**filter == "a/+")
        );
        match &sim.written()[..] {
            [Packet::SubAck(a)] => {
                let codes: Vec<u8> = a.reasons.iter().map(|r| r.0).collect();
                if v.is_v5() {
                    assert_eq!(codes, vec![1, 0x8F, 0x8F]);
                } else {
                    assert_eq!(codes, vec![1, 0x80, 0x80]);
                }
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn session_expiry_counts_from_disconnect() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    let mut c = connect(ProtocolVersion::V5, true, 0);
    c.properties.session_expiry_interval = Some(10);
    sim.attach(c, false);
    assert!(!sim.s.detach(Some(LinkLoss::Network), sim.now, &mut sim.out));
    sim.advance(9);
    assert!(!sim.s.is_expired(sim.now));
    sim.advance(1);
    assert!(sim.s.is_expired(sim.now));
}

#[test]
fn mqtt_3_14_2_2_disconnect_cannot_raise_zero_expiry() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.written();
    sim.send(Packet::Disconnect(Disconnect {
        reason: ReasonCode::SUCCESS,
        properties: Properties {
            session_expiry_interval: Some(60),
            ..Properties::default()
        },
    }));
    assert!(
        matches!(&sim.written()[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR)
    );
}

#[test]
fn packet_larger_than_client_maximum_is_dropped() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    let mut c = connect(ProtocolVersion::V5, true, 0);
    c.properties.maximum_packet_size = Some(20);
    sim.attach(c, false);
    sim.written();
    sim.deliver(msg("t", QoS::AtMostOnce, b"small"), QoS::AtMostOnce);
    sim.deliver(msg("t", QoS::AtMostOnce, &[7u8; 64]), QoS::AtMostOnce);
    assert_eq!(sim.written().len(), 1);
    assert_eq!(sim.s.outbound().dropped, 1);
}

#[test]
fn exceeding_receive_maximum_with_qos2_disconnects_0x93() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.cfg.receive_maximum = 2;
    sim.written();
    for id in 1..=3 {
        sim.send(publish("t", QoS::ExactlyOnce, Some(id)));
    }
    let w = sim.written();
    assert!(
        matches!(w.last(), Some(Packet::Disconnect(d)) if d.reason == ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)
    );
}

#[test]
fn expired_message_is_not_delivered_and_expiry_is_counted_down() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.written();
    let mut m = Message::new(
        "t".into(),
        Bytes::from_static(b"p"),
        QoS::AtLeastOnce,
        false,
        Properties::default(),
        Some(sim.now + Duration::from_secs(30)),
        None,
    );
    sim.advance(10);
    sim.deliver(Arc::new(Message::clone_for_test(&m)), QoS::AtLeastOnce);
    match &sim.written()[..] {
        [Packet::Publish(p)] => assert_eq!(p.properties.message_expiry_interval, Some(20)),
        other => panic!("{other:?}"),
    }
    m.expires_at = Some(sim.now);
    sim.deliver(Arc::new(m), QoS::AtLeastOnce);
    assert!(sim.written().is_empty());
}

#[test]
fn outbound_topic_alias_assigned_then_reused_when_client_allows() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    let mut c = connect(ProtocolVersion::V5, true, 0);
    c.properties.topic_alias_maximum = Some(1);
    sim.attach(c, false);
    sim.written();
    sim.deliver(
        msg("long/topic/name", QoS::AtMostOnce, b"1"),
        QoS::AtMostOnce,
    );
    sim.deliver(
        msg("long/topic/name", QoS::AtMostOnce, b"2"),
        QoS::AtMostOnce,
    );
    sim.deliver(msg("other", QoS::AtMostOnce, b"3"), QoS::AtMostOnce);
    let seen: Vec<(String, Option<u16>)> = sim
        .written()
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((p.topic, p.properties.topic_alias)),
            _ => None,
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("long/topic/name".to_string(), Some(1)),
            (String::new(), Some(1)),
            ("other".to_string(), Some(1)),
        ]
    );
}

#[test]
fn subscription_identifiers_are_delivered_to_v5_only() {
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut sim = Sim::new(v);
        sim.written();
        let ids: Arc<[u32]> = Arc::from(vec![4, 9]);
        let item = Queued {
            msg: msg("t", QoS::AtMostOnce, b"x"),
            qos: QoS::AtMostOnce,
            retain: false,
            sub_ids: SubIds::Many(ids),
            shared: None,
        };
        sim.s.deliver(item, &sim.cfg, sim.now, &mut sim.out);
        match &sim.written()[..] {
            [Packet::Publish(p)] if v.is_v5() => {
                assert_eq!(p.properties.subscription_identifiers, vec![4, 9])
            }
            [Packet::Publish(p)] => assert!(p.properties.subscription_identifiers.is_empty()),
            other => panic!("{other:?}"),
        }
    }
}

fn will_publishes(actions: Vec<Action>) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Publish(_)))
        .count()
}

#[test]
fn will_delay_interval_waits_and_reconnect_cancels() {
    let mut will_connect = connect(ProtocolVersion::V5, false, 0);
    will_connect.properties.session_expiry_interval = Some(60);
    will_connect.will = Some(LastWill {
        topic: "w".into(),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties {
            will_delay_interval: Some(5),
            ..Properties::default()
        },
    });
    // Delay runs out while offline: published at +5 s, not before.
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.attach(will_connect.clone(), false);
    sim.actions();
    assert!(!sim.s.detach(Some(LinkLoss::Network), sim.now, &mut sim.out));
    assert_eq!(will_publishes(sim.actions()), 0);
    sim.advance(4);
    sim.s.on_tick(sim.now, &mut sim.out);
    assert_eq!(will_publishes(sim.actions()), 0);
    sim.advance(1);
    sim.s.on_tick(sim.now, &mut sim.out);
    assert_eq!(will_publishes(sim.actions()), 1);
    // A reconnect within the delay cancels it.
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.attach(will_connect.clone(), false);
    sim.s.detach(Some(LinkLoss::Network), sim.now, &mut sim.out);
    sim.advance(2);
    sim.attach(connect(ProtocolVersion::V5, false, 0), true);
    sim.advance(10);
    sim.s.on_tick(sim.now, &mut sim.out);
    assert_eq!(will_publishes(sim.actions()), 0);
    // The session ending first publishes it at once.
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.attach(will_connect, false);
    sim.s.detach(Some(LinkLoss::Network), sim.now, &mut sim.out);
    sim.actions();
    sim.s.on_end(sim.now, &mut sim.out);
    assert_eq!(will_publishes(sim.actions()), 1);
}

#[test]
fn features_switched_off_in_config_are_refused_per_filter() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.cfg.shared_subscriptions = false;
    sim.cfg.wildcard_subscriptions = false;
    sim.written();
    let opts = SubscriptionOptions::default();
    sim.send(Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![
            ("$share/g/t".into(), opts),
            ("a/+".into(), opts),
            ("a/b".into(), opts),
        ],
        properties: Properties::default(),
    }));
    match &sim.written()[..] {
        [Packet::SubAck(a)] => {
            let codes: Vec<u8> = a.reasons.iter().map(|r| r.0).collect();
            assert_eq!(codes, vec![0x9E, 0xA2, 0x00]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mqtt_3_8_3_4_no_local_on_shared_subscription_is_a_protocol_error() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.written();
    let opts = SubscriptionOptions {
        no_local: true,
        ..Default::default()
    };
    sim.send(Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![("$share/g/t".into(), opts)],
        properties: Properties::default(),
    }));
    assert!(
        matches!(&sim.written()[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR)
    );
}

#[test]
fn shared_messages_go_back_to_the_group_when_the_member_leaves() {
    let mut sim = Sim::new(ProtocolVersion::V311);
    sim.cfg.max_inflight = 1;
    sim.attach(connect(ProtocolVersion::V311, false, 0), true);
    let group: Arc<str> = "$share/g/t".into();
    sim.send(Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![(
            group.to_string(),
            SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        )],
        properties: Properties::default(),
    }));
    sim.actions();
    for p in [&b"1"[..], b"2", b"3"] {
        let item = Queued {
            msg: Arc::new(Message::with_payload_for_test(
                &msg("t", QoS::AtLeastOnce, b""),
                Bytes::copy_from_slice(p),
            )),
            qos: QoS::AtLeastOnce,
            retain: false,
            sub_ids: SubIds::None,
            shared: Some(group.clone()),
        };
        sim.s.deliver(item, &sim.cfg, sim.now, &mut sim.out);
    }
    // One in flight, two queued. Unsubscribing hands back the queued two.
    sim.send(Packet::Unsubscribe(Unsubscribe {
        packet_id: 2,
        filters: vec![group.to_string()],
        properties: Properties::default(),
    }));
    let redelivered = |acts: Vec<Action>| {
        acts.into_iter()
            .filter_map(|a| match a {
                Action::Redeliver { msg, .. } => Some(msg.payload.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        redelivered(sim.actions()),
        vec![Bytes::from_static(b"2"), Bytes::from_static(b"3")]
    );
    // The session ending hands back the one in flight too.
    sim.s.detach(Some(LinkLoss::Network), sim.now, &mut sim.out);
    sim.actions();
    sim.s.on_end(sim.now, &mut sim.out);
    assert_eq!(redelivered(sim.actions()), vec![Bytes::from_static(b"1")]);
}

#[test]
fn mqtt_4_8_2_5_acknowledged_qos2_shared_message_is_not_given_to_another_member() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.written();
    let group: Arc<str> = "$share/g/t".into();
    for qos in [QoS::ExactlyOnce, QoS::AtLeastOnce] {
        let item = Queued {
            msg: msg("t", qos, b"x"),
            qos,
            retain: false,
            sub_ids: SubIds::None,
            shared: Some(group.clone()),
        };
        sim.s.deliver(item, &sim.cfg, sim.now, &mut sim.out);
    }
    sim.send(Packet::PubRec(PubResponse::ok(1)));
    sim.s.detach(Some(LinkLoss::Network), sim.now, &mut sim.out);
    sim.actions();
    sim.s.on_end(sim.now, &mut sim.out);
    let handed_back: Vec<QoS> = sim
        .actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::Redeliver { msg, .. } => Some(msg.qos),
            _ => None,
        })
        .collect();
    assert_eq!(
        handed_back,
        vec![QoS::AtLeastOnce],
        "only the unacknowledged QoS 1 one"
    );
}

#[test]
fn inflight_message_too_large_after_reconnect_is_dropped_not_stuck() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.cfg.max_inflight = 1;
    sim.attach(connect(ProtocolVersion::V5, false, 0), true);
    sim.deliver(msg("t", QoS::AtLeastOnce, &[1u8; 200]), QoS::AtLeastOnce);
    sim.deliver(msg("t", QoS::AtLeastOnce, b"small"), QoS::AtLeastOnce);
    sim.s.detach(Some(LinkLoss::Network), sim.now, &mut sim.out);
    sim.written();
    let mut c = connect(ProtocolVersion::V5, false, 0);
    c.properties.maximum_packet_size = Some(100);
    sim.attach(c, true);
    let payloads: Vec<_> = sim
        .written()
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p.payload),
            _ => None,
        })
        .collect();
    assert_eq!(payloads, vec![Bytes::from_static(b"small")]);
    assert_eq!(sim.s.outbound().dropped, 1);
}

#[test]
fn disconnect_cannot_raise_session_expiry_above_the_configured_cap() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.cfg.max_session_expiry = 60;
    let mut c = connect(ProtocolVersion::V5, false, 0);
    c.properties.session_expiry_interval = Some(30);
    sim.attach(c, false);
    sim.send(Packet::Disconnect(Disconnect {
        reason: ReasonCode::SUCCESS,
        properties: Properties {
            session_expiry_interval: Some(u32::MAX),
            ..Properties::default()
        },
    }));
    sim.s.detach(None, sim.now, &mut sim.out);
    sim.advance(60);
    assert!(sim.s.is_expired(sim.now));
}

#[test]
fn mqtt_3_3_2_14_response_topic_with_wildcards_is_a_protocol_error() {
    let mut sim = Sim::new(ProtocolVersion::V5);
    sim.written();
    let mut p = match publish("t", QoS::AtMostOnce, None) {
        Packet::Publish(p) => p,
        _ => unreachable!(),
    };
    p.properties.response_topic = Some("replies/#".into());
    sim.send(Packet::Publish(p));
    assert!(
        matches!(&sim.written()[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR)
    );
}

#[path = "spec_tests.rs"]
mod spec;
