//! Encoder: packets in, bytes out.
//!
//! Owns: the wire layout of every packet for MQTT 3.1, 3.1.1 and 5.0, the exact size of an
//! encoding before it is written (to enforce a peer's Maximum Packet Size), and the split PUBLISH
//! encoding (header now, shared payload later). Must not touch: deciding what to send (session),
//! sockets, or validation of caller data beyond keeping every frame well-formed.
//!
//! Encoding is infallible and allocation-free beyond growing `out`, which is reserved once with
//! the exact size. For a version older than 5.0 the v5-only fields (properties, most reason codes,
//! subscription options other than QoS) are ignored. A few caller mistakes cannot be represented
//! and are neutralised rather than reported: strings and binary fields longer than 65,535 bytes
//! are cut (on a character boundary), DUP is cleared on QoS 0, a missing packet identifier on
//! QoS > 0 is written as 0, and properties not allowed on a packet type are left out.

use bytes::{BufMut, BytesMut};

use super::packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, PubResponse, SubAck, Subscribe,
    SubscriptionOptions, UnsubAck, Unsubscribe,
};
use super::properties::Properties;
use super::reason::ReasonCode;
use super::types::{ProtocolVersion, QoS};
use super::wire::props::{properties_block_len, properties_len, write_properties, PropCtx};
use super::wire::{binary_len, len_to_u32, string_len, varint_len};
use super::wire::{write_binary, write_string, write_varint};

/// Appends the full encoding of `packet` for `version` to `out`. Infallible; v5-only fields are
/// ignored for v3 (CONNACK reason via `to_v3_connack`, SUBACK reasons via `to_v3_suback`; UNSUBACK
/// has no reasons in v3; DISCONNECT has no body in v3).
///
/// CONNECT is always encoded with the protocol it names (`Connect::protocol`), whatever
/// `version` says. AUTH does not exist before 5.0: for an older `version` only an empty AUTH fixed
/// header (`F0 00`) is written, which the peer will reject; callers must not send it.
pub fn encode_packet(packet: &Packet, version: ProtocolVersion, out: &mut BytesMut) {
    let remaining = body_len(packet, version);
    out.reserve(1 + varint_len(len_to_u32(remaining)) + remaining);
    out.put_u8(first_byte(packet));
    write_varint(len_to_u32(remaining), out);
    write_body(packet, version, out);
}

/// Total encoded size of `packet` (fixed header included) without encoding it — used to enforce a
/// peer's Maximum Packet Size. Always equals what [`encode_packet`] appends.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    let remaining = body_len(packet, version);
    1 + varint_len(len_to_u32(remaining)) + remaining
}

/// Appends everything of a PUBLISH except the payload (fixed header with remaining length computed
/// from `payload_len`, topic, packet id, v5 properties), so a caller can then append or write a
/// shared payload without copying it into a packet first.
///
/// The packet identifier is written exactly when `qos` is 1 or 2 (`None` there is written as 0, a
/// caller bug the peer will reject); DUP is cleared for QoS 0, where it is not allowed.
#[allow(clippy::too_many_arguments)]
pub fn encode_publish_header(
    dup: bool,
    qos: QoS,
    retain: bool,
    topic: &str,
    packet_id: Option<u16>,
    properties: &Properties,
    payload_len: usize,
    version: ProtocolVersion,
    out: &mut BytesMut,
) {
    let without_payload = publish_body_len_without_payload(qos, topic, properties, version);
    let remaining = len_to_u32(without_payload + payload_len);
    out.reserve(1 + varint_len(remaining) + without_payload);
    out.put_u8(publish_first_byte(dup, qos, retain));
    write_varint(remaining, out);
    write_publish_fields(qos, topic, packet_id, properties, version, out);
}

/// PUBLISH fixed-header byte; DUP is dropped for QoS 0, where it is not allowed.
fn publish_first_byte(dup: bool, qos: QoS, retain: bool) -> u8 {
    let dup = dup && qos != QoS::AtMostOnce;
    0x30 | (u8::from(dup) << 3) | (qos.as_u8() << 1) | u8::from(retain)
}

/// Topic, packet identifier (QoS > 0 only) and v5 properties of a PUBLISH.
fn write_publish_fields(
    qos: QoS,
    topic: &str,
    packet_id: Option<u16>,
    properties: &Properties,
    version: ProtocolVersion,
    out: &mut BytesMut,
) {
    write_string(topic, out);
    if qos != QoS::AtMostOnce {
        out.put_u16(packet_id.unwrap_or(0));
    }
    if version.is_v5() {
        write_properties(properties, PropCtx::Publish, out);
    }
}

/// Size of that header (same arguments minus out), so callers can compute total packet size:
/// `publish_header_len(..) + payload_len`.
pub fn publish_header_len(
    qos: QoS,
    topic: &str,
    properties: &Properties,
    payload_len: usize,
    version: ProtocolVersion,
) -> usize {
    let without_payload = publish_body_len_without_payload(qos, topic, properties, version);
    1 + varint_len(len_to_u32(without_payload + payload_len)) + without_payload
}

/// Topic, packet identifier and properties of a PUBLISH: the body minus the payload.
fn publish_body_len_without_payload(
    qos: QoS,
    topic: &str,
    properties: &Properties,
    version: ProtocolVersion,
) -> usize {
    let id = if qos == QoS::AtMostOnce { 0 } else { 2 };
    string_len(topic) + id + props_len_if_v5(properties, PropCtx::Publish, version)
}

/// Size of a property block, or 0 before MQTT 5.
fn props_len_if_v5(p: &Properties, ctx: PropCtx, version: ProtocolVersion) -> usize {
    if version.is_v5() {
        properties_block_len(p, ctx)
    } else {
        0
    }
}

/// The first byte of the fixed header: packet type and flags.
fn first_byte(packet: &Packet) -> u8 {
    match packet {
        Packet::Connect(_) => 0x10,
        Packet::ConnAck(_) => 0x20,
        Packet::Publish(p) => publish_first_byte(p.dup, p.qos, p.retain),
        Packet::PubAck(_) => 0x40,
        Packet::PubRec(_) => 0x50,
        Packet::PubRel(_) => 0x62,
        Packet::PubComp(_) => 0x70,
        Packet::Subscribe(_) => 0x82,
        Packet::SubAck(_) => 0x90,
        Packet::Unsubscribe(_) => 0xA2,
        Packet::UnsubAck(_) => 0xB0,
        Packet::PingReq => 0xC0,
        Packet::PingResp => 0xD0,
        Packet::Disconnect(_) => 0xE0,
        Packet::Auth(_) => 0xF0,
    }
}

/// Remaining Length of `packet`.
fn body_len(packet: &Packet, v: ProtocolVersion) -> usize {
    match packet {
        Packet::Connect(c) => connect_len(c),
        Packet::ConnAck(c) => 2 + props_len_if_v5(&c.properties, PropCtx::ConnAck, v),
        Packet::Publish(p) => {
            publish_body_len_without_payload(p.qos, &p.topic, &p.properties, v) + p.payload.len()
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            pub_response_len(r, v)
        }
        Packet::Subscribe(s) => {
            let filters: usize = s.filters.iter().map(|(f, _)| string_len(f) + 1).sum();
            2 + props_len_if_v5(&s.properties, PropCtx::Subscribe, v) + filters
        }
        Packet::SubAck(s) => {
            2 + props_len_if_v5(&s.properties, PropCtx::SubAck, v) + s.reasons.len()
        }
        Packet::Unsubscribe(u) => {
            let filters: usize = u.filters.iter().map(|f| string_len(f)).sum();
            2 + props_len_if_v5(&u.properties, PropCtx::Unsubscribe, v) + filters
        }
        Packet::UnsubAck(u) if v.is_v5() => {
            2 + properties_block_len(&u.properties, PropCtx::UnsubAck) + u.reasons.len()
        }
        Packet::UnsubAck(_) => 2,
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => reason_tail_len(d.reason, &d.properties, PropCtx::Disconnect, v),
        Packet::Auth(a) => reason_tail_len(a.reason, &a.properties, PropCtx::Auth, v),
    }
}

/// Writes the body of `packet` (everything after the fixed header).
fn write_body(packet: &Packet, v: ProtocolVersion, out: &mut BytesMut) {
    match packet {
        Packet::Connect(c) => write_connect(c, out),
        Packet::ConnAck(c) => write_connack(c, v, out),
        Packet::Publish(p) => {
            write_publish_fields(p.qos, &p.topic, p.packet_id, &p.properties, v, out);
            out.put_slice(&p.payload);
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            write_pub_response(r, v, out)
        }
        Packet::Subscribe(s) => write_subscribe(s, v, out),
        Packet::SubAck(s) => write_suback(s, v, out),
        Packet::Unsubscribe(u) => write_unsubscribe(u, v, out),
        Packet::UnsubAck(u) => write_unsuback(u, v, out),
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(Disconnect { reason, properties }) => {
            write_reason_tail(*reason, properties, PropCtx::Disconnect, v, out)
        }
        Packet::Auth(Auth { reason, properties }) => {
            write_reason_tail(*reason, properties, PropCtx::Auth, v, out)
        }
    }
}

/// Protocol name written for each version.
fn protocol_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V31 => "MQIsdp",
        ProtocolVersion::V311 | ProtocolVersion::V5 => "MQTT",
    }
}

fn connect_len(c: &Connect) -> usize {
    let v = c.protocol;
    let mut len = string_len(protocol_name(v)) + 1 + 1 + 2;
    len += props_len_if_v5(&c.properties, PropCtx::Connect, v);
    len += string_len(&c.client_id);
    if let Some(will) = &c.will {
        len += props_len_if_v5(&will.properties, PropCtx::Will, v);
        len += string_len(&will.topic) + binary_len(&will.payload);
    }
    len += c.username.as_deref().map_or(0, string_len);
    len += c.password.as_deref().map_or(0, binary_len);
    len
}

fn write_connect(c: &Connect, out: &mut BytesMut) {
    let v = c.protocol;
    write_string(protocol_name(v), out);
    out.put_u8(v.level());
    let mut flags = u8::from(c.clean_start) << 1;
    if let Some(will) = &c.will {
        flags |= 0x04 | (will.qos.as_u8() << 3) | (u8::from(will.retain) << 5);
    }
    flags |= u8::from(c.password.is_some()) << 6;
    flags |= u8::from(c.username.is_some()) << 7;
    out.put_u8(flags);
    out.put_u16(c.keep_alive);
    if v.is_v5() {
        write_properties(&c.properties, PropCtx::Connect, out);
    }
    write_string(&c.client_id, out);
    if let Some(will) = &c.will {
        if v.is_v5() {
            write_properties(&will.properties, PropCtx::Will, out);
        }
        write_string(&will.topic, out);
        write_binary(&will.payload, out);
    }
    if let Some(username) = &c.username {
        write_string(username, out);
    }
    if let Some(password) = &c.password {
        write_binary(password, out);
    }
}

fn write_connack(c: &ConnAck, v: ProtocolVersion, out: &mut BytesMut) {
    // MQTT 3.1 has no Session Present flag: the whole first byte is reserved and 0.
    out.put_u8(u8::from(c.session_present && v != ProtocolVersion::V31));
    if v.is_v5() {
        out.put_u8(c.reason.0);
        write_properties(&c.properties, PropCtx::ConnAck, out);
    } else {
        out.put_u8(c.reason.to_v3_connack());
    }
}

/// Body length of PUBACK/PUBREC/PUBREL/PUBCOMP, using the short 5.0 forms: 2 bytes for Success
/// without properties, 3 for a reason code without properties.
fn pub_response_len(r: &PubResponse, v: ProtocolVersion) -> usize {
    if !v.is_v5() {
        return 2;
    }
    let props = properties_len(&r.properties, PropCtx::PubResponse);
    match (r.reason, props) {
        (ReasonCode::SUCCESS, 0) => 2,
        (_, 0) => 3,
        _ => 3 + properties_block_len(&r.properties, PropCtx::PubResponse),
    }
}

fn write_pub_response(r: &PubResponse, v: ProtocolVersion, out: &mut BytesMut) {
    out.put_u16(r.packet_id);
    match pub_response_len(r, v) {
        2 => {}
        3 => out.put_u8(r.reason.0),
        _ => {
            out.put_u8(r.reason.0);
            write_properties(&r.properties, PropCtx::PubResponse, out);
        }
    }
}

/// The options byte of one subscription; only the QoS bits before 5.0.
fn sub_options_byte(o: &SubscriptionOptions, v: ProtocolVersion) -> u8 {
    let mut byte = o.qos.as_u8();
    if v.is_v5() {
        byte |= u8::from(o.no_local) << 2;
        byte |= u8::from(o.retain_as_published) << 3;
        byte |= (o.retain_handling as u8) << 4;
    }
    byte
}

fn write_subscribe(s: &Subscribe, v: ProtocolVersion, out: &mut BytesMut) {
    out.put_u16(s.packet_id);
    if v.is_v5() {
        write_properties(&s.properties, PropCtx::Subscribe, out);
    }
    for (filter, options) in &s.filters {
        write_string(filter, out);
        out.put_u8(sub_options_byte(options, v));
    }
}

fn write_suback(s: &SubAck, v: ProtocolVersion, out: &mut BytesMut) {
    out.put_u16(s.packet_id);
    if v.is_v5() {
        write_properties(&s.properties, PropCtx::SubAck, out);
        for reason in &s.reasons {
            out.put_u8(reason.0);
        }
    } else {
        for reason in &s.reasons {
            out.put_u8(reason.to_v3_suback());
        }
    }
}

fn write_unsubscribe(u: &Unsubscribe, v: ProtocolVersion, out: &mut BytesMut) {
    out.put_u16(u.packet_id);
    if v.is_v5() {
        write_properties(&u.properties, PropCtx::Unsubscribe, out);
    }
    for filter in &u.filters {
        write_string(filter, out);
    }
}

fn write_unsuback(u: &UnsubAck, v: ProtocolVersion, out: &mut BytesMut) {
    out.put_u16(u.packet_id);
    if v.is_v5() {
        write_properties(&u.properties, PropCtx::UnsubAck, out);
        for reason in &u.reasons {
            out.put_u8(reason.0);
        }
    }
}

/// Body length of DISCONNECT or AUTH: empty before 5.0 and for Success without properties. A
/// DISCONNECT with a reason but no properties uses the 1-byte form (MQTT 5.0 section 3.14.2.2.1
/// allows it); AUTH always carries the property length once it has a body, as section 3.15.2.2
/// only allows omitting both.
fn reason_tail_len(reason: ReasonCode, p: &Properties, ctx: PropCtx, v: ProtocolVersion) -> usize {
    if !v.is_v5() {
        return 0;
    }
    match (reason, properties_len(p, ctx), ctx) {
        (ReasonCode::SUCCESS, 0, _) => 0,
        (_, 0, PropCtx::Disconnect) => 1,
        _ => 1 + properties_block_len(p, ctx),
    }
}

fn write_reason_tail(
    reason: ReasonCode,
    p: &Properties,
    ctx: PropCtx,
    v: ProtocolVersion,
    out: &mut BytesMut,
) {
    match reason_tail_len(reason, p, ctx, v) {
        0 => {}
        1 => out.put_u8(reason.0),
        _ => {
            out.put_u8(reason.0);
            write_properties(p, ctx, out);
        }
    }
}

#[cfg(test)]
mod tests;
