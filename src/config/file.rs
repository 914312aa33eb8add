//! The TOML config file as written on disk, and its validation into the typed [`Config`].
//!
//! Owns: the file schema (sections `[log]`, `[server]`, `[[listener]]` (in `file/listener.rs`),
//! `[mqtt]`, `[limits]` (in `file/limits.rs`), `[redirect]` (in `file/redirect.rs`), `[sys]` (in
//! `file/sys.rs`), `[auth]`, all keys optional,
//! unknown keys rejected), the range checks of every setting, and [`ConfigError`] with its
//! `file:line: key: message` form. Every value is read as a [`Spanned`] so an error can name the line
//! it came from. Must not touch: the command line (`cli.rs`), unit syntax (`units.rs`), sockets or
//! threads; defaults come from the `Default` impls in `mod.rs`, never from here.

use std::fmt;
use std::net::SocketAddr;
use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

mod limits;
mod redirect;
mod sys;

use super::units::{DurationOrNever, HumanDuration, HumanSize};
use super::{resolve_thread_count, Config, SharedStrategy};

mod listener;
use crate::protocol::QoS;
use listener::ListenerSection;

/// Highest `io_threads` / `router_shards` accepted; far above any edge device, it catches typos.
pub const MAX_THREADS: usize = 1024;

/// Largest packet MQTT can express: the largest remaining length (268,435,455, just under 256 MiB)
/// plus at most 5 bytes of fixed header.
pub const MAX_PACKET_SIZE_LIMIT: u64 = 268_435_460;

/// Longest `connect_timeout` accepted.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Why the configuration could not be loaded.
#[derive(Debug)]
pub enum ConfigError {
    /// The config file could not be read.
    Read {
        /// The file named on the command line.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The TOML is malformed, or a key is unknown, has the wrong type or is out of range.
    Invalid {
        /// Where the setting came from: the file path, `config` for text, or `command line`.
        origin: String,
        /// 1-based line of the offending key or value, when known.
        line: Option<usize>,
        /// Dotted key (`mqtt.max_qos`) or flag (`--listen`), when known.
        key: Option<String>,
        /// What is wrong and, where useful, what is expected.
        message: String,
    },
}

impl ConfigError {
    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Invalid { line, .. } => *line,
        }
    }

    /// The dotted key or the flag the error is about, if known.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Invalid { key, .. } => key.as_deref(),
        }
    }

    /// An error about a command-line flag.
    pub(crate) fn flag(flag: &str, message: String) -> Self {
        ConfigError::Invalid {
            origin: "command line".to_owned(),
            line: None,
            key: Some(flag.to_owned()),
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "{}: cannot read config file: {source}", path.display())
            }
            ConfigError::Invalid {
                origin,
                line,
                key,
                message,
            } => {
                f.write_str(origin)?;
                if let Some(line) = line {
                    write!(f, ":{line}")?;
                }
                if let Some(key) = key {
                    write!(f, ": {key}")?;
                }
                write!(f, ": {message}")
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Invalid { .. } => None,
        }
    }
}

/// One optional value with the byte range it was read from.
type Field<T> = Option<Spanned<T>>;

/// A TOML integer; exists so a wrong type is reported as "expected a whole number", not "i64".
#[derive(Debug, Clone, Copy)]
struct Int(i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_i64(IntVisitor)
    }
}

/// Reads [`Int`].
struct IntVisitor;

impl serde::de::Visitor<'_> for IntVisitor {
    type Value = Int;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Int, E> {
        Ok(Int(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Int, E> {
        i64::try_from(v)
            .map(Int)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
    }
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    log: LogSection,
    server: ServerSection,
    listener: Field<Vec<Spanned<ListenerSection>>>,
    mqtt: MqttSection,
    limits: limits::LimitsSection,
    redirect: redirect::RedirectSection,
    sys: sys::SysSection,
    auth: AuthSection,
}

/// `[log]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LogSection {
    level: Field<String>,
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ServerSection {
    io_threads: Field<Int>,
    router_shards: Field<Int>,
    max_connections: Field<Int>,
}

/// `[mqtt]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MqttSection {
    max_packet_size: Field<HumanSize>,
    max_client_id_len: Field<Int>,
    allow_empty_client_id: Field<bool>,
    connect_timeout: Field<HumanDuration>,
    max_keepalive: Field<HumanDuration>,
    max_inflight: Field<Int>,
    receive_maximum: Field<Int>,
    max_queued_messages: Field<Int>,
    max_queued_bytes: Field<HumanSize>,
    max_session_expiry: Field<DurationOrNever>,
    persistent_client_expiration: Field<DurationOrNever>,
    retain_available: Field<bool>,
    max_qos: Field<Int>,
    max_topic_levels: Field<Int>,
    topic_alias_maximum: Field<Int>,
    wildcard_subscriptions: Field<bool>,
    subscription_identifiers: Field<bool>,
    shared_subscriptions: Field<bool>,
    shared_subscription_strategy: Field<String>,
    response_information: Field<String>,
}

/// `[auth]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct AuthSection {
    password_file: Field<String>,
    acl_file: Field<String>,
    allow_anonymous: Field<bool>,
    methods: Field<Vec<Spanned<String>>>,
}

/// Parses and validates config text. `origin` names the text in errors (usually the file path).
///
/// Keys left out keep the values of `Config::default()`; an `io_threads` of 0 is resolved to one
/// per two CPU cores, a `router_shards` of 0 stays 0 (one per I/O thread, [`Config::shards`]).
pub fn parse_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let reader = Reader { text, origin };
    let file: FileConfig = toml::from_str(text).map_err(|err| reader.toml_error(&err))?;
    reader.build(file)
}

/// Parses a listen address: an IP literal and a port, IPv6 in brackets. Host names are not resolved,
/// so reading the config never does DNS.
pub fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    SocketAddr::from_str(text.trim()).map_err(|_| {
        format!(
            "invalid address {text:?}; expected IP:port such as \"127.0.0.1:1883\" or \
             \"[::]:1883\" (host names are not resolved)"
        )
    })
}

/// Parses a log level name, ignoring case.
pub fn parse_log_level(text: &str) -> Result<log::LevelFilter, String> {
    log::LevelFilter::from_str(text.trim()).map_err(|_| {
        format!("invalid log level {text:?}; expected off, error, warn, info, debug or trace")
    })
}

/// The source text, for turning byte spans into lines.
struct Reader<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Reader<'_> {
    /// An error about `key`, pointing at the line where `span` starts.
    fn error(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            line: Some(line_of(self.text, span.start)),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    /// Turns a parse or type error from toml into one naming the line and, where the line shows
    /// it, the key.
    fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let (line, key) = match err.span() {
            Some(span) => (
                Some(line_of(self.text, span.start)),
                key_path_at(self.text, span.start),
            ),
            None => (None, None),
        };
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            line,
            key,
            message: err.message().to_owned(),
        }
    }

    /// Reads an integer that must lie in `range`, converted to the typed field's type.
    fn int<T: TryFrom<i64>>(
        &self,
        field: &Field<Int>,
        key: &str,
        range: RangeInclusive<i64>,
        default: T,
    ) -> Result<T, ConfigError> {
        let Some(value) = field else {
            return Ok(default);
        };
        let (span, Int(v)) = (value.span(), *value.get_ref());
        if !range.contains(&v) {
            return Err(self.error(span, key, range_message(&range, v)));
        }
        T::try_from(v).map_err(|_| self.error(span, key, "too large for this platform"))
    }

    /// Reads a size that must lie in `range`.
    /// A session expiry in whole seconds: "never" is u32::MAX, and so is anything longer (which
    /// MQTT 5 reads as "never" too).
    fn expiry_secs(&self, v: &Spanned<DurationOrNever>, key: &str) -> Result<u32, ConfigError> {
        Ok(match *v.get_ref() {
            DurationOrNever::Never => u32::MAX,
            DurationOrNever::After(d) => {
                let secs = self.whole_secs(v.span(), key, d, u64::MAX)?;
                u32::try_from(secs).unwrap_or(u32::MAX)
            }
        })
    }

    fn size<T: TryFrom<u64>>(
        &self,
        field: &Field<HumanSize>,
        key: &str,
        range: RangeInclusive<u64>,
        default: T,
    ) -> Result<T, ConfigError> {
        let Some(value) = field else {
            return Ok(default);
        };
        let (span, HumanSize(v)) = (value.span(), *value.get_ref());
        if !range.contains(&v) {
            let message = format!(
                "must be between {} and {} bytes, got {v}",
                range.start(),
                range.end()
            );
            return Err(self.error(span, key, message));
        }
        T::try_from(v).map_err(|_| self.error(span, key, "too large for this platform"))
    }

    /// Reads an I/O thread count, 0 (one per two CPU cores) to [`MAX_THREADS`], resolved.
    fn threads(&self, field: &Field<Int>, key: &str, default: usize) -> Result<usize, ConfigError> {
        match field {
            None => Ok(default),
            Some(_) => Ok(resolve_thread_count(self.int(
                field,
                key,
                0..=MAX_THREADS as i64,
                0,
            )?)),
        }
    }

    /// Reads a duration that must be a whole number of seconds, at most `max` of them.
    fn whole_secs(
        &self,
        span: Range<usize>,
        key: &str,
        d: Duration,
        max: u64,
    ) -> Result<u64, ConfigError> {
        if d.subsec_nanos() != 0 {
            return Err(self.error(span, key, "must be a whole number of seconds"));
        }
        if d.as_secs() > max {
            let message = format!("must be at most {max} seconds, got {}", d.as_secs());
            return Err(self.error(span, key, message));
        }
        Ok(d.as_secs())
    }

    /// Validates the file into a `Config`, starting from the defaults.
    fn build(&self, file: FileConfig) -> Result<Config, ConfigError> {
        let mut config = Config::default();

        if let Some(level) = &file.log.level {
            config.log_level = parse_log_level(level.get_ref())
                .map_err(|m| self.error(level.span(), "log.level", m))?;
        }

        let server = &file.server;
        config.io_threads =
            self.threads(&server.io_threads, "server.io_threads", config.io_threads)?;
        config.router_shards = self.int(
            &server.router_shards,
            "server.router_shards",
            0..=MAX_THREADS as i64,
            config.router_shards,
        )?;
        config.max_connections = self.int(
            &server.max_connections,
            "server.max_connections",
            1..=i64::MAX,
            config.max_connections,
        )?;

        self.mqtt(&file.mqtt, &mut config)?;
        self.limits(
            &file.limits,
            &mut config.mqtt.limits,
            config.mqtt.max_packet_size,
        )?;
        self.redirect(&file.redirect, &mut config.mqtt.redirect)?;
        self.sys(&file.sys, &mut config.sys)?;
        self.auth(&file.auth, &mut config)?;
        if let Some(list) = &file.listener {
            // After [auth]: a listener's own auth settings start from it.
            config.listeners = self.listeners(list, &config.auth)?;
        }
        Ok(config)
    }

    /// Reads a file path: `None` when the key is left out, `Some(None)` for `""` (no file).
    fn path(
        &self,
        field: &Field<String>,
        key: &str,
    ) -> Result<Option<Option<PathBuf>>, ConfigError> {
        let Some(value) = field else {
            return Ok(None);
        };
        let text = value.get_ref();
        if text.contains('\0') {
            return Err(self.error(value.span(), key, "must not contain U+0000"));
        }
        Ok(Some((!text.is_empty()).then(|| PathBuf::from(text))))
    }

    /// Validates the `[auth]` section into `config.auth`: `""` means no file, and
    /// `allow_anonymous` left out follows the password file (false with one, true without).
    fn auth(&self, a: &AuthSection, config: &mut Config) -> Result<(), ConfigError> {
        let out = &mut config.auth;
        out.password_file = self.path(&a.password_file, "auth.password_file")?.flatten();
        out.acl_file = self.path(&a.acl_file, "auth.acl_file")?.flatten();
        out.allow_anonymous = match &a.allow_anonymous {
            Some(v) => *v.get_ref(),
            None => out.password_file.is_none(),
        };
        let key = "auth.methods";
        for name in a.methods.iter().flat_map(|m| m.get_ref()) {
            if !crate::auth::BUILT_IN_METHODS.contains(&name.get_ref().as_str()) {
                let known = crate::auth::BUILT_IN_METHODS.join(", ");
                let msg = format!("unknown enhanced authentication method (known: {known})");
                return Err(self.error(name.span(), key, msg));
            }
            if out.methods.contains(name.get_ref()) {
                return Err(self.error(name.span(), key, "listed twice"));
            }
            out.methods.push(name.get_ref().clone());
        }
        if let Some(methods) = a.methods.as_ref().filter(|_| !out.methods.is_empty()) {
            if out.password_file.is_none() {
                let msg = "the methods read users from the password file: set auth.password_file";
                return Err(self.error(methods.span(), key, msg));
            }
        }
        Ok(())
    }

    /// Validates the `[mqtt]` section into `config.mqtt`.
    fn mqtt(&self, m: &MqttSection, config: &mut Config) -> Result<(), ConfigError> {
        let out = &mut config.mqtt;
        out.max_packet_size = self.size(
            &m.max_packet_size,
            "mqtt.max_packet_size",
            2..=MAX_PACKET_SIZE_LIMIT,
            out.max_packet_size,
        )?;
        // MQTT requires servers to accept client ids of 1 to 23 characters; strings end at 65535 bytes.
        out.max_client_id_len = self.int(
            &m.max_client_id_len,
            "mqtt.max_client_id_len",
            23..=65535,
            out.max_client_id_len,
        )?;
        if let Some(v) = &m.allow_empty_client_id {
            out.allow_empty_client_id = *v.get_ref();
        }
        if let Some(v) = &m.connect_timeout {
            let HumanDuration(d) = *v.get_ref();
            if d.is_zero() || d > MAX_CONNECT_TIMEOUT {
                let message = format!("must be more than 0 and at most 1h, got {d:?}");
                return Err(self.error(v.span(), "mqtt.connect_timeout", message));
            }
            out.connect_timeout = d;
        }
        if let Some(v) = &m.max_keepalive {
            let secs = self.whole_secs(
                v.span(),
                "mqtt.max_keepalive",
                v.get_ref().0,
                u16::MAX.into(),
            )?;
            // whole_secs capped it at u16::MAX.
            out.max_keepalive = u16::try_from(secs).unwrap_or(u16::MAX);
        }
        out.max_inflight = self.int(
            &m.max_inflight,
            "mqtt.max_inflight",
            1..=65535,
            out.max_inflight,
        )?;
        out.receive_maximum = self.int(
            &m.receive_maximum,
            "mqtt.receive_maximum",
            1..=65535,
            out.receive_maximum,
        )?;
        out.max_queued_messages = self.int(
            &m.max_queued_messages,
            "mqtt.max_queued_messages",
            1..=i64::MAX,
            out.max_queued_messages,
        )?;
        out.max_queued_bytes = self.size(
            &m.max_queued_bytes,
            "mqtt.max_queued_bytes",
            1..=u64::MAX,
            out.max_queued_bytes,
        )?;
        if let Some(v) = &m.max_session_expiry {
            out.max_session_expiry = self.expiry_secs(v, "mqtt.max_session_expiry")?;
        }
        if let Some(v) = &m.persistent_client_expiration {
            out.persistent_client_expiration =
                self.expiry_secs(v, "mqtt.persistent_client_expiration")?;
        }
        if let Some(v) = &m.retain_available {
            out.retain_available = *v.get_ref();
        }
        if let Some(v) = &m.max_qos {
            let qos = u8::try_from(v.get_ref().0).ok().and_then(QoS::from_u8);
            out.max_qos =
                qos.ok_or_else(|| self.error(v.span(), "mqtt.max_qos", "must be 0, 1 or 2"))?;
        }
        out.max_topic_levels = self.int(
            &m.max_topic_levels,
            "mqtt.max_topic_levels",
            1..=65535,
            out.max_topic_levels,
        )?;
        out.topic_alias_maximum = self.int(
            &m.topic_alias_maximum,
            "mqtt.topic_alias_maximum",
            0..=65535,
            out.topic_alias_maximum,
        )?;
        let flags = [
            (&m.wildcard_subscriptions, &mut out.wildcard_subscriptions),
            (
                &m.subscription_identifiers,
                &mut out.subscription_identifiers,
            ),
            (&m.shared_subscriptions, &mut out.shared_subscriptions),
        ];
        for (field, target) in flags {
            if let Some(v) = field {
                *target = *v.get_ref();
            }
        }
        if let Some(v) = &m.shared_subscription_strategy {
            out.shared_strategy = match v.get_ref().as_str() {
                "round_robin" => SharedStrategy::RoundRobin,
                "random" => SharedStrategy::Random,
                "sticky" => SharedStrategy::Sticky,
                _ => {
                    let message = "must be \"round_robin\", \"random\" or \"sticky\"";
                    return Err(self.error(v.span(), "mqtt.shared_subscription_strategy", message));
                }
            };
        }
        if let Some(v) = &m.response_information {
            out.response_information = v.get_ref().clone();
        }
        Ok(())
    }
}

/// "must be between 1 and 65535, got 0", or "must be at least 1, got 0" for open ranges.
fn range_message(range: &RangeInclusive<i64>, got: i64) -> String {
    if *range.end() == i64::MAX {
        format!("must be at least {}, got {got}", range.start())
    } else {
        format!(
            "must be between {} and {}, got {got}",
            range.start(),
            range.end()
        )
    }
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// The dotted key path of the line holding byte `offset`: `table.key` for a `key = value` line
/// (looking back over continuation lines of a multi-line value), or the table name for a header.
fn key_path_at(text: &str, offset: usize) -> Option<String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let index = line_of(text, offset) - 1;
    let here = lines.get(index)?.trim();
    if let Some(name) = header_name(here) {
        return Some(name);
    }
    let mut key = None;
    let mut table = None;
    for line in lines[..=index].iter().rev() {
        let line = line.trim();
        if let Some(name) = header_name(line) {
            table = Some(name);
            break;
        }
        if key.is_none() {
            key = assignment_key(line);
        }
    }
    match (table, key) {
        (Some(table), Some(key)) => Some(format!("{table}.{key}")),
        (None, Some(key)) => Some(key),
        (table, None) => table,
    }
}

/// The name in a `[table]` or `[[array]]` header line, or `None` for any other line.
fn header_name(line: &str) -> Option<String> {
    let inner = if let Some(rest) = line.strip_prefix("[[") {
        rest.split_once("]]")?.0
    } else {
        line.strip_prefix('[')?.split_once(']')?.0
    };
    simple_key(inner)
}

/// The key of a `key = value` line, or `None` for any other line.
fn assignment_key(line: &str) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    simple_key(line.split_once('=')?.0)
}

/// A bare or dotted key with quotes and spaces removed; `None` if the text is not key-like.
fn simple_key(text: &str) -> Option<String> {
    let text = text.trim();
    let key_like = |c: char| c.is_ascii_alphanumeric() || "_-.\"' ".contains(c);
    if text.is_empty() || !text.chars().all(key_like) {
        return None;
    }
    Some(text.chars().filter(|c| !"\"' ".contains(*c)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let text = "a = 1\nb = 2\n";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 6), 2);
        assert_eq!(line_of(text, 999), 3);
    }

    #[test]
    fn key_paths_from_source() {
        let text = "top = 1\n[mqtt]\nmax_qos = 3 # c\n[[listener]]\nbind = [\n  1,\n]\n";
        let at = |needle: &str| key_path_at(text, text.find(needle).unwrap());
        assert_eq!(at("1\n").as_deref(), Some("top"));
        assert_eq!(at("[mqtt]").as_deref(), Some("mqtt"));
        assert_eq!(at("3 #").as_deref(), Some("mqtt.max_qos"));
        assert_eq!(at("[[listener]]").as_deref(), Some("listener"));
        assert_eq!(at("1,").as_deref(), Some("listener.bind"));
        assert_eq!(
            key_path_at("mqtt . \"max_qos\" = 1", 17).as_deref(),
            Some("mqtt.max_qos")
        );
    }

    #[test]
    fn bind_and_level_parsers() {
        assert_eq!(
            parse_bind("[::]:1883"),
            Ok(SocketAddr::from(([0u16; 8], 1883)))
        );
        assert!(parse_bind("localhost:1883")
            .unwrap_err()
            .contains("host names"));
        assert_eq!(parse_log_level("DEBUG"), Ok(log::LevelFilter::Debug));
        assert!(parse_log_level("verbose")
            .unwrap_err()
            .contains("expected off"));
    }
}
