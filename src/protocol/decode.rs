//! Decoder: bytes in, one [`Packet`] or a precise [`DecodeError`] out.
//!
//! Owns: framing (fixed header, Remaining Length, Maximum Packet Size) and the syntactic rules of
//! every packet for MQTT 3.1, 3.1.1 and 5.0: reserved bits, field layouts, UTF-8 rules, property
//! rules (via [`wire::props`]). Must not touch: session rules (which packet may come when, from
//! which side), topic *filter* syntax (the session validates filters per entry with `topic`, so it
//! can answer per filter in SUBACK), sockets or clocks.
//!
//! Copy or share: payloads, passwords, correlation and authentication data come out as `Bytes`.
//! A packet that is all the read buffer holds and at least [`SHARE_MIN`] bytes long takes the
//! buffer over (trimmed to the packet, no copy of the payload); every other packet's fields are
//! copied into allocations of their own. Slicing a small packet out of a connection's read buffer
//! would let one small retained or queued message keep that whole buffer (up to the maximum packet
//! size plus a read budget) alive, and the memory budgets, which count message bytes, would not
//! see it.

use bytes::{Buf, Bytes, BytesMut};

use super::error::DecodeError;
use super::packet::{
    Auth, ConnAck, Connect, Disconnect, LastWill, Packet, PubResponse, Publish, RetainHandling,
    SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use super::properties::Properties;
use super::reason::ReasonCode;
use super::types::{ProtocolVersion, QoS};
pub use super::wire::props::PropLimits;
use super::wire::props::{read_properties, PropCtx};
use super::wire::{self, Reader};

#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod tests;

/// The fixed header of the packet at the front of a buffer: what [`peek_fixed_header`] learns
/// before the body has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// Packet type (high nibble) and flags (low nibble), not validated yet.
    pub first_byte: u8,
    /// Length of the body that follows the fixed header.
    pub remaining_len: usize,
    /// Length of the fixed header itself: 1 + the Remaining Length field (2 to 5 bytes in all).
    pub header_len: usize,
}

impl FixedHeader {
    /// Size of the whole packet: fixed header plus body.
    pub fn total_len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// Fixed header peek: `Ok(None)` if `buf` holds fewer bytes than the fixed header needs; else the
/// first byte, Remaining Length and header length.
///
/// Errors before the body arrives, so a peer cannot make the broker buffer an oversized packet:
/// a Remaining Length longer than 4 bytes is Malformed Packet, and a total size (header plus
/// Remaining Length) above `max_packet_size` is Packet too large.
pub fn peek_fixed_header(
    buf: &[u8],
    max_packet_size: u32,
) -> Result<Option<FixedHeader>, DecodeError> {
    let Some((&first_byte, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let Some((remaining, used)) = wire::read_varint_prefix(rest)? else {
        return Ok(None);
    };
    let header = FixedHeader {
        first_byte,
        remaining_len: remaining as usize,
        header_len: 1 + used,
    };
    if header.total_len() as u64 > u64::from(max_packet_size) {
        return Err(DecodeError::new(
            ReasonCode::PACKET_TOO_LARGE,
            "packet exceeds maximum packet size",
        ));
    }
    Ok(Some(header))
}

/// Smallest packet whose fields may share the read buffer instead of being copied: below it a
/// copy costs less than the allocation it could pin, above it the copy is skipped when the packet
/// is alone in the buffer.
pub const SHARE_MIN: usize = 16 * 1024;

const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PUBREC: u8 = 5;
const PUBREL: u8 = 6;
const PUBCOMP: u8 = 7;
const SUBSCRIBE: u8 = 8;
const SUBACK: u8 = 9;
const UNSUBSCRIBE: u8 = 10;
const UNSUBACK: u8 = 11;
const PINGREQ: u8 = 12;
const PINGRESP: u8 = 13;
const DISCONNECT: u8 = 14;
const AUTH: u8 = 15;

/// Decodes one packet from the front of `buf` if it is complete, removing its bytes (binary fields
/// are copied out, or share the buffer when the packet is large and alone in it: see the module
/// docs). Returns `Ok(None)`, leaving `buf` untouched, while the packet is incomplete.
///
/// `version` is `None` before CONNECT: then only CONNECT is accepted (anything else is Protocol
/// Error "first packet must be CONNECT"). CONNECT is decoded whatever `version` says, with the
/// version it announces, so that the session can reject a second CONNECT itself. The size limit
/// is enforced from the fixed header alone (see [`peek_fixed_header`]). After an `Err` the stream
/// cannot be resynchronised: the caller must close the connection (the buffer may or may not
/// still hold the offending bytes).
pub fn decode_packet(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
) -> Result<Option<Packet>, DecodeError> {
    decode_packet_limited(buf, version, max_packet_size, PropLimits::UNLIMITED)
}

/// [`decode_packet`] with caps on every MQTT 5.0 property block (see [`PropLimits`]): a block
/// over them fails with Quota exceeded before its properties are stored.
pub fn decode_packet_limited(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
    limits: PropLimits,
) -> Result<Option<Packet>, DecodeError> {
    let Some(header) = peek_fixed_header(buf, max_packet_size)? else {
        return Ok(None);
    };
    let packet_type = check_first_byte(header.first_byte, version)?;
    if buf.len() < header.total_len() {
        return Ok(None);
    }
    let remaining_len_minimal = wire::is_minimal_varint(
        wire::len_to_u32(header.remaining_len),
        header.header_len - 1,
    );
    let packet = if header.total_len() >= SHARE_MIN && buf.len() == header.total_len() {
        let frame = take_whole(buf);
        let body = frame.slice(header.header_len..);
        decode_frame(header, packet_type, Reader::shared(&body, limits), version)?
    } else {
        let body = buf
            .get(header.header_len..header.total_len())
            .unwrap_or_default();
        let packet = decode_frame(header, packet_type, Reader::copying(body, limits), version)?;
        buf.advance(header.total_len());
        packet
    };
    // [MQTT-1.5.5-1] holds for the Remaining Length too; a CONNECT tells its version only now.
    if !remaining_len_minimal && packet_version(&packet, version).is_some_and(|v| v.is_v5()) {
        return Err(DecodeError::malformed(
            "remaining length not in its minimal encoding",
        ));
    }
    Ok(Some(packet))
}

/// The version a packet was decoded with: the one a CONNECT names, else the connection's.
fn packet_version(packet: &Packet, version: Option<ProtocolVersion>) -> Option<ProtocolVersion> {
    match packet {
        Packet::Connect(c) => Some(c.protocol),
        _ => version,
    }
}

/// Takes the whole of `buf` (one complete large packet) as `Bytes` without copying it: the
/// allocation is handed over and trimmed to the packet (a shrinking `realloc`, done in place by
/// the allocator), so what the packet's fields keep alive is the packet and nothing more. `buf`
/// is left empty, and the connection allocates a fresh one on its next read.
fn take_whole(buf: &mut BytesMut) -> Bytes {
    let mut vec: Vec<u8> = std::mem::take(buf).into();
    vec.shrink_to_fit();
    Bytes::from(vec)
}

/// Decodes the body of one framed packet.
fn decode_frame(
    header: FixedHeader,
    packet_type: u8,
    mut body: Reader<'_>,
    version: Option<ProtocolVersion>,
) -> Result<Packet, DecodeError> {
    let flags = header.first_byte & 0x0F;
    match (packet_type, version) {
        (CONNECT, _) => decode_connect(body),
        (_, Some(v)) => {
            body.require_minimal_varints(v.is_v5());
            decode_body(packet_type, flags, body, v)
        }
        // Unreachable: check_first_byte only lets CONNECT through without a version.
        (_, None) => Err(DecodeError::protocol("first packet must be CONNECT")),
    }
}

/// Validates the packet type and the reserved flag bits of the fixed header (MQTT 5.0 section
/// 2.1.3): PUBREL, SUBSCRIBE and UNSUBSCRIBE need 0b0010, PUBLISH carries its own flags, every
/// other type needs 0b0000. Returns the packet type.
fn check_first_byte(first_byte: u8, version: Option<ProtocolVersion>) -> Result<u8, DecodeError> {
    let packet_type = first_byte >> 4;
    let flags = first_byte & 0x0F;
    if packet_type == 0 {
        return Err(DecodeError::malformed("reserved packet type 0"));
    }
    let Some(version) = version else {
        if packet_type != CONNECT {
            return Err(DecodeError::protocol("first packet must be CONNECT"));
        }
        check_flags(flags, 0)?;
        return Ok(packet_type);
    };
    if packet_type == AUTH && !version.is_v5() {
        return Err(DecodeError::malformed("AUTH packet before MQTT 5"));
    }
    match packet_type {
        PUBLISH => {}
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => check_flags(flags, 0b0010)?,
        _ => check_flags(flags, 0)?,
    }
    Ok(packet_type)
}

/// Compares the low nibble of the first byte with the value the packet type requires.
fn check_flags(flags: u8, expected: u8) -> Result<(), DecodeError> {
    if flags != expected {
        return Err(DecodeError::malformed("invalid fixed header flags"));
    }
    Ok(())
}

/// Decodes the body of every packet type except CONNECT, for a known protocol version.
fn decode_body(
    packet_type: u8,
    flags: u8,
    mut r: Reader<'_>,
    v: ProtocolVersion,
) -> Result<Packet, DecodeError> {
    let packet = match packet_type {
        CONNACK => Packet::ConnAck(decode_connack(r, v)?),
        PUBLISH => Packet::Publish(decode_publish(flags, r, v)?),
        PUBACK => Packet::PubAck(decode_pub_response(r, v)?),
        PUBREC => Packet::PubRec(decode_pub_response(r, v)?),
        PUBREL => Packet::PubRel(decode_pub_response(r, v)?),
        PUBCOMP => Packet::PubComp(decode_pub_response(r, v)?),
        SUBSCRIBE => Packet::Subscribe(decode_subscribe(r, v)?),
        SUBACK => Packet::SubAck(decode_suback(r, v)?),
        UNSUBSCRIBE => Packet::Unsubscribe(decode_unsubscribe(r, v)?),
        UNSUBACK => Packet::UnsubAck(decode_unsuback(r, v)?),
        PINGREQ | PINGRESP => {
            if !r.is_empty() {
                return Err(DecodeError::malformed("PINGREQ/PINGRESP with a body"));
            }
            if packet_type == PINGREQ {
                Packet::PingReq
            } else {
                Packet::PingResp
            }
        }
        DISCONNECT => {
            let (reason, properties) = decode_reason_tail(&mut r, v, PropCtx::Disconnect)?;
            Packet::Disconnect(Disconnect { reason, properties })
        }
        AUTH => {
            let (reason, properties) = decode_reason_tail(&mut r, v, PropCtx::Auth)?;
            Packet::Auth(Auth { reason, properties })
        }
        _ => return Err(DecodeError::malformed("reserved packet type 0")),
    };
    Ok(packet)
}

/// Reads v5 properties for `ctx`, or nothing (an empty set) before MQTT 5.
fn props_if_v5(
    r: &mut Reader<'_>,
    v: ProtocolVersion,
    ctx: PropCtx,
) -> Result<Properties, DecodeError> {
    if v.is_v5() {
        read_properties(r, ctx)
    } else {
        Ok(Properties::default())
    }
}

/// Reads a packet identifier that must not be 0 (MQTT 5.0 section 2.2.1).
fn packet_id(r: &mut Reader<'_>) -> Result<u16, DecodeError> {
    let id = r.u16()?;
    if id == 0 {
        return Err(DecodeError::malformed("packet identifier 0"));
    }
    Ok(id)
}

/// Protocol Error in 5.0, Malformed Packet before: the split the specifications make for an empty
/// SUBSCRIBE/UNSUBSCRIBE list (5.0 and 3.1.1 sections 3.8.3) and for subscription QoS 3.
fn v5_protocol_else_malformed(v: ProtocolVersion, what: &'static str) -> DecodeError {
    if v.is_v5() {
        DecodeError::protocol(what)
    } else {
        DecodeError::malformed(what)
    }
}

/// CONNECT (MQTT 5.0 section 3.1; 3.1.1 section 3.1; 3.1 `MQIsdp`). The version comes from the
/// packet itself.
fn decode_connect(mut r: Reader<'_>) -> Result<Packet, DecodeError> {
    let name = r.binary()?;
    let level = r.u8()?;
    let protocol = match (&name[..], level) {
        (b"MQTT", 4) => ProtocolVersion::V311,
        (b"MQTT", 5) => ProtocolVersion::V5,
        (b"MQIsdp", 3) => ProtocolVersion::V31,
        (b"MQTT" | b"MQIsdp", _) => {
            return Err(DecodeError::new(
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                "unsupported protocol level",
            ))
        }
        _ => return Err(DecodeError::malformed("unknown protocol name")),
    };
    r.require_minimal_varints(protocol.is_v5());
    let flags = ConnectFlags::parse(r.u8()?, protocol)?;
    let keep_alive = r.u16()?;
    let properties = props_if_v5(&mut r, protocol, PropCtx::Connect)?;
    let client_id = r.string()?;
    let will = match flags.will {
        Some((qos, retain)) => {
            let properties = props_if_v5(&mut r, protocol, PropCtx::Will)?;
            let topic = r.string()?;
            let payload = r.binary()?;
            Some(LastWill {
                topic,
                payload,
                qos,
                retain,
                properties,
            })
        }
        None => None,
    };
    let username = flags.username.then(|| r.string()).transpose()?;
    let password = flags.password.then(|| r.binary()).transpose()?;
    r.finish()?;
    Ok(Packet::Connect(Box::new(Connect {
        protocol,
        clean_start: flags.clean_start,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })))
}

/// The CONNECT flags byte (MQTT 5.0 section 3.1.2.3), validated.
struct ConnectFlags {
    clean_start: bool,
    /// Will QoS and retain, when the will flag is set.
    will: Option<(QoS, bool)>,
    username: bool,
    password: bool,
}

impl ConnectFlags {
    /// Reserved bit 0 set (3.1.1 and 5.0 only), will QoS 3, will QoS/retain without the will
    /// flag, and (before 5.0) a password without a user name are all Malformed Packet.
    fn parse(flags: u8, protocol: ProtocolVersion) -> Result<ConnectFlags, DecodeError> {
        // [MQTT-3.1.2-3] (3.1.1 and 5.0): the server MUST validate that the reserved flag is 0.
        // MQTT 3.1 (`MQIsdp`, level 3) states no such rule for bit 0, and some old 3.1 clients
        // send garbage there, so it is ignored at that level.
        if flags & 0x01 != 0 && protocol != ProtocolVersion::V31 {
            return Err(DecodeError::malformed("reserved CONNECT flag set"));
        }
        let will_flag = flags & 0x04 != 0;
        let will_qos_bits = (flags >> 3) & 0x03;
        let will_retain = flags & 0x20 != 0;
        let password = flags & 0x40 != 0;
        let username = flags & 0x80 != 0;
        if !will_flag && (will_qos_bits != 0 || will_retain) {
            return Err(DecodeError::malformed(
                "will QoS or retain without will flag",
            ));
        }
        let will_qos = QoS::from_u8(will_qos_bits).ok_or(DecodeError::malformed("will QoS 3"))?;
        if password && !username && !protocol.is_v5() {
            return Err(DecodeError::malformed(
                "password flag without user name flag",
            ));
        }
        Ok(ConnectFlags {
            clean_start: flags & 0x02 != 0,
            will: will_flag.then_some((will_qos, will_retain)),
            username,
            password,
        })
    }
}

/// CONNACK. A 3.1.1 return code above 5 is reserved and so Malformed Packet (it could not be
/// re-encoded faithfully); a 5.0 reason code is carried as is.
fn decode_connack(mut r: Reader<'_>, v: ProtocolVersion) -> Result<ConnAck, DecodeError> {
    let ack_flags = r.u8()?;
    // MQTT 3.1 has no Session Present flag: the whole byte is reserved there (the encoder writes
    // 0 for 3.1, so a decoded 1 would not round-trip; found by the `decode` fuzz target).
    let reserved = if v == ProtocolVersion::V31 {
        0xFF
    } else {
        0xFE
    };
    if ack_flags & reserved != 0 {
        return Err(DecodeError::malformed("reserved CONNACK flag set"));
    }
    let code = r.u8()?;
    let reason = if v.is_v5() {
        ReasonCode(code)
    } else if code <= 5 {
        ReasonCode::from_v3_connack(code)
    } else {
        return Err(DecodeError::malformed("reserved CONNACK return code"));
    };
    let properties = props_if_v5(&mut r, v, PropCtx::ConnAck)?;
    r.finish()?;
    Ok(ConnAck {
        session_present: ack_flags & 0x01 != 0,
        reason,
        properties,
    })
}

/// PUBLISH (MQTT 5.0 section 3.3). The payload is the rest of the body, shared with the buffer.
fn decode_publish(
    flags: u8,
    mut r: Reader<'_>,
    v: ProtocolVersion,
) -> Result<Publish, DecodeError> {
    let dup = flags & 0x08 != 0;
    let retain = flags & 0x01 != 0;
    let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(DecodeError::malformed("PUBLISH QoS 3"))?;
    if qos == QoS::AtMostOnce && dup {
        return Err(DecodeError::malformed("DUP flag on QoS 0 PUBLISH"));
    }
    let topic = r.string()?;
    if topic.contains(['+', '#']) {
        return Err(DecodeError::new(
            ReasonCode::TOPIC_NAME_INVALID,
            "wildcard in topic name",
        ));
    }
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        _ => Some(packet_id(&mut r)?),
    };
    let properties = props_if_v5(&mut r, v, PropCtx::Publish)?;
    if topic.is_empty() && properties.topic_alias.is_none() {
        return Err(DecodeError::protocol(
            "empty topic name without topic alias",
        ));
    }
    Ok(Publish {
        dup,
        qos,
        retain,
        topic,
        packet_id,
        properties,
        payload: r.rest(),
    })
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP. In 5.0 a body of 2 bytes means Success without properties
/// and 3 bytes a reason code without properties (MQTT 5.0 section 3.4.2.1).
fn decode_pub_response(mut r: Reader<'_>, v: ProtocolVersion) -> Result<PubResponse, DecodeError> {
    let mut response = PubResponse::ok(packet_id(&mut r)?);
    if v.is_v5() && !r.is_empty() {
        response.reason = ReasonCode(r.u8()?);
        if !r.is_empty() {
            response.properties = read_properties(&mut r, PropCtx::PubResponse)?;
        }
    }
    r.finish()?;
    Ok(response)
}

/// Parses one SUBSCRIBE options byte (MQTT 5.0 section 3.8.3.1; 3.1.1 section 3.8.3).
///
/// 3.1.1: any bit above the QoS bits or QoS 3 is Malformed Packet. 5.0: reserved bits 6-7 are
/// Malformed Packet; QoS 3 and Retain Handling 3 are Protocol Errors, as 5.0 section 3.8.3.1 says.
fn decode_sub_options(byte: u8, v: ProtocolVersion) -> Result<SubscriptionOptions, DecodeError> {
    let reserved = if v.is_v5() { 0xC0 } else { 0xFC };
    if byte & reserved != 0 {
        return Err(DecodeError::malformed(
            "reserved subscription option bits set",
        ));
    }
    let Some(qos) = QoS::from_u8(byte & 0x03) else {
        return Err(v5_protocol_else_malformed(v, "subscription QoS 3"));
    };
    let retain_handling = match (byte >> 4) & 0x03 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(DecodeError::protocol("retain handling 3")),
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: byte & 0x04 != 0,
        retain_as_published: byte & 0x08 != 0,
        retain_handling,
    })
}

/// SUBSCRIBE. Filters are only checked as UTF-8 strings here; wildcard syntax is the session's
/// job (it answers per filter).
fn decode_subscribe(mut r: Reader<'_>, v: ProtocolVersion) -> Result<Subscribe, DecodeError> {
    let packet_id = packet_id(&mut r)?;
    let properties = props_if_v5(&mut r, v, PropCtx::Subscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string()?;
        let options = decode_sub_options(r.u8()?, v)?;
        filters.push((filter, options));
    }
    if filters.is_empty() {
        return Err(v5_protocol_else_malformed(
            v,
            "SUBSCRIBE without topic filters",
        ));
    }
    Ok(Subscribe {
        packet_id,
        filters,
        properties,
    })
}

/// SUBACK. In 3.1.1 only 0, 1, 2 and 0x80 are return codes; 0x80 becomes Unspecified error.
fn decode_suback(mut r: Reader<'_>, v: ProtocolVersion) -> Result<SubAck, DecodeError> {
    let packet_id = packet_id(&mut r)?;
    let properties = props_if_v5(&mut r, v, PropCtx::SubAck)?;
    let codes = r.rest();
    if codes.is_empty() {
        return Err(v5_protocol_else_malformed(v, "SUBACK without reason codes"));
    }
    let mut reasons = Vec::with_capacity(codes.len());
    for &code in codes.iter() {
        let reason = match code {
            _ if v.is_v5() => ReasonCode(code),
            0..=2 => ReasonCode(code),
            0x80 => ReasonCode::UNSPECIFIED_ERROR,
            _ => return Err(DecodeError::malformed("invalid SUBACK return code")),
        };
        reasons.push(reason);
    }
    Ok(SubAck {
        packet_id,
        reasons,
        properties,
    })
}

/// UNSUBSCRIBE: at least one filter, each a UTF-8 string (syntax checked by the session).
fn decode_unsubscribe(mut r: Reader<'_>, v: ProtocolVersion) -> Result<Unsubscribe, DecodeError> {
    let packet_id = packet_id(&mut r)?;
    let properties = props_if_v5(&mut r, v, PropCtx::Unsubscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(r.string()?);
    }
    if filters.is_empty() {
        return Err(v5_protocol_else_malformed(
            v,
            "UNSUBSCRIBE without topic filters",
        ));
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties,
    })
}

/// UNSUBACK: just the packet identifier in 3.1.1; properties and one reason per filter in 5.0.
fn decode_unsuback(mut r: Reader<'_>, v: ProtocolVersion) -> Result<UnsubAck, DecodeError> {
    let packet_id = packet_id(&mut r)?;
    let properties = props_if_v5(&mut r, v, PropCtx::UnsubAck)?;
    let reasons: Vec<ReasonCode> = if v.is_v5() {
        r.rest().iter().map(|&c| ReasonCode(c)).collect()
    } else {
        Vec::new()
    };
    if v.is_v5() && reasons.is_empty() {
        return Err(v5_protocol_else_malformed(
            v,
            "UNSUBACK without reason codes",
        ));
    }
    r.finish()?;
    Ok(UnsubAck {
        packet_id,
        reasons,
        properties,
    })
}

/// The shared tail of DISCONNECT and AUTH: nothing in 3.1.1; in 5.0 an empty body means Success,
/// one byte is a reason code alone, more is a reason code and properties (MQTT 5.0 sections
/// 3.14.2.2.1 and 3.15.2.2.1).
fn decode_reason_tail(
    r: &mut Reader<'_>,
    v: ProtocolVersion,
    ctx: PropCtx,
) -> Result<(ReasonCode, Properties), DecodeError> {
    let mut reason = ReasonCode::SUCCESS;
    let mut properties = Properties::default();
    if v.is_v5() && !r.is_empty() {
        reason = ReasonCode(r.u8()?);
        if !r.is_empty() {
            properties = read_properties(r, ctx)?;
        }
    }
    r.finish()?;
    Ok((reason, properties))
}
