//! A loopback flood in both directions at once across three I/O threads and three router shards,
//! for the back-pressure between threads (`broker/routing.rs`): the router channels are bounded and
//! never blocked on, a thread whose batches wait stops reading PUBLISH packets, and no cycle of
//! full channels can deadlock.
//!
//! Six publishers (two sessions per I/O thread, 3.1.1 and 5.0) each publish `MESSAGES` QoS 1
//! messages as fast as their inflight window allows to a topic of their own whose shard lives on
//! another thread; six subscribers (two per thread, wildcard and literal, two of them slow) each
//! receive everything. So every message crosses threads from publisher to shard and from shard to
//! most subscribers, while every thread publishes and delivers at once. Subscribers' queues are
//! sized for the whole flood: the full-queue policy drops by design and is not under test here.
//!
//! Asserted: everything finishes within the deadline (no deadlock), each subscriber gets every
//! message exactly once (there are no reconnects, so no DUP), and each publisher's order holds.
//!
//! What this cannot force: a full channel. With 64 command batches per thread, a receiver taking
//! 16 per turn and one batch per destination per sender turn, the channels did not fill on a
//! 2-core machine even with the 3.1.1 publishers not waiting for PUBACKs (`RUST_LOG=
//! picomq::broker::routing=debug` logs "router batches wait for room" when one does). The
//! full-channel case itself is covered deterministically by the virtual-clock simulation
//! (`broker::sim`, channels of one batch).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::*;
use picomq::broker::owner_thread;
use picomq::broker::routing::shard_owner;
use picomq::protocol::decode::decode_packet;
use picomq::protocol::encode::encode_packet;
use picomq::protocol::{Packet, ProtocolVersion, PubResponse, QoS, Subscribe};
use picomq::router::shard::shard_of_topic;

const THREADS: usize = 3;
const PUBLISHERS: usize = 6;
const SUBSCRIBERS: usize = 6;
/// QoS 1 messages per publisher.
const MESSAGES: usize = 20_000;
/// A slow subscriber pauses every this many messages...
const SLOW_EVERY: usize = 10_000;
/// ... for this long.
const SLOW_PAUSE: Duration = Duration::from_millis(50);
/// Unacknowledged QoS 1 PUBLISH packets a publisher keeps in flight: the broker's Receive
/// Maximum (64 by default), which a 5.0 client must respect.
const WINDOW: usize = 64;
/// How long a socket read may wait before the test calls the broker stuck.
const STALL: Duration = Duration::from_secs(10);

/// The first id `{prefix}{n}` whose sessions live on I/O thread `t`.
fn client_id_on(prefix: &str, t: usize) -> String {
    (0..10_000)
        .map(|n| format!("{prefix}{n}"))
        .find(|id| owner_thread(id, THREADS) == t)
        .expect("an id for every thread")
}

/// The `n`-th topic `flood/{k}/x` whose shard lives on I/O thread `t`.
fn topic_on(t: usize, n: usize) -> String {
    (0..10_000)
        .map(|k| format!("flood/{k}/x"))
        .filter(|topic| shard_owner(shard_of_topic(topic, THREADS), THREADS) == t)
        .nth(n)
        .expect("a topic for every thread")
}

/// A connected, accepted client socket (CONNACK read).
fn connect(addr: SocketAddr, version: ProtocolVersion, id: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(STALL)).expect("read timeout");
    s.set_write_timeout(Some(STALL)).expect("write timeout");
    let connect = connect_packet(version, id, true, 0);
    s.write_all(&encode(&Packet::Connect(Box::new(connect)), version))
        .expect("send CONNECT");
    let mut reader = Reader::new(s.try_clone().expect("clone"), version);
    match reader.next() {
        Packet::ConnAck(a) => assert!(!a.reason.is_error(), "{id}: {a:?}"),
        other => panic!("{id}: expected CONNACK, got {other:?}"),
    }
    assert!(reader.buf.is_empty());
    s
}

/// Decodes packets from a socket, failing the test on EOF or a stall.
struct Reader {
    s: TcpStream,
    version: ProtocolVersion,
    buf: BytesMut,
}

impl Reader {
    fn new(s: TcpStream, version: ProtocolVersion) -> Reader {
        Reader {
            s,
            version,
            buf: BytesMut::new(),
        }
    }

    /// The next packet, reading as needed.
    fn next(&mut self) -> Packet {
        loop {
            if let Some(p) = self.decoded() {
                return p;
            }
            self.fill();
        }
    }

    /// The next packet already buffered, if any.
    fn decoded(&mut self) -> Option<Packet> {
        decode_packet(&mut self.buf, Some(self.version), u32::MAX).expect("valid packet")
    }

    /// One socket read into the buffer.
    fn fill(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        match self.s.read(&mut chunk) {
            Ok(0) => panic!("broker closed the connection"),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("no progress for {STALL:?} ({e}): broker stuck?"),
        }
    }
}

/// Publisher `index`: writes its messages with at most [`WINDOW`] unacknowledged, while its
/// reader thread counts the PUBACKs (in order, as [MQTT-4.6.0-2] requires).
fn publish_all(addr: SocketAddr, index: usize, version: ProtocolVersion, topic: String) {
    let id = client_id_on(&format!("pub{index}-"), index % THREADS);
    let mut s = connect(addr, version, &id);
    // 3.1.1 has no Receive Maximum: those publishers do not wait for PUBACKs at all, so the
    // broker reads their PUBLISH packets as fast as it can and the router batches grow.
    let window = match version {
        ProtocolVersion::V5 => WINDOW,
        _ => MESSAGES,
    };
    let (slots, freed) = sync_channel::<()>(window);
    let mut reader = Reader::new(s.try_clone().expect("clone"), version);
    let acks = thread::spawn(move || {
        for seq in 0..MESSAGES {
            match reader.next() {
                Packet::PubAck(a) => {
                    assert_eq!(a.packet_id, packet_id(seq), "PUBACKs in order");
                    assert!(!a.reason.is_error(), "{a:?}");
                }
                other => panic!("publisher expected PUBACK, got {other:?}"),
            }
            freed.recv().expect("writer alive");
        }
    });
    let mut out = BytesMut::new();
    for seq in 0..MESSAGES {
        if let Err(TrySendError::Full(())) = slots.try_send(()) {
            // Window full: what is buffered goes out before waiting for a PUBACK.
            s.write_all(&out).expect("write");
            out.clear();
            slots.send(()).expect("reader alive");
        }
        let payload = Bytes::from(format!("{index}:{seq}"));
        let mut p = publish_packet(&topic, &[], QoS::AtLeastOnce, false, packet_id(seq));
        p.payload = payload;
        encode_packet(&Packet::Publish(p), version, &mut out);
    }
    s.write_all(&out).expect("write");
    acks.join().expect("publisher's PUBACK reader");
}

/// Packet identifier of message `seq` (1..=65535, never 0).
fn packet_id(seq: usize) -> u16 {
    (seq % 65_535 + 1) as u16
}

/// Subscriber `index`: subscribes to `filters`, says so on `subscribed`, then takes every message, acknowledging each, and
/// checks exactly-once and per-publisher order. Returns how many it got.
fn receive_all(
    addr: SocketAddr,
    index: usize,
    version: ProtocolVersion,
    filters: Vec<String>,
    slow: bool,
    subscribed: SyncSender<()>,
) -> usize {
    let id = client_id_on(&format!("sub{index}-"), index % THREADS);
    let mut s = connect(addr, version, &id);
    let sub = Subscribe {
        packet_id: 1,
        filters: filters
            .iter()
            .map(|f| (f.clone(), sub_opts(QoS::AtLeastOnce)))
            .collect(),
        properties: Default::default(),
    };
    s.write_all(&encode(&Packet::Subscribe(sub), version))
        .expect("SUBSCRIBE");
    let mut reader = Reader::new(s.try_clone().expect("clone"), version);
    match reader.next() {
        Packet::SubAck(a) => assert!(a.reasons.iter().all(|r| !r.is_error()), "{a:?}"),
        other => panic!("expected SUBACK, got {other:?}"),
    }
    subscribed.send(()).expect("test waits");
    let mut next = [0usize; PUBLISHERS];
    let mut got = 0;
    let mut acks = BytesMut::new();
    while got < PUBLISHERS * MESSAGES {
        while let Some(p) = reader.decoded() {
            let Packet::Publish(p) = p else {
                panic!("subscriber {index}: unexpected {p:?}");
            };
            assert!(!p.dup, "no reconnect, so no DUP");
            let text = std::str::from_utf8(&p.payload).expect("utf-8");
            let (publisher, seq) = text.split_once(':').expect("i:seq");
            let (publisher, seq): (usize, usize) =
                (publisher.parse().unwrap(), seq.parse().unwrap());
            assert_eq!(
                seq, next[publisher],
                "subscriber {index}: publisher {publisher}'s order (or a loss)"
            );
            next[publisher] += 1;
            got += 1;
            let ack = PubResponse::ok(p.packet_id.expect("QoS 1"));
            encode_packet(&Packet::PubAck(ack), version, &mut acks);
            if slow && got % SLOW_EVERY == 0 {
                thread::sleep(SLOW_PAUSE);
            }
        }
        if !acks.is_empty() {
            s.write_all(&acks).expect("PUBACKs");
            acks.clear();
        }
        if got < PUBLISHERS * MESSAGES {
            reader.fill();
        }
    }
    got
}

/// Back-pressure between I/O threads under a flood in both directions: no deadlock, no QoS 1
/// message lost or duplicated, each publisher's order kept, within the deadline.
#[test]
fn flood_across_three_threads_neither_deadlocks_nor_loses_nor_reorders() {
    with_deadline(Duration::from_secs(60), || {
        let broker = TestBroker::start_with(|cfg| {
            cfg.io_threads = THREADS;
            cfg.router_shards = THREADS;
            cfg.mqtt.max_queued_messages = PUBLISHERS * MESSAGES;
        });
        let addr = broker.addr;
        let versions = [ProtocolVersion::V311, ProtocolVersion::V5];
        // Publisher i's session lives on thread i % 3 and its topic's shard on the next thread.
        let topics: Vec<String> = (0..PUBLISHERS)
            .map(|i| topic_on((i % THREADS + 1) % THREADS, i / THREADS))
            .collect();
        let started = Instant::now();
        let subs: Vec<_> = (0..SUBSCRIBERS)
            .map(|i| {
                let filters = match i % 2 {
                    0 => vec!["flood/#".to_owned()],
                    _ => topics.clone(),
                };
                let version = versions[i % 2];
                let slow = i == 1 || i == 4;
                let (tx, rx) = sync_channel(1);
                let t = thread::spawn(move || receive_all(addr, i, version, filters, slow, tx));
                (t, rx)
            })
            .collect();
        // Subscriptions first (SUBACK received), so every subscriber is owed every message.
        for (_, subscribed) in &subs {
            subscribed.recv_timeout(STALL).expect("SUBACK");
        }
        let pubs: Vec<_> = (0..PUBLISHERS)
            .map(|i| {
                let topic = topics[i].clone();
                let version = versions[(i / THREADS) % 2];
                thread::spawn(move || publish_all(addr, i, version, topic))
            })
            .collect();
        for p in pubs {
            p.join().expect("publisher");
        }
        for (t, _) in subs {
            assert_eq!(t.join().expect("subscriber"), PUBLISHERS * MESSAGES);
        }
        let took = started.elapsed();
        eprintln!(
            "flood: {} messages to {SUBSCRIBERS} subscribers in {took:?}",
            PUBLISHERS * MESSAGES
        );
        broker.shutdown();
    });
}
