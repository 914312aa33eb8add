//! Authentication and ACLs enforced over loopback: a broker started in-process with a password
//! file and an ACL file (both in Mosquitto's formats) refuses bad credentials and anonymous
//! clients with the right CONNACK codes for 3.1.1 and 5.0, refuses and drops what the ACL denies
//! (publish, subscribe, retained delivery), and picks up an edited ACL on reload without dropping
//! connections.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use picomq::auth::passwd::PasswordHash;
use picomq::protocol::{Packet, ProtocolVersion, Publish, QoS, ReasonCode};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;
const QUIET: Duration = Duration::from_millis(300);

/// Writes a password file with alice/wonderland and bob/builder, and the ACL `acl`, into a fresh
/// temporary directory; returns their paths.
fn auth_files(name: &str, acl: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("picomq-auth-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let entry = |user: &str, pw: &str| {
        format!(
            "{user}:{}\n",
            PasswordHash::pbkdf2(pw.as_bytes(), [7; 12], 101).encode()
        )
    };
    let pw = dir.join("passwd");
    std::fs::write(&pw, entry("alice", "wonderland") + &entry("bob", "builder")).expect("passwd");
    let acl_path = dir.join("acl");
    std::fs::write(&acl_path, acl).expect("acl");
    (pw, acl_path)
}

const ACL: &str =
    "user alice\ntopic readwrite a/#\ntopic read public/#\n\nuser bob\ntopic readwrite public/#\n";

fn broker(name: &str, acl: &str) -> (TestBroker, PathBuf) {
    let (pw, acl_path) = auth_files(name, acl);
    let acl_for_broker = acl_path.clone();
    let b = TestBroker::start_with(move |cfg| {
        cfg.auth.password_file = Some(pw);
        cfg.auth.acl_file = Some(acl_for_broker);
        cfg.auth.allow_anonymous = false;
    });
    (b, acl_path)
}

fn login(
    b: &TestBroker,
    v: ProtocolVersion,
    id: &str,
    user: Option<&str>,
    pw: &[u8],
) -> (Client, ReasonCode) {
    let mut c = connect_packet(v, id, true, 60);
    c.username = user.map(str::to_owned);
    c.password = user.map(|_| bytes::Bytes::copy_from_slice(pw));
    let (client, ack) = Client::handshake(b.addr, c);
    (client, ack.reason)
}

#[test]
fn wrong_password_and_anonymous_are_refused_with_the_right_codes() {
    with_deadline(Duration::from_secs(20), || {
        let (b, _) = broker("connect", ACL);
        // 5.0: 0x86 bad user name or password, 0x87 not authorized (anonymous).
        assert_eq!(
            login(&b, V5, "c1", Some("alice"), b"wrong").1,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD
        );
        assert_eq!(
            login(&b, V5, "c2", Some("mallory"), b"x").1,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD
        );
        assert_eq!(login(&b, V5, "c3", None, b"").1, ReasonCode::NOT_AUTHORIZED);
        // 3.1.1: return codes 4 and 5 (decoded back to the same reason codes).
        let (mut c, code) = login(&b, V311, "c4", Some("alice"), b"wrong");
        assert_eq!(code.to_v3_connack(), 4);
        c.expect_closed();
        assert_eq!(login(&b, V311, "c5", None, b"").1.to_v3_connack(), 5);
        assert_eq!(
            login(&b, V311, "c6", Some("alice"), b"wonderland").1,
            ReasonCode::SUCCESS
        );
        assert_eq!(
            login(&b, V5, "c7", Some("bob"), b"builder").1,
            ReasonCode::SUCCESS
        );
        b.shutdown();
    });
}

#[test]
fn acl_denies_publish_subscribe_and_retained_delivery() {
    with_deadline(Duration::from_secs(20), || {
        let (b, _) = broker("acl", ACL);
        let (mut alice, _) = login(&b, V5, "alice-1", Some("alice"), b"wonderland");
        let (mut bob, _) = login(&b, V5, "bob-1", Some("bob"), b"builder");
        // Subscribe: alice may read a/# and public/#, not b/#; 3.1.1 gets 0x80.
        let codes = alice.subscribe(1, &[("a/#", QoS::AtLeastOnce), ("b/#", QoS::AtLeastOnce)]);
        assert_eq!(
            codes,
            vec![ReasonCode::GRANTED_QOS_1, ReasonCode::NOT_AUTHORIZED]
        );
        let (mut alice3, _) = login(&b, V311, "alice-3", Some("alice"), b"wonderland");
        let codes = alice3.subscribe(1, &[("b/#", QoS::AtMostOnce)]);
        assert_eq!(
            codes.iter().map(|c| c.to_v3_suback()).collect::<Vec<_>>(),
            vec![0x80]
        );
        // Publish: bob may not write a/x: PUBACK 0x87 and nothing reaches alice.
        bob.send(&Packet::Publish(publish_packet(
            "a/x",
            b"nope",
            QoS::AtLeastOnce,
            false,
            5,
        )));
        match bob.expect_packet() {
            Packet::PubAck(a) => {
                assert_eq!((a.packet_id, a.reason), (5, ReasonCode::NOT_AUTHORIZED))
            }
            other => panic!("expected PUBACK, got {other:?}"),
        }
        alice.expect_nothing(QUIET);
        // Alice may: delivered.
        alice.publish("a/x", b"yes", QoS::AtLeastOnce, false, 6);
        let got: Publish = alice.expect_publish();
        assert_eq!(&got.payload[..], b"yes");
        alice.ack(&got);
        // Retained: bob retains public/r (he may write it); alice reads public/#: delivered.
        bob.publish("public/r", b"kept", QoS::AtLeastOnce, true, 7);
        let codes = alice.subscribe(2, &[("public/#", QoS::AtMostOnce)]);
        assert_eq!(codes, vec![ReasonCode::SUCCESS]);
        assert_eq!(&alice.expect_publish().payload[..], b"kept");
        // Bob cannot read a/#: a retained a/ message is not delivered to him even via '#'.
        alice.publish("a/secret", b"s", QoS::AtMostOnce, true, 0);
        let codes = bob.subscribe(3, &[("#", QoS::AtMostOnce)]);
        assert_eq!(
            codes,
            vec![ReasonCode::SUCCESS],
            "partly readable filter is granted"
        );
        let got = bob.expect_publish();
        assert_eq!(got.topic, "public/r", "only what bob may read");
        bob.expect_nothing(QUIET);
        b.shutdown();
    });
}

#[test]
fn acl_reload_applies_to_connected_clients() {
    with_deadline(Duration::from_secs(20), || {
        let (b, acl_path) = broker("reload", ACL);
        let (mut alice, _) = login(&b, V5, "alice-r", Some("alice"), b"wonderland");
        let (mut bob, _) = login(&b, V5, "bob-r", Some("bob"), b"builder");
        alice.sub_ok(1, "public/#", QoS::AtMostOnce);
        bob.publish("public/x", b"1", QoS::AtMostOnce, false, 0);
        assert_eq!(&alice.expect_publish().payload[..], b"1");
        // Alice loses read access to public/#.
        std::fs::write(
            &acl_path,
            "user alice\ntopic readwrite a/#\n\nuser bob\ntopic readwrite public/#\n",
        )
        .expect("rewrite acl");
        b.authenticator().reload().expect("reload");
        // The I/O threads pick it up on their next tick (250 ms).
        std::thread::sleep(Duration::from_millis(600));
        bob.publish("public/x", b"2", QoS::AtMostOnce, false, 0);
        alice.expect_nothing(QUIET);
        // Still connected.
        alice.send(&Packet::PingReq);
        alice.expect_pingresp();
        b.shutdown();
    });
}
