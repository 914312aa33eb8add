//! TLS listener set-up: reading the certificate, key and CA files of a `protocol = "mqtts"`
//! listener into a rustls `ServerConfig` (ring provider), swapping it on reload, and reading the
//! user name out of a client certificate (`use_identity_as_username`).
//!
//! Owns: [`TlsAcceptor`] (the current `ServerConfig` behind a lock held only to clone an `Arc`,
//! never across I/O) and the small DER reader for the subject CN / first SAN. Must not touch: sockets (the
//! per-connection TLS state is driven by `transport.rs`), sessions or the protocol.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

use crate::config::{ClientCertificate, TlsConfig, TlsVersion};

/// The ALPN protocol name offered to clients; clients that send no ALPN are served too.
pub const ALPN_MQTT: &[u8] = b"mqtt";

/// Why a listener's TLS files could not be used; the message names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// The TLS side of one listener: its settings and the `ServerConfig` new connections get.
/// Reloading builds a new config and swaps it in; connections already open keep theirs.
pub struct TlsAcceptor {
    settings: TlsConfig,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsAcceptor {
    /// Reads the listener's files; an error names the file at fault.
    pub fn load(settings: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
        Ok(TlsAcceptor {
            settings: settings.clone(),
            current: RwLock::new(build(settings)?),
        })
    }

    /// Re-reads the files; on error the previous certificate stays in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = build(&self.settings)?;
        *self.current.write() = fresh;
        Ok(())
    }

    /// The listener's settings.
    pub fn settings(&self) -> &TlsConfig {
        &self.settings
    }

    /// Server-side TLS state for a new connection, with the current certificate.
    pub fn new_connection(&self) -> Result<ServerConnection, rustls::Error> {
        let config = Arc::clone(&self.current.read());
        ServerConnection::new(config)
    }
}

/// Builds a `ServerConfig` from the listener's files.
fn build(s: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match s.min_version {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError(format!("TLS set-up failed: {e}")))?;
    let certs = read_certs(&s.cert_file, "certificate file")?;
    let key = PrivateKeyDer::from_pem_file(&s.key_file).map_err(|e| {
        TlsError(format!(
            "{}: cannot read a PEM private key from the key file: {e}",
            s.key_file.display()
        ))
    })?;
    let builder = match (s.client_certificate, &s.ca_file) {
        (ClientCertificate::None, _) | (_, None) => builder.with_no_client_auth(),
        (mode, Some(ca_file)) => {
            builder.with_client_cert_verifier(client_verifier(mode, ca_file, provider)?)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        TlsError(format!(
            "{} / {}: certificate and key cannot be used together: {e}",
            s.cert_file.display(),
            s.key_file.display()
        ))
    })?;
    config.alpn_protocols = vec![ALPN_MQTT.to_vec()];
    Ok(Arc::new(config))
}

/// Verifies client certificates against the CA file.
fn client_verifier(
    mode: ClientCertificate,
    ca_file: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca_file, "CA file")? {
        roots.add(cert).map_err(|e| {
            TlsError(format!(
                "{}: a certificate in the CA file is not usable: {e}",
                ca_file.display()
            ))
        })?;
    }
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    if mode == ClientCertificate::Optional {
        builder = builder.allow_unauthenticated();
    }
    builder.build().map_err(|e| {
        TlsError(format!(
            "{}: cannot verify client certificates with this CA file: {e}",
            ca_file.display()
        ))
    })
}

/// Every certificate in a PEM file; none is an error.
fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |e: &dyn fmt::Display| {
        TlsError(format!(
            "{}: cannot read the {what} (PEM certificates): {e}",
            path.display()
        ))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(bad(&"no CERTIFICATE section found"));
    }
    Ok(certs)
}

/// The user name a client certificate stands for: its subject Common Name, or when it has none,
/// its first subjectAltName that is text (DNS name, e-mail or URI). Written for hostile input:
/// every length is checked, and anything unexpected gives `None`.
pub fn certificate_identity(cert: &[u8]) -> Option<String> {
    let (cert_body, _) = der_take(cert, 0x30)?;
    let (mut tbs, _) = der_take(cert_body, 0x30)?;
    // Optional [0] version, then serial, signature algorithm, issuer, validity, subject.
    if tbs.first() == Some(&0xa0) {
        tbs = der_take(tbs, 0xa0)?.1;
    }
    for tag in [0x02, 0x30, 0x30, 0x30] {
        tbs = der_take(tbs, tag)?.1;
    }
    let (subject, rest) = der_take(tbs, 0x30)?;
    common_name(subject).or_else(|| first_text_san(rest))
}

/// The CN in a Name: SEQUENCE OF SET OF AttributeTypeAndValue { OID, value }.
fn common_name(mut subject: &[u8]) -> Option<String> {
    while !subject.is_empty() {
        let (mut set, rest) = der_take(subject, 0x31)?;
        subject = rest;
        while !set.is_empty() {
            let (atv, rest) = der_take(set, 0x30)?;
            set = rest;
            let (oid, value) = der_take(atv, 0x06)?;
            if oid != [0x55, 0x04, 0x03] {
                continue;
            }
            let tag = *value.first()?;
            let (text, _) = der_take(value, tag)?;
            // UTF8String, PrintableString, IA5String; T61String only when it is ASCII.
            return match tag {
                0x0c | 0x13 | 0x16 => text_of(text),
                0x14 if text.is_ascii() => text_of(text),
                _ => None,
            };
        }
    }
    None
}

/// The first dNSName, rfc822Name or URI of the subjectAltName extension. `rest` is what follows
/// the subject in the TBSCertificate: subjectPublicKeyInfo, optional unique ids, [3] extensions.
fn first_text_san(rest: &[u8]) -> Option<String> {
    let (_, mut rest) = der_take(rest, 0x30)?;
    for optional in [0x81, 0x82] {
        if rest.first() == Some(&optional) {
            rest = der_take(rest, optional)?.1;
        }
    }
    let (extensions, _) = der_take(rest, 0xa3)?;
    let (mut list, _) = der_take(extensions, 0x30)?;
    while !list.is_empty() {
        let (ext, next) = der_take(list, 0x30)?;
        list = next;
        let (oid, mut body) = der_take(ext, 0x06)?;
        if oid != [0x55, 0x1d, 0x11] {
            continue;
        }
        if body.first() == Some(&0x01) {
            body = der_take(body, 0x01)?.1; // critical flag
        }
        let (octets, _) = der_take(body, 0x04)?;
        let (mut names, _) = der_take(octets, 0x30)?;
        while let Some(&tag) = names.first() {
            let (value, next) = der_take(names, tag)?;
            names = next;
            if matches!(tag, 0x81 | 0x82 | 0x86) {
                return text_of(value);
            }
        }
        return None;
    }
    None
}

/// Non-empty UTF-8 text.
fn text_of(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// Splits one DER element with tag `tag` off the front of `input`: (its contents, the rest).
fn der_take(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_reader_refuses_truncated_and_odd_input() {
        assert_eq!(der_take(&[], 0x30), None);
        assert_eq!(der_take(&[0x30], 0x30), None);
        assert_eq!(der_take(&[0x30, 0x05, 1, 2], 0x30), None);
        assert_eq!(der_take(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], 0x30), None);
        assert_eq!(der_take(&[0x30, 0x80], 0x30), None);
        assert_eq!(
            der_take(&[0x30, 0x81, 0x01, 9, 8], 0x30),
            Some((&[9u8][..], &[8u8][..]))
        );
        for n in 0..64u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0x30).collect();
            let _ = certificate_identity(&junk);
        }
    }
}
