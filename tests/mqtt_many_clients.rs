//! 1,000 concurrent MQTT 3.1.1 clients over real loopback sockets: each connects (keep-alive 60),
//! subscribes to its own topic and receives exactly the one message published to that topic; then
//! every client disconnects cleanly and the broker closes every connection. Bounded by time.
//! Both ends of every connection live in this process: under a soft open-files limit below what
//! 1,000 need (a default 1024), as many as fit run instead (`scripts/test.sh` raises the limit,
//! so CI runs the full 1,000), and `cargo test` alone still passes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use picomq::protocol::{Disconnect, Packet, ProtocolVersion, PubResponse, QoS, ReasonCode};

const V311: ProtocolVersion = ProtocolVersion::V311;
const MAX_CLIENTS: usize = 1000;
/// Clients handled per pipelined round: requests to all of them, then every answer.
const CHUNK: usize = 100;

/// The soft limit on open files, from /proc/self/limits.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[test]
fn up_to_a_thousand_clients_each_receive_their_own_message() {
    // Both ends of every connection live in this process, plus some spare descriptors.
    let fit = open_files_limit().map_or(MAX_CLIENTS, |limit| {
        (limit.saturating_sub(100) / 2) as usize / CHUNK * CHUNK
    });
    let clients_n = MAX_CLIENTS.min(fit);
    assert!(
        clients_n >= 4 * CHUNK,
        "open-files limit far too low for this test"
    );
    if clients_n < MAX_CLIENTS {
        eprintln!("open-files limit allows {clients_n} clients, not {MAX_CLIENTS}");
    }
    with_deadline(Duration::from_secs(60), move || {
        let started = Instant::now();
        let b = TestBroker::start();
        let mut clients: Vec<Client> = Vec::with_capacity(clients_n);
        for chunk in 0..clients_n / CHUNK {
            let range = chunk * CHUNK..(chunk + 1) * CHUNK;
            for i in range.clone() {
                let mut c = Client::tcp(b.addr, V311);
                let connect = connect_packet(V311, &format!("many-{i}"), true, 60);
                c.send(&Packet::Connect(Box::new(connect)));
                clients.push(c);
            }
            for i in range.clone() {
                let ack = clients[i].expect_connack();
                assert_eq!(ack.reason, ReasonCode::SUCCESS, "client {i} refused");
                assert!(!ack.session_present);
            }
            for i in range.clone() {
                let sub = picomq::protocol::Subscribe {
                    packet_id: 1,
                    filters: vec![(format!("many/{i}"), sub_opts(QoS::AtLeastOnce))],
                    properties: Default::default(),
                };
                clients[i].send(&Packet::Subscribe(sub));
            }
            for (i, c) in clients[range].iter_mut().enumerate() {
                let codes = c.expect_suback(1).reasons;
                assert_eq!(codes, vec![ReasonCode::GRANTED_QOS_1], "client {i}");
            }
        }
        let connected = started.elapsed();

        let mut publisher = Client::connect(b.addr, V311, "many-publisher");
        for chunk in 0..clients_n / CHUNK {
            let range = chunk * CHUNK..(chunk + 1) * CHUNK;
            for i in range.clone() {
                let p = publish_packet(
                    &format!("many/{i}"),
                    format!("for client {i}").as_bytes(),
                    QoS::AtLeastOnce,
                    false,
                    i as u16 + 1,
                );
                publisher.send(&Packet::Publish(p));
            }
            for i in range {
                publisher.expect_ack(4, i as u16 + 1);
            }
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let p = c.expect_publish();
            assert_publish(
                &p,
                &format!("many/{i}"),
                format!("for client {i}").as_bytes(),
                QoS::AtLeastOnce,
            );
            c.send(&Packet::PubAck(PubResponse::ok(p.packet_id.expect("id"))));
            // Nothing else may be queued for this client: the next packet must be PINGRESP.
            c.send(&Packet::PingReq);
        }
        for c in clients.iter_mut() {
            c.expect_pingresp();
        }
        let delivered = started.elapsed();

        for c in clients.iter_mut() {
            c.send(&Packet::Disconnect(Disconnect::default()));
        }
        for (i, c) in clients.iter_mut().enumerate() {
            match c.recv(WAIT) {
                Recv::Closed => {}
                other => panic!("client {i}: expected the broker to close, got {other:?}"),
            }
        }
        eprintln!(
            "{clients_n} clients: connected+subscribed {connected:?}, delivered {delivered:?}, \
             all closed {:?}",
            started.elapsed()
        );
        publisher.disconnect();
        b.shutdown();
    });
}
