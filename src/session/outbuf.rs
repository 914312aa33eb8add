//! The bytes a connection still has to write, as a queue of chunks.
//!
//! Owns: [`OutBuf`]. Small pieces (acks, PUBLISH headers, small payloads) are copied into one growing
//! tail buffer; large payloads are queued as shared `Bytes` chunks so fan-out never copies them per
//! subscriber. The I/O layer drains it with vectored writes. Also owns the one rule that keeps a
//! control packet within the client's Maximum Packet Size ([`OutBuf::packet_within`]). Must not
//! touch: sockets (it only hands out `IoSlice`s and is told how many bytes were written).

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

use crate::protocol::encode::{encode_packet, encoded_len};
use crate::protocol::publish_header::PublishHeader;
use crate::protocol::{Packet, Properties, ProtocolVersion};

/// Payloads at least this long are queued by reference instead of copied into the tail.
const SHARE_THRESHOLD: usize = 512;
/// An emptied tail larger than this is freed, so idle connections hold no big buffers.
const IDLE_TAIL_CAPACITY: usize = 4096;
/// An emptied tail this small is freed too: it never had to grow past a few acknowledgements, so
/// the connection writes little (most often it is idle since its CONNACK), and making it again
/// costs one small allocation where keeping it costs every idle connection a heap chunk.
const SMALL_TAIL_CAPACITY: usize = 64;

/// The properties of a packet the server sends that may lose their optional parts to fit a
/// client's Maximum Packet Size (everything but PUBLISH and the client-only packets).
fn droppable_properties(packet: &mut Packet) -> Option<&mut Properties> {
    match packet {
        Packet::ConnAck(a) => Some(&mut a.properties),
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            Some(&mut r.properties)
        }
        Packet::SubAck(a) => Some(&mut a.properties),
        Packet::UnsubAck(a) => Some(&mut a.properties),
        Packet::Disconnect(d) => Some(&mut d.properties),
        Packet::Auth(a) => Some(&mut a.properties),
        _ => None,
    }
}

/// Pending output of one connection. Bytes in `chunks` come before the bytes in `tail`.
#[derive(Debug, Default)]
pub struct OutBuf {
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
    len: usize,
    /// Packets (and PUBLISH packets among them) appended since the last `take_counts`, for `$SYS`
    /// (32 bits: taken on every flush).
    packets: u32,
    publishes: u32,
    /// Held acknowledgements (the ack gate); boxed so a connection without any pays one word.
    holds: Option<Box<Holds>>,
}

/// Positions in the stream from which output is held until their ticket is released.
#[derive(Debug, Default)]
struct Holds {
    /// Bytes consumed since the holds were created: positions below are relative to that start.
    consumed: u64,
    /// (position, ticket), in stream order; tickets only grow.
    marks: VecDeque<(u64, u64)>,
}

impl OutBuf {
    /// An empty buffer; allocates nothing until something is written.
    pub fn new() -> OutBuf {
        OutBuf::default()
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is nothing to write, held or not.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that may be written now: all of them, or those before the first held position.
    pub fn writable(&self) -> usize {
        match &self.holds {
            None => self.len,
            Some(h) => match h.marks.front() {
                Some(&(at, _)) => self.len.min(at.saturating_sub(h.consumed) as usize),
                None => self.len,
            },
        }
    }

    /// Holds everything from `offset` bytes past the current start of the buffer (where an
    /// acknowledgement was just appended) until [`OutBuf::release_through`] reaches `ticket`.
    /// Later output queues behind it, so nothing overtakes a held acknowledgement.
    pub fn hold_from(&mut self, offset: usize, ticket: u64) {
        let h = self.holds.get_or_insert_with(Box::default);
        let at = h.consumed + offset as u64;
        h.marks.push_back((at, ticket));
    }

    /// Releases the holds with tickets up to `ticket`; returns whether bytes became writable.
    pub fn release_through(&mut self, ticket: u64) -> bool {
        let Some(h) = self.holds.as_mut() else {
            return false;
        };
        let before = h.marks.len();
        while h.marks.front().is_some_and(|&(_, t)| t <= ticket) {
            h.marks.pop_front();
        }
        let released = h.marks.len() != before;
        if h.marks.is_empty() {
            self.holds = None;
        }
        released
    }

    /// Whether acknowledgements are held.
    pub fn has_holds(&self) -> bool {
        self.holds.is_some()
    }

    /// Packets and PUBLISH packets appended since the last call (the I/O thread's `$SYS` counts).
    pub fn take_counts(&mut self) -> (u64, u64) {
        let counts = (u64::from(self.packets), u64::from(self.publishes));
        (self.packets, self.publishes) = (0, 0);
        counts
    }

    /// Appends one encoded control packet.
    pub fn packet(&mut self, packet: &Packet, version: ProtocolVersion) {
        let before = self.tail.len();
        encode_packet(packet, version, &mut self.tail);
        self.len += self.tail.len() - before;
        self.packets = self.packets.wrapping_add(1);
        self.publishes = self
            .publishes
            .wrapping_add(u32::from(matches!(packet, Packet::Publish(_))));
    }

    /// Appends `packet` only if its encoding fits in `max` bytes, the client's Maximum Packet Size
    /// ([MQTT-3.1.2-24]: the server MUST NOT send a larger packet). To make it fit, the optional
    /// parts are dropped in this order: the Reason String, then the User Properties (the order
    /// [MQTT-3.2.2-19] / [MQTT-3.2.2-20] and their twins in every ack, DISCONNECT and AUTH
    /// allow), then a Server Reference (optional too, MQTT 5.0 section 4.11: the reason code alone
    /// still tells the client to go elsewhere). Returns false, writing nothing, when even that
    /// does not fit; the caller then closes the connection without sending it.
    ///
    /// PUBLISH is not handled here: its properties belong to the application message, and one
    /// that is too large is discarded instead ([MQTT-3.1.2-25], see `outbound`).
    pub fn packet_within(
        &mut self,
        mut packet: Packet,
        version: ProtocolVersion,
        max: u32,
    ) -> bool {
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        let fits = |p: &Packet| encoded_len(p, version) <= max;
        if !fits(&packet) {
            let steps: [fn(&mut Properties); 3] = [
                |p| p.reason_string = None,
                |p| p.user_properties = Vec::new(),
                |p| p.server_reference = None,
            ];
            for step in steps {
                let Some(props) = droppable_properties(&mut packet) else {
                    break;
                };
                step(props);
                if fits(&packet) {
                    break;
                }
            }
            if !fits(&packet) {
                return false;
            }
        }
        self.packet(&packet, version);
        true
    }

    /// Appends a PUBLISH whose payload is shared: the header is encoded here, the payload is either
    /// copied (small) or queued by reference (large).
    pub fn publish(&mut self, head: &PublishHeader<'_>, payload: &Bytes, version: ProtocolVersion) {
        let before = self.tail.len();
        head.encode(payload.len(), version, &mut self.tail);
        self.len += self.tail.len() - before + payload.len();
        self.packets = self.packets.wrapping_add(1);
        self.publishes = self.publishes.wrapping_add(1);
        if payload.len() < SHARE_THRESHOLD {
            self.tail.extend_from_slice(payload);
        } else {
            if !self.tail.is_empty() {
                self.chunks.push_back(self.tail.split().freeze());
            }
            self.chunks.push_back(payload.clone());
        }
    }

    /// Fills `dst` with slices of the writable bytes (see [`OutBuf::writable`]), in order;
    /// returns how many were filled.
    pub fn io_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        let mut left = self.writable();
        for chunk in self
            .chunks
            .iter()
            .map(|c| &c[..])
            .chain(std::iter::once(&self.tail[..]))
        {
            if n == dst.len() || left == 0 {
                break;
            }
            if !chunk.is_empty() {
                let take = chunk.len().min(left);
                dst[n] = IoSlice::new(&chunk[..take]);
                left -= take;
                n += 1;
            }
        }
        n
    }

    /// Drops the first `n` bytes after they were written.
    pub fn consume(&mut self, mut n: usize) {
        if let Some(h) = self.holds.as_mut() {
            h.consumed += n as u64;
        }
        self.len -= n.min(self.len);
        while n > 0 {
            match self.chunks.front_mut() {
                Some(front) if front.len() <= n => {
                    n -= front.len();
                    self.chunks.pop_front();
                }
                Some(front) => {
                    front.advance(n);
                    n = 0;
                }
                None => {
                    let k = n.min(self.tail.len());
                    self.tail.advance(k);
                    n = 0;
                }
            }
        }
        if self.len == 0 {
            self.tail.clear();
            let cap = self.tail.capacity();
            if cap <= SMALL_TAIL_CAPACITY || cap > IDLE_TAIL_CAPACITY {
                self.tail = BytesMut::new();
            }
        }
    }

    /// Takes all pending bytes as one contiguous buffer (tests and simulations).
    pub fn take_all(&mut self) -> BytesMut {
        let mut all = BytesMut::with_capacity(self.len);
        for c in self.chunks.drain(..) {
            all.extend_from_slice(&c);
        }
        all.extend_from_slice(&self.tail);
        self.tail = BytesMut::new();
        self.len = 0;
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ConnAck, Disconnect, ReasonCode};

    /// Holds cut the writable bytes at their position, survive partial writes before them, and
    /// release in ticket order; a large shared chunk behind a hold stays held too.
    #[test]
    fn holds_cut_the_writable_bytes_until_released_in_ticket_order() {
        let mut out = OutBuf::new();
        out.packet(&Packet::PingResp, ProtocolVersion::V5);
        let first = out.len();
        out.hold_from(first, 1);
        out.packet(&Packet::PingResp, ProtocolVersion::V5);
        let second = out.len();
        out.hold_from(second, 2);
        out.tail.extend_from_slice(&[0u8; 600]);
        out.len += 600;
        assert_eq!(out.writable(), first);
        let mut slices = [IoSlice::new(&[]); 4];
        let n = out.io_slices(&mut slices);
        assert_eq!(slices[..n].iter().map(|s| s.len()).sum::<usize>(), first);
        out.consume(1);
        assert_eq!(
            out.writable(),
            first - 1,
            "a partial write keeps the position"
        );
        assert!(!out.release_through(0));
        assert!(out.release_through(1));
        assert_eq!(out.writable(), second - 1);
        assert!(out.release_through(5));
        assert!(!out.has_holds());
        assert_eq!(out.writable(), out.len());
    }

    fn connack() -> Packet {
        Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::NOT_AUTHORIZED,
            properties: Properties {
                reason_string: Some("r".repeat(20)),
                user_properties: vec![("k".into(), "v".repeat(20))],
                ..Properties::default()
            },
        })
    }

    /// What `packet_within` wrote for `packet` under `max`, decoded as v5.
    fn written(packet: Packet, max: u32) -> Option<Packet> {
        let mut out = OutBuf::new();
        if !out.packet_within(packet, ProtocolVersion::V5, max) {
            assert!(out.is_empty(), "nothing is written when it does not fit");
            return None;
        }
        let mut bytes = out.take_all();
        assert!(bytes.len() <= max as usize);
        crate::protocol::decode::decode_packet(&mut bytes, Some(ProtocolVersion::V5), u32::MAX)
            .expect("valid")
    }

    #[test]
    fn mqtt_3_2_2_19_and_20_reason_string_goes_first_then_user_properties_then_nothing() {
        let full = crate::protocol::encode::encoded_len(&connack(), ProtocolVersion::V5) as u32;
        // Fits: unchanged.
        assert_eq!(written(connack(), full), Some(connack()));
        // One byte short: the reason string goes, the user property stays.
        let Some(Packet::ConnAck(a)) = written(connack(), full - 1) else {
            panic!("expected CONNACK");
        };
        assert_eq!(a.properties.reason_string, None);
        assert_eq!(a.properties.user_properties.len(), 1);
        // Room for the bare CONNACK only (5 bytes): both go.
        let Some(Packet::ConnAck(a)) = written(connack(), 5) else {
            panic!("expected CONNACK");
        };
        assert_eq!(a.properties, Properties::default());
        assert_eq!(a.reason, ReasonCode::NOT_AUTHORIZED);
        // Not even that: nothing.
        assert_eq!(written(connack(), 4), None);
    }

    #[test]
    fn mqtt_3_1_2_24_server_reference_goes_last_and_plain_packets_fit_or_not() {
        let d = Packet::Disconnect(Disconnect {
            reason: ReasonCode::SERVER_MOVED,
            properties: Properties {
                reason_string: Some("moved".into()),
                server_reference: Some("other:1883".into()),
                ..Properties::default()
            },
        });
        let Some(Packet::Disconnect(kept)) = written(d.clone(), 17) else {
            panic!("expected DISCONNECT");
        };
        assert_eq!(kept.properties.reason_string, None);
        assert_eq!(
            kept.properties.server_reference.as_deref(),
            Some("other:1883")
        );
        let Some(Packet::Disconnect(bare)) = written(d, 4) else {
            panic!("expected DISCONNECT");
        };
        assert_eq!(bare.properties, Properties::default());
        // PINGRESP is 2 bytes: no optional part to drop.
        assert_eq!(written(Packet::PingResp, 2), Some(Packet::PingResp));
        assert_eq!(written(Packet::PingResp, 1), None);
    }
}
