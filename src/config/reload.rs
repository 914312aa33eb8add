//! The reload plan: what re-reading the whole config file (on SIGHUP) changes in a running broker.
//!
//! Owns: [`plan`], a pure comparison of the running [`Config`] with a newly read one that says
//! what to run with, which keys must wait for a restart, which listeners stay, open and close,
//! and which keys changed (for the log line); and [`load`], which reads the new config exactly as
//! start-up did. Must not touch: sockets, threads, the logger, the clock, or the files a config
//! names. The plan compares settings, not file contents: a password, ACL or certificate file
//! edited in place is the same setting, so the broker re-reads those files on every SIGHUP
//! whatever the plan says (as `net::Reloader` does today).
//!
//! # Keys that need a restart
//!
//! These are captured once by `net::Broker::start`; [`plan`] keeps their running value and
//! reports each change as a [`NeedsRestart`]:
//!
//! - `server.io_threads`: one mio thread each is spawned at start, and connections and sessions
//!   live on them.
//! - `server.router_shards`: shards are placed on the I/O threads at start; topics are spread over the shards by their
//!   count (`shard_of_topic(topic, n)`, by parent path), so a new count would move every subscription and
//!   retained message.
//! - `mqtt.shared_subscription_strategy`: each shard builds its shared-subscription groups with
//!   it (`Shard::with_budget`), and a running shard has no way to be told another one.
//!
//! Every other key takes effect: `log.level`, `server.max_connections`, the rest of `[mqtt]`,
//! `[limits]` (the retained maxima too), `[redirect]`, `[auth]`, `[sys] interval` and the
//! listeners. Making one of the keys above reloadable
//! is a change in `net` or `router` first, then moving it from `restart_only` to `key` here.
//!
//! # Adding a field to `Config`
//!
//! Every struct is destructured without `..` (see `compare_fields!`), so a new field does not
//! compile until this file says whether it is reloadable and what its file key is.

use std::fmt;
use std::net::SocketAddr;

use super::cli::{file_then_flags, Cli};
use super::{
    AuthConfig, Config, ConfigError, LimitsConfig, ListenerConfig, ListenerProtocol, MqttConfig,
    RedirectConfig, SharedStrategy, SysConfig, TlsConfig,
};

#[cfg(test)]
mod tests;

/// What a reload does, from [`plan`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadPlan {
    /// The configuration to run with from now on: the new one, except that each restart-only
    /// key keeps its running value. Its listeners are in the new file's order.
    pub config: Config,
    /// Restart-only keys the new config changes, in file order; each displays as a ready log line.
    pub needs_restart: Vec<NeedsRestart>,
    /// Dotted file keys whose new value takes effect, section by section with the listeners'
    /// keys last (`log.level`, `mqtt.max_packet_size`, ...; a kept listener's own keys as
    /// `listener[ADDR].max_connections`). Added and removed listeners are in
    /// [`ReloadPlan::listeners`], not here.
    pub changed: Vec<String>,
    /// The broker-wide `[auth]` settings differ: build a new broker-wide authenticator; every
    /// listener without auth settings of its own (`ListenerConfig::auth` is `None`) follows it.
    pub auth_changed: bool,
    /// Which listeners stay, which open and which close.
    pub listeners: ListenerPlan,
}

impl ReloadPlan {
    /// True when the new config changes nothing that takes effect: no key in
    /// [`ReloadPlan::changed`] and no listener added or removed. Restart-only changes may still
    /// be waiting in [`ReloadPlan::needs_restart`], and the listeners may have been reordered.
    pub fn nothing_changed(&self) -> bool {
        self.changed.is_empty()
            && self.listeners.added.is_empty()
            && self.listeners.removed.is_empty()
    }

    /// One line for the log after the reload is applied: `log.level, mqtt.max_packet_size
    /// changed; listener 0.0.0.0:8883 (mqtts) added`, or `nothing changed`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.changed.is_empty() {
            parts.push(format!("{} changed", self.changed.join(", ")));
        }
        for l in &self.listeners.removed {
            parts.push(format!("listener {l} removed"));
        }
        for l in &self.listeners.added {
            parts.push(format!("listener {l} added"));
        }
        if parts.is_empty() {
            "nothing changed".to_owned()
        } else {
            parts.join("; ")
        }
    }
}

/// A restart-only key that the new config changes; the running value stays in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedsRestart {
    /// Dotted file key, e.g. `server.io_threads`.
    pub key: String,
    /// The value in force, as the file would write it.
    pub running: String,
    /// The value the new config asks for.
    pub requested: String,
}

impl fmt::Display for NeedsRestart {
    /// `server.io_threads: cannot change while running (4 -> 2); restart picomq to apply`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: cannot change while running ({} -> {}); restart picomq to apply",
            self.key, self.running, self.requested
        )
    }
}

/// What happens to the listeners. A listener is identified by its bind address and protocol: one
/// whose protocol changed on the same address is removed and added again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListenerPlan {
    /// Listeners in both configs: their socket and their connections stay.
    pub kept: Vec<KeptListener>,
    /// Listeners only in the new config: bind and start accepting. `index` points into
    /// [`ReloadPlan::config`]`.listeners`.
    pub added: Vec<ListenerAt>,
    /// Listeners only in the running config: stop accepting and disconnect their clients (MQTT 5:
    /// DISCONNECT 0x8B, as at shutdown). `index` points into the running config's listeners.
    pub removed: Vec<ListenerAt>,
}

/// A listener of one of the two configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerAt {
    /// Its position in that config's `listeners`.
    pub index: usize,
    /// Its address.
    pub bind: SocketAddr,
    /// What it speaks.
    pub protocol: ListenerProtocol,
}

impl fmt::Display for ListenerAt {
    /// `127.0.0.1:1883 (mqtt)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.bind, protocol_name(self.protocol))
    }
}

/// A listener in both configs: its socket and its connections stay. The flags say which of its
/// own settings differ, so the broker rebuilds what it made from them; new connections get the
/// new settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptListener {
    /// Its address (and its protocol is the same in both configs).
    pub bind: SocketAddr,
    /// Its position in the running config's listeners.
    pub running_index: usize,
    /// Its position in [`ReloadPlan::config`]`.listeners` (the file may have reordered them).
    pub new_index: usize,
    /// Its own `max_connections` differs.
    pub max_connections_changed: bool,
    /// Its certificate, key or CA path, client-certificate mode, lowest TLS version or
    /// `use_identity_as_username` differs: build a new TLS acceptor from the new settings.
    pub tls_changed: bool,
    /// Its own auth settings (`ListenerConfig::auth`) differ: build its authenticator from the
    /// new ones, or use the broker-wide one when the new config has none.
    pub auth_changed: bool,
}

impl KeptListener {
    /// Whether any of its own settings differ.
    pub fn settings_changed(&self) -> bool {
        self.max_connections_changed || self.tls_changed || self.auth_changed
    }
}

/// Reads the configuration for a reload exactly as start-up read it: the `--conf` file (or the
/// built-in defaults), then the start-up command-line flags on top, so `--listen`, `--threads`
/// and the rest are not lost. An error comes back whole (file:line:key); the caller keeps the
/// running configuration and logs it.
pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
    file_then_flags(cli)
}

/// Compares the running configuration with a newly read one. Pure: no I/O, no logging; the
/// caller applies the plan and logs [`ReloadPlan::needs_restart`] and [`ReloadPlan::summary`].
pub fn plan(running: &Config, new: &Config) -> ReloadPlan {
    let mut config = new.clone();
    let mut diff = Diff::default();
    let Config {
        log_level,
        listeners: _, // compared by `plan_listeners` below
        io_threads,
        router_shards,
        max_connections,
        mqtt,
        auth,
        sys,
    } = running;
    diff.section("log.").key("level", log_level, &new.log_level);
    let mut server = diff.section("server.");
    let count = |n: &usize| n.to_string();
    server.restart_only("io_threads", io_threads, &mut config.io_threads, count);
    server.restart_only(
        "router_shards",
        router_shards,
        &mut config.router_shards,
        count,
    );
    server.key("max_connections", max_connections, &new.max_connections);
    compare_mqtt(&mut diff, mqtt, &new.mqtt, &mut config.mqtt);
    compare_sys(&mut diff, sys, &new.sys);
    compare_auth(&mut diff.section("auth."), auth, &new.auth);
    let auth_changed = *auth != new.auth;
    let listeners = plan_listeners(&mut diff, running, &config);
    ReloadPlan {
        config,
        needs_restart: diff.needs_restart,
        changed: diff.changed,
        auth_changed,
        listeners,
    }
}

/// Compares each field of two values of struct `$ty`, naming a changed one by its file key. The
/// pattern lists every field, with no `..`: a field added to `$ty` stops the build here until it
/// gets a key, or is listed under `elsewhere` and compared by hand.
macro_rules! compare_fields {
    (
        $section:expr, $ty:ident, $running:expr, $new:expr,
        keys { $($field:ident => $key:literal),* $(,)? }
        elsewhere { $($other:ident),* $(,)? }
    ) => {{
        let $ty { $($field,)* $($other: _,)* } = $running;
        $( $section.key($key, $field, &$new.$field); )*
    }};
}

/// `[mqtt]`, `[limits]` and `[redirect]` (one struct in `Config`, three sections in the file).
/// `effective` starts as a copy of `new`; restart-only keys are put back to `running`.
fn compare_mqtt(
    diff: &mut Diff,
    running: &MqttConfig,
    new: &MqttConfig,
    effective: &mut MqttConfig,
) {
    let mut mqtt = diff.section("mqtt.");
    compare_fields!(mqtt, MqttConfig, running, new,
        keys {
            max_packet_size => "max_packet_size",
            max_client_id_len => "max_client_id_len",
            allow_empty_client_id => "allow_empty_client_id",
            connect_timeout => "connect_timeout",
            max_keepalive => "max_keepalive",
            max_inflight => "max_inflight",
            receive_maximum => "receive_maximum",
            max_queued_messages => "max_queued_messages",
            max_queued_bytes => "max_queued_bytes",
            max_session_expiry => "max_session_expiry",
            persistent_client_expiration => "persistent_client_expiration",
            retain_available => "retain_available",
            max_qos => "max_qos",
            max_topic_levels => "max_topic_levels",
            topic_alias_maximum => "topic_alias_maximum",
            wildcard_subscriptions => "wildcard_subscriptions",
            subscription_identifiers => "subscription_identifiers",
            shared_subscriptions => "shared_subscriptions",
            response_information => "response_information",
        }
        elsewhere { shared_strategy, limits, redirect }
    );
    mqtt.restart_only(
        "shared_subscription_strategy",
        &running.shared_strategy,
        &mut effective.shared_strategy,
        |s| strategy_name(*s).to_owned(),
    );
    compare_limits(diff, &running.limits, &new.limits);
    let mut redirect = diff.section("redirect.");
    compare_fields!(redirect, RedirectConfig, &running.redirect, new.redirect,
        keys {
            server_reference => "server_reference",
            reason => "kind",
            refuse_connections => "refuse_connections",
            on_shutdown => "on_shutdown",
        }
        elsewhere {}
    );
}

/// `[limits]`: every key takes effect (the retained maxima through `RetainedBudget::set_limits`).
fn compare_limits(diff: &mut Diff, running: &LimitsConfig, new: &LimitsConfig) {
    let mut limits = diff.section("limits.");
    compare_fields!(limits, LimitsConfig, running, new,
        keys {
            max_topic_length => "max_topic_length",
            max_subscriptions_per_client => "max_subscriptions_per_client",
            max_retained_messages => "max_retained_messages",
            max_retained_bytes => "max_retained_bytes",
            max_user_properties => "max_user_properties",
            max_properties_size => "max_properties_size",
            packet_timeout => "packet_timeout",
            publish_rate => "publish_rate",
            publish_bytes_rate => "publish_bytes_rate",
            rate_limit_policy => "rate_limit_policy",
        }
        elsewhere {}
    );
}

/// `[sys]`: the interval takes effect on I/O thread 0's next tick.
fn compare_sys(diff: &mut Diff, running: &SysConfig, new: &SysConfig) {
    let SysConfig { interval } = running;
    let mut sys = diff.section("sys.");
    sys.key("interval", interval, &new.interval);
}

/// The keys of an auth table: `[auth]`, or a listener's effective auth settings.
fn compare_auth(section: &mut Section<'_>, running: &AuthConfig, new: &AuthConfig) {
    compare_fields!(section, AuthConfig, running, new,
        keys {
            password_file => "password_file",
            acl_file => "acl_file",
            allow_anonymous => "allow_anonymous",
            methods => "methods",
        }
        elsewhere {}
    );
}

/// Pairs the listeners by bind address and protocol and compares each kept pair's settings.
fn plan_listeners(diff: &mut Diff, running: &Config, new: &Config) -> ListenerPlan {
    let mut plan = ListenerPlan::default();
    let mut matched = vec![false; new.listeners.len()];
    for (running_index, old) in running.listeners.iter().enumerate() {
        let same = |&i: &usize| {
            let l = &new.listeners[i];
            !matched[i] && l.bind == old.bind && l.protocol == old.protocol
        };
        match (0..new.listeners.len()).find(same) {
            Some(new_index) => {
                matched[new_index] = true;
                let sides = Sides {
                    running: (running_index, old, &running.auth),
                    new: (new_index, &new.listeners[new_index], &new.auth),
                };
                plan.kept.push(compare_listener(diff, sides));
            }
            None => plan.removed.push(listener_at(running_index, old)),
        }
    }
    for (index, l) in new.listeners.iter().enumerate() {
        if !matched[index] {
            plan.added.push(listener_at(index, l));
        }
    }
    plan
}

/// One listener in both configs: its index, its settings, and its config's `[auth]` (which a
/// listener without auth settings of its own follows).
struct Sides<'a> {
    running: (usize, &'a ListenerConfig, &'a AuthConfig),
    new: (usize, &'a ListenerConfig, &'a AuthConfig),
}

/// Compares the own settings of a listener present in both configs.
fn compare_listener(diff: &mut Diff, sides: Sides<'_>) -> KeptListener {
    let (running_index, running, running_auth) = sides.running;
    let (new_index, new, new_auth) = sides.new;
    let ListenerConfig {
        bind,
        protocol: _, // equal: it is half of what pairs the two
        max_connections,
        tls,
        auth,
    } = running;
    let mut section = diff.section(format!("listener[{bind}]."));
    let before = section.count();
    section.key("max_connections", max_connections, &new.max_connections);
    let max_connections_changed = section.count() > before;

    let before = section.count();
    match (tls, &new.tls) {
        (Some(running_tls), Some(new_tls)) => compare_tls(&mut section, running_tls, new_tls),
        // Only a Config built in code can have an mqtts listener without TLS settings.
        (running_tls, new_tls) => section.key("tls", running_tls, new_tls),
    }
    let tls_changed = section.count() > before;

    // `None` on both sides follows `[auth]`, whose changes are reported under `auth.`.
    let auth_changed = *auth != new.auth;
    if auth_changed {
        let before = section.count();
        let running_effective = auth.as_ref().unwrap_or(running_auth);
        let new_effective = new.auth.as_ref().unwrap_or(new_auth);
        compare_auth(&mut section, running_effective, new_effective);
        if section.count() == before {
            // Auth settings of its own that equal [auth], or the reverse: nothing behaves
            // differently, but the broker rebuilds its authenticator, so say so.
            section.changed("auth");
        }
    }
    KeptListener {
        bind: *bind,
        running_index,
        new_index,
        max_connections_changed,
        tls_changed,
        auth_changed,
    }
}

/// A TLS listener's keys.
fn compare_tls(section: &mut Section<'_>, running: &TlsConfig, new: &TlsConfig) {
    compare_fields!(section, TlsConfig, running, new,
        keys {
            cert_file => "cert_file",
            key_file => "key_file",
            ca_file => "ca_file",
            client_certificate => "client_certificate",
            min_version => "tls_min_version",
            use_identity_as_username => "use_identity_as_username",
        }
        elsewhere {}
    );
}

/// Where listener `l` sits in its config.
fn listener_at(index: usize, l: &ListenerConfig) -> ListenerAt {
    ListenerAt {
        index,
        bind: l.bind,
        protocol: l.protocol,
    }
}

/// The file's word for a listener protocol.
fn protocol_name(p: ListenerProtocol) -> &'static str {
    match p {
        ListenerProtocol::Mqtt => "mqtt",
        ListenerProtocol::Mqtts => "mqtts",
    }
}

/// The file's word for a shared-subscription strategy.
fn strategy_name(s: SharedStrategy) -> &'static str {
    match s {
        SharedStrategy::RoundRobin => "round_robin",
        SharedStrategy::Random => "random",
        SharedStrategy::Sticky => "sticky",
    }
}

/// What the comparison found so far.
#[derive(Default)]
struct Diff {
    changed: Vec<String>,
    needs_restart: Vec<NeedsRestart>,
}

impl Diff {
    /// Records keys under `prefix` (`"mqtt."`, `"listener[127.0.0.1:1883]."`).
    fn section(&mut self, prefix: impl Into<String>) -> Section<'_> {
        Section {
            diff: self,
            prefix: prefix.into(),
        }
    }
}

/// A [`Diff`] seen through one table's key prefix.
struct Section<'a> {
    diff: &'a mut Diff,
    prefix: String,
}

impl Section<'_> {
    /// Notes `key` as changed when the values differ.
    fn key<T: PartialEq + ?Sized>(&mut self, key: &str, running: &T, new: &T) {
        if running != new {
            self.changed(key);
        }
    }

    /// Notes `key` as changed.
    fn changed(&mut self, key: &str) {
        self.diff.changed.push(format!("{}{key}", self.prefix));
    }

    /// For a restart-only key: when the new value differs, puts the running one back into
    /// `effective` and notes the change, both values shown with `show`.
    fn restart_only<T: PartialEq + Clone>(
        &mut self,
        key: &str,
        running: &T,
        effective: &mut T,
        show: impl Fn(&T) -> String,
    ) {
        if running != effective {
            self.diff.needs_restart.push(NeedsRestart {
                key: format!("{}{key}", self.prefix),
                running: show(running),
                requested: show(effective),
            });
            effective.clone_from(running);
        }
    }

    /// How many changed keys are recorded in all, to tell whether a comparison added any.
    fn count(&self) -> usize {
        self.diff.changed.len()
    }
}
