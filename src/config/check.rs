//! `picomq --check`: validate a configuration and every file it names, without starting anything.
//!
//! Owns: [`check`] and [`check_files`], and [`CheckError`], which keeps each failure whole (a
//! config error still names file:line:key, an auth or TLS error still names its file). The files
//! are read by the loaders the broker itself uses at start-up ([`Authenticator::load`] and, with
//! the `tls` feature, `net::tls::TlsAcceptor::load`), so `--check` can neither accept a file that
//! start-up would refuse nor refuse one it would accept. Must not touch: sockets, threads, the
//! logger or the process exit code (the binary maps the result to 0 or 2).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::cli::{file_then_flags, Cli};
use super::{AuthConfig, Config, ConfigError, ListenerProtocol};
use crate::auth::{AuthError, Authenticator};

/// One reason the configuration would not start.
#[derive(Debug)]
pub enum CheckError {
    /// The config file (or a flag) is invalid; nothing else could be checked.
    Config(ConfigError),
    /// A password or ACL file (or the auth settings) failed to load.
    Auth {
        /// The listener whose own auth settings these are; `None` for the broker-wide `[auth]`.
        listener: Option<SocketAddr>,
        /// The loader's error, which names the file.
        error: AuthError,
    },
    /// A TLS listener's certificate, key or CA file failed to load.
    #[cfg(feature = "tls")]
    Tls {
        /// The listener.
        listener: SocketAddr,
        /// The loader's error, which names the file.
        error: crate::net::tls::TlsError,
    },
    /// A `protocol = "mqtts"` listener in a build without the `tls` feature.
    NoTls {
        /// The listener.
        listener: SocketAddr,
    },
}

impl fmt::Display for CheckError {
    /// The same words start-up would use: `listener ADDR: ` before a listener's own failure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Config(e) => write!(f, "{e}"),
            CheckError::Auth {
                listener: None,
                error,
            } => write!(f, "{error}"),
            CheckError::Auth {
                listener: Some(bind),
                error,
            } => write!(f, "listener {bind}: {error}"),
            #[cfg(feature = "tls")]
            CheckError::Tls { listener, error } => write!(f, "listener {listener}: {error}"),
            CheckError::NoTls { listener } => write!(
                f,
                "listener {listener}: protocol = \"mqtts\" but this picomq was built without TLS \
                 support (cargo feature `tls`)"
            ),
        }
    }
}

impl std::error::Error for CheckError {}

/// What a successful check found.
#[derive(Debug)]
pub struct Checked {
    /// The configuration as start-up would run it (file, then flags).
    pub config: Config,
    /// Settings that are legal but probably not meant (the warnings start-up would log).
    pub warnings: Vec<String>,
}

/// Builds the configuration exactly as start-up does (the `--conf` file or the defaults, then
/// the flags) and loads every file it names. A config error stops there (the paths in it cannot
/// be trusted); otherwise every failing file is reported, not only the first.
pub fn check(cli: &Cli) -> Result<Checked, Vec<CheckError>> {
    let config = file_then_flags(cli).map_err(|e| vec![CheckError::Config(e)])?;
    let warnings = check_files(&config)?;
    Ok(Checked { config, warnings })
}

/// Loads the files `config` names: the broker-wide `[auth]` files, each listener's own auth
/// files and each TLS listener's certificate, key and CA. Returns the warnings start-up would
/// log, or every failure.
pub fn check_files(config: &Config) -> Result<Vec<String>, Vec<CheckError>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut seen = Vec::new();
    // Broker::start loads [auth] even when every listener overrides it, so check it likewise.
    let own = config
        .listeners
        .iter()
        .filter_map(|l| Some((Some(l.bind), l.auth.as_ref()?)));
    for (listener, auth) in std::iter::once((None, &config.auth)).chain(own) {
        // The loader stops at its first bad file; one file at a time, each is reported.
        for single in one_file_each(auth, &mut seen) {
            if let Err(error) = Authenticator::load(&single) {
                errors.push(CheckError::Auth { listener, error });
            }
        }
        match Authenticator::load(auth) {
            Ok(loaded) => warnings.extend(loaded.warnings().into_iter().map(|w| match listener {
                Some(bind) => format!("listener {bind}: {w}"),
                None => w,
            })),
            // A file already reported above.
            Err(error) if already_reported(&errors, &error) => {}
            Err(error) => errors.push(CheckError::Auth { listener, error }),
        }
    }
    for l in &config.listeners {
        if l.protocol == ListenerProtocol::Mqtts {
            if let Err(e) = check_tls(l) {
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        Ok(warnings)
    } else {
        Err(errors)
    }
}

/// Auth settings naming one file each, for the files of `auth` not in `seen` (which they are
/// added to): a file named by `[auth]` and by a listener is read once.
fn one_file_each(auth: &AuthConfig, seen: &mut Vec<PathBuf>) -> Vec<AuthConfig> {
    let mut out = Vec::new();
    if let Some(p) = auth.password_file.as_ref().filter(|p| !seen.contains(p)) {
        seen.push(p.clone());
        out.push(AuthConfig {
            password_file: Some(p.clone()),
            allow_anonymous: false,
            ..AuthConfig::default()
        });
    }
    if let Some(p) = auth.acl_file.as_ref().filter(|p| !seen.contains(p)) {
        seen.push(p.clone());
        out.push(AuthConfig {
            acl_file: Some(p.clone()),
            ..AuthConfig::default()
        });
    }
    out
}

/// Whether an auth failure with the same text was already reported.
fn already_reported(errors: &[CheckError], error: &AuthError) -> bool {
    let text = error.to_string();
    errors
        .iter()
        .any(|e| matches!(e, CheckError::Auth { error: seen, .. } if seen.to_string() == text))
}

/// Loads a TLS listener's files the way start-up does.
#[cfg(feature = "tls")]
fn check_tls(l: &super::ListenerConfig) -> Result<(), CheckError> {
    // The file layer guarantees `tls` is Some for mqtts; a Config built in code might not.
    let Some(settings) = &l.tls else {
        return Ok(());
    };
    crate::net::tls::TlsAcceptor::load(settings)
        .map(drop)
        .map_err(|error| CheckError::Tls {
            listener: l.bind,
            error,
        })
}

/// Without the `tls` feature an mqtts listener cannot start at all.
#[cfg(not(feature = "tls"))]
fn check_tls(l: &super::ListenerConfig) -> Result<(), CheckError> {
    Err(CheckError::NoTls { listener: l.bind })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ListenerConfig;

    fn missing(path: &str) -> AuthConfig {
        AuthConfig {
            password_file: Some(path.into()),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn defaults_pass_without_warnings() {
        assert!(check_files(&Config::default()).unwrap().is_empty());
    }

    #[test]
    fn every_broken_file_is_reported_once() {
        let mut config = Config {
            auth: missing("/nonexistent/broker-pw"),
            ..Config::default()
        };
        let mut same = ListenerConfig::plain("127.0.0.1:1884".parse().unwrap());
        same.auth = Some(AuthConfig {
            allow_anonymous: true,
            ..missing("/nonexistent/broker-pw")
        });
        let mut own = ListenerConfig::plain("127.0.0.1:1885".parse().unwrap());
        own.auth = Some(missing("/nonexistent/listener-pw"));
        config.listeners.extend([same, own]);
        let errors: Vec<String> = check_files(&config)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("/nonexistent/broker-pw: "),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("listener 127.0.0.1:1885: /nonexistent/listener-pw: "),
            "{errors:?}"
        );
    }

    #[test]
    fn a_bad_password_file_does_not_hide_a_bad_acl_file() {
        let config = Config {
            auth: AuthConfig {
                acl_file: Some("/nonexistent/acl".into()),
                ..missing("/nonexistent/pw")
            },
            ..Config::default()
        };
        let errors: Vec<String> = check_files(&config)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("/nonexistent/pw: cannot read password file"));
        assert!(errors[1].starts_with("/nonexistent/acl: cannot read ACL file"));
    }

    #[test]
    fn warnings_name_their_listener() {
        let mut config = Config::default();
        config.listeners[0].auth = Some(AuthConfig {
            allow_anonymous: false,
            ..AuthConfig::default()
        });
        let warnings = check_files(&config).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("listener 127.0.0.1:1883: auth: "));
    }
}
