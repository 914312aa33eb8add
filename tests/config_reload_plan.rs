//! The reload plan against real files: the new config is read as start-up read it (the file,
//! then the same flags), a broken file comes back as a whole `ConfigError`, and every key of
//! the shipped file is named by its file key when it changes.
//!
//! Owns nothing but tests; the unit tests of each kind of change are in
//! `src/config/reload/tests.rs`. Files go to `CARGO_TARGET_TMPDIR`; no broker is started.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Parser;
use picomq::config::cli::{load_config, Cli};
use picomq::config::reload::{load, plan, ListenerAt};
use picomq::config::{Config, ConfigError, ListenerProtocol};

fn shipped_text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/picomq.toml")).unwrap()
}

fn tmp_file(name: &str, text: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("reload-{name}"));
    std::fs::write(&path, text).unwrap();
    path
}

fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("picomq").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[test]
fn start_up_flags_survive_a_reload() {
    let path = tmp_file(
        "flags.toml",
        "[server]\nio_threads = 2\n[[listener]]\nbind = \"0.0.0.0:1883\"\n",
    );
    let conf = path.to_str().unwrap();
    let args = cli(&["-c", conf, "--listen", "127.0.0.1:1900", "--threads", "3"]);
    let running = load_config(&args).unwrap();

    // The file changes a key; its listener and thread count stay overridden by the flags.
    std::fs::write(
        &path,
        "[server]\nio_threads = 2\n[[listener]]\nbind = \"0.0.0.0:1883\"\n\
         [mqtt]\nmax_packet_size = \"2MiB\"\n",
    )
    .unwrap();
    let new = load(&args).unwrap();
    let p = plan(&running, &new);
    assert_eq!(p.changed, ["mqtt.max_packet_size"]);
    assert!(p.needs_restart.is_empty(), "{:?}", p.needs_restart);
    assert_eq!(p.listeners.kept.len(), 1);
    assert!(p.listeners.added.is_empty() && p.listeners.removed.is_empty());
    assert_eq!(p.config.io_threads, 3);
    assert_eq!(p.summary(), "mqtt.max_packet_size changed");

    // Without the flags, the file's own listener and thread count would be asked for.
    let p = plan(&running, &load(&cli(&["-c", conf])).unwrap());
    assert_eq!(p.needs_restart[0].key, "server.io_threads");
    assert_eq!(
        p.listeners.added,
        [ListenerAt {
            index: 0,
            bind: "0.0.0.0:1883".parse().unwrap(),
            protocol: ListenerProtocol::Mqtt,
        }]
    );
}

#[test]
fn a_broken_file_comes_back_whole() {
    let path = tmp_file(
        "broken.toml",
        "[log]\nlevel = \"info\"\n[mqtt]\nmax_qos = 3\n",
    );
    let err = load(&cli(&["-c", path.to_str().unwrap()])).unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
    assert_eq!((err.line(), err.key()), (Some(4), Some("mqtt.max_qos")));
    assert_eq!(
        err.to_string(),
        format!("{}:4: mqtt.max_qos: must be 0, 1 or 2", path.display())
    );

    let gone = load(&cli(&["-c", "/nonexistent/picomq.toml"])).unwrap_err();
    assert!(matches!(gone, ConfigError::Read { .. }), "{gone:?}");
}

/// A value other than the shipped one for each key outside `[[listener]]`, and whether the key
/// needs a restart.
const OTHER_VALUES: &[(&str, &str, bool)] = &[
    ("log.level", "\"debug\"", false),
    ("server.io_threads", "1000", true),
    ("server.router_shards", "1000", true),
    ("server.max_connections", "5", false),
    ("mqtt.max_packet_size", "\"2MiB\"", false),
    ("mqtt.max_client_id_len", "100", false),
    ("mqtt.allow_empty_client_id", "false", false),
    ("mqtt.connect_timeout", "\"5s\"", false),
    ("mqtt.max_keepalive", "\"60s\"", false),
    ("mqtt.max_inflight", "5", false),
    ("mqtt.receive_maximum", "5", false),
    ("mqtt.max_queued_messages", "5", false),
    ("mqtt.max_queued_bytes", "\"1MiB\"", false),
    ("mqtt.max_session_expiry", "\"1h\"", false),
    ("mqtt.persistent_client_expiration", "\"1h\"", false),
    ("mqtt.retain_available", "false", false),
    ("mqtt.max_qos", "1", false),
    ("mqtt.max_topic_levels", "5", false),
    ("mqtt.topic_alias_maximum", "5", false),
    ("mqtt.wildcard_subscriptions", "false", false),
    ("mqtt.subscription_identifiers", "false", false),
    ("mqtt.shared_subscriptions", "false", false),
    ("mqtt.shared_subscription_strategy", "\"sticky\"", true),
    ("mqtt.response_information", "\"x\"", false),
    ("limits.max_topic_length", "100", false),
    ("limits.max_subscriptions_per_client", "5", false),
    ("limits.max_retained_messages", "5", false),
    ("limits.max_retained_bytes", "\"1KiB\"", false),
    ("limits.max_user_properties", "5", false),
    ("limits.max_properties_size", "\"1KiB\"", false),
    ("limits.packet_timeout", "\"5s\"", false),
    ("limits.publish_rate", "5", false),
    ("limits.publish_bytes_rate", "\"2MiB\"", false),
    ("limits.rate_limit_policy", "\"disconnect\"", false),
    ("redirect.server_reference", "\"other.example:1883\"", false),
    ("redirect.kind", "\"permanent\"", false),
    ("redirect.refuse_connections", "true", false),
    ("redirect.on_shutdown", "false", false),
    ("sys.interval", "\"5s\"", false),
    ("auth.password_file", "\"/etc/picomq/passwd\"", false),
    ("auth.acl_file", "\"/etc/picomq/acl\"", false),
    ("auth.allow_anonymous", "false", false),
];

/// The shipped text with `key = value` in `[section]`, replacing the key's line if it has one.
fn shipped_with(dotted: &str, value: &str) -> String {
    let text = shipped_text();
    let (section, key) = dotted.split_once('.').unwrap();
    let header = format!("[{section}]\n");
    let start = text.find(&header).unwrap_or_else(|| panic!("{header}")) + header.len();
    let end = text[start..]
        .find("\n[")
        .map_or(text.len(), |i| start + i + 1);
    let mut body: Vec<String> = text[start..end]
        .lines()
        .filter(|l| !l.starts_with(&format!("{key} = ")))
        .map(str::to_owned)
        .collect();
    body.insert(0, format!("{key} = {value}"));
    format!("{}{}\n{}", &text[..start], body.join("\n"), &text[end..])
}

#[test]
fn every_key_is_named_by_its_file_key() {
    let running = Config::from_toml_str(&shipped_text()).unwrap();
    for &(dotted, value, restart) in OTHER_VALUES {
        let text = shipped_with(dotted, value);
        let new = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{dotted}: {e}"));
        let p = plan(&running, &new);
        let restarts: Vec<&str> = p.needs_restart.iter().map(|n| n.key.as_str()).collect();
        if restart {
            assert_eq!(restarts, [dotted], "{dotted}");
            assert!(p.changed.is_empty(), "{dotted}: {:?}", p.changed);
            assert_eq!(p.config, running, "{dotted} keeps its running value");
        } else {
            assert!(restarts.is_empty(), "{dotted}: {restarts:?}");
            // A password file also turns anonymous access off when that is left out.
            assert_eq!(p.changed.first().map(String::as_str), Some(dotted));
            assert_eq!(p.config, new, "{dotted} takes effect");
        }
    }
    // auth.methods needs a password file.
    let text = shipped_with("auth.password_file", "\"/etc/picomq/passwd\"");
    let without = Config::from_toml_str(&text).unwrap();
    let text = text.replace("methods = []", "methods = [\"SCRAM-SHA-512\"]");
    let with = Config::from_toml_str(&text).unwrap();
    assert_eq!(plan(&without, &with).changed, ["auth.methods"]);
}

#[test]
fn the_key_table_covers_the_shipped_file() {
    let table: toml::Table = toml::from_str(&shipped_text()).unwrap();
    let mut in_file = BTreeSet::new();
    for (section, body) in &table {
        if let toml::Value::Table(keys) = body {
            in_file.extend(keys.keys().map(|k| format!("{section}.{k}")));
        }
    }
    let mut in_table: BTreeSet<String> = OTHER_VALUES.iter().map(|k| k.0.to_owned()).collect();
    in_table.insert("auth.methods".to_owned());
    // allow_anonymous is commented out in the shipped file (its default follows password_file).
    in_file.insert("auth.allow_anonymous".to_owned());
    assert_eq!(in_file, in_table);
}
