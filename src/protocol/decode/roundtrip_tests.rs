//! Round-trip property tests without extra crates: a deterministic xorshift generator builds
//! random valid packets of every type for MQTT 3.1.1 and 5.0 (and CONNECT for 3.1), and each one
//! must survive encode -> decode unchanged, with `encoded_len` equal to the bytes written.
//!
//! Owns: the random packet generator. Must not touch: hand-written malformed inputs (`tests`).

use bytes::{Bytes, BytesMut};

use crate::protocol::decode::decode_packet;
use crate::protocol::encode::{
    encode_packet, encode_publish_header, encoded_len, publish_header_len,
};
use crate::protocol::packet::*;
use crate::protocol::properties::Properties;
use crate::protocol::reason::ReasonCode;
use crate::protocol::types::{ProtocolVersion, QoS};
use crate::protocol::wire::props::PropCtx;

/// Marsaglia xorshift64: tiny, deterministic, good enough to spread test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn u16(&mut self) -> u16 {
        self.next() as u16
    }

    fn nonzero_u16(&mut self) -> u16 {
        self.u16().max(1)
    }

    fn u32(&mut self) -> u32 {
        self.next() as u32
    }

    fn maybe<T>(&mut self, f: impl FnOnce(&mut Rng) -> T) -> Option<T> {
        if self.below(3) == 0 {
            Some(f(self))
        } else {
            None
        }
    }

    fn qos(&mut self) -> QoS {
        QoS::from_u8(self.below(3) as u8).unwrap_or_default()
    }

    /// A string of 0-12 characters mixing ASCII, control characters, multi-byte characters and
    /// (when `topic` is false) wildcards, never U+0000.
    fn string(&mut self, wildcards: bool) -> String {
        const ALPHABET: [char; 12] = [
            'a', 'z', '/', '0', ' ', '\u{1}', '\u{7f}', '\u{9f}', 'é', '日', '🦀', '$',
        ];
        let len = self.below(13);
        let mut out = String::new();
        for _ in 0..len {
            if wildcards && self.below(8) == 0 {
                out.push(if self.bool() { '+' } else { '#' });
            } else {
                out.push(ALPHABET[self.below(ALPHABET.len() as u64) as usize]);
            }
        }
        out
    }

    fn text(&mut self) -> String {
        self.string(true)
    }

    fn topic(&mut self) -> String {
        let mut t = self.string(false);
        if t.is_empty() {
            t.push('t');
        }
        t
    }

    fn bytes(&mut self) -> Bytes {
        // Mostly short, sometimes long enough for a multi-byte Remaining Length.
        let len = if self.below(25) == 0 {
            100 + self.below(400)
        } else {
            self.below(40)
        } as usize;
        (0..len)
            .map(|_| self.next() as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    fn reason(&mut self) -> ReasonCode {
        ReasonCode(self.next() as u8)
    }

    fn varint_value(&mut self) -> u32 {
        1 + self.u32() % 268_435_455
    }
}

/// Random properties valid for `ctx` (only properties allowed there, values within the rules).
fn properties(rng: &mut Rng, ctx: PropCtx) -> Properties {
    use PropCtx as C;
    let mut p = Properties::default();
    if rng.below(4) == 0 {
        return p;
    }
    let message = matches!(ctx, C::Publish | C::Will);
    let connect = matches!(ctx, C::Connect);
    let connack = matches!(ctx, C::ConnAck);
    let reasoned = matches!(
        ctx,
        C::ConnAck | C::PubResponse | C::SubAck | C::UnsubAck | C::Disconnect | C::Auth
    );
    if message {
        p.payload_format_indicator = rng.maybe(|r| r.below(2) as u8);
        p.message_expiry_interval = rng.maybe(Rng::u32);
        p.content_type = rng.maybe(Rng::text);
        p.response_topic = rng.maybe(Rng::topic);
        p.correlation_data = rng.maybe(Rng::bytes);
    }
    match ctx {
        C::Publish => {
            let n = rng.below(3);
            p.subscription_identifiers = (0..n).map(|_| rng.varint_value()).collect();
            p.topic_alias = rng.maybe(Rng::nonzero_u16);
        }
        C::Subscribe => {
            p.subscription_identifiers = rng.maybe(Rng::varint_value).into_iter().collect()
        }
        C::Will => p.will_delay_interval = rng.maybe(Rng::u32),
        _ => {}
    }
    if connect || connack || ctx == C::Disconnect {
        p.session_expiry_interval = rng.maybe(Rng::u32);
    }
    if connect || connack || ctx == C::Auth {
        p.authentication_method = rng.maybe(Rng::text);
        p.authentication_data = rng.maybe(Rng::bytes);
    }
    if connect {
        p.request_problem_information = rng.maybe(|r| r.below(2) as u8);
        p.request_response_information = rng.maybe(|r| r.below(2) as u8);
    }
    if connect || connack {
        p.receive_maximum = rng.maybe(Rng::nonzero_u16);
        p.topic_alias_maximum = rng.maybe(Rng::u16);
        p.maximum_packet_size = rng.maybe(|r| r.u32().max(1));
    }
    if connack {
        p.assigned_client_identifier = rng.maybe(Rng::text);
        p.server_keep_alive = rng.maybe(Rng::u16);
        p.response_information = rng.maybe(Rng::text);
        p.maximum_qos = rng.maybe(|r| r.below(2) as u8);
        p.retain_available = rng.maybe(|r| r.below(2) as u8);
        p.wildcard_subscription_available = rng.maybe(|r| r.below(2) as u8);
        p.subscription_identifier_available = rng.maybe(|r| r.below(2) as u8);
        p.shared_subscription_available = rng.maybe(|r| r.below(2) as u8);
    }
    if connack || ctx == C::Disconnect {
        p.server_reference = rng.maybe(Rng::text);
    }
    if reasoned {
        p.reason_string = rng.maybe(Rng::text);
    }
    let n = rng.below(3);
    p.user_properties = (0..n).map(|_| (rng.text(), rng.text())).collect();
    p
}

/// Properties for `ctx` in 5.0, nothing before.
fn props_for(rng: &mut Rng, v: ProtocolVersion, ctx: PropCtx) -> Properties {
    if v.is_v5() {
        properties(rng, ctx)
    } else {
        Properties::default()
    }
}

fn connect(rng: &mut Rng, v: ProtocolVersion) -> Packet {
    let will = rng.maybe(|r| LastWill {
        topic: r.topic(),
        payload: r.bytes(),
        qos: r.qos(),
        retain: r.bool(),
        properties: props_for(r, v, PropCtx::Will),
    });
    let username = rng.maybe(Rng::text);
    // Before 5.0 a password needs a user name.
    let password = if v.is_v5() || username.is_some() {
        rng.maybe(Rng::bytes)
    } else {
        None
    };
    Packet::Connect(Box::new(Connect {
        protocol: v,
        clean_start: rng.bool(),
        keep_alive: rng.u16(),
        client_id: rng.text(),
        will,
        username,
        password,
        properties: props_for(rng, v, PropCtx::Connect),
    }))
}

fn publish(rng: &mut Rng, v: ProtocolVersion) -> Publish {
    let qos = rng.qos();
    let mut properties = props_for(rng, v, PropCtx::Publish);
    let mut topic = rng.topic();
    if v.is_v5() && properties.topic_alias.is_some() && rng.bool() {
        topic.clear();
    }
    if topic.is_empty() && properties.topic_alias.is_none() {
        properties.topic_alias = Some(1);
    }
    Publish {
        dup: qos != QoS::AtMostOnce && rng.bool(),
        qos,
        retain: rng.bool(),
        topic,
        packet_id: (qos != QoS::AtMostOnce).then(|| rng.nonzero_u16()),
        properties,
        payload: rng.bytes(),
    }
}

fn pub_response(rng: &mut Rng, v: ProtocolVersion) -> PubResponse {
    let mut r = PubResponse::ok(rng.nonzero_u16());
    if v.is_v5() {
        if rng.bool() {
            r.reason = rng.reason();
        }
        r.properties = properties(rng, PropCtx::PubResponse);
    }
    r
}

fn sub_options(rng: &mut Rng, v: ProtocolVersion) -> SubscriptionOptions {
    let mut o = SubscriptionOptions {
        qos: rng.qos(),
        ..Default::default()
    };
    if v.is_v5() {
        o.no_local = rng.bool();
        o.retain_as_published = rng.bool();
        o.retain_handling = match rng.below(3) {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            _ => RetainHandling::DoNotSend,
        };
    }
    o
}

/// SUBACK codes that survive the 3.1.1 mapping unchanged.
fn suback_reason(rng: &mut Rng, v: ProtocolVersion) -> ReasonCode {
    if v.is_v5() {
        return rng.reason();
    }
    [
        ReasonCode(0),
        ReasonCode(1),
        ReasonCode(2),
        ReasonCode::UNSPECIFIED_ERROR,
    ][rng.below(4) as usize]
}

/// CONNACK reasons that survive the 3.1.1 mapping unchanged.
fn connack_reason(rng: &mut Rng, v: ProtocolVersion) -> ReasonCode {
    if v.is_v5() {
        return rng.reason();
    }
    ReasonCode::from_v3_connack(rng.below(6) as u8)
}

fn random_packet(rng: &mut Rng, v: ProtocolVersion, kind: u64) -> Packet {
    let v5 = v.is_v5();
    let count = 1 + rng.below(4);
    match kind {
        0 => connect(rng, v),
        1 => Packet::ConnAck(ConnAck {
            session_present: rng.bool(),
            reason: connack_reason(rng, v),
            properties: props_for(rng, v, PropCtx::ConnAck),
        }),
        2 => Packet::Publish(publish(rng, v)),
        3 => Packet::PubAck(pub_response(rng, v)),
        4 => Packet::PubRec(pub_response(rng, v)),
        5 => Packet::PubRel(pub_response(rng, v)),
        6 => Packet::PubComp(pub_response(rng, v)),
        7 => Packet::Subscribe(Subscribe {
            packet_id: rng.nonzero_u16(),
            filters: (0..count)
                .map(|_| (rng.text(), sub_options(rng, v)))
                .collect(),
            properties: props_for(rng, v, PropCtx::Subscribe),
        }),
        8 => Packet::SubAck(SubAck {
            packet_id: rng.nonzero_u16(),
            reasons: (0..count).map(|_| suback_reason(rng, v)).collect(),
            properties: props_for(rng, v, PropCtx::SubAck),
        }),
        9 => Packet::Unsubscribe(Unsubscribe {
            packet_id: rng.nonzero_u16(),
            filters: (0..count).map(|_| rng.text()).collect(),
            properties: props_for(rng, v, PropCtx::Unsubscribe),
        }),
        10 => Packet::UnsubAck(UnsubAck {
            packet_id: rng.nonzero_u16(),
            reasons: if v5 {
                (0..count).map(|_| rng.reason()).collect()
            } else {
                Vec::new()
            },
            properties: props_for(rng, v, PropCtx::UnsubAck),
        }),
        11 => Packet::PingReq,
        12 => Packet::PingResp,
        13 => Packet::Disconnect(Disconnect {
            reason: if v5 && rng.bool() {
                rng.reason()
            } else {
                ReasonCode::SUCCESS
            },
            properties: props_for(rng, v, PropCtx::Disconnect),
        }),
        _ => Packet::Auth(Auth {
            reason: if rng.bool() {
                rng.reason()
            } else {
                ReasonCode::SUCCESS
            },
            properties: properties(rng, PropCtx::Auth),
        }),
    }
}

/// Encodes, checks `encoded_len`, decodes, and compares.
fn assert_round_trip(packet: &Packet, v: ProtocolVersion) {
    let mut buf = BytesMut::new();
    encode_packet(packet, v, &mut buf);
    assert_eq!(
        buf.len(),
        encoded_len(packet, v),
        "encoded_len of {packet:?}"
    );
    let bytes = buf.to_vec();
    let current = if matches!(packet, Packet::Connect(_)) {
        None
    } else {
        Some(v)
    };
    let decoded = decode_packet(&mut buf, current, u32::MAX);
    assert_eq!(
        decoded,
        Ok(Some(packet.clone())),
        "{v:?} bytes {bytes:02x?}"
    );
    assert!(buf.is_empty());
}

#[test]
fn random_packets_round_trip_in_v311_and_v5() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..4000u64 {
        let v = if i % 2 == 0 {
            ProtocolVersion::V5
        } else {
            ProtocolVersion::V311
        };
        let kind = rng.below(if v.is_v5() { 15 } else { 14 });
        let packet = random_packet(&mut rng, v, kind);
        assert_round_trip(&packet, v);
    }
}

#[test]
fn random_connects_round_trip_in_v31() {
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    for _ in 0..300 {
        assert_round_trip(
            &connect(&mut rng, ProtocolVersion::V31),
            ProtocolVersion::V31,
        );
    }
}

#[test]
fn split_publish_encoding_matches_whole_packet_encoding() {
    let mut rng = Rng(42);
    for i in 0..500 {
        let v = if i % 2 == 0 {
            ProtocolVersion::V5
        } else {
            ProtocolVersion::V311
        };
        let p = publish(&mut rng, v);
        let mut whole = BytesMut::new();
        encode_packet(&Packet::Publish(p.clone()), v, &mut whole);
        let mut split = BytesMut::new();
        encode_publish_header(
            p.dup,
            p.qos,
            p.retain,
            &p.topic,
            p.packet_id,
            &p.properties,
            p.payload.len(),
            v,
            &mut split,
        );
        assert_eq!(
            split.len(),
            publish_header_len(p.qos, &p.topic, &p.properties, p.payload.len(), v)
        );
        split.extend_from_slice(&p.payload);
        assert_eq!(split, whole);
    }
}
