//! Broker-opened connections: links picomq dials itself (bridges to upstream brokers will use
//! them), each driven by a client-side session ([`crate::session::client::ClientSession`]).
//!
//! A link is a local router subscriber (for the local filters it forwards upstream) and a local
//! publisher (for what the upstream broker sends it). Its address for the router is a
//! [`SessionRef`] whose slot has [`DIALLED_SLOT`] set, so deliveries to it are told from
//! deliveries to client sessions in [`Core::deliver`]; messages it publishes locally carry it as
//! their origin and its local subscriptions are No Local, so nothing it brought in goes back out.
//!
//! The I/O layer dials (`Outbox::dials`), tells the core when the socket is open and connected,
//! appends what it reads to [`Dialled::rbuf`] and writes [`Dialled::out`]; a lost link is redialled
//! after [`REDIAL`] (the link's timer). What the upstream acknowledged is what it has: the session
//! reports deliveries, and unacknowledged messages stay in it across links.
//!
//! Owns: [`DialSpec`], [`Dialled`] and the Core methods around them. Must not touch: sockets or
//! the client protocol (in `session::client`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::message::{Message, SessionRef, SubEntry};
use crate::protocol::{QoS, SubscriptionOptions};
use crate::router::shard::{Command, Delivery};
use crate::session::client::{ClientConfig, ClientEvent, ClientSession, OutMessage, Token};
use crate::session::{Action, OutBuf};

use super::timers::TimerKey;
use super::Core;

/// Set in the slot of a [`SessionRef`] that names a dialled link rather than a client session.
pub const DIALLED_SLOT: u32 = 1 << 31;
/// Wait before dialling a lost or refused link again.
pub const REDIAL: Duration = Duration::from_secs(1);

/// What to dial and what to carry over the link.
#[derive(Debug, Clone)]
pub struct DialSpec {
    /// A name for logs.
    pub name: String,
    /// The upstream broker (loopback in tests).
    pub addr: SocketAddr,
    /// The client session's settings (client id, keep-alive, the upstream subscriptions whose
    /// messages are published locally, ...).
    pub client: ClientConfig,
    /// Local filters whose messages are published upstream, with the QoS to take them at.
    pub forward: Vec<(String, QoS)>,
}

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialState {
    /// Waiting to be dialled (at start, or after a loss until its redial time).
    Down,
    /// The I/O layer is dialling; the socket is `id`.
    Connecting(usize),
    /// TCP is up and the session runs on socket `id`.
    Up(usize),
}

/// One dialled link.
pub struct Dialled {
    /// What it was made from.
    pub spec: Arc<DialSpec>,
    /// The client-side session, kept across links.
    pub session: ClientSession,
    /// Bytes read and not yet handled.
    pub rbuf: BytesMut,
    /// Bytes to write.
    pub out: OutBuf,
    /// Where it stands.
    pub state: DialState,
    /// Its pending timer slot (0: none).
    timer: u32,
    /// When to dial again while down.
    redial_at: Option<Instant>,
    next_token: u64,
}

impl Core {
    /// Adds a link and asks the I/O layer to dial it now. Returns its index on this thread.
    pub fn add_dial(&mut self, spec: DialSpec) -> Result<usize, String> {
        let session = ClientSession::new(spec.client.clone()).map_err(|e| format!("{e:?}"))?;
        let link = self.dialled.len();
        let spec = Arc::new(spec);
        self.dialled.push(Dialled {
            spec: spec.clone(),
            session,
            rbuf: BytesMut::new(),
            out: OutBuf::new(),
            state: DialState::Down,
            timer: 0,
            redial_at: None,
            next_token: 0,
        });
        // Subscribe locally once: the router keeps the subscriptions whether the link is up or
        // not (messages meanwhile wait in the session's queue, up to its bound).
        let me = dialled_ref(self.index, link);
        for (filter, qos) in &spec.forward {
            let entry = SubEntry {
                options: SubscriptionOptions {
                    qos: *qos,
                    no_local: true,
                    ..SubscriptionOptions::default()
                },
                id: None,
            };
            let filter: Arc<str> = filter.as_str().into();
            self.out.router.filter(&filter, || Command::Subscribe {
                session: me,
                filter: filter.clone(),
                entry,
                send_retained: false,
            });
        }
        self.dial(link);
        Ok(link)
    }

    fn dial(&mut self, link: usize) {
        if let Some(d) = self.dialled.get_mut(link) {
            d.redial_at = None;
            self.out.dials.push((link, d.spec.addr));
        }
    }

    /// The socket `id` of the I/O layer is dialling `link`.
    pub fn dial_opened(&mut self, link: usize, id: usize) {
        if let Some(d) = self.dialled.get_mut(link) {
            d.state = DialState::Connecting(id);
        }
    }

    /// The link on socket `id`, if `id` is a dialled socket.
    pub fn dialled_link(&self, id: usize) -> Option<usize> {
        self.dialled.iter().position(|d| match d.state {
            DialState::Connecting(s) | DialState::Up(s) => s == id,
            DialState::Down => false,
        })
    }

    /// TCP connected on `link`'s socket: the session writes its CONNECT.
    pub fn dial_connected(&mut self, link: usize, now: Instant) {
        self.now = now;
        let Some(d) = self.dialled.get_mut(link) else {
            return;
        };
        let DialState::Connecting(id) = d.state else {
            return;
        };
        d.state = DialState::Up(id);
        log::info!("link {}: connected to {}", d.spec.name, d.spec.addr);
        d.session.start(now, &mut d.out);
        self.dial_settle(link);
    }

    /// Bytes were appended to `link`'s read buffer.
    pub fn dial_input(&mut self, link: usize, now: Instant) {
        self.now = now;
        let Some(d) = self.dialled.get_mut(link) else {
            return;
        };
        d.session.handle_bytes(&mut d.rbuf, now, &mut d.out);
        if d.rbuf.is_empty() {
            d.rbuf = BytesMut::new();
        }
        self.dial_settle(link);
    }

    /// `link`'s output drained: the session may send what its window held back.
    pub fn dial_written(&mut self, link: usize, now: Instant) {
        if let Some(d) = self.dialled.get_mut(link) {
            d.session.on_tick(now, &mut d.out);
        }
        self.dial_settle(link);
    }

    /// The socket of `link` failed, closed, or never connected: the session keeps what was not
    /// acknowledged, and the link is dialled again after [`REDIAL`].
    pub fn dial_lost(&mut self, link: usize, why: &str) {
        let now = self.now;
        let Some(d) = self.dialled.get_mut(link) else {
            return;
        };
        let id = match d.state {
            DialState::Connecting(id) | DialState::Up(id) => Some(id),
            DialState::Down => None,
        };
        log::warn!("link {}: {why}; dialling again in {REDIAL:?}", d.spec.name);
        d.session.link_lost();
        d.state = DialState::Down;
        d.rbuf = BytesMut::new();
        d.out = OutBuf::new();
        d.redial_at = Some(now + REDIAL);
        if let Some(id) = id {
            self.out.dial_closed.push(id);
        }
        self.arm_dial(link);
    }

    /// A delivery for a dialled link (its slot has [`DIALLED_SLOT`]): published upstream.
    pub(super) fn deliver_dialled(&mut self, d: Delivery) {
        let link = (d.to.slot & !DIALLED_SLOT) as usize;
        let now = self.now;
        let Some(l) = self.dialled.get_mut(link) else {
            return;
        };
        l.next_token += 1;
        let msg = OutMessage {
            topic: d.msg.topic.to_string(),
            payload: d.msg.payload.clone(),
            qos: d.qos,
            retain: d.retain,
            properties: d.msg.properties.clone(),
            token: Token(l.next_token),
        };
        if l.session.publish(msg, now, &mut l.out).is_err() {
            // The admission rule, case 3 (`admission.rs`): the link's queue is full (or the
            // topic cannot go upstream): dropped for this subscriber only, counted and logged.
            self.stats.dialled_dropped();
            if let Some(n) = self.drop_log.note(now) {
                log::warn!(
                    "link {}: {n} message(s) dropped, its queue is full",
                    l.spec.name
                );
            }
        }
        self.dial_settle(link);
    }

    /// Takes the session's events (messages in, link verdicts), marks output to write and arms
    /// the link's timer.
    fn dial_settle(&mut self, link: usize) {
        let me = dialled_ref(self.index, link);
        let mut lost = None;
        let mut incoming = Vec::new();
        if let Some(d) = self.dialled.get_mut(link) {
            while let Some(ev) = d.session.poll_event() {
                if ev.closes_link() {
                    lost = Some(format!("{ev:?}"));
                }
                match ev {
                    ClientEvent::Message(p) => incoming.push(p),
                    ClientEvent::Subscribed { filter, result } => {
                        log::info!("link {}: upstream {filter}: {result:?}", d.spec.name);
                    }
                    ClientEvent::Connected {
                        session_present, ..
                    } => {
                        log::info!(
                            "link {}: session up (present: {session_present})",
                            d.spec.name
                        );
                    }
                    _ => {}
                }
            }
            if let DialState::Up(id) = d.state {
                if !d.out.is_empty() && !self.out.dial_dirty.contains(&id) {
                    self.out.dial_dirty.push(id);
                }
            }
        }
        for p in incoming {
            let msg = Message::new(
                p.topic.into_boxed_str(),
                p.payload,
                p.qos,
                p.retain,
                p.properties,
                None,
                Some(me),
            );
            self.route(Some(me), Action::Publish(Arc::new(msg)));
        }
        match lost {
            Some(why) => self.dial_lost(link, &why),
            None => self.arm_dial(link),
        }
    }

    /// Schedules `link`'s next deadline: its redial, or its session's timer.
    fn arm_dial(&mut self, link: usize) {
        let Some(d) = self.dialled.get_mut(link) else {
            return;
        };
        let at = match d.state {
            DialState::Down => d.redial_at,
            DialState::Up(_) => d.session.next_timeout(),
            DialState::Connecting(_) => None,
        };
        if let Some(at) = at {
            d.timer = self
                .timers
                .schedule(TimerKey::Dial(link as u32), at, d.timer);
        }
    }

    /// `link`'s timer entry fired at `now` (`slot`: the entry's slot, to skip stale ones).
    pub(super) fn dial_timer(&mut self, link: usize, slot: u32, now: Instant) {
        let Some(d) = self.dialled.get_mut(link) else {
            return;
        };
        if d.timer != slot {
            return;
        }
        d.timer = 0;
        match d.state {
            DialState::Down if d.redial_at.is_some_and(|at| now >= at) => self.dial(link),
            DialState::Up(_) => {
                d.session.on_tick(now, &mut d.out);
                self.dial_settle(link);
            }
            _ => self.arm_dial(link),
        }
    }

    /// The output of the link on socket `id`, for the I/O layer to write.
    pub fn dial_out(&mut self, link: usize) -> Option<&mut OutBuf> {
        self.dialled.get_mut(link).map(|d| &mut d.out)
    }

    /// The read buffer of `link`, for the I/O layer to fill.
    pub fn dial_rbuf(&mut self, link: usize) -> Option<&mut BytesMut> {
        self.dialled.get_mut(link).map(|d| &mut d.rbuf)
    }

    /// Whether `link`'s TCP connection is still being set up.
    pub fn dial_connecting(&self, link: usize) -> bool {
        self.dialled
            .get(link)
            .is_some_and(|d| matches!(d.state, DialState::Connecting(_)))
    }
}

/// The router address of link `link` of thread `thread`.
pub fn dialled_ref(thread: u16, link: usize) -> SessionRef {
    SessionRef {
        thread,
        slot: DIALLED_SLOT | link as u32,
        generation: 0,
    }
}
