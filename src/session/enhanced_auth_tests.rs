//! Tests of enhanced authentication (MQTT 5.0 section 4.12) at the session layer, with a virtual
//! clock and SCRAM-SHA-512 over an in-memory password file. Must not touch: sockets, threads,
//! files or the real clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::auth::scram::{ScramClient, ScramSha512, ScramSha512Method};
use crate::auth::{ClientAcl, NonceSource, PasswordFile, PasswordHash, PasswordSource};
use crate::config::MqttConfig;
use crate::message::SessionRef;
use crate::protocol::decode::decode_packet;
use crate::protocol::{PubResponse, QoS};
use crate::session::{Action, Output, Session};

const METHOD: &str = "SCRAM-SHA-512";

fn method() -> Arc<dyn AuthMethod> {
    let six = PasswordHash::sha512(b"pw", [1; 12]);
    let text = format!(
        "alice:{}\nbob:{}\nold:{}\n",
        PasswordHash::pbkdf2(b"wonderland", [2; 12], 101).encode(),
        PasswordHash::pbkdf2(b"builder", [3; 12], 101).encode(),
        six.encode()
    );
    let file = PasswordFile::parse(&text).unwrap();
    Arc::new(ScramSha512Method::new(
        PasswordSource::fixed(Some(file)),
        Arc::new(NonceSource::from_seed([9; 64])),
    ))
}

fn connect(method: Option<&str>, data: Option<&str>) -> Box<Connect> {
    Box::new(Connect {
        protocol: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 10,
        client_id: "c1".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties {
            authentication_method: method.map(str::to_owned),
            authentication_data: data.map(|d| Bytes::from(d.to_owned())),
            ..Properties::default()
        },
    })
}

fn admitted() -> Admitted {
    Admitted {
        client_id: "c1".into(),
        assigned: false,
    }
}

fn decode_all(out: &mut OutBuf) -> Vec<Packet> {
    let mut buf = out.take_all();
    let mut v = Vec::new();
    while let Some(p) = decode_packet(&mut buf, Some(ProtocolVersion::V5), u32::MAX).unwrap() {
        v.push(p);
    }
    v
}

fn client_auth(reason: ReasonCode, method: &str, data: &str) -> Packet {
    Packet::Auth(Auth {
        reason,
        properties: Properties {
            authentication_method: Some(method.into()),
            authentication_data: Some(Bytes::from(data.to_owned())),
            ..Properties::default()
        },
    })
}

/// The single AUTH written, as (reason, method, data).
fn one_auth(out: &mut OutBuf) -> (ReasonCode, String, String) {
    match decode_all(out).as_slice() {
        [Packet::Auth(a)] => (
            a.reason,
            a.properties
                .authentication_method
                .clone()
                .unwrap_or_default(),
            String::from_utf8(
                a.properties
                    .authentication_data
                    .clone()
                    .unwrap_or_default()
                    .to_vec(),
            )
            .unwrap(),
        ),
        other => panic!("expected one AUTH, got {other:?}"),
    }
}

fn connack_reason(out: &mut OutBuf) -> ReasonCode {
    match decode_all(out).as_slice() {
        [Packet::ConnAck(a)] => a.reason,
        other => panic!("expected one CONNACK, got {other:?}"),
    }
}

/// CONNECT with SCRAM client-first, then the client-final answering the server's AUTH.
fn scram_connect(
    user: &str,
    password: &[u8],
    out: &mut OutBuf,
) -> (ConnectStep, ScramClient<ScramSha512>) {
    let mut client = ScramClient::<ScramSha512>::new(user, "rOprNGfwEbeRWgbNEkqO");
    let c = connect(Some(METHOD), Some(&client.client_first()));
    let ConnectStep::Pending(pending) = ConnectAuth::begin(c, admitted(), Some(method()), out)
    else {
        panic!("expected AUTH 0x18");
    };
    let (reason, m, server_first) = one_auth(out);
    assert_eq!(
        (reason, m.as_str()),
        (ReasonCode::CONTINUE_AUTHENTICATION, METHOD)
    );
    let fin = client.client_final(&server_first, password).unwrap();
    let step = pending.on_packet(
        client_auth(ReasonCode::CONTINUE_AUTHENTICATION, METHOD, &fin),
        out,
    );
    (step, client)
}

#[test]
fn accepted_carries_the_very_method_that_authenticated() {
    // Re-authentication is built from what Accepted carries: it must be the same instance
    // (same password source, same nonces), not merely one with the same name.
    let mut out = OutBuf::default();
    let mut client = ScramClient::<ScramSha512>::new("alice", "nonce");
    let c = connect(Some(METHOD), Some(&client.client_first()));
    let used = method();
    let ConnectStep::Pending(pending) =
        ConnectAuth::begin(c, admitted(), Some(Arc::clone(&used)), &mut out)
    else {
        panic!("expected AUTH 0x18");
    };
    let (_, _, server_first) = one_auth(&mut out);
    let fin = client.client_final(&server_first, b"wonderland").unwrap();
    let auth = client_auth(ReasonCode::CONTINUE_AUTHENTICATION, METHOD, &fin);
    let ConnectStep::Accepted(_, _, carried) = pending.on_packet(auth, &mut out) else {
        panic!("expected success");
    };
    assert!(Arc::ptr_eq(&carried, &used));
    assert!(!Arc::ptr_eq(&carried, &method()));
}

#[test]
fn mqtt_4_12_0_1_unsupported_method_is_refused_with_connack_0x8c() {
    let mut out = OutBuf::default();
    let step = ConnectAuth::begin(connect(Some("KERBEROS"), None), admitted(), None, &mut out);
    assert!(matches!(step, ConnectStep::Refused(r) if r == ReasonCode::BAD_AUTHENTICATION_METHOD));
    assert_eq!(
        connack_reason(&mut out),
        ReasonCode::BAD_AUTHENTICATION_METHOD
    );
}

#[test]
fn mqtt_4_12_0_2_and_4_12_0_5_scram_connect_continues_then_connack_carries_method_and_data() {
    let mut out = OutBuf::default();
    let (step, client) = scram_connect("alice", b"wonderland", &mut out);
    let ConnectStep::Accepted(c, a, m) = step else {
        panic!("expected success, got {step:?}");
    };
    assert_eq!(m.name(), METHOD);
    assert!(out.is_empty(), "CONNACK is the session's to write");
    assert_eq!(a.client_id, "c1");
    assert_eq!(c.username.as_deref(), Some("alice"));
    // The session writes CONNACK 0x00 with the same method and the server signature.
    let mut session = Session::new(
        "c1".into(),
        SessionRef {
            thread: 0,
            slot: 0,
            generation: 0,
        },
    );
    let mut o = Output::default();
    let cfg = MqttConfig::default();
    let now = Instant::now();
    session.attach(&c, false, false, ClientAcl::allow_all(), &cfg, now, &mut o);
    let written = decode_all(&mut o.wire);
    let [Packet::ConnAck(ack)] = written.as_slice() else {
        panic!("{written:?}")
    };
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert_eq!(
        ack.properties.authentication_method.as_deref(),
        Some(METHOD)
    );
    let data = ack.properties.authentication_data.clone().unwrap();
    assert!(client.verify_server_final(std::str::from_utf8(&data).unwrap()));
}

#[test]
fn mqtt_4_12_0_4_wrong_password_is_refused_with_connack_0x86() {
    let mut out = OutBuf::default();
    let (step, _) = scram_connect("alice", b"looking-glass", &mut out);
    assert!(matches!(step, ConnectStep::Refused(r) if r == ReasonCode::BAD_USER_NAME_OR_PASSWORD));
    assert_eq!(
        connack_reason(&mut out),
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
}

#[test]
fn scram_user_with_a_6_entry_or_unknown_is_refused_with_connack_0x86() {
    for user in ["old", "nobody"] {
        let mut out = OutBuf::default();
        let (step, _) = scram_connect(user, b"pw", &mut out);
        assert!(matches!(step, ConnectStep::Refused(_)), "{user}");
        assert_eq!(
            connack_reason(&mut out),
            ReasonCode::BAD_USER_NAME_OR_PASSWORD
        );
    }
}

#[test]
fn connect_user_name_must_be_the_authenticated_one() {
    let mut out = OutBuf::default();
    let client = ScramClient::<ScramSha512>::new("alice", "abc");
    let mut c = connect(Some(METHOD), Some(&client.client_first()));
    c.username = Some("bob".into());
    let ConnectStep::Pending(p) = ConnectAuth::begin(c, admitted(), Some(method()), &mut out)
    else {
        panic!()
    };
    let (_, _, first) = one_auth(&mut out);
    let mut client = client;
    let fin = client.client_final(&first, b"wonderland").unwrap();
    let step = p.on_packet(
        client_auth(ReasonCode::CONTINUE_AUTHENTICATION, METHOD, &fin),
        &mut out,
    );
    assert!(matches!(step, ConnectStep::Refused(r) if r == ReasonCode::BAD_USER_NAME_OR_PASSWORD));
}

#[test]
fn mqtt_4_12_0_3_and_4_12_0_5_client_must_answer_with_auth_0x18_and_the_same_method() {
    let bad = [
        client_auth(ReasonCode::RE_AUTHENTICATE, METHOD, "x"),
        client_auth(ReasonCode::SUCCESS, METHOD, "x"),
        client_auth(ReasonCode::CONTINUE_AUTHENTICATION, "SCRAM-SHA-256", "x"),
        Packet::PingReq,
        Packet::Connect(connect(Some(METHOD), None)),
    ];
    for packet in bad {
        let mut out = OutBuf::default();
        let c = connect(Some(METHOD), Some("n,,n=alice,r=abc"));
        let ConnectStep::Pending(p) = ConnectAuth::begin(c, admitted(), Some(method()), &mut out)
        else {
            panic!()
        };
        one_auth(&mut out);
        let what = format!("{packet:?}");
        let step = p.on_packet(packet, &mut out);
        assert!(
            matches!(step, ConnectStep::Refused(r) if r == ReasonCode::PROTOCOL_ERROR),
            "{what}"
        );
        assert_eq!(connack_reason(&mut out), ReasonCode::PROTOCOL_ERROR);
    }
}

#[test]
fn mqtt_3_1_2_30_disconnect_during_the_exchange_closes_without_connack() {
    for reason in [ReasonCode::SUCCESS, ReasonCode::DISCONNECT_WITH_WILL] {
        let mut out = OutBuf::default();
        let c = connect(Some(METHOD), Some("n,,n=alice,r=abc"));
        let ConnectStep::Pending(p) = ConnectAuth::begin(c, admitted(), Some(method()), &mut out)
        else {
            panic!()
        };
        one_auth(&mut out);
        let disconnect = Packet::Disconnect(crate::protocol::Disconnect {
            reason,
            properties: Properties::default(),
        });
        let step = p.on_packet(disconnect, &mut out);
        assert!(matches!(step, ConnectStep::Closed), "{step:?}");
        assert!(decode_all(&mut out).is_empty(), "nothing may be sent");
    }
}

#[test]
fn malformed_scram_in_connect_is_refused_with_0x86() {
    let mut out = OutBuf::default();
    let c = connect(Some(METHOD), None);
    let step = ConnectAuth::begin(c, admitted(), Some(method()), &mut out);
    assert!(matches!(step, ConnectStep::Refused(_)));
    assert_eq!(
        connack_reason(&mut out),
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
}

/// A session attached after a SCRAM login as `user`, with a virtual clock.
struct Sim {
    s: Session,
    out: Output,
    cfg: MqttConfig,
    now: Instant,
}

impl Sim {
    fn new(reauth: bool) -> Sim {
        let mut sim = Sim {
            s: Session::new(
                "c1".into(),
                SessionRef {
                    thread: 0,
                    slot: 0,
                    generation: 0,
                },
            ),
            out: Output::default(),
            cfg: MqttConfig::default(),
            now: Instant::now(),
        };
        let mut c = connect(reauth.then_some(METHOD), None);
        c.username = Some("alice".into());
        let acl = ClientAcl::allow_all();
        sim.s
            .attach(&c, false, false, acl, &sim.cfg, sim.now, &mut sim.out);
        if reauth {
            sim.s
                .enable_reauth(LinkAuth::new(method(), Some("alice".into())));
        }
        decode_all(&mut sim.out.wire);
        sim
    }

    fn send(&mut self, p: Packet) {
        self.s.handle(p, &self.cfg, self.now, &mut self.out);
    }

    fn disconnect_reason(&mut self) -> Option<ReasonCode> {
        let closes = self.out.actions.iter().any(|a| matches!(a, Action::Close));
        match decode_all(&mut self.out.wire).as_slice() {
            [Packet::Disconnect(d)] if closes => Some(d.reason),
            _ => None,
        }
    }

    /// Runs a re-authentication as `user`; returns the server's final AUTH reason, or the
    /// DISCONNECT reason.
    fn reauth(&mut self, user: &str, password: &[u8]) -> ReasonCode {
        let mut client = ScramClient::<ScramSha512>::new(user, "cnonce");
        self.send(client_auth(
            ReasonCode::RE_AUTHENTICATE,
            METHOD,
            &client.client_first(),
        ));
        let (reason, m, first) = one_auth(&mut self.out.wire);
        assert_eq!(
            (reason, m.as_str()),
            (ReasonCode::CONTINUE_AUTHENTICATION, METHOD)
        );
        // The connection keeps working during the exchange (keep-alive, QoS flow).
        self.now += Duration::from_secs(5);
        self.send(Packet::PingReq);
        assert_eq!(decode_all(&mut self.out.wire), vec![Packet::PingResp]);
        let fin = client.client_final(&first, password).unwrap();
        self.send(client_auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            METHOD,
            &fin,
        ));
        if self.out.actions.iter().any(|a| matches!(a, Action::Close)) {
            return self.disconnect_reason().expect("DISCONNECT before close");
        }
        let (reason, m, server_final) = one_auth(&mut self.out.wire);
        assert_eq!(m, METHOD);
        assert!(client.verify_server_final(&server_final));
        reason
    }
}

#[test]
fn mqtt_4_12_1_reauthentication_succeeds_with_auth_0x00_and_can_repeat() {
    let mut sim = Sim::new(true);
    assert_eq!(sim.reauth("alice", b"wonderland"), ReasonCode::SUCCESS);
    sim.now += Duration::from_secs(5);
    assert_eq!(sim.reauth("alice", b"wonderland"), ReasonCode::SUCCESS);
    // Still connected and serving.
    sim.send(Packet::PingReq);
    assert_eq!(decode_all(&mut sim.out.wire), vec![Packet::PingResp]);
    assert!(sim.out.actions.is_empty());
}

#[test]
fn mqtt_4_12_1_2_failed_reauthentication_disconnects_with_0x87() {
    let mut sim = Sim::new(true);
    assert_eq!(sim.reauth("alice", b"nope"), ReasonCode::NOT_AUTHORIZED);
    let mut sim = Sim::new(true);
    assert_eq!(sim.reauth("bob", b"builder"), ReasonCode::NOT_AUTHORIZED);
}

#[test]
fn mqtt_4_12_1_1_reauthentication_with_another_method_is_a_protocol_error() {
    let mut sim = Sim::new(true);
    sim.send(client_auth(
        ReasonCode::RE_AUTHENTICATE,
        "SCRAM-SHA-256",
        "n,,n=alice,r=x",
    ));
    assert_eq!(sim.disconnect_reason(), Some(ReasonCode::PROTOCOL_ERROR));
}

#[test]
fn mqtt_4_12_0_7_auth_without_a_method_in_connect_is_a_protocol_error() {
    let mut sim = Sim::new(false);
    sim.send(client_auth(
        ReasonCode::RE_AUTHENTICATE,
        METHOD,
        "n,,n=alice,r=x",
    ));
    assert_eq!(sim.disconnect_reason(), Some(ReasonCode::PROTOCOL_ERROR));
}

#[test]
fn mqtt_3_15_2_1_auth_reason_codes_out_of_sequence_are_protocol_errors() {
    // 0x18 with nothing in progress.
    let mut sim = Sim::new(true);
    sim.send(client_auth(
        ReasonCode::CONTINUE_AUTHENTICATION,
        METHOD,
        "x",
    ));
    assert_eq!(sim.disconnect_reason(), Some(ReasonCode::PROTOCOL_ERROR));
    // 0x19 while one is in progress.
    let mut sim = Sim::new(true);
    sim.send(client_auth(
        ReasonCode::RE_AUTHENTICATE,
        METHOD,
        "n,,n=alice,r=x",
    ));
    one_auth(&mut sim.out.wire);
    sim.send(client_auth(
        ReasonCode::RE_AUTHENTICATE,
        METHOD,
        "n,,n=alice,r=x",
    ));
    assert_eq!(sim.disconnect_reason(), Some(ReasonCode::PROTOCOL_ERROR));
    // 0x00 is the server's to send.
    let mut sim = Sim::new(true);
    sim.send(client_auth(ReasonCode::SUCCESS, METHOD, ""));
    assert_eq!(sim.disconnect_reason(), Some(ReasonCode::PROTOCOL_ERROR));
}

#[test]
fn reauthentication_does_not_stop_the_qos_flow_or_keep_alive() {
    let mut sim = Sim::new(true);
    sim.send(client_auth(
        ReasonCode::RE_AUTHENTICATE,
        METHOD,
        "n,,n=alice,r=x",
    ));
    one_auth(&mut sim.out.wire);
    sim.send(Packet::Publish(crate::protocol::Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "t".into(),
        packet_id: Some(7),
        properties: Properties::default(),
        payload: Bytes::from_static(b"x"),
    }));
    let acks = decode_all(&mut sim.out.wire);
    assert!(matches!(
        acks.as_slice(),
        [Packet::PubAck(PubResponse { packet_id: 7, .. })]
    ));
    // A stalled re-authentication is bounded by keep-alive like any silence (1.5 × 10 s).
    sim.now += Duration::from_secs(16);
    sim.s.on_tick(sim.now, &mut sim.out);
    assert_eq!(
        sim.disconnect_reason(),
        Some(ReasonCode::KEEP_ALIVE_TIMEOUT)
    );
}
