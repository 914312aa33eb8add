//! Will messages over real loopback sockets, for MQTT 3.1.1 and 5.0: published when the socket is
//! dropped without DISCONNECT and when the keep-alive expires, not after a normal DISCONNECT,
//! published after a v5 DISCONNECT with reason 0x04, with its QoS and RETAIN flag honoured, and
//! the v5 Will Delay Interval against session expiry and takeovers.

mod common;

use std::time::{Duration, Instant};

use common::*;
use picomq::protocol::{Disconnect, Packet, ProtocolVersion, QoS, ReasonCode};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// Connects `id` with a will on `topic` (QoS 1, not retained) and the given keep-alive.
fn connect_with_will(
    b: &TestBroker,
    version: ProtocolVersion,
    id: &str,
    topic: &str,
    keep_alive: u16,
) -> Client {
    let mut c = connect_packet(version, id, true, keep_alive);
    c.will = Some(will(
        topic,
        format!("{id} is gone").as_bytes(),
        QoS::AtLeastOnce,
        false,
    ));
    let (client, ack) = Client::handshake(b.addr, c);
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    client
}

/// A client subscribed to `will/#` at QoS 2.
fn watcher(b: &TestBroker, version: ProtocolVersion, id: &str) -> Client {
    let mut w = Client::connect(b.addr, version, id);
    w.sub_ok(1, "will/#", QoS::ExactlyOnce);
    w
}

fn will_on_dropped_socket(version: ProtocolVersion) {
    let b = TestBroker::start();
    let mut w = watcher(&b, version, "watcher");
    let c = connect_with_will(&b, version, "dropper", "will/dropper", 60);
    drop(c);
    let p = w.expect_publish_acked();
    assert_publish(&p, "will/dropper", b"dropper is gone", QoS::AtLeastOnce);
    assert!(!p.retain);
    w.expect_nothing(QUIET);
}

#[test]
fn mqtt_3_1_2_8_will_published_when_socket_dropped_v311() {
    with_deadline(Duration::from_secs(20), || will_on_dropped_socket(V311));
}

#[test]
fn mqtt_3_1_2_8_will_published_when_socket_dropped_v5() {
    with_deadline(Duration::from_secs(20), || will_on_dropped_socket(V5));
}

fn will_on_keep_alive_timeout(version: ProtocolVersion) {
    let b = TestBroker::start();
    let mut w = watcher(&b, version, "ka-watcher");
    let started = Instant::now();
    // Connected and silent, socket left open.
    let _silent = connect_with_will(&b, version, "sleeper", "will/sleeper", 1);
    let p = w.expect_publish_within(Duration::from_secs(4));
    let elapsed = started.elapsed();
    w.ack(&p);
    assert_publish(&p, "will/sleeper", b"sleeper is gone", QoS::AtLeastOnce);
    assert!(
        elapsed >= Duration::from_millis(1400),
        "will published after {elapsed:?}, before 1.5 x keep-alive"
    );
    assert!(
        elapsed <= Duration::from_millis(2600),
        "will published only after {elapsed:?}"
    );
    w.expect_nothing(QUIET);
}

#[test]
fn mqtt_3_1_2_8_will_published_on_keep_alive_timeout_v311() {
    with_deadline(Duration::from_secs(20), || will_on_keep_alive_timeout(V311));
}

#[test]
fn mqtt_3_1_2_8_will_published_on_keep_alive_timeout_v5() {
    with_deadline(Duration::from_secs(20), || will_on_keep_alive_timeout(V5));
}

fn no_will_after_disconnect(version: ProtocolVersion) {
    let b = TestBroker::start();
    let mut w = watcher(&b, version, "nd-watcher");
    let c = connect_with_will(&b, version, "polite", "will/polite", 60);
    c.disconnect();
    // And a second one that sends DISCONNECT and drops the socket at once.
    let mut c = connect_with_will(&b, version, "polite2", "will/polite2", 60);
    c.send(&Packet::Disconnect(Disconnect::default()));
    drop(c);
    w.expect_nothing(Duration::from_millis(700));
    // The watcher itself is fine and the broker still routes to it.
    let mut p = Client::connect(b.addr, version, "nd-pub");
    p.publish("will/check", b"routed", QoS::AtLeastOnce, false, 1);
    assert_publish(
        &w.expect_publish_acked(),
        "will/check",
        b"routed",
        QoS::AtLeastOnce,
    );
}

#[test]
fn mqtt_3_1_2_10_no_will_after_normal_disconnect_v311() {
    with_deadline(Duration::from_secs(20), || no_will_after_disconnect(V311));
}

#[test]
fn mqtt_3_14_4_3_no_will_after_normal_disconnect_v5() {
    with_deadline(Duration::from_secs(20), || no_will_after_disconnect(V5));
}

#[test]
fn mqtt_3_14_2_1_v5_disconnect_with_will_message_0x04_publishes_will() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut w = watcher(&b, V5, "dww-watcher");
        let mut c = connect_with_will(&b, V5, "leaver", "will/leaver", 60);
        c.send(&Packet::Disconnect(Disconnect {
            reason: ReasonCode::DISCONNECT_WITH_WILL,
            ..Disconnect::default()
        }));
        c.expect_closed();
        let p = w.expect_publish_acked();
        assert_publish(&p, "will/leaver", b"leaver is gone", QoS::AtLeastOnce);
        w.expect_nothing(QUIET);
    });
}

fn will_qos_and_retain(version: ProtocolVersion) {
    let b = TestBroker::start();
    let mut w1 = Client::connect(b.addr, version, "wq-watcher-1");
    w1.sub_ok(1, "will/#", QoS::AtLeastOnce);
    let mut w2 = Client::connect(b.addr, version, "wq-watcher-2");
    w2.sub_ok(1, "will/#", QoS::ExactlyOnce);
    let mut conn = connect_packet(version, "wq", true, 60);
    conn.will = Some(will("will/wq", b"last words", QoS::ExactlyOnce, true));
    let (c, ack) = Client::handshake(b.addr, conn);
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    drop(c);
    // Will QoS 2: min(2, granted) for each subscriber.
    let p1 = w1.expect_publish_acked();
    assert_publish(&p1, "will/wq", b"last words", QoS::AtLeastOnce);
    let p2 = w2.expect_publish_acked();
    assert_publish(&p2, "will/wq", b"last words", QoS::ExactlyOnce);
    // Will retain: stored as the retained message of the topic.
    let mut late = Client::connect(b.addr, version, "wq-late");
    late.sub_ok(1, "will/wq", QoS::ExactlyOnce);
    let r = late.expect_publish_acked();
    assert_publish(&r, "will/wq", b"last words", QoS::ExactlyOnce);
    assert!(r.retain, "retained will delivered with RETAIN=1");
}

#[test]
fn mqtt_3_1_2_17_will_qos_and_retain_honoured_v311() {
    with_deadline(Duration::from_secs(20), || will_qos_and_retain(V311));
}

#[test]
fn mqtt_3_1_2_17_will_qos_and_retain_honoured_v5() {
    with_deadline(Duration::from_secs(20), || will_qos_and_retain(V5));
}

#[test]
fn will_published_when_broker_closes_a_violating_client() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        for version in [V311, V5] {
            let mut w = watcher(&b, version, &format!("viol-watcher-{version:?}"));
            let id = format!("violator-{version:?}");
            let mut c = connect_with_will(&b, version, &id, &format!("will/{id}"), 60);
            // PUBLISH QoS 3: malformed.
            c.send_raw(&[0x36, 0x05, 0x00, 0x01, b'x', 0x00, 0x01]);
            c.expect_disconnect(ReasonCode::MALFORMED_PACKET);
            let p = w.expect_publish_acked();
            let want = format!("{id} is gone");
            assert_publish(&p, &format!("will/{id}"), want.as_bytes(), QoS::AtLeastOnce);
        }
    });
}

/// v5 CONNECT with a will on `will/{id}` (delay `delay` s) and session expiry `expiry` s.
fn v5_delayed_will(b: &TestBroker, id: &str, clean: bool, delay: u32, expiry: u32) -> Client {
    let mut c = connect_packet(V5, id, clean, 60);
    c.properties.session_expiry_interval = Some(expiry);
    let mut w = will(&format!("will/{id}"), b"delayed", QoS::AtLeastOnce, false);
    w.properties.will_delay_interval = Some(delay);
    c.will = Some(w);
    let (client, ack) = Client::handshake(b.addr, c);
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    client
}

#[test]
fn mqtt_3_1_3_2_will_delay_longer_than_session_expiry_fires_at_session_end() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut w = watcher(&b, V5, "wdx-watcher");
        // Delay 30 s, session expiry 1 s: the session ends first, and the will goes with it.
        let c = v5_delayed_will(&b, "short-session", false, 30, 1);
        let dropped = Instant::now();
        drop(c);
        let p = w.expect_publish_within(Duration::from_secs(4));
        w.ack(&p);
        let after = dropped.elapsed();
        assert_publish(&p, "will/short-session", b"delayed", QoS::AtLeastOnce);
        assert!(
            (Duration::from_millis(900)..=Duration::from_millis(2600)).contains(&after),
            "will published {after:?} after the drop; the session expired after 1 s"
        );
        // Session expiry 0: the session ends with the connection, so the will is immediate.
        let c = v5_delayed_will(&b, "no-session", true, 30, 0);
        drop(c);
        let p = w.expect_publish_within(Duration::from_millis(800));
        w.ack(&p);
        assert_publish(&p, "will/no-session", b"delayed", QoS::AtLeastOnce);
    });
}

#[test]
fn mqtt_3_1_3_9_takeover_within_will_delay_sends_no_will_but_clean_takeover_does() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut w = watcher(&b, V5, "wdt-watcher");
        // Resumed by a new connection before the delay: no will.
        let mut old = v5_delayed_will(&b, "resumed", false, 1, 60);
        let _new = v5_delayed_will(&b, "resumed", false, 1, 60);
        old.expect_disconnect(ReasonCode::SESSION_TAKEN_OVER);
        w.expect_nothing(Duration::from_millis(1600));
        // Taken over with Clean Start: the old session ends, so its will is published.
        let mut old = v5_delayed_will(&b, "replaced", false, 5, 60);
        let _new = v5_delayed_will(&b, "replaced", true, 5, 60);
        old.expect_disconnect(ReasonCode::SESSION_TAKEN_OVER);
        let p = w.expect_publish_within(Duration::from_secs(2));
        w.ack(&p);
        assert_publish(&p, "will/replaced", b"delayed", QoS::AtLeastOnce);
        w.expect_nothing(QUIET);
    });
}
