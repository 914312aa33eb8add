//! Wire primitives shared by the decoder and the encoder: Variable Byte Integers, big-endian
//! integers, UTF-8 strings and binary data (MQTT 5.0 section 1.5, MQTT 3.1.1 section 1.5), plus a
//! bounds-checked read cursor over a packet body.
//!
//! Owns: the byte-level representation of every field type, and (in [`props`]) of MQTT 5.0 property
//! sets. Must not touch: packet layouts (`decode`, `encode`), topic wildcard rules (`topic`), or any
//! session rule. Nothing here panics on any input: every read is bounds-checked and reports
//! truncation as Malformed Packet.

pub mod props;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::DecodeError;

/// Largest value a Variable Byte Integer can carry (four bytes of seven bits each).
pub const MAX_VARINT: u32 = 268_435_455;

/// Largest length of a UTF-8 string or binary data field (a two-byte length prefix).
pub const MAX_FIELD_LEN: usize = u16::MAX as usize;

/// Reads a Variable Byte Integer from the front of `buf`.
///
/// Returns `Ok(None)` when `buf` ends before the integer does (more bytes are needed), and
/// `Ok(Some((value, bytes_used)))` otherwise. A fourth byte with the continuation bit set is
/// Malformed Packet right away, without waiting for a fifth byte. Non-minimal encodings (such as
/// `0x80 0x00` for 0) are returned as they are: only MQTT 5.0 forbids them [MQTT-1.5.5-1], so
/// the caller, which knows the version, checks with [`is_minimal_varint`].
pub fn read_varint_prefix(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&byte) = buf.get(i) else {
            return Ok(None);
        };
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    Err(DecodeError::malformed(
        "variable byte integer longer than 4 bytes",
    ))
}

/// True when `used` bytes is the shortest encoding of `value`, as MQTT 5.0 requires
/// [MQTT-1.5.5-1] ("the encoded value MUST use the minimum number of bytes necessary").
pub fn is_minimal_varint(value: u32, used: usize) -> bool {
    varint_len(value) == used
}

/// Number of bytes [`write_varint`] uses for `value` (1 to 4 for every representable value; 5 for
/// values above [`MAX_VARINT`], which no peer can decode).
pub fn varint_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        2_097_152..=MAX_VARINT => 4,
        _ => 5,
    }
}

/// Appends `value` as a minimal Variable Byte Integer. Callers keep values at or below
/// [`MAX_VARINT`]; a larger value is written in five bytes (never silently truncated) and the
/// peer will reject it.
pub fn write_varint(value: u32, out: &mut BytesMut) {
    let mut rest = value;
    loop {
        let low = (rest & 0x7F) as u8;
        rest >>= 7;
        if rest == 0 {
            out.put_u8(low);
            return;
        }
        out.put_u8(low | 0x80);
    }
}

/// Converts a length computed in `usize` to the `u32` a Variable Byte Integer carries, saturating
/// (a saturated value is above [`MAX_VARINT`] and so still unrepresentable, never wrapped).
pub fn len_to_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The part of `s` the encoder writes: at most 65,535 bytes, cut back to a character boundary so
/// the field stays valid UTF-8. Callers are expected to keep strings short; this only guarantees
/// the frame stays well-formed if they do not.
pub fn clamp_str(s: &str) -> &str {
    if s.len() <= MAX_FIELD_LEN {
        return s;
    }
    let mut end = MAX_FIELD_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// The part of `data` the encoder writes: at most 65,535 bytes (see [`clamp_str`]).
pub fn clamp_bin(data: &[u8]) -> &[u8] {
    data.get(..MAX_FIELD_LEN).unwrap_or(data)
}

/// Encoded size of a UTF-8 string field: the two-byte length plus the (clamped) bytes.
pub fn string_len(s: &str) -> usize {
    2 + clamp_str(s).len()
}

/// Encoded size of a binary data field: the two-byte length plus the (clamped) bytes.
pub fn binary_len(data: &[u8]) -> usize {
    2 + clamp_bin(data).len()
}

/// Appends a UTF-8 string field (length prefix, then bytes; clamped as in [`clamp_str`]).
pub fn write_string(s: &str, out: &mut BytesMut) {
    write_binary(clamp_str(s).as_bytes(), out);
}

/// Appends a binary data field (length prefix, then bytes; clamped as in [`clamp_bin`]).
pub fn write_binary(data: &[u8], out: &mut BytesMut) {
    let data = clamp_bin(data);
    out.put_u16(data.len() as u16);
    out.put_slice(data);
}

/// Checks the MQTT rules for a UTF-8 string field: well-formed UTF-8 (which already excludes
/// surrogates) and no U+0000. Other control characters are allowed, as the specification only
/// says a receiver *may* reject them.
pub fn check_utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
    if bytes.contains(&0) {
        return Err(DecodeError::malformed("string contains U+0000"));
    }
    std::str::from_utf8(bytes).map_err(|_| DecodeError::malformed("string is not valid UTF-8"))
}

/// A read cursor over one packet body. Every read checks bounds and reports running past the end
/// as Malformed Packet ("truncated"), because the body length is fixed by the Remaining Length.
///
/// Binary reads (payload, correlation and authentication data, password) come out as `Bytes` in
/// one of two ways, chosen by whoever builds the cursor: slices of an `owner` buffer (no copy; the
/// slice keeps the owner's whole allocation alive), or, without an owner, copies of exactly their
/// own bytes, so that a small message kept for long (retained, queued) does not pin the large read
/// buffer it was decoded from.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    /// The buffer `buf` lies in, when binary fields may share it.
    owner: Option<&'a Bytes>,
    pos: usize,
    /// Caps on property blocks read through this cursor (and its sub-readers).
    limits: props::PropLimits,
    /// Refuse a Variable Byte Integer not in its shortest form (MQTT 5.0 [MQTT-1.5.5-1]).
    minimal_varints: bool,
}

impl<'a> Reader<'a> {
    /// A cursor over the whole of `buf`, sharing it, with no property limits and lenient
    /// Variable Byte Integers.
    pub fn new(buf: &'a Bytes) -> Reader<'a> {
        Reader::shared(buf, props::PropLimits::UNLIMITED)
    }

    /// A cursor over `buf` whose binary fields are slices of it (no copy).
    pub fn shared(buf: &'a Bytes, limits: props::PropLimits) -> Reader<'a> {
        Reader {
            buf,
            owner: Some(buf),
            pos: 0,
            limits,
            minimal_varints: false,
        }
    }

    /// A cursor over `buf` whose binary fields are copied out, each into its own allocation.
    pub fn copying(buf: &'a [u8], limits: props::PropLimits) -> Reader<'a> {
        Reader {
            buf,
            owner: None,
            pos: 0,
            limits,
            minimal_varints: false,
        }
    }

    /// Makes every later Variable Byte Integer (here and in sub-readers) Malformed Packet unless
    /// it uses the fewest bytes possible: required by MQTT 5.0 [MQTT-1.5.5-1]. MQTT 3.1.1 section
    /// 2.2.3 only shows the encoding algorithm and states no such requirement, so 3.1 and 3.1.1
    /// stay lenient.
    pub fn require_minimal_varints(&mut self, on: bool) {
        self.minimal_varints = on;
    }

    /// The property limits this cursor enforces.
    pub fn limits(&self) -> props::PropLimits {
        self.limits
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Takes the next `n` bytes as raw bytes.
    fn take_slice(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let buf: &'a [u8] = self.buf;
        let out = buf
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or(DecodeError::malformed("packet truncated"))?;
        self.pos += n;
        Ok(out)
    }

    /// Turns raw bytes of this packet into `Bytes`: a slice of the owner, or a copy of its own.
    fn to_bytes(&self, raw: &[u8]) -> Bytes {
        match self.owner {
            Some(owner) if !raw.is_empty() => owner.slice_ref(raw),
            _ => Bytes::copy_from_slice(raw),
        }
    }

    /// Takes the next `n` bytes as a cursor of their own (used for a property block), reporting a
    /// length that runs past the body as Malformed Packet.
    pub fn sub_reader(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::malformed("length field exceeds packet"));
        }
        let buf = self.take_slice(n)?;
        Ok(Reader {
            buf,
            owner: self.owner,
            pos: 0,
            limits: self.limits,
            minimal_varints: self.minimal_varints,
        })
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let byte = self.buf.get(self.pos).copied();
        let byte = byte.ok_or(DecodeError::malformed("packet truncated"))?;
        self.pos += 1;
        Ok(byte)
    }

    /// Two-byte big-endian integer.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let hi = self.u8()?;
        let lo = self.u8()?;
        Ok(u16::from_be_bytes([hi, lo]))
    }

    /// Four-byte big-endian integer.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let hi = self.u16()?;
        let lo = self.u16()?;
        Ok((u32::from(hi) << 16) | u32::from(lo))
    }

    /// Variable Byte Integer; running out of bytes inside it is Malformed Packet here, because the
    /// enclosing packet is already complete. A non-minimal encoding is Malformed Packet when the
    /// cursor was told so ([`Reader::require_minimal_varints`]).
    pub fn varint(&mut self) -> Result<u32, DecodeError> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        match read_varint_prefix(rest)? {
            Some((value, used)) => {
                if self.minimal_varints && !is_minimal_varint(value, used) {
                    return Err(DecodeError::malformed(
                        "variable byte integer not in its minimal encoding",
                    ));
                }
                self.pos += used;
                Ok(value)
            }
            None => Err(DecodeError::malformed("packet truncated")),
        }
    }

    /// Binary data field: two-byte length, then that many bytes (shared or copied, see
    /// [`Reader`]).
    pub fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        let raw = self.take_slice(len)?;
        Ok(self.to_bytes(raw))
    }

    /// UTF-8 string field, checked with [`check_utf8`].
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let len = usize::from(self.u16()?);
        let raw = self.take_slice(len)?;
        check_utf8(raw).map(str::to_owned)
    }

    /// Everything not read yet (shared or copied, see [`Reader`]); the cursor ends up empty.
    pub fn rest(&mut self) -> Bytes {
        let raw = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        self.to_bytes(raw)
    }

    /// Succeeds only if every byte was consumed: trailing bytes mean the Remaining Length does not
    /// match the packet's content, which is Malformed Packet.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::malformed(
                "remaining length longer than packet content",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ReasonCode;

    fn encode(value: u32) -> Vec<u8> {
        let mut out = BytesMut::new();
        write_varint(value, &mut out);
        out.to_vec()
    }

    #[test]
    fn varint_edges_round_trip_with_expected_lengths() {
        let cases: [(u32, &[u8]); 8] = [
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ];
        for (value, bytes) in cases {
            assert_eq!(encode(value), bytes, "encoding {value}");
            assert_eq!(varint_len(value), bytes.len(), "length of {value}");
            assert_eq!(
                read_varint_prefix(bytes),
                Ok(Some((value, bytes.len()))),
                "decoding {value}"
            );
        }
    }

    #[test]
    fn varint_fifth_byte_is_malformed() {
        let err = read_varint_prefix(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]).unwrap_err();
        assert_eq!(err.reason, ReasonCode::MALFORMED_PACKET);
        // Detected as soon as the fourth byte says "continue", before a fifth byte arrives.
        let err = read_varint_prefix(&[0x80, 0x80, 0x80, 0x80]).unwrap_err();
        assert_eq!(err.reason, ReasonCode::MALFORMED_PACKET);
    }

    #[test]
    fn varint_prefix_needs_more_bytes() {
        assert_eq!(read_varint_prefix(&[]), Ok(None));
        assert_eq!(read_varint_prefix(&[0x80]), Ok(None));
        assert_eq!(read_varint_prefix(&[0xFF, 0xFF, 0xFF]), Ok(None));
    }

    #[test]
    fn varint_non_minimal_encoding_is_accepted() {
        assert_eq!(read_varint_prefix(&[0x80, 0x00]), Ok(Some((0, 2))));
        assert_eq!(read_varint_prefix(&[0x81, 0x80, 0x00]), Ok(Some((1, 3))));
    }

    #[test]
    fn mqtt_1_5_5_1_non_minimal_varint_is_malformed_only_when_required() {
        for bytes in [
            &[0x80, 0x00][..],
            &[0x81, 0x00],
            &[0xFF, 0x80, 0x00],
            &[0x80, 0x80, 0x80, 0x00],
        ] {
            let lenient = Bytes::copy_from_slice(bytes);
            assert!(
                Reader::new(&lenient).varint().is_ok(),
                "{bytes:02x?} lenient"
            );
            let mut strict = Reader::copying(bytes, props::PropLimits::UNLIMITED);
            strict.require_minimal_varints(true);
            let err = strict.varint().unwrap_err();
            assert_eq!(
                err.reason,
                ReasonCode::MALFORMED_PACKET,
                "{bytes:02x?} strict"
            );
        }
        // Minimal encodings still pass in strict mode, edges included.
        for value in [0, 127, 128, 16_383, 16_384, MAX_VARINT] {
            let enc = encode(value);
            let mut r = Reader::copying(&enc, props::PropLimits::UNLIMITED);
            r.require_minimal_varints(true);
            assert_eq!(r.varint(), Ok(value));
        }
    }

    #[test]
    fn copying_reader_gives_binary_fields_their_own_allocation() {
        let big = Bytes::from(vec![0u8; 4096]);
        let mut shared = Reader::new(&big);
        let a = shared.binary().unwrap(); // length 0 then nothing
        assert!(a.is_empty());
        let b = shared.rest();
        assert!(!b.is_unique(), "a shared slice keeps the big buffer alive");
        drop(b);
        let mut copying = Reader::copying(&big[..], props::PropLimits::UNLIMITED);
        let _ = copying.u16();
        let c = copying.rest();
        assert!(c.is_unique());
        assert!(big.is_unique(), "nothing else holds the big buffer");
    }

    #[test]
    fn varint_in_reader_truncated_is_malformed() {
        let b = Bytes::from_static(&[0x80]);
        let mut r = Reader::new(&b);
        assert_eq!(r.varint().unwrap_err().reason, ReasonCode::MALFORMED_PACKET);
    }

    #[test]
    fn utf8_rules() {
        assert_eq!(check_utf8(b"a/b"), Ok("a/b"));
        assert_eq!(check_utf8(b"\x01\x1f\x7f"), Ok("\u{1}\u{1f}\u{7f}"));
        assert_eq!(check_utf8("\u{80}\u{9f}".as_bytes()), Ok("\u{80}\u{9f}"));
        let nul = check_utf8(b"a\0b").unwrap_err();
        assert_eq!(nul.reason, ReasonCode::MALFORMED_PACKET);
        let bad = check_utf8(&[0xC3, 0x28]).unwrap_err();
        assert_eq!(bad.reason, ReasonCode::MALFORMED_PACKET);
        // A UTF-16 surrogate (U+D800) encoded as if it were a code point.
        let surrogate = check_utf8(&[0xED, 0xA0, 0x80]).unwrap_err();
        assert_eq!(surrogate.reason, ReasonCode::MALFORMED_PACKET);
    }

    #[test]
    fn reader_reports_truncation_and_trailing_bytes() {
        let b = Bytes::from_static(&[0x00, 0x05, b'a']);
        let mut r = Reader::new(&b);
        assert_eq!(r.string().unwrap_err().reason, ReasonCode::MALFORMED_PACKET);
        let b = Bytes::from_static(&[0x12, 0x34, 0x56]);
        let mut r = Reader::new(&b);
        assert_eq!(r.u16(), Ok(0x1234));
        assert_eq!(r.finish().unwrap_err().reason, ReasonCode::MALFORMED_PACKET);
        assert_eq!(r.u8(), Ok(0x56));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(r.u8().unwrap_err().reason, ReasonCode::MALFORMED_PACKET);
    }

    #[test]
    fn long_fields_are_clamped_on_a_char_boundary() {
        let s = "é".repeat(40_000); // 80,000 bytes, two per char
        let clamped = clamp_str(&s);
        assert_eq!(clamped.len(), 65_534);
        assert_eq!(string_len(&s), 65_536);
        let mut out = BytesMut::new();
        write_string(&s, &mut out);
        assert_eq!(out.len(), string_len(&s));
        let bin = vec![7u8; 70_000];
        assert_eq!(binary_len(&bin), 2 + 65_535);
    }
}
