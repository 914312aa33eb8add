//! The `picomq` binary: parse the command line, load the config, start the broker, stop it
//! cleanly on SIGINT/SIGTERM; or run a subcommand (`picomq passwd`).
//!
//! Kept thin on purpose: everything testable lives in the library.

use std::io::Read;
use std::os::unix::net::UnixStream;

use clap::Parser;
use picomq::auth::Authenticator;
use picomq::config::cli::Command;
use picomq::net::{Broker, StopHandle};

fn main() {
    let cli = picomq::config::cli::Cli::parse();
    if let Some(Command::Passwd(args)) = &cli.command {
        std::process::exit(picomq::auth::passwd_cli::run(args));
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
    check_auth(&cfg.auth);
    let broker = match Broker::start(cfg) {
        Ok(broker) => broker,
        Err(e) => {
            log::error!("{e}");
            eprintln!("picomq: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = stop_on_signals(broker.stop_handle()) {
        log::warn!("cannot watch SIGINT/SIGTERM ({e}); stop picomq with SIGKILL");
    }
    broker.join();
    log::info!("picomq stopped");
}

/// Loads the `[auth]` files so a missing file or a bad line stops start-up, naming file and line.
///
/// Until the session layer enforces them (issue 4 integration), settings that restrict anything
/// also stop start-up: a broker that silently ignored its password file would be worse than one
/// that refuses to run. The integration replaces this with passing the `Authenticator` to
/// `Broker::start`.
fn check_auth(config: &picomq::config::AuthConfig) {
    let auth = match Authenticator::load(config) {
        Ok(auth) => auth,
        Err(e) => {
            log::error!("{e}");
            eprintln!("picomq: {e}");
            std::process::exit(2);
        }
    };
    for warning in auth.warnings() {
        log::warn!("{warning}");
    }
    if !auth.allows_everything() {
        let message = "[auth] password_file, acl_file and allow_anonymous = false are not \
                       enforced by this build yet; remove them to run";
        log::error!("{message}");
        eprintln!("picomq: {message}");
        std::process::exit(2);
    }
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
