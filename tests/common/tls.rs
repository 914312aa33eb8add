//! TLS helpers for the integration tests: a throwaway PKI made with the `openssl` command (two CAs,
//! server certificates, client certificates signed by each CA) and the harness [`Client`] over
//! rustls.
//!
//! A missing `openssl` fails the test (scripts/test.sh installs it); it never skips. Files go to a
//! fresh directory under `CARGO_TARGET_TMPDIR`. Must not touch: the broker's code paths (the broker
//! is only reached over loopback sockets).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::{Client, ProtocolVersion};

/// Runs `openssl` with `args` in `dir`; panics with its output when it fails or is missing.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "`openssl` is needed to make test certificates but cannot be run ({e}); install \
                 the openssl package (scripts/test.sh does: apt-get install openssl)"
            )
        });
    assert!(
        out.status.success(),
        "openssl {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory of PEM files: CAs `ca` and `other-ca`; `server` (signed by `ca`, for 127.0.0.1,
/// ::1 and localhost) and `server2` (the same names, signed by `other-ca`); client certificates
/// `alice` and `bob` (signed by `ca`), `mallory` (signed by `other-ca`) and `dave` (signed by `ca`,
/// no CN, subjectAltName DNS:dave.example).
pub struct Pki {
    /// Where the files are.
    pub dir: PathBuf,
}

impl Pki {
    /// Makes a fresh PKI (EC P-256 keys; a few tens of milliseconds).
    pub fn generate() -> Pki {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "pki-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("pki dir");
        for ca in ["ca", "other-ca"] {
            openssl(
                &dir,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN=picomq test {ca}"),
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.crt"),
                ],
            );
        }
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n\
             extendedKeyUsage=serverAuth\n",
        )
        .expect("ext file");
        std::fs::write(
            dir.join("client.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .expect("ext file");
        std::fs::write(
            dir.join("san-only.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n\
             subjectAltName=DNS:dave.example,DNS:other.example\n",
        )
        .expect("ext file");
        let leaves = [
            ("server", "ca", "localhost", "server.ext"),
            ("server2", "other-ca", "localhost", "server.ext"),
            ("alice", "ca", "alice", "client.ext"),
            ("bob", "ca", "bob", "client.ext"),
            ("mallory", "other-ca", "mallory", "client.ext"),
            // No CN: its identity is its first subjectAltName.
            ("dave", "ca", "", "san-only.ext"),
        ];
        for (i, (name, ca, cn, ext)) in leaves.into_iter().enumerate() {
            openssl(
                &dir,
                &[
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-subj",
                    &format!("/O=picomq tests/CN={cn}"),
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                ],
            );
            openssl(
                &dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    &format!("{ca}.crt"),
                    "-CAkey",
                    &format!("{ca}.key"),
                    "-set_serial",
                    &(1000 + i).to_string(),
                    "-days",
                    "2",
                    "-extfile",
                    ext,
                    "-out",
                    &format!("{name}.crt"),
                ],
            );
        }
        Pki { dir }
    }

    /// Path of `name` (e.g. `"server.crt"`).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The same as [`Pki::path`], as a string for a config file or a command line.
    pub fn file(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// A client config trusting the CA `ca` (file stem), presenting the certificate `cert` (file
    /// stem) if given, speaking only `versions`.
    pub fn client_config(
        &self,
        ca: &str,
        cert: Option<&str>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(self.path(&format!("{ca}.crt"))).expect("ca") {
            roots.add(c.expect("ca cert")).expect("add ca");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots);
        let config = match cert {
            None => builder.with_no_client_auth(),
            Some(name) => {
                let chain = vec![
                    CertificateDer::from_pem_file(self.path(&format!("{name}.crt")))
                        .expect("client cert"),
                ];
                let key = PrivateKeyDer::from_pem_file(self.path(&format!("{name}.key")))
                    .expect("client key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client auth")
            }
        };
        Arc::new(config)
    }

    /// [`Pki::client_config`] with TLS 1.2 and 1.3.
    pub fn client(&self, ca: &str, cert: Option<&str>) -> Arc<ClientConfig> {
        self.client_config(ca, cert, rustls::ALL_VERSIONS)
    }
}

impl Client {
    /// Opens a TCP connection to a TLS listener; the handshake runs on the first send or
    /// receive. The server name checked is the listener's IP address.
    pub fn tls(addr: SocketAddr, version: ProtocolVersion, config: Arc<ClientConfig>) -> Client {
        let mut c = Client::tcp(addr, version);
        let name = ServerName::IpAddress(addr.ip().into());
        c.tls = Some(Box::new(
            ClientConnection::new(config, name).expect("client connection"),
        ));
        c
    }

    /// Sends DISCONNECT and reads to the end: true when the broker ended the TLS session with a
    /// close_notify (a clean `Ok(0)`), false when the socket just closed or failed.
    pub fn disconnect_expect_close_notify(mut self) -> bool {
        use std::io::Read;
        self.send(&super::Packet::Disconnect(super::Disconnect::default()));
        let tls = self.tls.as_mut().expect("a TLS client");
        let mut stream = rustls::Stream::new(tls.as_mut(), &mut self.stream);
        let mut buf = [0u8; 1024];
        for _ in 0..1000 {
            match stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// The TLS connection's negotiated ALPN protocol and version (after the handshake).
    pub fn tls_info(&self) -> Option<(Option<Vec<u8>>, Option<rustls::ProtocolVersion>)> {
        let tls = self.tls.as_ref()?;
        Some((
            tls.alpn_protocol().map(<[u8]>::to_vec),
            tls.protocol_version(),
        ))
    }
}
