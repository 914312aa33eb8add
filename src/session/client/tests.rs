//! Client session tests against a scripted server, with a virtual clock: connection, SUBSCRIBE,
//! keep-alive, and hostile input. The message flows are in `tests_flow.rs`.
//!
//! Owns: tests only, and the [`Sim`] harness both test files share. The "server" is this test
//! code: it decodes what the session wrote with the crate's decoder and answers with packets
//! encoded by the crate's encoder, so the client is checked against the same codec the broker
//! side uses, in both directions.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::protocol::decode::decode_packet;
use crate::protocol::encode::encode_packet;
use crate::protocol::{LastWill, SubscriptionOptions};

/// One client session, its output and a virtual clock.
pub(super) struct Sim {
    pub c: ClientSession,
    pub out: OutBuf,
    pub now: Instant,
    pub v: ProtocolVersion,
}

impl Sim {
    pub fn new(cfg: ClientConfig) -> Sim {
        let v = cfg.version;
        Sim {
            c: ClientSession::new(cfg).expect("valid config"),
            out: OutBuf::new(),
            now: Instant::now(),
            v,
        }
    }

    /// Decodes everything the client wrote since the last call, as the server would.
    pub fn sent(&mut self) -> Vec<Packet> {
        let mut bytes = self.out.take_all();
        let mut packets = Vec::new();
        while let Some(p) = decode_packet(&mut bytes, Some(self.v), u32::MAX).expect("valid") {
            packets.push(p);
        }
        assert!(bytes.is_empty(), "trailing bytes: {bytes:?}");
        packets
    }

    /// The server sends `p`.
    pub fn feed(&mut self, p: Packet) {
        let mut bytes = BytesMut::new();
        encode_packet(&p, self.v, &mut bytes);
        self.feed_bytes(&bytes);
    }

    /// The server sends raw bytes.
    pub fn feed_bytes(&mut self, bytes: &[u8]) {
        let mut buf = BytesMut::from(bytes);
        self.c.handle_bytes(&mut buf, self.now, &mut self.out);
    }

    pub fn events(&mut self) -> Vec<ClientEvent> {
        std::iter::from_fn(|| self.c.poll_event()).collect()
    }

    /// Moves the virtual clock and lets the timers run.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.c.on_tick(self.now, &mut self.out);
    }

    /// `start`, check a CONNECT went out, answer CONNACK; returns the CONNECT.
    pub fn connect_with(&mut self, session_present: bool, props: Properties) -> Connect {
        self.c.start(self.now, &mut self.out);
        let connect = match self.sent().as_slice() {
            [Packet::Connect(c)] => (**c).clone(),
            other => panic!("expected CONNECT, got {other:?}"),
        };
        self.feed(connack(session_present, ReasonCode::SUCCESS, props));
        connect
    }

    /// Connects with no CONNACK properties and drains the events.
    pub fn connect(&mut self, session_present: bool) -> Connect {
        let c = self.connect_with(session_present, Properties::default());
        let events = self.events();
        assert!(
            matches!(events.first(), Some(ClientEvent::Connected { .. })),
            "{events:?}"
        );
        c
    }

    /// Publishes a message with token `token` and returns what `publish` said.
    pub fn publish(&mut self, topic: &str, qos: QoS, token: u64) -> Submitted {
        let msg = OutMessage::new(topic, Bytes::from_static(b"data"), qos, Token(token));
        self.c
            .publish(msg, self.now, &mut self.out)
            .expect("accepted")
    }
}

pub(super) fn cfg(v: ProtocolVersion) -> ClientConfig {
    ClientConfig::new(v, "bridge-1")
}

pub(super) fn connack(session_present: bool, reason: ReasonCode, properties: Properties) -> Packet {
    Packet::ConnAck(ConnAck {
        session_present,
        reason,
        properties,
    })
}

pub(super) fn publish_in(topic: &str, qos: QoS, id: Option<u16>, dup: bool) -> Packet {
    Packet::Publish(Publish {
        dup,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        properties: Properties::default(),
        payload: Bytes::from_static(b"up"),
    })
}

pub(super) fn violation(events: &[ClientEvent]) -> Option<ReasonCode> {
    events.iter().find_map(|e| match e {
        ClientEvent::ProtocolViolation { reason, .. } => Some(*reason),
        _ => None,
    })
}

const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V311, ProtocolVersion::V5];

fn sub(filter: &str, qos: QoS) -> Subscription {
    Subscription {
        filter: filter.into(),
        options: SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        },
    }
}

#[test]
fn connect_carries_the_config_v311() {
    let mut c = cfg(ProtocolVersion::V311);
    c.clean_start = false;
    c.keep_alive = 30;
    c.username = Some("u".into());
    c.password = Some(Bytes::from_static(b"p"));
    c.will = Some(LastWill {
        topic: "bridge/status".into(),
        payload: Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Properties::default(),
    });
    let mut sim = Sim::new(c);
    sim.c.start(sim.now, &mut sim.out);
    let Packet::Connect(connect) = &sim.sent()[0] else {
        panic!()
    };
    assert_eq!(connect.protocol, ProtocolVersion::V311);
    assert!(!connect.clean_start);
    assert_eq!(connect.keep_alive, 30);
    assert_eq!(connect.client_id, "bridge-1");
    assert_eq!(connect.username.as_deref(), Some("u"));
    assert_eq!(connect.password.as_deref(), Some(&b"p"[..]));
    assert_eq!(
        connect.will.as_ref().map(|w| w.topic.as_str()),
        Some("bridge/status")
    );
    assert!(connect.properties.is_empty());
}

#[test]
fn connect_v5_announces_session_expiry_and_our_limits() {
    let mut c = cfg(ProtocolVersion::V5);
    c.session_expiry = 3600;
    c.receive_maximum = 10;
    c.max_packet_size = 65536;
    c.topic_alias_maximum = 8;
    let mut sim = Sim::new(c);
    sim.c.start(sim.now, &mut sim.out);
    let Packet::Connect(connect) = &sim.sent()[0] else {
        panic!()
    };
    let p = &connect.properties;
    assert!(connect.clean_start);
    assert_eq!(p.session_expiry_interval, Some(3600));
    assert_eq!(p.receive_maximum, Some(10));
    assert_eq!(p.maximum_packet_size, Some(65536));
    assert_eq!(p.topic_alias_maximum, Some(8));
}

#[test]
fn connack_then_subscribe_and_suback_results_both_versions() {
    for v in BOTH {
        let mut c = cfg(v);
        c.subscriptions = vec![
            sub("cloud/cmd/#", QoS::AtLeastOnce),
            sub("cloud/cfg", QoS::ExactlyOnce),
        ];
        c.subscriptions[0].options.no_local = true;
        let mut sim = Sim::new(c);
        sim.connect_with(false, Properties::default());
        let events = sim.events();
        assert!(matches!(
            events[..],
            [ClientEvent::Connected {
                session_present: false,
                ..
            }]
        ));
        assert!(sim.c.is_connected());
        let sent = sim.sent();
        let [Packet::Subscribe(s)] = sent.as_slice() else {
            panic!("{sent:?}")
        };
        assert_eq!(s.filters.len(), 2);
        assert_eq!(s.filters[0].0, "cloud/cmd/#");
        assert_eq!(s.filters[1].1.qos, QoS::ExactlyOnce);
        // No Local only exists on the wire in 5.0.
        assert_eq!(s.filters[0].1.no_local, v.is_v5(), "{v:?}");
        sim.feed(Packet::SubAck(SubAck {
            packet_id: s.packet_id,
            reasons: vec![ReasonCode::GRANTED_QOS_1, ReasonCode::NOT_AUTHORIZED],
            properties: Properties::default(),
        }));
        let refused = if v.is_v5() {
            ReasonCode::NOT_AUTHORIZED
        } else {
            // 3.1.1 only has 0x80 for any failure.
            ReasonCode::UNSPECIFIED_ERROR
        };
        assert_eq!(
            sim.events(),
            vec![
                ClientEvent::Subscribed {
                    filter: "cloud/cmd/#".into(),
                    result: Ok(QoS::AtLeastOnce)
                },
                ClientEvent::Subscribed {
                    filter: "cloud/cfg".into(),
                    result: Err(refused)
                },
            ]
        );
    }
}

#[test]
fn subscriptions_are_split_to_fit_the_server_maximum_packet_size() {
    let mut c = cfg(ProtocolVersion::V5);
    c.subscriptions = (0..6)
        .map(|i| sub(&format!("site/{i}/#"), QoS::AtMostOnce))
        .collect();
    c.subscriptions.push(sub(&"x".repeat(100), QoS::AtMostOnce));
    let mut sim = Sim::new(c);
    let props = Properties {
        maximum_packet_size: Some(30),
        ..Properties::default()
    };
    sim.connect_with(false, props);
    let sent = sim.sent();
    let mut filters = 0;
    for p in &sent {
        let Packet::Subscribe(s) = p else { panic!() };
        assert!(crate::protocol::encode::encoded_len(p, ProtocolVersion::V5) <= 30);
        filters += s.filters.len();
    }
    assert!(sent.len() > 1);
    assert_eq!(filters, 6);
    let too_large = sim.events().into_iter().any(|e| {
        e == ClientEvent::Subscribed {
            filter: "x".repeat(100),
            result: Err(ReasonCode::PACKET_TOO_LARGE),
        }
    });
    assert!(too_large);
}

#[test]
fn connack_refusal_is_reported_with_its_reason_both_versions() {
    for v in BOTH {
        let mut sim = Sim::new(cfg(v));
        sim.c.start(sim.now, &mut sim.out);
        sim.sent();
        let props = Properties {
            reason_string: v.is_v5().then(|| "bad password".to_string()),
            ..Properties::default()
        };
        sim.feed(connack(false, ReasonCode::BAD_USER_NAME_OR_PASSWORD, props));
        let events = sim.events();
        let [ClientEvent::Refused(closed)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(closed.reason, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        assert_eq!(closed.reason_string.is_some(), v.is_v5());
        assert!(events[0].closes_link());
        assert!(!sim.c.is_connected());
        // Nothing more is read on a refused link.
        sim.feed(Packet::PingResp);
        assert!(sim.events().is_empty() && sim.sent().is_empty());
    }
}

#[test]
fn first_packet_other_than_connack_is_a_protocol_violation() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V5));
    sim.c.start(sim.now, &mut sim.out);
    sim.sent();
    sim.feed(publish_in("a", QoS::AtMostOnce, None, false));
    assert_eq!(violation(&sim.events()), Some(ReasonCode::PROTOCOL_ERROR));
    let sent = sim.sent();
    assert!(matches!(&sent[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR));
}

#[test]
fn second_connack_is_a_protocol_violation_both_versions() {
    for v in BOTH {
        let mut sim = Sim::new(cfg(v));
        sim.connect(false);
        sim.feed(connack(false, ReasonCode::SUCCESS, Properties::default()));
        assert_eq!(violation(&sim.events()), Some(ReasonCode::PROTOCOL_ERROR));
        // 5.0 tells the server why; 3.1.1 has no way to, and just closes.
        assert_eq!(sim.sent().len(), usize::from(v.is_v5()));
    }
}

#[test]
fn mqtt_3_2_2_4_session_present_after_clean_start_is_a_violation() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V5));
    sim.connect_with(true, Properties::default());
    assert_eq!(violation(&sim.events()), Some(ReasonCode::PROTOCOL_ERROR));
    assert!(!sim.c.is_connected());
}

#[test]
fn suback_with_wrong_count_or_unknown_id_is_a_violation() {
    let mut c = cfg(ProtocolVersion::V311);
    c.subscriptions = vec![sub("a", QoS::AtMostOnce), sub("b", QoS::AtMostOnce)];
    for (id_delta, count) in [(0u16, 1usize), (0, 3), (1, 2)] {
        let mut sim = Sim::new(c.clone());
        sim.connect(false);
        let Packet::Subscribe(s) = &sim.sent()[0] else {
            panic!()
        };
        sim.feed(Packet::SubAck(SubAck {
            packet_id: s.packet_id + id_delta,
            reasons: vec![ReasonCode::SUCCESS; count],
            properties: Properties::default(),
        }));
        assert_eq!(violation(&sim.events()), Some(ReasonCode::PROTOCOL_ERROR));
    }
}

#[test]
fn client_only_packets_and_acks_for_unknown_ids_are_violations() {
    for p in [
        Packet::PingReq,
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![("a".into(), SubscriptionOptions::default())],
            properties: Properties::default(),
        }),
        Packet::PubAck(PubResponse::ok(9)),
        Packet::PubComp(PubResponse::ok(9)),
        Packet::PubRec(PubResponse::ok(9)),
    ] {
        let mut sim = Sim::new(cfg(ProtocolVersion::V5));
        sim.connect(false);
        sim.feed(p.clone());
        assert_eq!(
            violation(&sim.events()),
            Some(ReasonCode::PROTOCOL_ERROR),
            "{p:?}"
        );
    }
}

#[test]
fn malformed_bytes_are_a_violation_and_stop_reading() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V5));
    sim.connect(false);
    // PUBLISH with QoS 3, then a PINGRESP that must not be read.
    sim.feed_bytes(&[0x36, 0x03, 0x00, 0x01, b'a', 0xD0, 0x00]);
    assert_eq!(violation(&sim.events()), Some(ReasonCode::MALFORMED_PACKET));
    let sent = sim.sent();
    assert!(
        matches!(&sent[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::MALFORMED_PACKET)
    );
    sim.feed(Packet::PingResp);
    assert!(sim.events().is_empty());
}

#[test]
fn oversize_packet_is_refused_from_its_fixed_header() {
    let mut c = cfg(ProtocolVersion::V5);
    c.max_packet_size = 64;
    let mut sim = Sim::new(c);
    sim.connect(false);
    // Fixed header claims 1000 bytes; only the header has arrived.
    sim.feed_bytes(&[0x30, 0xE8, 0x07]);
    assert_eq!(violation(&sim.events()), Some(ReasonCode::PACKET_TOO_LARGE));
}

#[test]
fn random_input_never_panics() {
    // A tiny xorshift so the test is deterministic and needs no extra crate.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..2000 {
        let v = BOTH[round % 2];
        let mut sim = Sim::new(cfg(v));
        if round % 3 != 0 {
            sim.connect(false);
        } else {
            sim.c.start(sim.now, &mut sim.out);
        }
        sim.publish("t", QoS::ExactlyOnce, 1);
        let len = (next() % 24) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Bias towards plausible first bytes so the decoders' bodies get exercised.
        if let Some(b) = bytes.first_mut() {
            *b = (*b & 0xF0) | [0, 2, 0, 0][usize::from(*b) % 4];
            if bytes.len() > 1 {
                bytes[1] = (len - 2) as u8;
            }
        }
        sim.feed_bytes(&bytes);
        sim.advance(Duration::from_secs(100));
        sim.events();
        sim.out.take_all();
    }
}

#[test]
fn server_disconnect_is_reported_with_reason_v5() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V5));
    sim.connect(false);
    sim.feed(Packet::Disconnect(Disconnect {
        reason: ReasonCode::SERVER_SHUTTING_DOWN,
        properties: Properties {
            server_reference: Some("other:1883".into()),
            ..Properties::default()
        },
    }));
    let events = sim.events();
    let [ClientEvent::ServerDisconnect(closed)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(closed.reason, ReasonCode::SERVER_SHUTTING_DOWN);
    assert_eq!(closed.server_reference.as_deref(), Some("other:1883"));
    assert!(events[0].closes_link());
    assert!(sim.sent().is_empty(), "no answer to a DISCONNECT");
}

#[test]
fn mqtt_3_1_2_keep_alive_pingreq_when_idle_and_link_dead_without_answer() {
    for v in BOTH {
        let mut c = cfg(v);
        c.keep_alive = 10;
        let mut sim = Sim::new(c);
        sim.connect(false);
        let t0 = sim.now;
        assert_eq!(sim.c.next_timeout(), Some(t0 + Duration::from_secs(10)));
        sim.advance(Duration::from_secs(9));
        assert!(sim.sent().is_empty());
        sim.advance(Duration::from_secs(1));
        assert_eq!(sim.sent(), vec![Packet::PingReq]);
        // Answered: the link is alive, the next PINGREQ is a keep-alive later.
        sim.feed(Packet::PingResp);
        sim.advance(Duration::from_secs(9));
        assert!(sim.sent().is_empty());
        sim.advance(Duration::from_secs(1));
        assert_eq!(sim.sent(), vec![Packet::PingReq]);
        // Unanswered: dead after the ping timeout (half the keep-alive by default).
        assert_eq!(sim.c.next_timeout(), Some(sim.now + Duration::from_secs(5)));
        sim.advance(Duration::from_secs(4));
        assert!(sim.events().is_empty());
        sim.advance(Duration::from_secs(1));
        assert_eq!(
            sim.events(),
            vec![ClientEvent::LinkDead(DeadReason::KeepAliveTimeout)]
        );
        assert_eq!(sim.c.next_timeout(), None);
    }
}

#[test]
fn traffic_in_both_directions_defers_the_pingreq() {
    let mut c = cfg(ProtocolVersion::V311);
    c.keep_alive = 10;
    let mut sim = Sim::new(c);
    sim.connect(false);
    for _ in 0..5 {
        sim.advance(Duration::from_secs(6));
        sim.publish("up", QoS::AtLeastOnce, 1);
        let Packet::Publish(p) = &sim.sent()[0] else {
            panic!()
        };
        sim.feed(Packet::PubAck(PubResponse::ok(p.packet_id.unwrap())));
    }
    assert!(sim.sent().is_empty());
    assert!(!sim.events().iter().any(|e| e.closes_link()));
}

#[test]
fn a_silent_server_is_pinged_even_while_we_keep_sending() {
    // QoS 0 traffic upstream only: we write, but never hear anything back.
    let mut c = cfg(ProtocolVersion::V311);
    c.keep_alive = 10;
    let mut sim = Sim::new(c);
    sim.connect(false);
    let mut pinged = false;
    for i in 0..30 {
        sim.advance(Duration::from_secs(1));
        sim.publish("up", QoS::AtMostOnce, i);
        pinged |= sim.sent().contains(&Packet::PingReq);
    }
    assert!(pinged);
    assert!(sim
        .events()
        .contains(&ClientEvent::LinkDead(DeadReason::KeepAliveTimeout)));
}

#[test]
fn server_keep_alive_replaces_ours_v5() {
    let mut c = cfg(ProtocolVersion::V5);
    c.keep_alive = 60;
    let mut sim = Sim::new(c);
    let props = Properties {
        server_keep_alive: Some(5),
        ..Properties::default()
    };
    sim.connect_with(false, props);
    assert!(matches!(
        sim.events()[..],
        [ClientEvent::Connected {
            limits: ServerLimits { keep_alive: 5, .. },
            ..
        }]
    ));
    sim.advance(Duration::from_secs(5));
    assert_eq!(sim.sent(), vec![Packet::PingReq]);
}

#[test]
fn keep_alive_zero_never_pings() {
    let mut c = cfg(ProtocolVersion::V311);
    c.keep_alive = 0;
    let mut sim = Sim::new(c);
    sim.connect(false);
    assert_eq!(sim.c.next_timeout(), None);
    sim.advance(Duration::from_secs(100_000));
    assert!(sim.sent().is_empty() && sim.events().is_empty());
}

#[test]
fn connack_timeout_declares_the_link_dead() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V5));
    sim.c.start(sim.now, &mut sim.out);
    assert_eq!(
        sim.c.next_timeout(),
        Some(sim.now + Duration::from_secs(30))
    );
    sim.advance(Duration::from_secs(29));
    assert!(sim.events().is_empty());
    sim.advance(Duration::from_secs(1));
    assert_eq!(
        sim.events(),
        vec![ClientEvent::LinkDead(DeadReason::ConnAckTimeout)]
    );
    // A late CONNACK on the condemned link is ignored.
    sim.sent();
    sim.feed(connack(false, ReasonCode::SUCCESS, Properties::default()));
    assert!(sim.events().is_empty() && !sim.c.is_connected());
}

#[test]
fn assigned_client_identifier_is_reused_on_redial_v5() {
    let mut c = cfg(ProtocolVersion::V5);
    c.client_id = String::new();
    c.session_expiry = 60;
    let mut sim = Sim::new(c);
    let props = Properties {
        assigned_client_identifier: Some("srv-42".into()),
        ..Properties::default()
    };
    sim.connect_with(false, props);
    sim.c.link_lost();
    let connect = sim.connect(true);
    assert_eq!(connect.client_id, "srv-42");
    assert!(!connect.clean_start);
}

#[test]
fn inbound_topic_alias_is_resolved_and_checked_v5() {
    let mut c = cfg(ProtocolVersion::V5);
    c.topic_alias_maximum = 2;
    let mut sim = Sim::new(c);
    sim.connect(false);
    let with_alias = |topic: &str, alias: u16| {
        let Packet::Publish(mut p) = publish_in(topic, QoS::AtMostOnce, None, false) else {
            unreachable!()
        };
        p.properties.topic_alias = Some(alias);
        Packet::Publish(p)
    };
    sim.feed(with_alias("long/topic/name", 1));
    sim.feed(with_alias("", 1));
    let topics: Vec<_> = sim
        .events()
        .into_iter()
        .map(|e| match e {
            ClientEvent::Message(p) => (p.topic, p.properties.topic_alias),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(topics, vec![("long/topic/name".into(), None); 2]);
    sim.feed(with_alias("x", 3));
    assert_eq!(
        violation(&sim.events()),
        Some(ReasonCode::TOPIC_ALIAS_INVALID)
    );
}

#[test]
fn config_mistakes_are_refused_before_any_connect() {
    let mut c = cfg(ProtocolVersion::V311);
    c.client_id = String::new();
    c.clean_start = false;
    assert_eq!(
        c.validate().err(),
        Some(ConfigError::EmptyClientIdNeedsCleanStart)
    );
    let mut c = cfg(ProtocolVersion::V311);
    c.password = Some(Bytes::from_static(b"p"));
    assert_eq!(
        c.validate().err(),
        Some(ConfigError::PasswordWithoutUsername)
    );
    let mut c = cfg(ProtocolVersion::V5);
    c.max_inflight = 0;
    assert_eq!(c.validate().err(), Some(ConfigError::Zero("max_inflight")));
    let mut c = cfg(ProtocolVersion::V5);
    c.subscriptions = vec![sub("a/#/b", QoS::AtMostOnce)];
    assert!(matches!(c.validate(), Err(ConfigError::Filter { .. })));
}

#[test]
fn polite_disconnect_writes_disconnect_and_ignores_input() {
    let mut sim = Sim::new(cfg(ProtocolVersion::V5));
    sim.connect(false);
    sim.c.disconnect(&mut sim.out);
    assert!(matches!(&sim.sent()[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::SUCCESS));
    sim.feed(publish_in("a", QoS::AtLeastOnce, Some(1), false));
    assert!(sim.events().is_empty() && sim.sent().is_empty());
}

#[test]
fn huge_timeouts_never_fire_and_never_panic() {
    let mut c = cfg(ProtocolVersion::V311);
    c.connack_timeout = Duration::MAX;
    c.ping_timeout = Some(Duration::MAX);
    c.keep_alive = 1;
    let mut sim = Sim::new(c);
    sim.c.start(sim.now, &mut sim.out);
    assert_eq!(sim.c.next_timeout(), None);
    sim.advance(Duration::from_secs(1_000_000));
    assert!(sim.events().is_empty());
    sim.feed(connack(false, ReasonCode::SUCCESS, Properties::default()));
    sim.events();
    sim.advance(Duration::from_secs(1));
    assert!(sim.sent().contains(&Packet::PingReq));
    sim.advance(Duration::from_secs(1_000_000));
    assert!(sim.events().is_empty());
}
