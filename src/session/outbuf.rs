//! The bytes a connection still has to write, as a queue of chunks.
//!
//! Owns: [`OutBuf`]. Small pieces (acks, PUBLISH headers, small payloads) are copied into one growing
//! tail buffer; large payloads are queued as shared `Bytes` chunks so fan-out never copies them per
//! subscriber. The I/O layer drains it with vectored writes. Must not touch: sockets (it only hands
//! out `IoSlice`s and is told how many bytes were written).

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

use crate::protocol::encode::encode_packet;
use crate::protocol::publish_header::PublishHeader;
use crate::protocol::{Packet, ProtocolVersion};

/// Payloads at least this long are queued by reference instead of copied into the tail.
const SHARE_THRESHOLD: usize = 512;
/// An emptied tail larger than this is freed, so idle connections hold no big buffers.
const IDLE_TAIL_CAPACITY: usize = 4096;

/// Pending output of one connection. Bytes in `chunks` come before the bytes in `tail`.
#[derive(Debug, Default)]
pub struct OutBuf {
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
    len: usize,
    /// Packets (and PUBLISH packets among them) appended since the last `take_counts`, for `$SYS`.
    packets: u64,
    publishes: u64,
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

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Packets and PUBLISH packets appended since the last call (the I/O thread's `$SYS` counts).
    pub fn take_counts(&mut self) -> (u64, u64) {
        let counts = (self.packets, self.publishes);
        (self.packets, self.publishes) = (0, 0);
        counts
    }

    /// Appends one encoded control packet.
    pub fn packet(&mut self, packet: &Packet, version: ProtocolVersion) {
        let before = self.tail.len();
        encode_packet(packet, version, &mut self.tail);
        self.len += self.tail.len() - before;
        self.packets += 1;
        self.publishes += u64::from(matches!(packet, Packet::Publish(_)));
    }

    /// Appends a PUBLISH whose payload is shared: the header is encoded here, the payload is either
    /// copied (small) or queued by reference (large).
    pub fn publish(&mut self, head: &PublishHeader<'_>, payload: &Bytes, version: ProtocolVersion) {
        let before = self.tail.len();
        head.encode(payload.len(), version, &mut self.tail);
        self.len += self.tail.len() - before + payload.len();
        self.packets += 1;
        self.publishes += 1;
        if payload.len() < SHARE_THRESHOLD {
            self.tail.extend_from_slice(payload);
        } else {
            if !self.tail.is_empty() {
                self.chunks.push_back(self.tail.split().freeze());
            }
            self.chunks.push_back(payload.clone());
        }
    }

    /// Fills `dst` with slices of the pending bytes, in order; returns how many were filled.
    pub fn io_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for chunk in self
            .chunks
            .iter()
            .map(|c| &c[..])
            .chain(std::iter::once(&self.tail[..]))
        {
            if n == dst.len() {
                break;
            }
            if !chunk.is_empty() {
                dst[n] = IoSlice::new(chunk);
                n += 1;
            }
        }
        n
    }

    /// Drops the first `n` bytes after they were written.
    pub fn consume(&mut self, mut n: usize) {
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
            if self.tail.capacity() > IDLE_TAIL_CAPACITY {
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
