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
    env_logger::Builder::new()
        .filter_level(cfg.log_level)
        .parse_env("RUST_LOG")
        .format_timestamp_millis()
        .init();
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
    if let Err(e) = reload_on_sighup(broker.reloader()) {
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

/// Reloads the password and ACL files and the TLS certificates on each SIGHUP, without dropping
/// connections (new TLS connections get the new certificate); a file that fails to load is
/// reported and its previous version stays in force.
fn reload_on_sighup(reloader: Reloader) -> std::io::Result<()> {
    let (mut rx, tx) = UnixStream::pair()?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGHUP, tx)?;
    std::thread::Builder::new()
        .name("picomq-sighup".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut byte = [0u8; 1];
            while rx.read(&mut byte).is_ok() {
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
