//! Turns run results into the printed comparison tables, the picomq/Mosquitto ratios, and the
//! notes under them.
//!
//! Owns: derived figures (rates, per-message CPU, percentages) and all formatting. Must not
//! measure anything or touch brokers: it only reads results handed to it.

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
    print_ratios(outcomes);
    print_notes(outcomes);
}

/// "picomq/mosquitto" ratios when both ran.
fn print_ratios(outcomes: &[Outcome<RunResult>]) {
    let find = |name: &str| {
        outcomes
            .iter()
            .find(|o| o.broker == name)
            .and_then(|o| o.result.as_ref().ok())
            .map(derive)
    };
    let (Some(p), Some(m)) = (find("picomq"), find("mosquitto")) else {
        return;
    };
    let cpu = p
        .cpu_us_per_msg
        .zip(m.cpu_us_per_msg)
        .filter(|(_, m)| *m > 0.0)
        .map(|(p, m)| p / m);
    let rate = (m.msgs_per_sec > 0.0).then(|| p.msgs_per_sec / m.msgs_per_sec);
    println!();
    println!(
        "picomq/mosquitto: cpu us/msg x{} (lower is better), msg/s x{} (higher is better)",
        opt(cpu, 2),
        opt(rate, 2)
    );
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
