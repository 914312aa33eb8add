//! The client side of an MQTT session, sans-IO: picomq dialling an upstream broker (a bridge).
//!
//! Owns: [`ClientSession`] — CONNECT and the wait for CONNACK, the configured SUBSCRIBEs and
//! their SUBACKs, our QoS 0/1/2 PUBLISH flow upstream (in `outflow`), inbound PUBLISH with its
//! acknowledgements and QoS 2 exactly-once table, keep-alive and link-dead detection, and
//! resumption across links. Inputs are bytes or decoded packets, messages to publish and `now`;
//! outputs are bytes in an [`OutBuf`] and [`ClientEvent`]s. Must not touch: sockets, DNS, TLS,
//! threads, channels or the clock — the caller dials, reads, writes and passes `now` in, so every
//! behaviour is tested with a scripted server and a virtual clock (`client/tests*.rs`).
//!
//! Driving it (one link after another, one session throughout):
//! 1. dial; [`ClientSession::start`] writes CONNECT;
//! 2. feed what the socket reads to [`ClientSession::handle_bytes`]; hand messages to
//!    [`ClientSession::publish`]; call [`ClientSession::on_tick`] at
//!    [`ClientSession::next_timeout`];
//! 3. after each call, write out the `OutBuf` and drain [`ClientSession::poll_event`];
//! 4. when an event [closes the link](ClientEvent::closes_link) or the socket fails, close it,
//!    call [`ClientSession::link_lost`], and redial later (back to 1). Unsettled messages stay
//!    here and are retransmitted or resent as new, as the server's Session Present says.

mod config;
mod events;
mod outflow;

use std::collections::VecDeque;
use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::protocol::decode::{decode_packet_limited, PropLimits};
use crate::protocol::topic::validate_topic_name;
use crate::protocol::wire::{len_to_u32, varint_len};
use crate::protocol::{
    ConnAck, Connect, Disconnect, Packet, Properties, ProtocolVersion, PubResponse, Publish, QoS,
    ReasonCode, SubAck, Subscribe,
};

use super::aliases::InboundAliases;
use super::outbuf::OutBuf;
pub use config::{ClientConfig, ConfigError, Subscription};
pub use events::{
    ClientEvent, Closed, DeadReason, OutMessage, PublishError, ServerLimits, Submitted, Token,
};
use outflow::{LinkView, Outflow};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_flow;
#[cfg(test)]
mod tests_peer;

/// A protocol violation by the server: the reason code to answer with and the broken rule.
type Violation = (ReasonCode, &'static str);

/// Whether the link survives a packet.
enum After {
    Stay,
    /// The server said DISCONNECT (already reported).
    Close,
}

/// The state of the current network link, named for what it waits for.
#[derive(Debug)]
enum Link {
    /// No link: before the first `start`, or after `link_lost`.
    Down,
    /// CONNECT written, CONNACK awaited.
    AwaitingConnAck(AwaitingConnAck),
    /// CONNACK accepted: the session runs.
    Connected(Box<Connected>),
    /// The session decided this link must close (refused, dead, violated, disconnected): all
    /// input is ignored until `link_lost` or `start`.
    Closing,
}

#[derive(Debug)]
struct AwaitingConnAck {
    sent_at: Instant,
    /// Whether this CONNECT asked for a clean start: a server that then claims a session is
    /// present breaks the protocol.
    clean_start: bool,
}

#[derive(Debug)]
struct Connected {
    limits: ServerLimits,
    /// Keep-alive in force, `None` when disabled.
    keep_alive: Option<Duration>,
    last_tx: Instant,
    last_rx: Instant,
    /// When the outstanding PINGREQ was written; cleared by any packet from the server.
    ping_sent: Option<Instant>,
    /// SUBSCRIBEs written and not answered: packet id and the config subscriptions it carries.
    pending_subs: Vec<(u16, std::ops::Range<usize>)>,
    /// Topic aliases the server set on this link (5.0).
    aliases: InboundAliases,
}

/// One upstream session. Holds the unsettled messages and the inbound QoS 2 table across links,
/// so a redial can resume where the last link stopped.
#[derive(Debug)]
pub struct ClientSession {
    cfg: Arc<ClientConfig>,
    /// The configured client id, or the one a 5.0 server assigned (reused on redial).
    client_id: String,
    link: Link,
    outflow: Outflow,
    /// Inbound QoS 2 packet ids reported to the caller and PUBREC'd, PUBREL awaited.
    awaiting_rel: Vec<u16>,
    /// Set by the first accepted CONNACK: from then on a 5.0 session with an expiry is resumed.
    connected_once: bool,
    events: VecDeque<ClientEvent>,
}

impl ClientSession {
    /// A session for `cfg`, validated here; no link yet.
    pub fn new(cfg: ClientConfig) -> Result<ClientSession, ConfigError> {
        let cfg = cfg.validate()?;
        Ok(ClientSession {
            client_id: cfg.client_id.clone(),
            cfg,
            link: Link::Down,
            outflow: Outflow::default(),
            awaiting_rel: Vec::new(),
            connected_once: false,
            events: VecDeque::new(),
        })
    }

    /// The config this session runs with.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The client id the next CONNECT carries (the server's assigned one once known).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// True between an accepted CONNACK and the end of that link.
    pub fn is_connected(&self) -> bool {
        matches!(self.link, Link::Connected(_))
    }

    /// The server's limits on the current link, once connected.
    pub fn server_limits(&self) -> Option<&ServerLimits> {
        match &self.link {
            Link::Connected(c) => Some(&c.limits),
            _ => None,
        }
    }

    /// Our messages written and not yet settled by the server.
    pub fn inflight(&self) -> usize {
        self.outflow.inflight()
    }

    /// Our messages waiting behind the window (or for a link).
    pub fn queued(&self) -> usize {
        self.outflow.queued()
    }

    /// The next event, oldest first. Drain after every call.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// A new network link is up: writes CONNECT and waits for CONNACK. Call on the first dial
    /// and on every redial; whatever link came before is forgotten (as by `link_lost`).
    pub fn start(&mut self, now: Instant, out: &mut OutBuf) {
        let cfg = &self.cfg;
        let v5 = cfg.version.is_v5();
        // 5.0 separates Clean Start from session lifetime: the first CONNECT may start clean,
        // later ones resume whatever the server kept. In 3.1.1 the flag is both, so it stays.
        let clean_start = if v5 && self.connected_once && cfg.session_expiry > 0 {
            false
        } else {
            cfg.clean_start
        };
        let mut properties = Properties::default();
        if v5 {
            properties.session_expiry_interval =
                (cfg.session_expiry > 0).then_some(cfg.session_expiry);
            properties.receive_maximum =
                (cfg.receive_maximum < u16::MAX).then_some(cfg.receive_maximum);
            properties.maximum_packet_size =
                (cfg.max_packet_size < u32::MAX).then_some(cfg.max_packet_size);
            properties.topic_alias_maximum =
                (cfg.topic_alias_maximum > 0).then_some(cfg.topic_alias_maximum);
        }
        let connect = Connect {
            protocol: cfg.version,
            clean_start,
            keep_alive: cfg.keep_alive,
            client_id: self.client_id.clone(),
            will: cfg.will.clone(),
            username: cfg.username.clone(),
            password: cfg.password.clone(),
            properties,
        };
        out.packet(&Packet::Connect(Box::new(connect)), cfg.version);
        self.link = Link::AwaitingConnAck(AwaitingConnAck {
            sent_at: now,
            clean_start,
        });
    }

    /// The network link is gone (socket closed, failed, or closed by the caller after an event
    /// that [closes the link](ClientEvent::closes_link)). Unsettled messages and the inbound
    /// QoS 2 table are kept for the next `start`; SUBSCRIBEs are made again after its CONNACK.
    pub fn link_lost(&mut self) {
        self.link = Link::Down;
    }

    /// Ends the link politely: writes DISCONNECT (Normal disconnection, so the server drops our
    /// will) and ignores further input. The caller closes after writing the output.
    pub fn disconnect(&mut self, out: &mut OutBuf) {
        if matches!(self.link, Link::AwaitingConnAck(_) | Link::Connected(_)) {
            out.packet(&Packet::Disconnect(Disconnect::default()), self.cfg.version);
        }
        self.link = Link::Closing;
    }

    /// Decodes and handles every complete packet at the front of `buf`, leaving an incomplete
    /// one for the next read. Malformed input becomes a `ProtocolViolation` event (the stream
    /// cannot be resynchronised, so nothing after it is read). Input while no link is up or
    /// after the link was condemned is ignored.
    pub fn handle_bytes(&mut self, buf: &mut BytesMut, now: Instant, out: &mut OutBuf) {
        while matches!(self.link, Link::AwaitingConnAck(_) | Link::Connected(_)) {
            let limits = PropLimits::UNLIMITED;
            match decode_packet_limited(
                buf,
                Some(self.cfg.version),
                self.cfg.max_packet_size,
                limits,
            ) {
                Ok(Some(packet)) => self.handle(packet, now, out),
                Ok(None) => break,
                Err(e) => {
                    self.violation(e.reason, e.what, out);
                    buf.clear();
                }
            }
        }
    }

    /// Handles one decoded packet from the server.
    pub fn handle(&mut self, packet: Packet, now: Instant, out: &mut OutBuf) {
        let before = out.len();
        self.link = match mem::replace(&mut self.link, Link::Closing) {
            Link::Down => Link::Down,
            Link::Closing => Link::Closing,
            Link::AwaitingConnAck(wait) => match packet {
                Packet::ConnAck(ack) => self.on_connack(ack, &wait, now, out),
                _ => self.violation(
                    ReasonCode::PROTOCOL_ERROR,
                    "first packet is not CONNACK",
                    out,
                ),
            },
            Link::Connected(mut c) => {
                c.last_rx = now;
                c.ping_sent = None;
                match self.on_packet(packet, &mut c, out) {
                    Ok(After::Stay) => {
                        self.pump_link(&c, out);
                        Link::Connected(c)
                    }
                    Ok(After::Close) => Link::Closing,
                    Err((reason, what)) => self.violation(reason, what, out),
                }
            }
        };
        self.wrote(before, now, out);
    }

    /// Publishes `msg` upstream, now or when the window allows. Its fate arrives as one event
    /// carrying its token: `Delivered`, `Sent` (QoS 0), `Rejected` or `Dropped`. A queued message
    /// waits across link losses; unsettled ones survive them too.
    pub fn publish(
        &mut self,
        mut msg: OutMessage,
        now: Instant,
        out: &mut OutBuf,
    ) -> Result<Submitted, PublishError> {
        if let Err(e) = validate_topic_name(&msg.topic, usize::MAX) {
            return Err(PublishError::InvalidTopic(Box::new(msg), e.what));
        }
        if self.outflow.queued() >= self.cfg.max_queued {
            return Err(PublishError::QueueFull(Box::new(msg)));
        }
        // A client must not send Subscription Identifiers [MQTT-3.3.4-6], and we use no aliases.
        msg.properties.subscription_identifiers.clear();
        msg.properties.topic_alias = None;
        let before = out.len();
        let view = self.link_view();
        let reserved = self.reserved_ids();
        let submitted = self
            .outflow
            .offer(msg, view.as_ref(), &reserved, out, &mut self.events);
        self.wrote(before, now, out);
        Ok(submitted)
    }

    /// Timers: the CONNACK timeout, PINGREQ when the link was quiet for a keep-alive, and the
    /// link-dead verdict when a PINGREQ stays unanswered. Also sends what the window allows
    /// (after the output buffer drained). Call at [`ClientSession::next_timeout`] or later;
    /// calling early or often is harmless.
    pub fn on_tick(&mut self, now: Instant, out: &mut OutBuf) {
        let before = out.len();
        let due = self.next_timeout().is_some_and(|at| now >= at);
        self.link = match mem::replace(&mut self.link, Link::Closing) {
            Link::AwaitingConnAck(_) if due => {
                self.events
                    .push_back(ClientEvent::LinkDead(DeadReason::ConnAckTimeout));
                Link::Closing
            }
            Link::Connected(c) if due && c.ping_sent.is_some() => {
                self.events
                    .push_back(ClientEvent::LinkDead(DeadReason::KeepAliveTimeout));
                Link::Closing
            }
            Link::Connected(mut c) => {
                if due {
                    out.packet(&Packet::PingReq, self.cfg.version);
                    c.ping_sent = Some(now);
                }
                self.pump_link(&c, out);
                Link::Connected(c)
            }
            other => other,
        };
        self.wrote(before, now, out);
    }

    /// When `on_tick` next has something to do, if ever (no link, no keep-alive, or a deadline
    /// too far away for `Instant` to represent). The one timer table: `on_tick` acts on it too.
    pub fn next_timeout(&self) -> Option<Instant> {
        match &self.link {
            Link::AwaitingConnAck(w) => w.sent_at.checked_add(self.cfg.connack_timeout),
            Link::Connected(c) => {
                let ka = c.keep_alive?;
                match c.ping_sent {
                    // Waiting for any answer to our PINGREQ.
                    Some(at) => at.checked_add(self.cfg.ping_timeout_for(ka)),
                    // Quiet in either direction for a keep-alive: time to ping. Counting what we
                    // received too means a server we only ever write to is still checked.
                    None => c.last_tx.min(c.last_rx).checked_add(ka),
                }
            }
            Link::Down | Link::Closing => None,
        }
    }

    /// Takes back every unsettled message (in flight first, then queued, in order), for a caller
    /// that abandons this session. Their settling events will never come.
    pub fn take_unsettled(&mut self) -> Vec<OutMessage> {
        self.outflow.drain()
    }

    /// CONNACK: refused, or accepted — then adopt the server's limits, resume or restart the
    /// flow, subscribe, and send what waits.
    fn on_connack(
        &mut self,
        ack: ConnAck,
        wait: &AwaitingConnAck,
        now: Instant,
        out: &mut OutBuf,
    ) -> Link {
        // Success is the only accepting code; anything else (even a non-error code a broken
        // server made up) refuses.
        if ack.reason != ReasonCode::SUCCESS {
            let closed = Closed::from_props(ack.reason, &ack.properties);
            self.events.push_back(ClientEvent::Refused(closed));
            return Link::Closing;
        }
        if ack.session_present && wait.clean_start {
            // MQTT 5.0 [MQTT-3.2.2-4]: we have no session state, so the claim is false.
            return self.violation(
                ReasonCode::PROTOCOL_ERROR,
                "Session Present 1 after Clean Start 1",
                out,
            );
        }
        let p = &ack.properties;
        if let Some(id) = &p.assigned_client_identifier {
            self.client_id.clone_from(id);
        }
        let keep_alive = p.server_keep_alive.unwrap_or(self.cfg.keep_alive);
        let limits = ServerLimits {
            receive_maximum: p.receive_maximum.unwrap_or(u16::MAX),
            maximum_qos: p
                .maximum_qos
                .and_then(QoS::from_u8)
                .unwrap_or(QoS::ExactlyOnce),
            retain_available: p.retain_available != Some(0),
            maximum_packet_size: p.maximum_packet_size.unwrap_or(u32::MAX),
            keep_alive,
        };
        let mut c = Box::new(Connected {
            limits,
            keep_alive: (keep_alive > 0).then(|| Duration::from_secs(u64::from(keep_alive))),
            last_tx: now,
            last_rx: now,
            ping_sent: None,
            pending_subs: Vec::new(),
            aliases: InboundAliases::default(),
        });
        self.connected_once = true;
        self.events.push_back(ClientEvent::Connected {
            session_present: ack.session_present,
            limits,
        });
        let view = self.view_of(&c);
        if ack.session_present {
            self.outflow.resend(&view, out, &mut self.events);
        } else {
            // The server starts a new session: our inbound QoS 2 ids mean nothing to it any more.
            self.awaiting_rel.clear();
            self.outflow.restart_as_new();
        }
        self.subscribe_all(&mut c, out);
        self.pump_link(&c, out);
        Link::Connected(c)
    }

    /// Writes the configured subscriptions in as few SUBSCRIBEs as the server's Maximum Packet
    /// Size allows. A filter that cannot fit even alone is reported as refused (Packet too large).
    fn subscribe_all(&mut self, c: &mut Connected, out: &mut OutBuf) {
        let subs = &self.cfg.subscriptions;
        let max = c.limits.maximum_packet_size as usize;
        let v = self.cfg.version;
        let mut start = 0;
        while start < subs.len() {
            let mut end = start;
            let mut body = subscribe_base_len(v);
            while end < subs.len() {
                let grown = body + subscribe_entry_len(&subs[end]);
                if packet_len(grown) > max {
                    break;
                }
                body = grown;
                end += 1;
            }
            if end == start {
                self.events.push_back(ClientEvent::Subscribed {
                    filter: subs[start].filter.clone(),
                    result: Err(ReasonCode::PACKET_TOO_LARGE),
                });
                start += 1;
                continue;
            }
            let reserved: Vec<u16> = c.pending_subs.iter().map(|(id, _)| *id).collect();
            let Some(id) = self.outflow.alloc_id(&reserved) else {
                for s in &subs[start..] {
                    self.events.push_back(ClientEvent::Subscribed {
                        filter: s.filter.clone(),
                        result: Err(ReasonCode::QUOTA_EXCEEDED),
                    });
                }
                return;
            };
            out.packet(&Packet::Subscribe(subscribe(id, &subs[start..end])), v);
            c.pending_subs.push((id, start..end));
            start = end;
        }
    }

    /// Every packet after CONNACK. `Err` is a protocol violation: reason code and broken rule.
    fn on_packet(
        &mut self,
        packet: Packet,
        c: &mut Connected,
        out: &mut OutBuf,
    ) -> Result<After, Violation> {
        const UNKNOWN: Violation = (
            ReasonCode::PROTOCOL_ERROR,
            "acknowledgement for an unknown packet identifier",
        );
        let v = self.cfg.version;
        match packet {
            Packet::Publish(p) => self.on_publish(p, c, out)?,
            Packet::PubRel(r) => {
                let reason = match self.awaiting_rel.iter().position(|&id| id == r.packet_id) {
                    Some(pos) => {
                        self.awaiting_rel.swap_remove(pos);
                        ReasonCode::SUCCESS
                    }
                    // Our PUBCOMP was lost with the previous link: answer again (5.0 says how).
                    None => ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                };
                let comp = PubResponse {
                    reason,
                    ..PubResponse::ok(r.packet_id)
                };
                out.packet(&Packet::PubComp(comp), v);
            }
            Packet::PubAck(r) => {
                let event = self.outflow.on_puback(&r).map_err(|_| UNKNOWN)?;
                self.events.push_back(event);
            }
            Packet::PubRec(r) => {
                let event = self.outflow.on_pubrec(&r, v, out).map_err(|_| UNKNOWN)?;
                self.events.extend(event);
            }
            Packet::PubComp(r) => {
                let event = self.outflow.on_pubcomp(&r).map_err(|_| UNKNOWN)?;
                self.events.push_back(event);
            }
            Packet::SubAck(ack) => self.on_suback(ack, c)?,
            Packet::PingResp => {}
            Packet::Disconnect(d) => {
                let closed = Closed::from_props(d.reason, &d.properties);
                self.events.push_back(ClientEvent::ServerDisconnect(closed));
                return Ok(After::Close);
            }
            Packet::ConnAck(_) => return Err((ReasonCode::PROTOCOL_ERROR, "second CONNACK")),
            Packet::UnsubAck(_) => {
                return Err((ReasonCode::PROTOCOL_ERROR, "UNSUBACK without UNSUBSCRIBE"))
            }
            Packet::Auth(_) => {
                return Err((ReasonCode::PROTOCOL_ERROR, "AUTH without an auth method"))
            }
            Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq => {
                return Err((ReasonCode::PROTOCOL_ERROR, "packet only a client may send"))
            }
        }
        Ok(After::Stay)
    }

    /// Inbound PUBLISH: resolve a topic alias, acknowledge, and report it once.
    fn on_publish(
        &mut self,
        mut p: Publish,
        c: &mut Connected,
        out: &mut OutBuf,
    ) -> Result<(), Violation> {
        if let Some(alias) = p.properties.topic_alias.take() {
            if alias > self.cfg.topic_alias_maximum {
                return Err((
                    ReasonCode::TOPIC_ALIAS_INVALID,
                    "topic alias above our maximum",
                ));
            }
            if p.topic.is_empty() {
                let Some(topic) = c.aliases.get(alias) else {
                    return Err((ReasonCode::PROTOCOL_ERROR, "unknown topic alias"));
                };
                p.topic = topic.to_owned();
            } else {
                c.aliases.set(alias, &p.topic);
            }
        }
        let v = self.cfg.version;
        match (p.qos, p.packet_id) {
            (QoS::AtMostOnce, _) => {}
            (QoS::AtLeastOnce, Some(id)) => {
                out.packet(&Packet::PubAck(PubResponse::ok(id)), v);
            }
            (QoS::ExactlyOnce, Some(id)) => {
                if self.awaiting_rel.contains(&id) {
                    // A resend before PUBREL: acknowledge again, report nothing [MQTT-4.3.3-10].
                    out.packet(&Packet::PubRec(PubResponse::ok(id)), v);
                    return Ok(());
                }
                // Only a 5.0 server knows our limit; in 3.1.1 the table is bounded by the
                // 65,535 packet ids alone, so a compliant server is never cut off.
                let v5 = v.is_v5();
                if v5 && self.awaiting_rel.len() >= usize::from(self.cfg.receive_maximum) {
                    return Err((
                        ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                        "more QoS 2 messages awaiting PUBREL than our Receive Maximum",
                    ));
                }
                self.awaiting_rel.push(id);
                out.packet(&Packet::PubRec(PubResponse::ok(id)), v);
            }
            // The decoder gives every QoS 1/2 PUBLISH an id; kept total for safety.
            (_, None) => return Err((ReasonCode::MALFORMED_PACKET, "PUBLISH without packet id")),
        }
        self.events.push_back(ClientEvent::Message(Box::new(p)));
        Ok(())
    }

    /// SUBACK: one result per filter of the SUBSCRIBE it answers.
    fn on_suback(&mut self, ack: SubAck, c: &mut Connected) -> Result<(), Violation> {
        let Some(pos) = c
            .pending_subs
            .iter()
            .position(|(id, _)| *id == ack.packet_id)
        else {
            return Err((
                ReasonCode::PROTOCOL_ERROR,
                "SUBACK for an unknown packet identifier",
            ));
        };
        let range = c.pending_subs[pos].1.clone();
        if ack.reasons.len() != range.len() {
            return Err((
                ReasonCode::PROTOCOL_ERROR,
                "SUBACK reason count differs from the SUBSCRIBE",
            ));
        }
        c.pending_subs.swap_remove(pos);
        for (sub, reason) in self.cfg.subscriptions[range].iter().zip(ack.reasons) {
            let result = match QoS::from_u8(reason.0) {
                Some(qos) => Ok(qos),
                None if reason.is_error() => Err(reason),
                None => return Err((ReasonCode::PROTOCOL_ERROR, "invalid SUBACK reason code")),
            };
            self.events.push_back(ClientEvent::Subscribed {
                filter: sub.filter.clone(),
                result,
            });
        }
        Ok(())
    }

    /// The server broke the protocol: tell it why (5.0), report, and condemn the link.
    fn violation(&mut self, reason: ReasonCode, what: &'static str, out: &mut OutBuf) -> Link {
        if self.cfg.version.is_v5() {
            let d = Disconnect {
                reason,
                properties: Properties::default(),
            };
            out.packet(&Packet::Disconnect(d), self.cfg.version);
        }
        self.events
            .push_back(ClientEvent::ProtocolViolation { reason, what });
        self.link = Link::Closing;
        Link::Closing
    }

    /// Sends queued messages the current link has room for.
    fn pump_link(&mut self, c: &Connected, out: &mut OutBuf) {
        let view = self.view_of(c);
        let reserved: Vec<u16> = c.pending_subs.iter().map(|(id, _)| *id).collect();
        self.outflow.pump(&view, &reserved, out, &mut self.events);
    }

    fn view_of(&self, c: &Connected) -> LinkView {
        LinkView {
            version: self.cfg.version,
            window: self.cfg.max_inflight.min(c.limits.receive_maximum),
            limits: c.limits,
        }
    }

    fn link_view(&self) -> Option<LinkView> {
        match &self.link {
            Link::Connected(c) => Some(self.view_of(c)),
            _ => None,
        }
    }

    fn reserved_ids(&self) -> Vec<u16> {
        match &self.link {
            Link::Connected(c) => c.pending_subs.iter().map(|(id, _)| *id).collect(),
            _ => Vec::new(),
        }
    }

    /// Records that something was written, for the keep-alive: the server's keep-alive timer
    /// only needs *a* packet from us within the interval.
    fn wrote(&mut self, before: usize, now: Instant, out: &OutBuf) {
        if let Link::Connected(c) = &mut self.link {
            if out.len() > before {
                c.last_tx = now;
            }
        }
    }
}

/// SUBSCRIBE for a run of configured subscriptions.
fn subscribe(packet_id: u16, subs: &[Subscription]) -> Subscribe {
    Subscribe {
        packet_id,
        filters: subs.iter().map(|s| (s.filter.clone(), s.options)).collect(),
        properties: Properties::default(),
    }
}

/// Body length of a SUBSCRIBE without filters: packet id, and an empty property block in 5.0.
fn subscribe_base_len(v: ProtocolVersion) -> usize {
    2 + usize::from(v.is_v5())
}

/// What one filter adds to a SUBSCRIBE body: length-prefixed string and options byte.
fn subscribe_entry_len(sub: &Subscription) -> usize {
    2 + sub.filter.len() + 1
}

/// Whole packet size for a body of `body` bytes: type byte, Remaining Length, body.
fn packet_len(body: usize) -> usize {
    1 + varint_len(len_to_u32(body)) + body
}
