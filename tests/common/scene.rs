//! The fixture of the limit and hostile-input tests: a broker with a well-behaved bystander
//! subscribed before the offender arrives, raw packet builders for any length, and a memory
//! probe. Owns nothing else; must not touch the broker beyond its public API and loopback sockets.

use std::net::SocketAddr;

use picomq::config::Config;
use picomq::protocol::{ProtocolVersion, QoS};

use super::{assert_broker_healthy, assert_publish, Client, TestBroker};

/// A broker and a bystander subscribed to `by/t` at QoS 1.
pub struct Scene {
    /// The broker under attack.
    pub broker: TestBroker,
    /// Protocol version of every client of the scene.
    pub version: ProtocolVersion,
    bystander: Client,
}

impl Scene {
    /// A broker with the test config adjusted by `tweak`, and the bystander.
    pub fn new(version: ProtocolVersion, tweak: impl FnOnce(&mut Config)) -> Scene {
        let broker = TestBroker::start_with(tweak);
        let mut bystander = Client::connect(broker.addr, version, "bystander");
        bystander.sub_ok(1, "by/t", QoS::AtLeastOnce);
        Scene {
            broker,
            version,
            bystander,
        }
    }

    /// The broker's address.
    pub fn addr(&self) -> SocketAddr {
        self.broker.addr
    }

    /// A connected client called `id`.
    pub fn client(&self, id: &str) -> Client {
        Client::connect(self.broker.addr, self.version, id)
    }

    /// The bystander still receives a QoS 1 message published by a new client, still answers
    /// PINGREQ, and a fresh client can connect, subscribe and get its own message.
    pub fn assert_others_unaffected(mut self) {
        let mut p = Client::connect(self.broker.addr, self.version, "by-pub");
        p.publish("by/t", b"unaffected", QoS::AtLeastOnce, false, 1);
        let got = self.bystander.expect_publish_acked();
        assert_publish(&got, "by/t", b"unaffected", QoS::AtLeastOnce);
        self.bystander.ping();
        assert_broker_healthy(self.broker.addr, self.version, "after-offence");
    }
}

/// One packet from a first byte and a body of any length (Remaining Length encoded minimally).
pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    out.extend_from_slice(&varint(body.len()));
    out.extend_from_slice(body);
    out
}

/// A Variable Byte Integer (1 to 4 bytes for the values MQTT allows).
pub fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n % 128) as u8;
        n /= 128;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A UTF-8 string or binary field: two-byte length, then the bytes.
pub fn field(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A v5 property block holding `n` User Properties `k` = `v` (6 bytes each).
pub fn user_properties_block(n: usize) -> Vec<u8> {
    let mut props = Vec::with_capacity(n * 7);
    for _ in 0..n {
        props.push(0x26);
        props.extend_from_slice(&field(b"k"));
        props.extend_from_slice(&field(b"v"));
    }
    let mut out = varint(props.len());
    out.extend_from_slice(&props);
    out
}

/// Resident memory of this test process in KiB (Linux `/proc/self/status`), if known.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `attack` and asserts that the process grew by less than `max_growth_mib` across it. Tests
/// of one file run in parallel in this process, so the bound is generous: it catches memory
/// that grows with the attack's size (e.g. per user property or per packet id), not noise.
pub fn assert_memory_bounded(max_growth_mib: u64, attack: impl FnOnce()) {
    let before = rss_kib();
    attack();
    if let (Some(before), Some(after)) = (before, rss_kib()) {
        let growth = after.saturating_sub(before) / 1024;
        assert!(
            growth < max_growth_mib,
            "RSS grew by {growth} MiB ({before} KiB -> {after} KiB), bound {max_growth_mib} MiB"
        );
    }
}
