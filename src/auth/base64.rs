//! Standard base64 (RFC 4648 section 4: `A-Z a-z 0-9 + /`, `=` padding), as Mosquitto writes the
//! salts and hashes of its password files.
//!
//! Owns: encoding and strict decoding of short values (12-byte salts, 64-byte digests). Must not
//! touch: anything else. About sixty lines, so no crate for it: the password file and SCRAM messages are its users.
//!
//! Decoding is strict on purpose: padding is required when the length is not a multiple of three
//! bytes, no whitespace, no URL-safe alphabet, and the unused low bits of the last character must
//! be zero, so every value has exactly one spelling and a corrupted file is reported, not guessed.

/// The 64 symbols, indexed by their 6-bit value.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `bytes`, padding the last group with `=`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let group = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let index = (group >> (18 - 6 * i)) & 0x3f;
                out.push(char::from(ALPHABET[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The 6-bit value of one symbol, or `None` for anything outside the alphabet (padding included).
fn value(symbol: u8) -> Option<u32> {
    let v = match symbol {
        b'A'..=b'Z' => symbol - b'A',
        b'a'..=b'z' => symbol - b'a' + 26,
        b'0'..=b'9' => symbol - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes canonical base64; `None` if `text` is not exactly what [`encode`] would write for
/// some byte string.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if text.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let groups = text.len() / 4;
    for (n, group) in text.chunks(4).enumerate() {
        // Padding may only end the last group: "xx==" (1 byte) or "xxx=" (2 bytes).
        let pad = group.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && n + 1 != groups) {
            return None;
        }
        let mut bits = 0u32;
        for &symbol in &group[..4 - pad] {
            bits = bits << 6 | value(symbol)?;
        }
        bits <<= 6 * pad as u32;
        let decoded = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
        let keep = 3 - pad;
        // Bits below the last kept byte must be zero, or two spellings would decode alike.
        if decoded[keep..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&decoded[..keep]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in cases {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).as_deref(), Some(plain.as_bytes()), "{coded}");
        }
    }

    #[test]
    fn round_trips_every_byte_and_length() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..data.len() {
            let coded = encode(&data[..len]);
            assert_eq!(decode(&coded).as_deref(), Some(&data[..len]));
        }
    }

    #[test]
    fn rejects_non_canonical_input() {
        for bad in [
            "Zg",       // padding missing
            "Zg=",      // length not a multiple of 4
            "Zh==",     // low bits set in the last symbol
            "Zm9=",     // ditto for two bytes
            "Z===",     // three pad symbols
            "Zg==Zg==", // padding before the end
            "Zm9v\n",   // whitespace
            "Zm-_",     // URL-safe alphabet
            "=Zm9",     // padding first
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
