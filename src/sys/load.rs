//! `$SYS/broker/load/...`: exponentially weighted moving averages, over 1, 5 and 15 minutes, of
//! how many messages, PUBLISHes, bytes and connections per minute the broker handles (Mosquitto's
//! load topics, two decimals).
//!
//! Owns: [`LoadAverages`]. Sans-IO: it is handed the counters and the uptime at each refresh and
//! does floating-point arithmetic only then, never on the message path. Must not touch: anything
//! but its own averages.

use std::time::Duration;

use super::Counters;

/// Averaging windows: topic suffix and length in seconds.
const WINDOWS: [(&str, f64); 3] = [("1min", 60.0), ("5min", 300.0), ("15min", 900.0)];

/// The averaged series, as named under `$SYS/broker/load/`.
const SERIES: [&str; 8] = [
    "messages/received",
    "messages/sent",
    "publish/received",
    "publish/sent",
    "publish/dropped",
    "bytes/received",
    "bytes/sent",
    "connections",
];

/// The counter behind each of [`SERIES`].
fn series_values(c: &Counters) -> [u64; 8] {
    [
        c.msgs_received,
        c.msgs_sent,
        c.pub_received,
        c.pub_sent,
        c.pub_dropped,
        c.bytes_received,
        c.bytes_sent,
        c.connects,
    ]
}

/// `e^x` for `x <= 0`, without `f64::exp`: on glibc that call links libm.so, which costs every
/// broker half a MiB of resident memory for a few multiplications every `[sys] interval`.
/// Halves `x` until it is small, sums a short Taylor series, then squares back; relative error
/// below 1e-9, far finer than the two decimals published.
fn exp_neg(x: f64) -> f64 {
    if x.is_nan() || x < -700.0 {
        return 0.0;
    }
    let (mut y, mut halvings) = (x.min(0.0), 0);
    while y < -0.5 {
        y /= 2.0;
        halvings += 1;
    }
    let (mut term, mut sum) = (1.0, 1.0);
    for n in 1..=12 {
        term *= y / f64::from(n);
        sum += term;
    }
    for _ in 0..halvings {
        sum *= sum;
    }
    sum
}

/// Moving averages of every series, per window.
#[derive(Debug, Default)]
pub struct LoadAverages {
    last_values: [u64; 8],
    last_uptime: Duration,
    averages: [[f64; 3]; 8],
}

impl LoadAverages {
    /// Averages of zero, as at start.
    pub fn new() -> LoadAverages {
        LoadAverages::default()
    }

    /// Folds in the counters as they are at `uptime`, and returns every load topic with its
    /// value, in a fixed order. Each average moves towards the per-minute rate seen since the last
    /// call, by a weight that grows with the time elapsed relative to its window, so refreshes
    /// of any interval give the same curves.
    pub fn update(&mut self, counters: &Counters, uptime: Duration) -> Vec<(String, String)> {
        let values = series_values(counters);
        let elapsed = uptime.saturating_sub(self.last_uptime).as_secs_f64();
        if elapsed > 0.0 {
            for (i, value) in values.iter().enumerate() {
                let delta = value.saturating_sub(self.last_values[i]) as f64;
                let per_minute = delta * 60.0 / elapsed;
                for (avg, (_, window)) in self.averages[i].iter_mut().zip(WINDOWS) {
                    let keep = exp_neg(-elapsed / window);
                    *avg = per_minute + keep * (*avg - per_minute);
                }
            }
            self.last_values = values;
            self.last_uptime = uptime;
        }
        let mut out = Vec::with_capacity(SERIES.len() * WINDOWS.len());
        for (name, avgs) in SERIES.iter().zip(&self.averages) {
            for ((window, _), avg) in WINDOWS.iter().zip(avgs) {
                out.push((
                    format!("$SYS/broker/load/{name}/{window}"),
                    format!("{avg:.2}"),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(list: &'a [(String, String)], topic: &str) -> &'a str {
        list.iter()
            .find(|(t, _)| t == topic)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{topic} missing"))
    }

    fn received(n: u64) -> Counters {
        Counters {
            pub_received: n,
            ..Counters::default()
        }
    }

    #[test]
    fn exp_neg_matches_std() {
        for x in [
            0.0,
            -1e-6,
            -0.01,
            -0.5,
            -1.0,
            -1.0 / 6.0,
            -2.5,
            -10.0,
            -60.0,
            -300.0,
        ] {
            let (mine, std) = (exp_neg(x), x.exp());
            assert!((mine - std).abs() <= std * 1e-9, "x={x}: {mine} vs {std}");
        }
        assert_eq!(exp_neg(-1e6), 0.0);
        assert_eq!(exp_neg(f64::NAN), 0.0);
    }

    #[test]
    fn names_follow_mosquitto() {
        let out = LoadAverages::new().update(&Counters::default(), Duration::from_secs(10));
        assert_eq!(out.len(), 24);
        assert_eq!(out[0].0, "$SYS/broker/load/messages/received/1min");
        assert_eq!(out[23].0, "$SYS/broker/load/connections/15min");
        assert!(out.iter().all(|(_, v)| v == "0.00"));
    }

    #[test]
    fn steady_rate_converges_and_short_window_moves_first() {
        let mut load = LoadAverages::new();
        // 100 PUBLISHes every 10 s = 600 a minute, for an hour.
        let mut out = Vec::new();
        for step in 1..=360u64 {
            out = load.update(&received(step * 100), Duration::from_secs(step * 10));
            if step == 6 {
                let one: f64 = value(&out, "$SYS/broker/load/publish/received/1min")
                    .parse()
                    .unwrap();
                let fifteen: f64 = value(&out, "$SYS/broker/load/publish/received/15min")
                    .parse()
                    .unwrap();
                // After one minute: 1 - e^-1 of the way for the 1-minute average.
                assert!((one - 600.0 * (1.0 - (-1.0f64).exp())).abs() < 0.5, "{one}");
                assert!(fifteen < one / 5.0, "{fifteen} vs {one}");
            }
        }
        assert_eq!(
            value(&out, "$SYS/broker/load/publish/received/1min"),
            "600.00"
        );
        assert_eq!(
            value(&out, "$SYS/broker/load/publish/received/5min"),
            "600.00"
        );
        let fifteen: f64 = value(&out, "$SYS/broker/load/publish/received/15min")
            .parse()
            .unwrap();
        assert!((fifteen - 600.0).abs() < 600.0 * 0.02, "{fifteen}");
        assert_eq!(value(&out, "$SYS/broker/load/bytes/sent/1min"), "0.00");
    }

    #[test]
    fn interval_does_not_change_the_curve_and_no_time_means_no_change() {
        let (mut fine, mut coarse) = (LoadAverages::new(), LoadAverages::new());
        let mut a = Vec::new();
        for s in 1..=60u64 {
            a = fine.update(&received(s * 10), Duration::from_secs(s));
        }
        let b = coarse.update(&received(600), Duration::from_secs(60));
        let topic = "$SYS/broker/load/publish/received/5min";
        assert_eq!(value(&a, topic), value(&b, topic));
        let again = coarse.update(&received(600), Duration::from_secs(60));
        assert_eq!(again, b);
    }
}
