//! Whole-broker tests of session life on the virtual clock: takeover across threads, session
//! present, session expiry, keep-alive and wills (immediate and delayed).
//!
//! Owns: tests only. Each test is named after the rule it checks and runs for MQTT 3.1.1 and 5.0
//! where the rule applies to both.

use std::time::Duration;

use crate::protocol::{Connect, Packet, ProtocolVersion, QoS, ReasonCode};

use super::*;

const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V311, ProtocolVersion::V5];

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A CONNECT that keeps its session: Clean Session 0 (3.1.1), or no clean start and `expiry`
/// seconds of Session Expiry Interval (5.0).
fn persistent(v: ProtocolVersion, id: &str, expiry: u32) -> Connect {
    let mut c = connect(v, id, false, 0);
    if v.is_v5() {
        c.properties.session_expiry_interval = Some(expiry);
    }
    c
}

/// The payloads of the PUBLISH packets among `packets`.
fn payloads(packets: &[Packet]) -> Vec<Vec<u8>> {
    publishes(packets)
        .iter()
        .map(|p| p.payload.to_vec())
        .collect()
}

/// [MQTT-3.1.4-3]: a CONNECT with the client id of a connected client takes over its session and
/// the server disconnects the existing client; MQTT 5.0 says why, DISCONNECT 0x8E Session taken
/// over (section 3.14.2.1). The first and second connections arrive on every pair of threads, so
/// the takeover follows a handover whenever the second is not on the owner's thread, and the
/// session (its subscription) carries on with the new connection.
#[test]
fn takeover_from_any_thread_disconnects_the_existing_client_mqtt_3_1_4_3() {
    for v in BOTH {
        for first in 0..3 {
            for second in 0..3 {
                let mut sim = Sim::new(3);
                let id = "taken";
                let (old, ack) = sim.connect_ok(first, persistent(v, id, 300));
                assert!(!ack.session_present);
                assert_eq!(sim.thread_of(old), Some(sim.owner(id)));
                sim.send(old, &subscribe(1, "t/a", QoS::AtLeastOnce));
                assert!(matches!(&sim.recv(old)[..], [Packet::SubAck(_)]));

                let (new, ack) = sim.connect_ok(second, persistent(v, id, 300));
                assert!(ack.session_present, "{v:?} {first}->{second}");
                assert_eq!(sim.thread_of(new), Some(sim.owner(id)));
                let last = sim.recv(old);
                if v.is_v5() {
                    match &last[..] {
                        [Packet::Disconnect(d)] => {
                            assert_eq!(d.reason, ReasonCode::SESSION_TAKEN_OVER)
                        }
                        other => panic!("{first}->{second}: expected DISCONNECT, got {other:?}"),
                    }
                } else {
                    assert!(last.is_empty(), "3.1.1 has no DISCONNECT: {last:?}");
                }
                assert!(sim.is_closed(old), "{v:?} {first}->{second}");
                assert!(!sim.is_closed(new));

                let (p, _) = sim.connect_ok(first, connect(v, "pub", true, 0));
                sim.send(p, &publish("t/a", b"after", QoS::AtLeastOnce, false, 1));
                assert_eq!(payloads(&sim.recv(new)), vec![b"after".to_vec()]);
                assert!(sim.recv(old).is_empty());
            }
        }
    }
}

/// [MQTT-3.2.2-2] / [MQTT-3.2.2-3] (3.1.1 [MQTT-3.2.2-1] / [MQTT-3.2.2-2]): Session Present is 1
/// when the server resumes a session, 0 after a clean start, which also discards the old session
/// [MQTT-3.1.2-4]; a client reconnecting through another thread finds its session all the same.
#[test]
fn session_present_flag_tells_whether_the_session_was_resumed_mqtt_3_2_2_2() {
    for v in BOTH {
        let mut sim = Sim::new(2);
        let id = "present";
        let (c, ack) = sim.connect_ok(0, persistent(v, id, 300));
        assert!(!ack.session_present);
        sim.hang_up(c);
        for t in [1, 0] {
            let (c, ack) = sim.connect_ok(t, persistent(v, id, 300));
            assert!(ack.session_present, "{v:?} via thread {t}");
            sim.hang_up(c);
        }
        let (c, ack) = sim.connect_ok(1, connect(v, id, true, 0));
        assert!(!ack.session_present);
        sim.hang_up(c);
        let (_, ack) = sim.connect_ok(0, persistent(v, id, 300));
        assert!(
            !ack.session_present,
            "{v:?}: a clean start ended the old session"
        );
    }
}

/// MQTT 5.0 [MQTT-3.1.2-23]: the server keeps the session after the network connection closes
/// until the Session Expiry Interval has passed, with the messages queued for it; then it is gone
/// and a reconnect finds no session.
#[test]
fn v5_session_kept_until_its_expiry_interval_then_gone_mqtt_3_1_2_23() {
    let v = ProtocolVersion::V5;
    let mut sim = Sim::new(2);
    let id = client_id_on(&sim, "exp", 0);
    let (c, _) = sim.connect_ok(1, persistent(v, &id, 10));
    sim.send(c, &subscribe(1, "t/q", QoS::AtLeastOnce));
    sim.recv(c);
    sim.hang_up(c);
    let (p, _) = sim.connect_ok(1, connect(v, "pub", true, 0));
    sim.send(p, &publish("t/q", b"queued", QoS::AtLeastOnce, false, 1));

    sim.advance(secs(9.75));
    assert!(sim.core(0).by_client.contains_key(id.as_str()));
    let (c, ack) = sim.connect_ok(1, persistent(v, &id, 10));
    assert!(ack.session_present, "kept before its expiry");
    let got = sim.recv(c);
    assert_eq!(payloads(&got), vec![b"queued".to_vec()]);
    let pid = publishes(&got)[0].packet_id.expect("QoS 1");
    sim.send(c, &puback(pid));
    sim.hang_up(c);

    sim.advance(secs(9.75));
    assert!(sim.core(0).by_client.contains_key(id.as_str()));
    sim.advance(secs(0.5));
    assert!(
        !sim.core(0).by_client.contains_key(id.as_str()),
        "gone once the interval passed"
    );
    sim.send(p, &publish("t/q", b"nobody", QoS::AtLeastOnce, false, 2));
    let (c, ack) = sim.connect_ok(0, persistent(v, &id, 10));
    assert!(!ack.session_present);
    assert!(payloads(&sim.recv(c)).is_empty());
}

/// MQTT 5.0 [MQTT-3.1.2-23], expiry 0 (the default): the session ends with the connection.
#[test]
fn v5_session_without_expiry_ends_with_the_connection_mqtt_3_1_2_23() {
    let v = ProtocolVersion::V5;
    let mut sim = Sim::new(2);
    let (c, _) = sim.connect_ok(0, connect(v, "brief", false, 0));
    sim.hang_up(c);
    let (_, ack) = sim.connect_ok(1, connect(v, "brief", false, 0));
    assert!(!ack.session_present);
}

/// MQTT 3.1.1 [MQTT-3.1.2-4]: with Clean Session 0 the session is resumed however long the client
/// was away (no `persistent_client_expiration` configured); with one, it expires like a 5.0
/// session.
#[test]
fn v311_persistent_session_kept_mqtt_3_1_2_4() {
    let v = ProtocolVersion::V311;
    let mut sim = Sim::new(2);
    let (c, _) = sim.connect_ok(1, persistent(v, "keeper", 0));
    sim.hang_up(c);
    sim.advance(Duration::from_secs(3600));
    let (_, ack) = sim.connect_ok(0, persistent(v, "keeper", 0));
    assert!(ack.session_present, "kept after an hour away");

    let mut sim = Sim::with(2, |cfg| cfg.mqtt.persistent_client_expiration = 60);
    let (c, _) = sim.connect_ok(1, persistent(v, "keeper", 0));
    sim.hang_up(c);
    sim.advance(secs(59.75));
    let (c, ack) = sim.connect_ok(0, persistent(v, "keeper", 0));
    assert!(
        ack.session_present,
        "kept before persistent_client_expiration"
    );
    sim.hang_up(c);
    sim.advance(secs(60.25));
    let (_, ack) = sim.connect_ok(0, persistent(v, "keeper", 0));
    assert!(
        !ack.session_present,
        "expired after persistent_client_expiration"
    );
}

/// [MQTT-3.1.2-24]: a server that receives no control packet within one and a half times the
/// Keep Alive closes the connection (5.0: DISCONNECT 0x8D first, section 3.14.2.1); any packet,
/// a PINGREQ here, restarts the wait. The will is then published [MQTT-3.1.2-8].
#[test]
fn keep_alive_closes_after_one_and_a_half_intervals_mqtt_3_1_2_24() {
    for v in BOTH {
        let mut sim = Sim::new(2);
        let watcher = subscriber(&mut sim, 0, v, "watcher", "will/#", QoS::AtMostOnce);
        let mut c = connect(v, &client_id_on(&sim, "ka", 0), true, 10);
        c.will = Some(will("will/ka", b"gone", QoS::AtMostOnce));
        let (c, _) = sim.connect_ok(1, c);

        sim.advance(secs(14.5));
        assert!(!sim.is_closed(c), "{v:?}: open before 1.5 x keep-alive");
        sim.send(c, &Packet::PingReq);
        assert_eq!(sim.recv(c), vec![Packet::PingResp]);
        sim.advance(secs(14.5));
        assert!(!sim.is_closed(c), "{v:?}: PINGREQ restarted the wait");
        assert!(sim.recv(watcher).is_empty());

        sim.advance(secs(0.75));
        let last = sim.recv(c);
        assert!(sim.is_closed(c), "{v:?}: closed after 1.5 x keep-alive");
        if v.is_v5() {
            match &last[..] {
                [Packet::Disconnect(d)] => assert_eq!(d.reason, ReasonCode::KEEP_ALIVE_TIMEOUT),
                other => panic!("expected DISCONNECT 0x8D, got {other:?}"),
            }
        } else {
            assert!(last.is_empty(), "{last:?}");
        }
        assert_eq!(payloads(&sim.recv(watcher)), vec![b"gone".to_vec()]);
    }
}

/// [MQTT-3.1.2-8] and [MQTT-3.1.2-10]: the will is published when the connection is lost
/// without a DISCONNECT, and deleted by a normal DISCONNECT. Without a Will Delay Interval it
/// goes at once.
#[test]
fn will_published_on_network_loss_not_after_disconnect_mqtt_3_1_2_8_and_10() {
    for v in BOTH {
        let mut sim = Sim::new(3);
        let watcher = subscriber(&mut sim, 2, v, "watcher", "will/#", QoS::AtLeastOnce);
        let mut c = connect(v, "lost", true, 0);
        c.will = Some(will("will/lost", b"lost", QoS::AtLeastOnce));
        let (lost, _) = sim.connect_ok(0, c.clone());
        sim.hang_up(lost);
        let got = sim.recv(watcher);
        assert_eq!(payloads(&got), vec![b"lost".to_vec()], "{v:?}");
        sim.send(
            watcher,
            &puback(publishes(&got)[0].packet_id.expect("QoS 1")),
        );

        let (polite, _) = sim.connect_ok(1, c);
        sim.send(polite, &Packet::Disconnect(Default::default()));
        assert!(sim.is_closed(polite));
        sim.advance(secs(1.0));
        assert!(
            sim.recv(watcher).is_empty(),
            "{v:?}: DISCONNECT deleted the will"
        );
    }
}

/// A 5.0 client with a will that waits `delay` seconds and a session of `expiry` seconds.
fn delayed_will_client(sim: &mut Sim, t: usize, id: &str, delay: u32, expiry: u32) -> Client {
    let mut c = persistent(ProtocolVersion::V5, id, expiry);
    let mut w = will("will/late", b"late", QoS::AtMostOnce);
    w.properties.will_delay_interval = Some(delay);
    c.will = Some(w);
    sim.connect_ok(t, c).0
}

/// MQTT 5.0 section 3.1.3.2.2 (Will Delay Interval): the server delays publishing the will until
/// the interval has passed or the session ends, whichever comes first: published after the delay,
/// not before.
#[test]
fn v5_will_delay_publishes_after_the_interval_not_before_3_1_3_2_2() {
    let mut sim = Sim::new(2);
    let watcher = subscriber(
        &mut sim,
        1,
        ProtocolVersion::V5,
        "w",
        "will/#",
        QoS::AtMostOnce,
    );
    let c = delayed_will_client(&mut sim, 0, "late", 5, 60);
    sim.hang_up(c);
    assert!(sim.recv(watcher).is_empty());
    sim.advance(secs(4.75));
    assert!(sim.recv(watcher).is_empty(), "not before the delay");
    sim.advance(secs(0.5));
    assert_eq!(payloads(&sim.recv(watcher)), vec![b"late".to_vec()]);
}

/// MQTT 5.0 section 3.1.3.2.2: a will whose delay outlasts the session is published when the
/// session expires [MQTT-3.1.3-9].
#[test]
fn v5_will_delay_longer_than_session_published_at_session_end_mqtt_3_1_3_9() {
    let mut sim = Sim::new(2);
    let watcher = subscriber(
        &mut sim,
        1,
        ProtocolVersion::V5,
        "w",
        "will/#",
        QoS::AtMostOnce,
    );
    let c = delayed_will_client(&mut sim, 1, "short", 30, 2);
    sim.hang_up(c);
    sim.advance(secs(1.75));
    assert!(sim.recv(watcher).is_empty());
    sim.advance(secs(0.5));
    assert_eq!(payloads(&sim.recv(watcher)), vec![b"late".to_vec()]);
}

/// MQTT 5.0 section 3.1.3.2.2: a client that reconnects (resuming its session) before the Will
/// Delay Interval has passed cancels the will, whichever thread the reconnect arrives on.
#[test]
fn v5_will_delay_cancelled_by_reconnect_within_the_delay_3_1_3_2_2() {
    for t in 0..3 {
        let mut sim = Sim::new(3);
        let watcher = subscriber(
            &mut sim,
            0,
            ProtocolVersion::V5,
            "w",
            "will/#",
            QoS::AtMostOnce,
        );
        let c = delayed_will_client(&mut sim, 1, "back", 5, 60);
        sim.hang_up(c);
        sim.advance(secs(2.0));
        let back = persistent(ProtocolVersion::V5, "back", 60);
        let (c, ack) = sim.connect_ok(t, back);
        assert!(ack.session_present);
        sim.advance(secs(10.0));
        assert!(
            sim.recv(watcher).is_empty(),
            "via thread {t}: will cancelled"
        );
        sim.send(c, &Packet::Disconnect(Default::default()));
        sim.advance(secs(10.0));
        assert!(sim.recv(watcher).is_empty());
    }
}

/// Bytes a client wrote behind its CONNECT (pipelined SUBSCRIBE and PUBLISH, then its close)
/// travel with the connection when it is handed over to its session's thread, and are handled
/// there in order: the subscription is made, the message reaches it, and the will of the
/// connection lost right after is published.
#[test]
fn packets_pipelined_behind_connect_survive_the_handover() {
    for v in BOTH {
        let mut sim = Sim::new(3);
        let watcher = subscriber(&mut sim, 0, v, "watcher", "will/#", QoS::AtMostOnce);
        let id = client_id_on(&sim, "eager", 2);
        let mut c = connect(v, &id, true, 0);
        c.will = Some(will("will/eager", b"bye", QoS::AtMostOnce));
        let eager = sim.open(0, v);
        sim.write(eager, &Packet::Connect(Box::new(c)));
        sim.write(eager, &subscribe(1, "echo/me", QoS::AtLeastOnce));
        sim.write(
            eager,
            &publish("echo/me", b"hi", QoS::AtLeastOnce, false, 2),
        );
        sim.settle();
        assert_eq!(sim.thread_of(eager), Some(2));
        let got = sim.recv(eager);
        assert!(matches!(got.first(), Some(Packet::ConnAck(_))), "{got:?}");
        assert!(matches!(got.get(1), Some(Packet::SubAck(_))), "{got:?}");
        assert_eq!(payloads(&got), vec![b"hi".to_vec()], "{v:?}");
        assert!(got
            .iter()
            .any(|p| matches!(p, Packet::PubAck(a) if a.packet_id == 2)));
        sim.hang_up(eager);
        assert_eq!(payloads(&sim.recv(watcher)), vec![b"bye".to_vec()]);
    }
}

/// A client whose CONNECT and close arrive together on a thread that does not own its session:
/// the session is made on the owner's thread, the connection is then seen lost, and its will is
/// published ([MQTT-3.1.2-8]).
#[test]
fn connect_and_close_together_across_a_handover_publish_the_will_mqtt_3_1_2_8() {
    for v in BOTH {
        let mut sim = Sim::new(2);
        let watcher = subscriber(&mut sim, 0, v, "watcher", "will/#", QoS::AtMostOnce);
        let id = client_id_on(&sim, "blink", 1);
        let mut c = connect(v, &id, true, 0);
        c.will = Some(will("will/blink", b"blink", QoS::AtMostOnce));
        let blink = sim.open(0, v);
        sim.write(blink, &Packet::Connect(Box::new(c)));
        sim.hang_up(blink);
        assert!(sim.is_closed(blink));
        assert_eq!(
            payloads(&sim.recv(watcher)),
            vec![b"blink".to_vec()],
            "{v:?}"
        );
        let open: usize = (0..2).map(|t| sim.core(t).conns.len()).sum();
        assert_eq!(open, 1, "only the watcher's connection is left");
        assert_eq!(
            sim.shared
                .connections
                .load(std::sync::atomic::Ordering::Relaxed),
            1,
            "the closed connection was counted out"
        );
    }
}

/// MQTT 5.0 section 3.1.3.2.2 on a takeover: the taken-over link's delayed will is cancelled when
/// the new connection resumes the session ([MQTT-3.1.3-9]: a new connection to the session
/// within the delay), and published at once when the new connection starts clean (the session
/// ends, which comes before the delay).
#[test]
fn v5_delayed_will_on_takeover_cancelled_by_resume_published_by_clean_start_mqtt_3_1_3_9() {
    for clean in [false, true] {
        let mut sim = Sim::new(3);
        let watcher = subscriber(
            &mut sim,
            0,
            ProtocolVersion::V5,
            "w",
            "will/#",
            QoS::AtMostOnce,
        );
        let old = delayed_will_client(&mut sim, 1, "twice", 5, 60);
        let mut c = persistent(ProtocolVersion::V5, "twice", 60);
        c.clean_start = clean;
        let (_, ack) = sim.connect_ok(2, c);
        assert_eq!(ack.session_present, !clean);
        assert!(sim.is_closed(old));
        let want = if clean {
            vec![b"late".to_vec()]
        } else {
            vec![]
        };
        assert_eq!(payloads(&sim.recv(watcher)), want, "clean start {clean}");
        sim.advance(secs(6.0));
        assert!(
            sim.recv(watcher).is_empty(),
            "clean start {clean}: once at most"
        );
    }
}
