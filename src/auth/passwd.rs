//! Mosquitto-compatible password files: parsing, verification and editing.
//!
//! Owns: the file format, the hash schemes, constant-time comparison, and the in-memory file
//! that `picomq passwd` edits. Must not touch: file I/O (the caller reads and writes the text),
//! the clock, randomness (salts are passed in), or what a refused login answers on the wire.
//!
//! # Format
//! One entry per line, `user:hash`, as `mosquitto_passwd` writes it:
//! - `$7$ITERATIONS$SALT$HASH`: PBKDF2-HMAC-SHA512 of the password, `ITERATIONS` rounds, a 64-byte
//!   result (Mosquitto 2's default; `mosquitto_passwd` uses 101 rounds).
//! - `$6$SALT$HASH`: one SHA-512 over the password bytes followed by the salt bytes (Mosquitto 1.6
//!   and older).
//! - `$scram-sha-256$ITERATIONS$SALT$STOREDKEY$SERVERKEY` (picomq only, `picomq passwd -S`): the
//!   SCRAM-SHA-256 credential of RFC 5802 (StoredKey and ServerKey, 32 bytes each, from
//!   PBKDF2-HMAC-SHA256); it verifies plain CONNECT passwords too. Mosquitto skips such lines, so
//!   those users cannot log in there.
//!
//! `SALT` is 12 bytes and `HASH` 64 bytes, both in standard base64 with padding; Mosquitto refuses
//! other lengths and so do we. Both constructions were checked against files written by
//! `mosquitto_passwd` 2.0.11 (see the tests here and `tests/auth_files.rs`).
//!
//! # Stricter than Mosquitto
//! Mosquitto skips lines it cannot use (blank lines, lines without `:`, unknown hash types) with
//! at most a log line, which can silently lock a user out or leave a typo unnoticed. Here every
//! such line is an error naming its line number: blank lines, a missing `:`, an empty user name,
//! an unknown or malformed hash, plain-text passwords, and a user listed twice. Lines starting with
//! `#` in the first column are comments, as the Mosquitto broker reads them (`mosquitto_passwd`
//! itself drops them when it rewrites a file; `picomq passwd` keeps them). Spaces and tabs around
//! the user name and the hash are ignored, as Mosquitto does; a trailing `\r` is ignored too.
//!
//! Mosquitto hashes a password only up to its first NUL byte (it treats it as a C string); here
//! the whole binary MQTT password is hashed, so `secret\0x` does not pass for `secret`. (Trailing
//! NUL bytes alone make no difference to a `$7$` hash: HMAC pads its key with zeros.)

use std::collections::HashMap;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha512};

use super::scram::{ScramHash, ScramSha256, ServerCredential};
use super::{base64, LineError};

/// Salt length of both schemes, in bytes (Mosquitto's value, and the only one it accepts).
pub const SALT_LEN: usize = 12;

/// Digest length of both schemes (SHA-512), in bytes.
pub const HASH_LEN: usize = 64;

/// PBKDF2 rounds used by `picomq passwd` unless told otherwise: the same as `mosquitto_passwd`.
///
/// Low by desktop standards, chosen because every CONNECT with a password pays it: 101 rounds cost
/// about 200 SHA-512 blocks, a few milliseconds on a 32-bit MIPS router CPU, so a burst of
/// reconnecting devices does not stall the broker. Raise it per entry with
/// `picomq passwd -I ROUNDS` where CPU allows; every reader (picomq and Mosquitto) takes the
/// rounds from the entry itself.
pub const DEFAULT_ITERATIONS: u32 = 101;

/// Rounds for `$scram-sha-256$` entries (`picomq passwd -S`) unless told otherwise: RFC 7677
/// section 4 asks for at least 4096.
pub const SCRAM_SHA256_ITERATIONS: u32 = 4096;

/// Most PBKDF2 rounds accepted in a file: Mosquitto reads the count into a C `int`.
pub const MAX_ITERATIONS: u32 = i32::MAX as u32;

/// Longest user name or password MQTT can carry (a two-byte length prefix).
pub const MAX_FIELD_LEN: usize = 65_535;

/// One stored password hash.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// `$6$`: SHA-512 over the password followed by the salt.
    Sha512 {
        /// Random bytes stored beside the hash.
        salt: [u8; SALT_LEN],
        /// The digest to compare against.
        hash: [u8; HASH_LEN],
    },
    /// `$7$`: PBKDF2 with HMAC-SHA512.
    Pbkdf2Sha512 {
        /// PBKDF2 rounds, 1 to [`MAX_ITERATIONS`].
        iterations: u32,
        /// Random bytes stored beside the hash.
        salt: [u8; SALT_LEN],
        /// The derived key to compare against.
        hash: [u8; HASH_LEN],
    },
    /// `$scram-sha-256$`: a SCRAM-SHA-256 credential (RFC 5802 section 3, RFC 7677).
    ScramSha256 {
        /// PBKDF2-HMAC-SHA256 rounds, 1 to [`MAX_ITERATIONS`].
        iterations: u32,
        /// Random bytes stored beside the keys.
        salt: [u8; SALT_LEN],
        /// H(HMAC(SaltedPassword, "Client Key")).
        stored_key: [u8; 32],
        /// HMAC(SaltedPassword, "Server Key").
        server_key: [u8; 32],
    },
}

impl fmt::Debug for PasswordHash {
    /// Names the scheme only: hashes do not belong in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordHash::Sha512 { .. } => f.write_str("PasswordHash($6$)"),
            PasswordHash::Pbkdf2Sha512 { iterations, .. } => {
                write!(f, "PasswordHash($7$, {iterations} rounds)")
            }
            PasswordHash::ScramSha256 { iterations, .. } => {
                write!(f, "PasswordHash($scram-sha-256$, {iterations} rounds)")
            }
        }
    }
}

/// The scheme of a [`PasswordHash`], without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// `$6$`.
    Sha512,
    /// `$7$`.
    Pbkdf2Sha512,
    /// `$scram-sha-256$`.
    ScramSha256,
}

impl PasswordHash {
    /// The scheme of this entry.
    pub fn kind(&self) -> HashKind {
        match self {
            PasswordHash::Sha512 { .. } => HashKind::Sha512,
            PasswordHash::Pbkdf2Sha512 { .. } => HashKind::Pbkdf2Sha512,
            PasswordHash::ScramSha256 { .. } => HashKind::ScramSha256,
        }
    }

    /// Hashes `password` the `$7$` way with the given salt and rounds (`iterations` of 0 is
    /// raised to 1, as PBKDF2 needs at least one round).
    pub fn pbkdf2(password: &[u8], salt: [u8; SALT_LEN], iterations: u32) -> PasswordHash {
        let iterations = iterations.clamp(1, MAX_ITERATIONS);
        let mut hash = [0u8; HASH_LEN];
        pbkdf2::pbkdf2_hmac::<Sha512>(password, &salt, iterations, &mut hash);
        PasswordHash::Pbkdf2Sha512 {
            iterations,
            salt,
            hash,
        }
    }

    /// The SCRAM-SHA-256 credential of `password` (`iterations` of 0 is raised to 1).
    pub fn scram_sha256(password: &[u8], salt: [u8; SALT_LEN], iterations: u32) -> PasswordHash {
        let iterations = iterations.clamp(1, MAX_ITERATIONS);
        let salted = ScramSha256::hi(password, &salt, iterations);
        let c = ServerCredential::from_salted::<ScramSha256>(&salted, &salt, iterations);
        let key = |v: Vec<u8>| <[u8; 32]>::try_from(v.as_slice()).expect("SHA-256 output");
        PasswordHash::ScramSha256 {
            iterations,
            salt,
            stored_key: key(c.stored_key),
            server_key: key(c.server_key),
        }
    }

    /// Hashes `password` the `$6$` way (only for tests and compatibility checks: `picomq passwd`
    /// always writes `$7$`).
    pub fn sha512(password: &[u8], salt: [u8; SALT_LEN]) -> PasswordHash {
        PasswordHash::Sha512 {
            salt,
            hash: sha512_digest(password, &salt),
        }
    }

    /// Parses the part after `user:`, e.g. `$7$101$<salt>$<hash>`.
    pub fn parse(text: &str) -> Result<PasswordHash, String> {
        let fields: Vec<&str> = text.split('$').collect();
        match fields.as_slice() {
            ["", "6", salt, hash] => Ok(PasswordHash::Sha512 {
                salt: decode_fixed(salt, "salt")?,
                hash: decode_fixed(hash, "hash")?,
            }),
            ["", "7", iterations, salt, hash] => Ok(PasswordHash::Pbkdf2Sha512 {
                iterations: parse_iterations(iterations)?,
                salt: decode_fixed(salt, "salt")?,
                hash: decode_fixed(hash, "hash")?,
            }),
            ["", "scram-sha-256", iterations, salt, stored_key, server_key] => {
                Ok(PasswordHash::ScramSha256 {
                    iterations: parse_iterations(iterations)?,
                    salt: decode_fixed(salt, "salt")?,
                    stored_key: decode_fixed(stored_key, "StoredKey")?,
                    server_key: decode_fixed(server_key, "ServerKey")?,
                })
            }
            ["", "6" | "7" | "scram-sha-256", ..] => Err(format!("malformed hash {text:?}")),
            ["", kind, ..] => Err(format!(
                "unsupported hash type ${kind}$ (expected $6$, $7$ or $scram-sha-256$)"
            )),
            _ => Err(
                "not a hashed password (plain-text passwords are not accepted: create \
                      entries with `picomq passwd` or convert the file with `mosquitto_passwd -U`)"
                    .to_owned(),
            ),
        }
    }

    /// The text stored after `user:`, as `mosquitto_passwd` writes it.
    pub fn encode(&self) -> String {
        match self {
            PasswordHash::Sha512 { salt, hash } => {
                format!("$6${}${}", base64::encode(salt), base64::encode(hash))
            }
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => format!(
                "$7${iterations}${}${}",
                base64::encode(salt),
                base64::encode(hash)
            ),
            PasswordHash::ScramSha256 {
                iterations,
                salt,
                stored_key,
                server_key,
            } => format!(
                "$scram-sha-256${iterations}${}${}${}",
                base64::encode(salt),
                base64::encode(stored_key),
                base64::encode(server_key)
            ),
        }
    }

    /// True if `password` hashes to this entry. The digest comparison takes the same time
    /// wherever the first differing byte is.
    pub fn matches(&self, password: &[u8]) -> bool {
        let (computed, stored) = match self {
            PasswordHash::Sha512 { salt, hash } => (sha512_digest(password, salt), hash),
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                let mut out = [0u8; HASH_LEN];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut out);
                (out, hash)
            }
            PasswordHash::ScramSha256 {
                iterations,
                salt,
                stored_key,
                ..
            } => {
                let salted = ScramSha256::hi(password, salt, *iterations);
                let c = ServerCredential::from_salted::<ScramSha256>(&salted, salt, *iterations);
                return constant_time_eq(&c.stored_key, stored_key);
            }
        };
        constant_time_eq(&computed, stored)
    }

    /// The PBKDF2 rounds of this entry (0 for `$6$`). Entries of the same kind and rounds take
    /// the same time to check; across kinds they do not (a SHA-512 round costs several SHA-256
    /// rounds on 32-bit CPUs).
    fn rounds(&self) -> u32 {
        match self {
            PasswordHash::Sha512 { .. } => 0,
            PasswordHash::Pbkdf2Sha512 { iterations, .. }
            | PasswordHash::ScramSha256 { iterations, .. } => *iterations,
        }
    }
}

/// SHA-512 over `password` then `salt`: Mosquitto's `$6$` construction.
fn sha512_digest(password: &[u8], salt: &[u8]) -> [u8; HASH_LEN] {
    let mut hasher = Sha512::new();
    hasher.update(password);
    hasher.update(salt);
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(&hasher.finalize());
    out
}

/// Decodes a base64 field that must hold exactly `N` bytes.
fn decode_fixed<const N: usize>(text: &str, what: &str) -> Result<[u8; N], String> {
    let bytes = base64::decode(text).ok_or_else(|| format!("{what} is not valid base64"))?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{what} must be {N} bytes, got {}", bytes.len()))
}

/// Parses the `$7$` round count: decimal digits, 1 to [`MAX_ITERATIONS`].
fn parse_iterations(text: &str) -> Result<u32, String> {
    let bad = || format!("iteration count must be a whole number from 1 to {MAX_ITERATIONS}");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<u32>() {
        Ok(n) if (1..=MAX_ITERATIONS).contains(&n) => Ok(n),
        _ => Err(bad()),
    }
}

/// Compares two byte strings in time that depends only on their lengths, never on where they
/// differ. Lengths are not secret here (digests are always 64 bytes).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

/// Checks a user name before `picomq passwd` writes it, so that every entry it writes reads back
/// as the same user (here and in Mosquitto).
pub fn validate_user_name(user: &str) -> Result<(), &'static str> {
    if user.is_empty() {
        return Err("user name is empty");
    }
    if user.len() > MAX_FIELD_LEN {
        return Err("user name is longer than 65535 bytes");
    }
    if user.contains(':') {
        return Err("user name contains ':'");
    }
    if user.chars().any(char::is_control) {
        return Err("user name contains a control character");
    }
    if user.starts_with(['#', ' ', '\t']) || user.ends_with([' ', '\t']) {
        return Err("user name starts with '#' or starts or ends with a space or tab");
    }
    Ok(())
}

/// One line of the file, kept so an edited file keeps its comments and order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// A `#` line, verbatim (without its line ending).
    Comment(String),
    /// A user and its hash.
    Entry { user: String, hash: PasswordHash },
}

/// A parsed password file: look-ups for CONNECT, and editing for `picomq passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordFile {
    /// Every line in file order.
    lines: Vec<Line>,
    /// User name to its index in `lines`.
    index: HashMap<String, usize>,
    /// Checked in place of a missing user so that a wrong user name costs what a wrong password
    /// costs: the kind and rounds most entries have (`$7$` with 101 rounds for an empty file).
    dummy: PasswordHash,
    /// The most common rounds among `$7$` entries, if there are any.
    typical_7: Option<u32>,
    /// The most common rounds among `$scram-sha-256$` entries, if there are any.
    typical_scram_256: Option<u32>,
    /// Key for [`PasswordFile::decoy_bytes`], derived from the entries.
    decoy_key: DecoyKey,
}

/// A secret derived from the file's entries; never printed.
#[derive(Clone, PartialEq, Eq)]
struct DecoyKey([u8; 64]);

impl fmt::Debug for DecoyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DecoyKey")
    }
}

/// Domain separation label of the decoy key, so it is never the hash of anything else.
const DECOY_KEY_LABEL: &[u8] = b"picomq decoy key v1";

impl Default for PasswordFile {
    fn default() -> Self {
        let mut file = PasswordFile {
            lines: Vec::new(),
            index: HashMap::new(),
            dummy: dummy_hash(HashKind::Pbkdf2Sha512, DEFAULT_ITERATIONS),
            typical_7: None,
            typical_scram_256: None,
            decoy_key: DecoyKey([0; 64]),
        };
        file.refresh_dummy();
        file
    }
}

/// A hash of `kind` with `rounds` that no password matches in practice: checking it costs what
/// checking a real entry of that kind and rounds costs.
fn dummy_hash(kind: HashKind, rounds: u32) -> PasswordHash {
    let salt = [0u8; SALT_LEN];
    match kind {
        HashKind::Sha512 => PasswordHash::Sha512 {
            salt,
            hash: [0; HASH_LEN],
        },
        HashKind::Pbkdf2Sha512 => PasswordHash::Pbkdf2Sha512 {
            iterations: rounds,
            salt,
            hash: [0; HASH_LEN],
        },
        HashKind::ScramSha256 => PasswordHash::ScramSha256 {
            iterations: rounds,
            salt,
            stored_key: [0; 32],
            server_key: [0; 32],
        },
    }
}

/// The most common value (ties go to the higher one), counting with a small vector: files have a
/// handful of distinct values.
fn most_common<T: Copy + PartialEq + Ord>(values: impl Iterator<Item = T>) -> Option<T> {
    let mut counts: Vec<(T, usize)> = Vec::new();
    for v in values {
        match counts.iter_mut().find(|(c, _)| *c == v) {
            Some((_, n)) => *n += 1,
            None => counts.push((v, 1)),
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(v, n)| (n, v))
        .map(|(v, _)| v)
}

impl PasswordFile {
    /// An empty file (no user can log in).
    pub fn new() -> PasswordFile {
        PasswordFile::default()
    }

    /// Parses the text of a password file. The error names the first bad line (1-based).
    pub fn parse(text: &str) -> Result<PasswordFile, LineError> {
        let mut file = PasswordFile::new();
        for (number, raw) in text.lines().enumerate() {
            let line = number + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.starts_with('#') {
                file.lines.push(Line::Comment(raw.to_owned()));
                continue;
            }
            let error = |message: String| LineError { line, message };
            if raw.trim().is_empty() {
                return Err(error(
                    "blank line (remove it; comments start with '#')".into(),
                ));
            }
            let Some((user, hash)) = raw.split_once(':') else {
                return Err(error("expected user:hash".into()));
            };
            let user = trim_blanks(user);
            if user.is_empty() {
                return Err(error("empty user name".into()));
            }
            let hash = PasswordHash::parse(trim_blanks(hash))
                .map_err(|m| error(format!("user {user:?}: {m}")))?;
            if let Some(&first) = file.index.get(user) {
                let first_line = file.line_number_of(first);
                return Err(error(format!(
                    "user {user:?} is already listed on line {first_line}"
                )));
            }
            file.index.insert(user.to_owned(), file.lines.len());
            file.lines.push(Line::Entry {
                user: user.to_owned(),
                hash,
            });
        }
        file.refresh_dummy();
        Ok(file)
    }

    /// The 1-based line number of `lines[i]` right after parsing (every source line is kept,
    /// blank ones are errors, so the index maps one to one).
    fn line_number_of(&self, i: usize) -> usize {
        i + 1
    }

    /// True if `password` is the password of `user`.
    ///
    /// The work does not depend on whether the user exists: an unknown user is checked against a
    /// dummy hash of the kind and rounds most entries have (so it costs what most real users
    /// cost, and never more than a real login), and the digest comparison is constant time.
    /// (The user look-up itself is a hash-map probe, which leaks nothing measurable over a
    /// network next to the hashing.)
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        let (hash, known) = match self.index.get(user).map(|&i| &self.lines[i]) {
            Some(Line::Entry { hash, .. }) => (hash, true),
            _ => (&self.dummy, false),
        };
        let matched = hash.matches(password);
        matched & known
    }

    /// The most common round count among entries of `kind` (ties go to the higher count), or
    /// the default `picomq passwd` writes for that kind when there are none
    /// ([`DEFAULT_ITERATIONS`] for `$7$`, [`SCRAM_SHA256_ITERATIONS`] for `$scram-sha-256$`, 0
    /// for `$6$`, which has no rounds): what SCRAM shows for a user without an entry of the kind
    /// its method uses, so that such a user looks like one with an entry.
    pub fn typical_iterations(&self, kind: HashKind) -> u32 {
        match kind {
            HashKind::Sha512 => 0,
            HashKind::Pbkdf2Sha512 => self.typical_7.unwrap_or(DEFAULT_ITERATIONS),
            HashKind::ScramSha256 => self.typical_scram_256.unwrap_or(SCRAM_SHA256_ITERATIONS),
        }
    }

    /// A keyed pseudo-random function of `(label, input)` for decoy credentials of unknown users
    /// (their salts must look random yet never change).
    ///
    /// The key is a hash of every entry (user names and hashes, in file order) under a fixed
    /// label: it is the same after a restart or a reload of an unchanged file, so a missing user's
    /// decoy salt stays as stable as a real user's salt, and it cannot be computed without the
    /// salts and hashes, which an attacker does not have. Comments do not change it.
    pub fn decoy_bytes(&self, label: &[u8], input: &[u8]) -> [u8; 64] {
        labeled_hmac_sha512(&self.decoy_key.0, label, input)
    }

    /// True if `user` has an entry.
    pub fn contains(&self, user: &str) -> bool {
        self.index.contains_key(user)
    }

    /// The stored hash of `user`, if any.
    pub fn get(&self, user: &str) -> Option<&PasswordHash> {
        match self.index.get(user).map(|&i| &self.lines[i]) {
            Some(Line::Entry { hash, .. }) => Some(hash),
            _ => None,
        }
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True if the file has no users (comments aside).
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The user names in file order.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|line| match line {
            Line::Entry { user, .. } => Some(user.as_str()),
            Line::Comment(_) => None,
        })
    }

    /// Adds `user` at the end, or replaces its hash in place. Returns true if it replaced one.
    pub fn set(&mut self, user: &str, hash: PasswordHash) -> Result<bool, &'static str> {
        validate_user_name(user)?;
        let replaced = match self.index.get(user) {
            Some(&i) => {
                self.lines[i] = Line::Entry {
                    user: user.to_owned(),
                    hash,
                };
                true
            }
            None => {
                self.index.insert(user.to_owned(), self.lines.len());
                self.lines.push(Line::Entry {
                    user: user.to_owned(),
                    hash,
                });
                false
            }
        };
        self.refresh_dummy();
        Ok(replaced)
    }

    /// Removes `user`; returns false if it had no entry.
    pub fn remove(&mut self, user: &str) -> bool {
        let Some(i) = self.index.remove(user) else {
            return false;
        };
        self.lines.remove(i);
        for slot in self.index.values_mut() {
            if *slot > i {
                *slot -= 1;
            }
        }
        self.refresh_dummy();
        true
    }

    /// The file text: comments as read, entries as `user:hash`, one per line, `\n` endings.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Comment(text) => out.push_str(text),
                Line::Entry { user, hash } => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(&hash.encode());
                }
            }
            out.push('\n');
        }
        out
    }

    /// The entries' hashes in file order.
    fn hashes(&self) -> impl Iterator<Item = &PasswordHash> {
        self.lines.iter().filter_map(|line| match line {
            Line::Entry { hash, .. } => Some(hash),
            Line::Comment(_) => None,
        })
    }

    /// Recomputes what depends on the entries: the dummy hash (the most common kind and rounds
    /// among the entries, ties to the higher rounds; `$7$` with the default rounds when there are
    /// none), the typical rounds per kind, and the decoy key.
    fn refresh_dummy(&mut self) {
        let rounds_of = |kind: HashKind| {
            most_common(
                self.hashes()
                    .filter(move |h| h.kind() == kind)
                    .map(PasswordHash::rounds),
            )
        };
        let (typical_7, typical_scram_256) = (
            rounds_of(HashKind::Pbkdf2Sha512),
            rounds_of(HashKind::ScramSha256),
        );
        self.typical_7 = typical_7;
        self.typical_scram_256 = typical_scram_256;
        let rank = |kind: HashKind| match kind {
            HashKind::Sha512 => 0u8,
            HashKind::Pbkdf2Sha512 => 1,
            HashKind::ScramSha256 => 2,
        };
        let common = most_common(self.hashes().map(|h| (h.rounds(), rank(h.kind()))));
        self.dummy = match common {
            Some((rounds, 0)) => dummy_hash(HashKind::Sha512, rounds),
            Some((rounds, 2)) => dummy_hash(HashKind::ScramSha256, rounds),
            Some((rounds, _)) => dummy_hash(HashKind::Pbkdf2Sha512, rounds),
            None => dummy_hash(HashKind::Pbkdf2Sha512, DEFAULT_ITERATIONS),
        };
        let mut key = Sha512::new();
        key.update(DECOY_KEY_LABEL);
        for line in &self.lines {
            if let Line::Entry { user, hash } = line {
                // Length-prefixed, so entries cannot run into each other.
                let encoded = hash.encode();
                key.update((user.len() as u64).to_be_bytes());
                key.update(user.as_bytes());
                key.update((encoded.len() as u64).to_be_bytes());
                key.update(encoded.as_bytes());
            }
        }
        self.decoy_key.0.copy_from_slice(&key.finalize());
    }
}

/// Trims spaces and tabs (not other whitespace), like Mosquitto's reader.
fn trim_blanks(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

/// HMAC-SHA512 of `label`, a zero byte, then `input`, under `key`: a keyed pseudo-random function
/// with domain separation, shared by the decoy credentials and the SCRAM nonces.
pub(crate) fn labeled_hmac_sha512(key: &[u8], label: &[u8], input: &[u8]) -> [u8; 64] {
    let mut mac =
        <Hmac<Sha512> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(label);
    mac.update(&[0]);
    mac.update(input);
    let mut out = [0u8; 64];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by `mosquitto_passwd` 2.0.11: `-c -b f alice secret`, then
    /// `-H sha512 -b f bob hunter2`.
    const MOSQUITTO_FILE: &str = "\
alice:$7$101$+uvZ5ECV1OVfVv2F$4NAUhKkB7PJZA/mQHJ46nvxNVZJTbcA5XDuFzqYEqDq8tlg4VnCK9gZXd2bpAO4B6iedoo9x1wgatTmqDYm/kg==
bob:$6$RiTzQSLOKN0L3UFz$eyE/bjLBkB/dxIarZ74RoxAKsKnIOUstO+VzcGeLaEFTYANE3rez3Dn16c3WM4MDNbNc6n8c8rhAcMgb/StgQg==
";

    fn error_of(text: &str) -> LineError {
        match PasswordFile::parse(text) {
            Ok(file) => panic!("expected an error for {text:?}, got {file:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn verifies_entries_written_by_mosquitto_passwd() {
        let file = PasswordFile::parse(MOSQUITTO_FILE).unwrap();
        assert_eq!(file.len(), 2);
        assert!(file.verify("alice", b"secret"));
        assert!(file.verify("bob", b"hunter2"));
        assert!(!file.verify("alice", b"hunter2"));
        assert!(!file.verify("bob", b"secret"));
        assert!(!file.verify("alice", b"secret\0x"));
        assert!(!file.verify("bob", b"hunter2\0"));
        assert!(!file.verify("alice", b""));
        assert!(!file.verify("carol", b"secret"));
        assert!(!file.verify("Alice", b"secret"));
        // Editing nothing writes the same bytes back.
        assert_eq!(file.to_text(), MOSQUITTO_FILE);
    }

    #[test]
    fn pbkdf2_sha512_known_answer() {
        // PBKDF2-HMAC-SHA512("password", "salt", 1 round), the widely published vector; the salt
        // here is 4 bytes, so call the primitive directly.
        let mut out = [0u8; HASH_LEN];
        pbkdf2::pbkdf2_hmac::<Sha512>(b"password", b"salt", 1, &mut out);
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252\
             c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce"
        );
    }

    #[test]
    fn new_hashes_round_trip() {
        let salt = *b"0123456789ab";
        for hash in [
            PasswordHash::pbkdf2(b"pw", salt, DEFAULT_ITERATIONS),
            PasswordHash::pbkdf2(b"pw", salt, 1),
            PasswordHash::sha512(b"pw", salt),
        ] {
            let text = hash.encode();
            assert_eq!(PasswordHash::parse(&text), Ok(hash.clone()), "{text}");
            assert!(hash.matches(b"pw"));
            assert!(!hash.matches(b"pW"));
        }
        let text = PasswordHash::pbkdf2(b"pw", salt, 101).encode();
        assert!(text.starts_with("$7$101$MDEyMzQ1Njc4OWFi$"), "{text}");
        assert_eq!(text.len(), "$7$101$".len() + 16 + 1 + 88);
        // Zero rounds are raised to one.
        assert_eq!(
            PasswordHash::pbkdf2(b"pw", salt, 0),
            PasswordHash::pbkdf2(b"pw", salt, 1)
        );
    }

    #[test]
    fn comments_crlf_and_blanks_around_fields() {
        let text = "# managed by hand\r\n  alice\t: $6$RiTzQSLOKN0L3UFz$eyE/bjLBkB/dxIarZ74RoxAKsKnIOUstO+VzcGeLaEFTYANE3rez3Dn16c3WM4MDNbNc6n8c8rhAcMgb/StgQg== \r\n#end";
        let file = PasswordFile::parse(text).unwrap();
        assert!(file.verify("alice", b"hunter2"));
        assert_eq!(file.users().collect::<Vec<_>>(), ["alice"]);
        assert!(file.to_text().starts_with("# managed by hand\nalice:$6$"));
        assert!(file.to_text().ends_with("\n#end\n"));
        assert!(PasswordFile::parse("").unwrap().is_empty());
        assert!(PasswordFile::parse("# only a comment\n")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn every_bad_line_is_an_error_naming_the_line() {
        let good = MOSQUITTO_FILE.lines().next().unwrap();
        let cases: &[(&str, usize, &str)] = &[
            ("\n", 1, "blank line"),
            ("   \t\n", 1, "blank line"),
            (&format!("{good}\n\n"), 2, "blank line"),
            ("alice\n", 1, "expected user:hash"),
            (":$6$x$y\n", 1, "empty user name"),
            (" \t:$6$x$y\n", 1, "empty user name"),
            ("alice:\n", 1, "not a hashed password"),
            ("alice:secret\n", 1, "not a hashed password"),
            ("alice:$5$abc$def\n", 1, "unsupported hash type $5$"),
            ("alice:$argon2id$v=19$m=1\n", 1, "unsupported hash type"),
            ("alice:$6$only-one\n", 1, "malformed hash"),
            ("alice:$7$101$a$b$c\n", 1, "malformed hash"),
            ("alice:$7$0$MDEyMzQ1Njc4OWFi$x\n", 1, "iteration count"),
            ("alice:$7$-1$MDEyMzQ1Njc4OWFi$x\n", 1, "iteration count"),
            (
                "alice:$7$2147483648$MDEyMzQ1Njc4OWFi$x\n",
                1,
                "iteration count",
            ),
            ("alice:$7$1$MDEy$x\n", 1, "salt must be 12 bytes, got 3"),
            (
                "alice:$7$1$MDEyMzQ1Njc4OWFi$Zm9v\n",
                1,
                "hash must be 64 bytes",
            ),
            ("alice:$6$!!!!$Zm9v\n", 1, "salt is not valid base64"),
            (
                &format!("# c\n{good}\n{good}\n"),
                3,
                "already listed on line 2",
            ),
            (&format!("{good}:extra\n"), 1, "hash"),
        ];
        for &(text, line, want) in cases {
            let err = error_of(text);
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.message.contains(want), "{text:?}: {err}");
        }
        // Plain-text advice names both tools.
        assert!(error_of("u:p\n").message.contains("picomq passwd"));
    }

    #[test]
    fn editing_keeps_order_and_comments() {
        let mut file = PasswordFile::parse(&format!("# head\n{MOSQUITTO_FILE}# tail\n")).unwrap();
        let salt = [7u8; SALT_LEN];
        assert_eq!(
            file.set("alice", PasswordHash::pbkdf2(b"new", salt, 5)),
            Ok(true)
        );
        assert_eq!(
            file.set("carol", PasswordHash::pbkdf2(b"c", salt, 5)),
            Ok(false)
        );
        assert!(file.verify("alice", b"new") && !file.verify("alice", b"secret"));
        assert!(file.verify("carol", b"c"));
        assert!(file.remove("bob"));
        assert!(!file.remove("bob"));
        assert!(!file.verify("bob", b"hunter2"));
        let text = file.to_text();
        let users: Vec<&str> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
        assert_eq!(users, ["# head", "alice", "# tail", "carol"]);
        // What we write parses back to the same file.
        assert_eq!(PasswordFile::parse(&text).unwrap(), file);
        assert_eq!(
            file.get("carol"),
            Some(&PasswordHash::pbkdf2(b"c", salt, 5))
        );
    }

    #[test]
    fn user_names_that_would_not_read_back_are_refused() {
        let hash = PasswordHash::sha512(b"x", [0; SALT_LEN]);
        let mut file = PasswordFile::new();
        for bad in ["", "a:b", "tab\there", "#root", " lead", "trail ", "nl\n"] {
            assert!(file.set(bad, hash.clone()).is_err(), "{bad:?}");
        }
        assert!(file
            .set(&"u".repeat(MAX_FIELD_LEN + 1), hash.clone())
            .is_err());
        for good in ["alice", "a b", "émile", "dev/01", "x#y", "+"] {
            assert_eq!(file.set(good, hash.clone()), Ok(false), "{good:?}");
            let back = PasswordFile::parse(&file.to_text()).unwrap();
            assert!(back.contains(good), "{good:?}");
        }
    }

    #[test]
    fn unknown_users_cost_what_known_users_cost() {
        let salt = [1u8; SALT_LEN];
        let mut file = PasswordFile::new();
        assert_eq!(file.dummy.kind(), HashKind::Pbkdf2Sha512);
        assert_eq!(file.dummy.rounds(), DEFAULT_ITERATIONS);
        file.set("a", PasswordHash::pbkdf2(b"a", salt, 300))
            .unwrap();
        file.set("b", PasswordHash::pbkdf2(b"b", salt, 300))
            .unwrap();
        file.set("c", PasswordHash::sha512(b"c", salt)).unwrap();
        assert_eq!(file.dummy.rounds(), 300);
        file.remove("a");
        // One of each: the tie goes to the costlier one.
        assert_eq!(file.dummy.rounds(), 300);
        file.remove("b");
        assert_eq!(file.dummy.kind(), HashKind::Sha512);
        assert!(!file.verify("nobody", b""));
        // The dummy never lets anyone in, even with the password that matches its digest.
        let parsed = PasswordFile::parse(MOSQUITTO_FILE).unwrap();
        assert!(!parsed.verify("zed", b"secret"));
    }

    #[test]
    fn dummy_has_the_kind_of_most_entries() {
        // A mostly `-S` file: an unknown user costs a SCRAM-SHA-256 entry's PBKDF2-SHA256, not
        // PBKDF2-SHA512 with as many rounds.
        let salt = [2u8; SALT_LEN];
        let mut file = PasswordFile::new();
        for user in ["s1", "s2"] {
            let hash = PasswordHash::scram_sha256(b"pw", salt, SCRAM_SHA256_ITERATIONS);
            file.set(user, hash).unwrap();
        }
        file.set("m", PasswordHash::pbkdf2(b"pw", salt, 101))
            .unwrap();
        assert_eq!(file.dummy.kind(), HashKind::ScramSha256);
        assert_eq!(file.dummy.rounds(), SCRAM_SHA256_ITERATIONS);
        assert!(!file.verify("nobody", b"pw"));
        assert!(file.verify("s1", b"pw") && file.verify("m", b"pw"));
        // Mostly `$7$`: back to PBKDF2-SHA512 with the `$7$` rounds.
        for user in ["m2", "m3"] {
            file.set(user, PasswordHash::pbkdf2(b"pw", salt, 101))
                .unwrap();
        }
        assert_eq!(file.dummy.kind(), HashKind::Pbkdf2Sha512);
        assert_eq!(file.dummy.rounds(), 101);
    }

    #[test]
    fn typical_iterations_per_kind() {
        let salt = [3u8; SALT_LEN];
        let mut file = PasswordFile::new();
        assert_eq!(
            file.typical_iterations(HashKind::Pbkdf2Sha512),
            DEFAULT_ITERATIONS
        );
        assert_eq!(
            file.typical_iterations(HashKind::ScramSha256),
            SCRAM_SHA256_ITERATIONS
        );
        for (user, rounds) in [("a", 101), ("b", 101), ("c", 101), ("d", 50)] {
            file.set(user, PasswordHash::pbkdf2(b"pw", salt, rounds))
                .unwrap();
        }
        file.set("s", PasswordHash::scram_sha256(b"pw", salt, 5000))
            .unwrap();
        assert_eq!(file.typical_iterations(HashKind::Pbkdf2Sha512), 101);
        assert_eq!(file.typical_iterations(HashKind::ScramSha256), 5000);
    }

    #[test]
    fn decoy_key_follows_the_entries_only() {
        let text = MOSQUITTO_FILE;
        let a = PasswordFile::parse(text).unwrap();
        let b = PasswordFile::parse(&format!("# a comment\n{text}")).unwrap();
        assert_eq!(a.decoy_bytes(b"l", b"u"), b.decoy_bytes(b"l", b"u"));
        assert_ne!(a.decoy_bytes(b"l", b"u"), a.decoy_bytes(b"l", b"v"));
        assert_ne!(a.decoy_bytes(b"l", b"u"), a.decoy_bytes(b"m", b"u"));
        let mut c = a.clone();
        c.set("bob", PasswordHash::sha512(b"other", [9; SALT_LEN]))
            .unwrap();
        assert_ne!(a.decoy_bytes(b"l", b"u"), c.decoy_bytes(b"l", b"u"));
        assert_eq!(format!("{:?}", a.decoy_key), "DecoyKey");
    }

    #[test]
    fn constant_time_eq_basics() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"xbc"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn debug_output_hides_hashes() {
        let hash = PasswordHash::pbkdf2(b"pw", [0; SALT_LEN], 3);
        assert_eq!(format!("{hash:?}"), "PasswordHash($7$, 3 rounds)");
        let file = PasswordFile::parse(MOSQUITTO_FILE).unwrap();
        assert!(!format!("{file:?}").contains("4NAUhKkB"));
    }
}
