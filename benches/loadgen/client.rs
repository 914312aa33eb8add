//! Minimal MQTT 3.1.1 / 5.0 *client* wire code for the load generator.
//!
//! Owns: encoding CONNECT, SUBSCRIBE, PUBLISH (QoS 0/1), PUBACK, PINGREQ and DISCONNECT; framing
//! and decoding CONNACK, SUBACK, PUBLISH, PUBACK and PINGRESP; and a blocking handshake helper
//! ([`Link`]). It deliberately does not use the picomq crate: a codec bug in the broker must not be
//! able to hide itself by being mirrored here. Nothing else (no QoS 2, no will, no auth, no topic
//! aliases): the load generator never asks for them, so a broker that sends them is misbehaving
//! and the error says so.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// MQTT control packet types (high nibble of the first header byte).
pub const CONNACK: u8 = 2;
pub const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const SUBACK: u8 = 9;
pub const PINGRESP: u8 = 13;
pub const DISCONNECT: u8 = 14;

/// Largest packet the reader accepts; anything bigger is treated as a framing error rather than
/// an invitation to allocate without bound.
const MAX_PACKET: usize = 16 * 1024 * 1024;

/// The protocol version spoken on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V4,
    /// MQTT 5.0 (protocol level 5): adds a property block to most packets.
    V5,
}

impl Version {
    fn level(self) -> u8 {
        match self {
            Version::V4 => 4,
            Version::V5 => 5,
        }
    }
}

/// Everything that can go wrong talking to a broker, with enough context to print.
#[derive(Debug)]
pub enum Error {
    /// A socket operation failed; the string says which.
    Io(String, io::Error),
    /// The broker sent bytes that are not valid MQTT (or not what we asked for).
    Protocol(String),
    /// The broker answered, but said no (CONNACK/SUBACK failure code).
    Refused(String),
    /// The broker closed the connection.
    Closed,
    /// No answer in time.
    Timeout(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(what, e) => write!(f, "{what}: {e}"),
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
            Error::Refused(m) => write!(f, "refused: {m}"),
            Error::Closed => write!(f, "connection closed by broker"),
            Error::Timeout(what) => write!(f, "timed out waiting for {what}"),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn proto<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Protocol(msg.into()))
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Appends a variable byte integer (the "remaining length" encoding).
pub fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    loop {
        let mut byte = (v % 128) as u8;
        v /= 128;
        if v > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if v == 0 {
            break;
        }
    }
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_u16(out, s.len() as u16);
    out.extend_from_slice(s);
}

/// Appends a CONNECT with a clean session and the given keep-alive (seconds).
pub fn encode_connect(out: &mut Vec<u8>, v: Version, client_id: &str, keep_alive: u16) {
    let mut body = Vec::with_capacity(32 + client_id.len());
    put_str(&mut body, b"MQTT");
    body.push(v.level());
    body.push(0x02); // clean session / clean start; no will, no credentials
    put_u16(&mut body, keep_alive);
    if v == Version::V5 {
        body.push(0); // no CONNECT properties
    }
    put_str(&mut body, client_id.as_bytes());
    out.push(0x10);
    put_varint(out, body.len());
    out.extend_from_slice(&body);
}

/// Appends a SUBSCRIBE for one filter at the given maximum QoS.
pub fn encode_subscribe(out: &mut Vec<u8>, v: Version, packet_id: u16, filter: &str, qos: u8) {
    let props = usize::from(v == Version::V5);
    let len = 2 + props + 2 + filter.len() + 1;
    out.push(0x82); // SUBSCRIBE requires flags 0b0010
    put_varint(out, len);
    put_u16(out, packet_id);
    if v == Version::V5 {
        out.push(0);
    }
    put_str(out, filter.as_bytes());
    out.push(qos & 0x03);
}

/// Appends a PUBLISH. `packet_id` is used only when `qos` is 1. Hot path: no allocation beyond
/// growing `out`.
pub fn encode_publish(
    out: &mut Vec<u8>,
    v: Version,
    topic: &[u8],
    qos: u8,
    packet_id: u16,
    payload: &[u8],
) {
    let id_len = if qos > 0 { 2 } else { 0 };
    let props = usize::from(v == Version::V5);
    let len = 2 + topic.len() + id_len + props + payload.len();
    out.push(0x30 | (qos << 1));
    put_varint(out, len);
    put_str(out, topic);
    if qos > 0 {
        put_u16(out, packet_id);
    }
    if v == Version::V5 {
        out.push(0);
    }
    out.extend_from_slice(payload);
}

/// Appends a PUBACK. The two-byte form means "success" in both 3.1.1 and 5.0.
pub fn encode_puback(out: &mut Vec<u8>, packet_id: u16) {
    out.extend_from_slice(&[0x40, 2]);
    put_u16(out, packet_id);
}

pub fn encode_pingreq(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xC0, 0]);
}

/// Appends a DISCONNECT; the empty form means "normal disconnection" in 5.0 as well.
pub fn encode_disconnect(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xE0, 0]);
}

// ---------------------------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------------------------

/// One framed packet: type, the four flag bits, and the body after the remaining length.
pub struct Frame<'a> {
    pub kind: u8,
    pub flags: u8,
    pub body: &'a [u8],
}

/// Accumulates bytes from a stream and cuts them into packets. Reuses one buffer; grows only for
/// packets larger than it.
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl FrameReader {
    pub fn new(capacity: usize) -> Self {
        FrameReader {
            buf: vec![0; capacity.max(64)],
            start: 0,
            end: 0,
        }
    }

    /// Reads once from `r` into the free tail of the buffer. `Ok(0)` means end of stream.
    pub fn read_from(&mut self, r: &mut impl Read) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            // Move the partial packet to the front; grow if it alone fills the buffer.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                let new_len = self.buf.len() * 2;
                self.buf.resize(new_len, 0);
            }
        }
        let n = r.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// The next complete packet, or `None` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>> {
        let avail = &self.buf[self.start..self.end];
        if avail.len() < 2 {
            return Ok(None);
        }
        let mut len = 0usize;
        let mut shift = 0;
        let mut i = 1;
        loop {
            if i >= avail.len() {
                return Ok(None);
            }
            if i > 4 {
                return proto("remaining length longer than 4 bytes");
            }
            let b = avail[i];
            len |= usize::from(b & 0x7F) << shift;
            shift += 7;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        if len > MAX_PACKET {
            return proto(format!(
                "packet of {len} bytes exceeds the {MAX_PACKET} limit"
            ));
        }
        if avail.len() < i + len {
            return Ok(None);
        }
        let first = avail[0];
        let body_start = self.start + i;
        self.start = body_start + len;
        Ok(Some(Frame {
            kind: first >> 4,
            flags: first & 0x0F,
            body: &self.buf[body_start..body_start + len],
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// A small cursor over a packet body that reports truncation as a protocol error.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.data.len() - self.pos < n {
            return proto(format!("truncated {what}"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn varint(&mut self, what: &str) -> Result<usize> {
        let mut v = 0usize;
        for i in 0..4 {
            let b = self.u8(what)?;
            v |= usize::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        proto(format!("{what}: variable integer longer than 4 bytes"))
    }
    fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }
}

/// What the load generator needs from a CONNACK.
pub struct ConnAck {
    /// Receive Maximum announced by a 5.0 broker (how many QoS 1 PUBLISHes we may have unacked).
    pub receive_max: Option<u16>,
    /// Maximum QoS announced by a 5.0 broker.
    pub max_qos: Option<u8>,
}

pub fn parse_connack(v: Version, body: &[u8]) -> Result<ConnAck> {
    let mut c = Cursor { data: body, pos: 0 };
    let _flags = c.u8("CONNACK flags")?;
    let code = c.u8("CONNACK code")?;
    let failed = match v {
        Version::V4 => code != 0,
        Version::V5 => code >= 0x80,
    };
    if failed {
        return Err(Error::Refused(format!("CONNACK code 0x{code:02x}")));
    }
    let mut ack = ConnAck {
        receive_max: None,
        max_qos: None,
    };
    if v == Version::V5 && c.pos < body.len() {
        let len = c.varint("CONNACK properties")?;
        let props = c.take(len, "CONNACK properties")?;
        let mut p = Cursor {
            data: props,
            pos: 0,
        };
        while p.pos < props.len() {
            let id = p.u8("property id")?;
            match id {
                0x21 => ack.receive_max = Some(p.u16("Receive Maximum")?),
                0x24 => ack.max_qos = Some(p.u8("Maximum QoS")?),
                _ => skip_property(&mut p, id)?,
            }
        }
    }
    Ok(ack)
}

/// Skips one property value whose identifier has already been read, by its type (MQTT 5.0
/// section 2.2.2.2). Unknown identifiers are a protocol error since the length is unknowable.
fn skip_property(p: &mut Cursor<'_>, id: u8) -> Result<()> {
    match id {
        0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => {
            p.take(1, "byte property")?;
        }
        0x13 | 0x21 | 0x22 | 0x23 => {
            p.take(2, "two-byte property")?;
        }
        0x02 | 0x11 | 0x18 | 0x27 => {
            p.take(4, "four-byte property")?;
        }
        0x0B => {
            p.varint("varint property")?;
        }
        0x03 | 0x08 | 0x12 | 0x15 | 0x1A | 0x1C | 0x1F | 0x09 | 0x16 => {
            let n = p.u16("string property")?;
            p.take(usize::from(n), "string property")?;
        }
        0x26 => {
            for _ in 0..2 {
                let n = p.u16("user property")?;
                p.take(usize::from(n), "user property")?;
            }
        }
        _ => return proto(format!("unknown property id 0x{id:02x}")),
    }
    Ok(())
}

/// Returns the packet id and the granted QoS / reason code of a single-filter SUBACK.
pub fn parse_suback(v: Version, body: &[u8]) -> Result<(u16, u8)> {
    let mut c = Cursor { data: body, pos: 0 };
    let id = c.u16("SUBACK packet id")?;
    if v == Version::V5 {
        let len = c.varint("SUBACK properties")?;
        c.take(len, "SUBACK properties")?;
    }
    let code = c.u8("SUBACK reason code")?;
    Ok((id, code))
}

/// A decoded inbound PUBLISH (borrowing the frame).
pub struct Publish<'a> {
    pub qos: u8,
    pub packet_id: u16,
    pub payload: &'a [u8],
}

pub fn parse_publish<'a>(v: Version, flags: u8, body: &'a [u8]) -> Result<Publish<'a>> {
    let qos = (flags >> 1) & 0x03;
    if qos > 1 {
        return proto(format!(
            "inbound PUBLISH with QoS {qos}; we only subscribe at 0 or 1"
        ));
    }
    let mut c = Cursor { data: body, pos: 0 };
    let tlen = c.u16("PUBLISH topic length")?;
    c.take(usize::from(tlen), "PUBLISH topic")?;
    let packet_id = if qos > 0 {
        c.u16("PUBLISH packet id")?
    } else {
        0
    };
    if v == Version::V5 {
        let len = c.varint("PUBLISH properties")?;
        c.take(len, "PUBLISH properties")?;
    }
    Ok(Publish {
        qos,
        packet_id,
        payload: c.rest(),
    })
}

/// Returns the packet id and the reason code (0 when absent, as 3.1.1 always is).
pub fn parse_puback(body: &[u8]) -> Result<(u16, u8)> {
    let mut c = Cursor { data: body, pos: 0 };
    let id = c.u16("PUBACK packet id")?;
    let code = if body.len() > 2 {
        c.u8("PUBACK reason")?
    } else {
        0
    };
    Ok((id, code))
}

// ---------------------------------------------------------------------------------------------
// Blocking connection helper
// ---------------------------------------------------------------------------------------------

/// A connected, CONNACKed client socket plus its read buffer. Used blocking, with read timeouts,
/// by one thread at a time.
pub struct Link {
    pub stream: TcpStream,
    pub reader: FrameReader,
    pub version: Version,
    /// Unacknowledged QoS 1 PUBLISHes the broker allows (65535 when it did not say).
    pub receive_max: u16,
    /// Highest QoS the broker allows (2 when it did not say).
    pub max_qos: u8,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |e| Error::Io(what, e)
}

impl Link {
    /// Connects, sends CONNECT and waits for a successful CONNACK before `deadline`.
    pub fn connect(
        addr: SocketAddr,
        v: Version,
        client_id: &str,
        keep_alive: u16,
        deadline: Instant,
    ) -> Result<Link> {
        let timeout = remaining(deadline)?;
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(io_err(format!("connect to {addr}")))?;
        stream
            .set_nodelay(true)
            .map_err(io_err("set TCP_NODELAY"))?;
        let mut link = Link {
            stream,
            reader: FrameReader::new(64 * 1024),
            version: v,
            receive_max: u16::MAX,
            max_qos: 2,
        };
        let mut out = Vec::with_capacity(64);
        encode_connect(&mut out, v, client_id, keep_alive);
        link.send(&out)?;
        let ack = link.wait_for(CONNACK, deadline, "CONNACK", parse_connack)?;
        link.receive_max = ack.receive_max.unwrap_or(u16::MAX).max(1);
        link.max_qos = ack.max_qos.unwrap_or(2);
        Ok(link)
    }

    /// Subscribes to one filter and waits for its SUBACK; returns the granted QoS.
    pub fn subscribe(&mut self, filter: &str, qos: u8, deadline: Instant) -> Result<u8> {
        let mut out = Vec::with_capacity(16 + filter.len());
        encode_subscribe(&mut out, self.version, 1, filter, qos);
        self.send(&out)?;
        let (id, code) = self.wait_for(SUBACK, deadline, "SUBACK", parse_suback)?;
        if id != 1 {
            return proto(format!("SUBACK for packet id {id}, expected 1"));
        }
        if code >= 0x80 {
            return Err(Error::Refused(format!(
                "SUBACK code 0x{code:02x} for {filter}"
            )));
        }
        Ok(code)
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).map_err(io_err("write"))
    }

    /// Sends DISCONNECT and closes; errors are ignored because the run is already over.
    pub fn close(mut self) {
        let mut out = Vec::with_capacity(2);
        encode_disconnect(&mut out);
        let _ = self.stream.write_all(&out);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Reads until a packet of type `kind` arrives and decodes it with `parse`. Other packets
    /// (a stray PINGRESP) are skipped; a DISCONNECT from the broker is reported as closure.
    fn wait_for<T>(
        &mut self,
        kind: u8,
        deadline: Instant,
        what: &'static str,
        parse: impl Fn(Version, &[u8]) -> Result<T>,
    ) -> Result<T> {
        loop {
            while let Some(frame) = self.reader.next_frame()? {
                if frame.kind == kind {
                    return parse(self.version, frame.body);
                }
                if frame.kind == DISCONNECT {
                    return Err(disconnected(frame.body));
                }
            }
            let timeout = remaining(deadline).map_err(|_| Error::Timeout(what))?;
            self.stream
                .set_read_timeout(Some(timeout))
                .map_err(io_err("set read timeout"))?;
            match self.reader.read_from(&mut self.stream) {
                Ok(0) => return Err(Error::Closed),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => return Err(Error::Timeout(what)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Io(format!("read while waiting for {what}"), e)),
            }
        }
    }
}

/// The error for a DISCONNECT sent by the broker, with its 5.0 reason code when present.
pub fn disconnected(body: &[u8]) -> Error {
    match body.first() {
        Some(code) => Error::Refused(format!("broker sent DISCONNECT, reason 0x{code:02x}")),
        None => Error::Refused("broker sent DISCONNECT".into()),
    }
}

/// Time left until `deadline`, or a timeout error when it has passed.
fn remaining(deadline: Instant) -> Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(Error::Timeout("setup deadline"))
    } else {
        Ok(left)
    }
}

/// A blocking read with a timeout reports `WouldBlock` on Unix and `TimedOut` elsewhere.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Codec self-checks for `cargo test --benches` (see `selftest` in main).
pub fn self_check() -> Vec<(&'static str, bool)> {
    let frame_of = |bytes: &[u8]| {
        let mut r = FrameReader::new(8); // small on purpose: exercises growing
        let mut src = bytes;
        while r.read_from(&mut src).ok()? > 0 {}
        let f = r.next_frame().ok()??;
        Some((f.kind, f.flags, f.body.to_vec()))
    };
    let publish_ok = |v: Version, qos: u8| {
        let mut out = Vec::new();
        let payload = vec![7u8; 300]; // two-byte remaining length
        encode_publish(&mut out, v, b"a/b", qos, 513, &payload);
        frame_of(&out).is_some_and(|(kind, flags, body)| {
            kind == PUBLISH
                && parse_publish(v, flags, &body).is_ok_and(|p| {
                    p.qos == qos
                        && p.packet_id == if qos == 1 { 513 } else { 0 }
                        && p.payload == payload
                })
        })
    };
    let varint_len = |v: usize| {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out.len()
    };
    let v5_connack = [0x00, 0x00, 0x05, 0x21, 0x00, 0x20, 0x24, 0x01];
    let connack_ok = parse_connack(Version::V5, &v5_connack)
        .is_ok_and(|a| a.receive_max == Some(32) && a.max_qos == Some(1));
    vec![
        ("publish v4 qos0 round trip", publish_ok(Version::V4, 0)),
        ("publish v4 qos1 round trip", publish_ok(Version::V4, 1)),
        ("publish v5 qos0 round trip", publish_ok(Version::V5, 0)),
        ("publish v5 qos1 round trip", publish_ok(Version::V5, 1)),
        (
            "varint lengths",
            [
                (0, 1),
                (127, 1),
                (128, 2),
                (16_383, 2),
                (16_384, 3),
                (2_097_152, 4),
            ]
            .iter()
            .all(|&(v, n)| varint_len(v) == n),
        ),
        ("v5 CONNACK properties", connack_ok),
        (
            "v4 CONNACK refusal",
            matches!(parse_connack(Version::V4, &[0, 5]), Err(Error::Refused(_))),
        ),
        (
            "v5 SUBACK",
            parse_suback(Version::V5, &[0, 1, 0, 1]).is_ok_and(|s| s == (1, 1)),
        ),
        (
            "v5 PUBACK with reason",
            parse_puback(&[0, 9, 0x10]).is_ok_and(|a| a == (9, 0x10)),
        ),
    ]
}
