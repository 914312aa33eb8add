//! MQTT 5.0 property sets on the wire (MQTT 5.0 section 2.2.2): reading with every validity rule,
//! size computation, and writing in ascending identifier order.
//!
//! Owns: the table of which property each packet may carry (MQTT 5.0 table 2.2.2.2), the value
//! rules of each property (0/1 flags, non-zero limits, duplicates) and their byte encoding. Must not
//! touch: packet layouts (`decode`, `encode`) or session rules such as "a client must not send a
//! Subscription Identifier in PUBLISH" (the direction of a packet is the session's knowledge).

use bytes::{BufMut, BytesMut};

use super::{binary_len, string_len, varint_len, write_binary, write_string, write_varint};
use super::{len_to_u32, Reader};
use crate::protocol::error::DecodeError;
use crate::protocol::properties::{id, Properties};
use crate::protocol::reason::ReasonCode;

/// Where a property set sits; each property is allowed in some of these places only.
/// CONNECT properties and Will properties are distinct places with distinct allowed sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropCtx {
    /// CONNECT variable header.
    Connect,
    /// Will properties in the CONNECT payload.
    Will,
    /// CONNACK.
    ConnAck,
    /// PUBLISH.
    Publish,
    /// PUBACK, PUBREC, PUBREL and PUBCOMP.
    PubResponse,
    /// SUBSCRIBE.
    Subscribe,
    /// SUBACK.
    SubAck,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// UNSUBACK.
    UnsubAck,
    /// DISCONNECT.
    Disconnect,
    /// AUTH.
    Auth,
}

impl PropCtx {
    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

const fn mask(ctxs: &[PropCtx]) -> u16 {
    let mut m = 0;
    let mut i = 0;
    while i < ctxs.len() {
        m |= 1 << (ctxs[i] as u16);
        i += 1;
    }
    m
}

use PropCtx as C;
const MESSAGE: u16 = mask(&[C::Publish, C::Will]);
const REASON_STRING: u16 = mask(&[
    C::ConnAck,
    C::PubResponse,
    C::SubAck,
    C::UnsubAck,
    C::Disconnect,
    C::Auth,
]);
const USER_PROPERTY: u16 = mask(&[
    C::Connect,
    C::Will,
    C::ConnAck,
    C::Publish,
    C::PubResponse,
    C::Subscribe,
    C::SubAck,
    C::Unsubscribe,
    C::UnsubAck,
    C::Disconnect,
    C::Auth,
]);
const CONNECT_CONNACK: u16 = mask(&[C::Connect, C::ConnAck]);
const CONNACK: u16 = mask(&[C::ConnAck]);

/// The places property `pid` may appear, or `None` for an identifier MQTT 5.0 does not define.
fn allowed(pid: u8) -> Option<u16> {
    Some(match pid {
        id::PAYLOAD_FORMAT_INDICATOR
        | id::MESSAGE_EXPIRY_INTERVAL
        | id::CONTENT_TYPE
        | id::RESPONSE_TOPIC
        | id::CORRELATION_DATA => MESSAGE,
        id::SUBSCRIPTION_IDENTIFIER => mask(&[C::Publish, C::Subscribe]),
        id::SESSION_EXPIRY_INTERVAL => mask(&[C::Connect, C::ConnAck, C::Disconnect]),
        id::AUTHENTICATION_METHOD | id::AUTHENTICATION_DATA => {
            mask(&[C::Connect, C::ConnAck, C::Auth])
        }
        id::REQUEST_PROBLEM_INFORMATION | id::REQUEST_RESPONSE_INFORMATION => mask(&[C::Connect]),
        id::WILL_DELAY_INTERVAL => mask(&[C::Will]),
        id::SERVER_REFERENCE => mask(&[C::ConnAck, C::Disconnect]),
        id::REASON_STRING => REASON_STRING,
        id::RECEIVE_MAXIMUM | id::TOPIC_ALIAS_MAXIMUM | id::MAXIMUM_PACKET_SIZE => CONNECT_CONNACK,
        id::TOPIC_ALIAS => mask(&[C::Publish]),
        id::USER_PROPERTY => USER_PROPERTY,
        id::ASSIGNED_CLIENT_IDENTIFIER
        | id::SERVER_KEEP_ALIVE
        | id::RESPONSE_INFORMATION
        | id::MAXIMUM_QOS
        | id::RETAIN_AVAILABLE
        | id::WILDCARD_SUBSCRIPTION_AVAILABLE
        | id::SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | id::SHARED_SUBSCRIPTION_AVAILABLE => CONNACK,
        _ => return None,
    })
}

/// Caps on one property block, enforced while reading it so that a packet packed with tiny
/// properties is refused before they are stored: a User Property costs two `String`s and a `Vec`
/// slot in memory for as little as 5 bytes on the wire.
///
/// Over a cap the error is Quota exceeded (0x97), which MQTT 5.0 defines as "an implementation or
/// administrative imposed limit has been exceeded" and allows in CONNACK and DISCONNECT. Malformed
/// Packet (0x81) would be wrong (the packet conforms to the specification) and Packet too large
/// (0x95) would mislead a client whose packet is within the Maximum Packet Size we advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropLimits {
    /// Most User Properties in one block.
    pub max_user_properties: usize,
    /// Largest block, in bytes (the value of its length field).
    pub max_size: usize,
}

impl PropLimits {
    /// No caps beyond the packet size.
    pub const UNLIMITED: PropLimits = PropLimits {
        max_user_properties: usize::MAX,
        max_size: usize::MAX,
    };
}

/// Reads a property block (its Variable Byte Integer length, then the properties) for place `ctx`.
///
/// Errors: length past the packet, unknown identifier, an identifier not valid in `ctx`, or a
/// malformed value -> Malformed Packet; a duplicate single-valued property, or a forbidden value
/// (0 for Subscription Identifier, Receive Maximum, Maximum Packet Size; a flag other than 0/1)
/// -> Protocol Error; Topic Alias 0 -> Topic Alias invalid; over the reader's [`PropLimits`] ->
/// Quota exceeded.
pub fn read_properties(r: &mut Reader<'_>, ctx: PropCtx) -> Result<Properties, DecodeError> {
    let len = r.varint()? as usize;
    if len > r.limits().max_size {
        return Err(DecodeError::new(
            ReasonCode::QUOTA_EXCEEDED,
            "property block larger than max_properties_size",
        ));
    }
    let mut block = r.sub_reader(len)?;
    let mut props = Properties::default();
    while !block.is_empty() {
        let raw_id = block.varint()?;
        let pid = u8::try_from(raw_id).unwrap_or(0);
        let places = allowed(pid).ok_or(DecodeError::malformed("unknown property identifier"))?;
        if places & ctx.bit() == 0 {
            // MQTT 5.0 section 2.2.2.2: "If a Control Packet contains an Identifier which is not
            // valid for its packet type ... it is a Malformed Packet" (0x81, not 0x82).
            return Err(DecodeError::malformed(
                "property identifier not valid for this packet",
            ));
        }
        read_one(&mut block, pid, ctx, &mut props)?;
    }
    Ok(props)
}

/// Stores `value` in a single-valued property slot, rejecting a second occurrence.
fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::protocol("duplicate property"));
    }
    *slot = Some(value);
    Ok(())
}

/// Reads a one-byte property that may only be 0 or 1.
fn flag(r: &mut Reader<'_>, what: &'static str) -> Result<u8, DecodeError> {
    let v = r.u8()?;
    if v > 1 {
        return Err(DecodeError::protocol(what));
    }
    Ok(v)
}

/// Reads a two-byte property that must not be 0.
fn nonzero_u16(r: &mut Reader<'_>, what: &'static str) -> Result<u16, DecodeError> {
    let v = r.u16()?;
    if v == 0 {
        return Err(DecodeError::protocol(what));
    }
    Ok(v)
}

/// Reads the value of property `pid` (already checked to be allowed in `ctx`) into `p`.
fn read_one(
    r: &mut Reader<'_>,
    pid: u8,
    ctx: PropCtx,
    p: &mut Properties,
) -> Result<(), DecodeError> {
    match pid {
        id::PAYLOAD_FORMAT_INDICATOR => {
            let v = flag(r, "payload format indicator not 0 or 1")?;
            set_once(&mut p.payload_format_indicator, v)
        }
        id::MESSAGE_EXPIRY_INTERVAL => set_once(&mut p.message_expiry_interval, r.u32()?),
        id::CONTENT_TYPE => set_once(&mut p.content_type, r.string()?),
        id::RESPONSE_TOPIC => set_once(&mut p.response_topic, r.string()?),
        id::CORRELATION_DATA => set_once(&mut p.correlation_data, r.binary()?),
        id::SUBSCRIPTION_IDENTIFIER => {
            let v = r.varint()?;
            if v == 0 {
                return Err(DecodeError::protocol("subscription identifier 0"));
            }
            if ctx == PropCtx::Subscribe && !p.subscription_identifiers.is_empty() {
                return Err(DecodeError::protocol("duplicate property"));
            }
            p.subscription_identifiers.push(v);
            Ok(())
        }
        id::SESSION_EXPIRY_INTERVAL => set_once(&mut p.session_expiry_interval, r.u32()?),
        id::ASSIGNED_CLIENT_IDENTIFIER => set_once(&mut p.assigned_client_identifier, r.string()?),
        id::SERVER_KEEP_ALIVE => set_once(&mut p.server_keep_alive, r.u16()?),
        id::AUTHENTICATION_METHOD => set_once(&mut p.authentication_method, r.string()?),
        id::AUTHENTICATION_DATA => set_once(&mut p.authentication_data, r.binary()?),
        id::REQUEST_PROBLEM_INFORMATION => {
            let v = flag(r, "request problem information not 0 or 1")?;
            set_once(&mut p.request_problem_information, v)
        }
        id::WILL_DELAY_INTERVAL => set_once(&mut p.will_delay_interval, r.u32()?),
        id::REQUEST_RESPONSE_INFORMATION => {
            let v = flag(r, "request response information not 0 or 1")?;
            set_once(&mut p.request_response_information, v)
        }
        id::RESPONSE_INFORMATION => set_once(&mut p.response_information, r.string()?),
        id::SERVER_REFERENCE => set_once(&mut p.server_reference, r.string()?),
        id::REASON_STRING => set_once(&mut p.reason_string, r.string()?),
        _ => read_limit_or_flag(r, pid, p),
    }
}

/// Second half of [`read_one`]: limits, aliases, user properties and CONNACK capability flags.
fn read_limit_or_flag(r: &mut Reader<'_>, pid: u8, p: &mut Properties) -> Result<(), DecodeError> {
    match pid {
        id::RECEIVE_MAXIMUM => {
            let v = nonzero_u16(r, "receive maximum 0")?;
            set_once(&mut p.receive_maximum, v)
        }
        id::TOPIC_ALIAS_MAXIMUM => set_once(&mut p.topic_alias_maximum, r.u16()?),
        id::TOPIC_ALIAS => {
            let v = r.u16()?;
            if v == 0 {
                return Err(DecodeError::new(
                    ReasonCode::TOPIC_ALIAS_INVALID,
                    "topic alias 0",
                ));
            }
            set_once(&mut p.topic_alias, v)
        }
        id::MAXIMUM_QOS => {
            let v = flag(r, "maximum QoS not 0 or 1")?;
            set_once(&mut p.maximum_qos, v)
        }
        id::RETAIN_AVAILABLE => {
            let v = flag(r, "retain available not 0 or 1")?;
            set_once(&mut p.retain_available, v)
        }
        id::USER_PROPERTY => {
            if p.user_properties.len() >= r.limits().max_user_properties {
                return Err(DecodeError::new(
                    ReasonCode::QUOTA_EXCEEDED,
                    "more user properties than max_user_properties",
                ));
            }
            let name = r.string()?;
            let value = r.string()?;
            p.user_properties.push((name, value));
            Ok(())
        }
        id::MAXIMUM_PACKET_SIZE => {
            let v = r.u32()?;
            if v == 0 {
                return Err(DecodeError::protocol("maximum packet size 0"));
            }
            set_once(&mut p.maximum_packet_size, v)
        }
        id::WILDCARD_SUBSCRIPTION_AVAILABLE => {
            let v = flag(r, "wildcard subscription available not 0 or 1")?;
            set_once(&mut p.wildcard_subscription_available, v)
        }
        id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
            let v = flag(r, "subscription identifier available not 0 or 1")?;
            set_once(&mut p.subscription_identifier_available, v)
        }
        id::SHARED_SUBSCRIPTION_AVAILABLE => {
            let v = flag(r, "shared subscription available not 0 or 1")?;
            set_once(&mut p.shared_subscription_available, v)
        }
        _ => Err(DecodeError::malformed("unknown property identifier")),
    }
}

/// One property value, borrowed from a [`Properties`], in its wire type.
enum Value<'a> {
    Byte(u8),
    Two(u16),
    Four(u32),
    Var(u32),
    Str(&'a str),
    Bin(&'a [u8]),
    Pair(&'a str, &'a str),
}

impl Value<'_> {
    /// Encoded size of the value (identifier excluded).
    fn len(&self) -> usize {
        match self {
            Value::Byte(_) => 1,
            Value::Two(_) => 2,
            Value::Four(_) => 4,
            Value::Var(v) => varint_len(*v),
            Value::Str(s) => string_len(s),
            Value::Bin(b) => binary_len(b),
            Value::Pair(k, v) => string_len(k) + string_len(v),
        }
    }

    fn write(&self, out: &mut BytesMut) {
        match self {
            Value::Byte(v) => out.put_u8(*v),
            Value::Two(v) => out.put_u16(*v),
            Value::Four(v) => out.put_u32(*v),
            Value::Var(v) => write_varint(*v, out),
            Value::Str(s) => write_string(s, out),
            Value::Bin(b) => write_binary(b, out),
            Value::Pair(k, v) => {
                write_string(k, out);
                write_string(v, out);
            }
        }
    }
}

/// Calls `f` for every property of `p` that may appear in `ctx`, in ascending identifier order
/// (user properties and subscription identifiers in stored order). The single source of truth for
/// both [`properties_len`] and [`write_properties`], so the two cannot disagree. Properties not
/// allowed in `ctx` are skipped, which keeps the encoder's output acceptable to a strict peer.
fn for_each(p: &Properties, ctx: PropCtx, f: &mut dyn FnMut(u8, Value<'_>)) {
    let mut emit = |pid: u8, v: Option<Value<'_>>| {
        if let Some(v) = v {
            if allowed(pid).is_some_and(|m| m & ctx.bit() != 0) {
                f(pid, v);
            }
        }
    };
    let byte = |o: Option<u8>| o.map(Value::Byte);
    let two = |o: Option<u16>| o.map(Value::Two);
    let four = |o: Option<u32>| o.map(Value::Four);
    fn text(o: &Option<String>) -> Option<Value<'_>> {
        o.as_deref().map(Value::Str)
    }
    emit(
        id::PAYLOAD_FORMAT_INDICATOR,
        byte(p.payload_format_indicator),
    );
    emit(id::MESSAGE_EXPIRY_INTERVAL, four(p.message_expiry_interval));
    emit(id::CONTENT_TYPE, text(&p.content_type));
    emit(id::RESPONSE_TOPIC, text(&p.response_topic));
    emit(
        id::CORRELATION_DATA,
        p.correlation_data.as_deref().map(Value::Bin),
    );
    for &sid in &p.subscription_identifiers {
        emit(id::SUBSCRIPTION_IDENTIFIER, Some(Value::Var(sid)));
    }
    emit(id::SESSION_EXPIRY_INTERVAL, four(p.session_expiry_interval));
    emit(
        id::ASSIGNED_CLIENT_IDENTIFIER,
        text(&p.assigned_client_identifier),
    );
    emit(id::SERVER_KEEP_ALIVE, two(p.server_keep_alive));
    emit(id::AUTHENTICATION_METHOD, text(&p.authentication_method));
    emit(
        id::AUTHENTICATION_DATA,
        p.authentication_data.as_deref().map(Value::Bin),
    );
    emit(
        id::REQUEST_PROBLEM_INFORMATION,
        byte(p.request_problem_information),
    );
    emit(id::WILL_DELAY_INTERVAL, four(p.will_delay_interval));
    emit(
        id::REQUEST_RESPONSE_INFORMATION,
        byte(p.request_response_information),
    );
    emit(id::RESPONSE_INFORMATION, text(&p.response_information));
    emit(id::SERVER_REFERENCE, text(&p.server_reference));
    emit(id::REASON_STRING, text(&p.reason_string));
    emit(id::RECEIVE_MAXIMUM, two(p.receive_maximum));
    emit(id::TOPIC_ALIAS_MAXIMUM, two(p.topic_alias_maximum));
    emit(id::TOPIC_ALIAS, two(p.topic_alias));
    emit(id::MAXIMUM_QOS, byte(p.maximum_qos));
    emit(id::RETAIN_AVAILABLE, byte(p.retain_available));
    for (k, v) in &p.user_properties {
        emit(id::USER_PROPERTY, Some(Value::Pair(k, v)));
    }
    emit(id::MAXIMUM_PACKET_SIZE, four(p.maximum_packet_size));
    emit(
        id::WILDCARD_SUBSCRIPTION_AVAILABLE,
        byte(p.wildcard_subscription_available),
    );
    emit(
        id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        byte(p.subscription_identifier_available),
    );
    emit(
        id::SHARED_SUBSCRIPTION_AVAILABLE,
        byte(p.shared_subscription_available),
    );
}

/// Size of the properties of `p` written for `ctx`, *without* the leading length field.
pub fn properties_len(p: &Properties, ctx: PropCtx) -> usize {
    let mut total = 0;
    for_each(p, ctx, &mut |_, v| total += 1 + v.len());
    total
}

/// Size of the whole property block for `ctx`: the length field plus the properties.
pub fn properties_block_len(p: &Properties, ctx: PropCtx) -> usize {
    let len = properties_len(p, ctx);
    varint_len(len_to_u32(len)) + len
}

/// Appends the property block for `ctx` (length field, then properties in ascending identifier
/// order). Properties not allowed in `ctx` are left out.
pub fn write_properties(p: &Properties, ctx: PropCtx, out: &mut BytesMut) {
    let len = properties_len(p, ctx);
    write_varint(len_to_u32(len), out);
    if len > 0 {
        write_property_list(p, ctx, out);
    }
}

/// Appends the properties of `p` for `ctx` without the length field, for a caller that adds
/// properties of its own to the same block (see `publish_header`).
pub fn write_property_list(p: &Properties, ctx: PropCtx, out: &mut BytesMut) {
    for_each(p, ctx, &mut |pid, v| {
        out.put_u8(pid);
        v.write(out);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn read(ctx: PropCtx, block: &[u8]) -> Result<Properties, DecodeError> {
        let b = Bytes::copy_from_slice(block);
        let mut r = Reader::new(&b);
        let p = read_properties(&mut r, ctx)?;
        r.finish()?;
        Ok(p)
    }

    fn reason(ctx: PropCtx, block: &[u8]) -> ReasonCode {
        read(ctx, block).expect_err("should be rejected").reason
    }

    #[test]
    fn limits_cap_user_properties_and_block_size_with_quota_exceeded() {
        // Three user properties "k" = "" (6 bytes each), block length 18.
        let mut block = vec![18];
        for _ in 0..3 {
            block.extend_from_slice(&[0x26, 0, 1, b'k', 0, 0]);
        }
        let with = |max_user_properties, max_size| {
            let limits = PropLimits {
                max_user_properties,
                max_size,
            };
            let b = Bytes::copy_from_slice(&block);
            let mut r = Reader::shared(&b, limits);
            read_properties(&mut r, PropCtx::Publish).map(|p| p.user_properties.len())
        };
        assert_eq!(with(3, 18), Ok(3));
        assert_eq!(with(2, 18).unwrap_err().reason, ReasonCode::QUOTA_EXCEEDED);
        assert_eq!(with(3, 17).unwrap_err().reason, ReasonCode::QUOTA_EXCEEDED);
    }

    #[test]
    fn empty_block() {
        assert_eq!(read(PropCtx::Publish, &[0]), Ok(Properties::default()));
    }

    #[test]
    fn property_length_past_packet_is_malformed() {
        assert_eq!(
            reason(PropCtx::Publish, &[5, 0x01, 0x00]),
            ReasonCode::MALFORMED_PACKET
        );
    }

    #[test]
    fn truncated_property_value_is_malformed() {
        // Message Expiry Interval needs four bytes; the block holds two.
        assert_eq!(
            reason(PropCtx::Publish, &[3, 0x02, 0, 0]),
            ReasonCode::MALFORMED_PACKET
        );
    }

    #[test]
    fn unknown_property_is_malformed() {
        assert_eq!(
            reason(PropCtx::Publish, &[2, 0x04, 0]),
            ReasonCode::MALFORMED_PACKET
        );
        assert_eq!(
            reason(PropCtx::Publish, &[3, 0x80, 0x01, 0]),
            ReasonCode::MALFORMED_PACKET
        );
    }

    #[test]
    fn mqtt_2_2_2_2_property_not_valid_for_packet_is_malformed() {
        // Topic Alias on CONNECT, Will Delay Interval on CONNECT (it belongs to the will),
        // Session Expiry Interval in will properties, Reason String on PUBLISH.
        assert_eq!(
            reason(PropCtx::Connect, &[3, 0x23, 0, 1]),
            ReasonCode::MALFORMED_PACKET
        );
        assert_eq!(
            reason(PropCtx::Connect, &[5, 0x18, 0, 0, 0, 1]),
            ReasonCode::MALFORMED_PACKET
        );
        assert_eq!(
            reason(PropCtx::Will, &[5, 0x11, 0, 0, 0, 1]),
            ReasonCode::MALFORMED_PACKET
        );
        assert_eq!(
            reason(PropCtx::Publish, &[3, 0x1F, 0, 0]),
            ReasonCode::MALFORMED_PACKET
        );
        assert!(read(PropCtx::Will, &[5, 0x18, 0, 0, 0, 1]).is_ok());
    }

    #[test]
    fn duplicate_property_is_protocol_error() {
        let dup = [4, 0x01, 0, 0x01, 1];
        assert_eq!(reason(PropCtx::Publish, &dup), ReasonCode::PROTOCOL_ERROR);
        // Subscription identifier: one allowed in SUBSCRIBE, several in PUBLISH.
        let two_ids = [4, 0x0B, 1, 0x0B, 2];
        assert_eq!(
            reason(PropCtx::Subscribe, &two_ids),
            ReasonCode::PROTOCOL_ERROR
        );
        assert_eq!(
            read(PropCtx::Publish, &two_ids)
                .unwrap()
                .subscription_identifiers,
            [1, 2]
        );
    }

    #[test]
    fn user_properties_repeat_in_order() {
        let block = [
            14, 0x26, 0, 1, b'a', 0, 1, b'1', 0x26, 0, 1, b'a', 0, 1, b'2',
        ];
        let p = read(PropCtx::Publish, &block).unwrap();
        assert_eq!(
            p.user_properties,
            [
                ("a".to_owned(), "1".to_owned()),
                ("a".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn zero_values_that_are_protocol_errors() {
        assert_eq!(
            reason(PropCtx::Subscribe, &[2, 0x0B, 0]),
            ReasonCode::PROTOCOL_ERROR
        );
        assert_eq!(
            reason(PropCtx::Connect, &[3, 0x21, 0, 0]),
            ReasonCode::PROTOCOL_ERROR
        );
        assert_eq!(
            reason(PropCtx::Connect, &[5, 0x27, 0, 0, 0, 0]),
            ReasonCode::PROTOCOL_ERROR
        );
    }

    #[test]
    fn topic_alias_zero_is_topic_alias_invalid() {
        assert_eq!(
            reason(PropCtx::Publish, &[3, 0x23, 0, 0]),
            ReasonCode::TOPIC_ALIAS_INVALID
        );
    }

    #[test]
    fn flags_must_be_zero_or_one() {
        let cases = [
            (PropCtx::Publish, id::PAYLOAD_FORMAT_INDICATOR),
            (PropCtx::Connect, id::REQUEST_PROBLEM_INFORMATION),
            (PropCtx::Connect, id::REQUEST_RESPONSE_INFORMATION),
            (PropCtx::ConnAck, id::MAXIMUM_QOS),
            (PropCtx::ConnAck, id::RETAIN_AVAILABLE),
            (PropCtx::ConnAck, id::WILDCARD_SUBSCRIPTION_AVAILABLE),
            (PropCtx::ConnAck, id::SUBSCRIPTION_IDENTIFIER_AVAILABLE),
            (PropCtx::ConnAck, id::SHARED_SUBSCRIPTION_AVAILABLE),
        ];
        for (ctx, pid) in cases {
            assert!(read(ctx, &[2, pid, 1]).is_ok(), "{pid:#x} = 1");
            assert_eq!(
                reason(ctx, &[2, pid, 2]),
                ReasonCode::PROTOCOL_ERROR,
                "{pid:#x} = 2"
            );
        }
    }

    #[test]
    fn mqtt_1_5_5_1_non_minimal_subscription_identifier_or_block_length_is_malformed_in_v5() {
        let strict = |block: &[u8]| {
            let mut r = Reader::copying(block, PropLimits::UNLIMITED);
            r.require_minimal_varints(true);
            read_properties(&mut r, PropCtx::Subscribe).map_err(|e| e.reason)
        };
        // Subscription Identifier 1 as `81 00`; the same block read leniently (3.1.1 has no
        // properties, but the reader's default stays lenient) yields 1.
        assert_eq!(
            strict(&[3, 0x0B, 0x81, 0x00]),
            Err(ReasonCode::MALFORMED_PACKET)
        );
        assert_eq!(
            read(PropCtx::Subscribe, &[3, 0x0B, 0x81, 0x00]).map(|p| p.subscription_identifiers),
            Ok(vec![1])
        );
        // Property block length 2 as `82 00`, and the identifier itself as `8B 00`.
        assert_eq!(
            strict(&[0x82, 0x00, 0x0B, 0x01]),
            Err(ReasonCode::MALFORMED_PACKET)
        );
        assert_eq!(
            strict(&[3, 0x8B, 0x00, 0x01]),
            Err(ReasonCode::MALFORMED_PACKET)
        );
        assert_eq!(
            strict(&[2, 0x0B, 0x01]).map(|p| p.subscription_identifiers),
            Ok(vec![1])
        );
    }

    #[test]
    fn subscription_identifier_is_a_varint() {
        let p = read(PropCtx::Subscribe, &[4, 0x0B, 0xFF, 0xFF, 0x7F]).unwrap();
        assert_eq!(p.subscription_identifiers, [2_097_151]);
    }

    #[test]
    fn writes_in_ascending_order_and_skips_disallowed() {
        let p = Properties {
            user_properties: vec![("k".into(), "v".into())],
            reason_string: Some("r".into()),
            topic_alias: Some(7),
            payload_format_indicator: Some(1),
            subscription_identifiers: vec![300],
            ..Properties::default()
        };
        let mut out = BytesMut::new();
        write_properties(&p, PropCtx::Publish, &mut out);
        let expected = [
            15, 0x01, 1, 0x0B, 0xAC, 0x02, 0x23, 0, 7, 0x26, 0, 1, b'k', 0, 1, b'v',
        ];
        assert_eq!(&out[..], &expected[..]);
        assert_eq!(properties_block_len(&p, PropCtx::Publish), expected.len());
    }
}
