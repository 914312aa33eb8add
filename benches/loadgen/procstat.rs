//! Reads a process's CPU time and memory from Linux `/proc`.
//!
//! Owns: parsing `/proc/PID/stat` (utime + stime, all threads), `/proc/PID/task/*/schedstat`
//! (nanosecond run time per thread), `/proc/PID/status` (VmHWM, VmRSS), this process's
//! open-files limit, and the clock-tick length. Read-only: it must never signal or otherwise touch
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

/// CPU time of `pid` in seconds with nanosecond resolution: the sum of the first field of
/// `/proc/PID/task/*/schedstat` (time on CPU per live thread). The tick counts of [`cpu_seconds`]
/// move in 10 ms steps, too coarse for an idle broker that uses a few ms per second. Threads that
/// exit between two readings take their time with them, so this is for idle brokers whose
/// threads stay put; `None` when the kernel has no schedstat or the process is gone.
pub fn cpu_seconds_fine(pid: u32) -> Option<f64> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut ns: u64 = 0;
    let mut any = false;
    for task in tasks.flatten() {
        // A thread may exit between read_dir and the read: skip it rather than fail.
        let Ok(text) = fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
        any = true;
    }
    any.then(|| ns as f64 / 1e9)
}

/// This process's soft and hard limits on open files, from `/proc/self/limits` (no libc here);
/// `None` for "unlimited" or when unreadable. Spawned brokers inherit the same limits.
pub fn open_files_limit() -> Option<(u64, u64)> {
    let text = fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files(&text)
}

fn parse_open_files(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut nums = line["Max open files".len()..].split_whitespace();
    let soft = nums.next()?.parse().ok()?;
    let hard = nums.next()?.parse().ok()?;
    Some((soft, hard))
}

/// Refuses a run that needs `needed` descriptors in this process (and as many in the broker,
/// which inherits the limit) when the soft open-files limit is lower, with the shell command
/// that raises it. Failing up front beats measuring a run that silently opened fewer.
pub fn check_open_files(needed: u64, what: &str) -> Result<(), String> {
    let Some((soft, hard)) = open_files_limit() else {
        return Ok(());
    };
    if soft >= needed {
        return Ok(());
    }
    let hint = if hard >= needed {
        format!("raise the soft limit first, e.g. bash -c 'ulimit -n {hard}; cargo bench ...'")
    } else {
        format!(
            "the hard limit is {hard} too: raise it as root (ulimit -Hn) or in the container's \
             settings, or ask for fewer"
        )
    };
    Err(format!(
        "{what} needs about {needed} open files in loadgen and as many in the broker, but the \
         open-files limit (ulimit -n) is {soft}; {hint}"
    ))
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
        (
            "open-files line parse",
            parse_open_files(
                "Max open files            1024                 4096                 files\n",
            ) == Some((1024, 4096)),
        ),
    ]
}
