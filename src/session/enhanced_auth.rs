//! MQTT 5 enhanced authentication on the wire (MQTT 5.0 section 4.12), sans-IO: the AUTH exchange
//! between CONNECT and CONNACK ([`ConnectAuth`]) and re-authentication on an attached connection
//! ([`LinkAuth`]).
//!
//! Owns: which AUTH packets are legal when, the reason codes of refusals, and the AUTH packets
//! and refusing CONNACKs written. Must not touch: sockets, threads, the clock, credentials or
//! cryptography (an [`AuthMethod`] does that behind its trait), or where the session lives.
//!
//! On success the accepted [`Connect`] carries the outcome: `username` is the user the method
//! authenticated and `properties.authentication_data` the method's final data, which
//! [`Session::attach`](super::Session::attach) returns in CONNACK with the method name.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::auth::{AuthExchange, AuthMethod, Step};
use crate::protocol::{Auth, ConnAck, Connect, Packet, Properties, ProtocolVersion, ReasonCode};

use super::connect::Admitted;
use super::outbuf::OutBuf;

/// Where a CONNECT with an Authentication Method stands.
#[derive(Debug)]
pub enum ConnectStep {
    /// AUTH 0x18 was written; wait for the client's AUTH (the connect timeout still runs).
    Pending(Box<ConnectAuth>),
    /// Authenticated: attach this CONNECT (see the module docs for what it carries). The method
    /// is the one that authenticated it: re-authentication must use the same one (hand it to
    /// [`LinkAuth::new`]), never one looked up again by name.
    Accepted(Box<Connect>, Admitted, Arc<dyn AuthMethod>),
    /// A refusing CONNACK was written (unless even it exceeded the client's Maximum Packet Size):
    /// close the connection once the output is flushed.
    Refused(ReasonCode),
    /// The client sent DISCONNECT during the exchange: close the connection without sending
    /// anything [MQTT-3.1.2-30] (the Will Message, if any, is not published: there is no
    /// session).
    Closed,
}

/// An exchange in progress between CONNECT and CONNACK.
pub struct ConnectAuth {
    connect: Box<Connect>,
    admitted: Admitted,
    method: Arc<dyn AuthMethod>,
    exchange: Box<dyn AuthExchange>,
}

impl fmt::Debug for ConnectAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ConnectAuth({:?}, {})",
            self.admitted.client_id,
            self.method.name()
        )
    }
}

/// The Maximum Packet Size a CONNECT announced: every AUTH and CONNACK written during the
/// exchange must fit in it [MQTT-3.1.2-24].
fn client_max(connect: &Connect) -> u32 {
    connect.properties.maximum_packet_size.unwrap_or(u32::MAX)
}

fn refuse(reason: ReasonCode, why: &str, client: &str, max: u32, out: &mut OutBuf) -> ConnectStep {
    log::info!("refused client {client:?}: {}: {why}", reason.name());
    let ack = ConnAck {
        session_present: false,
        reason,
        properties: Properties::default(),
    };
    // A CONNACK too large for the client is not sent; the connection closes all the same.
    out.packet_within(Packet::ConnAck(ack), ProtocolVersion::V5, max);
    ConnectStep::Refused(reason)
}

/// An AUTH packet carrying `method` and `data`.
fn auth_packet(reason: ReasonCode, method: &str, data: Option<Vec<u8>>) -> Packet {
    Packet::Auth(Auth {
        reason,
        properties: Properties {
            authentication_method: Some(method.to_owned()),
            authentication_data: data.map(Bytes::from),
            ..Properties::default()
        },
    })
}

impl ConnectAuth {
    /// Starts authenticating an admitted CONNECT that names an Authentication Method. `method` is
    /// the registered method of that name, if there is one.
    pub fn begin(
        connect: Box<Connect>,
        admitted: Admitted,
        method: Option<Arc<dyn AuthMethod>>,
        out: &mut OutBuf,
    ) -> ConnectStep {
        let Some(method) = method else {
            // [MQTT-4.12.0-1]: an unsupported method is refused (0x8C) and the connection closed.
            return refuse(
                ReasonCode::BAD_AUTHENTICATION_METHOD,
                "unsupported authentication method",
                &admitted.client_id,
                client_max(&connect),
                out,
            );
        };
        let data = connect.properties.authentication_data.clone();
        let exchange = method.start();
        let auth = Box::new(ConnectAuth {
            connect,
            admitted,
            method,
            exchange,
        });
        auth.advance(data.as_deref().unwrap_or_default(), out)
    }

    /// A packet arrived while the exchange is in progress: only AUTH 0x18 with the same method is
    /// legal [MQTT-4.12.0-3] [MQTT-4.12.0-5], or DISCONNECT, which ends the exchange and the
    /// connection with nothing sent [MQTT-3.1.2-30]; anything else is a protocol error (CONNACK
    /// 0x82).
    pub fn on_packet(self: Box<Self>, packet: Packet, out: &mut OutBuf) -> ConnectStep {
        let cid = &self.admitted.client_id;
        let max = client_max(&self.connect);
        if let Packet::Disconnect(d) = &packet {
            log::info!(
                "client {cid:?}: DISCONNECT ({}) during enhanced authentication",
                d.reason.name()
            );
            return ConnectStep::Closed;
        }
        let Packet::Auth(a) = packet else {
            let what = format!("{} during enhanced authentication", packet.name());
            return refuse(ReasonCode::PROTOCOL_ERROR, &what, cid, max, out);
        };
        if a.reason != ReasonCode::CONTINUE_AUTHENTICATION {
            return refuse(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH reason is not 0x18",
                cid,
                max,
                out,
            );
        }
        if a.properties.authentication_method.as_deref() != Some(self.method.name()) {
            return refuse(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH method differs",
                cid,
                max,
                out,
            );
        }
        self.advance(
            a.properties
                .authentication_data
                .as_deref()
                .unwrap_or_default(),
            out,
        )
    }

    fn advance(mut self: Box<Self>, data: &[u8], out: &mut OutBuf) -> ConnectStep {
        let max = client_max(&self.connect);
        match self.exchange.step(data) {
            Step::Continue(data) => {
                // [MQTT-4.12.0-2]: the server's AUTH carries 0x18 and the method.
                let packet = auth_packet(
                    ReasonCode::CONTINUE_AUTHENTICATION,
                    self.method.name(),
                    Some(data),
                );
                if !out.packet_within(packet, ProtocolVersion::V5, max) {
                    // The client could not receive this challenge: end the exchange unanswered
                    // [MQTT-3.1.2-24] (the caller closes the connection).
                    let cid = &self.admitted.client_id;
                    log::info!("client {cid:?}: AUTH larger than its Maximum Packet Size");
                    return ConnectStep::Refused(ReasonCode::PACKET_TOO_LARGE);
                }
                ConnectStep::Pending(self)
            }
            Step::Success { data, username } => {
                let cid = &self.admitted.client_id;
                if self
                    .connect
                    .username
                    .as_ref()
                    .is_some_and(|u| *u != username)
                {
                    let why = "CONNECT user name differs from the authenticated one";
                    return refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD, why, cid, max, out);
                }
                let c = &mut self.connect;
                c.username = Some(username);
                c.password = None;
                c.properties.authentication_data = data.map(Bytes::from);
                ConnectStep::Accepted(self.connect, self.admitted, self.method)
            }
            Step::Failure { why } => {
                let cid = &self.admitted.client_id;
                // [MQTT-4.12.0-4]: refuse with a CONNACK 0x80 or above and close.
                refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD, &why, cid, max, out)
            }
        }
    }
}

/// Re-authentication state of an attached connection that authenticated with a method.
pub struct LinkAuth {
    method: Arc<dyn AuthMethod>,
    exchange: Option<Box<dyn AuthExchange>>,
    /// The user the connection authenticated as; re-authentication must prove the same one.
    username: Option<String>,
}

impl fmt::Debug for LinkAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LinkAuth({}, in progress: {})",
            self.method.name(),
            self.exchange.is_some()
        )
    }
}

/// What a client AUTH on an attached connection leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReAuthStep {
    /// Send this AUTH (0x18 to continue, 0x00 when re-authentication succeeded).
    Reply(Box<Packet>),
    /// Send DISCONNECT with this reason and close [MQTT-4.12.1-2].
    Fail(ReasonCode, &'static str),
}

impl LinkAuth {
    /// A connection that authenticated as `username` with `method`.
    pub fn new(method: Arc<dyn AuthMethod>, username: Option<String>) -> LinkAuth {
        LinkAuth {
            method,
            exchange: None,
            username,
        }
    }

    /// Whether a re-authentication is in progress.
    pub fn in_progress(&self) -> bool {
        self.exchange.is_some()
    }

    /// Handles a client AUTH (MQTT 5.0 section 4.12.1).
    pub fn on_auth(&mut self, a: Auth) -> ReAuthStep {
        if a.properties.authentication_method.as_deref() != Some(self.method.name()) {
            // [MQTT-4.12.1-1]: re-authentication uses the method of the CONNECT.
            return ReAuthStep::Fail(ReasonCode::PROTOCOL_ERROR, "AUTH method differs");
        }
        let data = a
            .properties
            .authentication_data
            .as_deref()
            .unwrap_or_default();
        match (a.reason, self.exchange.is_some()) {
            (ReasonCode::RE_AUTHENTICATE, false) => {
                self.exchange = Some(self.method.start());
                self.advance(data)
            }
            (ReasonCode::CONTINUE_AUTHENTICATION, true) => self.advance(data),
            (ReasonCode::RE_AUTHENTICATE, true) => ReAuthStep::Fail(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH 0x19 while re-authentication is in progress",
            ),
            (ReasonCode::CONTINUE_AUTHENTICATION, false) => ReAuthStep::Fail(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH 0x18 without a re-authentication in progress",
            ),
            _ => ReAuthStep::Fail(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH reason code a client must not send",
            ),
        }
    }

    fn advance(&mut self, data: &[u8]) -> ReAuthStep {
        let Some(exchange) = self.exchange.as_mut() else {
            return ReAuthStep::Fail(ReasonCode::PROTOCOL_ERROR, "no exchange");
        };
        let name = self.method.name();
        match exchange.step(data) {
            Step::Continue(d) => ReAuthStep::Reply(Box::new(auth_packet(
                ReasonCode::CONTINUE_AUTHENTICATION,
                name,
                Some(d),
            ))),
            Step::Success { data, username } => {
                self.exchange = None;
                if self.username.as_deref() != Some(username.as_str()) {
                    return ReAuthStep::Fail(
                        ReasonCode::NOT_AUTHORIZED,
                        "re-authenticated as a different user",
                    );
                }
                ReAuthStep::Reply(Box::new(auth_packet(ReasonCode::SUCCESS, name, data)))
            }
            Step::Failure { why } => {
                self.exchange = None;
                log::info!("re-authentication failed: {why}");
                ReAuthStep::Fail(ReasonCode::NOT_AUTHORIZED, "re-authentication failed")
            }
        }
    }
}

#[cfg(test)]
#[path = "enhanced_auth_tests.rs"]
mod tests;
