//! Fuzz target `session`: a random sequence of operations on one sans-IO `Session` — client
//! packets (built from a few fields, or decoded from raw fuzz bytes), AUTH packets for
//! re-authentication with SCRAM-SHA-512, router deliveries, clock advances and ticks, pumps,
//! link losses and reconnects with random CONNECT settings.
//!
//! Oracle: no panic; the inflight window never exceeds the largest window granted and the queue
//! never exceeds `max_queued_messages`; everything the session writes decodes as packets of the
//! link's version and fits the client's Maximum Packet Size; after a Close action the session
//! writes nothing more for that link.
//! Owns: the oracle only. Must not touch: the code under test (findings are fixed in
//! `src/session`).

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use picomq::auth::scram::ScramSha512Method;
use picomq::auth::{
    AuthMethod, ClientAcl, NonceSource, PasswordFile, PasswordHash, PasswordSource,
};
use picomq::config::MqttConfig;
use picomq::message::{Message, SessionRef, SubIds};
use picomq::protocol::decode::decode_packet;
use picomq::protocol::{
    Auth, Connect, Disconnect, Packet, Properties, ProtocolVersion, PubResponse, Publish, QoS,
    ReasonCode, RetainHandling, Subscribe, SubscriptionOptions, Unsubscribe,
};
use picomq::session::enhanced_auth::LinkAuth;
use picomq::session::outbound::Queued;
use picomq::session::{Action, LinkLoss, Output, Session};

const TOPICS: [&str; 6] = ["a", "a/b", "a/b/c", "$SYS/x", "b", ""];
const FILTERS: [&str; 8] = [
    "a",
    "a/#",
    "+/b",
    "#",
    "$share/g/a/#",
    "a/+/c",
    "b",
    "$share/g/#",
];
const ME: SessionRef = SessionRef {
    thread: 0,
    slot: 0,
    generation: 0,
};

fn scram() -> Arc<dyn AuthMethod> {
    static METHOD: OnceLock<Arc<dyn AuthMethod>> = OnceLock::new();
    METHOD
        .get_or_init(|| {
            let hash = PasswordHash::pbkdf2(b"pw", [1; 12], 1);
            let file = PasswordFile::parse(&format!("alice:{}\n", hash.encode())).unwrap();
            Arc::new(ScramSha512Method::new(
                PasswordSource::fixed(Some(file)),
                Arc::new(NonceSource::from_seed([3; 64])),
            ))
        })
        .clone()
}

/// Reads the fuzz input a byte at a time (zeros once it runs out).
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn qos(&mut self) -> QoS {
        match self.byte() % 3 {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        }
    }
    fn id(&mut self) -> u16 {
        u16::from(self.byte() % 8) + 1
    }
}

struct Sim {
    s: Session,
    cfg: MqttConfig,
    now: Instant,
    out: Output,
    /// Version and Maximum Packet Size of the attached link.
    link: Option<(ProtocolVersion, u32)>,
    closed: bool,
    max_window: usize,
}

impl Sim {
    fn connect(&mut self, inp: &mut Input) {
        let version = match inp.byte() % 4 {
            0 => ProtocolVersion::V311,
            1 => ProtocolVersion::V31,
            _ => ProtocolVersion::V5,
        };
        let flags = inp.byte();
        let mut props = Properties::default();
        let v5 = version.is_v5();
        if v5 {
            props.receive_maximum = (flags & 1 != 0).then(|| u16::from(inp.byte() % 5) + 1);
            props.maximum_packet_size = (flags & 2 != 0).then(|| 256 + u32::from(inp.u16()));
            props.topic_alias_maximum = (flags & 4 != 0).then(|| u16::from(inp.byte() % 4));
            props.session_expiry_interval = (flags & 8 != 0).then(|| u32::from(inp.byte()));
        }
        let clean = flags & 16 != 0;
        let c = Connect {
            protocol: version,
            clean_start: clean,
            keep_alive: u16::from(inp.byte() % 4),
            client_id: "fuzz".into(),
            will: None,
            username: None,
            password: None,
            properties: props,
        };
        self.drop_link(LinkLoss::Network);
        let present = !clean && self.s.outbound().queued() + self.s.filters().count() > 0;
        if clean {
            self.s = Session::new("fuzz".into(), ME);
        }
        self.out = Output::default();
        let acl = ClientAcl::allow_all();
        self.s
            .attach(&c, false, present, acl, &self.cfg, self.now, &mut self.out);
        let window = usize::from(
            self.cfg
                .max_inflight
                .min(c.properties.receive_maximum.unwrap_or(u16::MAX))
                .max(1),
        );
        self.max_window = self.max_window.max(window);
        if v5 && flags & 32 != 0 {
            let user = Some("alice".to_owned());
            self.s.enable_reauth(LinkAuth::new(scram(), user));
        }
        let max_packet = c.properties.maximum_packet_size.unwrap_or(u32::MAX);
        self.link = Some((version, max_packet));
        self.closed = false;
    }

    fn drop_link(&mut self, loss: LinkLoss) {
        if self.link.take().is_some() {
            let mut out = Output::default();
            self.s.detach(Some(loss), self.now, &mut out);
        }
        self.out = Output::default();
    }

    /// Checks what was written since the last call, then the session's bounds.
    fn check(&mut self) {
        let bytes = self.out.wire.take_all();
        let closing = self.out.actions.iter().any(|a| matches!(a, Action::Close));
        self.out.actions.clear();
        match self.link {
            Some((version, max_packet)) => {
                assert!(!self.closed || bytes.is_empty(), "wrote after Close");
                let mut buf = BytesMut::from(&bytes[..]);
                loop {
                    match decode_packet(&mut buf, Some(version), max_packet) {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => panic!("session wrote an invalid packet: {e}"),
                    }
                }
                assert!(buf.is_empty(), "session wrote a partial packet");
            }
            None => assert!(bytes.is_empty(), "wrote without a link"),
        }
        if closing {
            self.closed = true;
        }
        let ob = self.s.outbound();
        assert!(ob.inflight() <= self.max_window, "inflight over the window");
        assert!(
            ob.queued() <= self.cfg.max_queued_messages,
            "queue over its bound"
        );
    }

    fn send(&mut self, p: Packet) {
        self.s.handle(p, &self.cfg, self.now, &mut self.out);
    }
}

fn publish(inp: &mut Input) -> Packet {
    let qos = inp.qos();
    let flags = inp.byte();
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: flags & 1 != 0,
        topic: TOPICS[usize::from(flags >> 1) % TOPICS.len()].into(),
        packet_id: (qos != QoS::AtMostOnce).then(|| inp.id()),
        properties: Properties {
            topic_alias: (flags & 0x80 != 0).then(|| u16::from(inp.byte() % 4)),
            ..Properties::default()
        },
        payload: Bytes::from_static(b"p"),
    })
}

fn message(inp: &mut Input, now: Instant) -> Arc<Message> {
    let flags = inp.byte();
    let topic = TOPICS[usize::from(flags) % (TOPICS.len() - 1)].into();
    let payload = Bytes::from(vec![0u8; usize::from(inp.byte()) * 4]);
    let qos = inp.qos();
    let expires_at = (flags & 0x80 != 0).then(|| now + Duration::from_secs(u64::from(flags & 7)));
    Arc::new(Message::new(
        topic,
        payload,
        qos,
        flags & 0x40 != 0,
        Properties::default(),
        expires_at,
        None,
    ))
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let cfg = MqttConfig {
        max_inflight: 4,
        max_queued_messages: 8,
        max_queued_bytes: 4096,
        ..MqttConfig::default()
    };
    let mut sim = Sim {
        s: Session::new("fuzz".into(), ME),
        cfg,
        now: Instant::now(),
        out: Output::default(),
        link: None,
        closed: false,
        max_window: 0,
    };
    sim.connect(&mut inp);
    sim.check();
    // Bounded: at most 256 operations per input.
    for _ in 0..256 {
        if inp.0.is_empty() {
            break;
        }
        let op = inp.byte() % 16;
        let attached = sim.link.is_some() && !sim.closed;
        match op {
            0 if attached => {
                let (version, _) = sim.link.expect("attached");
                let n = usize::from(inp.byte());
                let mut buf = BytesMut::from(inp.take(n));
                match decode_packet(&mut buf, Some(version), sim.cfg.max_packet_size) {
                    Ok(Some(p)) => sim.send(p),
                    Ok(None) => {}
                    Err(e) => sim.s.violation(e.reason, e.what, &mut sim.out),
                }
            }
            1 if attached => {
                let p = publish(&mut inp);
                sim.send(p)
            }
            2 if attached => {
                let id = inp.id();
                sim.send(Packet::PubAck(PubResponse::ok(id)))
            }
            3 if attached => {
                let id = inp.id();
                let mut r = PubResponse::ok(id);
                if inp.byte() & 1 != 0 {
                    r.reason = ReasonCode::UNSPECIFIED_ERROR;
                }
                sim.send(Packet::PubRec(r))
            }
            4 if attached => {
                let id = inp.id();
                sim.send(Packet::PubRel(PubResponse::ok(id)))
            }
            5 if attached => {
                let id = inp.id();
                sim.send(Packet::PubComp(PubResponse::ok(id)))
            }
            6 if attached => {
                let f = FILTERS[usize::from(inp.byte()) % FILTERS.len()];
                let options = SubscriptionOptions {
                    qos: inp.qos(),
                    no_local: false,
                    retain_as_published: inp.byte() & 1 != 0,
                    retain_handling: RetainHandling::SendAtSubscribe,
                };
                let id = inp.id();
                sim.send(Packet::Subscribe(Subscribe {
                    packet_id: id,
                    filters: vec![(f.into(), options)],
                    properties: Properties::default(),
                }))
            }
            7 if attached => {
                let f = FILTERS[usize::from(inp.byte()) % FILTERS.len()];
                let id = inp.id();
                sim.send(Packet::Unsubscribe(Unsubscribe {
                    packet_id: id,
                    filters: vec![f.into()],
                    properties: Properties::default(),
                }))
            }
            8 | 9 => {
                let msg = message(&mut inp, sim.now);
                let qos = inp.qos().min(msg.qos);
                let item = Queued {
                    msg,
                    qos,
                    retain: false,
                    sub_ids: SubIds::None,
                    shared: None,
                };
                sim.s.deliver(item, &sim.cfg, sim.now, &mut sim.out);
            }
            10 => {
                sim.now += Duration::from_millis(u64::from(inp.byte()) * 50);
                sim.s.on_tick(sim.now, &mut sim.out);
            }
            11 => sim.s.pump(sim.now, &mut sim.out),
            12 => sim.drop_link(LinkLoss::Network),
            13 => sim.connect(&mut inp),
            14 if attached && inp.byte() & 1 == 0 => sim.send(Packet::PingReq),
            14 if attached && sim.link.is_some_and(|(v, _)| v.is_v5()) => {
                let reason = match inp.byte() % 4 {
                    0 => ReasonCode::RE_AUTHENTICATE,
                    1 => ReasonCode::CONTINUE_AUTHENTICATION,
                    2 => ReasonCode::SUCCESS,
                    _ => ReasonCode::UNSPECIFIED_ERROR,
                };
                let method = match inp.byte() % 3 {
                    0 => None,
                    1 => Some("SCRAM-SHA-256".to_owned()),
                    _ => Some("SCRAM-SHA-512".to_owned()),
                };
                let n = usize::from(inp.byte() % 64);
                let data = if inp.byte() & 1 == 0 {
                    Bytes::from_static(b"n,,n=alice,r=fuzz")
                } else {
                    Bytes::copy_from_slice(inp.take(n))
                };
                sim.send(Packet::Auth(Auth {
                    reason,
                    properties: Properties {
                        authentication_method: method,
                        authentication_data: Some(data),
                        ..Properties::default()
                    },
                }))
            }
            15 if attached => {
                let reason = if inp.byte() & 1 != 0 {
                    ReasonCode::DISCONNECT_WITH_WILL
                } else {
                    ReasonCode::SUCCESS
                };
                sim.send(Packet::Disconnect(Disconnect {
                    reason,
                    properties: Properties::default(),
                }))
            }
            _ => {}
        }
        sim.check();
    }
    // Ending the session (as expiry would) must not panic either.
    sim.drop_link(LinkLoss::Shutdown);
    let mut out = Output::default();
    sim.s.on_end(sim.now, &mut out);
});
