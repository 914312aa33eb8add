//! The admission rule, written down once; every limit, now and in later issues, follows it.
//!
//! A message is either
//! 1. **accepted** — routed, and acknowledged (PUBACK/PUBREC, or nothing for QoS 0) only after
//!    that; with the ack gate on (`ack_gate.rs`), only after it is stored; or
//! 2. **refused before its acknowledgement** — the client learns it from the acknowledgement or
//!    the connection: MQTT 5 PUBACK/PUBREC with a failure code (ACL: 0x87 Not authorized, `$SYS`
//!    topics: 0x87), DISCONNECT (0x95 packet too large, 0x96 publish rate in the disconnect
//!    policy, 0x81/0x82 malformed or protocol error), or a CONNACK refusal before any message
//!    (0x89 Server busy when the password worker's queue is full); MQTT 3.1.1 closes the
//!    connection where it has no code. Nothing acknowledged is taken back; or
//! 3. **dropped for one subscriber by a configured limit** — after it was accepted, one
//!    subscriber's copy is not delivered: its queue is full (`mqtt.max_queued_messages` /
//!    `max_queued_bytes`, QoS 0 first), the message expired while queued, it is larger than that
//!    client's Maximum Packet Size, the subscriber is offline and the copy is QoS 0, or a
//!    dialled link's queue is full. Every such drop is counted in
//!    `$SYS/broker/publish/messages/dropped` and logged, at most once a minute per I/O thread
//!    with the count since the last line ([`DropLog`]), never silently.
//!
//! A retained message that the retained store has no room for (`limits.max_retained_messages` /
//! `max_retained_bytes`) is still accepted and delivered to current subscribers; only its stored
//! copy is refused, counted in `$SYS/broker/retained messages/refused` and logged at most once a
//! minute per shard.
//!
//! Throttling (`limits.rate_limit_policy = "throttle"`) refuses nothing: it stops reading the
//! client, so the message waits in its socket, not in the broker. The router's back-pressure
//! (`routing.rs`) does the same.
//!
//! Owns: this rule (and names [`DropLog`], the rate-limited log of case 3). Must not touch: the limits
//! themselves (sessions, the router and the config own them).

/// The rate-limited log of case 3: the retained store's refusal log, shared (at most one line
/// a minute per I/O thread, with the count since the last).
pub use crate::router::retained_limit::RefusalLog as DropLog;
