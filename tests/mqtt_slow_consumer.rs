//! A slow consumer over real loopback sockets: one subscriber never reads while 20,000 QoS 0
//! messages of 1 KiB are published. The other subscribers (one on each I/O thread, one of them
//! sharing the slow consumer's thread) must keep receiving promptly and in order, the broker must
//! keep answering PINGREQ, and what the broker holds for the slow consumer must stay bounded: when
//! it finally reads it gets far fewer than 20,000 messages, and the process's memory stops growing.
//!
//! The publisher goes in batches of 500 and waits (at most 3 s) until both attentive subscribers
//! have the whole batch, so they are never slower than the flood; QoS 0 drops for them would then
//! only mean that the slow consumer stalls them.
//!
//! Alone in its file so that no other test shares the process while memory is measured.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use picomq::protocol::encode::encode_packet;
use picomq::protocol::{Packet, ProtocolVersion, QoS};

const V311: ProtocolVersion = ProtocolVersion::V311;
const MESSAGES: u32 = 20_000;
const PAYLOAD: usize = 1024;
const BATCH: u32 = 500;

/// Resident set size of this process in KiB, from /proc/self/status.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// What a reader thread saw.
struct Seen {
    data: u32,
    in_order: bool,
    end_after: Option<Duration>,
}

/// Reads `flood/data` messages (sequence number in the first 4 bytes) until `flood/end` arrives;
/// `progress` is the number of data messages received so far.
fn reader(mut c: Client, started: Instant, progress: Arc<AtomicU32>) -> thread::JoinHandle<Seen> {
    thread::spawn(move || {
        let mut seen = Seen {
            data: 0,
            in_order: true,
            end_after: None,
        };
        let mut last: Option<u32> = None;
        for _ in 0..=MESSAGES + 1 {
            let p = c.expect_publish_within(Duration::from_secs(20));
            if p.topic == "flood/end" {
                c.ack(&p);
                seen.end_after = Some(started.elapsed());
                break;
            }
            assert_eq!(p.topic, "flood/data");
            assert_eq!(p.payload.len(), PAYLOAD);
            let seq = u32::from_be_bytes(p.payload[..4].try_into().expect("4 bytes"));
            if last.is_some_and(|l| seq <= l) {
                seen.in_order = false;
            }
            last = Some(seq);
            seen.data += 1;
            progress.store(seen.data, Ordering::Release);
        }
        seen
    })
}

/// Waits until every attentive reader has `n` messages; fails after 3 s (a stalled subscriber).
fn wait_for(progress: &[&Arc<AtomicU32>; 2], n: u32) {
    let deadline = Instant::now() + Duration::from_secs(3);
    for _ in 0..3_000_000 {
        let counts = progress.map(|p| p.load(Ordering::Acquire));
        if counts.iter().all(|&c| c >= n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "attentive subscribers stalled: {counts:?} of {n} messages after 3 s"
        );
        thread::sleep(Duration::from_micros(200));
    }
    panic!("wait_for: loop bound reached");
}

#[test]
fn slow_consumer_does_not_stall_others_or_grow_memory_without_bound() {
    with_deadline(Duration::from_secs(60), || {
        let b = TestBroker::start();
        // Connection order fixes the I/O thread: 0 slow, 1 fast-a, 2 fast-b (with slow), 3 pub.
        let mut slow = Client::connect(b.addr, V311, "slow");
        slow.sub_ok(1, "flood/#", QoS::AtLeastOnce);
        let mut fast_a = Client::connect(b.addr, V311, "fast-a");
        fast_a.sub_ok(1, "flood/#", QoS::AtLeastOnce);
        let mut fast_b = Client::connect(b.addr, V311, "fast-b");
        fast_b.sub_ok(1, "flood/#", QoS::AtLeastOnce);
        let mut publisher = Client::connect(b.addr, V311, "flooder");
        let started = Instant::now();
        let (pa, pb) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let ra = reader(fast_a, started, pa.clone());
        let rb = reader(fast_b, started, pb.clone());

        let rss_start = rss_kib();
        let mut rss_half = 0;
        let mut worst_ping = Duration::ZERO;
        let mut batch = bytes::BytesMut::new();
        for seq in 0..MESSAGES {
            let mut payload = vec![0u8; PAYLOAD];
            payload[..4].copy_from_slice(&seq.to_be_bytes());
            let p = publish_packet("flood/data", &payload, QoS::AtMostOnce, false, 0);
            encode_packet(&Packet::Publish(p), V311, &mut batch);
            if (seq + 1) % 100 == 0 {
                publisher.send_raw(&batch);
                batch.clear();
            }
            if (seq + 1) % BATCH == 0 {
                wait_for(&[&pa, &pb], seq + 1);
            }
            if (seq + 1) % 1000 == 0 {
                // The broker keeps serving: PINGREQ answered promptly in the middle of the flood.
                let t = Instant::now();
                publisher.ping();
                worst_ping = worst_ping.max(t.elapsed());
            }
            if seq + 1 == MESSAGES / 2 {
                rss_half = rss_kib();
            }
        }
        let flood_time = started.elapsed();
        publisher.publish("flood/end", b"end", QoS::AtLeastOnce, false, 1);
        let end_published = started.elapsed();

        let a = ra.join().expect("reader a");
        let b_seen = rb.join().expect("reader b");
        let rss_end = rss_kib();
        eprintln!(
            "flood {flood_time:?}; fast-a {} msgs, fast-b {} msgs; worst ping {worst_ping:?}; \
             RSS start {rss_start} KiB, half {rss_half} KiB, end {rss_end} KiB",
            a.data, b_seen.data
        );
        for (name, s) in [("fast-a", &a), ("fast-b", &b_seen)] {
            assert!(s.in_order, "{name}: messages out of order");
            assert_eq!(
                s.data, MESSAGES,
                "{name}: a fast subscriber must get every message"
            );
            let end = s.end_after.expect("end marker");
            assert!(
                end <= end_published + Duration::from_secs(2),
                "{name}: end marker {end:?}, published at {end_published:?}"
            );
        }
        assert!(
            worst_ping < Duration::from_secs(1),
            "PINGREQ took {worst_ping:?} during the flood"
        );
        // Memory: the second half of the flood must not add what an unbounded queue would
        // (10,000 more KiB for the slow consumer alone).
        let growth = rss_end.saturating_sub(rss_half);
        assert!(
            growth < 6 * 1024,
            "RSS grew by {growth} KiB during the second half of the flood"
        );

        // The slow consumer finally reads: a bounded backlog, in order, then the end marker.
        let unused = Arc::new(AtomicU32::new(0));
        let seen = reader(slow, started, unused).join().expect("slow reader");
        eprintln!("slow consumer got {} of {MESSAGES}", seen.data);
        assert!(seen.in_order, "slow consumer: messages out of order");
        assert!(
            seen.end_after.is_some(),
            "slow consumer: QoS 1 end marker lost"
        );
        assert!(
            seen.data < MESSAGES / 2,
            "slow consumer got {} messages: the broker buffered without bound",
            seen.data
        );
        assert_broker_healthy(b.addr, V311, "after-flood");
    });
}
