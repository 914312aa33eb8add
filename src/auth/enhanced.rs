//! Pluggable MQTT 5 enhanced authentication methods (MQTT 5.0 section 4.12): the [`AuthMethod`]
//! trait a method implements, the per-connection [`AuthExchange`] it starts, and the
//! [`NonceSource`] methods draw their server nonces from.
//!
//! Owns: the contract between the broker and a method (bytes in, [`Step`] out), and the nonce
//! generator. Must not touch: the MQTT wire (the session wraps the bytes in AUTH and CONNACK
//! packets and picks the reason codes), sockets, threads or the clock. Only
//! [`NonceSource::from_os`] reads a file (`/dev/urandom`, once, when the authenticator is built), so
//! an exchange itself is pure computation and runs inside the sans-IO session.

use std::fmt;
use std::io::Read;

use super::base64;

/// What one step of an exchange produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// More is needed: send these bytes as Authentication Data in AUTH 0x18 Continue
    /// authentication and wait for the client's answer.
    Continue(Vec<u8>),
    /// Authenticated as `username`; `data` (if any) goes into the CONNACK or the AUTH 0x00 Success.
    Success {
        /// Final data for the client (SCRAM: the server signature).
        data: Option<Vec<u8>>,
        /// The user the client proved to be.
        username: String,
    },
    /// Not authenticated. `why` is for the log only, never for the client.
    Failure {
        /// What went wrong.
        why: String,
    },
}

/// One authentication exchange on one connection (one per CONNECT or re-authentication).
pub trait AuthExchange: Send {
    /// Feeds the client's Authentication Data (empty when the packet had none).
    fn step(&mut self, data: &[u8]) -> Step;
}

/// An authentication method, registered under its name (the Authentication Method property).
pub trait AuthMethod: Send + Sync {
    /// The name clients put in the Authentication Method property, e.g. `SCRAM-SHA-512`.
    fn name(&self) -> &str;
    /// Starts an exchange. Must not block or do I/O: it runs on an I/O thread.
    fn start(&self) -> Box<dyn AuthExchange>;
}

impl fmt::Debug for dyn AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthMethod({})", self.name())
    }
}

impl fmt::Debug for dyn AuthExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthExchange")
    }
}

/// Unpredictable, never-repeating nonces: HMAC-SHA512 under a 64-byte secret key of a 64-bit
/// counter, base64-encoded (the alphabet has no `,`, so it is a valid SCRAM nonce as is).
///
/// Why not read `/dev/urandom` per nonce: that would be file I/O inside the sans-IO session (a
/// re-authentication starts inside [`crate::session::Session::handle`]). Seeding once and
/// expanding with HMAC is the usual DRBG construction; the key never leaves this struct.
///
/// The counter is a `u64` behind a mutex, not an `AtomicU64`: 32-bit MIPS and ARMv5/v6 have no
/// 64-bit atomics, a 32-bit counter could wrap and repeat a nonce, and one lock per SCRAM exchange
/// costs nothing next to its hashing.
pub struct NonceSource {
    key: [u8; 64],
    counter: parking_lot::Mutex<u64>,
}

impl fmt::Debug for NonceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceSource")
    }
}

impl NonceSource {
    /// Seeds from the operating system's CSPRNG (`/dev/urandom`, present on every Linux target we
    /// ship; no extra crate needed, as `picomq passwd` already reads it for salts).
    pub fn from_os() -> std::io::Result<NonceSource> {
        let mut key = [0u8; 64];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
        Ok(NonceSource::from_seed(key))
    }

    /// A generator with a fixed key: deterministic, for tests only.
    pub fn from_seed(key: [u8; 64]) -> NonceSource {
        NonceSource {
            key,
            counter: parking_lot::Mutex::new(0),
        }
    }

    /// 32 printable characters (24 random bytes in base64), never the same twice.
    pub fn next_nonce(&self) -> String {
        let n = {
            let mut counter = self.counter.lock();
            *counter += 1;
            *counter
        };
        let out = self.derive(b"nonce", &n.to_be_bytes());
        base64::encode(&out[..24])
    }

    /// A keyed pseudo-random function of `(label, input)`: stable for one `NonceSource`, unknown
    /// without its key. Not for decoy credentials: the key changes at every start-up (they use
    /// `PasswordFile::decoy_bytes`).
    fn derive(&self, label: &[u8], input: &[u8]) -> [u8; 64] {
        super::passwd::labeled_hmac_sha512(&self.key, label, input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_printable_distinct_and_keyed() {
        let a = NonceSource::from_seed([1; 64]);
        let b = NonceSource::from_seed([2; 64]);
        let (n1, n2) = (a.next_nonce(), a.next_nonce());
        assert_ne!(n1, n2);
        assert_ne!(n1, b.next_nonce());
        assert_eq!(n1.len(), 32);
        assert!(n1.bytes().all(|c| (0x21..=0x7e).contains(&c) && c != b','));
        assert_eq!(a.derive(b"x", b"u"), a.derive(b"x", b"u"));
        assert_ne!(a.derive(b"x", b"u"), b.derive(b"x", b"u"));
        assert!(NonceSource::from_os().is_ok());
    }
}
