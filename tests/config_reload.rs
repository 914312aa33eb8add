//! SIGHUP re-reads the whole config file of a running `picomq` process (the real binary, real
//! signal): listeners added and removed (clients of a removed one get v5 DISCONNECT 0x8B, those of
//! a kept one stay up), limits and the log level take effect, a restart-only key is logged and
//! keeps its value, and a file with an error is refused whole (logged with file:line:key) while
//! the running configuration goes on.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use picomq::protocol::{Packet, ProtocolVersion, ReasonCode};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// A `picomq -c FILE` process whose log goes to a file; killed on drop.
struct Proc {
    child: Child,
    log: PathBuf,
    dir: PathBuf,
}

impl Proc {
    fn start(dir: &Path, conf: &str, wait_for: SocketAddr) -> Proc {
        std::fs::create_dir_all(dir).expect("temp dir");
        let path = dir.join("picomq.toml");
        std::fs::write(&path, conf).expect("write config");
        let log = dir.join("picomq.log");
        let child = Command::new(env!("CARGO_BIN_EXE_picomq"))
            .arg("-c")
            .arg(&path)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("picomq starts");
        let p = Proc {
            child,
            log,
            dir: dir.to_path_buf(),
        };
        p.wait_listening(wait_for);
        p
    }

    fn wait_listening(&self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "{addr} never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes a new config and sends SIGHUP, then waits for the log line that ends the reload.
    fn reload(&self, conf: &str) {
        let before = self.log_text().matches("SIGHUP: password").count();
        std::fs::write(self.dir.join("picomq.toml"), conf).expect("write config");
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        self.wait_log(|t| t.matches("SIGHUP: password").count() > before);
    }

    fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    fn wait_log(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.log_text();
            if done(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "log never matched:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("picomq-reload-{tag}-{}", std::process::id()))
}

fn listener(port: u16) -> String {
    format!("[[listener]]\nbind = \"127.0.0.1:{port}\"\n")
}

#[test]
fn sighup_adds_and_removes_listeners_keeping_clients_of_kept_ones() {
    with_deadline(Duration::from_secs(60), || {
        let (a, b) = (free_port(), free_port());
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let base = "[server]\nio_threads = 2\n";
        let p = Proc::start(
            &temp_dir("listeners"),
            &format!("{base}{}", listener(a)),
            addr(a),
        );
        let mut kept = Client::connect_v5_ok(addr(a), "kept", true, 60);
        p.reload(&format!("{base}{}{}", listener(a), listener(b)));
        p.wait_listening(addr(b));
        let mut moved = Client::connect_v5_ok(addr(b), "on-b", true, 60);
        let mut old311 = Client::connect_v311(addr(b), "on-b-311", true, 60);
        kept.ping();

        // Remove a: its client gets DISCONNECT 0x8B; b's clients stay.
        p.reload(&format!("{base}{}", listener(b)));
        match kept.expect_packet() {
            Packet::Disconnect(d) => assert_eq!(d.reason, ReasonCode::SERVER_SHUTTING_DOWN),
            other => panic!("expected DISCONNECT 0x8B, got {other:?}"),
        }
        kept.expect_closed();
        moved.ping();
        old311.ping();
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(addr(a)).is_ok() {
            assert!(Instant::now() < deadline, "removed listener still accepts");
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = p.log_text();
        assert!(text.contains("SIGHUP: configuration reloaded"), "{text}");
    });
}

#[test]
fn sighup_applies_limits_and_log_level_and_keeps_restart_only_keys() {
    with_deadline(Duration::from_secs(60), || {
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let first = format!("[server]\nio_threads = 1\n{}", listener(port));
        let p = Proc::start(&temp_dir("limits"), &first, addr);
        let (_c, ack) = Client::connect_v5(addr, "before", true, 60, Default::default());
        assert_eq!(ack.properties.maximum_packet_size, Some(1_048_576));
        assert!(!p.log_text().contains("client before connected"));

        let second = format!(
            "[log]\nlevel = \"debug\"\n[server]\nio_threads = 3\n[mqtt]\nmax_packet_size = \
             \"64KiB\"\n{}",
            listener(port)
        );
        p.reload(&second);
        let text = p.log_text();
        assert!(
            text.contains("server.io_threads: cannot change while running (1 -> 3)"),
            "{text}"
        );
        let (_c, ack) = Client::connect_v5(addr, "after", true, 60, Default::default());
        assert_eq!(ack.properties.maximum_packet_size, Some(65_536));
        // Debug lines now reach the log.
        p.wait_log(|t| t.contains("client after connected"));
    });
}

#[test]
fn sighup_with_a_bad_file_keeps_the_running_configuration() {
    with_deadline(Duration::from_secs(60), || {
        let (a, b) = (free_port(), free_port());
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let first = listener(a);
        let p = Proc::start(&temp_dir("bad"), &first, addr(a));
        let mut c = Client::connect_v5_ok(addr(a), "stays", true, 60);
        // A second listener and a bad key: refused whole, so b never opens and a stays.
        let bad = format!("{}{}[mqtt]\nmax_qos = 7\n", listener(a), listener(b));
        p.reload(&bad);
        let text = p.log_text();
        assert!(
            text.contains("configuration not reloaded, running one kept")
                && text.contains("picomq.toml:")
                && text.contains("mqtt.max_qos"),
            "{text}"
        );
        assert!(std::net::TcpStream::connect(addr(b)).is_err());
        c.ping();
        // A listener that cannot bind (the port is taken) is refused whole too.
        let taken = TcpListener::bind(addr(b)).expect("take b");
        let unbindable = format!("{}{}[mqtt]\nmax_qos = 1\n", listener(a), listener(b));
        p.reload(&unbindable);
        let text = p.log_text();
        assert!(
            text.contains(&format!("cannot listen on 127.0.0.1:{b}")),
            "{text}"
        );
        drop(taken);
        let (_c2, ack) = Client::connect_v5(addr(a), "qos", true, 60, Default::default());
        assert_eq!(
            ack.properties.maximum_qos, None,
            "max_qos 1 was not applied"
        );
        let _ = V5;
    });
}
