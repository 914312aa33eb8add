//! Reads a process's CPU time and memory from Linux `/proc`.
//!
//! Owns: parsing `/proc/PID/stat` (utime + stime, all threads) and `/proc/PID/status`
//! (VmHWM, VmRSS), and the clock-tick length. Read-only: it must never signal or otherwise touch
//! the process it observes.

use std::fs;
use std::process::Command;
use std::sync::OnceLock;

/// Clock ticks per second for `/proc` CPU times. Asked of `getconf CLK_TCK` once (no libc here);
/// 100 — the value on every mainstream Linux — when the command is missing or says nonsense.
pub fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// Total CPU time (user + system, summed over all threads) of `pid` in seconds; `pid` 0 means
/// this process. `None` when the process is gone or the file is unreadable.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let path = if pid == 0 {
        "/proc/self/stat".to_string()
    } else {
        format!("/proc/{pid}/stat")
    };
    let text = fs::read_to_string(path).ok()?;
    let ticks = parse_stat_ticks(&text)?;
    Some(ticks as f64 / clock_ticks() as f64)
}

/// utime + stime in ticks from the text of a `stat` file. The command name (field 2) may contain
/// spaces and parentheses, so fields are counted from the *last* `)`.
fn parse_stat_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    // After ')' come field 3 (state) onward; utime and stime are fields 14 and 15.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory figures in KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// Peak resident set size (VmHWM).
    pub peak_kib: u64,
    /// Current resident set size (VmRSS).
    pub rss_kib: u64,
}

/// Reads VmHWM and VmRSS of `pid`; `None` when the process is gone.
pub fn memory(pid: u32) -> Option<Memory> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut m = Memory::default();
    for line in text.lines() {
        let value = |l: &str| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        };
        if line.starts_with("VmHWM:") {
            m.peak_kib = value(line)?;
        } else if line.starts_with("VmRSS:") {
            m.rss_kib = value(line)?;
        }
    }
    Some(m)
}

/// Whether `/proc/PID` exists, i.e. the process is alive (or a zombie not yet reaped).
pub fn exists(pid: u32) -> bool {
    fs::metadata(format!("/proc/{pid}")).is_ok()
}

/// Self-checks for `cargo test --benches`.
pub fn self_check() -> Vec<(&'static str, bool)> {
    let sample = "42 (a) b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
    vec![
        (
            "stat parse with ')' in comm",
            parse_stat_ticks(sample) == Some(300),
        ),
        ("own cpu time readable", cpu_seconds(0).is_some()),
    ]
}
