//! The per-client session state machine (sans-IO).
//!
//! Owns: one client's session — its subscriptions, outbound flow ([`Outbound`]), inbound QoS 2
//! state, session expiry — and the [`Link`] to the network connection currently attached to it
//! (protocol version, keep-alive, will, topic aliases, the client's limits). Inputs are decoded
//! packets, deliveries from the router and `now`; outputs are bytes in an [`OutBuf`] and
//! [`Action`]s for the I/O layer. Must not touch: sockets, threads, channels or the clock.
//! Inbound PUBLISH handling lives in the child module `publish` (`state/publish.rs`), the
//! acknowledgements of both QoS flows in `acks` (`state/acks.rs`).

use crate::router::hash::FastMap;
use crate::sys::is_sys_topic;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::{Access, ClientAcl, SubscribeVerdict};
use crate::config::MqttConfig;
use crate::message::{SessionRef, SharedMessage, SubEntry};
use crate::protocol::topic::split_shared;
use crate::protocol::{
    Auth, ConnAck, Connect, Disconnect, LastWill, Packet, Properties, ProtocolVersion, QoS,
    ReasonCode, RetainHandling, SubAck, Subscribe, UnsubAck, Unsubscribe,
};

use super::aliases::{InboundAliases, OutboundAliases};
use super::connect::grant_qos;
use super::enhanced_auth::{LinkAuth, ReAuthStep};
use super::limits::{refuse_filter, PublishRate};
use super::outbound::{Outbound, Peer, Queued};
use super::outbuf::OutBuf;

mod acks;
mod publish;

use acks::{AckKind, AwaitingRel};

/// What the I/O layer must do on behalf of a session.
#[derive(Debug, Clone)]
pub enum Action {
    /// Route a message (a client PUBLISH or a will) to the router.
    Publish(SharedMessage),
    /// Add or replace a subscription in the router; `send_retained` asks for matching retained
    /// messages to be delivered.
    Subscribe {
        /// Validated topic filter.
        filter: Arc<str>,
        /// Options and identifier.
        entry: SubEntry,
        /// Whether to deliver retained messages now.
        send_retained: bool,
    },
    /// Remove a subscription from the router.
    Unsubscribe {
        /// The filter to remove.
        filter: Arc<str>,
    },
    /// Give a message taken for a shared subscription to another member of the group.
    Redeliver {
        /// The group's full `$share/...` filter.
        filter: Arc<str>,
        /// The message.
        msg: SharedMessage,
    },
    /// This session (which has shared subscriptions) went offline, or is back / ending.
    Away {
        /// Whether it is offline now.
        away: bool,
    },
    /// Close the connection once the output buffer is written.
    Close,
}

/// The output side of every session call.
#[derive(Debug, Default)]
pub struct Output {
    /// Bytes for the attached connection.
    pub wire: OutBuf,
    /// Work for the I/O layer, in order.
    pub actions: Vec<Action>,
}

/// The network connection currently attached to a session.
#[derive(Debug)]
struct Link {
    version: ProtocolVersion,
    /// Keep-alive as granted, 0 = none.
    keep_alive: u16,
    last_rx: Instant,
    will: Option<Box<LastWill>>,
    peer: Peer,
    /// Topic aliases the client set (v5).
    aliases: InboundAliases,
    /// Whether the client allows reason strings (Request Problem Information).
    problem_info: bool,
    /// Set once the session asked for the connection to close; later input is ignored.
    closing: bool,
    /// Enhanced authentication method of the CONNECT, for re-authentication (section 4.12.1).
    auth: Option<Box<LinkAuth>>,
}

/// One client's session.
#[derive(Debug)]
pub struct Session {
    client_id: Arc<str>,
    me: SessionRef,
    subscriptions: FastMap<Arc<str>, SubEntry>,
    outbound: Outbound,
    /// Inbound QoS 2 packet ids received and not yet released (PUBREC sent, PUBREL awaited).
    awaiting_rel: AwaitingRel,
    /// Session Expiry Interval in seconds (0 = ends with the connection, u32::MAX = never).
    expiry: u32,
    link: Option<Link>,
    detached_at: Option<Instant>,
    /// A will waiting out its Will Delay Interval after the link dropped.
    pending_will: Option<Box<(Instant, LastWill)>>,
    /// What the ACL lets this client do (everything when no ACL is configured).
    acl: ClientAcl,
    /// User name of the last CONNECT, to rebuild `acl` after an ACL reload.
    username: Option<Arc<str>>,
    /// Publish rate state: per client, so it outlives any one connection.
    rate: PublishRate,
}

/// Whether a SUBSCRIBE or UNSUBSCRIBE with these filters must close the connection because one is
/// empty. A topic filter MUST be at least one character long [MQTT-4.7.3-1].
///
/// MQTT 3.1 and 3.1.1: yes. SUBACK can only say "failure" (0x80) and UNSUBACK nothing at all, so
/// the violation could not be reported per filter; [MQTT-4.8.0-1] says a protocol violation closes
/// the connection (Mosquitto does so too).
///
/// MQTT 5.0: no. SUBACK and UNSUBACK carry a reason code per filter, and 0x8F Topic Filter invalid
/// exists for exactly this: the bad entry is refused and the others in the same packet still
/// take effect, which surprises a client least (one bad entry does not cost it the connection
/// and the other subscriptions). It is also how every other invalid filter (`a/#/b`, `+x`) is
/// already answered here, so an empty one is not treated differently from other bad syntax.
fn empty_filter_closes<'a>(
    v: ProtocolVersion,
    mut filters: impl Iterator<Item = &'a String>,
) -> bool {
    !v.is_v5() && filters.any(|f| f.is_empty())
}

/// Why a link went away without the session asking for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkLoss {
    /// The socket closed or failed.
    Network,
    /// Another connection with the same client id took over [MQTT-3.1.4-3].
    TakenOver,
    /// The broker is shutting down.
    Shutdown,
}

impl Session {
    /// A fresh session with no connection attached.
    pub fn new(client_id: Arc<str>, me: SessionRef) -> Session {
        Session {
            client_id,
            me,
            subscriptions: FastMap::default(),
            outbound: Outbound::default(),
            awaiting_rel: AwaitingRel::default(),
            expiry: 0,
            link: None,
            detached_at: None,
            pending_will: None,
            acl: ClientAcl::allow_all(),
            username: None,
            rate: PublishRate::default(),
        }
    }

    /// The client identifier.
    pub fn client_id(&self) -> &Arc<str> {
        &self.client_id
    }

    /// The user name of the last CONNECT.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Replaces the ACL view (after the ACL file was reloaded).
    pub fn set_acl(&mut self, acl: ClientAcl) {
        self.acl = acl;
    }

    /// This session's address in the broker.
    pub fn session_ref(&self) -> SessionRef {
        self.me
    }

    /// Whether a connection is attached.
    pub fn is_connected(&self) -> bool {
        self.link.is_some()
    }

    /// The outbound flow, for counters and tests.
    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// The client's publish rate state; the I/O thread charges each PUBLISH to it and pauses the
    /// input as it says.
    pub fn publish_rate(&mut self) -> &mut PublishRate {
        &mut self.rate
    }

    /// The filters subscribed, for cleanup when the session ends.
    pub fn filters(&self) -> impl Iterator<Item = &Arc<str>> {
        self.subscriptions.keys()
    }

    /// Attaches an admitted CONNECT: writes CONNACK, then resends unacknowledged messages and
    /// delivers what was queued while offline.
    #[allow(clippy::too_many_arguments)]
    pub fn attach(
        &mut self,
        connect: &Connect,
        assigned_id: bool,
        session_present: bool,
        acl: ClientAcl,
        cfg: &MqttConfig,
        now: Instant,
        out: &mut Output,
    ) {
        self.acl = acl;
        self.username = connect.username.as_deref().map(Arc::from);
        let v = connect.protocol;
        let p = &connect.properties;
        let (ack, keep_alive) = self.settle_connect(connect, assigned_id, cfg);
        let window = cfg
            .max_inflight
            .min(p.receive_maximum.unwrap_or(u16::MAX))
            .max(1);
        let peer = Peer {
            version: v,
            window,
            max_packet: p.maximum_packet_size.unwrap_or(u32::MAX),
            aliases: OutboundAliases::new(p.topic_alias_maximum.unwrap_or(0)),
        };
        self.link = Some(Link {
            version: v,
            keep_alive,
            last_rx: now,
            will: connect.will.clone().map(Box::new),
            peer,
            aliases: InboundAliases::default(),
            problem_info: p.request_problem_information != Some(0),
            closing: false,
            auth: None,
        });
        self.detached_at = None;
        // A reconnect before the Will Delay Interval ran out cancels the will.
        self.pending_will = None;
        if session_present && self.has_shared() {
            out.actions.push(Action::Away { away: false });
        }
        let connack = ConnAck {
            session_present,
            reason: ReasonCode::SUCCESS,
            properties: ack,
        };
        if !self.send(Packet::ConnAck(connack), out) {
            // Not even the CONNACK fits the client's Maximum Packet Size: closed unanswered.
            return;
        }
        if let Some(link) = self.link.as_mut() {
            self.outbound
                .resend_inflight(&mut link.peer, now, &mut out.wire);
            self.outbound.pump(&mut link.peer, now, &mut out.wire);
        }
    }

    /// Settles what a CONNECT asks for against the config: sets the session expiry and returns
    /// the CONNACK properties (MQTT 5: what the server changed or limits) and the keep-alive the
    /// link uses.
    fn settle_connect(
        &mut self,
        connect: &Connect,
        assigned_id: bool,
        cfg: &MqttConfig,
    ) -> (Properties, u16) {
        let v = connect.protocol;
        let p = &connect.properties;
        let mut ack = Properties::default();
        let mut keep_alive = connect.keep_alive;
        if v.is_v5() {
            self.expiry = p
                .session_expiry_interval
                .unwrap_or(0)
                .min(cfg.max_session_expiry);
            if Some(self.expiry) != p.session_expiry_interval.or(Some(0)) {
                ack.session_expiry_interval = Some(self.expiry);
            }
            if cfg.max_keepalive > 0 && (keep_alive == 0 || keep_alive > cfg.max_keepalive) {
                keep_alive = cfg.max_keepalive;
                ack.server_keep_alive = Some(keep_alive);
            }
            ack.receive_maximum = Some(cfg.receive_maximum);
            ack.maximum_packet_size = Some(cfg.max_packet_size);
            ack.topic_alias_maximum = Some(cfg.topic_alias_maximum).filter(|&m| m > 0);
            ack.retain_available = (!cfg.retain_available).then_some(0);
            ack.maximum_qos = (cfg.max_qos < QoS::ExactlyOnce).then_some(cfg.max_qos.as_u8());
            ack.shared_subscription_available = (!cfg.shared_subscriptions).then_some(0);
            ack.wildcard_subscription_available = (!cfg.wildcard_subscriptions).then_some(0);
            ack.subscription_identifier_available = (!cfg.subscription_identifiers).then_some(0);
            if p.request_response_information == Some(1) && !cfg.response_information.is_empty() {
                ack.response_information = Some(cfg.response_information.clone());
            }
            if assigned_id {
                ack.assigned_client_identifier = Some(self.client_id.to_string());
            }
            // [MQTT-4.12.0-5]: CONNACK names the CONNECT's method (with the method's final data).
            ack.authentication_method = p.authentication_method.clone();
            ack.authentication_data = p.authentication_data.clone();
        } else {
            // 3.1.1 has no expiry: a persistent session lasts until a clean session replaces it,
            // or until the configured persistent_client_expiration.
            self.expiry = if connect.clean_start {
                0
            } else {
                cfg.persistent_client_expiration
            };
        }
        (ack, keep_alive)
    }

    /// Handles one packet from the attached client.
    pub fn handle(&mut self, packet: Packet, cfg: &MqttConfig, now: Instant, out: &mut Output) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        if link.closing {
            return;
        }
        link.last_rx = now;
        let v = link.version;
        match packet {
            Packet::Publish(p) => self.on_publish(p, cfg, now, out),
            Packet::PubAck(a) => self.on_ack(AckKind::Ack, a, now, out),
            Packet::PubComp(a) => self.on_ack(AckKind::Comp, a, now, out),
            Packet::PubRec(a) => self.on_pubrec(a, now, out),
            Packet::PubRel(a) => self.on_pubrel(a, out),
            Packet::Subscribe(s) => self.on_subscribe(s, cfg, out),
            Packet::Unsubscribe(u) => self.on_unsubscribe(u, v, out),
            Packet::PingReq => {
                self.send(Packet::PingResp, out);
            }
            Packet::Disconnect(d) => self.on_disconnect(d, cfg, out),
            Packet::Connect(_) => self.violation(ReasonCode::PROTOCOL_ERROR, "second CONNECT", out),
            Packet::Auth(a) => self.on_auth(a, out),
            other => {
                let what = match other {
                    Packet::ConnAck(_) => "client sent CONNACK",
                    Packet::SubAck(_) => "client sent SUBACK",
                    Packet::UnsubAck(_) => "client sent UNSUBACK",
                    _ => "client sent PINGRESP",
                };
                self.violation(ReasonCode::PROTOCOL_ERROR, what, out)
            }
        }
    }

    /// Lets the attached connection re-authenticate with the method it connected with.
    pub fn enable_reauth(&mut self, auth: LinkAuth) {
        if let Some(link) = self.link.as_mut() {
            link.auth = Some(Box::new(auth));
        }
    }

    /// A client AUTH: re-authentication, or a protocol error when the CONNECT named no method
    /// [MQTT-4.12.0-7]. Failure: DISCONNECT and close [MQTT-4.12.1-2].
    fn on_auth(&mut self, a: Auth, out: &mut Output) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        let step = match link.auth.as_mut() {
            Some(auth) => auth.on_auth(a),
            None => ReAuthStep::Fail(ReasonCode::PROTOCOL_ERROR, "AUTH without a method"),
        };
        match step {
            ReAuthStep::Reply(packet) => {
                self.send(*packet, out);
            }
            ReAuthStep::Fail(reason, what) => self.violation(reason, what, out),
        }
    }

    /// Reports a protocol violation: v5 gets DISCONNECT with the reason (and a reason string unless
    /// the client asked for none), 3.1.1 is just closed. The will is published when the link drops.
    pub fn violation(&mut self, reason: ReasonCode, what: &'static str, out: &mut Output) {
        log::debug!("client {}: {}: {}", self.client_id, reason.name(), what);
        self.server_disconnect(reason, Some(what), out);
    }

    /// Sends DISCONNECT (v5 only) and asks the I/O layer to close. The reason string is left out
    /// when the client asked for no problem information or when it would make the packet larger
    /// than the client's Maximum Packet Size [MQTT-3.1.2-24].
    pub fn server_disconnect(&mut self, reason: ReasonCode, why: Option<&str>, out: &mut Output) {
        self.server_disconnect_to(reason, why, None, out);
    }

    /// [`Session::server_disconnect`] that may also name another server (MQTT 5 Server
    /// Reference), which is only sent with the redirect reasons 0x9C / 0x9D.
    pub fn server_disconnect_to(
        &mut self,
        reason: ReasonCode,
        why: Option<&str>,
        server_reference: Option<&str>,
        out: &mut Output,
    ) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        if link.closing {
            return;
        }
        link.closing = true;
        if link.version.is_v5() {
            let mut d = Disconnect {
                reason,
                properties: Properties::default(),
            };
            if super::connect::is_redirect(reason) {
                d.properties.server_reference = server_reference.map(str::to_owned);
            }
            if link.problem_info {
                d.properties.reason_string = why.map(str::to_owned);
            }
            // Too large for the client even without its optional parts: closed unannounced.
            let max = link.peer.max_packet;
            out.wire
                .packet_within(Packet::Disconnect(d), link.version, max);
        }
        out.actions.push(Action::Close);
    }

    /// Writes `packet` to the attached client if it fits its Maximum Packet Size (see
    /// [`OutBuf::packet_within`], which drops optional properties first). When it cannot fit, the
    /// connection is closed without it [MQTT-3.1.2-24] and false is returned.
    pub(super) fn send(&mut self, packet: Packet, out: &mut Output) -> bool {
        let Some(link) = self.link.as_mut() else {
            return false;
        };
        let name = packet.name();
        if out
            .wire
            .packet_within(packet, link.version, link.peer.max_packet)
        {
            return true;
        }
        log::debug!(
            "client {}: {name} larger than its Maximum Packet Size {}: closing",
            self.client_id,
            link.peer.max_packet
        );
        if !link.closing {
            link.closing = true;
            out.actions.push(Action::Close);
        }
        false
    }

    fn on_subscribe(&mut self, s: Subscribe, cfg: &MqttConfig, out: &mut Output) {
        let Some(link) = self.link.as_ref() else {
            return;
        };
        if empty_filter_closes(link.version, s.filters.iter().map(|(f, _)| f)) {
            return self.violation(ReasonCode::MALFORMED_PACKET, "empty topic filter", out);
        }
        if s.properties.subscription_identifiers.len() > 1 {
            let what = "several subscription identifiers";
            return self.violation(ReasonCode::PROTOCOL_ERROR, what, out);
        }
        if s.filters
            .iter()
            .any(|(f, o)| o.no_local && split_shared(f).is_some())
        {
            // [MQTT-3.8.3-4]: No Local on a shared subscription is a Protocol Error.
            return self.violation(
                ReasonCode::PROTOCOL_ERROR,
                "No Local on a shared subscription",
                out,
            );
        }
        let id = s.properties.subscription_identifiers.first().copied();
        let mut reasons = Vec::with_capacity(s.filters.len());
        for (filter, mut options) in s.filters {
            if let Err(reason) = refuse_filter(&filter, id, cfg) {
                reasons.push(reason);
                continue;
            }
            if self.acl.check_subscribe(&filter) == SubscribeVerdict::Denied {
                reasons.push(ReasonCode::NOT_AUTHORIZED);
                continue;
            }
            let quota = cfg.limits.max_subscriptions_per_client;
            if self.subscriptions.len() >= quota
                && !self.subscriptions.contains_key(filter.as_str())
            {
                // Quota exceeded (0x97): "an implementation or administrative imposed limit has
                // been exceeded". A filter already held is replaced and does not count twice.
                reasons.push(ReasonCode::QUOTA_EXCEEDED);
                continue;
            }
            options.qos = grant_qos(options.qos, cfg);
            let shared = split_shared(&filter).is_some();
            let filter: Arc<str> = filter.into();
            let entry = SubEntry { options, id };
            let existed = self.subscriptions.insert(filter.clone(), entry).is_some();
            let send_retained = !shared
                && match options.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => !existed,
                    RetainHandling::DoNotSend => false,
                };
            out.actions.push(Action::Subscribe {
                filter,
                entry,
                send_retained,
            });
            reasons.push(ReasonCode(options.qos.as_u8()));
        }
        let ack = SubAck {
            packet_id: s.packet_id,
            reasons,
            properties: Properties::default(),
        };
        self.send(Packet::SubAck(ack), out);
    }

    /// Whether this session has shared subscriptions, so the router must know when it is away.
    fn has_shared(&self) -> bool {
        self.subscriptions.keys().any(|f| split_shared(f).is_some())
    }

    /// Hands the messages taken for a shared subscription back to the router, for another member
    /// of the group: only the queued ones for `filter` (after an UNSUBSCRIBE), or every one, sent
    /// or not, when `filter` is `None` (the session is ending).
    fn redeliver_shared(&mut self, filter: Option<&str>, out: &mut Output) {
        for item in self.outbound.take_shared(filter) {
            if let Some(group) = item.shared {
                out.actions.push(Action::Redeliver {
                    filter: group,
                    msg: item.msg,
                });
            }
        }
    }

    fn on_unsubscribe(&mut self, u: Unsubscribe, v: ProtocolVersion, out: &mut Output) {
        if empty_filter_closes(v, u.filters.iter()) {
            return self.violation(ReasonCode::MALFORMED_PACKET, "empty topic filter", out);
        }
        let mut reasons = Vec::with_capacity(u.filters.len());
        for filter in u.filters {
            if filter.is_empty() {
                // 5.0 only (3.1.1 closed above): see `empty_filter_closes`.
                reasons.push(ReasonCode::TOPIC_FILTER_INVALID);
                continue;
            }
            match self.subscriptions.remove_entry(filter.as_str()) {
                Some((filter, _)) => {
                    if split_shared(&filter).is_some() {
                        self.redeliver_shared(Some(&filter), out);
                    }
                    out.actions.push(Action::Unsubscribe { filter });
                    reasons.push(ReasonCode::SUCCESS);
                }
                None => reasons.push(ReasonCode::NO_SUBSCRIPTION_EXISTED),
            }
        }
        let ack = UnsubAck {
            packet_id: u.packet_id,
            reasons,
            properties: Properties::default(),
        };
        self.send(Packet::UnsubAck(ack), out);
    }

    fn on_disconnect(&mut self, d: Disconnect, cfg: &MqttConfig, out: &mut Output) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        if let Some(new_expiry) = d.properties.session_expiry_interval {
            if self.expiry == 0 && new_expiry != 0 {
                // [MQTT-3.14.2-2]: zero at CONNECT cannot become non-zero at DISCONNECT.
                return self.violation(
                    ReasonCode::PROTOCOL_ERROR,
                    "session expiry raised from 0",
                    out,
                );
            }
            self.expiry = new_expiry.min(cfg.max_session_expiry);
        }
        if d.reason != ReasonCode::DISCONNECT_WITH_WILL {
            // A normal DISCONNECT discards the will [MQTT-3.14.4-3].
            link.will = None;
        }
        link.closing = true;
        out.actions.push(Action::Close);
    }

    /// A message routed to this session. Delivered now if connected and the window allows,
    /// otherwise queued (QoS 0 is dropped while offline).
    pub fn deliver(&mut self, item: Queued, cfg: &MqttConfig, now: Instant, out: &mut Output) {
        if !self.acl.check(&item.msg.topic, Access::Read) {
            // Checked per delivery, so retained messages and subscriptions granted before an ACL
            // reload obey the ACL in force now.
            self.outbound.dropped += 1;
            return;
        }
        let peer = self
            .link
            .as_mut()
            .filter(|l| !l.closing)
            .map(|l| &mut l.peer);
        self.outbound.offer(item, peer, cfg, now, &mut out.wire);
    }

    /// Sends what the window and buffer now allow (call when the connection's buffer drained).
    pub fn pump(&mut self, now: Instant, out: &mut Output) {
        if let Some(link) = self.link.as_mut().filter(|l| !l.closing) {
            self.outbound.pump(&mut link.peer, now, &mut out.wire);
        }
    }

    /// The connection is gone (after the session's own Close, a network error, a takeover or a
    /// shutdown). Publishes the will unless a normal DISCONNECT cleared it. Returns true when the
    /// session itself must now end (expiry 0).
    pub fn detach(&mut self, loss: Option<LinkLoss>, now: Instant, out: &mut Output) -> bool {
        let Some(link) = self.link.take() else {
            return self.expiry == 0;
        };
        // A DISCONNECT already sent (a violation, a redirect at shutdown) is the last packet.
        let may_send = link.version.is_v5() && !link.closing;
        let last_word = match loss {
            Some(LinkLoss::TakenOver) => Some(ReasonCode::SESSION_TAKEN_OVER),
            Some(LinkLoss::Shutdown) => Some(ReasonCode::SERVER_SHUTTING_DOWN),
            _ => None,
        };
        if let Some(reason) = last_word.filter(|_| may_send) {
            let d = Disconnect {
                reason,
                properties: Properties::default(),
            };
            let max = link.peer.max_packet;
            out.wire
                .packet_within(Packet::Disconnect(d), link.version, max);
        }
        self.detached_at = Some(now);
        if self.expiry > 0 && self.has_shared() {
            out.actions.push(Action::Away { away: true });
        }
        if let Some(will) = link.will {
            let delay = will.properties.will_delay_interval.unwrap_or(0);
            if delay > 0 && self.expiry > 0 {
                // MQTT 5.0 section 3.1.3.2.2: wait for the delay or the end of the session,
                // whichever comes first; a reconnect in between cancels the will.
                let at = now + Duration::from_secs(u64::from(delay));
                self.pending_will = Some(Box::new((at, *will)));
            } else {
                self.publish_will(*will, now, out);
            }
        }
        self.expiry == 0
    }

    fn publish_will(&self, will: LastWill, now: Instant, out: &mut Output) {
        if !self.acl.check(&will.topic, Access::Write) || is_sys_topic(&will.topic) {
            log::debug!(
                "client {}: will to {:?} denied (ACL or $SYS)",
                self.client_id,
                will.topic
            );
            return;
        }
        let msg = self.message_from(
            will.topic,
            will.payload,
            will.qos,
            will.retain,
            will.properties,
            now,
        );
        out.actions.push(Action::Publish(msg));
    }

    /// The session is ending (expired, replaced by a clean start, or its link closed with expiry
    /// 0): a will still waiting for its delay is published now.
    pub fn on_end(&mut self, now: Instant, out: &mut Output) {
        if let Some(pending) = self.pending_will.take() {
            self.publish_will(pending.1, now, out);
        }
        self.redeliver_shared(None, out);
        if self.has_shared() {
            out.actions.push(Action::Away { away: false });
        }
    }

    /// Checks time-driven rules: a delayed will whose time has come, and keep-alive (1.5 times
    /// the granted interval [MQTT-3.1.2-24]).
    pub fn on_tick(&mut self, now: Instant, out: &mut Output) {
        if self.pending_will.as_ref().is_some_and(|p| now >= p.0) {
            if let Some(pending) = self.pending_will.take() {
                self.publish_will(pending.1, now, out);
            }
        }
        let Some(link) = self.link.as_ref() else {
            return;
        };
        if link.keep_alive == 0 || link.closing {
            return;
        }
        let limit = Duration::from_millis(u64::from(link.keep_alive) * 1500);
        if now.saturating_duration_since(link.last_rx) >= limit {
            self.server_disconnect(
                ReasonCode::KEEP_ALIVE_TIMEOUT,
                Some("keep-alive timeout"),
                out,
            );
        }
    }

    /// When [`Session::on_tick`] (or, offline, [`Session::is_expired`]) next has something to do:
    /// the keep-alive deadline of the link, a delayed will, or the end of an offline session.
    /// `None`: nothing is time-driven. May be early (keep-alive moves with every packet): the
    /// caller checks and asks again.
    pub fn next_timeout(&self) -> Option<Instant> {
        let will = self.pending_will.as_ref().map(|p| p.0);
        let own = match (&self.link, self.detached_at) {
            (Some(link), _) if link.keep_alive > 0 && !link.closing => {
                let limit = Duration::from_millis(u64::from(link.keep_alive) * 1500);
                link.last_rx.checked_add(limit)
            }
            (None, Some(at)) if self.expiry != u32::MAX => {
                at.checked_add(Duration::from_secs(u64::from(self.expiry)))
            }
            _ => None,
        };
        match (will, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The client is active although no packet reached the session (its input is held back by
    /// the broker, e.g. a publish throttle), so keep-alive must not count this time against it.
    pub fn note_activity(&mut self, now: Instant) {
        if let Some(link) = self.link.as_mut() {
            link.last_rx = now;
        }
    }

    /// Whether an offline session has outlived its expiry interval.
    pub fn is_expired(&self, now: Instant) -> bool {
        match (self.link.is_some(), self.detached_at) {
            (false, Some(at)) if self.expiry != u32::MAX => {
                now.saturating_duration_since(at) >= Duration::from_secs(u64::from(self.expiry))
            }
            _ => false,
        }
    }
}
