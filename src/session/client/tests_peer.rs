//! The client session against picomq's own server-side [`Session`], both in memory with one
//! virtual clock: the two halves of the protocol must agree without a scripted middleman.
//!
//! Owns: tests only. Bytes cross between the two as they would over a socket: the client's
//! `OutBuf` is decoded by the server side's decoder, the server's output is fed to
//! `handle_bytes`. Router actions are inspected, not routed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::auth::ClientAcl;
use crate::config::MqttConfig;
use crate::message::{Message, SessionRef, SubIds};
use crate::protocol::decode::decode_packet;
use crate::protocol::SubscriptionOptions;
use crate::session::outbound::Queued;
use crate::session::state::{Action, Output, Session};

const ME: SessionRef = SessionRef {
    thread: 0,
    slot: 7,
    generation: 0,
};

struct Pair {
    client: ClientSession,
    c_out: OutBuf,
    server: Session,
    s_out: Output,
    cfg: MqttConfig,
    now: Instant,
    v: ProtocolVersion,
}

impl Pair {
    fn new(v: ProtocolVersion) -> Pair {
        let mut c = ClientConfig::new(v, "bridge-1");
        c.keep_alive = 10;
        c.subscriptions = vec![Subscription {
            filter: "cmd/#".into(),
            options: SubscriptionOptions {
                qos: QoS::ExactlyOnce,
                ..SubscriptionOptions::default()
            },
        }];
        Pair {
            client: ClientSession::new(c).expect("valid"),
            c_out: OutBuf::new(),
            server: Session::new("bridge-1".into(), ME),
            s_out: Output::default(),
            cfg: MqttConfig::default(),
            now: Instant::now(),
            v,
        }
    }

    /// Moves bytes both ways until neither side has anything more to say.
    fn settle(&mut self) {
        for _ in 0..16 {
            let mut up = self.c_out.take_all();
            let mut down = self.s_out.wire.take_all();
            if up.is_empty() && down.is_empty() {
                return;
            }
            self.feed_server(&mut up);
            self.client
                .handle_bytes(&mut down, self.now, &mut self.c_out);
        }
        panic!("the two sides keep talking");
    }

    fn feed_server(&mut self, up: &mut BytesMut) {
        while let Some(p) = decode_packet(up, Some(self.v), u32::MAX).expect("client output") {
            match p {
                Packet::Connect(c) => self.server.attach(
                    &c,
                    false,
                    false,
                    ClientAcl::allow_all(),
                    &self.cfg,
                    self.now,
                    &mut self.s_out,
                ),
                other => self
                    .server
                    .handle(other, &self.cfg, self.now, &mut self.s_out),
            }
        }
    }

    fn events(&mut self) -> Vec<ClientEvent> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }

    fn actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.s_out.actions)
    }
}

#[test]
fn connect_subscribe_publish_both_ways_against_the_server_session() {
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut pair = Pair::new(v);
        pair.client.start(pair.now, &mut pair.c_out);
        pair.settle();
        let events = pair.events();
        assert!(
            matches!(
                events[0],
                ClientEvent::Connected {
                    session_present: false,
                    ..
                }
            ),
            "{v:?}: {events:?}"
        );
        assert!(events.contains(&ClientEvent::Subscribed {
            filter: "cmd/#".into(),
            result: Ok(QoS::ExactlyOnce),
        }));
        assert!(pair
            .actions()
            .iter()
            .any(|a| matches!(a, Action::Subscribe { filter, .. } if &**filter == "cmd/#")));

        // Upstream QoS 2: routed by the server once, delivered to us after PUBCOMP.
        let msg = OutMessage::new(
            "tele/1",
            Bytes::from_static(b"21C"),
            QoS::ExactlyOnce,
            Token(1),
        );
        pair.client
            .publish(msg, pair.now, &mut pair.c_out)
            .expect("accepted");
        pair.settle();
        assert_eq!(pair.events(), vec![ClientEvent::Delivered(Token(1))]);
        let routed = pair
            .actions()
            .into_iter()
            .filter(|a| matches!(a, Action::Publish(m) if &*m.topic == "tele/1"))
            .count();
        assert_eq!(routed, 1, "{v:?}");

        // Downstream QoS 2 from the server's router: one Message, full handshake.
        let m = Message::new(
            "cmd/reboot".into(),
            Bytes::from_static(b"now"),
            QoS::ExactlyOnce,
            false,
            Properties::default(),
            None,
            None,
        );
        let item = Queued {
            msg: Arc::new(m),
            qos: QoS::ExactlyOnce,
            retain: false,
            sub_ids: SubIds::None,
            shared: None,
        };
        pair.server
            .deliver(item, &pair.cfg, pair.now, &mut pair.s_out);
        pair.settle();
        let events = pair.events();
        assert!(
            matches!(&events[..], [ClientEvent::Message(p)] if p.topic == "cmd/reboot"),
            "{events:?}"
        );
        assert_eq!(
            pair.server.outbound().inflight(),
            0,
            "PUBCOMP reached the server"
        );

        // Keep-alive: the server answers our PINGREQ; the link stays up.
        pair.now += Duration::from_secs(10);
        pair.client.on_tick(pair.now, &mut pair.c_out);
        pair.settle();
        pair.now += Duration::from_secs(5);
        pair.client.on_tick(pair.now, &mut pair.c_out);
        assert!(pair.events().is_empty() && pair.client.is_connected());
    }
}
