//! The broker-opened connection seam (what bridges will use), against a real upstream Mosquitto
//! started on a free loopback port: picomq dials it with a client-side session, messages
//! published upstream on the link's subscription reach a local subscriber, local messages on a
//! forwarded filter reach an upstream subscriber (mosquitto_sub), nothing loops back, and after
//! the upstream broker is killed (SIGKILL) and started again the link dials again by itself.
//! A missing Mosquitto fails the test (scripts/test.sh installs it), it never skips.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use picomq::broker::dialled::DialSpec;
use picomq::protocol::{ProtocolVersion, QoS, SubscriptionOptions};
use picomq::session::client::{ClientConfig, Subscription};

/// A Mosquitto on `port`, anonymous, no persistence; killed (SIGKILL) on drop.
struct Upstream {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Upstream {
    fn start(dir: PathBuf, port: u16) -> Upstream {
        std::fs::create_dir_all(&dir).expect("dir");
        let text = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\npersistence false\n"
        );
        let child = spawn_mosquitto(&dir, &text, port);
        Upstream { child, port, dir }
    }

    fn publish(&self, topic: &str, payload: &str) {
        let status = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-t", topic, "-m", payload, "-q", "1"])
            .status()
            .expect("mosquitto_pub runs (Debian package mosquitto-clients)");
        assert!(status.success());
    }

    /// A mosquitto_sub waiting for one message on `filter` (at most 10 s).
    fn subscribe_one(&self, filter: &str) -> Child {
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-t", filter, "-q", "1", "-C", "1", "-W", "10"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("mosquitto_sub runs (Debian package mosquitto-clients)")
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Publishes upstream until the local subscriber gets it: the link may still be dialling.
fn until_received(up: &Upstream, local: &mut Client, topic: &str, payload: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        up.publish(topic, payload);
        if let Recv::Packet(picomq::protocol::Packet::Publish(p)) =
            local.recv(Duration::from_millis(500))
        {
            assert_eq!(&*p.topic, topic);
            assert_eq!(&p.payload[..], payload.as_bytes());
            local.ack(&p);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} never came over the link"
        );
    }
}

#[test]
fn a_dialled_link_carries_messages_both_ways_and_redials_after_the_upstream_restarts() {
    with_deadline(Duration::from_secs(60), || {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("picomq-dial-{}", std::process::id()));
        let up = Upstream::start(dir.clone(), port);
        let b = TestBroker::start();
        let mut client = ClientConfig::new(ProtocolVersion::V311, "picomq-link-test");
        client.keep_alive = 5;
        client.subscriptions = vec![Subscription {
            filter: "down/#".into(),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..SubscriptionOptions::default()
            },
        }];
        b.dial(DialSpec {
            name: "upstream".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            client,
            forward: vec![("up/#".into(), QoS::AtLeastOnce)],
        });
        let mut local = Client::connect(b.addr, ProtocolVersion::V5, "local-sub");
        local.sub_ok(1, "down/#", QoS::AtLeastOnce);
        until_received(&up, &mut local, "down/a", "from upstream");

        // Local -> upstream.
        let mut upstream_sub = up.subscribe_one("up/#");
        std::thread::sleep(Duration::from_millis(300)); // let mosquitto_sub subscribe
        let mut p = Client::connect(b.addr, ProtocolVersion::V311, "local-pub");
        p.publish("up/b", b"from the edge", QoS::AtLeastOnce, false, 1);
        let out = std::mem::replace(&mut upstream_sub, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .expect("mosquitto_sub ends");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "from the edge");
        let _ = upstream_sub.wait();

        // Upstream dies hard and comes back on the same port: the link dials again.
        drop(up);
        let up = Upstream::start(dir, port);
        until_received(&up, &mut local, "down/c", "after restart");
        local.expect_nothing(Duration::from_millis(300));
    });
}
