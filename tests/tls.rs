//! TLS listeners end to end, over loopback only: the harness client over rustls, and
//! `mosquitto_pub`/`mosquitto_sub` with `--cafile/--cert/--key`, against certificates made for the
//! test with `openssl` (tests/common/tls.rs). Covers publish/subscribe over TLS (3.1.1 and 5),
//! mutual TLS required and optional, `use_identity_as_username` with an ACL, the minimum TLS
//! version, ALPN, garbage and stalled handshakes, start-up errors for bad files, and certificate
//! reload. Listener limits, per-listener auth and IPv6 are in tests/listeners.rs.
//!
//! Only built with the `tls` feature (the default). Owns nothing but tests; must not touch
//! anything but loopback sockets, the files it writes under `CARGO_TARGET_TMPDIR` and the
//! `picomq` processes it starts.
#![cfg(feature = "tls")]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::tls::Pki;
use common::*;
use picomq::config::{ClientCertificate, ListenerConfig, ListenerProtocol, TlsConfig, TlsVersion};
use picomq::net::Broker;
use picomq::protocol::{ProtocolVersion, QoS, ReasonCode};

const LIMIT: Duration = Duration::from_secs(60);

/// A TLS listener on an ephemeral loopback port with `server.crt`, and the CA file when client
/// certificates are asked for.
fn tls_listener(pki: &Pki, client_certificate: ClientCertificate) -> ListenerConfig {
    ListenerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        protocol: ListenerProtocol::Mqtts,
        max_connections: None,
        tls: Some(TlsConfig {
            cert_file: pki.path("server.crt"),
            key_file: pki.path("server.key"),
            ca_file: (client_certificate != ClientCertificate::None).then(|| pki.path("ca.crt")),
            client_certificate,
            min_version: TlsVersion::V1_2,
            use_identity_as_username: false,
        }),
        auth: None,
    }
}

fn tls_broker(pki: &Pki, client_certificate: ClientCertificate) -> TestBroker {
    let listener = tls_listener(pki, client_certificate);
    TestBroker::start_with(move |cfg| cfg.listeners = vec![listener])
}

/// A CONNECT over TLS with `config`; the CONNACK, or `None` when the broker closed the
/// connection (a refused handshake) instead.
fn tls_connect(
    addr: SocketAddr,
    version: ProtocolVersion,
    id: &str,
    config: Arc<rustls::ClientConfig>,
) -> (Client, Option<picomq::protocol::ConnAck>) {
    let mut c = Client::tls(addr, version, config);
    let connect = connect_packet(version, id, true, 60);
    if c.try_send_raw(&encode(
        &picomq::protocol::Packet::Connect(Box::new(connect)),
        version,
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

#[track_caller]
fn tls_ok(
    addr: SocketAddr,
    version: ProtocolVersion,
    id: &str,
    config: Arc<rustls::ClientConfig>,
) -> Client {
    match tls_connect(addr, version, id, config) {
        (c, Some(ack)) if ack.reason == ReasonCode::SUCCESS => c,
        (_, other) => panic!("{id}: expected a successful CONNACK over TLS, got {other:?}"),
    }
}

#[track_caller]
fn tls_refused(addr: SocketAddr, id: &str, config: Arc<rustls::ClientConfig>) {
    if let (_, Some(ack)) = tls_connect(addr, ProtocolVersion::V311, id, config) {
        panic!("{id}: the TLS handshake should have failed, got {ack:?}");
    }
}

#[test]
fn tls_pubsub_round_trip_v311_and_v5() {
    with_deadline(LIMIT, || {
        let pki = Pki::generate();
        let broker = tls_broker(&pki, ClientCertificate::None);
        for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
            let mut sub = tls_ok(broker.addr, version, "sub", pki.client("ca", None));
            sub.sub_ok(1, "t/#", QoS::AtLeastOnce);
            let mut publisher = tls_ok(broker.addr, version, "pub", pki.client("ca", None));
            // Large enough to span several TLS records.
            let big = vec![b'x'; 100_000];
            // Waits for the PUBACK.
            publisher.publish("t/1", b"hello", QoS::AtLeastOnce, false, 7);
            publisher.publish("t/2", &big, QoS::AtMostOnce, false, 0);
            let p = sub.expect_publish();
            assert_publish(&p, "t/1", b"hello", QoS::AtLeastOnce);
            sub.ack(&p);
            assert_publish(&sub.expect_publish(), "t/2", &big, QoS::AtMostOnce);
            publisher.disconnect();
            // The broker ends TLS sessions with close_notify, not just a FIN.
            assert!(sub.disconnect_expect_close_notify(), "close_notify");
        }
        // ALPN "mqtt" is negotiated when offered (no ALPN was also fine above).
        let mut config = (*pki.client("ca", None)).clone();
        config.alpn_protocols = vec![b"mqtt".to_vec()];
        let c = tls_ok(broker.addr, ProtocolVersion::V5, "alpn", Arc::new(config));
        assert_eq!(c.tls_info().unwrap().0.as_deref(), Some(&b"mqtt"[..]));
        c.disconnect();
        // A client that does not trust the server's CA gives up.
        tls_refused(broker.addr, "wrong-ca", pki.client("other-ca", None));
        broker.shutdown();
    });
}

#[test]
fn mtls_required_accepts_a_valid_certificate_and_refuses_a_bad_or_missing_one() {
    with_deadline(LIMIT, || {
        let pki = Pki::generate();
        let broker = tls_broker(&pki, ClientCertificate::Required);
        let alice = tls_ok(
            broker.addr,
            ProtocolVersion::V5,
            "alice",
            pki.client("ca", Some("alice")),
        );
        tls_refused(broker.addr, "none", pki.client("ca", None));
        tls_refused(broker.addr, "mallory", pki.client("ca", Some("mallory")));
        // Also with TLS 1.2, where the server sees the certificate before finishing.
        let v12 = pki.client_config("ca", Some("mallory"), &[&rustls::version::TLS12]);
        tls_refused(broker.addr, "mallory12", v12);
        alice.disconnect();
        broker.shutdown();
    });
}

#[test]
fn mtls_optional_accepts_no_certificate_but_refuses_a_bad_one() {
    with_deadline(LIMIT, || {
        let pki = Pki::generate();
        let broker = tls_broker(&pki, ClientCertificate::Optional);
        let v = ProtocolVersion::V311;
        tls_ok(broker.addr, v, "anon", pki.client("ca", None)).disconnect();
        tls_ok(broker.addr, v, "bob", pki.client("ca", Some("bob"))).disconnect();
        tls_refused(broker.addr, "mallory", pki.client("ca", Some("mallory")));
        broker.shutdown();
    });
}

#[test]
fn identity_as_username_lets_the_acl_see_the_certificate_cn() {
    with_deadline(LIMIT, || {
        let pki = Pki::generate();
        let acl = pki.path("acl");
        std::fs::write(
            &acl,
            "user alice\ntopic readwrite alice/#\nuser dave.example\ntopic readwrite dave/#\n",
        )
        .unwrap();
        // A password file that knows nobody: with identity as user name it is not consulted.
        let passwd = pki.path("passwd");
        std::fs::write(&passwd, "").unwrap();
        let mut listener = tls_listener(&pki, ClientCertificate::Optional);
        listener.tls.as_mut().unwrap().use_identity_as_username = true;
        let broker = TestBroker::start_with(move |cfg| {
            cfg.listeners = vec![listener];
            cfg.auth.acl_file = Some(acl);
            cfg.auth.password_file = Some(passwd);
            cfg.auth.allow_anonymous = false;
        });
        let v = ProtocolVersion::V5;
        let mut alice = tls_ok(broker.addr, v, "a", pki.client("ca", Some("alice")));
        alice.sub_ok(1, "alice/#", QoS::AtMostOnce);
        alice.publish("alice/x", b"mine", QoS::AtMostOnce, false, 0);
        assert_publish(&alice.expect_publish(), "alice/x", b"mine", QoS::AtMostOnce);
        // bob's certificate is valid, but the ACL gives his CN nothing.
        let mut bob = tls_ok(broker.addr, v, "b", pki.client("ca", Some("bob")));
        assert_eq!(
            bob.subscribe(1, &[("alice/#", QoS::AtMostOnce)]),
            vec![ReasonCode::NOT_AUTHORIZED]
        );
        // A certificate without a CN stands for its first subjectAltName.
        let mut dave = tls_ok(broker.addr, v, "d", pki.client("ca", Some("dave")));
        dave.sub_ok(1, "dave/#", QoS::AtMostOnce);
        assert_eq!(
            dave.subscribe(2, &[("alice/#", QoS::AtMostOnce)]),
            vec![ReasonCode::NOT_AUTHORIZED]
        );
        dave.disconnect();
        // Without a certificate there is no identity: refused (v5 0x87).
        let (_, ack) = tls_connect(broker.addr, v, "anon", pki.client("ca", None));
        assert_eq!(ack.map(|a| a.reason), Some(ReasonCode::NOT_AUTHORIZED));
        alice.disconnect();
        bob.disconnect();
        broker.shutdown();
    });
}

#[test]
fn identity_as_username_listener_refuses_enhanced_authentication_with_0x8c() {
    with_deadline(LIMIT, || {
        let pki = Pki::generate();
        // alice can log in with SCRAM-SHA-512 on an ordinary listener (the second one): on the
        // identity listener SCRAM must neither replace a missing certificate nor override one.
        let passwd = pki.path("passwd");
        let hash = picomq::auth::PasswordHash::pbkdf2(b"wonderland", [6; 12], 101);
        std::fs::write(
            &passwd,
            format!("alice:{}\nbob:{}\n", hash.encode(), hash.encode()),
        )
        .unwrap();
        let mut identity = tls_listener(&pki, ClientCertificate::Optional);
        identity.tls.as_mut().unwrap().use_identity_as_username = true;
        let plain = tls_listener(&pki, ClientCertificate::Optional);
        let broker = TestBroker::start_with(move |cfg| {
            cfg.listeners = vec![identity, plain];
            cfg.auth.password_file = Some(passwd);
            cfg.auth.allow_anonymous = false;
            cfg.auth.methods = vec!["SCRAM-SHA-512".into()];
        });
        let second = broker.addrs[1];
        let scram_connect = |addr, id: &str, user: &str, cert: Option<&str>| {
            let mut c = Client::tls(addr, ProtocolVersion::V5, pki.client("ca", cert));
            let mut connect = connect_packet(ProtocolVersion::V5, id, true, 60);
            connect.properties.authentication_method = Some("SCRAM-SHA-512".into());
            let first = format!("n,,n={user},r=abcdef");
            connect.properties.authentication_data = Some(first.into_bytes().into());
            c.send(&picomq::protocol::Packet::Connect(Box::new(connect)));
            c.expect_packet()
        };
        // The ordinary listener runs the exchange (AUTH 0x18): SCRAM itself is configured.
        match scram_connect(second, "p", "alice", None) {
            picomq::protocol::Packet::Auth(a) => {
                assert_eq!(a.reason, ReasonCode::CONTINUE_AUTHENTICATION)
            }
            other => panic!("expected AUTH, got {other:?}"),
        }
        // The identity listener: no certificate, or alice's with SCRAM as bob: 0x8C and closed.
        for (id, user, cert) in [("n", "alice", None), ("m", "bob", Some("alice"))] {
            match scram_connect(broker.addr, id, user, cert) {
                picomq::protocol::Packet::ConnAck(a) => {
                    assert_eq!(a.reason, ReasonCode::BAD_AUTHENTICATION_METHOD, "{id}")
                }
                other => panic!("{id}: expected CONNACK 0x8C, got {other:?}"),
            }
        }
        // The certificate alone still works there.
        tls_ok(
            broker.addr,
            ProtocolVersion::V5,
            "a",
            pki.client("ca", Some("alice")),
        )
        .disconnect();
        broker.shutdown();
    });
}

#[test]
fn min_version_1_3_refuses_tls_1_2_clients() {
    with_deadline(LIMIT, || {
        let pki = Pki::generate();
        let mut listener = tls_listener(&pki, ClientCertificate::None);
        listener.tls.as_mut().unwrap().min_version = TlsVersion::V1_3;
        let broker = TestBroker::start_with(move |cfg| cfg.listeners = vec![listener]);
        let only12 = pki.client_config("ca", None, &[&rustls::version::TLS12]);
        tls_refused(broker.addr, "old", only12);
        let c = tls_ok(
            broker.addr,
            ProtocolVersion::V311,
            "new",
            pki.client("ca", None),
        );
        assert_eq!(
            c.tls_info().unwrap().1,
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        // The same with real clients. mosquitto_pub's --tls-version is a floor (tlsv1.2 means
        // "1.2 or later"), so it cannot play a 1.2-only client: openssl s_client can.
        let port = broker.addr.port().to_string();
        let ca = pki.file("ca.crt");
        let connect = format!("127.0.0.1:{port}");
        let s_client = [
            "s_client",
            "-connect",
            &connect,
            "-CAfile",
            &ca,
            "-verify_return_error",
        ];
        let (ok, out) = run_tool("openssl", &[&s_client[..], &["-tls1_2"]]);
        assert!(!ok, "a TLS 1.2-only client must be refused:\n{out}");
        let (ok, out) = run_tool("openssl", &[&s_client[..], &["-tls1_3"]]);
        assert!(ok, "TLS 1.3 s_client:\n{out}");
        let base = [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--cafile",
            &ca,
            "-t",
            "v",
            "-m",
            "x",
        ];
        let (ok, out) = run_tool("mosquitto_pub", &[&base[..], &["--tls-version", "tlsv1.3"]]);
        assert!(ok, "TLS 1.3 mosquitto_pub:\n{out}");
        c.disconnect();
        broker.shutdown();
    });
}

/// Runs a client tool (mosquitto_pub/sub, openssl) to completion (at most 15 s); (success,
/// stdout + stderr). A missing tool fails the test.
fn run_tool(tool: &str, args: &[&[&str]]) -> (bool, String) {
    let args: Vec<&str> = args.concat();
    let mut child = Command::new(tool)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "`{tool}` is needed by this test but cannot be run ({e}); install the \
                 mosquitto-clients and openssl packages (scripts/test.sh does)"
            )
        });
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{tool} {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn mosquitto_clients_over_mutual_tls() {
    with_deadline(LIMIT, || {
        let pki = Pki::generate();
        let broker = tls_broker(&pki, ClientCertificate::Required);
        let port = broker.addr.port().to_string();
        let (ca, crt, key) = (
            pki.file("ca.crt"),
            pki.file("alice.crt"),
            pki.file("alice.key"),
        );
        let tls = [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--cafile",
            &ca,
            "--cert",
            &crt,
            "--key",
            &key,
        ];
        for proto in ["mqttv311", "mqttv5"] {
            let topic = format!("tls/{proto}");
            let payload = format!("over TLS with {proto}");
            let pub_args = ["-V", proto, "-t", &topic, "-m", &payload, "-r", "-q", "1"];
            let (ok, out) = run_tool("mosquitto_pub", &[&tls[..], &pub_args[..]]);
            assert!(ok, "{out}");
            // The retained message comes back to a new subscriber.
            let sub_args = ["-V", proto, "-t", &topic, "-C", "1", "-W", "10"];
            let (ok, out) = run_tool("mosquitto_sub", &[&tls[..], &sub_args[..]]);
            assert!(ok && out.contains(&payload), "{out}");
        }
        // A certificate from another CA, and none at all, are refused.
        let (bad_crt, bad_key) = (pki.file("mallory.crt"), pki.file("mallory.key"));
        let common = [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--cafile",
            &ca,
            "-t",
            "x",
            "-m",
            "y",
        ];
        let bad = ["--cert", &bad_crt, "--key", &bad_key];
        let (ok, out) = run_tool("mosquitto_pub", &[&common[..], &bad[..]]);
        assert!(!ok, "a certificate from another CA must be refused:\n{out}");
        let (ok, out) = run_tool("mosquitto_pub", &[&common[..]]);
        assert!(!ok, "no client certificate must be refused:\n{out}");
        broker.shutdown();
    });
}

#[test]
fn garbage_and_stalled_handshakes_are_dropped_and_others_served() {
    with_deadline(LIMIT, || {
        let pki = Pki::generate();
        let listener = tls_listener(&pki, ClientCertificate::None);
        let broker = TestBroker::start_with(move |cfg| {
            cfg.listeners = vec![listener];
            cfg.mqtt.connect_timeout = Duration::from_secs(1);
        });
        let v = ProtocolVersion::V311;
        // Plain MQTT to a TLS port.
        let mut plain = Client::tcp(broker.addr, v);
        plain.send(&picomq::protocol::Packet::Connect(Box::new(
            connect_packet(v, "plain", true, 60),
        )));
        let (_, closed) = plain.read_raw_until_close(WAIT);
        assert!(closed, "plain MQTT on a TLS listener is dropped");
        // Random bytes.
        let mut junk = Client::tcp(broker.addr, v);
        let bytes: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let _ = junk.try_send_raw(&bytes);
        let (_, closed) = junk.read_raw_until_close(WAIT);
        assert!(closed, "garbage is dropped");
        // A handshake that never finishes (nothing sent, or half a ClientHello) is closed by
        // connect_timeout.
        let mut silent = Client::tcp(broker.addr, v);
        let mut half = Client::tcp(broker.addr, v);
        half.send_raw(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]);
        let started = Instant::now();
        assert!(silent.read_raw_until_close(Duration::from_secs(5)).1);
        assert!(half.read_raw_until_close(Duration::from_secs(5)).1);
        assert!(started.elapsed() < Duration::from_secs(4));
        // Meanwhile TLS clients are served.
        let c = tls_ok(broker.addr, v, "fine", pki.client("ca", None));
        c.disconnect();
        broker.shutdown();
    });
}

#[test]
fn bad_certificate_files_stop_start_up_naming_the_file() {
    with_deadline(LIMIT, || {
        let pki = Pki::generate();
        std::fs::write(pki.path("garbage.pem"), "not a certificate\n").unwrap();
        let start = |change: &dyn Fn(&mut TlsConfig)| {
            let mut cfg = test_config();
            let mut l = tls_listener(&pki, ClientCertificate::Required);
            change(l.tls.as_mut().unwrap());
            cfg.listeners = vec![l];
            match Broker::start(cfg) {
                Ok(b) => {
                    b.stop();
                    b.join();
                    panic!("the broker started with a bad TLS file");
                }
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
                    e.to_string()
                }
            }
        };
        let garbage = pki.path("garbage.pem");
        let missing = pki.path("missing.pem");
        let msg = start(&|t| t.cert_file = garbage.clone());
        assert!(msg.contains("garbage.pem"), "{msg}");
        let msg = start(&|t| t.key_file = garbage.clone());
        assert!(msg.contains("garbage.pem") && msg.contains("key"), "{msg}");
        let msg = start(&|t| t.ca_file = Some(missing.clone()));
        assert!(msg.contains("missing.pem"), "{msg}");
        // A key that does not belong to the certificate.
        let msg = start(&|t| t.key_file = pki.path("alice.key"));
        assert!(msg.contains("server.crt"), "{msg}");

        // The binary exits with 2, naming the file.
        let conf = pki.path("bad.toml");
        std::fs::write(
            &conf,
            format!(
                "[[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"mqtts\"\n\
                 cert_file = \"{}\"\nkey_file = \"{}\"\n",
                pki.file("garbage.pem"),
                pki.file("server.key")
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_picomq"))
            .args(["--conf", &conf.display().to_string()])
            .output()
            .expect("run picomq");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("garbage.pem"), "{stderr}");
    });
}

/// The release or debug `picomq` binary run with a config file, its log lines collected.
struct Process {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Process {
    fn start(conf: &std::path::Path) -> Process {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_picomq"))
            .args(["--conf", &conf.display().to_string(), "--log-level", "info"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start picomq");
        let (tx, lines) = std::sync::mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Process {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first log line containing `needle` (waits at most 10 s).
    fn wait_line(&mut self, needle: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
        panic!("no log line with {needle:?}:\n{}", self.seen.join("\n"));
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sighup_reloads_certificates_for_new_connections_and_keeps_old_ones() {
    with_deadline(LIMIT, || {
        let pki = Pki::generate();
        let install = |name: &str| {
            // Written beside and renamed over, as a certificate renewal tool does.
            for ext in ["crt", "key"] {
                let tmp = pki.path(&format!("live.{ext}.tmp"));
                std::fs::copy(pki.path(&format!("{name}.{ext}")), &tmp).unwrap();
                std::fs::rename(&tmp, pki.path(&format!("live.{ext}"))).unwrap();
            }
        };
        install("server");
        let conf = pki.path("picomq.toml");
        std::fs::write(
            &conf,
            format!(
                "[server]\nio_threads = 2\nrouter_shards = 1\n\
                 [[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"mqtts\"\n\
                 cert_file = \"{}\"\nkey_file = \"{}\"\n",
                pki.file("live.crt"),
                pki.file("live.key")
            ),
        )
        .unwrap();
        let mut broker = Process::start(&conf);
        let line = broker.wait_line("listening on ");
        let addr: SocketAddr = line
            .rsplit("listening on ")
            .next()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        assert!(addr.ip().is_loopback());
        let v = ProtocolVersion::V311;
        let mut old = tls_ok(addr, v, "old", pki.client("ca", None));
        old.sub_ok(1, "r/#", QoS::AtMostOnce);
        tls_refused(addr, "early", pki.client("other-ca", None));

        // server2 is signed by the other CA: after the reload only its clients trust the broker.
        install("server2");
        broker.signal("-HUP");
        broker.wait_line("certificate files reloaded");
        let mut new = tls_ok(addr, v, "new", pki.client("other-ca", None));
        tls_refused(addr, "stale", pki.client("ca", None));
        // The connection made with the old certificate is still up and served.
        new.publish("r/1", b"after reload", QoS::AtMostOnce, false, 0);
        assert_publish(
            &old.expect_publish(),
            "r/1",
            b"after reload",
            QoS::AtMostOnce,
        );
        old.ping();

        // A broken file on reload keeps the current certificate.
        std::fs::write(pki.path("live.crt"), "garbage\n").unwrap();
        broker.signal("-HUP");
        broker.wait_line("previous file kept");
        tls_ok(addr, v, "still", pki.client("other-ca", None)).disconnect();
        new.disconnect();
        old.disconnect();
        broker.signal("-TERM");
        broker.wait_line("picomq stopped");
    });
}
