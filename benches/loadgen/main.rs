//! `loadgen`: a load generator that drives MQTT brokers on this machine and prints a comparison
//! table, so picomq's cost per message can be quoted as a ratio against Mosquitto and rumqttd
//! measured in the same run. Run it with `cargo bench --bench loadgen -- [options]`; see benches/README.md.
//!
//! Owns: the top-level flow — choosing the mode and targets, running each in turn for every
//! round, printing, and the hard overall deadline that guarantees the process ends. It speaks MQTT through its own client code
//! (client.rs) and never links the picomq crate, so a codec bug in picomq cannot hide itself.
//! It sends traffic only to loopback addresses.

mod broker;
mod client;
mod connect;
mod idle;
mod options;
mod procstat;
mod report;
mod roles;
mod scenario;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;

use broker::Target;
use options::{BrokerKind, Options};
use report::Outcome;
use scenario::{Plan, Scenario};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        // `cargo test --benches` runs this binary without `--bench`: check, don't load.
        return selftest();
    }
    // A bare `cargo bench` passes only `--bench` (and maybe a name filter): run the preset.
    let preset = args.iter().all(|a| a == "--bench" || !a.starts_with('-'));
    let parsed = Options::parse();
    if !parsed.filter.is_empty() && !parsed.filter.iter().any(|f| "loadgen".contains(f.as_str())) {
        return ExitCode::SUCCESS; // `cargo bench other_bench`: not us
    }
    let opts = if preset {
        println!("loadgen: short default comparison (see benches/README.md for options)");
        Options::preset()
    } else {
        parsed
    };
    let deadline = opts
        .deadline
        .map(Duration::from_secs_f64)
        .unwrap_or_else(|| opts.default_deadline());
    let hard_end = Instant::now() + deadline;
    start_watchdog(deadline, preset);
    let ok = run(&opts, hard_end);
    broker::remove_work_dir();
    if ok || preset {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Kills every spawned broker and ends the process when `after` has passed, whatever the main
/// thread is doing. A bare `cargo bench` must not fail because of a slow machine, so it exits 0.
fn start_watchdog(after: Duration, preset: bool) {
    let spawned = thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            thread::sleep(after);
            eprintln!("loadgen: hard deadline of {after:?} reached; killing brokers and exiting");
            broker::kill_all();
            broker::remove_work_dir();
            std::process::exit(if preset { 0 } else { 3 });
        });
    if let Err(e) = spawned {
        eprintln!("loadgen: cannot start the deadline watchdog ({e}); continuing without it");
    }
}

/// Runs the chosen mode against every target, `--rounds` times. Returns whether at least one
/// broker was measured.
fn run(opts: &Options, hard_end: Instant) -> bool {
    let plan = match opts.plan() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return false;
        }
    };
    let v = plan.version;
    if let Some(n) = opts.idle_clients {
        println!(
            "loadgen: {n} idle connections, MQTT {}, keep-alive {} s",
            version_name(&plan),
            roles::KEEP_ALIVE
        );
        if let Err(e) = fd_check(u64::from(n), "--idle-clients") {
            eprintln!("loadgen: {e}");
            return false;
        }
        let rounds = for_each_round(opts, |t| {
            idle::run(t, n as usize, v, hard_end).map_err(|e| format!("idle run: {e}"))
        });
        return finish(opts, &rounds, report::print_idle, &report::idle_figures());
    }
    if let Some(n) = opts.idle_cpu_clients {
        println!(
            "loadgen: broker CPU with {n} idle connections over {} s, MQTT {}, keep-alive {} s \
             (one PINGREQ per connection per keep-alive period)",
            opts.idle_secs,
            version_name(&plan),
            roles::KEEP_ALIVE
        );
        if let Err(e) = fd_check(u64::from(n), "--idle-cpu-clients") {
            eprintln!("loadgen: {e}");
            return false;
        }
        let secs = Duration::from_secs_f64(opts.idle_secs);
        let rounds = for_each_round(opts, |t| {
            idle::run_cpu(t, n as usize, v, secs, hard_end).map_err(|e| format!("idle run: {e}"))
        });
        return finish(
            opts,
            &rounds,
            report::print_idle_cpu,
            &report::idle_cpu_figures(),
        );
    }
    if let Some(n) = opts.connect_rate {
        let cp = connect::ConnectPlan {
            total: u64::from(n),
            parallel: opts.connect_parallel as usize,
            window: plan.duration,
            version: v,
        };
        println!(
            "loadgen: connect rate, up to {n} sessions (CONNECT, CONNACK, DISCONNECT), {} in \
             parallel, for at most {:?}, MQTT {}",
            cp.parallel,
            cp.window,
            version_name(&plan)
        );
        if let Err(e) = fd_check(u64::from(opts.connect_parallel), "--connect-parallel") {
            eprintln!("loadgen: {e}");
            return false;
        }
        let rounds = for_each_round(opts, |t| {
            connect::run(t, &cp, hard_end).map_err(|e| format!("connect run: {e}"))
        });
        return finish(
            opts,
            &rounds,
            report::print_connects,
            &report::connect_figures(),
        );
    }
    println!("loadgen: {}", describe(&plan));
    let rounds = for_each_round(opts, |t| scenario::run(t, &plan, hard_end));
    finish(opts, &rounds, report::print_runs, &report::run_figures())
}

/// One descriptor per connection in loadgen and in the broker, plus some for loadgen's own files,
/// the broker's listeners and /proc reads.
fn fd_check(connections: u64, what: &str) -> Result<(), String> {
    procstat::check_open_files(connections + 64, what)
}

/// Runs `f` against every target, `--rounds` times, brokers interleaved (A, B, C, A, B, C, ...)
/// so slow drift of the machine (other builds, thermal) spreads over all of them. Each round's
/// table is printed as soon as it is done when there are several rounds.
fn for_each_round<T>(
    opts: &Options,
    mut f: impl FnMut(&Target) -> Result<T, String>,
) -> Vec<Vec<Outcome<T>>> {
    (1..=opts.rounds)
        .map(|k| {
            if opts.rounds > 1 {
                eprintln!("loadgen: round {k}/{}", opts.rounds);
            }
            for_each_target(opts, &mut f)
        })
        .collect()
}

/// Prints each round's table (`print`), then — over several rounds — the per-broker medians, and
/// the picomq/peer ratios. Returns whether any broker was measured in any round.
fn finish<T>(
    opts: &Options,
    rounds: &[Vec<Outcome<T>>],
    print: fn(&[Outcome<T>]),
    figures: &[report::Figure<T>],
) -> bool {
    for (k, outcomes) in rounds.iter().enumerate() {
        println!();
        if opts.rounds > 1 {
            println!("round {}/{}:", k + 1, opts.rounds);
        }
        print(outcomes);
    }
    if opts.rounds > 1 {
        println!();
        println!(
            "over {} rounds (brokers interleaved), median [min-max]:",
            opts.rounds
        );
        report::print_summary(rounds, figures);
    }
    report::print_ratios(rounds, figures);
    rounds.iter().flatten().any(|o| o.result.is_ok())
}

/// Applies `f` to the `--broker` target, or to each `--compare` broker in turn: spawned just
/// before, killed and reaped just after, so the brokers never compete for the CPU.
fn for_each_target<T>(
    opts: &Options,
    mut f: impl FnMut(&Target) -> Result<T, String>,
) -> Vec<Outcome<T>> {
    if let Some(spec) = &opts.broker {
        let result = match opts.pid {
            Some(pid) if !procstat::exists(pid) => Err(format!("no process with --pid {pid}")),
            _ => broker::resolve_loopback(spec)
                .and_then(|addr| f(&Target::external(&opts.name, addr, opts.pid))),
        };
        return vec![Outcome {
            broker: opts.name.clone(),
            result,
        }];
    }
    let mut out: Vec<Outcome<T>> = Vec::new();
    for &kind in &opts.compare {
        if out.iter().any(|o: &Outcome<T>| o.broker == kind.name()) {
            continue; // listed twice
        }
        let spawned = match kind {
            BrokerKind::Picomq => broker::spawn_picomq(&locate(&opts.picomq)),
            BrokerKind::Mosquitto => {
                broker::spawn_mosquitto(&opts.mosquitto, !opts.mosquitto_nagle)
            }
            BrokerKind::Rumqttd => broker::spawn_rumqttd(&opts.rumqttd, opts.version()),
        };
        let result = spawned.and_then(|t| {
            eprintln!(
                "loadgen: {} listening on {} (pid {})",
                t.name,
                t.addr,
                t.pid.unwrap_or(0)
            );
            let r = f(&t);
            // A broker that died mid-run explains the errors better than the clients can.
            match t.exited() {
                Some(why) => Err(format!("{} exited during the run ({why})", t.name)),
                None => r,
            }
        });
        if let Err(e) = &result {
            eprintln!("loadgen: {}: {e}", kind.name());
        }
        out.push(Outcome {
            broker: kind.name().to_string(),
            result,
        });
    }
    out
}

/// A relative binary path is tried from the working directory and then from the package root,
/// so the default `target/release/picomq` works wherever the bench binary is started from.
fn locate(path: &Path) -> PathBuf {
    if path.is_relative() && !path.exists() {
        let from_root = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        if from_root.exists() {
            return from_root;
        }
    }
    path.to_path_buf()
}

fn version_name(plan: &Plan) -> &'static str {
    match plan.version {
        client::Version::V4 => "3.1.1",
        client::Version::V5 => "5.0",
    }
}

/// One line that says exactly what was measured.
fn describe(p: &Plan) -> String {
    let n = p.clients;
    let shape = match p.scenario {
        Scenario::FanIn => format!("fan-in, {n} publishers -> 1 subscriber (wildcard)"),
        Scenario::FanOut => format!("fan-out, 1 publisher -> {n} subscribers"),
        Scenario::P2p => format!("p2p, {n} publisher/subscriber pairs"),
    };
    let mut pace = if p.rate > 0.0 {
        format!("{} msg/s per publisher", p.rate)
    } else {
        format!(
            "max rate within {} undelivered msgs per subscriber",
            p.window
        )
    };
    if p.qos == 1 {
        pace += &format!(", <= {} in flight per publisher", p.inflight);
    }
    format!(
        "{shape}, QoS {}, MQTT {}, {} B payload, {pace}, warm-up {:?}, window {:?}",
        p.qos,
        version_name(p),
        p.payload,
        p.warmup,
        p.duration
    )
}

/// Checks the codec, the statistics and /proc parsing without any network traffic; prints one
/// line per check and a closing `N passed, N failed` line.
fn selftest() -> ExitCode {
    println!("loadgen self-test (run `cargo bench --bench loadgen` to measure brokers)");
    let checks = client::self_check()
        .into_iter()
        .chain(stats::self_check())
        .chain(procstat::self_check())
        .chain(report::self_check());
    let (mut passed, mut failed) = (0, 0);
    for (name, ok) in checks {
        println!("{} {name}", if ok { "ok  " } else { "FAIL" });
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
