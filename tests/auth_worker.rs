//! Password checks off the I/O thread, over loopback: a flood of CONNECTs with wrong or unknown
//! user names, checked against a slow PBKDF2 entry, does not stall a client already connected to
//! the same (only) I/O thread; what the password worker's queue has no room for is refused with
//! 0x89 Server busy (3.1.1: return code 3) and counted under `$SYS/broker/clients/refused/busy`;
//! afterwards the right password still connects and wrong ones get the usual codes. Input sent
//! right behind a CONNECT waits for the verdict and is then served in order.
//!
//! Round-trip times under a flood are measured by `benches/auth_flood.rs`, not here: this only
//! counts answers.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use picomq::auth::passwd::PasswordHash;
use picomq::net::auth_worker::AUTH_QUEUE;
use picomq::protocol::{Packet, ProtocolVersion, QoS, ReasonCode};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// How long one password check should take in this build on this machine. Checked inline, the
/// flood below would hold the I/O thread for `FLOOD` times this (over 10 s), far past the time a
/// bystander's ping may wait ([`WAIT`]).
const CHECK_TIME: Duration = Duration::from_millis(40);
/// CONNECTs sent at once: well past what the worker's queue holds.
const FLOOD: usize = AUTH_QUEUE + 200;
/// Threads sending them (each with FLOOD / FLOOD_THREADS sockets).
const FLOOD_THREADS: usize = 8;
/// How long a flooding client waits for its CONNACK: the accepted checks run one after another.
const FLOOD_WAIT: Duration = Duration::from_secs(30);

/// PBKDF2 rounds for which one check takes about [`CHECK_TIME`] here (debug builds hash many
/// times slower than release ones, and machines differ).
fn calibrated_rounds() -> u32 {
    let probe = 2_000u32;
    let start = Instant::now();
    PasswordHash::pbkdf2(b"probe", [3; 12], probe);
    let per_round = start.elapsed().as_nanos() / u128::from(probe);
    let rounds = CHECK_TIME.as_nanos() / per_round.max(1);
    rounds.clamp(1_000, 10_000_000) as u32
}

/// A password file with alice/wonderland hashed with `rounds` PBKDF2 rounds (unknown users are
/// checked against a decoy with as many), in a fresh temporary directory.
fn password_file(name: &str, rounds: u32) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("picomq-auth-worker-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let hash = PasswordHash::pbkdf2(b"wonderland", [9; 12], rounds).encode();
    let path = dir.join("passwd");
    std::fs::write(&path, format!("alice:{hash}\n")).expect("passwd");
    path
}

/// One I/O thread (so the bystander shares it with the flood), a password file, anonymous
/// clients allowed (the bystander is one: decided inline), `$SYS` every second.
fn broker(passwd: PathBuf) -> TestBroker {
    TestBroker::start_with(move |cfg| {
        cfg.io_threads = 1;
        cfg.auth.password_file = Some(passwd);
        cfg.auth.allow_anonymous = true;
        cfg.sys.interval = Some(Duration::from_secs(1));
    })
}

fn login(b: &TestBroker, v: ProtocolVersion, id: &str, user: &str, pw: &[u8]) -> ReasonCode {
    let mut c = connect_packet(v, id, true, 60);
    c.username = Some(user.to_owned());
    c.password = Some(Bytes::copy_from_slice(pw));
    Client::handshake(b.addr, c).1.reason
}

/// CONNACK codes the flood got: Server busy and Bad user name or password, by protocol.
#[derive(Debug, Default)]
struct Tally {
    busy: usize,
    bad: usize,
}

/// Sends `count` CONNECTs from one thread's sockets, all at once after `start`: every other one
/// 3.1.1, alternately an unknown user and alice with a wrong password; returns their CONNACKs.
fn flood_part(addr: std::net::SocketAddr, part: usize, count: usize, start: &Barrier) -> Tally {
    let mut clients = Vec::new();
    let mut bytes = Vec::new();
    for i in 0..count {
        let v = if i % 2 == 0 { V5 } else { V311 };
        let mut c = connect_packet(v, &format!("flood-{part}-{i}"), true, 60);
        let user = if i % 4 < 2 {
            format!("nobody-{i}")
        } else {
            "alice".into()
        };
        c.username = Some(user);
        c.password = Some(Bytes::from_static(b"guess"));
        bytes.push(encode(&Packet::Connect(Box::new(c)), v));
        clients.push(Client::tcp(addr, v));
    }
    start.wait();
    for (c, b) in clients.iter_mut().zip(&bytes) {
        c.send_raw(b);
    }
    let mut tally = Tally::default();
    for mut c in clients {
        let ack = match c.recv(FLOOD_WAIT) {
            Recv::Packet(Packet::ConnAck(ack)) => ack,
            other => panic!("flood client: expected a CONNACK, got {other:?}"),
        };
        let (busy, bad) = match c.version {
            V5 => (
                ack.reason == ReasonCode::SERVER_BUSY,
                ack.reason == ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            ),
            _ => (
                ack.reason.to_v3_connack() == 3,
                ack.reason.to_v3_connack() == 4,
            ),
        };
        assert!(
            busy || bad,
            "unexpected CONNACK {:?} ({:?})",
            ack.reason,
            c.version
        );
        tally.busy += usize::from(busy);
        tally.bad += usize::from(bad);
        c.expect_closed_within(FLOOD_WAIT);
    }
    tally
}

#[test]
fn a_login_flood_does_not_stall_a_connected_client_and_overflow_is_refused_as_busy() {
    with_deadline(Duration::from_secs(120), || {
        let rounds = calibrated_rounds();
        let b = broker(password_file("flood", rounds));
        let mut bystander = Client::connect_v5_ok(b.addr, "bystander", true, 60);
        let start = Arc::new(Barrier::new(FLOOD_THREADS));
        let done = Arc::new(AtomicBool::new(false));
        let per_thread = FLOOD / FLOOD_THREADS + 1;
        let flooders: Vec<_> = (0..FLOOD_THREADS)
            .map(|part| {
                let (addr, start) = (b.addr, start.clone());
                thread::spawn(move || flood_part(addr, part, per_thread, &start))
            })
            .collect();
        let watcher = {
            let done = done.clone();
            let handles = flooders;
            thread::spawn(move || {
                let tallies: Vec<Tally> = handles
                    .into_iter()
                    .map(|h| h.join().expect("flood"))
                    .collect();
                done.store(true, Ordering::Release);
                tallies
            })
        };
        // Every ping is answered (within WAIT each) while the flood is being checked.
        let mut pings = 0u32;
        while !done.load(Ordering::Acquire) || pings < 20 {
            bystander.ping();
            pings += 1;
            assert!(pings < 100_000, "bounded");
            thread::sleep(Duration::from_millis(2));
        }
        let tallies = watcher.join().expect("flood threads");
        let busy: usize = tallies.iter().map(|t| t.busy).sum();
        let bad: usize = tallies.iter().map(|t| t.bad).sum();
        eprintln!(
            "{rounds} rounds: {pings} pings answered; flood of {}: {busy} busy, {bad} checked",
            busy + bad
        );
        assert_eq!(busy + bad, per_thread * FLOOD_THREADS);
        assert!(
            busy > 0,
            "a flood past the queue ({AUTH_QUEUE}) is refused as busy"
        );
        assert!(bad > 0, "the queue's jobs were checked");
        // The refusals are counted: `$SYS` catches up within a refresh or two.
        bystander.subscribe(1, &[("$SYS/broker/clients/refused/busy", QoS::AtMostOnce)]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = bystander.expect_publish_within(left);
            if got.payload == busy.to_string().as_bytes() {
                break;
            }
        }
        // Afterwards: the right password connects, wrong ones get the usual codes.
        assert_eq!(
            login(&b, V5, "a1", "alice", b"wonderland"),
            ReasonCode::SUCCESS
        );
        assert_eq!(
            login(&b, V311, "a2", "alice", b"wonderland"),
            ReasonCode::SUCCESS
        );
        let bad_login = ReasonCode::BAD_USER_NAME_OR_PASSWORD;
        assert_eq!(login(&b, V5, "a3", "alice", b"wrong"), bad_login);
        assert_eq!(login(&b, V5, "a4", "mallory", b"wrong"), bad_login);
        assert_eq!(login(&b, V311, "a5", "alice", b"wrong").to_v3_connack(), 4);
        assert_eq!(login(&b, V311, "a6", "mallory", b"x").to_v3_connack(), 4);
        bystander.ping();
        b.shutdown();
    });
}

#[test]
fn packets_right_behind_a_connect_wait_for_its_verdict_and_are_served_in_order() {
    with_deadline(Duration::from_secs(60), || {
        let b = broker(password_file("behind", calibrated_rounds()));
        for v in [V5, V311] {
            let mut c = connect_packet(v, &format!("behind-{v:?}"), true, 60);
            c.username = Some("alice".into());
            c.password = Some(Bytes::from_static(b"wonderland"));
            let sub = Packet::Subscribe(picomq::protocol::Subscribe {
                packet_id: 7,
                filters: vec![("t/#".into(), sub_opts(QoS::AtMostOnce))],
                properties: Default::default(),
            });
            let mut bytes = encode(&Packet::Connect(Box::new(c)), v);
            bytes.extend(encode(&sub, v));
            bytes.extend(encode(&Packet::PingReq, v));
            let mut client = Client::tcp(b.addr, v);
            client.send_raw(&bytes);
            assert_eq!(client.expect_connack().reason, ReasonCode::SUCCESS, "{v:?}");
            assert_eq!(client.expect_suback(7).reasons.len(), 1);
            client.expect_pingresp();
        }
        b.shutdown();
    });
}
