//! The core's input path: decode a connection's buffered bytes into packets, charge publishes to
//! the client's rate, and hand each packet to the CONNECT flow or the attached session.
//!
//! Owns: [`Core::input`] and what it calls. Must not touch: sockets (the I/O layer filled the
//! buffer), session rules (in `session`) or what happens to the session's actions
//! (`actions.rs`).

use std::time::Instant;

use crate::config::RateLimitPolicy;
use crate::protocol::decode::{decode_packet_limited, PropLimits};
use crate::protocol::{Packet, ProtocolVersion, ReasonCode};
use crate::session::connect::{peek_protocol_level, write_refusal};

use super::conn::Phase;
use super::{queue_flush, session_rate, Core};

impl Core {
    /// Handles every complete packet in connection `id`'s read buffer (the I/O layer appended
    /// what it read), then frees the buffer if it is empty.
    pub fn input(&mut self, id: usize, now: Instant) {
        self.now = now;
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if let Phase::Closing { .. } = conn.phase {
            // Lingering close: input is discarded until the peer closes.
            conn.rbuf.clear();
            return;
        }
        self.decode_input(id);
        if let Some(conn) = self.conns.get_mut(id) {
            conn.shrink();
        }
    }

    fn decode_input(&mut self, id: usize) {
        let mqtt = &self.cfg.mqtt;
        let max = mqtt.max_packet_size;
        let limits = PropLimits {
            max_user_properties: mqtt.limits.max_user_properties,
            max_size: mqtt.limits.max_properties_size,
        };
        let throttle = mqtt.limits.rate_limit_policy == RateLimitPolicy::Throttle;
        loop {
            let Some(conn) = self.conns.get_mut(id) else {
                return;
            };
            if let Phase::Closing { .. } = conn.phase {
                return;
            }
            if conn.throttled_until.is_some() {
                return;
            }
            let publish_next = conn.rbuf.first().is_some_and(|b| b >> 4 == 3);
            if publish_next && (self.congested || self.backlog) {
                // Back-pressure: the router cannot take more now (or other threads' commands
                // are still queued here); this publisher waits, its bytes in the socket.
                if !conn.router_paused {
                    conn.router_paused = true;
                    self.paused_publishers.push(id);
                }
                return;
            }
            if let Phase::Attached { slot } = conn.phase {
                // A PUBLISH waiting behind a debt is not read yet: pause again (each pause is
                // capped, so a large debt is paid in several).
                if publish_next && throttle {
                    if let Some(s) = self.sessions.get_mut(slot as usize) {
                        let pause =
                            session_rate(&mut s.session, &mut self.rate_debts).pause(self.now);
                        if !pause.is_zero() {
                            conn.throttled_until = Some(self.now + pause);
                            return self.arm_conn(id);
                        }
                    }
                }
            }
            let level = match conn.version {
                None => peek_protocol_level(&conn.rbuf),
                Some(_) => None,
            };
            let before = conn.rbuf.len();
            match decode_packet_limited(&mut conn.rbuf, conn.version, max, limits) {
                Ok(None) => {
                    if !conn.rbuf.is_empty() && conn.partial_since.is_none() {
                        conn.partial_since = Some(self.now);
                        self.arm_conn(id);
                    }
                    return;
                }
                Ok(Some(packet)) => {
                    conn.partial_since = None;
                    let len = before - conn.rbuf.len();
                    self.stats.packet_in(&packet);
                    if !matches!(packet, Packet::Publish(_)) || self.within_rate(id, len) {
                        self.on_packet(id, packet);
                    }
                }
                Err(e) => return self.on_decode_error(id, e, level),
            }
            self.run_actions(id);
        }
    }

    /// Charges a PUBLISH of `len` bytes to the rate limit of the client attached to connection
    /// `id` (the state is its session's, so it survives reconnects and takeovers). Over the rate,
    /// the throttle policy stops reading the connection until its budget is back (the packet
    /// itself is handled) and the disconnect policy drops the client with 0x96 (the packet is not
    /// handled, so nothing unacknowledged is lost). Before the client is attached nothing is
    /// charged: a PUBLISH then (after a CONNECT, during enhanced authentication; a PUBLISH as the
    /// very first packet never decodes) goes on to be refused as the protocol error it is.
    /// Returns whether to handle the packet.
    fn within_rate(&mut self, id: usize, len: usize) -> bool {
        let now = self.now;
        let limits = &self.cfg.mqtt.limits;
        let Some(conn) = self.conns.get_mut(id) else {
            return false;
        };
        let Phase::Attached { slot } = conn.phase else {
            return true;
        };
        let Some(s) = self.sessions.get_mut(slot as usize) else {
            return true;
        };
        let pause = session_rate(&mut s.session, &mut self.rate_debts).charge(len, limits, now);
        if pause.is_zero() {
            return true;
        }
        match limits.rate_limit_policy {
            RateLimitPolicy::Throttle => {
                conn.throttled_until = Some(now + pause);
                self.arm_conn(id);
                true
            }
            RateLimitPolicy::Disconnect => {
                let why = "publish rate above limits.publish_rate / publish_bytes_rate";
                s.session
                    .violation(ReasonCode::MESSAGE_RATE_TOO_HIGH, why, &mut conn.out);
                false
            }
        }
    }

    fn on_decode_error(&mut self, id: usize, e: crate::protocol::DecodeError, level: Option<u8>) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        match conn.phase {
            Phase::AwaitingConnect { .. } => {
                log::debug!("connection {id}: refused before CONNECT: {e}");
                if e.reason == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION {
                    // [MQTT-3.1.2-2]: CONNACK 0x01 in the 3.1.1 format, which a client of any
                    // level can parse (as Mosquitto does).
                    write_refusal(ProtocolVersion::V311, e.reason, &mut conn.out.wire);
                } else if level == Some(5) {
                    write_refusal(ProtocolVersion::V5, e.reason, &mut conn.out.wire);
                }
                self.close_after_flush(id);
            }
            Phase::Attached { slot } => {
                if let Some(s) = self.sessions.get_mut(slot as usize) {
                    s.session.violation(e.reason, e.what, &mut conn.out);
                }
                self.run_actions(id);
            }
            Phase::Closing { .. } => {}
        }
    }

    fn on_packet(&mut self, id: usize, packet: Packet) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        match conn.phase {
            Phase::AwaitingConnect { .. } if conn.pending_auth.is_some() => {
                self.on_connect_auth(id, packet)
            }
            Phase::AwaitingConnect { .. } => match packet {
                Packet::Connect(c) => self.on_connect(id, c),
                _ => self.close_after_flush(id),
            },
            Phase::Attached { slot } => {
                let now = self.now;
                let gated = self.ack_gate.is_some() && promises_storage(&packet);
                let mark = conn.out.wire.len();
                if let Some(s) = self.sessions.get_mut(slot as usize) {
                    s.session.handle(packet, &self.cfg.mqtt, now, &mut conn.out);
                }
                if gated && conn.out.wire.len() > mark {
                    self.hold_ack(id, mark);
                }
            }
            Phase::Closing { .. } => {}
        }
        if let Some(conn) = self.conns.get_mut(id) {
            if !conn.out.wire.is_empty() {
                queue_flush(conn, id, &mut self.out.dirty);
            }
        }
    }
}

/// Whether the acknowledgement of `packet` tells the client something is stored: the PUBACK or
/// PUBREC of a QoS 1/2 PUBLISH, the PUBCOMP of a PUBREL (the QoS 2 id is forgotten), the SUBACK
/// and UNSUBACK of a subscription change. These are the acknowledgements the ack gate holds.
fn promises_storage(packet: &Packet) -> bool {
    match packet {
        Packet::Publish(p) => p.qos != crate::protocol::QoS::AtMostOnce,
        Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => true,
        _ => false,
    }
}
