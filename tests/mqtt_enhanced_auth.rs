//! MQTT 5 enhanced authentication (section 4.12) over loopback sockets: SCRAM-SHA-512 logins
//! against a Mosquitto-format password file, refusals (0x86, 0x8C, 0x82), re-authentication, AUTH
//! where it is not allowed, and the connect timeout bounding a stalled exchange.
//!
//! Owns: tests only. The main login test drives a SCRAM client written here from the RFC 5802
//! formulas (pbkdf2, hmac, sha2 directly), independent of `picomq::auth::scram::ScramClient`,
//! which the other tests use.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use hmac::{Hmac, Mac};
use picomq::auth::passwd::PasswordHash;
use picomq::auth::scram::{ScramClient, ScramSha512};
use picomq::protocol::{Auth, Packet, Properties, ProtocolVersion, QoS, ReasonCode};
use sha2::{Digest, Sha512};

const V5: ProtocolVersion = ProtocolVersion::V5;
const METHOD: &str = "SCRAM-SHA-512";

/// A password file with alice/wonderland and bob/builder ($7$) and old/pw ($6$).
fn password_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("picomq-scram-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let text = format!(
        "alice:{}\nbob:{}\nold:{}\n",
        PasswordHash::pbkdf2(b"wonderland", [5; 12], 101).encode(),
        PasswordHash::pbkdf2(b"builder", [6; 12], 1000).encode(),
        PasswordHash::sha512(b"pw", [7; 12]).encode()
    );
    let path = dir.join("passwd");
    std::fs::write(&path, text).expect("passwd");
    path
}

fn broker(name: &str, methods: &[&str]) -> TestBroker {
    let pw = password_file(name);
    let methods: Vec<String> = methods.iter().map(|m| m.to_string()).collect();
    TestBroker::start_with(move |cfg| {
        cfg.auth.password_file = Some(pw);
        // Anonymous clients allowed so the health checks and the 3.1.1 client get in.
        cfg.auth.allow_anonymous = true;
        cfg.auth.methods = methods;
        cfg.auth.acl_file = None;
    })
}

fn scram_connect(id: &str, method: &str, data: &str) -> picomq::protocol::Connect {
    let mut c = connect_packet(V5, id, true, 30);
    c.properties.authentication_method = Some(method.to_owned());
    c.properties.authentication_data = Some(Bytes::from(data.to_owned()));
    c
}

fn auth(reason: ReasonCode, method: &str, data: &str) -> Packet {
    Packet::Auth(Auth {
        reason,
        properties: Properties {
            authentication_method: Some(method.to_owned()),
            authentication_data: Some(Bytes::from(data.to_owned())),
            ..Properties::default()
        },
    })
}

/// The next packet must be AUTH `reason` with our method; returns its data.
#[track_caller]
fn expect_auth(c: &mut Client, reason: ReasonCode) -> String {
    match c.expect_packet() {
        Packet::Auth(a) => {
            assert_eq!(a.reason, reason, "AUTH reason");
            assert_eq!(a.properties.authentication_method.as_deref(), Some(METHOD));
            let data = a.properties.authentication_data.unwrap_or_default();
            String::from_utf8(data.to_vec()).expect("SCRAM data is text")
        }
        other => panic!("expected AUTH {reason:?}, got {other:?}"),
    }
}

/// A full SCRAM-SHA-512 login with the crate's client; returns the client and its CONNACK.
fn login(b: &TestBroker, id: &str, user: &str, pw: &[u8]) -> (Client, picomq::protocol::ConnAck) {
    let mut scram = ScramClient::<ScramSha512>::new(user, "0123456789abcdefghijklmn");
    let mut c = Client::tcp(b.addr, V5);
    c.send(&Packet::Connect(Box::new(scram_connect(
        id,
        METHOD,
        &scram.client_first(),
    ))));
    let first = expect_auth(&mut c, ReasonCode::CONTINUE_AUTHENTICATION);
    let fin = scram.client_final(&first, pw).expect("server-first parses");
    c.send(&auth(ReasonCode::CONTINUE_AUTHENTICATION, METHOD, &fin));
    let ack = c.expect_connack();
    if ack.reason == ReasonCode::SUCCESS {
        let data = ack.properties.authentication_data.clone().unwrap();
        assert!(scram.verify_server_final(std::str::from_utf8(&data).unwrap()));
    }
    (c, ack)
}

// ---- an independent SCRAM-SHA-512 client (RFC 5802 section 3), for the main login test ----

fn hmac512(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(A[(n >> (18 - 6 * i)) as usize & 63])
            } else {
                '='
            });
        }
    }
    out
}

fn unb64(text: &str) -> Vec<u8> {
    const A: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').chars() {
        bits = bits << 6 | A.find(c).expect("base64") as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

#[test]
fn mqtt_4_12_scram_sha_512_login_with_an_independent_client_then_publish_and_subscribe() {
    with_deadline(Duration::from_secs(20), || {
        let b = broker("login", &[METHOD]);
        let mut c = Client::tcp(b.addr, V5);
        let bare = "n=alice,r=fyko+d2lbbFgONRv9qkxdawL";
        c.send(&Packet::Connect(Box::new(scram_connect(
            "sc1",
            METHOD,
            &format!("n,,{bare}"),
        ))));
        // [MQTT-4.12.0-2]: AUTH 0x18 with the method and server-first-message.
        let first = expect_auth(&mut c, ReasonCode::CONTINUE_AUTHENTICATION);
        let attrs: Vec<&str> = first.split(',').collect();
        let nonce = attrs[0].strip_prefix("r=").unwrap();
        assert!(nonce.starts_with("fyko+d2lbbFgONRv9qkxdawL") && nonce.len() > 24);
        let salt = unb64(attrs[1].strip_prefix("s=").unwrap());
        let iterations: u32 = attrs[2].strip_prefix("i=").unwrap().parse().unwrap();
        assert_eq!((salt.as_slice(), iterations), (&[5u8; 12][..], 101));
        let mut salted = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(b"wonderland", &salt, iterations, &mut salted);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{bare},{first},{without_proof}");
        let client_key = hmac512(&salted, b"Client Key");
        let stored_key = Sha512::digest(&client_key);
        let signature = hmac512(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let fin = format!("{without_proof},p={}", b64(&proof));
        c.send(&auth(ReasonCode::CONTINUE_AUTHENTICATION, METHOD, &fin));
        // [MQTT-4.12.0-5]: CONNACK 0x00 with the same method; data = server signature.
        let ack = c.expect_connack();
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert_eq!(
            ack.properties.authentication_method.as_deref(),
            Some(METHOD)
        );
        let server_key = hmac512(&salted, b"Server Key");
        let want = format!("v={}", b64(&hmac512(&server_key, auth_message.as_bytes())));
        let got = ack.properties.authentication_data.unwrap();
        assert_eq!(std::str::from_utf8(&got).unwrap(), want);
        // The connection works like any other.
        c.sub_ok(1, "s/#", QoS::AtLeastOnce);
        c.send(&Packet::Publish(publish_packet(
            "s/1",
            b"hi",
            QoS::AtLeastOnce,
            false,
            2,
        )));
        let (mut acked, mut got) = (false, false);
        for _ in 0..2 {
            match c.expect_packet() {
                Packet::PubAck(a) if a.packet_id == 2 => acked = true,
                Packet::Publish(p) => {
                    assert_publish(&p, "s/1", b"hi", QoS::AtLeastOnce);
                    got = true;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(acked && got);
        c.disconnect();
        // A second user with another iteration count.
        let (_c2, ack) = login(&b, "sc2", "bob", b"builder");
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
    });
}

#[test]
fn mqtt_4_12_0_4_wrong_password_unknown_and_6_users_get_connack_0x86() {
    with_deadline(Duration::from_secs(20), || {
        let b = broker("wrong", &[METHOD]);
        for (user, pw) in [("alice", &b"nope"[..]), ("nobody", b"x"), ("old", b"pw")] {
            let (mut c, ack) = login(&b, "w1", user, pw);
            assert_eq!(ack.reason, ReasonCode::BAD_USER_NAME_OR_PASSWORD, "{user}");
            assert_eq!(ack.properties.authentication_method, None);
            c.expect_closed();
        }
        // Plain password login still works beside SCRAM.
        let mut plain = connect_packet(V5, "p1", true, 30);
        plain.username = Some("alice".into());
        plain.password = Some(Bytes::from_static(b"wonderland"));
        let (_c, ack) = Client::handshake(b.addr, plain);
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert_broker_healthy(b.addr, V5, "after refusals");
    });
}

#[test]
fn mqtt_4_12_0_1_unknown_or_unconfigured_method_gets_connack_0x8c() {
    with_deadline(Duration::from_secs(20), || {
        let b = broker("method", &[METHOD]);
        let (mut c, ack) = Client::handshake(b.addr, scram_connect("m1", "SCRAM-SHA-1", "n,,"));
        assert_eq!(ack.reason, ReasonCode::BAD_AUTHENTICATION_METHOD);
        c.expect_closed();
        // SCRAM-SHA-512 not enabled in config: also 0x8C.
        let off = broker("method-off", &[]);
        let (mut c, ack) =
            Client::handshake(off.addr, scram_connect("m2", METHOD, "n,,n=alice,r=abc"));
        assert_eq!(ack.reason, ReasonCode::BAD_AUTHENTICATION_METHOD);
        c.expect_closed();
    });
}

#[test]
fn mqtt_4_12_0_3_connect_exchange_protocol_errors_get_connack_0x82() {
    with_deadline(Duration::from_secs(20), || {
        let b = broker("proto", &[METHOD]);
        let bad = [
            auth(ReasonCode::RE_AUTHENTICATE, METHOD, "x"),
            auth(ReasonCode::CONTINUE_AUTHENTICATION, "PLAIN", "x"),
            Packet::PingReq,
        ];
        for packet in bad {
            let mut c = Client::tcp(b.addr, V5);
            c.send(&Packet::Connect(Box::new(scram_connect(
                "pe",
                METHOD,
                "n,,n=alice,r=abc",
            ))));
            expect_auth(&mut c, ReasonCode::CONTINUE_AUTHENTICATION);
            c.send(&packet);
            let ack = c.expect_connack();
            assert_eq!(ack.reason, ReasonCode::PROTOCOL_ERROR, "{packet:?}");
            c.expect_closed();
        }
    });
}

#[test]
fn mqtt_3_1_2_30_disconnect_during_the_connect_exchange_closes_without_connack() {
    with_deadline(Duration::from_secs(20), || {
        let b = broker("disc", &[METHOD]);
        let mut c = Client::tcp(b.addr, V5);
        c.send(&Packet::Connect(Box::new(scram_connect(
            "dc",
            METHOD,
            "n,,n=alice,r=abc",
        ))));
        expect_auth(&mut c, ReasonCode::CONTINUE_AUTHENTICATION);
        c.send(&Packet::Disconnect(picomq::protocol::Disconnect::default()));
        let (bytes, closed) = c.read_raw_until_close(Duration::from_secs(5));
        assert!(closed, "the broker must close the connection");
        assert_eq!(
            bytes,
            Vec::<u8>::new(),
            "no CONNACK (or anything) after DISCONNECT"
        );
        assert_broker_healthy(b.addr, V5, "after DISCONNECT during AUTH");
    });
}

#[test]
fn mqtt_4_12_1_reauthentication_success_and_failure_over_loopback() {
    with_deadline(Duration::from_secs(20), || {
        let b = broker("reauth", &[METHOD]);
        let (mut c, ack) = login(&b, "r1", "alice", b"wonderland");
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        let reauth = |c: &mut Client, user: &str, pw: &[u8]| {
            let mut scram = ScramClient::<ScramSha512>::new(user, "reauthnonce");
            c.send(&auth(
                ReasonCode::RE_AUTHENTICATE,
                METHOD,
                &scram.client_first(),
            ));
            let first = expect_auth(c, ReasonCode::CONTINUE_AUTHENTICATION);
            let fin = scram.client_final(&first, pw).unwrap();
            c.send(&auth(ReasonCode::CONTINUE_AUTHENTICATION, METHOD, &fin));
            scram
        };
        let scram = reauth(&mut c, "alice", b"wonderland");
        let fin = expect_auth(&mut c, ReasonCode::SUCCESS);
        assert!(scram.verify_server_final(&fin));
        c.ping();
        // [MQTT-4.12.1-2]: failure → DISCONNECT 0x87 and close.
        reauth(&mut c, "alice", b"wrong");
        c.expect_disconnect(ReasonCode::NOT_AUTHORIZED);
        // Another method on re-authentication [MQTT-4.12.1-1]: 0x82.
        let (mut c, _) = login(&b, "r2", "alice", b"wonderland");
        c.send(&auth(ReasonCode::RE_AUTHENTICATE, "PLAIN", "x"));
        c.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
        assert_broker_healthy(b.addr, V5, "after re-authentication");
    });
}

#[test]
fn mqtt_4_12_0_7_auth_without_method_in_connect_is_disconnect_0x82() {
    with_deadline(Duration::from_secs(20), || {
        let b = broker("nomethod", &[METHOD]);
        let mut plain = connect_packet(V5, "n1", true, 30);
        plain.username = Some("alice".into());
        plain.password = Some(Bytes::from_static(b"wonderland"));
        let (mut c, ack) = Client::handshake(b.addr, plain);
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        c.send(&auth(ReasonCode::RE_AUTHENTICATE, METHOD, "n,,n=alice,r=x"));
        c.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
    });
}

#[test]
fn mqtt_3_15_auth_from_a_3_1_1_client_or_before_connect_closes_the_connection() {
    with_deadline(Duration::from_secs(20), || {
        let b = broker("v311", &[METHOD]);
        // AUTH (type 15) before CONNECT: not a CONNECT, closed without CONNACK.
        let mut c = Client::tcp(b.addr, V5);
        c.send_raw(&[0xF0, 0x00]);
        c.expect_closed();
        // A 3.1.1 client: AUTH does not exist (malformed), just closed.
        let mut c = Client::connect_v311(b.addr, "v3", true, 30);
        c.send_raw(&[0xF0, 0x00]);
        c.expect_closed();
        assert_broker_healthy(b.addr, V5, "after AUTH misuse");
    });
}

#[test]
fn stalled_exchange_is_closed_by_the_connect_timeout() {
    with_deadline(Duration::from_secs(20), || {
        let pw = password_file("stall");
        let b = TestBroker::start_with(move |cfg| {
            cfg.auth.password_file = Some(pw);
            cfg.auth.allow_anonymous = false;
            cfg.auth.methods = vec![METHOD.into()];
            cfg.mqtt.connect_timeout = Duration::from_secs(1);
        });
        let start = Instant::now();
        let mut c = Client::tcp(b.addr, V5);
        c.send(&Packet::Connect(Box::new(scram_connect(
            "st",
            METHOD,
            "n,,n=alice,r=abc",
        ))));
        expect_auth(&mut c, ReasonCode::CONTINUE_AUTHENTICATION);
        // The client never answers: closed after connect_timeout, without CONNACK.
        c.expect_closed_within(Duration::from_secs(5));
        assert!(start.elapsed() >= Duration::from_millis(900));
    });
}

#[test]
fn password_file_reload_applies_to_the_next_scram_login() {
    with_deadline(Duration::from_secs(20), || {
        let pw = password_file("reload");
        let path = pw.clone();
        let b = TestBroker::start_with(move |cfg| {
            cfg.auth.password_file = Some(pw);
            cfg.auth.allow_anonymous = false;
            cfg.auth.methods = vec![METHOD.into()];
        });
        assert_eq!(
            login(&b, "l1", "carol", b"c").1.reason,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD
        );
        let mut text = std::fs::read_to_string(&path).unwrap();
        text += &format!(
            "carol:{}\n",
            PasswordHash::pbkdf2(b"c", [8; 12], 101).encode()
        );
        std::fs::write(&path, text).unwrap();
        b.authenticator().reload().expect("reload");
        assert_eq!(login(&b, "l2", "carol", b"c").1.reason, ReasonCode::SUCCESS);
    });
}

#[test]
fn rfc_7677_scram_sha_256_login_and_reauthentication_over_loopback() {
    with_deadline(Duration::from_secs(20), || {
        use picomq::auth::scram::ScramSha256;
        let pw = password_file("sha256");
        let mut text = std::fs::read_to_string(&pw).unwrap();
        text += &format!(
            "carol:{}\n",
            PasswordHash::scram_sha256(b"pencil", [9; 12], 4096).encode()
        );
        std::fs::write(&pw, text).unwrap();
        let b = TestBroker::start_with(move |cfg| {
            cfg.auth.password_file = Some(pw);
            cfg.auth.methods = vec![METHOD.into(), "SCRAM-SHA-256".into()];
        });
        const M256: &str = "SCRAM-SHA-256";
        let exchange = |c: &mut Client, first_reason: Option<ReasonCode>, pw: &[u8]| {
            let mut scram = ScramClient::<ScramSha256>::new("carol", "rOprNGfwEbeRWgbNEkqO");
            match first_reason {
                None => c.send(&Packet::Connect(Box::new(scram_connect(
                    "s256",
                    M256,
                    &scram.client_first(),
                )))),
                Some(r) => c.send(&auth(r, M256, &scram.client_first())),
            }
            let Packet::Auth(a) = c.expect_packet() else {
                panic!("expected AUTH")
            };
            assert_eq!(a.reason, ReasonCode::CONTINUE_AUTHENTICATION);
            assert_eq!(a.properties.authentication_method.as_deref(), Some(M256));
            let first = a.properties.authentication_data.unwrap();
            let first = std::str::from_utf8(&first).unwrap();
            assert!(first.ends_with(",i=4096"));
            let fin = scram.client_final(first, pw).unwrap();
            c.send(&auth(ReasonCode::CONTINUE_AUTHENTICATION, M256, &fin));
            scram
        };
        let mut c = Client::tcp(b.addr, V5);
        let scram = exchange(&mut c, None, b"pencil");
        let ack = c.expect_connack();
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert_eq!(ack.properties.authentication_method.as_deref(), Some(M256));
        let data = ack.properties.authentication_data.unwrap();
        assert!(scram.verify_server_final(std::str::from_utf8(&data).unwrap()));
        // Re-authentication with SCRAM-SHA-256.
        let scram = exchange(&mut c, Some(ReasonCode::RE_AUTHENTICATE), b"pencil");
        let Packet::Auth(done) = c.expect_packet() else {
            panic!("expected AUTH 0x00")
        };
        assert_eq!(done.reason, ReasonCode::SUCCESS);
        let data = done.properties.authentication_data.unwrap();
        assert!(scram.verify_server_final(std::str::from_utf8(&data).unwrap()));
        // Wrong password: 0x86. The same user logs in with a plain password too.
        let mut bad = Client::tcp(b.addr, V5);
        exchange(&mut bad, None, b"pen");
        assert_eq!(
            bad.expect_connack().reason,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD
        );
        let mut plain = connect_packet(V5, "p256", true, 30);
        plain.username = Some("carol".into());
        plain.password = Some(Bytes::from_static(b"pencil"));
        assert_eq!(
            Client::handshake(b.addr, plain).1.reason,
            ReasonCode::SUCCESS
        );
    });
}
