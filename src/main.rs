//! The `picomq` binary: parse the command line, load the config, start the broker and wait.
//!
//! Kept thin on purpose: everything testable lives in the library.

use clap::Parser;

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
    match &cli.conf {
        Some(path) => log::info!(
            "picomq {} starting with {}",
            env!("CARGO_PKG_VERSION"),
            path.display()
        ),
        None => log::info!(
            "picomq {} starting with built-in defaults (no --conf)",
            env!("CARGO_PKG_VERSION")
        ),
    }
    match picomq::net::Broker::start(cfg) {
        Ok(broker) => broker.join(),
        Err(e) => {
            log::error!("{e}");
            eprintln!("picomq: {e}");
            std::process::exit(1);
        }
    }
}
