//! Authentication and authorization: Mosquitto-compatible password and ACL files, and the
//! [`Authenticator`] the broker consults.
//!
//! Owns: the password file format and verification ([`passwd`]), the ACL file and its decisions
//! ([`acl`]), loading both from the paths in [`AuthConfig`] with errors naming file and line, and
//! swapping them on reload. `picomq passwd` lives in [`passwd_cli`]. Must not touch: sockets,
//! sessions, the router, or the wire: callers turn a refusal into a CONNACK, SUBACK or PUBACK code.
//! Parsing and checking are pure; only [`Authenticator::load`], [`Authenticator::reload`] and
//! [`passwd_cli`] touch the file system.
//!
//! # How the broker uses it
//! 1. Start-up: `Authenticator::load(&config.auth)`; an error (missing file, bad line) stops
//!    start-up; log [`Authenticator::warnings`].
//! 2. CONNECT: [`Authenticator::check_connect`] with the user name and password from the packet.
//!    `Err(code)` is the CONNACK reason: 0x87 Not authorized for an anonymous client when
//!    anonymous clients are not allowed, 0x86 Bad user name or password otherwise; for MQTT 3.1.1
//!    map it with `ReasonCode::to_v3_connack` (0x86 → 4, 0x87 → 5). Mosquitto answers 5 in both
//!    cases; picomq tells them apart as issue 4 asks.
//!    A CONNECT with an Authentication Method (MQTT 5 enhanced authentication) skips this:
//!    [`Authenticator::auth_method`] finds the registered [`AuthMethod`] (configured in
//!    `[auth] methods`; [`scram`] provides SCRAM-SHA-512 over the password file) and
//!    `session::enhanced_auth` runs its exchange instead.
//! 3. Once the client id is final: [`Authenticator::client_acl`] → a [`ClientAcl`] kept by the
//!    session, together with [`Authenticator::generation`].
//! 4. PUBLISH (and a will when it is published): `check(topic, Access::Write)`; refused → drop
//!    (v5 PUBACK/PUBREC 0x87). SUBSCRIBE: `check_subscribe(filter)`; `Denied` → 0x87 (v5) / 0x80
//!    (3.1.1). Each delivery, retained messages included: `check(topic, Access::Read)` (may be
//!    skipped for live messages on a subscription whose verdict was `Full` at the current
//!    generation).
//! 5. SIGHUP: [`Authenticator::reload`]. On success the generation changes: rebuild each
//!    session's `ClientAcl`. Connected clients stay connected (their password is not re-checked);
//!    on failure the old files stay in force and the error says why.
//!
//! Without an ACL file every topic check passes; without a password file user names are taken
//! as given (Mosquitto does the same), so ACL `user` sections then trust whatever a client claims.

pub mod acl;
mod base64;
pub mod enhanced;
mod overlap;
pub mod passwd;
pub mod passwd_cli;
pub mod scram;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

pub use self::acl::{Access, Acl, ClientAcl, SubscribeVerdict};
pub use self::enhanced::{AuthExchange, AuthMethod, NonceSource, Step};
pub use self::passwd::{PasswordFile, PasswordHash};
pub use crate::config::AuthConfig;
use crate::protocol::ReasonCode;

/// A syntax error in a password or ACL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with the line.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LineError {}

/// Why the password or ACL file could not be loaded.
#[derive(Debug)]
pub enum AuthError {
    /// The file could not be read.
    Read {
        /// `"password file"` or `"ACL file"`.
        what: &'static str,
        /// The configured path.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A line of the file is invalid.
    Invalid {
        /// The configured path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The settings cannot work together (e.g. SCRAM-SHA-512 without a password file).
    Settings(String),
}

impl fmt::Display for AuthError {
    /// `path: cannot read password file: …` or `path:line: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Read { what, path, source } => {
                write!(f, "{}: cannot read {what}: {source}", path.display())
            }
            AuthError::Invalid {
                path,
                line,
                message,
            } => write!(f, "{}:{line}: {message}", path.display()),
            AuthError::Settings(message) => write!(f, "[auth]: {message}"),
        }
    }
}

impl std::error::Error for AuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthError::Read { source, .. } => Some(source),
            AuthError::Invalid { .. } | AuthError::Settings(_) => None,
        }
    }
}

/// The files in force at one moment.
#[derive(Debug)]
struct AuthState {
    passwords: Option<Arc<PasswordFile>>,
    acl: Option<Acl>,
    /// Starts at 0, +1 on each successful reload.
    generation: u64,
}

/// The broker's authentication and authorization state: shared by every I/O thread (it is
/// `Send + Sync`), reloadable in place.
///
/// Checks take a snapshot (an `Arc` clone under a read lock held for nanoseconds), so password
/// hashing never runs under the lock and a reload never waits for logins.
#[derive(Debug)]
pub struct Authenticator {
    config: AuthConfig,
    /// False for [`Authenticator::from_parts`]: nothing to re-read.
    from_files: bool,
    state: Arc<RwLock<Arc<AuthState>>>,
    /// Enhanced authentication methods by name (MQTT 5.0 section 4.12).
    methods: Vec<Arc<dyn AuthMethod>>,
}

/// The password file in force, as enhanced authentication methods see it: a handle that follows
/// reloads (each [`PasswordSource::current`] is a snapshot).
#[derive(Debug, Clone)]
pub struct PasswordSource(Arc<RwLock<Arc<AuthState>>>);

impl PasswordSource {
    /// A source that never changes (tests, embedding).
    pub fn fixed(passwords: Option<PasswordFile>) -> PasswordSource {
        PasswordSource(Arc::new(RwLock::new(Arc::new(AuthState {
            passwords: passwords.map(Arc::new),
            acl: None,
            generation: 0,
        }))))
    }

    /// The password file in force now, if any.
    pub fn current(&self) -> Option<Arc<PasswordFile>> {
        self.0.read().passwords.clone()
    }
}

/// Name of the SCRAM-SHA-512 method (users with `$7$` entries).
pub const SCRAM_SHA_512: &str = "SCRAM-SHA-512";

/// Name of the SCRAM-SHA-256 method (users with `$scram-sha-256$` entries).
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// The enhanced authentication methods built in, as `[auth] methods` names them.
pub const BUILT_IN_METHODS: [&str; 2] = [SCRAM_SHA_512, SCRAM_SHA_256];

impl Authenticator {
    /// Reads the files named by `config`. Errors name the file and, for a bad line, the line.
    ///
    /// Enhanced authentication methods named in `config.methods` are registered (the built-in
    /// ones are [`BUILT_IN_METHODS`]); their nonce generator is seeded from `/dev/urandom` here.
    pub fn load(config: &AuthConfig) -> Result<Authenticator, AuthError> {
        let (passwords, acl) = read_files(config)?;
        let mut auth = Authenticator {
            config: config.clone(),
            from_files: true,
            state: Arc::new(RwLock::new(Arc::new(AuthState {
                passwords,
                acl,
                generation: 0,
            }))),
            methods: Vec::new(),
        };
        // Names and the password file rule are checked with file and line when the config file
        // is read (config::file); a `Config` built in code that breaks them is refused here.
        if !config.methods.is_empty() && config.password_file.is_none() {
            let msg = "methods need a password_file".to_owned();
            return Err(AuthError::Settings(msg));
        }
        for name in &config.methods {
            let nonces = NonceSource::from_os().map_err(|source| AuthError::Read {
                what: "random seed",
                path: PathBuf::from("/dev/urandom"),
                source,
            })?;
            auth = match name.as_str() {
                SCRAM_SHA_512 => auth.with_scram_sha512(nonces),
                SCRAM_SHA_256 => auth.with_scram_sha256(nonces),
                _ => {
                    let msg = format!("unknown authentication method {name:?}");
                    return Err(AuthError::Settings(msg));
                }
            };
        }
        Ok(auth)
    }

    /// Registers an enhanced authentication method (replacing one of the same name).
    pub fn with_method(mut self, method: Arc<dyn AuthMethod>) -> Authenticator {
        self.methods.retain(|m| m.name() != method.name());
        self.methods.push(method);
        self
    }

    /// Registers SCRAM-SHA-512 over this authenticator's password file.
    pub fn with_scram_sha512(self, nonces: NonceSource) -> Authenticator {
        let source = self.password_source();
        self.with_method(Arc::new(scram::ScramSha512Method::new(
            source,
            Arc::new(nonces),
        )))
    }

    /// Registers SCRAM-SHA-256 over this authenticator's password file.
    pub fn with_scram_sha256(self, nonces: NonceSource) -> Authenticator {
        let source = self.password_source();
        self.with_method(Arc::new(scram::ScramSha256Method::new(
            source,
            Arc::new(nonces),
        )))
    }

    /// The enhanced authentication method registered as `name` (case-sensitive, as MQTT compares
    /// UTF-8 strings).
    pub fn auth_method(&self, name: &str) -> Option<Arc<dyn AuthMethod>> {
        self.methods.iter().find(|m| m.name() == name).cloned()
    }

    /// The password file, following reloads.
    pub fn password_source(&self) -> PasswordSource {
        PasswordSource(Arc::clone(&self.state))
    }

    /// Builds one from already parsed files (tests, embedding); [`Authenticator::reload`] then
    /// has nothing to read and changes nothing.
    pub fn from_parts(
        allow_anonymous: bool,
        passwords: Option<PasswordFile>,
        acl: Option<Acl>,
    ) -> Authenticator {
        Authenticator {
            config: AuthConfig {
                password_file: None,
                acl_file: None,
                allow_anonymous,
                methods: Vec::new(),
            },
            from_files: false,
            state: Arc::new(RwLock::new(Arc::new(AuthState {
                passwords: passwords.map(Arc::new),
                acl,
                generation: 0,
            }))),
            methods: Vec::new(),
        }
    }

    /// The settings this was built from (`from_parts`: no paths).
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    fn snapshot(&self) -> Arc<AuthState> {
        Arc::clone(&self.state.read())
    }

    /// Decides a CONNECT; `Err` carries the CONNACK reason code (see the module docs).
    ///
    /// - No user name: allowed if `allow_anonymous`, else 0x87 Not authorized. A password without
    ///   a user name (legal in MQTT 5) is ignored, as Mosquitto does.
    /// - A user name and a password file: the password must verify, else 0x86 Bad user name or
    ///   password (also for an unknown user or a missing password, after the same hashing work).
    /// - A user name and no password file: the name is not checked; allowed if
    ///   `allow_anonymous`, else 0x87 (nothing could verify it), as Mosquitto 2 does.
    pub fn check_connect(
        &self,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> Result<(), ReasonCode> {
        let state = self.snapshot();
        match (username, &state.passwords) {
            (None, _) | (Some(_), None) => {
                if self.config.allow_anonymous {
                    Ok(())
                } else {
                    Err(ReasonCode::NOT_AUTHORIZED)
                }
            }
            (Some(user), Some(file)) => {
                let verified = file.verify(user, password.unwrap_or_default());
                if verified && password.is_some() {
                    Ok(())
                } else {
                    Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
                }
            }
        }
    }

    /// The ACL view of one client ([`ClientAcl::allow_all`] without an ACL file). Build it once
    /// the client id is final; rebuild it when [`Authenticator::generation`] changes.
    pub fn client_acl(&self, client_id: &str, username: Option<&str>) -> ClientAcl {
        match &self.snapshot().acl {
            Some(acl) => acl.for_client(client_id, username),
            None => ClientAcl::allow_all(),
        }
    }

    /// One-off topic check; sessions should keep a [`ClientAcl`] instead.
    pub fn check(
        &self,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
        access: Access,
    ) -> bool {
        self.client_acl(client_id, username).check(topic, access)
    }

    /// Changes on every successful [`Authenticator::reload`].
    pub fn generation(&self) -> u64 {
        self.snapshot().generation
    }

    /// True when nothing is restricted: anonymous clients allowed, no password file, no ACL.
    pub fn allows_everything(&self) -> bool {
        let state = self.snapshot();
        self.config.allow_anonymous && state.passwords.is_none() && state.acl.is_none()
    }

    /// Re-reads the configured files. On success they replace the old ones at once and the
    /// generation changes; on error nothing changes. Built with `from_parts`: a no-op.
    pub fn reload(&self) -> Result<(), AuthError> {
        if !self.from_files {
            return Ok(());
        }
        let (passwords, acl) = read_files(&self.config)?;
        let mut state = self.state.write();
        let generation = state.generation + 1;
        *state = Arc::new(AuthState {
            passwords,
            acl,
            generation,
        });
        Ok(())
    }

    /// Settings that are legal but probably not what was meant, worth a warning at start-up.
    pub fn warnings(&self) -> Vec<String> {
        let state = self.snapshot();
        let mut out = Vec::new();
        if state.passwords.is_none() && !self.config.allow_anonymous {
            out.push(
                "auth: allow_anonymous = false and no password_file: every client will be refused"
                    .to_owned(),
            );
        }
        if state.passwords.is_none() && state.acl.as_ref().is_some_and(Acl::has_user_sections) {
            out.push(
                "auth: the ACL file has user sections but there is no password_file, so any \
                 client can claim those user names"
                    .to_owned(),
            );
        }
        if state.passwords.as_ref().is_some_and(|p| p.is_empty()) {
            out.push(
                "auth: the password file has no users: only anonymous clients can connect"
                    .to_owned(),
            );
        }
        out
    }
}

/// Reads and parses the configured files.
type Files = (Option<Arc<PasswordFile>>, Option<Acl>);

fn read_files(config: &AuthConfig) -> Result<Files, AuthError> {
    let passwords = match &config.password_file {
        Some(path) => Some(Arc::new(parse_file(
            path,
            "password file",
            PasswordFile::parse,
        )?)),
        None => None,
    };
    let acl = match &config.acl_file {
        Some(path) => Some(parse_file(path, "ACL file", Acl::parse)?),
        None => None,
    };
    Ok((passwords, acl))
}

/// Reads `path` and parses it with `parse`, naming the file in errors.
fn parse_file<T>(
    path: &Path,
    what: &'static str,
    parse: fn(&str) -> Result<T, LineError>,
) -> Result<T, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|e| AuthError::Invalid {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })
}

#[cfg(test)]
mod tests;
