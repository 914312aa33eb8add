//! A small, fast, non-cryptographic hasher for the router's maps, and the [`FastMap`] alias.
//!
//! Owns: [`FastHasher`] and [`FastMap`]. Must not touch: anything that needs a keyed PRF
//! (authentication tokens, anything crossing a trust boundary as a digest); use SipHash or a real
//! MAC there.
//!
//! # Why not the standard `RandomState` (SipHash-1-3)?
//! The router hashes one short topic level per trie step on every publish. For such keys the
//! whole map lookup is about twice as fast with this hasher as with SipHash-1-3 (the
//! `level_lookup_64_children` bench: ~7 ns vs ~15 ns on x86-64). Not yet measured on MIPS/ARM;
//! both hashes use 64-bit arithmetic there, SipHash with several times more operations per key.
//!
//! # HashDoS trade-off (read this before reusing the map elsewhere)
//! Topic levels come from untrusted clients. With a fixed, public hash function a client could
//! compute offline thousands of levels that land in the same bucket of one trie node and make
//! every insert and lookup at that node linear (quadratic CPU over a burst of SUBSCRIBEs or
//! retained PUBLISHes). Two measures blunt that without paying for SipHash:
//! - **a per-process random seed**, taken once from the standard library's `RandomState` (which
//!   is seeded by the operating system), is the initial state of every hasher, so collisions
//!   cannot be precomputed offline against all picomq processes;
//! - **a final avalanche step** in [`Hasher::finish`], so the low bits that pick the bucket depend
//!   on every input bit and on the seed (a bare multiply leaves low output bits depending only on
//!   low input bits, which no seed can fix).
//!
//! This is still not a keyed PRF: an attacker able to measure fine-grained timing over many
//! attempts could in principle learn enough to build collisions. Broker limits (levels per
//! topic, subscriptions per client, retained messages, connections) bound how large a single
//! node's map can grow, so the worst case stays bounded. The seed is process-wide (not
//! per-thread) on purpose: a `FastMap` built on one thread and moved to another must
//! hash the same way everywhere.
//!
//! # Portability
//! All arithmetic is `u64` with wrapping operations, so results are the same on 32-bit MIPS/ARM
//! and 64-bit targets; no atomics are used directly (the seed lives in a `OnceLock`, which std
//! provides on every target it supports).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// A `HashMap` using [`FastHasher`]. See the module documentation for the HashDoS trade-off.
///
/// Build it with `FastMap::default()` (the `new()` constructor only exists for `RandomState`).
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Odd multiplier of the per-word step (the 64-bit golden-ratio constant, 2^64 / phi).
const WORD_MUL: u64 = 0x9e37_79b9_7f4a_7c15;
/// Odd multiplier of the final avalanche step (any odd constant with well-spread bits).
const FINAL_MUL: u64 = 0xd6e8_feb8_6659_fd93;

/// The process-wide seed, drawn once from `RandomState` (OS randomness).
fn process_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0x7069_636f_6d71_0001);
        // Never 0, so an all-zero input does not stay at the trivial fixed point of the step.
        h.finish() | 1
    })
}

/// The first 8 bytes of `b` as a little-endian word (0 if `b` is shorter; callers never are).
#[inline]
fn load_u64(b: &[u8]) -> u64 {
    b.get(..8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map_or(0, u64::from_le_bytes)
}

/// The first 4 bytes of `b` as a little-endian word (0 if `b` is shorter; callers never are).
#[inline]
fn load_u32(b: &[u8]) -> u64 {
    b.get(..4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, |w| u64::from(u32::from_le_bytes(w)))
}

/// Word-at-a-time multiply-rotate hasher (FxHash-style), seeded per process, with a final
/// avalanche. Deterministic within a process; different across processes.
///
/// Invariant: `state` starts at the process seed; each 64-bit word `w` updates it as
/// `state = (state.rotl(5) ^ w) * WORD_MUL`.
#[derive(Clone, Copy, Debug)]
pub struct FastHasher {
    state: u64,
}

impl Default for FastHasher {
    fn default() -> FastHasher {
        FastHasher {
            state: process_seed(),
        }
    }
}

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(WORD_MUL);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Whole 8-byte words while more than 8 bytes remain, then one last word built from
        // 1 to 8 bytes with fixed-size (possibly overlapping) loads: a variable-length copy
        // into a zeroed buffer compiles to a `memcpy` call and tripled the cost for short keys.
        let total = bytes.len() as u64;
        let mut rest = bytes;
        while let (Some(word), Some(tail)) = (rest.get(..8), rest.get(8..)) {
            if tail.is_empty() {
                break;
            }
            self.add(load_u64(word));
            rest = tail;
        }
        let n = rest.len();
        let last = if n >= 4 {
            // First four and last four bytes; they overlap when n < 8, covering every byte.
            load_u32(rest) | (load_u32(rest.get(n - 4..).unwrap_or(rest)) << 32)
        } else if n > 0 {
            // First, middle and last byte identify a 1-3 byte tail once the length is mixed in.
            u64::from(rest[0]) | (u64::from(rest[n / 2]) << 8) | (u64::from(rest[n - 1]) << 16)
        } else {
            0
        };
        // The total length in the top byte keeps "a" and "a\0" (and empty input) apart.
        self.add(last ^ (total << 56));
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Fold the well-mixed high half into the low half, multiply, fold again: both the low
        // bits (bucket index) and the top bits (hashbrown's control tag) depend on every bit.
        let mut h = self.state;
        h ^= h >> 32;
        h = h.wrapping_mul(FINAL_MUL);
        h ^= h >> 29;
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
        let mut h = FastHasher::default();
        v.hash(&mut h);
        h.finish()
    }

    #[test]
    fn deterministic_within_process() {
        assert_eq!(hash_of("sensors"), hash_of("sensors"));
        assert_eq!(hash_of(&42u32), hash_of(&42u32));
        let boxed: Box<str> = "level".into();
        // Box<str> and &str must agree, or map lookups by &str would fail.
        assert_eq!(hash_of(&boxed), hash_of("level"));
    }

    #[test]
    fn distinguishes_similar_keys() {
        let keys = [
            "",
            "a",
            "b",
            "a\0",
            "\0",
            "ab",
            "ba",
            "aaaaaaaa",
            "aaaaaaaaa",
            "aaaaaaab",
            "$SYS",
        ];
        for (i, x) in keys.iter().enumerate() {
            for y in &keys[i + 1..] {
                assert_ne!(hash_of(*x), hash_of(*y), "{x:?} vs {y:?}");
            }
        }
    }

    #[test]
    fn every_length_and_every_byte_position_counts() {
        // Prefixes of every length up to 3 words, and single-byte changes at every position,
        // exercise the word loop and both tail shapes (1-3 bytes and 4-8 bytes).
        let base = "abcdefghijklmnopqrstuvwx";
        let mut seen = std::collections::HashSet::new();
        for len in 0..=base.len() {
            assert!(
                seen.insert(hash_of(&base.as_bytes()[..len])),
                "prefix {len}"
            );
            for pos in 0..len {
                let mut changed = base.as_bytes()[..len].to_vec();
                changed[pos] ^= 0x20;
                assert!(
                    seen.insert(hash_of(changed.as_slice())),
                    "len {len} pos {pos}"
                );
            }
        }
    }

    #[test]
    fn low_bits_spread_for_sequential_keys() {
        // 4096 sequential device ids into 256 buckets by the low 8 bits: no bucket should be
        // wildly overloaded (expected 16 each).
        let mut buckets = [0u32; 256];
        for i in 0..4096u32 {
            let key = format!("device-{i}");
            buckets[(hash_of(key.as_str()) & 0xff) as usize] += 1;
        }
        let max = buckets.iter().copied().max().unwrap_or(0);
        assert!(max < 48, "max bucket load {max}");
        // Same for integer keys (subscriber references are often small integers).
        let mut buckets = [0u32; 256];
        for i in 0..4096u64 {
            buckets[(hash_of(&i) & 0xff) as usize] += 1;
        }
        let max = buckets.iter().copied().max().unwrap_or(0);
        assert!(max < 48, "max bucket load {max}");
    }

    #[test]
    fn works_as_a_map() {
        let mut m: FastMap<Box<str>, u32> = FastMap::default();
        for i in 0..1000u32 {
            m.insert(format!("k{i}").into(), i);
        }
        for i in 0..1000u32 {
            assert_eq!(m.get(format!("k{i}").as_str()), Some(&i));
        }
        assert_eq!(m.get("missing"), None);
    }
}
