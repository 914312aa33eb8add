//! `$SYS/broker/...` status topics over real loopback sockets: client counts follow connects and
//! disconnects, `$SYS/#` gets the version at once (retained), `#` and `+/...` never see `$SYS`
//! [MQTT-4.7.2-1], clients cannot publish under `$SYS/` (v5 PUBACK 0x87, nothing delivered or
//! retained), the message and byte counters and load averages move after publishes, and a real
//! `mosquitto_sub` reads the uptime.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use picomq::protocol::{Packet, ProtocolVersion, QoS, ReasonCode};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// How long a `$SYS` value may take to show a change: two intervals of 1 s plus the 250 ms tick.
const SETTLE: Duration = Duration::from_secs(6);

/// A broker refreshing `$SYS` every second.
fn fast_sys_broker() -> TestBroker {
    TestBroker::start_with(|c| c.sys.interval = Some(Duration::from_secs(1)))
}

/// Reads publishes, remembering the latest payload of each topic, until `topic`'s payload
/// satisfies `ok` (returned) or `within` passes (panics with what was seen).
#[track_caller]
fn wait_for(
    c: &mut Client,
    seen: &mut HashMap<String, String>,
    topic: &str,
    within: Duration,
    ok: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = seen.get(topic).filter(|v| ok(v)) {
            return v.clone();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match c.recv(left) {
            Recv::Packet(Packet::Publish(p)) => {
                let payload = String::from_utf8_lossy(&p.payload).into_owned();
                seen.insert(p.topic.to_string(), payload);
            }
            Recv::Packet(other) => panic!("expected PUBLISH, got {other:?}"),
            Recv::Closed => panic!("broker closed the connection"),
            Recv::Timeout => panic!("{topic} never matched within {within:?}; seen: {seen:?}"),
        }
    }
}

fn number(text: &str) -> u64 {
    text.parse()
        .unwrap_or_else(|_| panic!("not a number: {text:?}"))
}

#[test]
fn sys_clients_connected_follows_connects_and_disconnects() {
    with_deadline(Duration::from_secs(40), || {
        let b = fast_sys_broker();
        let mut mon = Client::connect(b.addr, V311, "sys-monitor");
        mon.sub_ok(1, "$SYS/broker/clients/+", QoS::AtMostOnce);
        let mut seen = HashMap::new();
        let connected = "$SYS/broker/clients/connected";
        wait_for(&mut mon, &mut seen, connected, SETTLE, |v| v == "1");

        let mut others: Vec<Client> = (0..3)
            .map(|i| Client::connect(b.addr, V5, &format!("sys-c{i}")))
            .collect();
        let persistent = Client::connect_v311(b.addr, "sys-persistent", false, 60);
        wait_for(&mut mon, &mut seen, connected, SETTLE, |v| v == "5");
        wait_for(
            &mut mon,
            &mut seen,
            "$SYS/broker/clients/maximum",
            SETTLE,
            |v| v == "5",
        );

        others.pop().expect("client").disconnect();
        others.pop().expect("client").disconnect();
        persistent.disconnect();
        wait_for(&mut mon, &mut seen, connected, SETTLE, |v| v == "2");
        let d = "$SYS/broker/clients/disconnected";
        wait_for(&mut mon, &mut seen, d, SETTLE, |v| v == "1");
        let total = "$SYS/broker/clients/total";
        wait_for(&mut mon, &mut seen, total, SETTLE, |v| v == "3");
        // The peak stays.
        assert_eq!(seen["$SYS/broker/clients/maximum"], "5");
    });
}

#[test]
fn sys_wildcard_gets_version_at_once_and_hash_never_sees_sys() {
    with_deadline(Duration::from_secs(30), || {
        let b = fast_sys_broker();
        let mut all = Client::connect(b.addr, V5, "sys-hash");
        all.subscribe(
            1,
            &[("#", QoS::AtMostOnce), ("+/broker/#", QoS::AtMostOnce)],
        );
        // Let at least two refreshes happen before the $SYS subscriber arrives.
        std::thread::sleep(Duration::from_millis(2500));
        let mut sys = Client::connect(b.addr, V311, "sys-all");
        sys.sub_ok(1, "$SYS/#", QoS::AtMostOnce);
        let mut seen = HashMap::new();
        // The version is published once, at start: seeing it now, with RETAIN set, means it was
        // kept as a retained message and sent on subscription.
        let first = sys.expect_publish();
        assert!(
            first.retain,
            "retained $SYS message without RETAIN: {first:?}"
        );
        seen.insert(
            first.topic.to_string(),
            String::from_utf8_lossy(&first.payload).into_owned(),
        );
        let version = "$SYS/broker/version";
        let v = wait_for(&mut sys, &mut seen, version, SETTLE, |_| true);
        assert_eq!(v, format!("picomq version {}", env!("CARGO_PKG_VERSION")));
        wait_for(&mut sys, &mut seen, "$SYS/broker/uptime", SETTLE, |v| {
            v.ends_with(" seconds") && number(v.trim_end_matches(" seconds")) >= 2
        });
        // Leading wildcards never match `$SYS` topics; ordinary topics still reach `#`.
        all.expect_nothing(Duration::from_millis(1500));
        sys.publish("plain/topic", b"hi", QoS::AtMostOnce, false, 0);
        let p = all.expect_publish();
        assert_eq!(&*p.topic, "plain/topic");
        all.expect_nothing(Duration::from_millis(1200));
    });
}

#[test]
fn client_publish_to_sys_is_refused_and_never_delivered() {
    with_deadline(Duration::from_secs(30), || {
        // No broker refresh, so anything under $SYS would have come from the client.
        let b = TestBroker::start_with(|c| c.sys.interval = None);
        let mut mon = Client::connect(b.addr, V311, "sys-watch");
        mon.sub_ok(1, "$SYS/#", QoS::AtLeastOnce);

        let mut v5 = Client::connect(b.addr, V5, "sys-spoof-v5");
        let p = publish_packet(
            "$SYS/broker/uptime",
            b"1 seconds",
            QoS::AtLeastOnce,
            true,
            7,
        );
        v5.send(&Packet::Publish(p));
        match v5.expect_packet() {
            Packet::PubAck(a) => {
                assert_eq!(a.packet_id, 7);
                assert_eq!(a.reason, ReasonCode::NOT_AUTHORIZED);
            }
            other => panic!("expected PUBACK 0x87, got {other:?}"),
        }
        v5.publish("$SYS/x", b"q0", QoS::AtMostOnce, true, 0);
        // 3.1.1 cannot say no: the normal PUBACK, and the message is dropped.
        let mut v3 = Client::connect(b.addr, V311, "sys-spoof-v3");
        v3.publish("$SYS/x", b"q1", QoS::AtLeastOnce, true, 9);
        v3.ping();
        v5.ping();
        mon.expect_nothing(Duration::from_millis(800));

        // Nothing was retained either.
        let mut late = Client::connect(b.addr, V5, "sys-late");
        late.sub_ok(1, "$SYS/#", QoS::AtMostOnce);
        late.expect_nothing(Duration::from_millis(500));
        // The refused clients are still connected and can publish elsewhere.
        late.sub_ok(2, "ok/t", QoS::AtMostOnce);
        v5.publish("ok/t", b"fine", QoS::AtMostOnce, false, 0);
        assert_eq!(&late.expect_publish().payload[..], b"fine");
    });
}

#[test]
fn sys_message_and_byte_counters_move_after_publishes() {
    with_deadline(Duration::from_secs(40), || {
        const N: u64 = 50;
        let b = fast_sys_broker();
        let mut sub = Client::connect(b.addr, V311, "sys-count-sub");
        sub.sub_ok(1, "count/t", QoS::AtMostOnce);
        let mut publisher = Client::connect(b.addr, V5, "sys-count-pub");
        for i in 0..N {
            publisher.publish("count/t", &[b'x'; 100], QoS::AtMostOnce, false, 0);
            let _ = i;
        }
        assert_eq!(sub.collect_publishes(N as usize).len(), N as usize);

        let mut mon = Client::connect(b.addr, V311, "sys-count-mon");
        mon.subscribe(
            1,
            &[
                ("$SYS/broker/publish/messages/+", QoS::AtMostOnce),
                ("$SYS/broker/messages/+", QoS::AtMostOnce),
                ("$SYS/broker/bytes/+", QoS::AtMostOnce),
                ("$SYS/broker/subscriptions/count", QoS::AtMostOnce),
                ("$SYS/broker/load/publish/received/+", QoS::AtMostOnce),
            ],
        );
        let mut seen = HashMap::new();
        let n = N.to_string();
        wait_for(
            &mut mon,
            &mut seen,
            "$SYS/broker/publish/messages/received",
            SETTLE,
            |v| v == n,
        );
        wait_for(
            &mut mon,
            &mut seen,
            "$SYS/broker/publish/messages/sent",
            SETTLE,
            |v| number(v) >= N,
        );
        // Every CONNECT, SUBSCRIBE and PUBLISH counts, and every CONNACK, SUBACK and PUBLISH.
        wait_for(
            &mut mon,
            &mut seen,
            "$SYS/broker/messages/received",
            SETTLE,
            |v| number(v) >= N + 5,
        );
        wait_for(
            &mut mon,
            &mut seen,
            "$SYS/broker/messages/sent",
            SETTLE,
            |v| number(v) >= N + 5,
        );
        wait_for(
            &mut mon,
            &mut seen,
            "$SYS/broker/bytes/received",
            SETTLE,
            |v| number(v) >= N * 100,
        );
        wait_for(&mut mon, &mut seen, "$SYS/broker/bytes/sent", SETTLE, |v| {
            number(v) >= N * 100
        });
        // count/t plus the monitor's five filters.
        let subs = "$SYS/broker/subscriptions/count";
        wait_for(&mut mon, &mut seen, subs, SETTLE, |v| v == "6");
        // 50 PUBLISHes within the first seconds: the 1-minute average of the per-minute rate is
        // well above zero, the 15-minute one lower.
        let load = "$SYS/broker/load/publish/received/1min";
        let one = wait_for(&mut mon, &mut seen, load, SETTLE, |v| {
            v.parse::<f64>().is_ok_and(|x| x > 1.0)
        });
        // The 15-minute figure follows the 1-minute one in the same refresh: wait for it rather
        // than assume it already arrived.
        let load15 = "$SYS/broker/load/publish/received/15min";
        let fifteen = wait_for(&mut mon, &mut seen, load15, SETTLE, |v| {
            v.parse::<f64>().is_ok()
        });
        let (one, fifteen): (f64, f64) = (one.parse().unwrap(), fifteen.parse().unwrap());
        assert!(fifteen < one, "15min {fifteen} vs 1min {one}");
        let dropped = "$SYS/broker/publish/messages/dropped";
        assert_eq!(
            wait_for(&mut mon, &mut seen, dropped, SETTLE, |_| true),
            "0"
        );
    });
}

#[test]
fn sys_counts_drops_and_messages_queued_for_offline_clients() {
    with_deadline(Duration::from_secs(30), || {
        let b = fast_sys_broker();
        let mut offline = Client::connect_v311(b.addr, "sys-offline", false, 60);
        offline.sub_ok(1, "drop/t", QoS::AtLeastOnce);
        offline.disconnect();
        let mut p = Client::connect(b.addr, V5, "sys-drop-pub");
        // An offline session drops QoS 0 and queues QoS 1.
        for i in 0..3u16 {
            p.publish("drop/t", b"q0", QoS::AtMostOnce, false, 0);
            p.publish("drop/t", b"q1", QoS::AtLeastOnce, false, i + 1);
        }
        let mut mon = Client::connect(b.addr, V311, "sys-drop-mon");
        mon.subscribe(
            1,
            &[
                ("$SYS/broker/publish/messages/dropped", QoS::AtMostOnce),
                ("$SYS/broker/store/messages/count", QoS::AtMostOnce),
                ("$SYS/broker/clients/disconnected", QoS::AtMostOnce),
            ],
        );
        let mut seen = HashMap::new();
        let dropped = "$SYS/broker/publish/messages/dropped";
        wait_for(&mut mon, &mut seen, dropped, SETTLE, |v| v == "3");
        let stored = "$SYS/broker/store/messages/count";
        wait_for(&mut mon, &mut seen, stored, SETTLE, |v| v == "3");
        // The figures of one refresh arrive as separate messages: wait for this one too.
        let disconnected = "$SYS/broker/clients/disconnected";
        wait_for(&mut mon, &mut seen, disconnected, SETTLE, |v| v == "1");
        // The client comes back and takes its queue: nothing stored any more, drops stay.
        let mut back = Client::connect_v311(b.addr, "sys-offline", false, 60);
        for _ in 0..3 {
            let m = back.expect_publish();
            back.ack(&m);
        }
        wait_for(&mut mon, &mut seen, stored, SETTLE, |v| v == "0");
        assert_eq!(seen[dropped], "3");
    });
}

#[test]
fn sys_interval_zero_publishes_nothing() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.sys.interval = None);
        let mut mon = Client::connect(b.addr, V311, "sys-off");
        mon.sub_ok(1, "$SYS/#", QoS::AtMostOnce);
        mon.expect_nothing(Duration::from_millis(1500));
    });
}

#[test]
fn mosquitto_sub_reads_sys_uptime() {
    with_deadline(Duration::from_secs(30), || {
        let b = fast_sys_broker();
        let port = b.addr.port().to_string();
        let child = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "$SYS/broker/uptime",
                "-C",
                "1",
            ])
            .args(["-W", "10"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "`mosquitto_sub` is needed by this test but cannot be run ({e}); install \
                     the mosquitto-clients package (scripts/test.sh does)"
                )
            });
        let out = child.wait_with_output().expect("mosquitto_sub output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "mosquitto_sub failed: {:?}; stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout.trim();
        let secs = line
            .strip_suffix(" seconds")
            .unwrap_or_else(|| panic!("uptime payload {line:?} is not \"N seconds\""));
        assert!(secs.parse::<u64>().is_ok(), "uptime payload {line:?}");
    });
}
