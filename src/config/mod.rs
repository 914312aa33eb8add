//! Broker configuration: the typed, validated settings every other module reads.
//!
//! Owns: the typed [`Config`] (this file), the TOML file layer with human units (`file.rs`), the
//! command-line layer (`cli.rs`), `picomq --check` (`check.rs`, which reads the files a config
//! names through their owners' loaders) and the sans-IO reload plan (`reload.rs`: what a re-read
//! config changes). Config is validated once and then shared read-only (`Arc<Config>`); a
//! reload builds a new one. Must not touch: sockets, threads, or any runtime state.

pub mod check;
pub mod cli;
pub mod file;
pub mod reload;
pub mod units;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::protocol::{QoS, ReasonCode};

pub use file::ConfigError;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Log level for env_logger (`RUST_LOG` still wins when set).
    pub log_level: log::LevelFilter,
    /// Network listeners; at least one.
    pub listeners: Vec<ListenerConfig>,
    /// Number of mio I/O threads (resolved: at least 1; the file's 0 means one per two cores,
    /// see [`resolve_thread_count`]).
    pub io_threads: usize,
    /// Number of router shards, spread over the I/O threads; 0 means one per I/O thread (see
    /// [`Config::shards`]).
    pub router_shards: usize,
    /// Broker-wide limit on open client connections.
    pub max_connections: usize,
    /// Protocol and session limits, read by the sans-IO session.
    pub mqtt: MqttConfig,
    /// Password file, ACL file and anonymous access (`[auth]`), read by [`crate::auth`].
    pub auth: AuthConfig,
    /// `$SYS` broker status topics (`[sys]`).
    pub sys: SysConfig,
}

impl Config {
    /// Reads and validates a TOML config file; keys left out keep their defaults.
    ///
    /// Errors name the file, the line and the key: `conf/picomq.toml:12: mqtt.max_qos: must be 0,
    /// 1 or 2`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        file::parse_str(&text, &path.display().to_string())
    }

    /// The number of router shards: `router_shards`, or one per I/O thread when it is 0.
    pub fn shards(&self) -> usize {
        match self.router_shards {
            0 => self.io_threads.max(1),
            n => n,
        }
    }

    /// Parses and validates TOML config text; errors name it `config`.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        file::parse_str(text, "config")
    }
}

impl Default for Config {
    /// The built-in defaults, the same values the shipped `conf/picomq.toml` spells out: one listener
    /// on 127.0.0.1:1883, one I/O thread per two CPU cores and one router shard per I/O thread.
    fn default() -> Self {
        Config {
            log_level: log::LevelFilter::Info,
            listeners: vec![ListenerConfig::default()],
            io_threads: resolve_thread_count(0),
            router_shards: 0,
            max_connections: 10_000,
            mqtt: MqttConfig::default(),
            auth: AuthConfig::default(),
            sys: SysConfig::default(),
        }
    }
}

/// Resolves a configured I/O thread count: 0 means one per two CPU cores, at least one.
///
/// Why not one per core: every message whose publisher, router shard and subscriber are not on
/// one thread costs a cross-thread wake-up, and measured on 2 cores (benches/README.md) one I/O
/// thread delivered more messages per second *and* spent less CPU per message than two, at full
/// speed and at 5,000 msg/s, because the clients (or the other processes of a gateway) need the
/// other core. Larger machines still get a pool.
pub fn resolve_thread_count(configured: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / 2).max(1)
    }
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Address and port to bind, IPv4 or IPv6.
    pub bind: SocketAddr,
    /// Plain MQTT over TCP, or MQTT over TLS.
    pub protocol: ListenerProtocol,
    /// Most clients connected to this listener at once, on top of the broker-wide limit; `None`
    /// means only the broker-wide limit applies.
    pub max_connections: Option<usize>,
    /// Certificates and client verification; `Some` exactly when `protocol` is `Mqtts`.
    pub tls: Option<TlsConfig>,
    /// Authentication for clients of this listener when it overrides `[auth]`; `None` means the
    /// broker-wide `[auth]` applies.
    pub auth: Option<AuthConfig>,
}

impl Default for ListenerConfig {
    /// Loopback only (127.0.0.1:1883), plain MQTT, no limit or auth of its own: reaching the
    /// network is an explicit choice.
    fn default() -> Self {
        ListenerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 1883)),
            protocol: ListenerProtocol::Mqtt,
            max_connections: None,
            tls: None,
            auth: None,
        }
    }
}

impl ListenerConfig {
    /// A plain MQTT listener on `bind` with no settings of its own.
    pub fn plain(bind: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            bind,
            ..ListenerConfig::default()
        }
    }
}

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListenerProtocol {
    /// MQTT over plain TCP (`protocol = "mqtt"`).
    #[default]
    Mqtt,
    /// MQTT over TLS (`protocol = "mqtts"`); needs a build with the `tls` feature.
    Mqtts,
}

/// Whether a TLS listener asks clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertificate {
    /// Not asked for.
    None,
    /// Asked for; a client without one is accepted, one with an invalid one is refused.
    Optional,
    /// A certificate signed by the CA is required (mutual TLS).
    Required,
}

/// Lowest TLS version a listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    V1_2,
    /// TLS 1.3 only.
    V1_3,
}

/// A TLS listener's certificate, key and client verification. Only paths are kept: the files are
/// read when the broker starts and again on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain, server certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates that client certificates must chain to; needed unless
    /// `client_certificate` is `None`.
    pub ca_file: Option<PathBuf>,
    /// Whether clients must, may or need not present a certificate.
    pub client_certificate: ClientCertificate,
    /// Lowest TLS version accepted.
    pub min_version: TlsVersion,
    /// Like Mosquitto's option: the client certificate's subject CN (without one, its first DNS,
    /// e-mail or URI subjectAltName) becomes the user name (ACLs use it) and the password file is
    /// not consulted; a client without a certificate is refused.
    pub use_identity_as_username: bool,
}

/// Protocol and session settings. Plain data so the sans-IO session can take it by reference.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttConfig {
    /// Largest packet (fixed header included) the broker accepts; checked on the fixed header
    /// before the body is buffered; advertised to v5 clients as Maximum Packet Size.
    pub max_packet_size: u32,
    /// Longest client identifier accepted (MQTT 3.1 clients are always limited to 23).
    pub max_client_id_len: usize,
    /// Whether a client may connect with an empty client id (the broker then assigns one).
    pub allow_empty_client_id: bool,
    /// A socket that has not sent a complete CONNECT after this long is closed.
    pub connect_timeout: Duration,
    /// Upper bound on the keep-alive a client may ask for, in seconds; 0 means no bound. A v5 client
    /// asking for more (or for 0) is told Server Keep Alive.
    pub max_keepalive: u16,
    /// Outbound window: most unacknowledged QoS 1/2 PUBLISH in flight to one client (a v5 client's
    /// Receive Maximum lowers it further).
    pub max_inflight: u16,
    /// Inbound window advertised to v5 clients as Receive Maximum; a client exceeding it is
    /// disconnected with 0x93.
    pub receive_maximum: u16,
    /// Most messages queued for one client (offline, or beyond the inflight window).
    pub max_queued_messages: usize,
    /// Most bytes (topic, payload and message properties) queued for one client.
    pub max_queued_bytes: usize,
    /// Cap on the session expiry interval a v5 client may ask for, in seconds.
    pub max_session_expiry: u32,
    /// Session expiry, in seconds, of MQTT 3.1 / 3.1.1 persistent sessions (clean session 0),
    /// which have no expiry of their own; `u32::MAX` = never (as Mosquitto's
    /// `persistent_client_expiration`).
    pub persistent_client_expiration: u32,
    /// Whether retained messages are supported.
    pub retain_available: bool,
    /// Highest QoS the broker grants.
    pub max_qos: QoS,
    /// Most topic levels in a topic name or filter.
    pub max_topic_levels: usize,
    /// Highest topic alias a v5 client may use toward the broker (0 disables client aliases).
    pub topic_alias_maximum: u16,
    /// Whether filters with `+`/`#` are accepted (refused with 0xA2 / 0x80 otherwise).
    pub wildcard_subscriptions: bool,
    /// Whether v5 Subscription Identifiers are accepted (refused with 0xA1 otherwise).
    pub subscription_identifiers: bool,
    /// Whether `$share/{group}/{filter}` subscriptions are accepted (refused with 0x9E otherwise).
    pub shared_subscriptions: bool,
    /// How a shared subscription group picks the member that gets each message.
    pub shared_strategy: SharedStrategy,
    /// Response Information returned to v5 clients that ask for it (Request Response Information
    /// = 1); empty means none is offered.
    pub response_information: String,
    /// Resource limits against greedy or hostile clients (`[limits]` in the file).
    pub limits: LimitsConfig,
    /// MQTT 5 server redirection (`[redirect]` in the file).
    pub redirect: RedirectConfig,
}

/// MQTT 5 server redirection: where to send clients, and when. 3.1.1 has no way to name another
/// server, so it only sees the refusal (CONNACK 3, server unavailable).
#[derive(Debug, Clone, PartialEq)]
pub struct RedirectConfig {
    /// The Server Reference sent with the redirect reason ("host:port", or several separated by
    /// spaces); `None` = no redirection.
    pub server_reference: Option<Arc<str>>,
    /// `USE_ANOTHER_SERVER` (0x9C, temporary) or `SERVER_MOVED` (0x9D, permanent).
    pub reason: ReasonCode,
    /// Refuse every CONNECT (a retired or drained broker): with `reason` + the reference, or
    /// with 0x88 Server unavailable when there is no reference.
    pub refuse_connections: bool,
    /// On shutdown, disconnect MQTT 5 clients with `reason` + the reference instead of 0x8B, so
    /// they move to the other server rather than wait for this one.
    pub on_shutdown: bool,
}

impl Default for RedirectConfig {
    fn default() -> Self {
        RedirectConfig {
            server_reference: None,
            reason: ReasonCode::USE_ANOTHER_SERVER,
            refuse_connections: false,
            on_shutdown: true,
        }
    }
}

impl RedirectConfig {
    /// The reason and reference to disconnect with at shutdown, when configured.
    pub fn at_shutdown(&self) -> Option<(ReasonCode, &str)> {
        let reference = self.server_reference.as_deref()?;
        self.on_shutdown.then_some((self.reason, reference))
    }

    /// The reason to refuse every CONNECT with, when configured (the reference, if any, goes
    /// with it).
    pub fn at_connect(&self) -> Option<ReasonCode> {
        if !self.refuse_connections {
            return None;
        }
        Some(match self.server_reference {
            Some(_) => self.reason,
            None => ReasonCode::SERVER_UNAVAILABLE,
        })
    }
}

/// Resource limits against greedy or hostile clients, read from `[limits]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// Longest topic name or filter, in bytes (a `$share/group/` prefix included).
    pub max_topic_length: usize,
    /// Most subscriptions one session may hold; more are refused with SUBACK 0x97 (3.1.1: 0x80).
    pub max_subscriptions_per_client: usize,
    /// Most retained messages the broker stores (all shards together).
    pub max_retained_messages: usize,
    /// Most bytes (topic, payload and message properties) of retained messages the broker stores.
    pub max_retained_bytes: usize,
    /// Most User Properties in one MQTT 5 packet (CONNECT and will counted separately).
    pub max_user_properties: usize,
    /// Largest property block of one MQTT 5 packet, in bytes (its length field).
    pub max_properties_size: usize,
    /// A packet whose first byte arrived must be complete within this time (slowloris guard).
    pub packet_timeout: Duration,
    /// PUBLISH packets per second one client may send; 0 = unlimited.
    pub publish_rate: u32,
    /// PUBLISH bytes (whole packets) per second one client may send; 0 = unlimited.
    pub publish_bytes_rate: u64,
    /// What happens to a client over its publish rate.
    pub rate_limit_policy: RateLimitPolicy,
}

/// What happens to a client that publishes faster than `publish_rate` / `publish_bytes_rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimitPolicy {
    /// Stop reading its socket until its budget has refilled: TCP backpressure, nothing lost.
    #[default]
    Throttle,
    /// Disconnect it (MQTT 5: DISCONNECT 0x96 Message rate too high).
    Disconnect,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_topic_length: 1024,
            max_subscriptions_per_client: 1000,
            max_retained_messages: 100_000,
            max_retained_bytes: 64 * 1024 * 1024,
            max_user_properties: 64,
            max_properties_size: 64 * 1024,
            packet_timeout: Duration::from_secs(60),
            publish_rate: 0,
            publish_bytes_rate: 0,
            rate_limit_policy: RateLimitPolicy::Throttle,
        }
    }
}

/// How a shared subscription group picks a member for each message. Online members are always
/// preferred over members whose persistent session is offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SharedStrategy {
    /// Each member in turn.
    #[default]
    RoundRobin,
    /// A member chosen at random.
    Random,
    /// The same member while it stays subscribed and online.
    Sticky,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            max_packet_size: 1024 * 1024,
            max_client_id_len: 256,
            allow_empty_client_id: true,
            connect_timeout: Duration::from_secs(10),
            max_keepalive: 0,
            max_inflight: 32,
            receive_maximum: 64,
            max_queued_messages: 1000,
            max_queued_bytes: 16 * 1024 * 1024,
            max_session_expiry: u32::MAX,
            persistent_client_expiration: u32::MAX,
            retain_available: true,
            max_qos: QoS::ExactlyOnce,
            max_topic_levels: 64,
            topic_alias_maximum: 16,
            wildcard_subscriptions: true,
            subscription_identifiers: true,
            shared_subscriptions: true,
            shared_strategy: SharedStrategy::RoundRobin,
            response_information: String::new(),
            limits: LimitsConfig::default(),
            redirect: RedirectConfig::default(),
        }
    }
}

/// Who may connect and what they may do (`[auth]`). Only paths are kept here: the files are read
/// and checked by [`crate::auth::Authenticator::load`], at start-up and on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Mosquitto-format password file; `None` means user names are not checked.
    pub password_file: Option<PathBuf>,
    /// Mosquitto-format ACL file; `None` means every client may use every topic.
    pub acl_file: Option<PathBuf>,
    /// Whether a client may connect without a user name. Resolved when the file is read: when
    /// the key is left out it is true without a password file and false with one, so adding a
    /// password file never leaves the door open by accident.
    pub allow_anonymous: bool,
    /// MQTT 5 enhanced authentication methods offered (`methods`), by name; empty = none, so a
    /// CONNECT naming a method is refused with 0x8C. `SCRAM-SHA-512` and `SCRAM-SHA-256` exist.
    pub methods: Vec<String>,
}

impl Default for AuthConfig {
    /// No password file, no ACL, anonymous clients allowed: today's open broker, which the
    /// loopback-only default listener keeps off the network.
    fn default() -> Self {
        AuthConfig {
            password_file: None,
            acl_file: None,
            allow_anonymous: true,
            methods: Vec::new(),
        }
    }
}

/// `$SYS/broker/...` status topics, as Mosquitto publishes them (`[sys]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysConfig {
    /// How often the topics are refreshed; `None` = never published (Mosquitto's
    /// `sys_interval 0`).
    pub interval: Option<Duration>,
}

impl Default for SysConfig {
    /// Every 10 seconds, Mosquitto's default `sys_interval`.
    fn default() -> Self {
        SysConfig {
            interval: Some(Duration::from_secs(10)),
        }
    }
}
