//! Per-client limit checks of the session layer, sans-IO: topic length, the filter checks behind
//! each SUBACK code, and the publish-rate token bucket.
//!
//! Owns: [`check_topic_name`], [`refuse_filter`], [`RateLimiter`] and [`PublishRate`] (the
//! limiter a session keeps across reconnects and takeovers). Everything takes its time as a `now`
//! argument. Must not touch: sockets, threads, channels or the clock; the decision to pause a
//! socket (the I/O thread makes it from [`PublishRate::charge`] and [`PublishRate::pause`]).

use std::time::{Duration, Instant};

use crate::config::{LimitsConfig, MqttConfig};
use crate::protocol::topic::{
    has_wildcard, split_shared, validate_topic_filter, validate_topic_name,
};
use crate::protocol::{DecodeError, ReasonCode};

/// A PUBLISH or will topic name: valid syntax, at most `max_topic_levels` levels and at most
/// `max_topic_length` bytes. Every failure is Topic Name invalid (0x90), which MQTT 5.0 defines
/// for DISCONNECT and CONNACK as "the Topic Name is correctly formed but is not accepted by this
/// Server": exactly a name over a configured limit. The session answers it with DISCONNECT rather
/// than a PUBACK 0x90 because a QoS 0 PUBLISH has no acknowledgement to carry the code, and one
/// answer for every QoS is easier to diagnose than a silent drop.
pub fn check_topic_name(topic: &str, cfg: &MqttConfig) -> Result<(), DecodeError> {
    if topic.len() > cfg.limits.max_topic_length {
        return Err(DecodeError::new(
            ReasonCode::TOPIC_NAME_INVALID,
            "topic name longer than max_topic_length",
        ));
    }
    validate_topic_name(topic, cfg.max_topic_levels)
}

/// Why one SUBSCRIBE filter is refused, if it is: its syntax or length (Topic Filter invalid,
/// 0x8F: "correctly formed, but not accepted by this Server"), or a feature switched off in
/// config. 3.1.1 clients see every refusal as 0x80 (the encoder maps it).
pub fn refuse_filter(filter: &str, id: Option<u32>, cfg: &MqttConfig) -> Result<(), ReasonCode> {
    if filter.len() > cfg.limits.max_topic_length {
        return Err(ReasonCode::TOPIC_FILTER_INVALID);
    }
    validate_topic_filter(filter, cfg.max_topic_levels).map_err(|e| e.reason)?;
    if split_shared(filter).is_some() && !cfg.shared_subscriptions {
        return Err(ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED);
    }
    if has_wildcard(filter) && !cfg.wildcard_subscriptions {
        return Err(ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED);
    }
    if id.is_some() && !cfg.subscription_identifiers {
        return Err(ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED);
    }
    Ok(())
}

/// One token bucket: `rate` tokens a second, holding at most one second's worth (the burst).
/// Spending is allowed to go below zero (a packet is charged once it has been read, whatever its
/// size); the client then waits until the balance is back to zero.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    rate: f64,
    balance: f64,
}

impl Bucket {
    fn new(rate: u64) -> Bucket {
        Bucket {
            rate: rate as f64,
            balance: rate as f64,
        }
    }

    fn refill(&mut self, elapsed: f64) {
        self.balance = (self.balance + elapsed * self.rate).min(self.rate);
    }

    /// Seconds until the balance is back to zero (0 when it is not negative).
    fn deficit_secs(&self) -> f64 {
        if self.balance >= 0.0 {
            0.0
        } else {
            -self.balance / self.rate
        }
    }
}

/// Publish rate limit of one client: messages and bytes a second, each a token bucket (a zero
/// rate is no bucket). No allocation; [`RateLimiter::charge`] is a few float operations.
#[derive(Debug, Clone, Copy)]
pub struct RateLimiter {
    messages: Option<Bucket>,
    bytes: Option<Bucket>,
    last: Instant,
}

impl RateLimiter {
    /// A limiter with full buckets, or `None` when both rates are 0 (unlimited).
    pub fn new(limits: &LimitsConfig, now: Instant) -> Option<RateLimiter> {
        let messages = (limits.publish_rate > 0).then(|| Bucket::new(limits.publish_rate.into()));
        let bytes = (limits.publish_bytes_rate > 0).then(|| Bucket::new(limits.publish_bytes_rate));
        (messages.is_some() || bytes.is_some()).then_some(RateLimiter {
            messages,
            bytes,
            last: now,
        })
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        for b in [&mut self.messages, &mut self.bytes].into_iter().flatten() {
            b.refill(elapsed);
        }
    }

    /// Charges one PUBLISH of `len` bytes (whole packet).
    pub fn charge(&mut self, len: usize, now: Instant) {
        self.refill(now);
        if let Some(b) = &mut self.messages {
            b.balance -= 1.0;
        }
        if let Some(b) = &mut self.bytes {
            b.balance -= len as f64;
        }
    }

    /// How long the client must wait before its next PUBLISH is within the rate; zero when it may
    /// go on now.
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        let secs = [self.messages, self.bytes]
            .iter()
            .flatten()
            .map(Bucket::deficit_secs)
            .fold(0.0, f64::max);
        Duration::from_secs_f64(secs)
    }
}

/// Longest single pause of a client's input for its publish rate. A longer debt (a packet far
/// larger than a second's worth of `publish_bytes_rate`, which config validation refuses but a
/// programmatic config could set) is paid in several pauses, re-checked before each PUBLISH, so
/// the I/O thread looks at the connection at least this often.
pub const MAX_PAUSE: Duration = Duration::from_secs(1);

/// The publish rate state of one client, kept by its session (and by the I/O thread between an
/// ended session and the next one of the same client id), so reconnecting or taking over does not
/// refill the burst. Unset until the first PUBLISH is charged.
///
/// Boxed: every session holds one, and without a rate limit in the config it costs one word.
#[derive(Debug, Clone, Default)]
pub struct PublishRate(Option<Box<RateLimiter>>);

impl PublishRate {
    /// Whether nothing was ever charged (a fresh session; the I/O thread may hand it the state of
    /// the client's previous session).
    pub fn is_unset(&self) -> bool {
        self.0.is_none()
    }

    /// Charges one PUBLISH of `len` bytes (whole packet) and returns how long the client's input
    /// should pause, at most [`MAX_PAUSE`]; zero when it is within `limits`.
    pub fn charge(&mut self, len: usize, limits: &LimitsConfig, now: Instant) -> Duration {
        if self.0.is_none() {
            self.0 = RateLimiter::new(limits, now).map(Box::new);
        }
        match &mut self.0 {
            Some(r) => {
                r.charge(len, now);
                r.wait(now).min(MAX_PAUSE)
            }
            None => Duration::ZERO,
        }
    }

    /// How long the next PUBLISH must wait, at most [`MAX_PAUSE`]; zero when it may be read now.
    pub fn pause(&mut self, now: Instant) -> Duration {
        self.0
            .as_mut()
            .map_or(Duration::ZERO, |r| r.wait(now).min(MAX_PAUSE))
    }

    /// Whether the buckets are full again at `now`: the state is then the same as a fresh one's
    /// and need not be kept for a later session.
    pub fn is_rested(&mut self, now: Instant) -> bool {
        match &mut self.0 {
            Some(r) => {
                r.refill(now);
                [r.messages, r.bytes]
                    .iter()
                    .flatten()
                    .all(|b| b.balance >= b.rate)
            }
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, bytes: u64) -> LimitsConfig {
        LimitsConfig {
            publish_rate: rate,
            publish_bytes_rate: bytes,
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn zero_rates_mean_no_limiter() {
        assert!(RateLimiter::new(&limits(0, 0), Instant::now()).is_none());
    }

    #[test]
    fn message_bucket_allows_a_one_second_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(&limits(10, 0), t0).unwrap();
        for _ in 0..10 {
            assert_eq!(r.wait(t0), Duration::ZERO);
            r.charge(100, t0);
        }
        assert_eq!(r.wait(t0), Duration::ZERO, "exactly at zero: may go on");
        r.charge(100, t0);
        let w = r.wait(t0);
        assert!(
            w > Duration::from_millis(99) && w <= Duration::from_millis(100),
            "{w:?}"
        );
        assert_eq!(r.wait(t0 + Duration::from_millis(100)), Duration::ZERO);
        // Idle time refills at most one second's worth.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..10 {
            r.charge(1, later);
        }
        r.charge(1, later);
        assert!(r.wait(later) > Duration::ZERO);
    }

    #[test]
    fn byte_bucket_charges_whole_packets_and_can_go_into_debt() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(&limits(0, 1000), t0).unwrap();
        r.charge(3000, t0);
        let w = r.wait(t0);
        assert!(
            w >= Duration::from_millis(1999) && w <= Duration::from_secs(2),
            "{w:?}"
        );
        assert!(r.wait(t0 + Duration::from_secs(1)) > Duration::ZERO);
        assert_eq!(r.wait(t0 + Duration::from_secs(2)), Duration::ZERO);
    }

    #[test]
    fn publish_rate_caps_each_pause_and_keeps_the_debt() {
        let t0 = Instant::now();
        let l = limits(0, 1000);
        let mut p = PublishRate::default();
        assert!(p.is_unset() && p.is_rested(t0));
        // 1 s of burst, then 10 s of debt: each pause is capped, the debt is not forgiven.
        let pause = p.charge(11_000, &l, t0);
        assert_eq!(pause, MAX_PAUSE);
        assert!(!p.is_unset());
        let t5 = t0 + Duration::from_secs(5);
        assert_eq!(p.pause(t5), MAX_PAUSE, "still 5 s in debt");
        assert!(!p.is_rested(t5));
        let t10 = t0 + Duration::from_secs(10);
        assert_eq!(p.pause(t10), Duration::ZERO);
        assert!(
            !p.is_rested(t10),
            "balance back to zero, burst not refilled yet"
        );
        assert!(p.is_rested(t0 + Duration::from_secs(11)));
    }

    #[test]
    fn publish_rate_without_limits_never_pauses() {
        let t0 = Instant::now();
        let mut p = PublishRate::default();
        assert_eq!(p.charge(1 << 20, &limits(0, 0), t0), Duration::ZERO);
        assert!(p.is_unset() && p.is_rested(t0));
    }
}
