//! The `[[listener]]` tables of the config file and their validation into [`ListenerConfig`]s.
//!
//! Owns: the listener keys (`bind`, `protocol`, `max_connections`, the TLS keys and the per-listener
//! auth overrides) and the rules tying them together (a TLS key on a plain listener is an error, a
//! client certificate needs a CA file...). Must not touch: the files the paths name (TLS
//! certificates are read by `net::tls`, auth files by `auth`), sockets or threads.

use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{parse_bind, ConfigError, Field, Int, Reader};
use crate::config::{
    AuthConfig, ClientCertificate, ListenerConfig, ListenerProtocol, TlsConfig, TlsVersion,
};

/// One `[[listener]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ListenerSection {
    bind: Field<String>,
    protocol: Field<String>,
    max_connections: Field<Int>,
    // TLS (protocol = "mqtts" only)
    cert_file: Field<String>,
    key_file: Field<String>,
    ca_file: Field<String>,
    client_certificate: Field<String>,
    tls_min_version: Field<String>,
    use_identity_as_username: Field<bool>,
    // Overrides of [auth] for this listener's clients
    allow_anonymous: Field<bool>,
    password_file: Field<String>,
    acl_file: Field<String>,
}

impl Reader<'_> {
    /// Validates the `[[listener]]` tables: at least one, each with a distinct `bind`. `auth` is the
    /// validated `[auth]` section, the base of a listener's own auth settings.
    pub(super) fn listeners(
        &self,
        list: &Spanned<Vec<Spanned<ListenerSection>>>,
        auth: &AuthConfig,
    ) -> Result<Vec<ListenerConfig>, ConfigError> {
        if list.get_ref().is_empty() {
            return Err(self.error(
                list.span(),
                "listener",
                "at least one [[listener]] is required",
            ));
        }
        let mut listeners: Vec<ListenerConfig> = Vec::new();
        for table in list.get_ref() {
            let l = self.listener(table.get_ref(), table.span(), auth)?;
            if listeners.iter().any(|other| other.bind == l.bind) {
                let message = format!("{} is listed by more than one [[listener]]", l.bind);
                let span = table
                    .get_ref()
                    .bind
                    .as_ref()
                    .map_or(table.span(), Spanned::span);
                return Err(self.error(span, "listener.bind", message));
            }
            listeners.push(l);
        }
        Ok(listeners)
    }

    fn listener(
        &self,
        t: &ListenerSection,
        span: Range<usize>,
        auth: &AuthConfig,
    ) -> Result<ListenerConfig, ConfigError> {
        let Some(bind) = &t.bind else {
            let message = "missing; every [[listener]] needs an address such as \"127.0.0.1:1883\"";
            return Err(self.error(span, "listener.bind", message));
        };
        let bind =
            parse_bind(bind.get_ref()).map_err(|m| self.error(bind.span(), "listener.bind", m))?;
        let protocol = match &t.protocol {
            None => ListenerProtocol::Mqtt,
            Some(v) => match v.get_ref().as_str() {
                "mqtt" => ListenerProtocol::Mqtt,
                "mqtts" => ListenerProtocol::Mqtts,
                _ => {
                    let message = "must be \"mqtt\" (plain TCP) or \"mqtts\" (TLS)";
                    return Err(self.error(v.span(), "listener.protocol", message));
                }
            },
        };
        let max_connections = match &t.max_connections {
            None => None,
            Some(_) => Some(self.int(
                &t.max_connections,
                "listener.max_connections",
                1..=i64::MAX,
                0usize,
            )?),
        };
        let tls = match protocol {
            ListenerProtocol::Mqtts => Some(self.tls(t, span)?),
            ListenerProtocol::Mqtt => {
                let tls_keys = [
                    ("cert_file", t.cert_file.as_ref().map(Spanned::span)),
                    ("key_file", t.key_file.as_ref().map(Spanned::span)),
                    ("ca_file", t.ca_file.as_ref().map(Spanned::span)),
                    (
                        "client_certificate",
                        t.client_certificate.as_ref().map(Spanned::span),
                    ),
                    (
                        "tls_min_version",
                        t.tls_min_version.as_ref().map(Spanned::span),
                    ),
                    (
                        "use_identity_as_username",
                        t.use_identity_as_username.as_ref().map(Spanned::span),
                    ),
                ];
                if let Some((key, Some(span))) = tls_keys.into_iter().find(|(_, s)| s.is_some()) {
                    let message = "only for TLS listeners: add protocol = \"mqtts\"";
                    return Err(self.error(span, &format!("listener.{key}"), message));
                }
                None
            }
        };
        Ok(ListenerConfig {
            bind,
            protocol,
            max_connections,
            tls,
            auth: self.listener_auth(t, auth)?,
        })
    }

    /// The TLS keys of a `protocol = "mqtts"` listener.
    fn tls(&self, t: &ListenerSection, span: Range<usize>) -> Result<TlsConfig, ConfigError> {
        let required = |field: &Field<String>, key: &str| -> Result<PathBuf, ConfigError> {
            let key = format!("listener.{key}");
            match self.path(field, &key)? {
                Some(Some(p)) => Ok(p),
                _ => {
                    let span = field.as_ref().map_or(span.clone(), Spanned::span);
                    Err(self.error(span, &key, "required for protocol = \"mqtts\" (a PEM file)"))
                }
            }
        };
        let cert_file = required(&t.cert_file, "cert_file")?;
        let key_file = required(&t.key_file, "key_file")?;
        let ca_file = self.path(&t.ca_file, "listener.ca_file")?.flatten();
        let client_certificate = match &t.client_certificate {
            // With a CA file the point is usually mutual TLS: require certificates unless told.
            None if ca_file.is_some() => ClientCertificate::Required,
            None => ClientCertificate::None,
            Some(v) => {
                let c = match v.get_ref().as_str() {
                    "none" => ClientCertificate::None,
                    "optional" => ClientCertificate::Optional,
                    "required" => ClientCertificate::Required,
                    _ => {
                        let message = "must be \"none\", \"optional\" or \"required\"";
                        return Err(self.error(v.span(), "listener.client_certificate", message));
                    }
                };
                if c != ClientCertificate::None && ca_file.is_none() {
                    let message = "needs ca_file, the CA that client certificates must chain to";
                    return Err(self.error(v.span(), "listener.client_certificate", message));
                }
                c
            }
        };
        let min_version = match &t.tls_min_version {
            None => TlsVersion::V1_2,
            Some(v) => match v.get_ref().as_str() {
                "1.2" => TlsVersion::V1_2,
                "1.3" => TlsVersion::V1_3,
                _ => {
                    let message = "must be \"1.2\" or \"1.3\"";
                    return Err(self.error(v.span(), "listener.tls_min_version", message));
                }
            },
        };
        let use_identity_as_username = match &t.use_identity_as_username {
            None => false,
            Some(v) => {
                let on = *v.get_ref();
                if on && client_certificate == ClientCertificate::None {
                    let message = "needs client certificates: set ca_file (and \
                                   client_certificate = \"required\")";
                    return Err(self.error(v.span(), "listener.use_identity_as_username", message));
                }
                on
            }
        };
        Ok(TlsConfig {
            cert_file,
            key_file,
            ca_file,
            client_certificate,
            min_version,
            use_identity_as_username,
        })
    }

    /// A listener's own auth settings, when it has any: each key left out keeps `[auth]`'s value,
    /// except `allow_anonymous`, which follows the listener's own `password_file` when only that
    /// is given (false with a file, as in `[auth]`).
    fn listener_auth(
        &self,
        t: &ListenerSection,
        base: &AuthConfig,
    ) -> Result<Option<AuthConfig>, ConfigError> {
        if t.allow_anonymous.is_none() && t.password_file.is_none() && t.acl_file.is_none() {
            return Ok(None);
        }
        let mut auth = base.clone();
        let password_file = self.path(&t.password_file, "listener.password_file")?;
        if let (Some(p), Some(field)) = (&password_file, &t.password_file) {
            if p.is_none() && !auth.methods.is_empty() {
                let msg = "auth.methods read users from the password file: a listener with them \
                           cannot turn it off";
                return Err(self.error(field.span(), "listener.password_file", msg));
            }
            auth.password_file = p.clone();
        }
        if let Some(p) = self.path(&t.acl_file, "listener.acl_file")? {
            auth.acl_file = p;
        }
        auth.allow_anonymous = match (&t.allow_anonymous, password_file) {
            (Some(v), _) => *v.get_ref(),
            (None, Some(p)) => p.is_none(),
            (None, None) => base.allow_anonymous,
        };
        Ok(Some(auth))
    }
}
