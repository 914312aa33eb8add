//! Shared harness for the integration tests: an in-process broker on a loopback port and a tiny raw
//! MQTT client built on the crate's own codec.
//!
//! Every socket read has a timeout, every loop is bounded, and [`with_deadline`] gives each test an
//! overall time limit, so a broken broker makes a test fail instead of hanging the suite.
//!
//! Not every test file uses every helper.
#![allow(dead_code)]

pub mod scene;
pub mod tls;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use picomq::config::Config;
use picomq::net::Broker;
use picomq::protocol::decode::decode_packet;
use picomq::protocol::encode::encode_packet;
use picomq::protocol::{
    ConnAck, Connect, Disconnect, LastWill, Packet, Properties, ProtocolVersion, PubResponse,
    Publish, QoS, ReasonCode, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};

/// How long a helper waits for a packet that must arrive.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a helper listens to conclude that nothing is coming.
pub const QUIET: Duration = Duration::from_millis(300);
/// Upper bound on socket reads inside one receive call (a safety net besides the time limit).
const MAX_READS_PER_RECV: usize = 100_000;

/// Turns on the broker's log output when `RUST_LOG` is set (captured per test by libtest).
pub fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// Runs `body` on its own thread and fails the test if it has not finished within `limit`.
/// A panic in `body` is passed on unchanged.
pub fn with_deadline(limit: Duration, body: impl FnOnce() + Send + 'static) {
    init_logging();
    let name = thread::current().name().unwrap_or("test").to_owned();
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            body();
            let _ = tx.send(());
        })
        .expect("spawn test thread");
    match rx.recv_timeout(limit) {
        Ok(()) => handle.join().expect("test thread"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: test did not finish within its deadline of {limit:?}")
        }
    }
}

/// The configuration every test starts from: an ephemeral loopback port, two I/O threads and two
/// router shards (so cross-thread paths are exercised), quiet logs, and no `$SYS` topics (so a
/// test subscribed to `$SYS/#` or counting retained messages sees only its own; sys_topics.rs
/// turns them on).
pub fn test_config() -> Config {
    let mut cfg = Config::default();
    cfg.listeners[0].bind = "127.0.0.1:0".parse().expect("loopback address");
    cfg.io_threads = 2;
    cfg.router_shards = 2;
    cfg.log_level = log::LevelFilter::Warn;
    cfg.sys.interval = None;
    cfg
}

/// A broker running in this process; stopped and joined on drop.
pub struct TestBroker {
    broker: Option<Broker>,
    /// The loopback address it listens on (its first listener).
    pub addr: SocketAddr,
    /// Every listener's address, in config order.
    pub addrs: Vec<SocketAddr>,
}

impl TestBroker {
    /// A broker with [`test_config`].
    pub fn start() -> TestBroker {
        TestBroker::start_with(|_| {})
    }

    /// A broker with [`test_config`] adjusted by `tweak`.
    pub fn start_with(tweak: impl FnOnce(&mut Config)) -> TestBroker {
        let mut cfg = test_config();
        tweak(&mut cfg);
        let broker = Broker::start(cfg).expect("broker starts");
        let addrs = broker.local_addrs().to_vec();
        for addr in &addrs {
            assert!(
                addr.ip().is_loopback(),
                "tests only use loopback, got {addr}"
            );
        }
        TestBroker {
            broker: Some(broker),
            addr: addrs[0],
            addrs,
        }
    }

    /// The broker's password and ACL files, e.g. to reload them.
    #[allow(dead_code)]
    pub fn authenticator(&self) -> std::sync::Arc<picomq::auth::Authenticator> {
        self.broker.as_ref().expect("running").authenticator()
    }

    /// What SIGHUP does: reloads every listener's auth files and TLS certificates.
    pub fn reloader(&self) -> picomq::net::Reloader {
        self.broker.as_ref().expect("running").reloader()
    }

    /// Dials a link to another broker (the bridge seam).
    #[allow(dead_code)]
    pub fn dial(&self, spec: picomq::broker::dialled::DialSpec) {
        self.broker.as_ref().expect("running").dial(spec)
    }

    /// The admin seam: list clients, describe one, disconnect one.
    #[allow(dead_code)]
    pub fn admin(&self) -> picomq::net::admin::AdminHandle {
        self.broker.as_ref().expect("running").admin()
    }

    /// Stops the broker and fails if its threads do not all exit within 10 s.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) -> bool {
        let Some(broker) = self.broker.take() else {
            return true;
        };
        broker.stop();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            broker.join();
            let _ = tx.send(());
        });
        let ok = rx.recv_timeout(Duration::from_secs(10)).is_ok();
        if !ok && !thread::panicking() {
            panic!("broker threads did not exit within 10 s of stop()");
        }
        ok
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// What one receive attempt produced. (Short-lived and returned by value: its size is irrelevant.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Recv {
    /// A complete packet.
    Packet(Packet),
    /// The broker closed the connection (EOF or reset) and no complete packet is buffered.
    Closed,
    /// Nothing complete arrived within the time limit.
    Timeout,
}

/// A CONNECT with no will, user name, password or properties.
pub fn connect_packet(
    version: ProtocolVersion,
    client_id: &str,
    clean: bool,
    keep_alive: u16,
) -> Connect {
    Connect {
        protocol: version,
        clean_start: clean,
        keep_alive,
        client_id: client_id.to_owned(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

/// A will message without properties.
pub fn will(topic: &str, payload: &[u8], qos: QoS, retain: bool) -> LastWill {
    LastWill {
        topic: topic.to_owned(),
        payload: Bytes::copy_from_slice(payload),
        qos,
        retain,
        properties: Properties::default(),
    }
}

/// A PUBLISH from a client; `packet_id` is used only for QoS 1 and 2.
pub fn publish_packet(
    topic: &str,
    payload: &[u8],
    qos: QoS,
    retain: bool,
    packet_id: u16,
) -> Publish {
    Publish {
        dup: false,
        qos,
        retain,
        topic: topic.to_owned(),
        packet_id: (qos != QoS::AtMostOnce).then_some(packet_id),
        properties: Properties::default(),
        payload: Bytes::copy_from_slice(payload),
    }
}

/// Subscription options asking for `qos` and nothing else.
pub fn sub_opts(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..SubscriptionOptions::default()
    }
}

/// QoS from a number in 0..=2 (for loops over QoS levels).
pub fn qos(n: u8) -> QoS {
    QoS::from_u8(n).expect("QoS 0..=2")
}

/// The encoding of `packet` for `version`, for tests that tamper with bytes.
pub fn encode(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_packet(packet, version, &mut out);
    out.to_vec()
}

/// A raw MQTT client over a blocking loopback socket. Packets are encoded and decoded with the
/// crate's own codec; raw byte strings can be sent too.
pub struct Client {
    /// The socket.
    pub stream: TcpStream,
    /// Protocol version used to encode and decode.
    pub version: ProtocolVersion,
    rbuf: BytesMut,
    eof: bool,
    /// Client-side TLS state when connected to a TLS listener (see [`tls`]).
    tls: Option<Box<rustls::ClientConnection>>,
}

impl Client {
    /// Opens a TCP connection without sending anything. `version` is what later packets use.
    pub fn tcp(addr: SocketAddr, version: ProtocolVersion) -> Client {
        let stream = TcpStream::connect_timeout(&addr, WAIT)
            .unwrap_or_else(|e| panic!("cannot connect to broker at {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        stream.set_write_timeout(Some(WAIT)).expect("write timeout");
        stream.set_read_timeout(Some(WAIT)).expect("read timeout");
        Client {
            stream,
            version,
            rbuf: BytesMut::new(),
            eof: false,
            tls: None,
        }
    }

    /// Sends `connect` and returns the CONNACK, whatever its reason code.
    #[track_caller]
    pub fn handshake(addr: SocketAddr, connect: Connect) -> (Client, ConnAck) {
        let mut c = Client::tcp(addr, connect.protocol);
        c.send(&Packet::Connect(Box::new(connect)));
        let ack = c.expect_connack();
        (c, ack)
    }

    /// A 3.1.1 client that has been accepted (CONNACK return code 0).
    #[track_caller]
    pub fn connect_v311(addr: SocketAddr, id: &str, clean: bool, keep_alive: u16) -> Client {
        let (c, ack) = Client::connect_v311_ack(addr, id, clean, keep_alive);
        assert_eq!(ack.reason, ReasonCode::SUCCESS, "CONNACK for {id:?}");
        c
    }

    /// A 3.1.1 connection attempt and its CONNACK.
    pub fn connect_v311_ack(
        addr: SocketAddr,
        id: &str,
        clean: bool,
        keep_alive: u16,
    ) -> (Client, ConnAck) {
        Client::handshake(
            addr,
            connect_packet(ProtocolVersion::V311, id, clean, keep_alive),
        )
    }

    /// A 5.0 connection attempt with CONNECT properties `props`, and its CONNACK.
    pub fn connect_v5(
        addr: SocketAddr,
        id: &str,
        clean_start: bool,
        keep_alive: u16,
        props: Properties,
    ) -> (Client, ConnAck) {
        let mut c = connect_packet(ProtocolVersion::V5, id, clean_start, keep_alive);
        c.properties = props;
        Client::handshake(addr, c)
    }

    /// A 5.0 client that has been accepted (CONNACK reason 0x00), without CONNECT properties.
    #[track_caller]
    pub fn connect_v5_ok(addr: SocketAddr, id: &str, clean_start: bool, keep_alive: u16) -> Client {
        let (c, ack) = Client::connect_v5(addr, id, clean_start, keep_alive, Properties::default());
        assert_eq!(ack.reason, ReasonCode::SUCCESS, "CONNACK for {id:?}");
        c
    }

    /// An accepted client of either version with a clean session and keep-alive 60.
    #[track_caller]
    pub fn connect(addr: SocketAddr, version: ProtocolVersion, id: &str) -> Client {
        let (c, ack) = Client::handshake(addr, connect_packet(version, id, true, 60));
        assert_eq!(ack.reason, ReasonCode::SUCCESS, "CONNACK for {id:?}");
        c
    }

    /// Encodes and sends one packet.
    #[track_caller]
    pub fn send(&mut self, packet: &Packet) {
        let bytes = encode(packet, self.version);
        self.send_raw(&bytes);
    }

    /// Sends bytes as they are; panics if the socket refuses them.
    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.try_send_raw(bytes)
            .unwrap_or_else(|e| panic!("sending {} bytes failed: {e}", bytes.len()));
    }

    /// Sends bytes as they are and reports a socket error instead of panicking (the broker may
    /// already have closed the connection).
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.tls {
            None => self.stream.write_all(bytes),
            Some(tls) => {
                let mut s = rustls::Stream::new(tls.as_mut(), &mut self.stream);
                s.write_all(bytes)?;
                s.flush()
            }
        }
    }

    /// Half-closes the connection: the broker sees EOF, and we can still read its answer.
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Reads until a complete packet is buffered, the connection closes, or `timeout` passes.
    #[track_caller]
    pub fn recv(&mut self, timeout: Duration) -> Recv {
        let deadline = Instant::now() + timeout;
        for _ in 0..MAX_READS_PER_RECV {
            match decode_packet(&mut self.rbuf, Some(self.version), u32::MAX) {
                Ok(Some(p)) => return Recv::Packet(p),
                Ok(None) => {}
                Err(e) => panic!(
                    "broker sent bytes that do not decode as {:?}: {e}; buffered: {:02x?}",
                    self.version,
                    &self.rbuf[..self.rbuf.len().min(64)]
                ),
            }
            if self.eof {
                return Recv::Closed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Recv::Timeout;
            }
            if !self.read_chunk(left) {
                return Recv::Timeout;
            }
        }
        panic!("recv: more than {MAX_READS_PER_RECV} reads without a packet");
    }

    /// One read with a timeout. Returns false on timeout; sets `eof` on EOF or a reset.
    fn read_chunk(&mut self, timeout: Duration) -> bool {
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .expect("read timeout");
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let read = match &mut self.tls {
                None => self.stream.read(&mut chunk),
                Some(tls) => rustls::Stream::new(tls.as_mut(), &mut self.stream).read(&mut chunk),
            };
            match read {
                Ok(0) => {
                    self.eof = true;
                    return true;
                }
                Ok(n) => {
                    self.rbuf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return false
                }
                Err(_) => {
                    // Connection reset or aborted: the broker closed on us.
                    self.eof = true;
                    return true;
                }
            }
        }
    }

    /// Reads raw bytes until the broker closes the connection or `timeout` passes. Returns the
    /// bytes and whether the connection was closed.
    pub fn read_raw_until_close(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + timeout;
        for _ in 0..MAX_READS_PER_RECV {
            if self.eof {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.read_chunk(left) {
                break;
            }
        }
        (self.rbuf.split().to_vec(), self.eof)
    }

    /// The next packet, which must arrive within [`WAIT`].
    #[track_caller]
    pub fn expect_packet(&mut self) -> Packet {
        self.expect_packet_within(WAIT)
    }

    /// The next packet, which must arrive within `timeout`.
    #[track_caller]
    pub fn expect_packet_within(&mut self, timeout: Duration) -> Packet {
        match self.recv(timeout) {
            Recv::Packet(p) => p,
            Recv::Closed => panic!("expected a packet, but the broker closed the connection"),
            Recv::Timeout => panic!("expected a packet, got nothing within {timeout:?}"),
        }
    }

    /// Asserts that the broker closes the connection within [`WAIT`] without sending anything.
    #[track_caller]
    pub fn expect_closed(&mut self) {
        self.expect_closed_within(WAIT);
    }

    /// Asserts that the broker closes the connection within `timeout` without sending anything.
    #[track_caller]
    pub fn expect_closed_within(&mut self, timeout: Duration) {
        match self.recv(timeout) {
            Recv::Closed => {}
            Recv::Packet(p) => panic!("expected the connection to be closed, got {p:?}"),
            Recv::Timeout => panic!("expected the connection to be closed within {timeout:?}"),
        }
    }

    /// Asserts that nothing arrives (and the connection stays open) for `quiet`.
    #[track_caller]
    pub fn expect_nothing(&mut self, quiet: Duration) {
        match self.recv(quiet) {
            Recv::Timeout => {}
            Recv::Packet(p) => panic!("expected no packet, got {p:?}"),
            Recv::Closed => panic!("expected no packet, but the broker closed the connection"),
        }
    }

    /// v5: the next packet is DISCONNECT with exactly `reason`, then the connection closes.
    /// Before v5: the connection closes without any packet.
    #[track_caller]
    pub fn expect_disconnect(&mut self, reason: ReasonCode) {
        if self.version.is_v5() {
            match self.expect_packet() {
                Packet::Disconnect(d) => assert_eq!(
                    d.reason, reason,
                    "DISCONNECT reason (reason string: {:?})",
                    d.properties.reason_string
                ),
                other => panic!("expected DISCONNECT {reason:?}, got {other:?}"),
            }
        }
        self.expect_closed();
    }

    /// The next packet must be a CONNACK.
    #[track_caller]
    pub fn expect_connack(&mut self) -> ConnAck {
        match self.expect_packet() {
            Packet::ConnAck(a) => a,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// The next packet must be a SUBACK for `packet_id`.
    #[track_caller]
    pub fn expect_suback(&mut self, packet_id: u16) -> SubAck {
        match self.expect_packet() {
            Packet::SubAck(a) => {
                assert_eq!(a.packet_id, packet_id, "SUBACK packet id");
                a
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// The next packet must be an UNSUBACK for `packet_id`.
    #[track_caller]
    pub fn expect_unsuback(&mut self, packet_id: u16) -> UnsubAck {
        match self.expect_packet() {
            Packet::UnsubAck(a) => {
                assert_eq!(a.packet_id, packet_id, "UNSUBACK packet id");
                a
            }
            other => panic!("expected UNSUBACK, got {other:?}"),
        }
    }

    /// The next packet must be a PUBLISH.
    #[track_caller]
    pub fn expect_publish(&mut self) -> Publish {
        self.expect_publish_within(WAIT)
    }

    /// The next packet must be a PUBLISH arriving within `timeout`.
    #[track_caller]
    pub fn expect_publish_within(&mut self, timeout: Duration) -> Publish {
        match self.expect_packet_within(timeout) {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// The next packet must be the given acknowledgement (PUBACK, PUBREC, PUBREL or PUBCOMP, by
    /// packet type number 4 to 7) for `packet_id` with reason Success.
    #[track_caller]
    pub fn expect_ack(&mut self, kind: u8, packet_id: u16) {
        let p = self.expect_packet();
        let r = match (kind, &p) {
            (4, Packet::PubAck(r))
            | (5, Packet::PubRec(r))
            | (6, Packet::PubRel(r))
            | (7, Packet::PubComp(r)) => r,
            _ => panic!("expected {} for id {packet_id}, got {p:?}", ack_name(kind)),
        };
        assert_eq!(r.packet_id, packet_id, "{} packet id", ack_name(kind));
        assert_eq!(r.reason, ReasonCode::SUCCESS, "{} reason", ack_name(kind));
    }

    /// The next packet must be PINGRESP.
    #[track_caller]
    pub fn expect_pingresp(&mut self) {
        match self.expect_packet() {
            Packet::PingResp => {}
            other => panic!("expected PINGRESP, got {other:?}"),
        }
    }

    /// Sends PINGREQ and expects PINGRESP: proves the connection is alive and served.
    #[track_caller]
    pub fn ping(&mut self) {
        self.send(&Packet::PingReq);
        self.expect_pingresp();
    }

    /// Subscribes to `filters` and returns the SUBACK reason codes.
    #[track_caller]
    pub fn subscribe(&mut self, packet_id: u16, filters: &[(&str, QoS)]) -> Vec<ReasonCode> {
        let filters = filters
            .iter()
            .map(|(f, q)| (f.to_string(), sub_opts(*q)))
            .collect();
        self.subscribe_with(Subscribe {
            packet_id,
            filters,
            properties: Properties::default(),
        })
    }

    /// Sends `sub` and returns the SUBACK reason codes.
    #[track_caller]
    pub fn subscribe_with(&mut self, sub: Subscribe) -> Vec<ReasonCode> {
        let id = sub.packet_id;
        self.send(&Packet::Subscribe(sub));
        self.expect_suback(id).reasons
    }

    /// Subscribes to one filter and asserts it was granted `qos`.
    #[track_caller]
    pub fn sub_ok(&mut self, packet_id: u16, filter: &str, qos: QoS) {
        let codes = self.subscribe(packet_id, &[(filter, qos)]);
        assert_eq!(
            codes,
            vec![ReasonCode(qos.as_u8())],
            "SUBACK for {filter:?}"
        );
    }

    /// Unsubscribes and returns the UNSUBACK reason codes (empty before v5).
    #[track_caller]
    pub fn unsubscribe(&mut self, packet_id: u16, filters: &[&str]) -> Vec<ReasonCode> {
        let u = Unsubscribe {
            packet_id,
            filters: filters.iter().map(|f| f.to_string()).collect(),
            properties: Properties::default(),
        };
        self.send(&Packet::Unsubscribe(u));
        self.expect_unsuback(packet_id).reasons
    }

    /// Publishes and completes the QoS flow as publisher: QoS 1 waits for PUBACK, QoS 2 for
    /// PUBREC, sends PUBREL and waits for PUBCOMP. Nothing else may arrive in between, so a client
    /// subscribed to the topic itself may use this for QoS 0 and 1 only (its own copy can arrive
    /// between PUBREC and PUBCOMP).
    #[track_caller]
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool, id: u16) {
        self.publish_with(publish_packet(topic, payload, qos, retain, id));
    }

    /// Sends `p` and completes its QoS flow as publisher.
    #[track_caller]
    pub fn publish_with(&mut self, p: Publish) {
        let qos = p.qos;
        let id = p.packet_id.unwrap_or(0);
        self.send(&Packet::Publish(p));
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.expect_ack(4, id),
            QoS::ExactlyOnce => {
                self.expect_ack(5, id);
                self.send(&Packet::PubRel(PubResponse::ok(id)));
                self.expect_ack(7, id);
            }
        }
    }

    /// Completes the QoS flow as receiver of `p`: PUBACK for QoS 1; PUBREC, then the PUBREL
    /// that must follow, then PUBCOMP for QoS 2.
    #[track_caller]
    pub fn ack(&mut self, p: &Publish) {
        match (p.qos, p.packet_id) {
            (QoS::AtMostOnce, None) => {}
            (QoS::AtLeastOnce, Some(id)) => self.send(&Packet::PubAck(PubResponse::ok(id))),
            (QoS::ExactlyOnce, Some(id)) => {
                self.send(&Packet::PubRec(PubResponse::ok(id)));
                self.expect_ack(6, id);
                self.send(&Packet::PubComp(PubResponse::ok(id)));
            }
            (q, id) => panic!("PUBLISH with QoS {q:?} and packet id {id:?}"),
        }
    }

    /// The next packet must be a PUBLISH; it is acknowledged as its QoS requires.
    #[track_caller]
    pub fn expect_publish_acked(&mut self) -> Publish {
        let p = self.expect_publish();
        self.ack(&p);
        p
    }

    /// Receives `n` PUBLISH packets in arrival order and acknowledges them as a client that
    /// pipelines: PUBACK at once for QoS 1, PUBREC at once for QoS 2 and PUBCOMP for each PUBREL
    /// when it comes (interleaved with later PUBLISHes). Returns once all `n` arrived and every
    /// QoS 2 flow is complete; anything else arriving is a failure.
    #[track_caller]
    pub fn collect_publishes(&mut self, n: usize) -> Vec<Publish> {
        let mut got = Vec::with_capacity(n);
        let mut awaiting_rel: Vec<u16> = Vec::new();
        for _ in 0..(2 * n + 1) {
            if got.len() == n && awaiting_rel.is_empty() {
                return got;
            }
            match self.expect_packet() {
                Packet::Publish(p) => {
                    match (p.qos, p.packet_id) {
                        (QoS::AtMostOnce, None) => {}
                        (QoS::AtLeastOnce, Some(id)) => {
                            self.send(&Packet::PubAck(PubResponse::ok(id)))
                        }
                        (QoS::ExactlyOnce, Some(id)) => {
                            self.send(&Packet::PubRec(PubResponse::ok(id)));
                            awaiting_rel.push(id);
                        }
                        (q, id) => panic!("PUBLISH with QoS {q:?} and packet id {id:?}"),
                    }
                    assert!(got.len() < n, "more than {n} PUBLISH packets: {p:?}");
                    got.push(p);
                }
                Packet::PubRel(r) => {
                    let pos = awaiting_rel.iter().position(|&x| x == r.packet_id);
                    let pos = pos.unwrap_or_else(|| panic!("PUBREL for unknown id: {r:?}"));
                    awaiting_rel.remove(pos);
                    self.send(&Packet::PubComp(PubResponse::ok(r.packet_id)));
                }
                other => panic!("expected PUBLISH or PUBREL, got {other:?}"),
            }
        }
        assert!(
            got.len() == n && awaiting_rel.is_empty(),
            "incomplete flows"
        );
        got
    }

    /// Sends a normal DISCONNECT (reason 0x00 for v5) and expects the broker to close.
    #[track_caller]
    pub fn disconnect(mut self) {
        self.send(&Packet::Disconnect(Disconnect::default()));
        self.expect_closed();
    }
}

fn ack_name(kind: u8) -> &'static str {
    match kind {
        4 => "PUBACK",
        5 => "PUBREC",
        6 => "PUBREL",
        7 => "PUBCOMP",
        _ => "ack",
    }
}

/// Asserts topic, payload and QoS of a received PUBLISH (and that the packet id matches the QoS).
#[track_caller]
pub fn assert_publish(p: &Publish, topic: &str, payload: &[u8], qos: QoS) {
    assert_eq!(p.topic, topic, "PUBLISH topic");
    assert_eq!(
        &p.payload[..],
        payload,
        "PUBLISH payload on {topic:?} ({:?})",
        String::from_utf8_lossy(&p.payload)
    );
    assert_eq!(p.qos, qos, "PUBLISH QoS on {topic:?}");
    assert_eq!(
        p.packet_id.is_some(),
        qos != QoS::AtMostOnce,
        "packet id presence on {topic:?}"
    );
}

/// Proves the broker still serves well-behaved clients: a fresh client of `version` connects,
/// subscribes, publishes at QoS 1 to itself, receives the message and gets PINGRESP.
#[track_caller]
pub fn assert_broker_healthy(addr: SocketAddr, version: ProtocolVersion, tag: &str) {
    let id = format!("healthy-{tag}");
    let topic = format!("health/{tag}");
    let mut c = Client::connect(addr, version, &id);
    c.sub_ok(1, &topic, QoS::AtLeastOnce);
    c.publish(&topic, b"still here", QoS::AtLeastOnce, false, 2);
    let p = c.expect_publish_acked();
    assert_publish(&p, &topic, b"still here", QoS::AtLeastOnce);
    c.ping();
    c.disconnect();
}

/// A free loopback port for the broker process to bind, from below the ephemeral range (Linux:
/// 32768 and up), so that no in-process test broker binding port 0, nor any outgoing connection,
/// can take it between this check and the broker's bind.
#[allow(dead_code)]
pub fn free_port() -> u16 {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(104_729)) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// Starts Mosquitto with `config` (written to `dir/mosquitto.conf`) and waits until it listens on
/// `port`. A missing binary fails the test (scripts/test.sh installs the Debian package).
#[allow(dead_code)]
pub fn spawn_mosquitto(dir: &std::path::Path, config: &str, port: u16) -> std::process::Child {
    use std::process::{Command, Stdio};
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, config).expect("write mosquitto.conf");
    let bin = if std::path::Path::new("/usr/sbin/mosquitto").exists() {
        "/usr/sbin/mosquitto"
    } else {
        "mosquitto"
    };
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {bin} ({e}): install the Debian package mosquitto")
        });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("mosquitto exited at start-up: {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "mosquitto did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}
