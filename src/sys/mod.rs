//! `$SYS/broker/...` status topics: the figures, their Mosquitto topic names and payload text, and
//! which of them changed since the last refresh.
//!
//! Owns: [`Counters`] and [`Gauges`] (what each I/O thread measures), [`Status`] (all threads
//! summed), [`SysTopics`] (turns a status into the `(topic, payload)` pairs to publish) and
//! [`is_sys_topic`]. Sans-IO: plain data and functions, no threads, clock or channels; the I/O
//! threads gather the figures and route the messages (`net::sys_stats`). Must not touch: sockets,
//! sessions or the router.
//!
//! Topic names and payloads follow Mosquitto's "BROKER STATUS" (mosquitto(8)), so dashboards
//! written for it work unchanged: every payload is plain text, a decimal number except
//! `version` and `uptime` ("N seconds").

mod load;

use std::time::Duration;

pub use load::LoadAverages;

/// The topic prefix clients may subscribe to but never publish under.
pub const SYS_PREFIX: &str = "$SYS/";

/// Whether `topic` is in the broker's `$SYS` tree, which only the broker publishes to.
pub fn is_sys_topic(topic: &str) -> bool {
    topic == "$SYS" || topic.starts_with(SYS_PREFIX)
}

/// Monotonic counters of one I/O thread (or, summed, of the broker) since start. `u64` on every
/// target, so no figure a user sees wraps; only the owning thread writes them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// MQTT packets of any type decoded from clients.
    pub msgs_received: u64,
    /// MQTT packets of any type queued to clients' sockets.
    pub msgs_sent: u64,
    /// PUBLISH packets decoded from clients.
    pub pub_received: u64,
    /// PUBLISH packets queued to clients' sockets.
    pub pub_sent: u64,
    /// Messages dropped by queue limits, expiry or a client's Maximum Packet Size.
    pub pub_dropped: u64,
    /// MQTT bytes read from clients (over TLS, after decryption).
    pub bytes_received: u64,
    /// MQTT bytes written to clients (over TLS, before encryption).
    pub bytes_sent: u64,
    /// CONNECT packets decoded (for the connection-rate load averages).
    pub connects: u64,
    /// CONNECTs refused with 0x89 Server busy (3.1.1: return code 3) because the password
    /// worker's queue was full: a sign of a flood of logins, or of a password file whose round
    /// count is too high for this machine.
    pub refused_busy: u64,
    /// Retained messages delivered but not stored: the retained store was full.
    pub retained_refused: u64,
}

impl Counters {
    /// Adds `other` into `self` (saturating: a sum of `u64` counters cannot overflow in practice,
    /// and a stuck maximum is better than a wrap).
    pub fn add(&mut self, other: &Counters) {
        let pairs = [
            (&mut self.msgs_received, other.msgs_received),
            (&mut self.msgs_sent, other.msgs_sent),
            (&mut self.pub_received, other.pub_received),
            (&mut self.pub_sent, other.pub_sent),
            (&mut self.pub_dropped, other.pub_dropped),
            (&mut self.bytes_received, other.bytes_received),
            (&mut self.bytes_sent, other.bytes_sent),
            (&mut self.connects, other.connects),
            (&mut self.refused_busy, other.refused_busy),
            (&mut self.retained_refused, other.retained_refused),
        ];
        for (mine, theirs) in pairs {
            *mine = mine.saturating_add(theirs);
        }
    }
}

/// What one I/O thread's sessions look like right now.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Gauges {
    /// Sessions with a connection attached.
    pub connected: u64,
    /// Sessions kept for a client that is not connected (persistent sessions).
    pub disconnected: u64,
    /// Subscriptions (one per filter per session, shared ones included).
    pub subscriptions: u64,
    /// Messages waiting in session queues (mostly for offline clients).
    pub queued: u64,
}

impl Gauges {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Gauges) {
        self.connected += other.connected;
        self.disconnected += other.disconnected;
        self.subscriptions += other.subscriptions;
        self.queued += other.queued;
    }
}

/// The whole broker's figures at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Counters of every I/O thread, summed.
    pub counters: Counters,
    /// Gauges of every I/O thread, summed.
    pub gauges: Gauges,
    /// Retained messages stored, all shards together.
    pub retained: u64,
    /// Time since the broker started.
    pub uptime: Duration,
}

/// Topic of the broker's version, published once.
pub const VERSION_TOPIC: &str = "$SYS/broker/version";

/// Every refreshed topic, in the order they are published.
pub const TOPICS: [&str; 20] = [
    "$SYS/broker/uptime",
    "$SYS/broker/clients/connected",
    "$SYS/broker/clients/disconnected",
    "$SYS/broker/clients/total",
    "$SYS/broker/clients/maximum",
    "$SYS/broker/messages/received",
    "$SYS/broker/messages/sent",
    "$SYS/broker/publish/messages/received",
    "$SYS/broker/publish/messages/sent",
    "$SYS/broker/publish/messages/dropped",
    "$SYS/broker/bytes/received",
    "$SYS/broker/bytes/sent",
    "$SYS/broker/subscriptions/count",
    "$SYS/broker/retained messages/count",
    "$SYS/broker/store/messages/count",
    "$SYS/broker/messages/stored",
    "$SYS/broker/clients/active",
    "$SYS/broker/clients/inactive",
    // Not one of Mosquitto's: it has no password worker to be busy.
    "$SYS/broker/clients/refused/busy",
    // Not one of Mosquitto's either: it has no retained-store limit.
    "$SYS/broker/retained messages/refused",
];

/// The payload of each of [`TOPICS`] for `status`, with `maximum` as the most clients seen
/// connected at once.
pub fn payloads(status: &Status, maximum: u64) -> [String; 20] {
    let (c, g) = (&status.counters, &status.gauges);
    let stored = g.queued.saturating_add(status.retained);
    [
        format!("{} seconds", status.uptime.as_secs()),
        g.connected.to_string(),
        g.disconnected.to_string(),
        (g.connected + g.disconnected).to_string(),
        maximum.to_string(),
        c.msgs_received.to_string(),
        c.msgs_sent.to_string(),
        c.pub_received.to_string(),
        c.pub_sent.to_string(),
        c.pub_dropped.to_string(),
        c.bytes_received.to_string(),
        c.bytes_sent.to_string(),
        g.subscriptions.to_string(),
        status.retained.to_string(),
        stored.to_string(),
        stored.to_string(),
        g.connected.to_string(),
        g.disconnected.to_string(),
        c.refused_busy.to_string(),
        c.retained_refused.to_string(),
    ]
}

/// Decides what to publish at each refresh: the version once, then every topic whose payload
/// differs from the one last published (the messages are retained, so a new subscriber gets the
/// latest value of each at once, as with Mosquitto).
#[derive(Debug, Default)]
pub struct SysTopics {
    version_sent: bool,
    maximum: u64,
    load: LoadAverages,
    /// The payload last published for each topic, in the order `update` lists them.
    last: Vec<String>,
}

impl SysTopics {
    /// Nothing published yet.
    pub fn new() -> SysTopics {
        SysTopics::default()
    }

    /// The `(topic, payload)` pairs to publish for `status`, and remembers them as published.
    pub fn update(&mut self, status: &Status, version: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !self.version_sent {
            self.version_sent = true;
            out.push((
                VERSION_TOPIC.to_string(),
                format!("picomq version {version}"),
            ));
        }
        self.maximum = self.maximum.max(status.gauges.connected);
        let mut now: Vec<(String, String)> = TOPICS
            .iter()
            .map(|t| t.to_string())
            .zip(payloads(status, self.maximum))
            .collect();
        now.extend(self.load.update(&status.counters, status.uptime));
        if self.last.len() != now.len() {
            self.last = vec![String::new(); now.len()];
        }
        for ((topic, payload), last) in now.into_iter().zip(self.last.iter_mut()) {
            if *last != payload {
                last.clone_from(&payload);
                out.push((topic, payload));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(connected: u64, uptime_secs: u64) -> Status {
        let uptime = Duration::from_secs(uptime_secs);
        Status {
            gauges: Gauges {
                connected,
                disconnected: 2,
                subscriptions: 5,
                queued: 7,
            },
            retained: 3,
            uptime,
            ..Status::default()
        }
    }

    fn find<'a>(list: &'a [(String, String)], topic: &str) -> Option<&'a str> {
        list.iter()
            .find(|(t, _)| t == topic)
            .map(|(_, p)| p.as_str())
    }

    #[test]
    fn sys_topics_are_recognised() {
        assert!(is_sys_topic("$SYS"));
        assert!(is_sys_topic("$SYS/broker/uptime"));
        assert!(is_sys_topic("$SYS/"));
        assert!(!is_sys_topic("$SYSTEM/x"));
        assert!(!is_sys_topic("sys/x"));
        assert!(!is_sys_topic("a/$SYS/x"));
        assert!(!is_sys_topic("$sys/x"));
    }

    #[test]
    fn first_update_sends_version_and_everything() {
        let mut t = SysTopics::new();
        let out = t.update(&status(4, 12), "1.2.3");
        assert_eq!(out.len(), 1 + TOPICS.len() + 24);
        assert_eq!(find(&out, VERSION_TOPIC), Some("picomq version 1.2.3"));
        assert_eq!(find(&out, "$SYS/broker/uptime"), Some("12 seconds"));
        assert_eq!(find(&out, "$SYS/broker/clients/connected"), Some("4"));
        assert_eq!(find(&out, "$SYS/broker/clients/disconnected"), Some("2"));
        assert_eq!(find(&out, "$SYS/broker/clients/total"), Some("6"));
        assert_eq!(find(&out, "$SYS/broker/clients/maximum"), Some("4"));
        assert_eq!(find(&out, "$SYS/broker/subscriptions/count"), Some("5"));
        assert_eq!(find(&out, "$SYS/broker/retained messages/count"), Some("3"));
        assert_eq!(find(&out, "$SYS/broker/store/messages/count"), Some("10"));
        assert_eq!(find(&out, "$SYS/broker/clients/refused/busy"), Some("0"));
    }

    #[test]
    fn only_changed_topics_are_sent_again() {
        let mut t = SysTopics::new();
        t.update(&status(4, 12), "1");
        let out = t.update(&status(4, 22), "1");
        let uptime = ("$SYS/broker/uptime".to_string(), "22 seconds".to_string());
        assert_eq!(out, vec![uptime]);
        let out = t.update(&status(1, 22), "1");
        let topics: Vec<&str> = out.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            topics,
            [
                "$SYS/broker/clients/connected",
                "$SYS/broker/clients/total",
                "$SYS/broker/clients/active"
            ]
        );
        assert!(t.update(&status(1, 22), "1").is_empty());
    }

    #[test]
    fn maximum_remembers_the_peak() {
        let mut t = SysTopics::new();
        t.update(&status(9, 1), "1");
        let out = t.update(&status(3, 1), "1");
        assert_eq!(find(&out, "$SYS/broker/clients/connected"), Some("3"));
        assert_eq!(find(&out, "$SYS/broker/clients/maximum"), None);
        let out = t.update(&status(11, 1), "1");
        assert_eq!(find(&out, "$SYS/broker/clients/maximum"), Some("11"));
    }

    #[test]
    fn counters_add_and_saturate_past_32_bits() {
        let mut total = Counters {
            bytes_sent: u64::from(u32::MAX),
            pub_received: u64::MAX - 1,
            ..Counters::default()
        };
        let more = Counters {
            bytes_sent: 10,
            pub_received: 5,
            msgs_sent: 1,
            refused_busy: 2,
            retained_refused: 3,
            ..Counters::default()
        };
        total.add(&more);
        total.add(&more);
        assert_eq!(total.bytes_sent, u64::from(u32::MAX) + 20);
        assert_eq!(total.pub_received, u64::MAX);
        assert_eq!(total.msgs_sent, 2);
        assert_eq!(total.refused_busy, 4);
        let s = Status {
            counters: total,
            ..Status::default()
        };
        let out = SysTopics::new().update(&s, "1");
        assert_eq!(find(&out, "$SYS/broker/bytes/sent"), Some("4294967315"));
        assert_eq!(find(&out, "$SYS/broker/clients/refused/busy"), Some("4"));
        assert_eq!(
            find(&out, "$SYS/broker/retained messages/refused"),
            Some("6")
        );
    }

    #[test]
    fn gauges_add() {
        let mut g = status(1, 0).gauges;
        g.add(&status(2, 0).gauges);
        assert_eq!(
            g,
            Gauges {
                connected: 3,
                disconnected: 4,
                subscriptions: 10,
                queued: 14
            }
        );
    }
}
