//! The `picomq` binary: parse the command line, load the config, start the broker, stop it
//! cleanly on SIGINT/SIGTERM.
//!
//! Kept thin on purpose: everything testable lives in the library.

use std::io::Read;
use std::os::unix::net::UnixStream;

use clap::Parser;
use picomq::net::{Broker, StopHandle};

fn main() {
    let cli = picomq::config::cli::Cli::parse();
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
            std::process::exit(1);
        }
    };
    if let Err(e) = stop_on_signals(broker.stop_handle()) {
        log::warn!("cannot watch SIGINT/SIGTERM ({e}); stop picomq with SIGKILL");
    }
    broker.join();
    log::info!("picomq stopped");
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
