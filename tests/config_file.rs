//! Tests of the configuration layer through its public API: the shipped `conf/picomq.toml`, error
//! reporting (file, line, key), human units, and command-line overrides.
//!
//! Owns: nothing but tests. Must not touch: anything outside the config layer; files it writes go
//! to `CARGO_TARGET_TMPDIR`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use picomq::config::cli::{load_config, Cli, Command, PasswdArgs};
use picomq::config::file::parse_str;
use picomq::config::{resolve_thread_count, AuthConfig, Config, ConfigError, ListenerConfig};
use picomq::protocol::QoS;

const SHIPPED_NAME: &str = "conf/picomq.toml";

fn shipped_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(SHIPPED_NAME)
}

fn shipped_text() -> String {
    std::fs::read_to_string(shipped_path()).expect("conf/picomq.toml is readable")
}

/// Every `key = value` line of the shipped file as (dotted key, 0-based line index).
fn shipped_keys(text: &str) -> Vec<(String, usize)> {
    let mut table = String::new();
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            table = line.trim_matches(|c| c == '[' || c == ']').to_owned();
            continue;
        }
        let (key, _) = line.split_once('=').expect("a key = value line");
        keys.push((format!("{table}.{}", key.trim()), index));
    }
    keys
}

/// The shipped text with line `index` replaced by `replacement` (None deletes it).
fn with_line(text: &str, index: usize, replacement: Option<&str>) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    match replacement {
        Some(new) => lines[index] = new,
        None => {
            lines.remove(index);
        }
    }
    lines.join("\n") + "\n"
}

/// The shipped text with the line of `dotted` (e.g. `mqtt.max_qos`) set to `key = value`,
/// and that line's 1-based number.
fn shipped_with(dotted: &str, value: &str) -> (String, usize) {
    let text = shipped_text();
    let (_, index) = shipped_keys(&text)
        .into_iter()
        .find(|(k, _)| k == dotted)
        .unwrap_or_else(|| panic!("{dotted} is in the shipped file"));
    let key = dotted.rsplit('.').next().unwrap();
    (
        with_line(&text, index, Some(&format!("{key} = {value}"))),
        index + 1,
    )
}

fn invalid(result: Result<Config, ConfigError>) -> ConfigError {
    match result {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(err) => err,
    }
}

fn tmp_file(name: &str, text: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).expect("write temp config");
    path
}

// ---- the shipped file ----

#[test]
fn shipped_file_is_exactly_the_defaults() {
    let loaded = Config::load(&shipped_path()).expect("shipped config loads");
    assert_eq!(loaded, Config::default());
    // The safe default: loopback only.
    assert_eq!(loaded.listeners, vec![ListenerConfig::default()]);
    assert!(loaded.listeners[0].bind.ip().is_loopback());
}

/// Known keys of one table, read back from the unknown-key error ("expected one of `a`, `b`").
fn known_keys(text_with_unknown: &str) -> BTreeSet<String> {
    let err = invalid(Config::from_toml_str(text_with_unknown)).to_string();
    let expected = err
        .split("expected")
        .nth(1)
        .unwrap_or_else(|| panic!("{err}"));
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Keys the code reads that the shipped file leaves out on purpose, because their default
/// depends on other keys; each is shown as a commented-out `# key = ...` line in its section.
/// The listener keys with no default value, and the TLS keys, which a plain listener refuses, are
/// shown commented out as well.
const UNSET_IN_SHIPPED: &[&str] = &[
    "auth.allow_anonymous",
    "listener.max_connections",
    "listener.allow_anonymous",
    "listener.password_file",
    "listener.acl_file",
    "listener.cert_file",
    "listener.key_file",
    "listener.ca_file",
    "listener.client_certificate",
    "listener.tls_min_version",
    "listener.use_identity_as_username",
];

/// The TLS keys, valid only with `protocol = "mqtts"`.
const TLS_KEYS: &[&str] = &[
    "cert_file",
    "key_file",
    "ca_file",
    "client_certificate",
    "tls_min_version",
    "use_identity_as_username",
];

/// The header line of `table` in the shipped file: `[table]` or `[[table]]`.
fn header_of(text: &str, table: &str) -> String {
    let array = format!("[[{table}]]\n");
    if text.contains(&array) {
        array
    } else {
        format!("[{table}]\n")
    }
}

#[test]
fn keys_left_unset_are_shown_commented_out() {
    let text = shipped_text();
    for dotted in UNSET_IN_SHIPPED {
        let (table, key) = dotted.split_once('.').unwrap();
        // From the (uncommented) header to the next uncommented one.
        let (_, section) = text
            .split_once(&header_of(&text, table))
            .unwrap_or_else(|| panic!("[{table}] is in the shipped file"));
        let section = section.split("\n[").next().unwrap();
        assert!(
            section
                .lines()
                .any(|l| l.starts_with(&format!("# {key} = "))),
            "{dotted} is shown commented out in [{table}]"
        );
    }
}

#[test]
fn shipped_file_has_every_key_the_code_reads_and_no_other() {
    let text = shipped_text();
    let table: toml::Table = toml::from_str(&text).expect("valid TOML");
    // Top level: the sections.
    let in_file: BTreeSet<String> = table.keys().cloned().collect();
    assert_eq!(in_file, known_keys(&format!("zz_unknown = 1\n{text}")));
    // Each section: insert an unknown key right under its header.
    for (name, value) in &table {
        let body = match value {
            toml::Value::Table(t) => t,
            toml::Value::Array(a) => a[0].as_table().expect("array of tables"),
            other => panic!("{name} is not a section: {other:?}"),
        };
        let mut in_file: BTreeSet<String> = body.keys().cloned().collect();
        for dotted in UNSET_IN_SHIPPED {
            if let Some(key) = dotted.strip_prefix(&format!("{name}.")) {
                in_file.insert(key.to_owned());
            }
        }
        let header = if value.is_array() {
            format!("[[{name}]]\n")
        } else {
            format!("[{name}]\n")
        };
        let probe = text.replacen(&header, &format!("{header}zz_unknown = 1\n"), 1);
        assert_eq!(in_file, known_keys(&probe), "section [{name}]");
    }
}

/// A valid value for every key, different from its default.
fn other_value(dotted: &str) -> Option<String> {
    let more_threads = (resolve_thread_count(0) + 1).to_string();
    Some(match dotted {
        "log.level" => "\"debug\"".into(),
        "server.io_threads" | "server.router_shards" => more_threads,
        "server.max_connections" => "7".into(),
        "listener.bind" => "\"[::1]:1884\"".into(),
        "listener.protocol" => "\"mqtts\"\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"".into(),
        "listener.max_connections" => "5".into(),
        "listener.allow_anonymous" => "false".into(),
        "listener.password_file" | "listener.acl_file" => "\"/etc/picomq/other\"".into(),
        "listener.cert_file" | "listener.key_file" | "listener.ca_file" => "\"/x.pem\"".into(),
        "listener.client_certificate" => "\"optional\"".into(),
        "listener.tls_min_version" => "\"1.3\"".into(),
        "listener.use_identity_as_username" => "true".into(),
        "mqtt.max_packet_size" => "\"2MiB\"".into(),
        "mqtt.max_client_id_len" => "23".into(),
        "mqtt.allow_empty_client_id" => "false".into(),
        "mqtt.connect_timeout" => "\"1m\"".into(),
        "mqtt.max_keepalive" => "\"5m\"".into(),
        "mqtt.max_inflight" => "1".into(),
        "mqtt.receive_maximum" => "65535".into(),
        "mqtt.max_queued_messages" => "10".into(),
        "mqtt.max_queued_bytes" => "\"1KiB\"".into(),
        "mqtt.max_session_expiry" => "\"1d\"".into(),
        "mqtt.persistent_client_expiration" => "\"2h\"".into(),
        "mqtt.retain_available" => "false".into(),
        "mqtt.max_qos" => "1".into(),
        "mqtt.max_topic_levels" => "8".into(),
        "mqtt.topic_alias_maximum" => "0".into(),
        "mqtt.wildcard_subscriptions"
        | "mqtt.subscription_identifiers"
        | "mqtt.shared_subscriptions" => "false".into(),
        "mqtt.shared_subscription_strategy" => "\"sticky\"".into(),
        "mqtt.response_information" => "\"replies/\"".into(),
        "limits.max_topic_length" => "100".into(),
        "limits.max_subscriptions_per_client" => "5".into(),
        "limits.max_retained_messages" => "10".into(),
        "limits.max_retained_bytes" => "\"1MiB\"".into(),
        "limits.max_user_properties" => "0".into(),
        "limits.max_properties_size" => "\"1KiB\"".into(),
        "limits.packet_timeout" => "\"5s\"".into(),
        "limits.publish_rate" => "100".into(),
        "limits.publish_bytes_rate" => "\"1MiB\"".into(),
        "limits.rate_limit_policy" => "\"disconnect\"".into(),
        "redirect.server_reference" => "\"127.0.0.2:1883\"".into(),
        "redirect.kind" => "\"permanent\"".into(),
        "redirect.refuse_connections" => "true".into(),
        "redirect.on_shutdown" => "false".into(),
        "sys.interval" => "\"0s\"".into(),
        "auth.password_file" => "\"/etc/picomq/passwd\"".into(),
        "auth.acl_file" => "\"/etc/picomq/acl\"".into(),
        "auth.allow_anonymous" => "false".into(),
        "auth.methods" => "[\"SCRAM-SHA-512\"]".into(),
        _ => return None,
    })
}

#[test]
fn every_key_in_the_shipped_file_is_read() {
    let text = shipped_text();
    let keys = shipped_keys(&text);
    for dotted in UNSET_IN_SHIPPED {
        let (table, key) = dotted.split_once('.').unwrap();
        let value = other_value(dotted).unwrap_or_else(|| panic!("add {dotted} to other_value()"));
        let header = header_of(&text, table);
        let mut lines = format!("{key} = {value}\n");
        if table == "listener" && TLS_KEYS.contains(&key) {
            // A TLS key needs a TLS listener with its certificate and key.
            let text = text.replace("protocol = \"mqtt\"\n", "");
            let mut base = "protocol = \"mqtts\"\n".to_owned();
            for (k, v) in [
                ("cert_file", "\"/c.pem\""),
                ("key_file", "\"/k.pem\""),
                ("ca_file", "\"/ca.pem\""),
            ] {
                if k != key {
                    base += &format!("{k} = {v}\n");
                }
            }
            lines = base + &lines;
            let changed = text.replacen(&header, &format!("{header}{lines}"), 1);
            let config =
                Config::from_toml_str(&changed).unwrap_or_else(|e| panic!("{dotted}: {e}"));
            assert_ne!(
                config,
                Config::default(),
                "{dotted} = {value} had no effect"
            );
            continue;
        }
        let changed = text.replacen(&header, &format!("{header}{lines}"), 1);
        let config = Config::from_toml_str(&changed).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(
            config,
            Config::default(),
            "{dotted} = {value} had no effect"
        );
    }
    for (dotted, _) in keys {
        let value = other_value(&dotted).unwrap_or_else(|| panic!("add {dotted} to other_value()"));
        let (mut changed, _) = shipped_with(&dotted, &value);
        if dotted == "auth.methods" {
            // Methods need a password file, which the shipped file leaves unset.
            let with_file = "password_file = \"/etc/picomq/passwd\"\n";
            changed = changed.replacen("password_file = \"\"\n", with_file, 1);
        }
        let config = Config::from_toml_str(&changed).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(
            config,
            Config::default(),
            "{dotted} = {value} had no effect"
        );
    }
}

#[test]
fn deleting_any_key_keeps_the_defaults() {
    let text = shipped_text();
    for (dotted, index) in shipped_keys(&text) {
        let mut without = with_line(&text, index, None);
        if dotted == "listener.bind" {
            // A listener needs an address; drop the whole table instead.
            without =
                without
                    .replacen("[[listener]]\n", "", 1)
                    .replacen("protocol = \"mqtt\"\n", "", 1);
        }
        let config = Config::from_toml_str(&without).unwrap_or_else(|e| panic!("{dotted}: {e}"));
        assert_eq!(config, Config::default(), "without {dotted}");
    }
    assert_eq!(Config::from_toml_str("").unwrap(), Config::default());
}

// ---- errors name the file, the line and the key ----

#[test]
fn bad_value_names_file_line_and_key() {
    let (text, line) = shipped_with("mqtt.max_qos", "3");
    let err = invalid(parse_str(&text, SHIPPED_NAME));
    assert_eq!(
        err.to_string(),
        format!("conf/picomq.toml:{line}: mqtt.max_qos: must be 0, 1 or 2")
    );
    assert_eq!(err.line(), Some(line));
    assert_eq!(err.key(), Some("mqtt.max_qos"));
}

#[test]
fn unknown_key_names_key_and_line() {
    let text = shipped_text();
    let (_, index) = shipped_keys(&text)
        .into_iter()
        .find(|(k, _)| k == "mqtt.max_qos")
        .unwrap();
    let typo = with_line(&text, index, Some("max_qso = 2"));
    let err = invalid(parse_str(&typo, SHIPPED_NAME));
    assert_eq!(err.line(), Some(index + 1));
    assert_eq!(err.key(), Some("mqtt.max_qso"));
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!(
            "conf/picomq.toml:{}: mqtt.max_qso: unknown field",
            index + 1
        )),
        "{shown}"
    );

    let err = invalid(Config::from_toml_str(
        "[log]\nlevel = \"info\"\n\n[mqt]\nmax_qos = 1\n",
    ));
    assert_eq!((err.line(), err.key()), (Some(4), Some("mqt")));
    let err = invalid(Config::from_toml_str("verbose = true\n"));
    assert_eq!((err.line(), err.key()), (Some(1), Some("verbose")));
    let err = invalid(Config::from_toml_str(
        "[[listener]]\nbind = \"127.0.0.1:1\"\nport = 1\n",
    ));
    assert_eq!((err.line(), err.key()), (Some(3), Some("listener.port")));
}

#[test]
fn every_bad_value_names_its_key_and_line() {
    let cases = [
        (
            "log.level",
            "\"verbose\"",
            "expected off, error, warn, info, debug or trace",
        ),
        ("server.io_threads", "1025", "between 0 and 1024"),
        ("server.router_shards", "-1", "between 0 and 1024"),
        ("server.max_connections", "0", "at least 1"),
        (
            "server.max_connections",
            "\"many\"",
            "expected a whole number",
        ),
        (
            "listener.bind",
            "\"localhost:1883\"",
            "host names are not resolved",
        ),
        ("listener.bind", "\"127.0.0.1\"", "expected IP:port"),
        ("listener.bind", "1883", "invalid type"),
        (
            "mqtt.max_packet_size",
            "\"1B\"",
            "between 2 and 268435460 bytes",
        ),
        (
            "mqtt.max_packet_size",
            "\"257MiB\"",
            "between 2 and 268435460 bytes",
        ),
        ("mqtt.max_packet_size", "\"1MB!\"", "expected a size"),
        ("mqtt.max_client_id_len", "22", "between 23 and 65535"),
        ("mqtt.allow_empty_client_id", "\"yes\"", "invalid type"),
        ("mqtt.connect_timeout", "\"0s\"", "more than 0"),
        ("mqtt.connect_timeout", "\"2h\"", "at most 1h"),
        ("mqtt.connect_timeout", "-5", "expected a duration"),
        ("mqtt.max_keepalive", "\"65536s\"", "at most 65535 seconds"),
        (
            "mqtt.max_keepalive",
            "\"1500ms\"",
            "whole number of seconds",
        ),
        ("mqtt.max_inflight", "0", "between 1 and 65535"),
        ("mqtt.receive_maximum", "65536", "between 1 and 65535"),
        ("mqtt.max_queued_messages", "0", "at least 1"),
        ("mqtt.max_queued_bytes", "0", "between 1 and"),
        ("mqtt.max_queued_bytes", "\"16XB\"", "unknown unit"),
        ("mqtt.max_session_expiry", "\"forever\"", "or \"never\""),
        ("mqtt.retain_available", "1", "invalid type"),
        ("mqtt.max_qos", "-1", "must be 0, 1 or 2"),
        ("mqtt.max_topic_levels", "0", "between 1 and 65535"),
        ("mqtt.topic_alias_maximum", "65536", "between 0 and 65535"),
        ("mqtt.topic_alias_maximum", "1.0", "expected a whole number"),
        (
            "mqtt.shared_subscription_strategy",
            "\"fair\"",
            "must be \"round_robin\"",
        ),
        ("limits.max_topic_length", "65536", "between 1 and 65535"),
        ("limits.max_subscriptions_per_client", "0", "at least 1"),
        ("limits.max_retained_messages", "0", "at least 1"),
        ("limits.max_retained_bytes", "0", "between 1 and"),
        ("limits.max_user_properties", "-1", "between 0 and 65535"),
        ("limits.max_properties_size", "0", "between 1 and"),
        ("limits.packet_timeout", "\"0s\"", "more than 0"),
        ("limits.packet_timeout", "\"2h\"", "at most 1h"),
        ("limits.publish_rate", "-1", "between 0 and"),
        ("limits.publish_bytes_rate", "\"1XB\"", "unknown unit"),
        (
            "limits.publish_bytes_rate",
            "1",
            "at least mqtt.max_packet_size",
        ),
        (
            "limits.rate_limit_policy",
            "\"drop\"",
            "must be \"throttle\"",
        ),
        ("auth.password_file", "1", "invalid type"),
        ("auth.acl_file", "\"a\\u0000b\"", "must not contain U+0000"),
    ];
    for (dotted, value, want) in cases {
        let (text, line) = shipped_with(dotted, value);
        let err = invalid(parse_str(&text, SHIPPED_NAME));
        let shown = err.to_string();
        assert_eq!(err.line(), Some(line), "{dotted} = {value}: {shown}");
        assert_eq!(err.key(), Some(dotted), "{dotted} = {value}: {shown}");
        assert!(
            shown.starts_with(&format!("{SHIPPED_NAME}:{line}: {dotted}: ")),
            "{shown}"
        );
        assert!(shown.contains(want), "{dotted} = {value}: {shown}");
    }
}

#[test]
fn listener_list_errors() {
    let err = invalid(Config::from_toml_str(
        "log.level = \"warn\"\nlistener = []\n",
    ));
    assert_eq!((err.line(), err.key()), (Some(2), Some("listener")));
    let twice = "[[listener]]\nbind = \"0.0.0.0:1883\"\n\n[[listener]]\nbind = \"0.0.0.0:1883\"\n";
    let err = invalid(Config::from_toml_str(twice));
    assert_eq!((err.line(), err.key()), (Some(5), Some("listener.bind")));
    let err = invalid(Config::from_toml_str("[mqtt]\nmax_qos = 1\n[[listener]]\n"));
    assert_eq!((err.line(), err.key()), (Some(3), Some("listener.bind")));
}

#[test]
fn syntax_errors_name_the_line() {
    let err = invalid(Config::from_toml_str(
        "[mqtt]\nmax_qos = 1\nmax_inflight = \n",
    ));
    assert_eq!(err.line(), Some(3));
    assert!(
        err.to_string().starts_with("config:3: mqtt.max_inflight: "),
        "{err}"
    );
    let err = invalid(Config::from_toml_str("[mqtt]\nmax_qos = 1\n[mqtt]\n"));
    assert_eq!(err.line(), Some(3));
}

#[test]
fn unreadable_file_is_a_read_error() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("does-not-exist.toml");
    let err = invalid(Config::load(&path));
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string()
            .contains("does-not-exist.toml: cannot read config file"),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());
}

// ---- values and units ----

#[test]
fn units_and_plain_numbers_in_the_file() {
    let config = Config::from_toml_str(
        "[mqtt]\nmax_packet_size = 65536\nmax_queued_bytes = \"1KB\"\nconnect_timeout = \"250ms\"\n\
         max_keepalive = \"1h\"\nmax_session_expiry = 0\n",
    )
    .unwrap();
    assert_eq!(config.mqtt.max_packet_size, 65536);
    assert_eq!(config.mqtt.max_queued_bytes, 1000);
    assert_eq!(config.mqtt.connect_timeout, Duration::from_millis(250));
    assert_eq!(config.mqtt.max_keepalive, 3600);
    assert_eq!(config.mqtt.max_session_expiry, 0);

    let config = Config::from_toml_str(
        "[mqtt]\nmax_packet_size = \"64KiB\"\nconnect_timeout = 5\nmax_session_expiry = \"1d\"\n",
    )
    .unwrap();
    assert_eq!(config.mqtt.max_packet_size, 65536);
    assert_eq!(config.mqtt.connect_timeout, Duration::from_secs(5));
    assert_eq!(config.mqtt.max_session_expiry, 86_400);

    // Beyond u32::MAX seconds is capped there, which MQTT 5 reads as "never".
    let capped = Config::from_toml_str("[mqtt]\nmax_session_expiry = \"100000d\"\n").unwrap();
    assert_eq!(capped.mqtt.max_session_expiry, u32::MAX);
    let edge =
        Config::from_toml_str("[mqtt]\nmax_packet_size = 268435460\nmax_keepalive = 65535\n");
    assert_eq!(edge.unwrap().mqtt.max_keepalive, 65535);
}

#[test]
fn several_listeners_and_other_settings() {
    let text = "log.level = \"TRACE\"\n[server]\nio_threads = 2\nrouter_shards = 3\n\n\
                [[listener]]\nbind = \"0.0.0.0:1883\"\n[[listener]]\nbind = \"[::]:8883\"\n\
                [mqtt]\nmax_qos = 0\nretain_available = false\n";
    let config = Config::from_toml_str(text).unwrap();
    assert_eq!(config.log_level, log::LevelFilter::Trace);
    assert_eq!((config.io_threads, config.router_shards), (2, 3));
    let binds: Vec<SocketAddr> = config.listeners.iter().map(|l| l.bind).collect();
    assert_eq!(
        binds,
        [
            "0.0.0.0:1883".parse().unwrap(),
            "[::]:8883".parse().unwrap()
        ]
    );
    assert_eq!(config.mqtt.max_qos, QoS::AtMostOnce);
    assert!(!config.mqtt.retain_available);
}

#[test]
fn auth_settings_and_the_anonymous_default() {
    let auth = |text: &str| Config::from_toml_str(text).unwrap().auth;
    let open = AuthConfig::default();
    assert_eq!(auth(""), open);
    assert_eq!((open.password_file, open.acl_file), (None, None));
    assert!(open.allow_anonymous);
    // Empty paths mean no file.
    assert_eq!(
        auth("[auth]\npassword_file = \"\"\nacl_file = \"\"\n"),
        AuthConfig::default()
    );
    // A password file closes anonymous access unless it is reopened explicitly.
    let with_file = auth("[auth]\npassword_file = \"/etc/picomq/passwd\"\n");
    assert_eq!(
        with_file.password_file,
        Some(PathBuf::from("/etc/picomq/passwd"))
    );
    assert!(!with_file.allow_anonymous);
    let reopened = auth("[auth]\npassword_file = \"pw\"\nallow_anonymous = true\n");
    assert!(reopened.allow_anonymous);
    assert!(!auth("[auth]\nallow_anonymous = false\n").allow_anonymous);
    // An ACL alone keeps anonymous access (its first section is for anonymous clients).
    let acl_only = auth("[auth]\nacl_file = \"acl\"\n");
    assert_eq!(acl_only.acl_file, Some(PathBuf::from("acl")));
    assert!(acl_only.allow_anonymous);
    // Reading the config does not read the files: that is the authenticator's job.
    assert!(Config::from_toml_str("[auth]\npassword_file = \"/nonexistent\"\n").is_ok());
    let err = invalid(Config::from_toml_str("[auth]\nallow_anonymous = \"no\"\n"));
    assert_eq!(
        (err.line(), err.key()),
        (Some(2), Some("auth.allow_anonymous"))
    );
    // Enhanced authentication methods: off by default; SCRAM-SHA-512 and SCRAM-SHA-256 exist.
    assert!(open.methods.is_empty());
    let scram = auth("[auth]\npassword_file = \"pw\"\nmethods = [\"SCRAM-SHA-512\"]\n");
    assert_eq!(scram.methods, vec!["SCRAM-SHA-512".to_owned()]);
    let both =
        auth("[auth]\npassword_file = \"pw\"\nmethods = [\"SCRAM-SHA-256\", \"SCRAM-SHA-512\"]\n");
    assert_eq!(both.methods, vec!["SCRAM-SHA-256", "SCRAM-SHA-512"]);
    for bad in [
        "[\"SCRAM-SHA-1\"]",
        "[\"SCRAM-SHA-512\", \"SCRAM-SHA-512\"]",
        "\"x\"",
    ] {
        let err = invalid(Config::from_toml_str(&format!("[auth]\nmethods = {bad}\n")));
        assert_eq!(
            (err.line(), err.key()),
            (Some(2), Some("auth.methods")),
            "{bad}"
        );
    }
    // Methods read users from the password file: without one, an error at `methods`' line.
    for text in [
        "[auth]\nallow_anonymous = true\nmethods = [\"SCRAM-SHA-256\"]\n",
        "[auth]\npassword_file = \"\"\n\nmethods = [\"SCRAM-SHA-512\"]\n",
    ] {
        let err = invalid(Config::from_toml_str(text));
        assert_eq!(
            (err.line(), err.key()),
            (Some(text.lines().count()), Some("auth.methods")),
            "{text}"
        );
        assert!(err.to_string().contains("password_file"), "{err}");
    }
    assert!(Config::from_toml_str("[auth]\nmethods = []\n").is_ok());
    // A listener cannot turn the password file off under the methods of [auth].
    let err = invalid(Config::from_toml_str(
        "[auth]\npassword_file = \"pw\"\nmethods = [\"SCRAM-SHA-512\"]\n\
         [[listener]]\nbind = \"127.0.0.1:1883\"\npassword_file = \"\"\n",
    ));
    assert_eq!(
        (err.line(), err.key()),
        (Some(6), Some("listener.password_file"))
    );
    let err = invalid(Config::from_toml_str("[auth]\npasword_file = \"x\"\n"));
    assert_eq!(
        (err.line(), err.key()),
        (Some(2), Some("auth.pasword_file"))
    );
}

#[test]
fn zero_threads_means_one_per_two_cores_and_zero_shards_one_per_thread() {
    let config = Config::from_toml_str("[server]\nio_threads = 0\nrouter_shards = 0\n").unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / 2).max(1);
    assert_eq!((config.io_threads, config.router_shards), (threads, 0));
    assert_eq!(config.shards(), threads);
    let four = Config::from_toml_str("[server]\nio_threads = 4\n").unwrap();
    assert_eq!(four.shards(), 4);
}

// ---- command line ----

fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("picomq").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn cli_error(args: &[&str]) -> ErrorKind {
    match Cli::try_parse_from(std::iter::once("picomq").chain(args.iter().copied())) {
        Ok(parsed) => panic!("{args:?} parsed: {parsed:?}"),
        Err(err) => err.kind(),
    }
}

#[test]
fn cli_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn no_flags_means_built_in_defaults() {
    assert_eq!(load_config(&cli(&[])).unwrap(), Config::default());
}

#[test]
fn flags_override_the_file() {
    let path = tmp_file(
        "cli-override.toml",
        "[log]\nlevel = \"warn\"\n[server]\nmax_connections = 50\nio_threads = 4\n\
         [[listener]]\nbind = \"0.0.0.0:1883\"\n[mqtt]\nmax_qos = 1\n",
    );
    let conf = path.to_str().unwrap();

    let from_file = load_config(&cli(&["--conf", conf])).unwrap();
    assert_eq!(from_file.max_connections, 50);
    assert_eq!(from_file.log_level, log::LevelFilter::Warn);

    let args = [
        "--conf",
        conf,
        "--listen",
        "127.0.0.1:1900",
        "--listen",
        "[::1]:1901",
        "--log-level",
        "Debug",
        "--threads",
        "3",
        "--shards",
        "2",
        "--max-connections",
        "7",
    ];
    let config = load_config(&cli(&args)).unwrap();
    let binds: Vec<SocketAddr> = config.listeners.iter().map(|l| l.bind).collect();
    assert_eq!(
        binds,
        [
            "127.0.0.1:1900".parse().unwrap(),
            "[::1]:1901".parse().unwrap()
        ]
    );
    assert_eq!(config.log_level, log::LevelFilter::Debug);
    assert_eq!((config.io_threads, config.router_shards), (3, 2));
    assert_eq!(config.max_connections, 7);
    // Settings without a flag keep the file's value.
    assert_eq!(config.mqtt.max_qos, QoS::AtLeastOnce);

    let zero = load_config(&cli(&["--conf", conf, "--threads", "0"])).unwrap();
    assert_eq!(zero.io_threads, resolve_thread_count(0));
}

#[test]
fn bad_flags_are_rejected() {
    assert_eq!(
        cli_error(&["--listen", "localhost:1883"]),
        ErrorKind::ValueValidation
    );
    assert_eq!(cli_error(&["--log-level", "loud"]), ErrorKind::InvalidValue);
    assert_eq!(
        cli_error(&["--threads", "5000"]),
        ErrorKind::ValueValidation
    );
    assert_eq!(cli_error(&["--shards", "-1"]), ErrorKind::UnknownArgument);
    assert_eq!(
        cli_error(&["--max-connections", "0"]),
        ErrorKind::ValueValidation
    );
    assert_eq!(cli_error(&["--conf"]), ErrorKind::InvalidValue);
    assert_eq!(cli_error(&["--frobnicate"]), ErrorKind::UnknownArgument);

    let twice = cli(&["--listen", "127.0.0.1:1", "--listen", "127.0.0.1:1"]);
    let err = invalid(load_config(&twice));
    assert_eq!(err.key(), Some("--listen"));
    assert!(
        err.to_string().starts_with("command line: --listen: "),
        "{err}"
    );

    let missing = cli(&["--conf", "/nonexistent/picomq.toml"]);
    assert!(matches!(
        invalid(load_config(&missing)),
        ConfigError::Read { .. }
    ));
}

#[test]
fn bad_file_through_the_cli_names_the_file() {
    let path = tmp_file("cli-bad.toml", "[mqtt]\n\nmax_qos = 3\n");
    let err = invalid(load_config(&cli(&["--conf", path.to_str().unwrap()])));
    assert_eq!(
        err.to_string(),
        format!("{}:3: mqtt.max_qos: must be 0, 1 or 2", path.display())
    );
}

#[test]
fn passwd_subcommand() {
    let parsed = cli(&[
        "passwd", "-c", "-b", "-I", "500", "pw.txt", "alice", "s3cret",
    ]);
    assert_eq!(
        parsed.command,
        Some(Command::Passwd(PasswdArgs {
            create: true,
            batch: true,
            delete: false,
            iterations: Some(500),
            scram_sha256: false,
            file: PathBuf::from("pw.txt"),
            user: "alice".into(),
            password: Some("s3cret".into()),
        }))
    );
    let Some(Command::Passwd(delete)) = cli(&["passwd", "-D", "pw.txt", "bob"]).command else {
        panic!("passwd subcommand expected");
    };
    assert!(delete.delete && !delete.batch && delete.password.is_none());
    assert_eq!(cli(&[]).command, None);
    assert_eq!(
        cli_error(&["passwd", "pw.txt"]),
        ErrorKind::MissingRequiredArgument
    );
    assert_eq!(
        cli_error(&["passwd", "-b", "pw.txt", "u"]),
        ErrorKind::MissingRequiredArgument
    );
    assert_eq!(
        cli_error(&["passwd", "-c", "-D", "f", "u"]),
        ErrorKind::ArgumentConflict
    );
    assert_eq!(
        cli_error(&["passwd", "-D", "-I", "5", "f", "u"]),
        ErrorKind::ArgumentConflict
    );
    assert_eq!(
        cli_error(&["passwd", "-I", "0", "-b", "f", "u", "p"]),
        ErrorKind::ValueValidation
    );
    assert_eq!(
        cli_error(&["--threads", "2", "passwd", "-b", "f", "u", "p"]),
        ErrorKind::ArgumentConflict
    );
}

#[test]
fn version_and_help() {
    assert_eq!(cli_error(&["--version"]), ErrorKind::DisplayVersion);
    let help = |flag: &str| match Cli::try_parse_from(["picomq", flag]) {
        Err(err) if err.kind() == ErrorKind::DisplayHelp => err.to_string(),
        other => panic!("{other:?}"),
    };
    let long = help("--help");
    for flag in [
        "--conf",
        "--listen",
        "--log-level",
        "--threads",
        "--shards",
        "--max-connections",
    ] {
        assert!(long.contains(flag), "{flag} missing from help:\n{long}");
    }
    let short = help("-h");
    assert!(
        short.contains("[possible values: off, error, warn, info, debug, trace]"),
        "{short}"
    );
}
