//! Unit tests of the reload plan: one per kind of change, on configs built from TOML text.
//!
//! Owns: nothing but tests of `config::reload`. Must not touch: files or sockets (configs come
//! from strings).

use super::*;
use crate::config::{ListenerProtocol, SharedStrategy};

/// A config from TOML text, with thread counts pinned so the machine's core count never shows.
fn conf(text: &str) -> Config {
    let pinned = format!("[server]\nio_threads = 4\nrouter_shards = 2\n{text}");
    Config::from_toml_str(&pinned).unwrap_or_else(|e| panic!("{e}\n{pinned}"))
}

/// The same, with a `[server]` table of its own (thread counts not pinned).
fn conf_server(text: &str) -> Config {
    Config::from_toml_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

const TLS: &str = "protocol = \"mqtts\"\ncert_file = \"/etc/picomq/server.crt\"\n\
                   key_file = \"/etc/picomq/server.key\"\n";

fn at(index: usize, bind: &str, protocol: ListenerProtocol) -> ListenerAt {
    ListenerAt {
        index,
        bind: bind.parse().unwrap(),
        protocol,
    }
}

#[test]
fn the_same_config_changes_nothing() {
    let running = conf("[[listener]]\nbind = \"0.0.0.0:1883\"\n");
    let p = plan(&running, &running.clone());
    assert!(p.nothing_changed());
    assert_eq!(p.summary(), "nothing changed");
    assert_eq!(p.config, running);
    assert!(p.needs_restart.is_empty() && p.changed.is_empty() && !p.auth_changed);
    assert_eq!(p.listeners.kept.len(), 1);
    assert!(!p.listeners.kept[0].settings_changed());
}

#[test]
fn reloadable_keys_take_effect_and_are_named() {
    let running = conf("");
    let new = conf(
        "[log]\nlevel = \"debug\"\n[mqtt]\nmax_packet_size = \"2MiB\"\n\
         [limits]\nmax_topic_length = 100\n[redirect]\nkind = \"permanent\"\n",
    );
    let p = plan(&running, &new);
    assert_eq!(p.config, new);
    assert_eq!(
        p.changed,
        [
            "log.level",
            "mqtt.max_packet_size",
            "limits.max_topic_length",
            "redirect.kind"
        ]
    );
    assert!(p.needs_restart.is_empty());
    assert!(!p.nothing_changed());
    assert_eq!(
        p.summary(),
        "log.level, mqtt.max_packet_size, limits.max_topic_length, redirect.kind changed"
    );
}

#[test]
fn thread_counts_keep_their_running_value() {
    let running = conf_server("[server]\nio_threads = 4\nrouter_shards = 2\n");
    let new = conf_server("[server]\nio_threads = 2\nrouter_shards = 3\nmax_connections = 5\n");
    let p = plan(&running, &new);
    assert_eq!((p.config.io_threads, p.config.router_shards), (4, 2));
    assert_eq!(p.config.max_connections, 5);
    let lines: Vec<String> = p.needs_restart.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "server.io_threads: cannot change while running (4 -> 2); restart picomq to apply",
            "server.router_shards: cannot change while running (2 -> 3); restart picomq to apply",
        ]
    );
    assert_eq!(p.changed, ["server.max_connections"]);
}

#[test]
fn router_strategy_keeps_its_running_value_while_retained_limits_and_sys_apply() {
    let running = conf("");
    let new = conf(
        "[mqtt]\nshared_subscription_strategy = \"sticky\"\n\
         [limits]\nmax_retained_messages = 10\nmax_retained_bytes = \"1KiB\"\n\
         [sys]\ninterval = 0\n",
    );
    let p = plan(&running, &new);
    let mut want = new.clone();
    want.mqtt.shared_strategy = running.mqtt.shared_strategy;
    assert_eq!(p.config, want);
    assert_eq!(
        p.changed,
        [
            "limits.max_retained_messages",
            "limits.max_retained_bytes",
            "sys.interval"
        ]
    );
    let found: Vec<(&str, &str, &str)> = p
        .needs_restart
        .iter()
        .map(|n| (n.key.as_str(), n.running.as_str(), n.requested.as_str()))
        .collect();
    assert_eq!(
        found,
        [("mqtt.shared_subscription_strategy", "round_robin", "sticky"),]
    );
    // Only the restart-only keys were put back.
    let mut mixed = new.clone();
    mixed.mqtt.max_inflight = 7;
    let p = plan(&running, &mixed);
    assert_eq!(p.config.mqtt.max_inflight, 7);
    assert_eq!(p.config.mqtt.shared_strategy, SharedStrategy::RoundRobin);
    assert_eq!(
        p.changed,
        [
            "mqtt.max_inflight",
            "limits.max_retained_messages",
            "limits.max_retained_bytes",
            "sys.interval"
        ]
    );
}

#[test]
fn listeners_are_kept_added_and_removed_by_address() {
    let running =
        conf("[[listener]]\nbind = \"127.0.0.1:1883\"\n[[listener]]\nbind = \"127.0.0.1:1884\"\n");
    let new =
        conf("[[listener]]\nbind = \"127.0.0.1:1885\"\n[[listener]]\nbind = \"127.0.0.1:1883\"\n");
    let p = plan(&running, &new);
    let kept = &p.listeners.kept;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].bind, "127.0.0.1:1883".parse().unwrap());
    // Reordered: the plan says where it was and where it is.
    assert_eq!((kept[0].running_index, kept[0].new_index), (0, 1));
    assert!(!kept[0].settings_changed());
    assert_eq!(
        p.listeners.removed,
        [at(1, "127.0.0.1:1884", ListenerProtocol::Mqtt)]
    );
    assert_eq!(
        p.listeners.added,
        [at(0, "127.0.0.1:1885", ListenerProtocol::Mqtt)]
    );
    assert!(p.changed.is_empty());
    assert!(!p.nothing_changed());
    assert_eq!(
        p.summary(),
        "listener 127.0.0.1:1884 (mqtt) removed; listener 127.0.0.1:1885 (mqtt) added"
    );
    assert_eq!(p.config.listeners, new.listeners);
}

#[test]
fn a_new_protocol_on_the_same_address_is_remove_and_add() {
    let running = conf("[[listener]]\nbind = \"0.0.0.0:8883\"\n");
    let new = conf(&format!("[[listener]]\nbind = \"0.0.0.0:8883\"\n{TLS}"));
    let p = plan(&running, &new);
    assert!(p.listeners.kept.is_empty());
    assert_eq!(
        p.listeners.removed,
        [at(0, "0.0.0.0:8883", ListenerProtocol::Mqtt)]
    );
    assert_eq!(
        p.listeners.added,
        [at(0, "0.0.0.0:8883", ListenerProtocol::Mqtts)]
    );
    assert_eq!(
        p.summary(),
        "listener 0.0.0.0:8883 (mqtt) removed; listener 0.0.0.0:8883 (mqtts) added"
    );
}

#[test]
fn a_kept_listener_notes_its_own_limit() {
    let running = conf("[[listener]]\nbind = \"0.0.0.0:1883\"\n");
    let new = conf("[[listener]]\nbind = \"0.0.0.0:1883\"\nmax_connections = 10\n");
    let p = plan(&running, &new);
    let kept = p.listeners.kept[0];
    assert!(kept.max_connections_changed && !kept.tls_changed && !kept.auth_changed);
    assert_eq!(p.changed, ["listener[0.0.0.0:1883].max_connections"]);
    assert_eq!(p.config.listeners[0].max_connections, Some(10));
}

#[test]
fn a_kept_listener_notes_its_tls_files() {
    let running = conf(&format!("[[listener]]\nbind = \"0.0.0.0:8883\"\n{TLS}"));
    let new = conf(&format!(
        "[[listener]]\nbind = \"0.0.0.0:8883\"\n{TLS}ca_file = \"/etc/picomq/ca.crt\"\n\
         tls_min_version = \"1.3\"\n"
    ));
    let p = plan(&running, &new);
    let kept = p.listeners.kept[0];
    assert!(kept.tls_changed && !kept.max_connections_changed && !kept.auth_changed);
    // A CA file makes client certificates required unless told otherwise.
    assert_eq!(
        p.changed,
        [
            "listener[0.0.0.0:8883].ca_file",
            "listener[0.0.0.0:8883].client_certificate",
            "listener[0.0.0.0:8883].tls_min_version",
        ]
    );
}

#[test]
fn a_kept_listener_notes_its_own_auth() {
    let base = "[[listener]]\nbind = \"0.0.0.0:1883\"\n";
    let running = conf(base);
    let own = conf(&format!("{base}password_file = \"/etc/picomq/passwd\"\n"));
    let p = plan(&running, &own);
    assert!(p.listeners.kept[0].auth_changed && !p.auth_changed);
    // Its own file, and with it no anonymous clients.
    assert_eq!(
        p.changed,
        [
            "listener[0.0.0.0:1883].password_file",
            "listener[0.0.0.0:1883].allow_anonymous",
        ]
    );
    // And back: the listener follows [auth] again.
    let p = plan(&own, &running);
    assert!(p.listeners.kept[0].auth_changed);
    assert_eq!(p.changed.len(), 2);
    assert_eq!(p.config.listeners[0].auth, None);
}

#[test]
fn own_auth_equal_to_the_broker_wide_one_is_still_noted() {
    let base = "[[listener]]\nbind = \"0.0.0.0:1883\"\n";
    let running = conf(base);
    let same = conf(&format!("{base}allow_anonymous = true\n"));
    let p = plan(&running, &same);
    assert!(p.listeners.kept[0].auth_changed);
    assert_eq!(p.changed, ["listener[0.0.0.0:1883].auth"]);
}

#[test]
fn broker_wide_auth_is_flagged_once() {
    let base = "[[listener]]\nbind = \"0.0.0.0:1883\"\n";
    let running = conf(base);
    let new = conf(&format!(
        "[auth]\nacl_file = \"/etc/picomq/acl\"\nmethods = []\n{base}"
    ));
    let p = plan(&running, &new);
    assert!(p.auth_changed);
    assert_eq!(p.changed, ["auth.acl_file"]);
    // A listener that follows [auth] is not reported a second time.
    assert!(!p.listeners.kept[0].settings_changed());
    assert_eq!(p.config.auth.acl_file, new.auth.acl_file);
}

#[test]
fn only_keys_that_differ_are_named() {
    // A file that spells out the defaults changes nothing.
    let running = conf("");
    let spelled = conf("[mqtt]\nmax_qos = 2\n[sys]\ninterval = \"10s\"\n");
    assert!(plan(&running, &spelled).nothing_changed());
    assert!(plan(&running, &spelled).needs_restart.is_empty());
}
