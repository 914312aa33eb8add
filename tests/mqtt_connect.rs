//! CONNECT / CONNACK and connection-level rules over real loopback sockets: unsupported protocol
//! levels, malformed v5 CONNECT, MQTT 3.1 (`MQIsdp`) clients and their 23-character client id
//! limit, empty client ids (3.1.1 and 5.0 Assigned Client Identifier), the session present flag,
//! "first packet must be CONNECT", a second CONNECT, the connect timeout, keep-alive
//! (PINGREQ/PINGRESP, closing a silent client after 1.5 times the keep-alive, v5 Server Keep
//! Alive), unknown protocol names, client id limits from the config, `max_connections`, and
//! framing (packets dribbled byte by byte, several packets in one write).

mod common;

use std::time::{Duration, Instant};

use common::*;
use picomq::protocol::decode::decode_packet;
use picomq::protocol::{Packet, Properties, ProtocolVersion, QoS, ReasonCode};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// Hand-made CONNECT bytes for any protocol name and level: clean session, keep-alive 60, client id
/// `id`, and an empty property block when `level` is 5.
fn raw_connect(name: &[u8], level: u8, flags: u8, id: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name);
    body.push(level);
    body.push(flags);
    body.extend_from_slice(&60u16.to_be_bytes());
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
    body.extend_from_slice(id.as_bytes());
    let mut out = vec![0x10];
    let mut len = body.len();
    for _ in 0..4 {
        let byte = (len % 128) as u8;
        len /= 128;
        out.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(&body);
    out
}

/// Sends `bytes` on a fresh connection and returns what the broker wrote before closing.
fn bytes_before_close(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut c = Client::tcp(addr, V311);
    c.send_raw(bytes);
    let (got, closed) = c.read_raw_until_close(WAIT);
    assert!(
        closed,
        "broker must close the connection (sent so far: {got:02x?})"
    );
    got
}

#[test]
fn mqtt_3_1_2_2_unsupported_level_gets_connack_0x01_then_close() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        for (name, level) in [
            (&b"MQTT"[..], 3u8),
            (&b"MQTT"[..], 0),
            (&b"MQTT"[..], 2),
            (&b"MQIsdp"[..], 4),
        ] {
            let got = bytes_before_close(b.addr, &raw_connect(name, level, 0x02, "lvl"));
            assert_eq!(
                got,
                [0x20, 0x02, 0x00, 0x01],
                "protocol {:?} level {level}: expected 3.1.1 CONNACK rc 0x01 then close",
                String::from_utf8_lossy(name)
            );
        }
        // A CONNECT long enough for a 2-byte Remaining Length is refused the same way.
        let long_id = "L".repeat(300);
        let got = bytes_before_close(b.addr, &raw_connect(b"MQTT", 3, 0x02, &long_id));
        assert_eq!(got, [0x20, 0x02, 0x00, 0x01], "long CONNECT, level 3");
        // An unknown protocol name: closed, and nothing sent [MQTT-3.1.2-1].
        for name in [&b"MQTX"[..], b"mqtt", b""] {
            let got = bytes_before_close(b.addr, &raw_connect(name, 4, 0x02, "name"));
            assert!(got.is_empty(), "protocol name {name:?}: got {got:02x?}");
        }
        assert_broker_healthy(b.addr, V311, "after-levels");
    });
}

#[test]
fn mqtt_3_1_2_2_unknown_level_6_gets_v3_connack_0x01_then_close() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let got = bytes_before_close(b.addr, &raw_connect(b"MQTT", 6, 0x02, "lvl6"));
        assert_eq!(
            got,
            [0x20, 0x02, 0x00, 0x01],
            "level 6 is unknown to the broker: the refusal must be the 3.1.1 CONNACK rc 0x01"
        );
    });
}

/// A v5 CONNECT the decoder must reject: the broker answers with a v5 CONNACK carrying exactly
/// `reason` (and closes), or closes without answering.
fn v5_bad_connect_is_refused(addr: std::net::SocketAddr, bytes: &[u8], reason: ReasonCode) {
    let got = bytes_before_close(addr, bytes);
    if got.is_empty() {
        return;
    }
    let mut buf = bytes::BytesMut::from(&got[..]);
    match decode_packet(&mut buf, Some(V5), u32::MAX) {
        Ok(Some(Packet::ConnAck(a))) => {
            assert_eq!(a.reason, reason, "CONNACK reason for {bytes:02x?}");
            assert!(!a.session_present, "session present with a refusal");
        }
        other => panic!("expected a v5 CONNACK {reason:?} or a bare close, got {other:?}"),
    }
    assert!(buf.is_empty(), "bytes after the CONNACK: {buf:02x?}");
}

#[test]
fn v5_malformed_connect_gets_connack_0x81_or_close() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        // Reserved CONNECT flag (bit 0) set [MQTT-3.1.2-3].
        let reserved = raw_connect(b"MQTT", 5, 0x03, "bad-flags");
        v5_bad_connect_is_refused(b.addr, &reserved, ReasonCode::MALFORMED_PACKET);
        // Will QoS 3 [MQTT-3.1.2-12].
        let will_qos3 = raw_connect(b"MQTT", 5, 0x02 | 0x04 | 0x18, "bad-will");
        v5_bad_connect_is_refused(b.addr, &will_qos3, ReasonCode::MALFORMED_PACKET);
        // Client id length runs past the packet.
        let mut truncated = raw_connect(b"MQTT", 5, 0x02, "abc");
        let n = truncated.len();
        truncated[n - 5] = 0x10;
        v5_bad_connect_is_refused(b.addr, &truncated, ReasonCode::MALFORMED_PACKET);
        // The same with a 2-byte Remaining Length (long client id).
        let mut long = raw_connect(b"MQTT", 5, 0x03, &"L".repeat(300));
        v5_bad_connect_is_refused(b.addr, &long, ReasonCode::MALFORMED_PACKET);
        long = raw_connect(b"MQTT", 5, 0x02, &"L".repeat(300));
        let n = long.len();
        long[n - 302] = 0x02; // id length 0x022C: runs past the packet
        v5_bad_connect_is_refused(b.addr, &long, ReasonCode::MALFORMED_PACKET);
        // Session Expiry Interval twice: a Protocol Error (0x82).
        let mut dup = vec![0x10, 0];
        dup.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60]);
        dup.extend_from_slice(&[10, 0x11, 0, 0, 0, 5, 0x11, 0, 0, 0, 6]);
        dup.extend_from_slice(&[0, 3, b'd', b'u', b'p']);
        dup[1] = (dup.len() - 2) as u8;
        v5_bad_connect_is_refused(b.addr, &dup, ReasonCode::PROTOCOL_ERROR);
        assert_broker_healthy(b.addr, V5, "after-bad-connect");
    });
}

#[test]
fn mqtt_3_1_client_mqisdp_level_3_works() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut c = Client::tcp(b.addr, ProtocolVersion::V31);
        let connect = connect_packet(ProtocolVersion::V31, "old-client-31", true, 60);
        let wire = encode(&Packet::Connect(Box::new(connect)), ProtocolVersion::V31);
        assert_eq!(&wire[2..10], b"\x00\x06MQIsdp", "test sends a 3.1 CONNECT");
        assert_eq!(wire[10], 3, "protocol level 3");
        c.send_raw(&wire);
        let (got, closed) = c.read_raw_until_close(Duration::from_millis(500));
        assert_eq!(got, [0x20, 0x02, 0x00, 0x00], "3.1 CONNACK accepted");
        assert!(!closed, "accepted 3.1 client must stay connected");
        c.sub_ok(1, "old/+", QoS::ExactlyOnce);
        let publisher = connect_packet(ProtocolVersion::V31, "old-publisher-31", true, 60);
        let (mut p, ack) = Client::handshake(b.addr, publisher);
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        p.publish("old/x", b"hello 3.1", QoS::ExactlyOnce, false, 2);
        let got = c.expect_publish_acked();
        assert_publish(&got, "old/x", b"hello 3.1", QoS::ExactlyOnce);
        c.ping();
        c.disconnect();
        p.disconnect();
    });
}

#[test]
fn mqtt_3_1_client_id_of_24_chars_refused_rc_2() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let id24 = "abcdefghijklmnopqrstuvwx";
        assert_eq!(id24.len(), 24);
        let got = bytes_before_close(b.addr, &raw_connect(b"MQIsdp", 3, 0x02, id24));
        assert_eq!(got, [0x20, 0x02, 0x00, 0x02], "3.1 id > 23 chars: rc 2");
        // 3.1 has no empty client ids either.
        let got = bytes_before_close(b.addr, &raw_connect(b"MQIsdp", 3, 0x02, ""));
        assert_eq!(got, [0x20, 0x02, 0x00, 0x02], "3.1 empty id: rc 2");
        // 23 characters are fine, and so are 24 with 3.1.1.
        let id23 = &id24[..23];
        let mut ok = Client::tcp(b.addr, ProtocolVersion::V31);
        ok.send_raw(&raw_connect(b"MQIsdp", 3, 0x02, id23));
        let ack = ok.expect_connack();
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        let c = Client::connect_v311(b.addr, id24, true, 60);
        c.disconnect();
        ok.disconnect();
    });
}

#[test]
fn mqtt_3_1_3_8_v311_empty_client_id_with_clean_session_0_refused_rc_2() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let got = bytes_before_close(b.addr, &raw_connect(b"MQTT", 4, 0x00, ""));
        assert_eq!(got, [0x20, 0x02, 0x00, 0x02], "empty id + clean 0: rc 2");
        assert_broker_healthy(b.addr, V311, "after-empty-id");
    });
}

#[test]
fn mqtt_3_1_3_6_v311_empty_client_id_with_clean_session_1_gets_unique_id() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let (mut c1, a1) = Client::connect_v311_ack(b.addr, "", true, 60);
        assert_eq!(a1.reason, ReasonCode::SUCCESS);
        assert!(
            !a1.session_present,
            "[MQTT-3.2.2-1] clean session: present 0"
        );
        let (mut c2, a2) = Client::connect_v311_ack(b.addr, "", true, 60);
        assert_eq!(a2.reason, ReasonCode::SUCCESS);
        // Two anonymous clients must not take each other over: both stay served.
        c1.sub_ok(1, "anon/1", QoS::AtLeastOnce);
        c2.sub_ok(1, "anon/2", QoS::AtLeastOnce);
        c1.publish("anon/2", b"to two", QoS::AtLeastOnce, false, 2);
        let got = c2.expect_publish_acked();
        assert_publish(&got, "anon/2", b"to two", QoS::AtLeastOnce);
        c2.publish("anon/1", b"to one", QoS::AtLeastOnce, false, 2);
        let got = c1.expect_publish_acked();
        assert_publish(&got, "anon/1", b"to one", QoS::AtLeastOnce);
        c1.disconnect();
        c2.disconnect();
    });
}

#[test]
fn mqtt_3_2_2_16_v5_empty_client_id_gets_assigned_client_identifier() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let expiry = Properties {
            session_expiry_interval: Some(60),
            ..Properties::default()
        };
        let (c1, a1) = Client::connect_v5(b.addr, "", true, 60, expiry.clone());
        assert_eq!(a1.reason, ReasonCode::SUCCESS);
        let id1 = a1
            .properties
            .assigned_client_identifier
            .clone()
            .expect("CONNACK must carry Assigned Client Identifier");
        assert!(!id1.is_empty(), "assigned id is empty");
        let (c2, a2) = Client::connect_v5(b.addr, "", true, 60, Properties::default());
        let id2 = a2
            .properties
            .assigned_client_identifier
            .expect("second CONNACK must carry Assigned Client Identifier");
        assert_ne!(id1, id2, "assigned ids must be unique");
        // A client that sent its own id gets none assigned.
        let (c3, a3) = Client::connect_v5(b.addr, "own-id", true, 60, Properties::default());
        assert_eq!(a3.properties.assigned_client_identifier, None);
        // The assigned id names a real session that can be resumed.
        c1.disconnect();
        let (c4, a4) = Client::connect_v5(b.addr, &id1, false, 60, expiry);
        assert_eq!(a4.reason, ReasonCode::SUCCESS);
        assert!(a4.session_present, "session of the assigned id resumes");
        c2.disconnect();
        c3.disconnect();
        c4.disconnect();
    });
}

#[test]
fn mqtt_3_2_2_2_session_present_on_resume_v311() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let (c, a) = Client::connect_v311_ack(b.addr, "sp311", false, 60);
        assert!(!a.session_present, "no session existed yet");
        c.disconnect();
        let (c, a) = Client::connect_v311_ack(b.addr, "sp311", false, 60);
        assert!(
            a.session_present,
            "[MQTT-3.2.2-2] clean 0 resumes: present 1"
        );
        c.disconnect();
        let (c, a) = Client::connect_v311_ack(b.addr, "sp311", true, 60);
        assert!(!a.session_present, "[MQTT-3.2.2-1] clean 1: present 0");
        c.disconnect();
        let (c, a) = Client::connect_v311_ack(b.addr, "sp311", false, 60);
        assert!(!a.session_present, "clean 1 discarded the session");
        c.disconnect();
    });
}

#[test]
fn mqtt_3_2_2_2_session_present_on_resume_v5() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let keep = Properties {
            session_expiry_interval: Some(60),
            ..Properties::default()
        };
        let (c, a) = Client::connect_v5(b.addr, "sp5", false, 60, keep.clone());
        assert!(!a.session_present);
        c.disconnect();
        let (c, a) = Client::connect_v5(b.addr, "sp5", false, 60, Properties::default());
        assert!(a.session_present, "expiry 60 kept the session");
        // This connection had expiry 0: its session ends with it.
        c.disconnect();
        let (c, a) = Client::connect_v5(b.addr, "sp5", false, 60, keep.clone());
        assert!(
            !a.session_present,
            "expiry 0 ended the session at DISCONNECT"
        );
        c.disconnect();
        let (c, a) = Client::connect_v5(b.addr, "sp5", true, 60, keep);
        assert!(!a.session_present, "clean start: present 0");
        c.disconnect();
    });
}

#[test]
fn mqtt_3_1_0_1_first_packet_not_connect_is_closed() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let firsts: [&[u8]; 3] = [
            &[0xC0, 0x00],
            &[0x30, 0x05, 0x00, 0x01, b'a', b'h', b'i'],
            &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00],
        ];
        for first in firsts {
            let got = bytes_before_close(b.addr, first);
            assert!(
                got.is_empty(),
                "answer to {first:02x?} before CONNECT: {got:02x?}"
            );
        }
        assert_broker_healthy(b.addr, V311, "after-no-connect");
    });
}

#[test]
fn mqtt_3_1_0_2_second_connect_v5_gets_disconnect_0x82() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut c = Client::connect_v5_ok(b.addr, "twice5", true, 60);
        c.send(&Packet::Connect(Box::new(connect_packet(
            V5, "twice5", true, 60,
        ))));
        c.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
        assert_broker_healthy(b.addr, V5, "after-second-connect");
    });
}

#[test]
fn mqtt_3_1_0_2_second_connect_v311_is_closed() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut c = Client::connect_v311(b.addr, "twice311", true, 60);
        c.send(&Packet::Connect(Box::new(connect_packet(
            V311, "twice311", true, 60,
        ))));
        c.expect_closed();
        assert_broker_healthy(b.addr, V311, "after-second-connect");
    });
}

#[test]
fn connect_timeout_closes_silent_and_partial_sockets() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.connect_timeout = Duration::from_millis(500));
        let started = Instant::now();
        let mut silent = Client::tcp(b.addr, V311);
        let mut partial = Client::tcp(b.addr, V311);
        let connect = raw_connect(b"MQTT", 4, 0x02, "partial");
        partial.send_raw(&connect[..connect.len() - 3]);
        // A client that connects properly right away is not affected.
        let mut good = Client::connect_v311(b.addr, "prompt", true, 60);
        silent.expect_closed_within(Duration::from_secs(3));
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(450),
            "closed after {elapsed:?}, before the 500 ms connect timeout"
        );
        partial.expect_closed_within(Duration::from_secs(2));
        good.ping();
        good.disconnect();
    });
}

#[test]
fn mqtt_3_12_4_1_pingreq_gets_pingresp() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        for version in [V311, V5] {
            let mut c = Client::connect(b.addr, version, &format!("pinger-{version:?}"));
            for _ in 0..3 {
                c.send_raw(&[0xC0, 0x00]);
                let (got, closed) = c.read_raw_until_close(Duration::from_millis(200));
                assert_eq!(got, [0xD0, 0x00], "PINGRESP bytes ({version:?})");
                assert!(!closed);
            }
            c.disconnect();
        }
    });
}

#[test]
fn mqtt_3_1_2_24_silent_v311_client_closed_after_one_and_a_half_keep_alive() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let started = Instant::now();
        let mut c = Client::connect_v311(b.addr, "silent311", true, 1);
        c.expect_closed_within(Duration::from_secs(4));
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1400),
            "closed after {elapsed:?}, before 1.5 x keep-alive"
        );
        assert!(
            elapsed <= Duration::from_millis(2600),
            "closed only after {elapsed:?}"
        );
    });
}

#[test]
fn mqtt_3_1_2_22_silent_v5_client_gets_disconnect_0x8d() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let started = Instant::now();
        let mut c = Client::connect_v5_ok(b.addr, "silent5", true, 1);
        match c.expect_packet_within(Duration::from_secs(4)) {
            Packet::Disconnect(d) => assert_eq!(d.reason, ReasonCode::KEEP_ALIVE_TIMEOUT),
            other => panic!("expected DISCONNECT 0x8D, got {other:?}"),
        }
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1400),
            "DISCONNECT after {elapsed:?}, before 1.5 x keep-alive"
        );
        assert!(
            elapsed <= Duration::from_millis(2600),
            "DISCONNECT only after {elapsed:?}"
        );
        c.expect_closed();
    });
}

#[test]
fn keep_alive_is_kept_by_pingreq() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut c3 = Client::connect_v311(b.addr, "alive311", true, 1);
        let mut c5 = Client::connect_v5_ok(b.addr, "alive5", true, 1);
        // 3 s of PINGREQ every 500 ms: twice the 1.5 s limit, yet both stay connected.
        for _ in 0..6 {
            std::thread::sleep(Duration::from_millis(500));
            c3.ping();
            c5.ping();
        }
        c3.disconnect();
        c5.disconnect();
    });
}

#[test]
fn packets_split_byte_by_byte_and_coalesced_in_one_write() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut sub = Client::connect_v311(b.addr, "framing-sub", true, 60);
        sub.sub_ok(1, "frame/t", QoS::AtLeastOnce);
        // One byte per write, with pauses: CONNECT, then a QoS 1 PUBLISH.
        let mut slow = Client::tcp(b.addr, V311);
        let connect = encode(
            &Packet::Connect(Box::new(connect_packet(V311, "dribble", true, 60))),
            V311,
        );
        let publish = encode(
            &Packet::Publish(publish_packet(
                "frame/t",
                b"dribbled",
                QoS::AtLeastOnce,
                false,
                9,
            )),
            V311,
        );
        for byte in connect.iter().chain(&publish) {
            slow.send_raw(&[*byte]);
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(slow.expect_connack().reason, ReasonCode::SUCCESS);
        slow.expect_ack(4, 9);
        assert_publish(
            &sub.expect_publish_acked(),
            "frame/t",
            b"dribbled",
            QoS::AtLeastOnce,
        );
        // Everything in one write: CONNECT, SUBSCRIBE, PUBLISH, PINGREQ, DISCONNECT.
        let mut burst = Client::tcp(b.addr, V311);
        let mut bytes = encode(
            &Packet::Connect(Box::new(connect_packet(V311, "burst", true, 60))),
            V311,
        );
        bytes.extend_from_slice(&[0x82, 0x0C, 0x00, 0x01, 0x00, 0x07]);
        bytes.extend_from_slice(b"frame/b\x01");
        bytes.extend(encode(
            &Packet::Publish(publish_packet(
                "frame/t",
                b"burst",
                QoS::AtLeastOnce,
                false,
                2,
            )),
            V311,
        ));
        bytes.extend_from_slice(&[0xC0, 0x00, 0xE0, 0x00]);
        burst.send_raw(&bytes);
        assert_eq!(burst.expect_connack().reason, ReasonCode::SUCCESS);
        assert_eq!(
            burst.expect_suback(1).reasons,
            vec![ReasonCode::GRANTED_QOS_1]
        );
        burst.expect_ack(4, 2);
        burst.expect_pingresp();
        burst.expect_closed();
        assert_publish(
            &sub.expect_publish_acked(),
            "frame/t",
            b"burst",
            QoS::AtLeastOnce,
        );
    });
}

#[test]
fn max_connections_refuses_extra_sockets_and_frees_slots_on_close() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.max_connections = 2);
        let c1 = Client::connect_v311(b.addr, "slot-1", true, 60);
        let mut c2 = Client::connect_v311(b.addr, "slot-2", true, 60);
        let mut extra = Client::tcp(b.addr, V311);
        extra.send_raw(&raw_connect(b"MQTT", 4, 0x02, "slot-3"));
        let (got, closed) = extra.read_raw_until_close(WAIT);
        assert!(
            closed && got.is_empty(),
            "third socket must be closed: {got:02x?}"
        );
        c1.disconnect();
        // The slot comes back once the broker has closed its side (bounded retry).
        let mut admitted = false;
        for _ in 0..40 {
            let mut again = Client::tcp(b.addr, V311);
            again.send_raw(&raw_connect(b"MQTT", 4, 0x02, "slot-3"));
            if let Recv::Packet(Packet::ConnAck(a)) = again.recv(Duration::from_millis(500)) {
                assert_eq!(a.reason, ReasonCode::SUCCESS);
                admitted = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(admitted, "a freed connection slot was never reused");
        c2.ping();
    });
}

#[test]
fn v5_server_keep_alive_caps_the_clients_keep_alive() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.max_keepalive = 1);
        let started = Instant::now();
        let (mut c, ack) = Client::connect_v5(b.addr, "capped", true, 60, Properties::default());
        assert_eq!(
            ack.properties.server_keep_alive,
            Some(1),
            "CONNACK Server Keep Alive"
        );
        match c.expect_packet_within(Duration::from_secs(4)) {
            Packet::Disconnect(d) => assert_eq!(d.reason, ReasonCode::KEEP_ALIVE_TIMEOUT),
            other => panic!("expected DISCONNECT 0x8D, got {other:?}"),
        }
        let elapsed = started.elapsed();
        assert!(
            (Duration::from_millis(1400)..=Duration::from_millis(2600)).contains(&elapsed),
            "DISCONNECT after {elapsed:?}; Server Keep Alive 1 s means about 1.5 s"
        );
        c.expect_closed();
    });
}

#[test]
fn client_id_longer_than_max_client_id_len_is_refused() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.max_client_id_len = 30);
        let long = "x".repeat(31);
        let (mut c, ack) = Client::connect_v311_ack(b.addr, &long, true, 60);
        assert_eq!(
            ack.reason,
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            "3.1.1 rc 2"
        );
        c.expect_closed();
        let (mut c, ack) = Client::connect_v5(b.addr, &long, true, 60, Properties::default());
        assert_eq!(
            ack.reason,
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            "v5 0x85"
        );
        c.expect_closed();
        Client::connect_v311(b.addr, &long[..30], true, 60).disconnect();
    });
}

#[test]
fn empty_client_id_refused_when_not_allowed_by_config() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.allow_empty_client_id = false);
        let (mut c, ack) = Client::connect_v311_ack(b.addr, "", true, 60);
        assert_eq!(ack.reason, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
        c.expect_closed();
        let (mut c, ack) = Client::connect_v5(b.addr, "", true, 60, Properties::default());
        assert_eq!(ack.reason, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
        c.expect_closed();
    });
}
