//! The `[sys]` section of the config file: how often the `$SYS/broker/...` status topics are
//! published.
//!
//! Owns: the schema and checks of `[sys]`, validated into [`SysConfig`](crate::config::SysConfig).
//! Must not touch: other sections, or the publishing itself (`crate::sys` and `net::sys_stats`).

use std::time::Duration;

use serde::Deserialize;

use super::{Field, Reader};
use crate::config::units::HumanDuration;
use crate::config::{ConfigError, SysConfig};

/// Shortest refresh interval accepted: the I/O threads fold their counters every 250 ms, so
/// anything shorter would publish the same figures twice.
pub const MIN_SYS_INTERVAL: Duration = Duration::from_secs(1);
/// Longest refresh interval accepted (a day); longer is almost certainly a typo.
pub const MAX_SYS_INTERVAL: Duration = Duration::from_secs(86_400);

/// `[sys]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct SysSection {
    interval: Field<HumanDuration>,
}

impl Reader<'_> {
    /// Validates the `[sys]` section into `out`: `interval` of 0 disables the topics, otherwise
    /// it must lie between [`MIN_SYS_INTERVAL`] and [`MAX_SYS_INTERVAL`].
    pub(super) fn sys(&self, s: &SysSection, out: &mut SysConfig) -> Result<(), ConfigError> {
        let Some(v) = &s.interval else {
            return Ok(());
        };
        let HumanDuration(d) = *v.get_ref();
        if d.is_zero() {
            out.interval = None;
            return Ok(());
        }
        if !(MIN_SYS_INTERVAL..=MAX_SYS_INTERVAL).contains(&d) {
            let message = format!("must be 0 (off) or between 1s and 1d, got {d:?}");
            return Err(self.error(v.span(), "sys.interval", message));
        }
        out.interval = Some(d);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;

    fn interval(text: &str) -> Result<Option<Duration>, String> {
        Config::from_toml_str(&format!("[sys]\ninterval = {text}\n"))
            .map(|c| c.sys.interval)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn sys_interval_values() {
        assert_eq!(interval("\"10s\""), Ok(Some(Duration::from_secs(10))));
        assert_eq!(interval("\"1s\""), Ok(Some(Duration::from_secs(1))));
        assert_eq!(interval("\"1d\""), Ok(Some(Duration::from_secs(86_400))));
        assert_eq!(interval("\"0\""), Ok(None));
        assert_eq!(interval("\"0s\""), Ok(None));
        assert_eq!(interval("0"), Ok(None));
        assert_eq!(interval("30"), Ok(Some(Duration::from_secs(30))));
        assert_eq!(
            Config::from_toml_str("").unwrap().sys.interval,
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn sys_interval_out_of_range_names_the_key() {
        for bad in ["\"500ms\"", "\"2d\"", "\"soon\"", "-1"] {
            let err = interval(bad).expect_err(bad);
            assert!(err.contains("sys.interval"), "{bad}: {err}");
        }
        assert!(interval("\"500ms\"")
            .unwrap_err()
            .contains("between 1s and 1d"));
    }
}
