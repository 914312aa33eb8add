//! SCRAM (RFC 5802, RFC 7677) without channel binding: the server exchange, a client for tests
//! and tools, and the `SCRAM-SHA-512` and `SCRAM-SHA-256` methods backed by the password file.
//!
//! Owns: the SCRAM message syntax (gs2 header `n,,` or `y,,`, attributes, `=2C`/`=3D` escapes),
//! key derivation (ClientKey, StoredKey, ServerKey, signatures) for SHA-256 and SHA-512, the
//! constant-time proof check, and where SCRAM-SHA-512 credentials come from. Must not touch:
//! sockets, files, the clock (nonces come from a [`NonceSource`]), or the MQTT packets that carry
//! the messages (see `session::enhanced_auth`).
//!
//! # Credentials
//! A Mosquitto `$7$` entry stores PBKDF2-HMAC-SHA512(password, salt, iterations) with a 64-byte
//! result: exactly SCRAM-SHA-512's SaltedPassword `Hi(password, salt, i)`. StoredKey and
//! ServerKey follow from it with two HMACs and one hash per exchange (no PBKDF2 on the server at
//! login), so SCRAM-SHA-512 works from the existing file. Trade-off, documented in
//! `conf/picomq.toml`: whoever steals the file can then log in with SCRAM without cracking it
//! (SaltedPassword yields ClientKey), which is why the method is off unless configured.
//! SCRAM-SHA-256 has no such shortcut (Mosquitto stores nothing SHA-256 based), so its users need
//! their own `$scram-sha-256$` entries (StoredKey and ServerKey, written by `picomq passwd -S`).
//! Users without an entry of the right kind (e.g. `$6$` entries, one plain SHA-512) and unknown
//! users get a decoy credential and fail at the proof, so the exchange does not reveal which users
//! exist: the decoy shows the rounds most entries of the method's kind have (or the kind's default
//! when there are none), a salt keyed by a hash of the password file's entries (so it is as stable
//! across restarts as a real salt, and unguessable without the file), and the lookup does the
//! same work for users with and without an entry (the decoy is always made, then exactly one
//! entry becomes the credential).
//!
//! Passwords are used as the raw bytes the client typed: SASLprep is not applied, so non-ASCII
//! passwords must already be in normalised form (the password file hashes raw bytes too).

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::base64;
use super::enhanced::{AuthExchange, AuthMethod, NonceSource, Step};
use super::passwd::{constant_time_eq, HashKind, PasswordFile, PasswordHash, SALT_LEN};
use super::PasswordSource;

/// Longest client nonce accepted (RFC 5802 sets no limit; real clients send 24 to 64 characters).
pub const MAX_NONCE_LEN: usize = 256;

/// The hash a SCRAM variant is built on.
pub trait ScramHash {
    /// Mechanism name, e.g. `SCRAM-SHA-256`.
    const NAME: &'static str;
    /// Output length of the hash in bytes.
    const LEN: usize;
    /// HMAC(key, data).
    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8>;
    /// H(data).
    fn hash(data: &[u8]) -> Vec<u8>;
    /// Hi(): PBKDF2 with this HMAC and an output as long as the hash.
    fn hi(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8>;
}

macro_rules! scram_hash {
    ($ty:ident, $digest:ty, $name:literal, $len:literal) => {
        #[doc = concat!("`", $name, "`.")]
        #[derive(Debug, Clone, Copy)]
        pub struct $ty;
        impl ScramHash for $ty {
            const NAME: &'static str = $name;
            const LEN: usize = $len;
            fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
                let mut mac = <Hmac<$digest> as Mac>::new_from_slice(key)
                    .expect("HMAC accepts keys of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            fn hash(data: &[u8]) -> Vec<u8> {
                <$digest>::digest(data).to_vec()
            }
            fn hi(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
                let mut out = [0u8; $len];
                pbkdf2::pbkdf2_hmac::<$digest>(password, salt, iterations.max(1), &mut out);
                out.to_vec()
            }
        }
    };
}
scram_hash!(ScramSha256, Sha256, "SCRAM-SHA-256", 32);
scram_hash!(ScramSha512, Sha512, "SCRAM-SHA-512", 64);

/// What the server keeps for one user (RFC 5802 section 3).
#[derive(Clone, PartialEq, Eq)]
pub struct ServerCredential {
    /// Salt sent to the client.
    pub salt: Vec<u8>,
    /// Iteration count sent to the client.
    pub iterations: u32,
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

impl ServerCredential {
    /// Derives StoredKey and ServerKey from SaltedPassword.
    pub fn from_salted<H: ScramHash>(salted: &[u8], salt: &[u8], iterations: u32) -> Self {
        ServerCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: H::hash(&H::hmac(salted, b"Client Key")),
            server_key: H::hmac(salted, b"Server Key"),
        }
    }
}

/// Looks a user up: `(credential, true)` for a user that can do this mechanism, else
/// `(decoy, false)` with a made-up credential (stable per user name) whose salt and iteration
/// count are shown and against which the proof is checked (and then refused anyway). The lookup
/// must do the same work either way, so that an unknown user costs and looks the same as a wrong
/// password.
pub type CredentialLookup = Box<dyn FnOnce(&str) -> (ServerCredential, bool) + Send>;

enum ServerState {
    /// Waiting for client-first-message.
    First(Option<CredentialLookup>),
    /// Sent server-first-message; waiting for client-final-message.
    Final {
        user: String,
        cred: ServerCredential,
        /// False for a decoy credential: the proof must fail whatever it is.
        known: bool,
        gs2_header: String,
        nonce: String,
        /// client-first-message-bare "," server-first-message ","
        auth_prefix: String,
    },
    Done,
}

/// The server side of one SCRAM exchange.
pub struct ScramServer<H> {
    state: ServerState,
    server_nonce: String,
    hash: std::marker::PhantomData<fn() -> H>,
}

impl<H: ScramHash> ScramServer<H> {
    /// An exchange that will answer with `server_nonce` (printable, no `,`) and look the user
    /// up with `lookup`.
    pub fn new(server_nonce: String, lookup: CredentialLookup) -> Self {
        ScramServer {
            state: ServerState::First(Some(lookup)),
            server_nonce,
            hash: std::marker::PhantomData,
        }
    }

    fn first(&mut self, lookup: CredentialLookup, msg: &str) -> Result<Step, String> {
        let first = parse_client_first(msg)?;
        let (cred, known) = lookup(&first.user);
        let nonce = format!("{}{}", first.nonce, self.server_nonce);
        let salt = base64::encode(&cred.salt);
        let server_first = format!("r={nonce},s={salt},i={}", cred.iterations);
        self.state = ServerState::Final {
            user: first.user,
            cred,
            known,
            gs2_header: first.gs2_header.to_owned(),
            nonce,
            auth_prefix: format!("{},{server_first},", first.bare),
        };
        Ok(Step::Continue(server_first.into_bytes()))
    }
}

impl<H: ScramHash> AuthExchange for ScramServer<H> {
    fn step(&mut self, data: &[u8]) -> Step {
        let Ok(msg) = std::str::from_utf8(data) else {
            self.state = ServerState::Done;
            return failure("SCRAM message is not UTF-8");
        };
        let state = std::mem::replace(&mut self.state, ServerState::Done);
        let result = match state {
            ServerState::First(lookup) => match lookup {
                Some(lookup) => self.first(lookup, msg),
                None => Err("exchange already used".into()),
            },
            ServerState::Final {
                user,
                cred,
                known,
                gs2_header,
                nonce,
                auth_prefix,
            } => {
                let expected = Expected {
                    gs2_header: &gs2_header,
                    nonce: &nonce,
                    auth_prefix: &auth_prefix,
                };
                verify_final::<H>(msg, &user, &cred, known, &expected)
            }
            ServerState::Done => Err("SCRAM exchange already finished".into()),
        };
        result.unwrap_or_else(|why| Step::Failure { why })
    }
}

fn failure(why: &str) -> Step {
    Step::Failure { why: why.into() }
}

/// What client-final-message must repeat, and the start of AuthMessage.
struct Expected<'a> {
    gs2_header: &'a str,
    nonce: &'a str,
    /// client-first-message-bare "," server-first-message ","
    auth_prefix: &'a str,
}

/// Checks client-final-message; on success returns server-final-message.
fn verify_final<H: ScramHash>(
    msg: &str,
    user: &str,
    cred: &ServerCredential,
    known: bool,
    expected: &Expected<'_>,
) -> Result<Step, String> {
    let Expected {
        gs2_header,
        nonce,
        auth_prefix,
    } = *expected;
    let (without_proof, proof) = msg
        .rsplit_once(",p=")
        .ok_or("client-final-message without proof")?;
    let mut attrs = without_proof.split(',');
    let binding = attrs
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .ok_or("client-final-message must start with c=")?;
    if base64::decode(binding).as_deref() != Some(gs2_header.as_bytes()) {
        return Err("channel binding does not repeat the gs2 header".into());
    }
    let echoed = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or("client-final-message without r=")?;
    if echoed != nonce {
        return Err("nonce mismatch".into());
    }
    let proof = base64::decode(proof).ok_or("proof is not base64")?;
    let auth_message = format!("{auth_prefix}{without_proof}");
    let signature = H::hmac(&cred.stored_key, auth_message.as_bytes());
    if proof.len() != signature.len() {
        return Err("proof has the wrong length".into());
    }
    let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
    let proof_ok = constant_time_eq(&H::hash(&client_key), &cred.stored_key);
    if !known {
        return Err(format!("user {user:?} has no {} credential", H::NAME));
    }
    if !proof_ok {
        return Err(format!("wrong password for user {user:?}"));
    }
    let server_signature = H::hmac(&cred.server_key, auth_message.as_bytes());
    Ok(Step::Success {
        data: Some(format!("v={}", base64::encode(&server_signature)).into_bytes()),
        username: user.to_owned(),
    })
}

/// client-first-message, split up.
struct ClientFirst<'a> {
    gs2_header: &'a str,
    bare: &'a str,
    user: String,
    nonce: &'a str,
}

fn parse_client_first(msg: &str) -> Result<ClientFirst<'_>, String> {
    // gs2-header: "n,," (no channel binding) or "y,," (client could, but we offer no -PLUS).
    let gs2_header = match msg.get(..3) {
        Some(h @ ("n,," | "y,,")) => h,
        _ if msg.starts_with("p=") => return Err("channel binding is not supported".into()),
        _ if msg.starts_with("n,a=") || msg.starts_with("y,a=") => {
            return Err("authorization identity is not supported".into())
        }
        _ => return Err("client-first-message must start with n,, or y,,".into()),
    };
    let bare = &msg[3..];
    let mut attrs = bare.split(',');
    let user = attrs
        .next()
        .and_then(|a| a.strip_prefix("n="))
        .ok_or("client-first-message-bare must start with n= (m= is not supported)")?;
    let user = decode_saslname(user).ok_or("bad user name escape")?;
    if user.is_empty() {
        return Err("empty user name".into());
    }
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or("client-first-message-bare without r=")?;
    if !valid_nonce(nonce) {
        return Err("client nonce is empty, too long or not printable".into());
    }
    if !attrs.all(is_attribute) {
        return Err("client-first-message-bare extension is not an attribute".into());
    }
    Ok(ClientFirst {
        gs2_header,
        bare,
        user,
        nonce,
    })
}

/// Printable ASCII except `,`, 1 to [`MAX_NONCE_LEN`] characters (RFC 5802 section 7).
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// `x=value` with an ASCII letter `x` (RFC 5802 section 7, `attr-val`).
fn is_attribute(attr: &str) -> bool {
    let b = attr.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b'='
}

/// `=2C` → `,`, `=3D` → `=`; any other `=` is invalid.
fn decode_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// Escapes `,` and `=` in a user name for `n=` (RFC 5802 section 5.1).
pub fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The client side of SCRAM, for tests, benchmarks and tools.
pub struct ScramClient<H> {
    first_bare: String,
    nonce: String,
    server_signature: Option<Vec<u8>>,
    hash: std::marker::PhantomData<fn() -> H>,
}

impl<H: ScramHash> ScramClient<H> {
    /// Starts as `user` with client nonce `nonce`.
    pub fn new(user: &str, nonce: &str) -> Self {
        ScramClient {
            first_bare: format!("n={},r={nonce}", encode_saslname(user)),
            nonce: nonce.to_owned(),
            server_signature: None,
            hash: std::marker::PhantomData,
        }
    }

    /// client-first-message.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// client-final-message for `server_first` with `password`.
    pub fn client_final(&mut self, server_first: &str, password: &[u8]) -> Result<String, String> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in server_first.split(',') {
            match attr.split_at_checked(2) {
                Some(("r=", v)) => nonce = Some(v),
                Some(("s=", v)) => salt = base64::decode(v),
                Some(("i=", v)) => iterations = v.parse::<u32>().ok(),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(format!("bad server-first-message {server_first:?}"));
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("server nonce does not extend ours".into());
        }
        let salted = H::hi(password, &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let client_key = H::hmac(&salted, b"Client Key");
        let signature = H::hmac(&H::hash(&client_key), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = H::hmac(&salted, b"Server Key");
        self.server_signature = Some(H::hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", base64::encode(&proof)))
    }

    /// True if `server_final` proves the server knew our credentials.
    pub fn verify_server_final(&self, server_final: &str) -> bool {
        let got = server_final.strip_prefix("v=").and_then(base64::decode);
        match (got, &self.server_signature) {
            (Some(got), Some(want)) => constant_time_eq(&got, want),
            _ => false,
        }
    }
}

/// A SCRAM variant whose credentials come from password file entries.
pub trait FileCredential: ScramHash + 'static {
    /// The kind of entry this variant uses.
    const KIND: HashKind;
    /// The credential an entry provides for this variant, if any. Costs the same for every entry
    /// of kind [`FileCredential::KIND`].
    fn credential(hash: &PasswordHash) -> Option<ServerCredential>;
    /// A made-up entry of kind [`FileCredential::KIND`] with this salt, rounds and key material.
    fn decoy(salt: [u8; SALT_LEN], iterations: u32, key: &[u8; 64]) -> PasswordHash;
}

impl FileCredential for ScramSha512 {
    const KIND: HashKind = HashKind::Pbkdf2Sha512;

    fn decoy(salt: [u8; SALT_LEN], iterations: u32, key: &[u8; 64]) -> PasswordHash {
        PasswordHash::Pbkdf2Sha512 {
            iterations,
            salt,
            hash: *key,
        }
    }

    /// `$7$`: the stored PBKDF2-SHA512 result is SaltedPassword.
    fn credential(hash: &PasswordHash) -> Option<ServerCredential> {
        match hash {
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => Some(ServerCredential::from_salted::<ScramSha512>(
                hash,
                salt,
                *iterations,
            )),
            _ => None,
        }
    }
}

impl FileCredential for ScramSha256 {
    const KIND: HashKind = HashKind::ScramSha256;

    fn decoy(salt: [u8; SALT_LEN], iterations: u32, key: &[u8; 64]) -> PasswordHash {
        let half = |h: &[u8]| <[u8; 32]>::try_from(h).expect("32 bytes");
        PasswordHash::ScramSha256 {
            iterations,
            salt,
            stored_key: half(&key[..32]),
            server_key: half(&key[32..]),
        }
    }

    /// `$scram-sha-256$`: the keys are stored as they are.
    fn credential(hash: &PasswordHash) -> Option<ServerCredential> {
        match hash {
            PasswordHash::ScramSha256 {
                iterations,
                salt,
                stored_key,
                server_key,
            } => Some(ServerCredential {
                salt: salt.to_vec(),
                iterations: *iterations,
                stored_key: stored_key.to_vec(),
                server_key: server_key.to_vec(),
            }),
            _ => None,
        }
    }
}

/// A SCRAM method over the password file: `SCRAM-SHA-512` ([`ScramSha512Method`], `$7$`
/// entries) or `SCRAM-SHA-256` ([`ScramSha256Method`], `$scram-sha-256$` entries).
pub struct ScramFileMethod<H> {
    passwords: PasswordSource,
    nonces: Arc<NonceSource>,
    hash: std::marker::PhantomData<fn() -> H>,
}

/// `SCRAM-SHA-512` over the password file's `$7$` entries.
pub type ScramSha512Method = ScramFileMethod<ScramSha512>;

/// `SCRAM-SHA-256` over the password file's `$scram-sha-256$` entries.
pub type ScramSha256Method = ScramFileMethod<ScramSha256>;

impl<H: FileCredential> ScramFileMethod<H> {
    /// The method reading users from `passwords` (re-read at the start of every exchange, so a
    /// reload applies to the next login or re-authentication).
    pub fn new(passwords: PasswordSource, nonces: Arc<NonceSource>) -> Self {
        ScramFileMethod {
            passwords,
            nonces,
            hash: std::marker::PhantomData,
        }
    }
}

impl<H: FileCredential> AuthMethod for ScramFileMethod<H> {
    fn name(&self) -> &str {
        H::NAME
    }

    fn start(&self) -> Box<dyn AuthExchange> {
        let passwords = self.passwords.current().unwrap_or_default();
        let lookup: CredentialLookup = Box::new(move |user| {
            // The decoy is always made and exactly one entry (the user's or the decoy) is turned
            // into a credential, so a user with an entry and one without cost the same work.
            let decoy = file_decoy::<H>(&passwords, user);
            let entry = passwords.get(user);
            let usable = entry.filter(|e| e.kind() == H::KIND);
            if let (Some(entry), None) = (entry, usable) {
                log::info!("user {user:?}: {entry:?} cannot do {}", H::NAME);
            }
            let known = usable.is_some();
            let cred = H::credential(usable.unwrap_or(&decoy));
            (
                cred.expect("an entry of the method's kind gives a credential"),
                known,
            )
        });
        Box::new(ScramServer::<H>::new(self.nonces.next_nonce(), lookup))
    }
}

/// The decoy entry of `user` for variant `H`: a salt and key material that are stable while the
/// file's entries do not change (see [`PasswordFile::decoy_bytes`]), and the rounds most entries
/// of the variant's kind have, so it looks like the real entries of that kind.
fn file_decoy<H: FileCredential>(passwords: &PasswordFile, user: &str) -> PasswordHash {
    let iterations = passwords.typical_iterations(H::KIND);
    let label = |what: &str| format!("{} decoy {what}", H::NAME);
    let salt = passwords.decoy_bytes(label("salt").as_bytes(), user.as_bytes());
    let key = passwords.decoy_bytes(label("key").as_bytes(), user.as_bytes());
    let salt = <[u8; SALT_LEN]>::try_from(&salt[..SALT_LEN]).expect("salt length");
    H::decoy(salt, iterations, &key)
}

#[cfg(test)]
#[path = "scram_tests.rs"]
mod tests;
