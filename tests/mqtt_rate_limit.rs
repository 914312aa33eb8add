//! The publish rate limit is per client, not per connection: a client that reconnects (clean
//! start or not) or takes its own session over in a loop gets no fresh burst, under either
//! policy; and a PUBLISH before the client is attached (as its first packet, or during an
//! enhanced authentication exchange) is refused as the protocol error it is, whatever the rate,
//! never silently dropped by the rate check.
//!
//! Owns: nothing but tests. Must not touch: the broker beyond its public API.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::scene::*;
use common::*;
use picomq::auth::passwd::PasswordHash;
use picomq::config::RateLimitPolicy;
use picomq::protocol::{Packet, ProtocolVersion, QoS, ReasonCode};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;
/// Messages a second allowed (and the burst).
const RATE: u32 = 5;
/// Connections made by each loop.
const ROUNDS: usize = 20;

/// How a looping client comes back.
#[derive(Clone, Copy, Debug)]
enum Comeback {
    /// DISCONNECT, then a new connection with a clean start (the session ends each time).
    CleanStart,
    /// A new connection while the old one is still open, keeping the session (3.1.1 clean
    /// session 0): a takeover.
    Takeover,
}

/// Connects `id` again the way `how` says; the previous connection (if any) goes as it says.
fn comeback(addr: std::net::SocketAddr, v: ProtocolVersion, id: &str, how: Comeback) -> Client {
    match how {
        Comeback::CleanStart => Client::connect(addr, v, id),
        Comeback::Takeover => Client::connect_v311(addr, id, false, 60),
    }
}

#[test]
fn reconnecting_in_a_loop_gets_no_fresh_burst_under_the_disconnect_policy() {
    with_deadline(Duration::from_secs(60), || {
        for (v, how) in [
            (V5, Comeback::CleanStart),
            (V311, Comeback::CleanStart),
            (V311, Comeback::Takeover),
        ] {
            let scene = Scene::new(v, |c| {
                c.mqtt.limits.publish_rate = RATE;
                c.mqtt.limits.rate_limit_policy = RateLimitPolicy::Disconnect;
            });
            let start = Instant::now();
            let (mut acked, mut refused) = (0usize, 0usize);
            let mut previous = None;
            for round in 0..ROUNDS {
                let mut c = comeback(scene.addr(), v, "looper", how);
                // The old connection of a takeover is closed by the broker; keep it until now.
                drop(previous.take());
                let p = publish_packet("loop/t", b"m", QoS::AtLeastOnce, false, 1);
                c.send(&Packet::Publish(p));
                match c.recv(Duration::from_secs(5)) {
                    Recv::Packet(Packet::PubAck(_)) => acked += 1,
                    // 0x96 (v5) then close, or a plain close (3.1.1).
                    Recv::Packet(Packet::Disconnect(_)) | Recv::Closed => refused += 1,
                    other => panic!("{v:?} {how:?} round {round}: unexpected {other:?}"),
                }
                match how {
                    Comeback::CleanStart => drop(c),
                    Comeback::Takeover => previous = Some(c),
                }
            }
            let took = start.elapsed().as_secs_f64();
            let allowed = RATE as usize + (took * f64::from(RATE)).ceil() as usize + 1;
            assert!(
                acked <= allowed,
                "{v:?} {how:?}: {acked} acknowledged in {took:.2}s at {RATE}/s (allowed {allowed})"
            );
            assert!(refused >= 1, "{v:?} {how:?}: never refused");
            assert_eq!(acked + refused, ROUNDS);
            scene.assert_others_unaffected();
        }
    });
}

#[test]
fn reconnecting_in_a_loop_is_still_throttled() {
    with_deadline(Duration::from_secs(60), || {
        let scene = Scene::new(V311, |c| c.mqtt.limits.publish_rate = RATE);
        let mut sub = scene.client("loop-sub");
        sub.sub_ok(1, "loop/t", QoS::AtLeastOnce);
        // 15 messages at 5/s with a burst of 5 need about 2 s, however many connections carry
        // them. Each connection is left open and taken over by the next (a throttled
        // connection's DISCONNECT would wait behind the throttle).
        let n = 15;
        let start = Instant::now();
        let mut previous = None;
        for round in 0..n {
            let mut c = Client::connect_v311(scene.addr(), "looper", true, 60);
            drop(previous.take());
            c.send(&Packet::Publish(publish_packet(
                "loop/t",
                b"m",
                QoS::AtLeastOnce,
                false,
                1,
            )));
            match c.recv(Duration::from_secs(5)) {
                Recv::Packet(Packet::PubAck(_)) => {}
                other => panic!("round {round}: expected PUBACK, got {other:?}"),
            }
            previous = Some(c);
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1500),
            "{n} at {RATE}/s over {n} connections took {took:?}"
        );
        assert!(took < Duration::from_secs(20), "took {took:?}");
        assert_eq!(sub.collect_publishes(n).len(), n, "nothing lost");
        drop(previous);
        scene.assert_others_unaffected();
    });
}

#[test]
fn publish_before_connect_is_closed_at_once_whatever_the_rate() {
    with_deadline(Duration::from_secs(40), || {
        for policy in [RateLimitPolicy::Disconnect, RateLimitPolicy::Throttle] {
            for v in [V311, V5] {
                // A rate far below the packet (possible only in a programmatic config) and a
                // long connect timeout: the close must come from the protocol error.
                let scene = Scene::new(v, |c| {
                    c.mqtt.limits.publish_rate = 1;
                    c.mqtt.limits.publish_bytes_rate = 1000;
                    c.mqtt.limits.rate_limit_policy = policy;
                    c.mqtt.connect_timeout = Duration::from_secs(30);
                });
                let mut c = Client::tcp(scene.addr(), v);
                let p = publish_packet("early/t", &[b'x'; 2000], QoS::AtLeastOnce, false, 1);
                c.send(&Packet::Publish(p));
                c.expect_closed_within(Duration::from_secs(3));
                scene.assert_others_unaffected();
            }
        }
    });
}

#[test]
fn publish_during_enhanced_auth_is_a_protocol_error_not_a_rate_drop() {
    with_deadline(Duration::from_secs(40), || {
        let dir = std::env::temp_dir().join(format!("picomq-rate-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let pw = dir.join("passwd");
        let hash = PasswordHash::pbkdf2(b"wonderland", [5; 12], 101).encode();
        std::fs::write(&pw, format!("alice:{hash}\n")).expect("passwd");
        let b = TestBroker::start_with(move |c| {
            c.auth.password_file = Some(pw);
            c.auth.allow_anonymous = true;
            c.auth.methods = vec!["SCRAM-SHA-512".to_owned()];
            c.auth.acl_file = None;
            c.mqtt.limits.publish_bytes_rate = 1000;
            c.mqtt.limits.rate_limit_policy = RateLimitPolicy::Disconnect;
            c.mqtt.connect_timeout = Duration::from_secs(30);
        });
        let mut connect = connect_packet(V5, "mid-auth", true, 30);
        connect.properties.authentication_method = Some("SCRAM-SHA-512".to_owned());
        let first = "n,,n=alice,r=0123456789abcdefghijklmn";
        connect.properties.authentication_data = Some(Bytes::from_static(first.as_bytes()));
        let mut c = Client::tcp(b.addr, V5);
        c.send(&Packet::Connect(Box::new(connect)));
        match c.expect_packet() {
            Packet::Auth(a) => assert_eq!(a.reason, ReasonCode::CONTINUE_AUTHENTICATION),
            other => panic!("expected AUTH 0x18, got {other:?}"),
        }
        // Over a second's worth of bytes: the old per-connection check dropped it unanswered.
        let p = publish_packet("mid/t", &[b'x'; 2000], QoS::AtLeastOnce, false, 1);
        c.send(&Packet::Publish(p));
        match c.recv(Duration::from_secs(3)) {
            Recv::Packet(Packet::ConnAck(ack)) => {
                assert_eq!(ack.reason, ReasonCode::PROTOCOL_ERROR)
            }
            other => panic!("expected CONNACK 0x82, got {other:?}"),
        }
        c.expect_closed_within(Duration::from_secs(3));
        assert_broker_healthy(b.addr, V5, "after-mid-auth");
        let _ = std::fs::remove_dir_all(dir);
    });
}
