//! The `[[listener]]` keys of the config file: `protocol`, per-listener `max_connections`, the TLS
//! keys and the per-listener auth overrides, and the errors for combinations that make no sense.
//! (The shipped file's listener keys are checked by tests/config_file.rs.)
//!
//! Owns nothing but tests; must not touch files, sockets or threads: the config layer only reads
//! paths, it does not open them.

use std::path::PathBuf;

use picomq::config::{ClientCertificate, Config, ConfigError, ListenerProtocol, TlsVersion};

fn invalid(result: Result<Config, ConfigError>) -> ConfigError {
    match result {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn listener_protocol_limits_tls_and_auth_keys() {
    let text = "[auth]\nacl_file = \"/acl\"\n\
                [[listener]]\nbind = \"127.0.0.1:1883\"\nmax_connections = 2\n\
                allow_anonymous = false\n\
                [[listener]]\nbind = \"[::1]:8883\"\nprotocol = \"mqtts\"\n\
                cert_file = \"/s.crt\"\nkey_file = \"/s.key\"\nca_file = \"/ca.crt\"\n\
                tls_min_version = \"1.3\"\nuse_identity_as_username = true\n\
                password_file = \"/pw\"\n\
                [[listener]]\nbind = \"127.0.0.1:8884\"\nprotocol = \"mqtts\"\n\
                cert_file = \"/s.crt\"\nkey_file = \"/s.key\"\n";
    let config = Config::from_toml_str(text).unwrap_or_else(|e| panic!("{e}"));
    let [plain, mtls, tls] = &config.listeners[..] else {
        panic!("three listeners")
    };
    assert_eq!(plain.protocol, ListenerProtocol::Mqtt);
    assert_eq!(plain.max_connections, Some(2));
    assert!(plain.tls.is_none());
    // An override keeps the other [auth] keys.
    let plain_auth = plain.auth.clone().expect("own auth");
    assert!(!plain_auth.allow_anonymous);
    assert_eq!(plain_auth.acl_file, Some(PathBuf::from("/acl")));
    assert_eq!(mtls.protocol, ListenerProtocol::Mqtts);
    assert_eq!(mtls.max_connections, None);
    let t = mtls.tls.clone().expect("tls settings");
    assert_eq!(t.cert_file, PathBuf::from("/s.crt"));
    assert_eq!(t.ca_file, Some(PathBuf::from("/ca.crt")));
    // A CA file alone means client certificates are required.
    assert_eq!(t.client_certificate, ClientCertificate::Required);
    assert_eq!(t.min_version, TlsVersion::V1_3);
    assert!(t.use_identity_as_username);
    // Its own password file closes anonymous access there.
    let mtls_auth = mtls.auth.clone().expect("own auth");
    assert_eq!(mtls_auth.password_file, Some(PathBuf::from("/pw")));
    assert!(!mtls_auth.allow_anonymous);
    let t = tls.tls.clone().expect("tls settings");
    assert_eq!(t.client_certificate, ClientCertificate::None);
    assert_eq!(t.min_version, TlsVersion::V1_2);
    assert!(tls.auth.is_none());

    let bad = |text: &str, key: &str, needle: &str| {
        let err = invalid(Config::from_toml_str(text));
        assert_eq!(err.key(), Some(key), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    };
    let l = "[[listener]]\nbind = \"127.0.0.1:1\"\n";
    let tls = format!("{l}protocol = \"mqtts\"\ncert_file = \"/c\"\nkey_file = \"/k\"\n");
    bad(
        &format!("{l}protocol = \"tls\"\n"),
        "listener.protocol",
        "\"mqtts\"",
    );
    bad(
        &format!("{l}max_connections = 0\n"),
        "listener.max_connections",
        "at least 1",
    );
    bad(
        &format!("{l}cert_file = \"/c\"\n"),
        "listener.cert_file",
        "protocol = \"mqtts\"",
    );
    bad(
        &format!("{l}protocol = \"mqtts\"\nkey_file = \"/k\"\n"),
        "listener.cert_file",
        "required",
    );
    bad(
        &format!("{tls}tls_min_version = \"1.1\"\n"),
        "listener.tls_min_version",
        "\"1.3\"",
    );
    bad(
        &format!("{tls}client_certificate = \"required\"\n"),
        "listener.client_certificate",
        "ca_file",
    );
    bad(
        &format!("{tls}ca_file = \"/ca\"\nclient_certificate = \"maybe\"\n"),
        "listener.client_certificate",
        "\"optional\"",
    );
    bad(
        &format!("{tls}use_identity_as_username = true\n"),
        "listener.use_identity_as_username",
        "ca_file",
    );
}
