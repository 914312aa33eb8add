//! Configuration of one upstream connection as the client side sees it, validated once.
//!
//! Owns: [`ClientConfig`] (what the bridge asks for: identity, session lifetime, keep-alive,
//! credentials, will, subscriptions, local limits) and [`ConfigError`]. Validation happens in
//! [`ClientConfig::validate`], before any CONNECT is written, so a mistake in the bridge's config
//! is reported once at set-up instead of as a refusal from a remote server on every redial. Must
//! not touch: the wire (the session builds CONNECT from this) or any per-link state.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::protocol::topic::{validate_topic_filter, validate_topic_name};
use crate::protocol::{LastWill, ProtocolVersion, SubscriptionOptions};

/// The level limit passed to the topic validators: the upstream server enforces its own depth
/// limit, we only check syntax, so this is effectively "no limit".
const NO_LEVEL_LIMIT: usize = usize::MAX;

/// One subscription made on the upstream server after every successful CONNACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Topic filter, wildcards and `$share/` allowed (the server may refuse them in SUBACK).
    pub filter: String,
    /// QoS wanted and, for MQTT 5.0, No Local, Retain As Published and Retain Handling. A bridge
    /// that also publishes upstream usually wants `no_local` so its own messages do not loop back.
    pub options: SubscriptionOptions,
}

/// What the bridge asks of one upstream connection. Build it, then call
/// [`ClientConfig::validate`] (done by `ClientSession::new`).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Protocol spoken upstream: 3.1.1 or 5.0 (3.1 works too, with 3.1.1 semantics).
    pub version: ProtocolVersion,
    /// Client identifier. May be empty in 5.0 (the server assigns one, which is then reused on
    /// redial so the session can resume), and in 3.1.1 only together with `clean_start`.
    pub client_id: String,
    /// Clean Session (3.1.1) / Clean Start (5.0) for the *first* CONNECT of this session. In 5.0,
    /// redials send Clean Start 0 when `session_expiry` is non-zero, so a session the server kept
    /// is resumed; in 3.1.1 every CONNECT sends this flag, because there a clean session cannot
    /// outlive its connection anyway.
    pub clean_start: bool,
    /// Session Expiry Interval in seconds (5.0 only; 0 = the session ends with the connection,
    /// `u32::MAX` = never).
    pub session_expiry: u32,
    /// Keep-alive in seconds; 0 disables PINGREQ and link-dead detection. A 5.0 server may
    /// replace it with Server Keep Alive in CONNACK.
    pub keep_alive: u16,
    /// How long to wait for any packet after a PINGREQ before declaring the link dead. `None`
    /// means half the keep-alive, so a dead link is noticed about 1.5 keep-alives after the last
    /// packet heard.
    pub ping_timeout: Option<Duration>,
    /// How long to wait for CONNACK after CONNECT before declaring the link dead.
    pub connack_timeout: Duration,
    /// User name, if any.
    pub username: Option<String>,
    /// Password, if any (3.1.1 needs a user name with it).
    pub password: Option<Bytes>,
    /// Will message the server publishes if the link dies without DISCONNECT.
    pub will: Option<LastWill>,
    /// Subscriptions made after every successful CONNACK, in order.
    pub subscriptions: Vec<Subscription>,
    /// Most of our QoS 1/2 PUBLISH unacknowledged at once; the server's Receive Maximum (5.0)
    /// lowers it further. At least 1.
    pub max_inflight: u16,
    /// Most messages waiting behind the inflight window; `publish` refuses more. The bridge keeps
    /// its own disk queue, so this only bounds what the session holds in memory.
    pub max_queued: usize,
    /// Receive Maximum we announce (5.0): most inbound QoS 2 messages the server may have
    /// awaiting PUBREL; more is a protocol violation. A 3.1.1 server cannot know it, so there
    /// the table is bounded only by the packet id space (65,535 entries). At least 1.
    pub receive_maximum: u16,
    /// Largest packet we accept from the server (announced as Maximum Packet Size in 5.0 and
    /// enforced by the decoder from the fixed header). At least 2.
    pub max_packet_size: u32,
    /// Topic Alias Maximum we announce (5.0); 0 forbids the server to use aliases towards us.
    pub topic_alias_maximum: u16,
}

impl ClientConfig {
    /// A config with the given protocol and client id and conservative defaults: clean start,
    /// no session expiry, 60 s keep-alive, 30 s CONNACK timeout, 32 in flight, 10,000 queued,
    /// Receive Maximum 64, 1 MiB packets, no topic aliases, no credentials, will or subscriptions.
    pub fn new(version: ProtocolVersion, client_id: impl Into<String>) -> ClientConfig {
        ClientConfig {
            version,
            client_id: client_id.into(),
            clean_start: true,
            session_expiry: 0,
            keep_alive: 60,
            ping_timeout: None,
            connack_timeout: Duration::from_secs(30),
            username: None,
            password: None,
            will: None,
            subscriptions: Vec::new(),
            max_inflight: 32,
            max_queued: 10_000,
            receive_maximum: 64,
            max_packet_size: 1024 * 1024,
            topic_alias_maximum: 0,
        }
    }

    /// Checks every rule a server would refuse us for, or that would make the session misbehave,
    /// and freezes the config for sharing.
    pub fn validate(self) -> Result<Arc<ClientConfig>, ConfigError> {
        let v5 = self.version.is_v5();
        if self.client_id.is_empty() && !v5 && !self.clean_start {
            // MQTT 3.1.1 [MQTT-3.1.3-7]: a zero-byte client id needs Clean Session 1.
            return Err(ConfigError::EmptyClientIdNeedsCleanStart);
        }
        if self.password.is_some() && self.username.is_none() && !v5 {
            // MQTT 3.1.1 [MQTT-3.1.2-22]: no password flag without the user name flag.
            return Err(ConfigError::PasswordWithoutUsername);
        }
        if self.max_inflight == 0 {
            return Err(ConfigError::Zero("max_inflight"));
        }
        if self.receive_maximum == 0 {
            return Err(ConfigError::Zero("receive_maximum"));
        }
        if self.max_packet_size < 2 {
            return Err(ConfigError::Zero("max_packet_size"));
        }
        if let Some(will) = &self.will {
            validate_topic_name(&will.topic, NO_LEVEL_LIMIT)
                .map_err(|e| ConfigError::WillTopic(e.what))?;
        }
        for sub in &self.subscriptions {
            validate_topic_filter(&sub.filter, NO_LEVEL_LIMIT).map_err(|e| {
                ConfigError::Filter {
                    filter: sub.filter.clone(),
                    what: e.what,
                }
            })?;
        }
        Ok(Arc::new(self))
    }

    /// How long to wait for an answer to PINGREQ, for a keep-alive of `keep_alive`.
    pub(crate) fn ping_timeout_for(&self, keep_alive: Duration) -> Duration {
        self.ping_timeout.unwrap_or(keep_alive / 2)
    }
}

/// A config the session refuses to run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// MQTT 3.1.1 only allows an empty client id with Clean Session 1.
    EmptyClientIdNeedsCleanStart,
    /// MQTT 3.1.1 does not allow a password without a user name.
    PasswordWithoutUsername,
    /// A limit that must be positive is 0; names the field.
    Zero(&'static str),
    /// The will topic is not a valid topic name; says which rule.
    WillTopic(&'static str),
    /// A subscription filter is not a valid topic filter.
    Filter {
        /// The offending filter.
        filter: String,
        /// The broken rule.
        what: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::EmptyClientIdNeedsCleanStart => {
                f.write_str("MQTT 3.1.1 needs clean_start with an empty client id")
            }
            ConfigError::PasswordWithoutUsername => {
                f.write_str("MQTT 3.1.1 does not allow a password without a user name")
            }
            ConfigError::Zero(field) => write!(f, "{field} must be positive"),
            ConfigError::WillTopic(what) => write!(f, "will topic: {what}"),
            ConfigError::Filter { filter, what } => write!(f, "subscription {filter:?}: {what}"),
        }
    }
}

impl std::error::Error for ConfigError {}
