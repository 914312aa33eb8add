//! Fuzz target `decode`: arbitrary bytes through `decode_packet` for every protocol version
//! (and for "before CONNECT"). The decoder must never panic; every packet it accepts must
//! re-encode to bytes that decode to the same packet, with `encoded_len` matching.
//!
//! Owns: the fuzz oracle. Must not touch: the codec (a finding is fixed in `src/protocol`).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use picomq::protocol::decode::decode_packet;
use picomq::protocol::encode::{encode_packet, encoded_len};
use picomq::protocol::{Packet, ProtocolVersion};

/// Re-encodes `packet` for `version` and checks it decodes back to itself.
fn check_round_trip(packet: &Packet, version: ProtocolVersion) {
    let mut out = BytesMut::new();
    encode_packet(packet, version, &mut out);
    assert_eq!(out.len(), encoded_len(packet, version), "encoded_len of {packet:?}");
    let current = match packet {
        Packet::Connect(_) => None,
        _ => Some(version),
    };
    let again = decode_packet(&mut out, current, u32::MAX);
    assert_eq!(again, Ok(Some(packet.clone())), "re-decoding {packet:?}");
    assert!(out.is_empty(), "re-encoding of {packet:?} left bytes");
}

fuzz_target!(|data: &[u8]| {
    let starts = [
        None,
        Some(ProtocolVersion::V31),
        Some(ProtocolVersion::V311),
        Some(ProtocolVersion::V5),
    ];
    for start in starts {
        let mut version = start;
        let mut buf = BytesMut::from(data);
        // Decode as many packets as the input holds, the way a connection would.
        while let Ok(Some(packet)) = decode_packet(&mut buf, version, u32::MAX) {
            let wire_version = match (&packet, version) {
                (Packet::Connect(c), _) => c.protocol,
                (_, Some(v)) => v,
                (_, None) => unreachable!("only CONNECT decodes before a version is known"),
            };
            check_round_trip(&packet, wire_version);
            if version.is_none() {
                version = Some(wire_version);
            }
        }
    }
});
