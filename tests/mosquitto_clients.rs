//! Interoperability with real clients: `mosquitto_pub` and `mosquitto_sub` (MQTT 3.1.1 and 5.0)
//! against an in-process broker on a loopback port. Covers publish/subscribe at QoS 0, 1 and 2
//! (the QoS of each PUBLISH read from the clients' debug output), retained messages (`-r`, and
//! `-r -n` to delete), a will published when a `mosquitto_sub` is killed, and a persistent session
//! (`-c -i id`) receiving messages queued while it was offline.
//!
//! A missing tool fails the test with a message saying how to install it (scripts/test.sh does).
//! `stdbuf` (coreutils) is used to make the clients' output line-buffered.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use picomq::protocol::{ProtocolVersion, QoS};

const PROTOCOLS: [&str; 2] = ["mqttv311", "mqttv5"];

/// Fails (never skips) when a mosquitto client is not installed.
fn require(tool: &str) {
    if let Err(e) = Command::new(tool).arg("--help").output() {
        panic!(
            "`{tool}` is needed by this test but cannot be run ({e}); install the \
             mosquitto-clients package (scripts/test.sh does: apt-get install mosquitto-clients)"
        );
    }
}

/// A running mosquitto client whose output lines (stdout and stderr) are collected by threads.
struct Proc {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn spawn(tool: &str, addr: std::net::SocketAddr, args: &[&str]) -> Proc {
        require(tool);
        let port = addr.port().to_string();
        let mut all = vec!["-h", "127.0.0.1", "-p", port.as_str(), "-d"];
        all.extend_from_slice(args);
        // stdout is a pipe, so the client's stdio would buffer it until exit; stdbuf (coreutils)
        // makes it line-buffered so "received SUBACK" can be seen while the client runs.
        require("stdbuf");
        let mut child = Command::new("stdbuf")
            .arg("-oL")
            .arg(tool)
            .args(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {tool}: {e}"));
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let tx2 = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(line);
            }
        });
        Proc {
            name: format!("{tool} {}", all.join(" ")),
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits (at most `timeout`) for an output line containing `needle`.
    fn wait_line(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        if self.seen.iter().any(|l| l.contains(needle)) {
            return;
        }
        for _ in 0..10_000 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "{}: no line containing {needle:?} within {timeout:?}; output so far:\n{}",
            self.name,
            self.seen.join("\n")
        );
    }

    /// Waits (at most `timeout`) for the process to exit and returns its output lines; fails on a
    /// non-zero exit status.
    fn finish(mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut status = None;
        for _ in 0..10_000 {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                status = Some(s);
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let Some(status) = status else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "{}: still running after {timeout:?}; output:\n{}",
                self.name,
                self.seen.join("\n")
            );
        };
        // The output threads end at EOF, shortly after exit.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(line);
        }
        let lines = std::mem::take(&mut self.seen);
        assert!(
            status.success(),
            "{}: exit status {status}; output:\n{}",
            self.name,
            lines.join("\n")
        );
        lines
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `mosquitto_pub` to completion and returns its output lines.
fn mosquitto_pub(addr: std::net::SocketAddr, args: &[&str]) -> Vec<String> {
    Proc::spawn("mosquitto_pub", addr, args).finish(Duration::from_secs(10))
}

/// Lines that are messages (`-v`: "topic payload"), not debug output.
fn messages(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed"))
        .collect()
}

/// The "d0, q1, r0" part of each "received PUBLISH (d0, q1, r0, m1, ..." debug line.
fn received_publish_flags(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.split_once("received PUBLISH (").map(|(_, r)| r))
        .map(|r| r.split(", ").take(3).collect::<Vec<_>>().join(", "))
        .collect()
}

const SUBSCRIBED: &str = "received SUBACK";
const SOON: Duration = Duration::from_secs(10);

#[test]
fn mosquitto_pub_sub_qos_0_1_2_v311_and_v5() {
    with_deadline(Duration::from_secs(60), || {
        let b = TestBroker::start();
        for proto in PROTOCOLS {
            for q in 0..=2u8 {
                let topic = format!("it/{proto}/q{q}");
                let payload = format!("hello {proto} q{q}");
                let qs = q.to_string();
                let mut sub = Proc::spawn(
                    "mosquitto_sub",
                    b.addr,
                    &[
                        "-V", proto, "-t", &topic, "-q", &qs, "-C", "1", "-v", "-W", "10",
                    ],
                );
                sub.wait_line(SUBSCRIBED, SOON);
                let pub_out = mosquitto_pub(
                    b.addr,
                    &["-V", proto, "-t", &topic, "-q", &qs, "-m", &payload],
                );
                let acks: &[&str] = match q {
                    0 => &[],
                    1 => &["received PUBACK"],
                    _ => &["received PUBREC", "received PUBCOMP"],
                };
                for ack in acks {
                    assert!(
                        pub_out.iter().any(|l| l.contains(ack)),
                        "{proto} q{q}: publisher never got {ack}:\n{}",
                        pub_out.join("\n")
                    );
                }
                let lines = sub.finish(SOON);
                assert_eq!(messages(&lines), vec![format!("{topic} {payload}")]);
                assert_eq!(
                    received_publish_flags(&lines),
                    vec![format!("d0, q{q}, r0")],
                    "{proto}: PUBLISH flags seen by mosquitto_sub"
                );
            }
        }
    });
}

#[test]
fn mosquitto_retained_message_and_its_deletion() {
    with_deadline(Duration::from_secs(60), || {
        let b = TestBroker::start();
        for proto in PROTOCOLS {
            let topic = format!("it/{proto}/ret");
            let marker = format!("it/{proto}/ret-marker");
            mosquitto_pub(
                b.addr,
                &["-V", proto, "-t", &topic, "-q", "1", "-r", "-m", "kept"],
            );
            let lines = Proc::spawn(
                "mosquitto_sub",
                b.addr,
                &[
                    "-V", proto, "-t", &topic, "-q", "1", "-C", "1", "-v", "-W", "10",
                ],
            )
            .finish(SOON);
            assert_eq!(messages(&lines), vec![format!("{topic} kept")]);
            assert_eq!(received_publish_flags(&lines), vec!["d0, q1, r1"]);
            // Delete it with an empty retained message; a second retained topic proves the
            // subscriber was served (retained messages come in filter order).
            mosquitto_pub(b.addr, &["-V", proto, "-t", &topic, "-r", "-n"]);
            mosquitto_pub(b.addr, &["-V", proto, "-t", &marker, "-r", "-m", "marker"]);
            let lines = Proc::spawn(
                "mosquitto_sub",
                b.addr,
                &[
                    "-V", proto, "-t", &topic, "-t", &marker, "-C", "1", "-v", "-W", "10",
                ],
            )
            .finish(SOON);
            assert_eq!(messages(&lines), vec![format!("{marker} marker")]);
        }
    });
}

#[test]
fn mosquitto_sub_killed_its_will_is_published() {
    with_deadline(Duration::from_secs(60), || {
        let b = TestBroker::start();
        for (proto, version) in [
            ("mqttv311", ProtocolVersion::V311),
            ("mqttv5", ProtocolVersion::V5),
        ] {
            let will_topic = format!("it/{proto}/will");
            let mut watcher = Client::connect(b.addr, version, &format!("watch-{proto}"));
            watcher.sub_ok(1, &will_topic, QoS::ExactlyOnce);
            let mut sub = Proc::spawn(
                "mosquitto_sub",
                b.addr,
                &[
                    "-V",
                    proto,
                    "-t",
                    "it/nothing",
                    "--will-topic",
                    &will_topic,
                    "--will-payload",
                    "killed",
                    "--will-qos",
                    "1",
                ],
            );
            sub.wait_line(SUBSCRIBED, SOON);
            watcher.expect_nothing(QUIET);
            sub.child.kill().expect("kill mosquitto_sub");
            let p = watcher.expect_publish_acked();
            assert_publish(&p, &will_topic, b"killed", QoS::AtLeastOnce);
        }
    });
}

#[test]
fn mosquitto_sub_persistent_session_gets_messages_queued_while_offline() {
    with_deadline(Duration::from_secs(60), || {
        let b = TestBroker::start();
        for proto in PROTOCOLS {
            let id = format!("persist-{proto}");
            let topic = format!("it/{proto}/persist");
            // Subscribe with a persistent session, then exit once the SUBACK is in.
            Proc::spawn(
                "mosquitto_sub",
                b.addr,
                &["-V", proto, "-c", "-i", &id, "-q", "1", "-t", &topic, "-E"],
            )
            .finish(SOON);
            // QoS 0 while offline is dropped: had it been queued, it would come first.
            mosquitto_pub(
                b.addr,
                &["-V", proto, "-t", &topic, "-q", "0", "-m", "dropped"],
            );
            for m in ["queued-1", "queued-2", "queued-3"] {
                mosquitto_pub(b.addr, &["-V", proto, "-t", &topic, "-q", "1", "-m", m]);
            }
            let lines = Proc::spawn(
                "mosquitto_sub",
                b.addr,
                &[
                    "-V", proto, "-c", "-i", &id, "-q", "1", "-t", &topic, "-C", "3", "-v", "-W",
                    "10",
                ],
            )
            .finish(SOON);
            assert_eq!(
                messages(&lines),
                vec![
                    format!("{topic} queued-1"),
                    format!("{topic} queued-2"),
                    format!("{topic} queued-3"),
                ],
                "{proto}: queued messages in order"
            );
        }
    });
}
