//! What the client session tells its caller, and what the caller hands it to publish.
//!
//! Owns: [`ClientEvent`] and the values it carries ([`Token`], [`ServerLimits`], [`Closed`],
//! [`DeadReason`]), the upstream message [`OutMessage`], and the answers of `publish`
//! ([`Submitted`], [`PublishError`]). Must not touch: any state or wire format; these are plain
//! data so a caller can match on them without knowing how the session works.

use bytes::Bytes;

use crate::protocol::{Properties, Publish, QoS, ReasonCode};

/// The caller's name for one upstream message, handed back in the event that ends its life
/// (`Delivered`, `Sent`, `Rejected` or `Dropped`). Opaque to the session; a bridge uses its disk
/// queue offset, so it knows what it may release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub u64);

/// A message to publish upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    /// Topic name (no wildcards). Topic aliases are never used upstream: the gain is small for
    /// a bridge and an alias table would have to be rebuilt on every redial.
    pub topic: String,
    /// Application payload, shared, never copied by the session.
    pub payload: Bytes,
    /// QoS asked for. Sent at most at the server's Maximum QoS (5.0); see [`ClientEvent::Sent`].
    pub qos: QoS,
    /// RETAIN flag; cleared on the wire when the server says Retain Available 0 (5.0), so the
    /// message still gets through.
    pub retain: bool,
    /// PUBLISH properties (5.0 only): expiry, content type, response topic, user properties...
    /// A Topic Alias here is ignored.
    pub properties: Properties,
    /// Handed back in the event that settles the message.
    pub token: Token,
}

impl OutMessage {
    /// A message without properties.
    pub fn new(topic: impl Into<String>, payload: Bytes, qos: QoS, token: Token) -> OutMessage {
        OutMessage {
            topic: topic.into(),
            payload,
            qos,
            retain: false,
            properties: Properties::default(),
            token,
        }
    }
}

/// Where `publish` put a message. Informational: the message's fate always arrives as an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Settled at once: written at QoS 0 (a `Sent` event is queued) or too large for the server
    /// (a `Dropped` event is queued).
    Settled,
    /// Written to the output with this packet identifier; waits for PUBACK or PUBCOMP.
    InFlight(u16),
    /// Waiting for a link, a free window slot or room in the output buffer.
    Queued,
}

/// Why `publish` did not take a message. The message is handed back so nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishError {
    /// `max_queued` messages already wait; try again after some are settled.
    QueueFull(Box<OutMessage>),
    /// The topic is not a valid topic name (empty, wildcard or U+0000).
    InvalidTopic(Box<OutMessage>, &'static str),
}

/// Limits the server announced in CONNACK (5.0), with the specification's defaults for what it
/// left out and for 3.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Receive Maximum: most of our QoS 1/2 PUBLISH it accepts unacknowledged (default 65,535).
    pub receive_maximum: u16,
    /// Maximum QoS it accepts from us (default 2).
    pub maximum_qos: QoS,
    /// Whether it accepts RETAIN 1 (default yes).
    pub retain_available: bool,
    /// Largest packet it accepts (default no limit).
    pub maximum_packet_size: u32,
    /// Keep-alive in force: Server Keep Alive if it sent one, else ours, in seconds.
    pub keep_alive: u16,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            receive_maximum: u16::MAX,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            maximum_packet_size: u32::MAX,
            keep_alive: 0,
        }
    }
}

/// Why the session decided the link is dead (the server said nothing in time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// No CONNACK within `connack_timeout` of CONNECT.
    ConnAckTimeout,
    /// No packet within the ping timeout of a PINGREQ.
    KeepAliveTimeout,
}

/// Why the server closed or refused: its reason code and, in 5.0, what it said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// CONNACK or DISCONNECT reason code (3.1.1 CONNACK return codes mapped to 5.0 codes).
    pub reason: ReasonCode,
    /// Reason String, if the server sent one.
    pub reason_string: Option<String>,
    /// Server Reference (Use another server / Server moved), if the server sent one.
    pub server_reference: Option<String>,
}

impl Closed {
    /// The reason and what the server's CONNACK or DISCONNECT properties said about it.
    pub(crate) fn from_props(reason: ReasonCode, p: &Properties) -> Closed {
        Closed {
            reason,
            reason_string: p.reason_string.clone(),
            server_reference: p.server_reference.clone(),
        }
    }
}

/// What happened, in order. Events marked "closes the link" mean the caller should write out
/// what is in the `OutBuf`, close the connection, call `link_lost`, and redial later (see
/// [`ClientEvent::closes_link`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// CONNACK accepted the connection. `session_present` says whether the server resumed our
    /// session; in-flight messages were retransmitted (or resent as new) and SUBSCRIBEs written.
    Connected {
        /// Session Present flag of CONNACK.
        session_present: bool,
        /// Limits the server announced.
        limits: ServerLimits,
    },
    /// CONNACK refused the connection. Closes the link.
    Refused(Closed),
    /// A message from the server, for the local broker. QoS 1 was acknowledged already; QoS 2 is
    /// reported once, when it first arrives, even if the server
    /// sends it again before PUBREL [MQTT-4.3.3-10]. A topic alias was resolved and removed.
    Message(Box<Publish>),
    /// The server acknowledged this message: PUBACK (QoS 1) or PUBCOMP (QoS 2) with a success
    /// code. The only event that proves delivery; a bridge may release the message now.
    Delivered(Token),
    /// A message sent at QoS 0 (asked for, or downgraded to the server's Maximum QoS) was written
    /// to the output. At most once: there is no acknowledgement to wait for.
    Sent(Token),
    /// The server refused this message for good: PUBACK or PUBREC with a failure code (5.0).
    /// Sending it again would be refused again.
    Rejected {
        /// The message.
        token: Token,
        /// The server's reason code.
        reason: ReasonCode,
    },
    /// The message cannot be sent to this server at all (larger than its Maximum Packet Size:
    /// `PACKET_TOO_LARGE`).
    Dropped {
        /// The message.
        token: Token,
        /// Why.
        reason: ReasonCode,
    },
    /// SUBACK answered one of the configured subscriptions.
    Subscribed {
        /// The filter as configured.
        filter: String,
        /// Granted QoS, or the failure code.
        result: Result<QoS, ReasonCode>,
    },
    /// The server went silent. Closes the link.
    LinkDead(DeadReason),
    /// The server sent DISCONNECT. Closes the link.
    ServerDisconnect(Closed),
    /// The server broke the protocol (malformed bytes, a packet it may not send, an unknown
    /// packet identifier...). A 5.0 DISCONNECT with `reason` was written. Closes the link.
    ProtocolViolation {
        /// The reason code we answered with.
        reason: ReasonCode,
        /// Which rule was broken.
        what: &'static str,
    },
}

impl ClientEvent {
    /// True for the events after which the session expects the link to be closed: it reads no
    /// more input until `link_lost` and a new `start`.
    pub fn closes_link(&self) -> bool {
        matches!(
            self,
            ClientEvent::Refused(_)
                | ClientEvent::LinkDead(_)
                | ClientEvent::ServerDisconnect(_)
                | ClientEvent::ProtocolViolation { .. }
        )
    }
}
