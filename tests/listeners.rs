//! Several listeners in one broker, over loopback only: each listener's own `max_connections`
//! on top of the broker-wide one, per-listener `allow_anonymous` / password file overriding
//! `[auth]`, and an IPv6 (`[::1]`) listener, plain and (with the `tls` feature) TLS.
//!
//! Owns nothing but tests; must not touch anything but loopback sockets and files under
//! `CARGO_TARGET_TMPDIR`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use picomq::auth::passwd::SALT_LEN;
use picomq::auth::{PasswordFile, PasswordHash};
use picomq::config::{AuthConfig, ListenerConfig};
use picomq::protocol::{ConnAck, ProtocolVersion, ReasonCode};

const LIMIT: Duration = Duration::from_secs(60);

fn loopback(port: u16) -> ListenerConfig {
    ListenerConfig::plain(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// A CONNECT's answer: the CONNACK, or `None` when the connection was closed without one.
fn try_connect(addr: SocketAddr, id: &str) -> (Client, Option<ConnAck>) {
    let mut c = Client::tcp(addr, ProtocolVersion::V311);
    let connect = connect_packet(ProtocolVersion::V311, id, true, 60);
    if c.try_send_raw(&encode(
        &picomq::protocol::Packet::Connect(Box::new(connect)),
        ProtocolVersion::V311,
    ))
    .is_err()
    {
        return (c, None);
    }
    match c.recv(WAIT) {
        Recv::Packet(picomq::protocol::Packet::ConnAck(a)) => (c, Some(a)),
        Recv::Closed => (c, None),
        other => panic!("{id}: expected CONNACK or a close, got {other:?}"),
    }
}

#[test]
fn each_listener_has_its_own_max_connections() {
    with_deadline(LIMIT, || {
        let broker = TestBroker::start_with(|cfg| {
            let mut small = loopback(0);
            small.max_connections = Some(2);
            let mut large = loopback(0);
            large.max_connections = Some(4);
            cfg.listeners = vec![small, large];
            cfg.max_connections = 100;
        });
        let (small, large) = (broker.addrs[0], broker.addrs[1]);
        let a = Client::connect_v311(small, "a", true, 60);
        let b = Client::connect_v311(small, "b", true, 60);
        // The third on the small listener is refused (closed without CONNACK)...
        let (_, ack) = try_connect(small, "c");
        assert!(ack.is_none(), "small listener is full, got {ack:?}");
        // ...while the other listener still accepts, up to its own limit.
        let mut on_large: Vec<Client> = (0..4)
            .map(|i| Client::connect_v311(large, &format!("l{i}"), true, 60))
            .collect();
        let (_, ack) = try_connect(large, "l4");
        assert!(ack.is_none(), "large listener is full, got {ack:?}");
        // Closing one frees its place on that listener only.
        a.disconnect();
        std::thread::sleep(Duration::from_millis(300));
        let again = Client::connect_v311(small, "a2", true, 60);
        let (_, ack) = try_connect(small, "c2");
        assert!(ack.is_none(), "small listener is full again, got {ack:?}");
        on_large.pop().unwrap().disconnect();
        std::thread::sleep(Duration::from_millis(300));
        Client::connect_v311(large, "l5", true, 60).disconnect();
        again.disconnect();
        b.disconnect();
        broker.shutdown();
    });
}

#[test]
fn the_broker_wide_limit_still_applies_across_listeners() {
    with_deadline(LIMIT, || {
        let broker = TestBroker::start_with(|cfg| {
            cfg.listeners = vec![loopback(0), loopback(0)];
            cfg.max_connections = 2;
        });
        let _a = Client::connect_v311(broker.addrs[0], "a", true, 60);
        let _b = Client::connect_v311(broker.addrs[1], "b", true, 60);
        let (_, ack) = try_connect(broker.addrs[1], "c");
        assert!(ack.is_none(), "broker-wide limit reached, got {ack:?}");
        broker.shutdown();
    });
}

#[test]
fn allow_anonymous_and_password_file_per_listener() {
    with_deadline(LIMIT, || {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("listeners-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let passwd = dir.join("passwd");
        let mut file = PasswordFile::new();
        let hash = PasswordHash::pbkdf2(b"secret", [7; SALT_LEN], 1000);
        file.set("carol", hash).expect("user");
        std::fs::write(&passwd, file.to_text()).unwrap();
        let passwd_path = passwd.clone();
        let broker = TestBroker::start_with(move |cfg| {
            // [auth] is open; the second listener closes anonymous access and checks passwords.
            let mut closed = loopback(0);
            closed.auth = Some(AuthConfig {
                password_file: Some(passwd),
                acl_file: None,
                allow_anonymous: false,
                methods: Vec::new(),
            });
            cfg.listeners = vec![loopback(0), closed];
        });
        let (open, closed) = (broker.addrs[0], broker.addrs[1]);
        Client::connect_v311(open, "anon-open", true, 60).disconnect();
        let (_, ack) = try_connect(closed, "anon-closed");
        assert_eq!(
            ack.map(|a| a.reason),
            Some(ReasonCode::NOT_AUTHORIZED),
            "anonymous refused on the closed listener"
        );
        let mut good = connect_packet(ProtocolVersion::V5, "carol", true, 60);
        good.username = Some("carol".into());
        good.password = Some(bytes::Bytes::from_static(b"secret"));
        let mut bad = good.clone();
        bad.password = Some(bytes::Bytes::from_static(b"wrong"));
        let (c, ack) = Client::handshake(closed, good);
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        c.disconnect();
        let (_, ack) = Client::handshake(closed, bad.clone());
        assert_eq!(ack.reason, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        // The listener's own password file is reloaded too (SIGHUP's reloader).
        let mut file = PasswordFile::new();
        let hash = PasswordHash::pbkdf2(b"wrong", [9; SALT_LEN], 1000);
        file.set("carol", hash).expect("user");
        std::fs::write(&passwd_path, file.to_text()).unwrap();
        broker.reloader().reload().expect("reload");
        let (c, ack) = Client::handshake(closed, bad);
        assert_eq!(ack.reason, ReasonCode::SUCCESS, "new password after reload");
        c.disconnect();
        broker.shutdown();
    });
}

#[test]
fn ipv6_loopback_listener() {
    with_deadline(LIMIT, || {
        let broker = TestBroker::start_with(|cfg| {
            cfg.listeners = vec![
                loopback(0),
                ListenerConfig::plain("[::1]:0".parse().unwrap()),
            ];
        });
        let v6 = broker.addrs[1];
        assert!(v6.is_ipv6(), "{v6}");
        let mut sub = Client::connect_v311(v6, "six", true, 60);
        sub.sub_ok(1, "six/#", picomq::protocol::QoS::AtMostOnce);
        // A client on the IPv4 listener reaches a subscriber on the IPv6 one.
        let mut publisher = Client::connect_v311(broker.addr, "four", true, 60);
        publisher.publish(
            "six/x",
            b"v4 to v6",
            picomq::protocol::QoS::AtMostOnce,
            false,
            0,
        );
        assert_publish(
            &sub.expect_publish(),
            "six/x",
            b"v4 to v6",
            picomq::protocol::QoS::AtMostOnce,
        );
        publisher.disconnect();
        sub.disconnect();
        broker.shutdown();
    });
}

#[cfg(feature = "tls")]
#[test]
fn ipv6_loopback_tls_listener() {
    use picomq::config::{ClientCertificate, ListenerProtocol, TlsConfig, TlsVersion};
    with_deadline(LIMIT, || {
        let pki = common::tls::Pki::generate();
        let listener = ListenerConfig {
            bind: "[::1]:0".parse().unwrap(),
            protocol: ListenerProtocol::Mqtts,
            max_connections: None,
            tls: Some(TlsConfig {
                cert_file: pki.path("server.crt"),
                key_file: pki.path("server.key"),
                ca_file: Some(pki.path("ca.crt")),
                client_certificate: ClientCertificate::Required,
                min_version: TlsVersion::V1_2,
                use_identity_as_username: false,
            }),
            auth: None,
        };
        let broker = TestBroker::start_with(move |cfg| cfg.listeners = vec![listener]);
        // The server certificate names ::1, which the client checks.
        let mut c = Client::tls(
            broker.addr,
            ProtocolVersion::V5,
            pki.client("ca", Some("alice")),
        );
        c.send(&picomq::protocol::Packet::Connect(Box::new(
            connect_packet(ProtocolVersion::V5, "six-tls", true, 60),
        )));
        assert_eq!(c.expect_connack().reason, ReasonCode::SUCCESS);
        // Sends PINGREQ and waits for PINGRESP.
        c.ping();
        c.disconnect();
        broker.shutdown();
    });
}

#[cfg(not(feature = "tls"))]
#[test]
fn a_tls_listener_needs_a_build_with_tls() {
    use picomq::config::{ClientCertificate, ListenerProtocol, TlsConfig, TlsVersion};
    let mut cfg = test_config();
    cfg.listeners[0].protocol = ListenerProtocol::Mqtts;
    cfg.listeners[0].tls = Some(TlsConfig {
        cert_file: "/nonexistent/c.pem".into(),
        key_file: "/nonexistent/k.pem".into(),
        ca_file: None,
        client_certificate: ClientCertificate::None,
        min_version: TlsVersion::V1_2,
        use_identity_as_username: false,
    });
    let err = picomq::net::Broker::start(cfg)
        .err()
        .expect("no TLS in this build");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("without TLS support"), "{err}");
}
