//! The ack gate: acknowledgements that promise storage are held until a later event releases them.
//!
//! When the gate is on, the PUBACK/PUBREC of a QoS 1/2 PUBLISH, the PUBCOMP of a PUBREL and the
//! SUBACK/UNSUBACK of a subscription change get a ticket (one counter per core, growing) and are
//! held in the connection's output ([`crate::session::OutBuf::hold_from`]) together with
//! everything written after them, so no later packet overtakes them. [`Core::release_acks`]
//! releases every hold up to a ticket. Persistence will turn the gate on and release a ticket
//! once the records written while handling that packet are on stable storage; without
//! persistence the gate is off and acknowledgements leave at once, as before.
//!
//! A connection that closes with held acknowledgements never sends them: the client did not get
//! a promise the broker could not keep, so it sends those packets again (QoS 1/2) after it
//! reconnects.
//!
//! Owns: [`AckGate`] and the Core methods around it. Must not touch: what is stored, or sockets.

use super::{queue_flush, Core};

/// The gate's state in one core.
#[derive(Debug, Default)]
pub struct AckGate {
    /// The ticket the next held acknowledgement gets.
    next: u64,
    /// Connections with held output.
    held: Vec<usize>,
}

impl Core {
    /// Turns the ack gate on: from now on, acknowledgements that promise storage wait for
    /// [`Core::release_acks`].
    pub fn enable_ack_gate(&mut self) {
        self.ack_gate.get_or_insert_with(AckGate::default);
    }

    /// The ticket of the last acknowledgement held so far (0 before any).
    pub fn last_ack_ticket(&self) -> u64 {
        self.ack_gate.as_ref().map_or(0, |g| g.next)
    }

    /// Holds connection `id`'s output from `offset` (the acknowledgement just written) on.
    pub(super) fn hold_ack(&mut self, id: usize, offset: usize) {
        let (Some(gate), Some(conn)) = (self.ack_gate.as_mut(), self.conns.get_mut(id)) else {
            return;
        };
        gate.next += 1;
        let had_holds = conn.out.wire.has_holds();
        conn.out.wire.hold_from(offset, gate.next);
        if !had_holds {
            gate.held.push(id);
        }
    }

    /// Releases every acknowledgement held with a ticket up to `ticket`: they (and what queued
    /// behind them) go out on the next flush.
    pub fn release_acks(&mut self, ticket: u64) {
        let Some(gate) = self.ack_gate.as_mut() else {
            return;
        };
        let conns = &mut self.conns;
        let dirty = &mut self.out.dirty;
        gate.held.retain(|&id| {
            let Some(conn) = conns.get_mut(id) else {
                return false;
            };
            if conn.out.wire.release_through(ticket) {
                queue_flush(conn, id, dirty);
            }
            conn.out.wire.has_holds()
        });
    }
}

#[cfg(test)]
mod tests {
    use std::io::IoSlice;
    use std::sync::Arc;
    use std::time::Instant;

    use bytes::{Bytes, BytesMut};

    use super::super::sys_stats::SysShared;
    use super::super::{Core, Listener, Shared};
    use crate::auth::Authenticator;
    use crate::config::{Config, ListenerConfig, SharedStrategy};
    use crate::protocol::decode::decode_packet;
    use crate::protocol::encode::encode_packet;
    use crate::protocol::{
        Connect, Packet, Properties, ProtocolVersion, Publish, QoS, Subscribe, SubscriptionOptions,
    };
    use crate::router::retained_limit::RetainedBudget;
    use crate::router::shard::Shard;

    const V5: ProtocolVersion = ProtocolVersion::V5;

    /// One core with one shard and one listener, no thread and no socket.
    fn core() -> (Core, Arc<Listener>) {
        let cfg = Arc::new(Config::default());
        let auth = Arc::new(Authenticator::load(&cfg.auth).expect("no files"));
        let listener = Arc::new(Listener::new(0, ListenerConfig::default(), auth.clone()));
        let shared = Arc::new(Shared::new(cfg, auth, vec![listener.clone()], 1));
        let budget = Arc::new(RetainedBudget::unlimited());
        let sys = Arc::new(SysShared::new(1, budget));
        let shard = Shard::new(SharedStrategy::RoundRobin);
        let core = Core::new(0, shared, sys, 1, vec![(0, shard)], Instant::now());
        (core, listener)
    }

    fn send(core: &mut Core, id: usize, packet: &Packet, now: Instant) {
        let conn = core.conns.get_mut(id).expect("open");
        encode_packet(packet, V5, &mut conn.rbuf);
        core.input(id, now);
        core.run_router();
    }

    /// The packets connection `id` may write now (its writable bytes, taken as a socket would).
    fn written(core: &mut Core, id: usize) -> Vec<Packet> {
        let wire = &mut core.conns.get_mut(id).expect("open").out.wire;
        let mut bytes = BytesMut::new();
        loop {
            let mut slices = [IoSlice::new(&[]); 16];
            let n = wire.io_slices(&mut slices);
            if n == 0 {
                break;
            }
            let mut taken = 0;
            for s in &slices[..n] {
                bytes.extend_from_slice(s);
                taken += s.len();
            }
            wire.consume(taken);
        }
        let mut packets = Vec::new();
        while let Some(p) = decode_packet(&mut bytes, Some(V5), u32::MAX).expect("valid") {
            packets.push(p);
        }
        packets
    }

    fn connect(core: &mut Core, id: usize, listener: &Arc<Listener>, cid: &str, now: Instant) {
        core.open(id, listener.clone(), now);
        let c = Connect {
            protocol: V5,
            clean_start: true,
            keep_alive: 60,
            client_id: cid.to_owned(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        };
        send(core, id, &Packet::Connect(Box::new(c)), now);
    }

    #[test]
    fn held_acks_wait_for_their_ticket_and_nothing_overtakes_them() {
        let (mut core, listener) = core();
        core.enable_ack_gate();
        let now = Instant::now();
        connect(&mut core, 1, &listener, "sub", now);
        connect(&mut core, 2, &listener, "pub", now);
        assert!(matches!(written(&mut core, 1)[..], [Packet::ConnAck(_)]));
        assert!(matches!(written(&mut core, 2)[..], [Packet::ConnAck(_)]));

        let sub = Subscribe {
            packet_id: 1,
            filters: vec![(
                "t".into(),
                SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    ..SubscriptionOptions::default()
                },
            )],
            properties: Properties::default(),
        };
        send(&mut core, 1, &Packet::Subscribe(sub), now);
        assert!(written(&mut core, 1).is_empty(), "SUBACK held");
        let suback_ticket = core.last_ack_ticket();

        let publish = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "t".into(),
            packet_id: Some(7),
            properties: Properties::default(),
            payload: Bytes::from_static(b"x"),
        };
        send(&mut core, 2, &Packet::Publish(publish), now);
        assert!(written(&mut core, 2).is_empty(), "PUBACK held");
        let puback_ticket = core.last_ack_ticket();
        assert!(puback_ticket > suback_ticket);
        // The message was routed (accepted) but queues behind the held SUBACK.
        assert!(
            written(&mut core, 1).is_empty(),
            "delivery waits behind the SUBACK"
        );

        core.release_acks(suback_ticket);
        let got = written(&mut core, 1);
        assert!(
            matches!(got[..], [Packet::SubAck(_), Packet::Publish(_)]),
            "{got:?}"
        );
        assert!(written(&mut core, 2).is_empty(), "later ticket still held");
        core.release_acks(puback_ticket);
        assert!(matches!(written(&mut core, 2)[..], [Packet::PubAck(_)]));
    }

    #[test]
    fn without_the_gate_acks_leave_at_once() {
        let (mut core, listener) = core();
        let now = Instant::now();
        connect(&mut core, 1, &listener, "c", now);
        written(&mut core, 1);
        let publish = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "t".into(),
            packet_id: Some(1),
            properties: Properties::default(),
            payload: Bytes::from_static(b"x"),
        };
        send(&mut core, 1, &Packet::Publish(publish), now);
        assert!(matches!(written(&mut core, 1)[..], [Packet::PubAck(_)]));
        assert_eq!(core.last_ack_ticket(), 0);
    }
}
