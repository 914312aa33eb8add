//! The `[limits]` section of the config file: resource limits against greedy or hostile clients.
//!
//! Owns: the schema and range checks of `[limits]`, validated into
//! [`LimitsConfig`](crate::config::LimitsConfig). Must not touch: other sections, unit syntax
//! (`units.rs`), or the enforcement of the limits (session, router and I/O threads do that).

use std::time::Duration;

use serde::Deserialize;

use super::{Field, Int, Reader, MAX_PACKET_SIZE_LIMIT};
use crate::config::units::{HumanDuration, HumanSize};
use crate::config::{ConfigError, LimitsConfig, RateLimitPolicy};

/// Longest `packet_timeout` accepted.
const MAX_PACKET_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// `[limits]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct LimitsSection {
    max_topic_length: Field<Int>,
    max_subscriptions_per_client: Field<Int>,
    max_retained_messages: Field<Int>,
    max_retained_bytes: Field<HumanSize>,
    max_user_properties: Field<Int>,
    max_properties_size: Field<HumanSize>,
    packet_timeout: Field<HumanDuration>,
    publish_rate: Field<Int>,
    publish_bytes_rate: Field<HumanSize>,
    rate_limit_policy: Field<String>,
}

impl Reader<'_> {
    /// Validates the `[limits]` section into `out`; `max_packet_size` is the validated
    /// `mqtt.max_packet_size` (a non-zero `publish_bytes_rate` must be at least that).
    pub(super) fn limits(
        &self,
        l: &LimitsSection,
        out: &mut LimitsConfig,
        max_packet_size: u32,
    ) -> Result<(), ConfigError> {
        // Topic names and filters are UTF-8 strings, so never longer than 65535 bytes.
        out.max_topic_length = self.int(
            &l.max_topic_length,
            "limits.max_topic_length",
            1..=65535,
            out.max_topic_length,
        )?;
        out.max_subscriptions_per_client = self.int(
            &l.max_subscriptions_per_client,
            "limits.max_subscriptions_per_client",
            1..=i64::MAX,
            out.max_subscriptions_per_client,
        )?;
        out.max_retained_messages = self.int(
            &l.max_retained_messages,
            "limits.max_retained_messages",
            1..=i64::MAX,
            out.max_retained_messages,
        )?;
        out.max_retained_bytes = self.size(
            &l.max_retained_bytes,
            "limits.max_retained_bytes",
            1..=u64::MAX,
            out.max_retained_bytes,
        )?;
        out.max_user_properties = self.int(
            &l.max_user_properties,
            "limits.max_user_properties",
            0..=65535,
            out.max_user_properties,
        )?;
        out.max_properties_size = self.size(
            &l.max_properties_size,
            "limits.max_properties_size",
            1..=MAX_PACKET_SIZE_LIMIT,
            out.max_properties_size,
        )?;
        if let Some(v) = &l.packet_timeout {
            let HumanDuration(d) = *v.get_ref();
            if d.is_zero() || d > MAX_PACKET_TIMEOUT {
                let message = format!("must be more than 0 and at most 1h, got {d:?}");
                return Err(self.error(v.span(), "limits.packet_timeout", message));
            }
            out.packet_timeout = d;
        }
        out.publish_rate = self.int(
            &l.publish_rate,
            "limits.publish_rate",
            0..=i64::from(u32::MAX),
            out.publish_rate,
        )?;
        out.publish_bytes_rate = self.size(
            &l.publish_bytes_rate,
            "limits.publish_bytes_rate",
            0..=u64::MAX,
            out.publish_bytes_rate,
        )?;
        if let Some(v) = &l.publish_bytes_rate {
            // The burst is one second's worth: below one packet, a single PUBLISH of the largest
            // size allowed would owe more than a second and pause the client for that long.
            let rate = out.publish_bytes_rate;
            if rate > 0 && rate < u64::from(max_packet_size) {
                let message = format!(
                    "must be 0 (unlimited) or at least mqtt.max_packet_size ({max_packet_size} \
                     bytes), so one second's burst holds the largest packet, got {rate}"
                );
                return Err(self.error(v.span(), "limits.publish_bytes_rate", message));
            }
        }
        if let Some(v) = &l.rate_limit_policy {
            out.rate_limit_policy = match v.get_ref().as_str() {
                "throttle" => RateLimitPolicy::Throttle,
                "disconnect" => RateLimitPolicy::Disconnect,
                _ => {
                    let message = "must be \"throttle\" or \"disconnect\"";
                    return Err(self.error(v.span(), "limits.rate_limit_policy", message));
                }
            };
        }
        Ok(())
    }
}
