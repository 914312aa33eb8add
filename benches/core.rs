//! Micro-benchmarks of picomq's pure core: topic matching, the subscription trie and the
//! retained store, and the codec (PUBLISH decode/encode and the per-subscriber output write).
//!
//! Owns: benchmark setup and names only; it must not test behaviour (unit tests do that) nor
//! touch I/O. Run with `cargo bench --bench core -- --warm-up-time 1 --measurement-time 2` for a
//! quick pass.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion};
use picomq::protocol::decode::decode_packet;
use picomq::protocol::encode::encode_packet;
use picomq::protocol::publish_header::PublishHeader;
use picomq::protocol::{topic, Packet, Properties, ProtocolVersion, Publish, QoS};
use picomq::router::hash::FastMap;
use picomq::router::retained::RetainedStore;
use picomq::router::trie::SubscriptionTrie;
use picomq::session::outbuf::OutBuf;

/// Number of subscriptions in the trie benches and retained messages in the store benches.
const N: u32 = 10_000;

/// A typical published topic: `site/{s}/dev/{d}/temp`.
const TYPICAL_TOPIC: &str = "site/3/dev/1235/temp";

fn bench_topic_matches(c: &mut Criterion) {
    let mut group = c.benchmark_group("topic_matches");
    let cases = [
        ("exact_hit", "site/3/dev/1235/temp", TYPICAL_TOPIC),
        ("plus_hit", "site/+/dev/+/temp", TYPICAL_TOPIC),
        (
            "hash_hit",
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking",
        ),
        ("hash_root", "#", TYPICAL_TOPIC),
        ("early_miss", "other/+/dev/#", TYPICAL_TOPIC),
        ("late_miss", "site/3/dev/1235/hum", TYPICAL_TOPIC),
    ];
    for (name, filter, t) in cases {
        group.bench_function(name, |b| {
            b.iter(|| topic::matches(black_box(filter), black_box(t)))
        });
    }
    group.finish();
}

/// 10,000 subscriptions: 70 % exact device topics, the rest wildcard variants, so the typical
/// topic matches a handful of them through `exact`, `+` and `#` paths.
fn build_trie() -> SubscriptionTrie<u32, u8> {
    let mut trie = SubscriptionTrie::new();
    for k in 0..N {
        let site = k % 16;
        let filter = match k % 10 {
            0..=6 => format!("site/{site}/dev/{k}/temp"),
            7 => format!("site/{site}/dev/{k}/#"),
            8 => format!("site/+/dev/{k}/temp"),
            _ => format!("site/{site}/+/{k}/+"),
        };
        trie.insert(&filter, k, (k % 3) as u8);
    }
    // A few broad monitoring subscriptions, as dashboards typically have.
    trie.insert("site/#", N, 0);
    trie.insert("site/+/dev/+/temp", N + 1, 1);
    trie.insert("$SYS/#", N + 2, 0);
    trie
}

fn bench_trie(c: &mut Criterion) {
    let mut group = c.benchmark_group("subscription_trie_10k");
    let mut trie = build_trie();
    let mut count = 0usize;
    trie.for_each_match(TYPICAL_TOPIC, |_, _| count += 1);
    assert!(count >= 3, "bench setup should match several subscriptions");
    group.bench_function("for_each_match_typical", |b| {
        b.iter(|| {
            let mut n = 0usize;
            trie.for_each_match(black_box(TYPICAL_TOPIC), |k, v| {
                n += k as usize + *v as usize;
            });
            n
        })
    });
    group.bench_function("for_each_match_no_subscriber", |b| {
        b.iter(|| {
            let mut n = 0usize;
            trie.for_each_match(black_box("other/3/dev/1235/temp"), |_, _| n += 1);
            n
        })
    });
    group.bench_function("insert_remove_churn", |b| {
        b.iter(|| {
            trie.insert(black_box("site/7/dev/99999/temp"), N + 10, 1);
            trie.remove(black_box("site/7/dev/99999/temp"), N + 10)
        })
    });
    group.finish();
}

/// 10,000 retained messages `{a|b|c|d}/dev{n}/{c|t}`; `a/+/c` matches 1,250 of them.
fn build_store() -> RetainedStore<u32> {
    let mut store = RetainedStore::new();
    for i in 0..N {
        let first = ["a", "b", "c", "d"][(i % 4) as usize];
        let last = ["c", "t"][((i / 4) % 2) as usize];
        store.insert(&format!("{first}/dev{}/{last}", i / 8), i);
    }
    store
}

fn bench_retained(c: &mut Criterion) {
    let mut group = c.benchmark_group("retained_store_10k");
    let store = build_store();
    for (name, filter) in [
        ("plus a/+/c", "a/+/c"),
        ("hash #", "#"),
        ("exact", "a/dev17/c"),
    ] {
        let mut count = 0usize;
        store.for_each_match(filter, |_, _| count += 1);
        assert!(count > 0, "bench setup: {filter} should match");
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0usize;
                store.for_each_match(black_box(filter), |t, v| n += t.len() + *v as usize);
                n
            })
        });
    }
    group.finish();
}

/// One trie step: looking a short level up in a node's child map, FastHasher vs std SipHash.
fn bench_level_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("level_lookup_64_children");
    let mut fast: FastMap<Box<str>, u32> = FastMap::default();
    let mut sip: std::collections::HashMap<Box<str>, u32> = std::collections::HashMap::new();
    for i in 0..64u32 {
        fast.insert(format!("dev{i}").into(), i);
        sip.insert(format!("dev{i}").into(), i);
    }
    group.bench_function("fast_hasher", |b| {
        b.iter(|| fast.get(black_box("dev42")).copied())
    });
    group.bench_function("std_siphash", |b| {
        b.iter(|| sip.get(black_box("dev42")).copied())
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Codec: decode of a typical 64-byte QoS 1 PUBLISH (v3.1.1 and v5 with a user property), and the
// per-subscriber cost of writing one shared PUBLISH into a connection's output queue.
fn publish_packet(version: ProtocolVersion) -> Packet {
    let mut properties = Properties::default();
    if version.is_v5() {
        properties.user_properties.push(("unit".into(), "C".into()));
    }
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "site/3/dev/1235/temp".into(),
        packet_id: Some(42),
        properties,
        payload: Bytes::from(vec![0x5a; 64]),
    })
}

fn bench_codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    for (name, v) in [("v311", ProtocolVersion::V311), ("v5", ProtocolVersion::V5)] {
        let packet = publish_packet(v);
        let mut wire = BytesMut::new();
        encode_packet(&packet, v, &mut wire);
        g.bench_function(format!("decode_publish_64B_{name}"), |b| {
            b.iter(|| {
                let mut buf = wire.clone();
                black_box(decode_packet(&mut buf, Some(v), u32::MAX).ok());
            })
        });
        g.bench_function(format!("encode_publish_64B_{name}"), |b| {
            let mut out = BytesMut::with_capacity(256);
            b.iter(|| {
                out.clear();
                encode_packet(black_box(&packet), v, &mut out);
            })
        });
    }
    let payload = Bytes::from(vec![0x5a; 64]);
    let none = Properties::default();
    g.bench_function("outbuf_publish_64B_per_subscriber", |b| {
        let mut out = OutBuf::new();
        b.iter(|| {
            let head = PublishHeader {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: false,
                topic: "site/3/dev/1235/temp",
                packet_id: None,
                properties: &none,
                extras: Default::default(),
            };
            out.publish(&head, &payload, ProtocolVersion::V311);
            if out.len() > 64 * 1024 {
                out.take_all();
            }
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_topic_matches,
    bench_level_lookup,
    bench_trie,
    bench_retained,
    bench_codec
);
criterion_main!(benches);
