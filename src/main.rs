//! The `picomq` binary: parse the command line, load the config, start the broker, stop it
//! cleanly on SIGINT/SIGTERM; or only check the config (`--check`); or run a subcommand
//! (`picomq passwd`).
//!
//! Kept thin on purpose: everything testable lives in the library.

#![forbid(unsafe_code)]

use std::io::Read;
use std::os::unix::net::UnixStream;

use clap::Parser;
use picomq::config::cli::Command;
use picomq::net::{Broker, Reloader, StopHandle};

fn main() {
    let cli = picomq::config::cli::Cli::parse();
    if let Some(Command::Passwd(args)) = &cli.command {
        std::process::exit(picomq::auth::passwd_cli::run(args));
    }
    if cli.check {
        std::process::exit(check(&cli));
    }
    let cfg = match picomq::config::cli::load_config(&cli) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("picomq: {e}");
            std::process::exit(2);
        }
    };
    // Without RUST_LOG the logger lets everything through and `log::set_max_level` decides, so a
    // reload can raise the level; with RUST_LOG its filter rules and reloads leave it alone.
    let rust_log = std::env::var_os("RUST_LOG").is_some();
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Trace)
        .parse_env("RUST_LOG")
        .format_timestamp_millis()
        .init();
    if !rust_log {
        log::set_max_level(cfg.log_level);
    }
    exit_on_panic();
    let version = env!("CARGO_PKG_VERSION");
    match &cli.conf {
        Some(path) => log::info!("picomq {version} starting with {}", path.display()),
        None => log::info!("picomq {version} starting with built-in defaults (no --conf)"),
    }
    let broker = match Broker::start(cfg) {
        Ok(broker) => broker,
        Err(e) => {
            log::error!("{e}");
            eprintln!("picomq: {e}");
            // 2 for a configuration problem (e.g. a bad password or ACL file), as for config
            // errors; 1 when the system refused (a port in use...).
            let code = if e.kind() == std::io::ErrorKind::InvalidInput {
                2
            } else {
                1
            };
            std::process::exit(code);
        }
    };
    if let Err(e) = stop_on_signals(broker.stop_handle()) {
        log::warn!("cannot watch SIGINT/SIGTERM ({e}); stop picomq with SIGKILL");
    }
    if let Err(e) = reload_on_sighup(broker.reloader(), cli, rust_log) {
        log::warn!("cannot watch SIGHUP ({e}); restart picomq to reload auth and TLS files");
    }
    broker.join();
    log::info!("picomq stopped");
}

/// `picomq --check`: one `NAME: OK` line on stdout and exit code 0 when the config and every file
/// it names load; otherwise each error on stderr and 2, the code of a config error at start-up.
/// Warnings go to stderr either way, as start-up would log them.
fn check(cli: &picomq::config::cli::Cli) -> i32 {
    let name = cli.conf.as_ref().map_or_else(
        || "built-in defaults".to_owned(),
        |p| p.display().to_string(),
    );
    match picomq::config::check::check(cli) {
        Ok(checked) => {
            for w in checked.warnings {
                eprintln!("picomq: warning: {w}");
            }
            println!("{name}: OK");
            0
        }
        Err(errors) => {
            for e in errors {
                eprintln!("picomq: {e}");
            }
            2
        }
    }
}

/// On each SIGHUP: re-reads the config file (with the start-up flags on top) and applies it, all
/// or nothing (a file with an error, or a listener that cannot bind, keeps the running
/// configuration; keys that need a restart keep their running value); then re-reads the password,
/// ACL and certificate files, each keeping its previous version if it fails to load. Connections
/// stay up, except those of a listener the new file removed.
fn reload_on_sighup(
    reloader: Reloader,
    cli: picomq::config::cli::Cli,
    rust_log: bool,
) -> std::io::Result<()> {
    let (mut rx, tx) = UnixStream::pair()?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGHUP, tx)?;
    std::thread::Builder::new()
        .name("picomq-sighup".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut byte = [0u8; 1];
            while rx.read(&mut byte).is_ok() {
                reload_config(&reloader, &cli, rust_log);
                match reloader.reload() {
                    Ok(()) => log::info!("SIGHUP: password, ACL and certificate files reloaded"),
                    Err(errors) => {
                        for e in errors {
                            log::error!("SIGHUP: reload failed, previous file kept: {e}");
                        }
                    }
                }
            }
        })?;
    Ok(())
}

/// The config-file half of a SIGHUP.
fn reload_config(reloader: &Reloader, cli: &picomq::config::cli::Cli, rust_log: bool) {
    let new = match picomq::config::reload::load(cli) {
        Ok(new) => new,
        Err(e) => {
            log::error!("SIGHUP: configuration not reloaded, running one kept: {e}");
            return;
        }
    };
    match reloader.reload_config(new) {
        Ok(plan) => {
            for r in &plan.needs_restart {
                log::warn!("SIGHUP: {r}");
            }
            if !rust_log {
                log::set_max_level(plan.config.log_level);
            }
            if plan.nothing_changed() {
                log::info!("SIGHUP: configuration unchanged");
            } else {
                log::info!("SIGHUP: configuration reloaded: {}", plan.summary());
            }
        }
        Err(errors) => {
            for e in errors {
                log::error!("SIGHUP: configuration not reloaded, running one kept: {e}");
            }
        }
    }
}

/// A thread that panics takes the whole process down (exit code 101, the panic logged first), so
/// no half-alive broker keeps accepting connections for a dead I/O thread or waiting on a dead
/// router shard; the supervisor (systemd `Restart=`, procd respawn) starts a whole one again. The
/// `dist` profile aborts on panic anyway; this makes the release profile behave the same and say
/// why. Restarting the thread instead would need its connections and sessions rebuilt from a
/// state the panic may have left inconsistent.
fn exit_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        log::error!("thread {name} panicked: {info}; exiting (code 101) for a restart");
        eprintln!("picomq: thread {name} panicked: {info}");
        std::process::exit(101);
    }));
}

/// Watches SIGINT and SIGTERM through a self-pipe (signal-hook writes a byte from the handler)
/// and stops the broker on the first one; a second signal while stopping exits at once.
fn stop_on_signals(stop: StopHandle) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let (mut rx, tx) = UnixStream::pair()?;
    for sig in [SIGINT, SIGTERM] {
        signal_hook::low_level::pipe::register(sig, tx.try_clone()?)?;
    }
    std::thread::Builder::new()
        .name("picomq-signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut byte = [0u8; 1];
            if rx.read(&mut byte).is_ok() {
                log::info!("signal received: disconnecting clients and stopping");
                stop.stop();
            }
            if rx.read(&mut byte).is_ok() {
                log::warn!("second signal: exiting now");
                std::process::exit(130);
            }
        })?;
    Ok(())
}
