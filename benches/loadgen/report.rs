//! Turns run results into the printed comparison tables, the per-broker medians over rounds, the
//! picomq/peer ratios, and the notes under them.
//!
//! Owns: derived figures (rates, per-message CPU, percentages) and all formatting. Must not
//! measure anything or touch brokers: it only reads results handed to it.

use crate::connect::ConnectResult;
use crate::idle::IdleResult;
use crate::scenario::RunResult;

/// The outcome of one broker in a comparison: figures, or why there are none.
pub struct Outcome<T> {
    pub broker: String,
    pub result: Result<T, String>,
}

/// Figures derived from a [`RunResult`], in the units printed.
struct Derived {
    msgs_per_sec: f64,
    cpu_us_per_msg: Option<f64>,
}

/// Which way a figure is better, for the wording of its ratio.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
    /// A count printed to check the run (loss, reordering, connections held): no ratio.
    Check,
}

/// One figure of a mode, as summarised over rounds and compared between brokers.
pub struct Figure<T> {
    pub name: &'static str,
    pub get: fn(&T) -> Option<f64>,
    pub decimals: usize,
    pub better: Better,
}

/// The figures of a scenario run: CPU per message (the one to quote), throughput, tail latency,
/// and loss and reordering, which must be zero for a figure to count.
pub fn run_figures() -> Vec<Figure<RunResult>> {
    vec![
        Figure {
            name: "cpu us/msg",
            get: |r| derive(r).cpu_us_per_msg,
            decimals: 2,
            better: Better::Lower,
        },
        Figure {
            name: "msg/s",
            get: |r| Some(derive(r).msgs_per_sec),
            decimals: 0,
            better: Better::Higher,
        },
        Figure {
            name: "p99 us",
            get: |r| r.tally.latency.quantile(0.99).map(|n| n as f64 / 1000.0),
            decimals: 0,
            better: Better::Lower,
        },
        Figure {
            name: "lost",
            get: |r| Some(r.expected as f64 - r.tally.received as f64),
            decimals: 0,
            better: Better::Check,
        },
        Figure {
            name: "ooo",
            get: |r| Some(r.tally.out_of_order as f64),
            decimals: 0,
            better: Better::Check,
        },
    ]
}

/// The figures of a connect-rate run.
pub fn connect_figures() -> Vec<Figure<ConnectResult>> {
    vec![
        Figure {
            name: "conn/s",
            get: |r| Some(r.per_sec()),
            decimals: 0,
            better: Better::Higher,
        },
        Figure {
            name: "cpu us/conn",
            get: |r| r.cpu_us_per_connect(),
            decimals: 1,
            better: Better::Lower,
        },
        Figure {
            name: "p99 us",
            get: |r| r.latency.quantile(0.99).map(|n| n as f64 / 1000.0),
            decimals: 0,
            better: Better::Lower,
        },
        Figure {
            name: "failed",
            get: |r| Some(r.failed as f64),
            decimals: 0,
            better: Better::Check,
        },
    ]
}

/// The figures of an idle-memory run.
pub fn idle_figures() -> Vec<Figure<IdleResult>> {
    vec![
        Figure {
            name: "KiB/conn",
            get: |r| r.kib_per_conn(),
            decimals: 1,
            better: Better::Lower,
        },
        Figure {
            name: "held",
            get: |r| Some(r.held() as f64),
            decimals: 0,
            better: Better::Check,
        },
    ]
}

/// The figures of an idle-CPU run.
pub fn idle_cpu_figures() -> Vec<Figure<IdleResult>> {
    vec![
        Figure {
            name: "idle cpu%",
            get: |r| r.idle_cpu_pct(),
            decimals: 3,
            better: Better::Lower,
        },
        Figure {
            name: "held",
            get: |r| Some(r.held() as f64),
            decimals: 0,
            better: Better::Check,
        },
    ]
}

/// Median, minimum and maximum; `None` for no values. The median of an even count is the mean
/// of the middle two.
fn spread(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((median, v[0], v[n - 1]))
}

/// Every broker name in the order first seen over the rounds.
fn brokers<T>(rounds: &[Vec<Outcome<T>>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for o in rounds.iter().flatten() {
        if !names.contains(&o.broker) {
            names.push(o.broker.clone());
        }
    }
    names
}

/// The values of one figure for one broker, one per round in which it was measured.
fn values<T>(rounds: &[Vec<Outcome<T>>], broker: &str, f: &Figure<T>) -> Vec<f64> {
    rounds
        .iter()
        .flatten()
        .filter(|o| o.broker == broker)
        .filter_map(|o| o.result.as_ref().ok())
        .filter_map(f.get)
        .collect()
}

/// Prints, per broker, each figure's median and [min-max] over the rounds, with how many rounds
/// measured it and the last reason a round did not.
pub fn print_summary<T>(rounds: &[Vec<Outcome<T>>], figures: &[Figure<T>]) {
    let mut headers = vec!["broker".to_string(), "rounds ok".to_string()];
    headers.extend(
        figures
            .iter()
            .map(|f| format!("{} median [min-max]", f.name)),
    );
    let mut rows = Vec::new();
    for b in brokers(rounds) {
        let mine: Vec<&Outcome<T>> = rounds.iter().flatten().filter(|o| o.broker == b).collect();
        let ok = mine.iter().filter(|o| o.result.is_ok()).count();
        if ok == 0 {
            let why = mine.iter().rev().find_map(|o| o.result.as_ref().err());
            rows.push(vec![
                format!("{b:<8}"),
                format!("not measured: {}", why.map_or("", |s| s.as_str())),
            ]);
            continue;
        }
        let mut row = vec![b.clone(), format!("{ok}/{}", mine.len())];
        for f in figures {
            let d = f.decimals;
            row.push(match spread(values(rounds, &b, f)) {
                Some((m, lo, hi)) => format!("{m:.d$} [{lo:.d$}-{hi:.d$}]"),
                None => "n/a".into(),
            });
        }
        rows.push(row);
    }
    let headers: Vec<&str> = headers.iter().map(|h| h.as_str()).collect();
    table(&headers, &rows);
}

/// One line per peer measured next to picomq: picomq's median of each figure divided by the
/// peer's, over the same rounds. Figures that are zero for the peer (loss, reordering) have no
/// ratio and are left out.
pub fn print_ratios<T>(rounds: &[Vec<Outcome<T>>], figures: &[Figure<T>]) {
    let medians = |b: &str, f: &Figure<T>| spread(values(rounds, b, f)).map(|s| s.0);
    let names = brokers(rounds);
    if !names.iter().any(|b| b == "picomq") {
        return;
    }
    let what = if rounds.len() > 1 {
        format!(" (medians of {} rounds)", rounds.len())
    } else {
        String::new()
    };
    let mut printed = false;
    for peer in names.iter().filter(|b| *b != "picomq") {
        let parts: Vec<String> = figures
            .iter()
            .filter(|f| f.better != Better::Check)
            .filter_map(|f| {
                let (p, q) = (medians("picomq", f)?, medians(peer, f)?);
                (q > 0.0).then(|| {
                    let way = match f.better {
                        Better::Lower => "lower is better",
                        Better::Higher | Better::Check => "higher is better",
                    };
                    format!("{} x{:.2} ({way})", f.name, p / q)
                })
            })
            .collect();
        if parts.is_empty() {
            continue;
        }
        if !printed {
            println!();
            printed = true;
        }
        println!("picomq/{peer}{what}: {}", parts.join(", "));
    }
}

fn derive(r: &RunResult) -> Derived {
    let delivered = r.tally.delivered_in_window;
    Derived {
        msgs_per_sec: delivered as f64 / r.window_secs.max(1e-9),
        cpu_us_per_msg: r
            .broker_cpu
            .filter(|_| delivered > 0)
            .map(|c| c * 1e6 / delivered as f64),
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.decimals$}"))
}

fn us(ns: Option<u64>) -> String {
    opt(ns.map(|n| n as f64 / 1000.0), 0)
}

fn pct(cpu: Option<f64>, secs: f64) -> String {
    opt(cpu.map(|c| c / secs * 100.0), 0)
}

fn mib(kib: Option<u64>) -> String {
    opt(kib.map(|k| k as f64 / 1024.0), 1)
}

/// Prints rows under headers, the first column left-aligned and the rest right-aligned. A row
/// with a single cell is a full-width note (a skipped broker).
fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows.iter().filter(|r| r.len() == headers.len()) {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 0 {
                s += &format!("{c:<width$}", width = w[0]);
            } else {
                s += &format!("  {c:>width$}", width = w[i]);
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    let total: usize = w.iter().sum::<usize>() + 2 * (w.len() - 1);
    println!("{}", "-".repeat(total));
    for r in rows {
        if r.len() == headers.len() {
            line(r.clone());
        } else {
            println!("{}", r.join(" "));
        }
    }
}

/// Prints the scenario comparison table, ratios and notes.
pub fn print_runs(outcomes: &[Outcome<RunResult>]) {
    let headers = [
        "broker",
        "sent",
        "received",
        "lost",
        "ooo",
        "msg/s",
        "p50 us",
        "p99 us",
        "max us",
        "cpu us/msg",
        "broker cpu%",
        "peak rss MiB",
        "loadgen cpu%",
    ];
    let mut rows = Vec::new();
    for o in outcomes {
        let r = match &o.result {
            Ok(r) => r,
            Err(e) => {
                rows.push(vec![
                    format!("{:<8}", o.broker),
                    format!("not measured: {e}"),
                ]);
                continue;
            }
        };
        let d = derive(r);
        let lat = &r.tally.latency;
        rows.push(vec![
            o.broker.clone(),
            r.sent.to_string(),
            r.tally.received.to_string(),
            (r.expected as i64 - r.tally.received as i64).to_string(),
            r.tally.out_of_order.to_string(),
            format!("{:.0}", d.msgs_per_sec),
            us(lat.quantile(0.50)),
            us(lat.quantile(0.99)),
            us((lat.count() > 0).then(|| lat.max())),
            opt(d.cpu_us_per_msg, 2),
            pct(r.broker_cpu, r.window_secs),
            mib(r.memory.map(|m| m.peak_kib)),
            pct(r.loadgen_cpu, r.window_secs),
        ]);
    }
    table(&headers, &rows);
    print_notes(outcomes);
}

fn print_notes(outcomes: &[Outcome<RunResult>]) {
    for o in outcomes {
        let Ok(r) = &o.result else { continue };
        let mut notes = Vec::new();
        if r.tally.duplicates > 0 {
            notes.push(format!("{} duplicate deliveries", r.tally.duplicates));
        }
        if r.tally.foreign > 0 {
            notes.push(format!("{} foreign payloads", r.tally.foreign));
        }
        if r.bad_acks > 0 {
            notes.push(format!("{} unexpected or failed PUBACKs", r.bad_acks));
        }
        if r.stalls > 0 {
            notes.push(format!(
                "end-to-end window stalled {} times (messages presumed dropped)",
                r.stalls
            ));
        }
        if r.acked < r.qos1_sent {
            notes.push(format!("{} PUBACKs missing", r.qos1_sent - r.acked));
        }
        if !notes.is_empty() {
            println!("{}: {}", o.broker, notes.join(", "));
        }
        if !r.errors.is_empty() {
            println!("{}: {} client error(s):", o.broker, r.errors.len());
            for e in r.errors.iter().take(5) {
                println!("  {e}");
            }
            if r.errors.len() > 5 {
                println!("  ... and {} more", r.errors.len() - 5);
            }
        }
    }
}

/// Prints the idle-connection table.
pub fn print_idle(outcomes: &[Outcome<IdleResult>]) {
    let headers = [
        "broker",
        "requested",
        "opened",
        "failed",
        "dropped",
        "rss before MiB",
        "rss after MiB",
        "KiB/conn",
    ];
    let mut rows = Vec::new();
    for o in outcomes {
        let r = match &o.result {
            Ok(r) => r,
            Err(e) => {
                rows.push(vec![
                    format!("{:<8}", o.broker),
                    format!("not measured: {e}"),
                ]);
                continue;
            }
        };
        rows.push(vec![
            o.broker.clone(),
            r.requested.to_string(),
            r.opened.to_string(),
            r.failed.to_string(),
            r.dropped.to_string(),
            mib(r.rss_before_kib),
            mib(r.rss_after_kib),
            opt(r.kib_per_conn(), 1),
        ]);
    }
    table(&headers, &rows);
    for o in outcomes {
        let Ok(r) = &o.result else { continue };
        if r.fd_limit {
            println!(
                "{}: ran out of file descriptors; raise it with `ulimit -n` (e.g. ulimit -n 65536)",
                o.broker
            );
        }
        if let Some(e) = &r.first_error {
            println!("{}: first error: {e}", o.broker);
        }
    }
}

/// Prints the connect-rate table and its notes.
pub fn print_connects(outcomes: &[Outcome<ConnectResult>]) {
    let headers = [
        "broker",
        "requested",
        "completed",
        "failed",
        "secs",
        "conn/s",
        "p50 us",
        "p99 us",
        "max us",
        "cpu us/conn",
        "broker cpu%",
        "loadgen cpu%",
    ];
    let mut rows = Vec::new();
    for o in outcomes {
        let r = match &o.result {
            Ok(r) => r,
            Err(e) => {
                rows.push(vec![
                    format!("{:<8}", o.broker),
                    format!("not measured: {e}"),
                ]);
                continue;
            }
        };
        let lat = &r.latency;
        rows.push(vec![
            o.broker.clone(),
            r.requested.to_string(),
            r.completed.to_string(),
            r.failed.to_string(),
            format!("{:.2}", r.secs),
            format!("{:.0}", r.per_sec()),
            us(lat.quantile(0.50)),
            us(lat.quantile(0.99)),
            us((lat.count() > 0).then(|| lat.max())),
            opt(r.cpu_us_per_connect(), 1),
            pct(r.broker_cpu, r.secs.max(1e-9)),
            pct(r.loadgen_cpu, r.secs.max(1e-9)),
        ]);
    }
    table(&headers, &rows);
    for o in outcomes {
        let Ok(r) = &o.result else { continue };
        if r.ports_exhausted {
            println!(
                "{}: ran out of ephemeral ports (ip_local_port_range, TIME_WAIT); ask for fewer",
                o.broker
            );
        }
        if let Some(e) = &r.first_error {
            println!("{}: first error: {e}", o.broker);
        }
    }
}

/// Prints the idle-CPU table and its notes.
pub fn print_idle_cpu(outcomes: &[Outcome<IdleResult>]) {
    let headers = [
        "broker",
        "requested",
        "opened",
        "failed",
        "dropped",
        "pings",
        "pongs",
        "window s",
        "broker cpu ms",
        "idle cpu%",
        "rss MiB",
    ];
    let mut rows = Vec::new();
    for o in outcomes {
        let r = match &o.result {
            Ok(r) => r,
            Err(e) => {
                rows.push(vec![
                    format!("{:<8}", o.broker),
                    format!("not measured: {e}"),
                ]);
                continue;
            }
        };
        rows.push(vec![
            o.broker.clone(),
            r.requested.to_string(),
            r.opened.to_string(),
            r.failed.to_string(),
            r.dropped.to_string(),
            r.pings.to_string(),
            r.pongs.to_string(),
            format!("{:.1}", r.idle_secs),
            opt(r.idle_cpu.map(|c| c * 1000.0), 1),
            opt(r.idle_cpu_pct(), 3),
            mib(r.rss_after_kib),
        ]);
    }
    table(&headers, &rows);
    for o in outcomes {
        let Ok(r) = &o.result else { continue };
        if r.fd_limit {
            println!(
                "{}: ran out of file descriptors; raise `ulimit -n`",
                o.broker
            );
        }
        if let Some(e) = &r.first_error {
            println!("{}: first error: {e}", o.broker);
        }
    }
}

/// Self-checks for `cargo test --benches`.
pub fn self_check() -> Vec<(&'static str, bool)> {
    vec![
        (
            "median of odd count",
            spread(vec![3.0, 1.0, 2.0]) == Some((2.0, 1.0, 3.0)),
        ),
        (
            "median of even count",
            spread(vec![4.0, 1.0, 2.0, 3.0]) == Some((2.5, 1.0, 4.0)),
        ),
        ("median of nothing", spread(Vec::new()).is_none()),
    ]
}
