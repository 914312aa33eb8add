//! Sessions over real loopback sockets, for MQTT 3.1.1 and 5.0: takeover by a second connection
//! with the same client id (v5 DISCONNECT 0x8E; session inherited with clean=0, discarded with
//! clean=1; old and new connection on the same or on different I/O threads), persistent sessions
//! (subscriptions kept, QoS 1/2 queued while offline and QoS 0 dropped, delivered in order on
//! reconnect, bounded queue), retransmission with DUP after reconnect (and after a takeover),
//! inbound QoS 2 state kept across reconnects, v5 session expiry (and DISCONNECT changing it),
//! the hand-over of a connection to the I/O thread that owns its session with the packets that
//! arrived behind its CONNECT, and one session resumed by 3.1.1 and 5.0 connections in turn.

mod common;

use std::time::Duration;

use common::*;
use picomq::protocol::{Packet, Properties, ProtocolVersion, PubResponse, QoS, ReasonCode};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// Connects `id` with a session that outlives the connection (3.1.1 clean=0; v5 expiry 300 s)
/// or a clean one, and returns the client and the session present flag.
fn connect_session(
    b: &TestBroker,
    version: ProtocolVersion,
    id: &str,
    clean: bool,
) -> (Client, bool) {
    let mut c = connect_packet(version, id, clean, 60);
    if version.is_v5() && !clean {
        c.properties.session_expiry_interval = Some(300);
    }
    let (client, ack) = Client::handshake(b.addr, c);
    assert_eq!(ack.reason, ReasonCode::SUCCESS, "CONNACK for {id}");
    (client, ack.session_present)
}

/// What the connection that lost a takeover sees: v5 DISCONNECT 0x8E then close; 3.1.1 a close.
fn expect_taken_over(old: &mut Client) {
    old.expect_disconnect(ReasonCode::SESSION_TAKEN_OVER);
}

fn takeover_keeps_session(version: ProtocolVersion) {
    let b = TestBroker::start();
    let (mut first, present) = connect_session(&b, version, "tk", false);
    assert!(!present);
    first.sub_ok(1, "tk/t", QoS::AtLeastOnce);
    let (mut second, present) = connect_session(&b, version, "tk", false);
    assert!(present, "clean=0 takeover: session present");
    expect_taken_over(&mut first);
    // The subscription came with the session.
    let mut p = Client::connect(b.addr, version, "tk-pub");
    p.publish("tk/t", b"inherited", QoS::AtLeastOnce, false, 1);
    let got = second.expect_publish_acked();
    assert_publish(&got, "tk/t", b"inherited", QoS::AtLeastOnce);
    second.expect_nothing(QUIET);
}

#[test]
fn mqtt_3_1_4_3_takeover_closes_old_and_inherits_session_v311() {
    with_deadline(Duration::from_secs(20), || takeover_keeps_session(V311));
}

#[test]
fn mqtt_3_1_4_3_takeover_disconnects_old_with_0x8e_and_inherits_session_v5() {
    with_deadline(Duration::from_secs(20), || takeover_keeps_session(V5));
}

fn takeover_clean_discards(version: ProtocolVersion) {
    let b = TestBroker::start();
    let (mut first, _) = connect_session(&b, version, "tkc", false);
    first.sub_ok(1, "tkc/t", QoS::AtLeastOnce);
    let (mut second, present) = connect_session(&b, version, "tkc", true);
    assert!(!present, "clean takeover: session present 0");
    expect_taken_over(&mut first);
    let mut p = Client::connect(b.addr, version, "tkc-pub");
    p.publish("tkc/t", b"nobody", QoS::AtLeastOnce, false, 1);
    second.expect_nothing(Duration::from_millis(500));
    second.ping();
}

#[test]
fn mqtt_3_1_2_4_clean_takeover_discards_session_v311() {
    with_deadline(Duration::from_secs(20), || takeover_clean_discards(V311));
}

#[test]
fn mqtt_3_1_2_4_clean_takeover_discards_session_v5() {
    with_deadline(Duration::from_secs(20), || takeover_clean_discards(V5));
}

/// A chain of takeovers of one client id. The acceptor deals connections to the two I/O threads
/// in turn, so consecutive connections land on different threads; an extra idle TCP connection
/// before some steps makes the new connection land on the same thread as the old one. Every step
/// checks the old connection is told, the session is present and its subscription still works.
fn takeover_chain(version: ProtocolVersion) {
    let b = TestBroker::start();
    let mut p = Client::connect(b.addr, version, "chain-pub");
    let (mut current, present) = connect_session(&b, version, "chain", false);
    assert!(!present);
    current.sub_ok(1, "chain/t", QoS::AtLeastOnce);
    let mut fillers = Vec::new();
    for step in 0..6u16 {
        if step % 2 == 1 {
            // Same thread as the current connection for this step.
            fillers.push(Client::tcp(b.addr, version));
        }
        let (mut next, present) = connect_session(&b, version, "chain", false);
        assert!(present, "step {step}: session present");
        expect_taken_over(&mut current);
        let payload = format!("step {step}");
        p.publish(
            "chain/t",
            payload.as_bytes(),
            QoS::AtLeastOnce,
            false,
            step + 1,
        );
        let got = next.expect_publish_acked();
        assert_publish(&got, "chain/t", payload.as_bytes(), QoS::AtLeastOnce);
        current = next;
    }
    current.expect_nothing(QUIET);
    current.disconnect();
}

#[test]
fn takeover_across_and_within_io_threads_v311() {
    with_deadline(Duration::from_secs(30), || takeover_chain(V311));
}

#[test]
fn takeover_across_and_within_io_threads_v5() {
    with_deadline(Duration::from_secs(30), || takeover_chain(V5));
}

fn offline_queue(version: ProtocolVersion) {
    let b = TestBroker::start();
    let (mut s, _) = connect_session(&b, version, "offline", false);
    s.sub_ok(1, "off/#", QoS::ExactlyOnce);
    s.disconnect();
    let mut p = Client::connect(b.addr, version, "offline-pub");
    let sent = [
        ("off/a", QoS::AtMostOnce, "q0 dropped"),
        ("off/b", QoS::AtLeastOnce, "one"),
        ("off/c", QoS::ExactlyOnce, "two"),
        ("off/b", QoS::AtMostOnce, "q0 dropped too"),
        ("off/a", QoS::AtLeastOnce, "three"),
        ("off/c", QoS::ExactlyOnce, "four"),
    ];
    for (i, (topic, q, payload)) in sent.iter().enumerate() {
        p.publish(topic, payload.as_bytes(), *q, false, i as u16 + 1);
    }
    // Give the router time to queue everything before the session reattaches.
    p.ping();
    std::thread::sleep(Duration::from_millis(200));
    let (mut s, present) = connect_session(&b, version, "offline", false);
    assert!(present, "persistent session resumed");
    let kept: Vec<_> = sent
        .iter()
        .filter(|(_, q, _)| *q != QoS::AtMostOnce)
        .collect();
    let got = s.collect_publishes(kept.len());
    for (m, (topic, q, payload)) in got.iter().zip(kept) {
        assert_publish(m, topic, payload.as_bytes(), *q);
    }
    s.expect_nothing(QUIET);
    // Live delivery continues on the resumed session.
    p.publish("off/live", b"live", QoS::AtLeastOnce, false, 50);
    assert_publish(
        &s.expect_publish_acked(),
        "off/live",
        b"live",
        QoS::AtLeastOnce,
    );
}

#[test]
fn mqtt_3_1_2_5_offline_qos1_qos2_queued_in_order_qos0_dropped_v311() {
    with_deadline(Duration::from_secs(20), || offline_queue(V311));
}

#[test]
fn mqtt_3_1_2_5_offline_qos1_qos2_queued_in_order_qos0_dropped_v5() {
    with_deadline(Duration::from_secs(20), || offline_queue(V5));
}

#[test]
fn offline_queue_is_bounded_by_max_queued_messages() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.max_queued_messages = 5);
        let (mut s, _) = connect_session(&b, V311, "bounded", false);
        s.sub_ok(1, "bq", QoS::AtLeastOnce);
        s.disconnect();
        let mut p = Client::connect(b.addr, V311, "bounded-pub");
        for i in 0..20u16 {
            p.publish("bq", &i.to_be_bytes(), QoS::AtLeastOnce, false, i + 1);
        }
        p.ping();
        std::thread::sleep(Duration::from_millis(200));
        let (mut s, present) = connect_session(&b, V311, "bounded", false);
        assert!(present);
        // Full queue: later QoS 1 messages are dropped (no QoS 0 to evict); the first 5 stay.
        for i in 0..5u16 {
            let got = s.expect_publish_acked();
            assert_eq!(&got.payload[..], &i.to_be_bytes(), "queued message {i}");
        }
        s.expect_nothing(QUIET);
    });
}

fn resend_with_dup(version: ProtocolVersion) {
    let b = TestBroker::start();
    let (mut s, _) = connect_session(&b, version, "dup", false);
    s.sub_ok(1, "dup/#", QoS::ExactlyOnce);
    let mut p = Client::connect(b.addr, version, "dup-pub");
    p.publish("dup/q1", b"unacked q1", QoS::AtLeastOnce, false, 1);
    p.publish("dup/q2", b"unreceived q2", QoS::ExactlyOnce, false, 2);
    p.publish("dup/q2r", b"unreleased q2", QoS::ExactlyOnce, false, 3);
    let m1 = s.expect_publish();
    let m2 = s.expect_publish();
    let m3 = s.expect_publish();
    assert_publish(&m1, "dup/q1", b"unacked q1", QoS::AtLeastOnce);
    assert_publish(&m2, "dup/q2", b"unreceived q2", QoS::ExactlyOnce);
    assert_publish(&m3, "dup/q2r", b"unreleased q2", QoS::ExactlyOnce);
    let id3 = m3.packet_id.expect("id");
    // Acknowledge only the first step of the third: the broker must answer PUBREL.
    s.send(&Packet::PubRec(PubResponse::ok(id3)));
    s.expect_ack(6, id3);
    // Connection lost without any further acknowledgement.
    drop(s);
    let (mut s, present) = connect_session(&b, version, "dup", false);
    assert!(present);
    // [MQTT-4.4.0-1]: PUBLISH resent with DUP=1 and the same ids, then the PUBREL, in order.
    let r1 = s.expect_publish();
    assert_publish(&r1, "dup/q1", b"unacked q1", QoS::AtLeastOnce);
    assert!(r1.dup, "resent QoS 1 PUBLISH must have DUP=1");
    assert_eq!(r1.packet_id, m1.packet_id, "resent with the same packet id");
    let r2 = s.expect_publish();
    assert_publish(&r2, "dup/q2", b"unreceived q2", QoS::ExactlyOnce);
    assert!(r2.dup, "resent QoS 2 PUBLISH must have DUP=1");
    assert_eq!(r2.packet_id, m2.packet_id);
    match s.expect_packet() {
        Packet::PubRel(r) => assert_eq!(r.packet_id, id3, "PUBREL resent for the released id"),
        other => panic!("expected the PUBREL to be resent, got {other:?}"),
    }
    s.ack(&r1);
    s.ack(&r2);
    s.send(&Packet::PubComp(PubResponse::ok(id3)));
    s.expect_nothing(QUIET);
    // Nothing left in flight: a third connection gets no resend.
    drop(s);
    let (mut s, present) = connect_session(&b, version, "dup", false);
    assert!(present);
    s.expect_nothing(QUIET);
}

#[test]
fn mqtt_4_4_0_1_unacked_messages_resent_with_dup_after_reconnect_v311() {
    with_deadline(Duration::from_secs(20), || resend_with_dup(V311));
}

#[test]
fn mqtt_4_4_0_1_unacked_messages_resent_with_dup_after_reconnect_v5() {
    with_deadline(Duration::from_secs(20), || resend_with_dup(V5));
}

fn v5_with_expiry(b: &TestBroker, id: &str, expiry: u32) -> (Client, bool) {
    let props = Properties {
        session_expiry_interval: Some(expiry),
        ..Properties::default()
    };
    let (c, ack) = Client::connect_v5(b.addr, id, false, 60, props);
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    (c, ack.session_present)
}

#[test]
fn mqtt_3_1_2_11_v5_session_expires_after_its_interval() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let (mut c, _) = v5_with_expiry(&b, "exp", 1);
        c.sub_ok(1, "exp/t", QoS::AtLeastOnce);
        c.disconnect();
        // Within the interval the session is still there.
        std::thread::sleep(Duration::from_millis(200));
        let (c, present) = v5_with_expiry(&b, "exp", 1);
        assert!(present, "session present within its 1 s expiry");
        c.disconnect();
        std::thread::sleep(Duration::from_millis(1500));
        let (mut c, present) = v5_with_expiry(&b, "exp", 60);
        assert!(!present, "session must be gone 1.5 s after a 1 s expiry");
        let mut p = Client::connect(b.addr, V5, "exp-pub");
        p.publish("exp/t", b"to nobody", QoS::AtLeastOnce, false, 1);
        c.expect_nothing(Duration::from_millis(500));
    });
}

#[test]
fn v311_persistent_session_expires_after_persistent_client_expiration() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.persistent_client_expiration = 1);
        let mut c = Client::connect_v311(b.addr, "p-exp", false, 60);
        c.sub_ok(1, "p-exp/t", QoS::AtLeastOnce);
        c.disconnect();
        std::thread::sleep(Duration::from_millis(200));
        let (c, ack) = Client::connect_v311_ack(b.addr, "p-exp", false, 60);
        assert!(ack.session_present, "session kept within its 1 s");
        c.disconnect();
        std::thread::sleep(Duration::from_millis(1500));
        let (mut c, ack) = Client::connect_v311_ack(b.addr, "p-exp", false, 60);
        assert!(
            !ack.session_present,
            "session must be gone 1.5 s after a 1 s expiration"
        );
        let mut p = Client::connect(b.addr, ProtocolVersion::V311, "p-exp-pub");
        p.publish("p-exp/t", b"to nobody", QoS::AtLeastOnce, false, 1);
        c.expect_nothing(Duration::from_millis(500));
    });
}

#[test]
fn mqtt_3_14_2_2_v5_disconnect_can_shorten_session_expiry_to_zero() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let (c, _) = v5_with_expiry(&b, "short", 300);
        let mut c = c;
        c.send(&Packet::Disconnect(picomq::protocol::Disconnect {
            reason: ReasonCode::SUCCESS,
            properties: Properties {
                session_expiry_interval: Some(0),
                ..Properties::default()
            },
        }));
        c.expect_closed();
        let (_c, present) = v5_with_expiry(&b, "short", 300);
        assert!(!present, "DISCONNECT with expiry 0 ends the session");
    });
}

/// A connection whose CONNECT names a session living on the other I/O thread is handed to that
/// thread; the packets that arrived in the same write as the CONNECT must not be lost.
fn handover_keeps_pipelined_packets(version: ProtocolVersion) {
    let b = TestBroker::start();
    // Connection 0 (thread 0) creates the session.
    let (mut s, _) = connect_session(&b, version, "handover", false);
    s.sub_ok(1, "ho/t", QoS::AtLeastOnce);
    s.disconnect();
    // Connection 1 lands on thread 1 and sends everything at once.
    let mut c = Client::tcp(b.addr, version);
    let mut connect = connect_packet(version, "handover", false, 60);
    if version.is_v5() {
        connect.properties.session_expiry_interval = Some(300);
    }
    let mut bytes = encode(&Packet::Connect(Box::new(connect)), version);
    bytes.extend(encode(
        &Packet::Publish(publish_packet(
            "ho/t",
            b"pipelined",
            QoS::AtLeastOnce,
            false,
            7,
        )),
        version,
    ));
    bytes.extend(encode(&Packet::PingReq, version));
    c.send_raw(&bytes);
    let ack = c.expect_connack();
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert!(ack.session_present, "session found on the other thread");
    c.expect_ack(4, 7);
    // PINGRESP and our own message (through the router) may come in either order.
    let mut got_publish = false;
    let mut got_pong = false;
    for _ in 0..2 {
        match c.expect_packet() {
            Packet::PingResp => got_pong = true,
            Packet::Publish(p) => {
                assert_publish(&p, "ho/t", b"pipelined", QoS::AtLeastOnce);
                c.ack(&p);
                got_publish = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(got_publish && got_pong);
    c.expect_nothing(QUIET);
}

#[test]
fn handover_to_the_sessions_thread_keeps_pipelined_packets_v311() {
    with_deadline(Duration::from_secs(20), || {
        handover_keeps_pipelined_packets(V311)
    });
}

#[test]
fn handover_to_the_sessions_thread_keeps_pipelined_packets_v5() {
    with_deadline(Duration::from_secs(20), || {
        handover_keeps_pipelined_packets(V5)
    });
}

/// Inbound QoS 2 state belongs to the session: after a reconnect, a resent PUBLISH is not routed
/// again and the PUBREL completes the flow.
fn inbound_qos2_survives_reconnect(version: ProtocolVersion) {
    let b = TestBroker::start();
    let mut sub = Client::connect(b.addr, version, "in2-sub");
    sub.sub_ok(1, "in2/t", QoS::ExactlyOnce);
    let (mut p, _) = connect_session(&b, version, "in2-pub", false);
    let mut m = publish_packet(
        "in2/t",
        b"once across reconnects",
        QoS::ExactlyOnce,
        false,
        5,
    );
    p.send(&Packet::Publish(m.clone()));
    p.expect_ack(5, 5);
    drop(p);
    let (mut p, present) = connect_session(&b, version, "in2-pub", false);
    assert!(present);
    m.dup = true;
    p.send(&Packet::Publish(m));
    p.expect_ack(5, 5);
    p.send(&Packet::PubRel(PubResponse::ok(5)));
    p.expect_ack(7, 5);
    let got = sub.expect_publish_acked();
    assert_publish(&got, "in2/t", b"once across reconnects", QoS::ExactlyOnce);
    sub.expect_nothing(Duration::from_millis(500));
}

#[test]
fn mqtt_4_3_3_inbound_qos2_state_survives_reconnect_v311() {
    with_deadline(Duration::from_secs(20), || {
        inbound_qos2_survives_reconnect(V311)
    });
}

#[test]
fn mqtt_4_3_3_inbound_qos2_state_survives_reconnect_v5() {
    with_deadline(Duration::from_secs(20), || {
        inbound_qos2_survives_reconnect(V5)
    });
}

#[test]
fn mqtt_3_14_2_2_v5_disconnect_cannot_raise_session_expiry_from_zero() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut c = Client::connect_v5_ok(b.addr, "raise", true, 60);
        c.send(&Packet::Disconnect(picomq::protocol::Disconnect {
            reason: ReasonCode::SUCCESS,
            properties: Properties {
                session_expiry_interval: Some(60),
                ..Properties::default()
            },
        }));
        c.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
    });
}

#[test]
fn takeover_resends_unacknowledged_messages_to_the_new_connection() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let (mut old, _) = connect_session(&b, V5, "inflight", false);
        old.sub_ok(1, "if/t", QoS::AtLeastOnce);
        let mut p = Client::connect(b.addr, V5, "inflight-pub");
        p.publish("if/t", b"not acked", QoS::AtLeastOnce, false, 1);
        let first = old.expect_publish();
        let (mut new, present) = connect_session(&b, V5, "inflight", false);
        assert!(present);
        expect_taken_over(&mut old);
        let again = new.expect_publish_acked();
        assert_publish(&again, "if/t", b"not acked", QoS::AtLeastOnce);
        assert!(again.dup, "resent with DUP=1");
        assert_eq!(again.packet_id, first.packet_id);
        new.expect_nothing(QUIET);
    });
}

/// CONNECT (with a will) and a PUBLISH in one write, then FIN at once, on a connection that must
/// be handed to the session's thread: the PUBLISH is still routed and the will published.
#[test]
fn handover_then_immediate_close_routes_pipelined_publish_and_will() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let (s, _) = connect_session(&b, V311, "hofin", false);
        s.disconnect();
        let mut w = Client::connect(b.addr, V311, "hofin-watch");
        w.sub_ok(1, "hofin/#", QoS::AtLeastOnce);
        // Connections so far: 0 (session, thread 0), 1 (watcher, thread 1); this one: thread 0.
        // One filler makes it land on thread 1, away from the session.
        let _filler = Client::tcp(b.addr, V311);
        let mut c = Client::tcp(b.addr, V311);
        let mut connect = connect_packet(V311, "hofin", false, 60);
        connect.will = Some(will("hofin/will", b"vanished", QoS::AtLeastOnce, false));
        let mut bytes = encode(&Packet::Connect(Box::new(connect)), V311);
        bytes.extend(encode(
            &Packet::Publish(publish_packet(
                "hofin/data",
                b"last",
                QoS::AtMostOnce,
                false,
                0,
            )),
            V311,
        ));
        c.send_raw(&bytes);
        c.shutdown_write();
        let got = w.collect_publishes(2);
        assert_publish(&got[0], "hofin/data", b"last", QoS::AtMostOnce);
        assert_publish(&got[1], "hofin/will", b"vanished", QoS::AtLeastOnce);
        w.expect_nothing(QUIET);
    });
}

#[test]
fn session_resumed_across_protocol_versions() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        // A v5 session with a subscription identifier and a client-accepted alias table...
        let mut c = connect_packet(V5, "crossver", false, 60);
        c.properties.session_expiry_interval = Some(300);
        c.properties.topic_alias_maximum = Some(4);
        let (mut v5, _) = Client::handshake(b.addr, c);
        v5.subscribe_with(picomq::protocol::Subscribe {
            packet_id: 1,
            filters: vec![("cv/t".to_owned(), sub_opts(QoS::AtLeastOnce))],
            properties: Properties {
                subscription_identifiers: vec![9],
                ..Properties::default()
            },
        });
        let mut p = Client::connect(b.addr, V5, "crossver-pub");
        p.publish("cv/t", b"to v5", QoS::AtLeastOnce, false, 1);
        let got = v5.expect_publish_acked();
        assert_eq!(got.properties.subscription_identifiers, vec![9]);
        // ...taken over by a 3.1.1 connection: same session, plain 3.1.1 packets.
        let (mut v3, present) = connect_session(&b, V311, "crossver", false);
        assert!(present, "3.1.1 clean=0 resumes the v5 session");
        v5.expect_disconnect(ReasonCode::SESSION_TAKEN_OVER);
        for i in 0..3u16 {
            p.publish("cv/t", b"to 3.1.1", QoS::AtLeastOnce, false, 2 + i);
            let got = v3.expect_publish_acked();
            assert_publish(&got, "cv/t", b"to 3.1.1", QoS::AtLeastOnce);
        }
        // And back to v5 with an unacknowledged message in flight.
        p.publish("cv/t", b"in flight", QoS::AtLeastOnce, false, 9);
        let _unacked = v3.expect_publish();
        let (mut v5, present) = connect_session(&b, V5, "crossver", false);
        assert!(present);
        v3.expect_closed();
        let again = v5.expect_publish_acked();
        assert_publish(&again, "cv/t", b"in flight", QoS::AtLeastOnce);
        assert!(again.dup);
        assert_eq!(again.properties.subscription_identifiers, vec![9]);
    });
}
