//! The command line: `picomq [-c|--conf PATH] [--check] [--listen ADDR]... [--log-level LEVEL]
//! [--threads N] [--shards N] [--max-connections N]`, plus `--help` and `--version`, and the
//! subcommand `picomq passwd [-c] [-b] [-D] [-I ROUNDS] [-S] FILE USER [PASSWORD]`.
//!
//! Owns: the flag definitions ([`Cli`]) and how flags combine with the file ([`load_config`]): the
//! file (or the built-in defaults when `--conf` is absent) is read first, then every flag given
//! replaces the matching setting. The same combination serves start-up, `--check`
//! (`config::check`) and a reload (`config::reload::load`), so a flag given at start-up is not
//! lost on reload. Must not touch: the file schema (`file.rs`), logger set-up, the files a
//! config names, or any runtime state; printing help/version and exiting is left to the caller
//! (`Cli::parse`).
//!
//! Subcommands are [`Command`] variants; their work lives with the module they serve
//! (`picomq passwd` in `crate::auth::passwd_cli`). A subcommand and the broker's flags cannot be
//! mixed, which is why the broker's `-c` (config file, as Mosquitto's) and `picomq passwd -c`
//! (create the file, as `mosquitto_passwd`'s) do not collide.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::file::{parse_bind, MAX_THREADS};
use super::{resolve_thread_count, Config, ConfigError, ListenerConfig};

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "picomq",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// A tool to run instead of the broker.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Config file (TOML); without it the built-in defaults are used
    #[arg(short = 'c', long, value_name = "PATH")]
    pub conf: Option<PathBuf>,

    /// Check the config and every file it names (password, ACL, TLS) with the other flags
    /// applied, then exit: 0 when valid, 2 otherwise; binds no socket
    #[arg(long)]
    pub check: bool,

    /// Listen on ADDR, an IP and port ([::]:1883 for IPv6); repeatable; replaces the file's listeners
    #[arg(long = "listen", value_name = "ADDR", value_parser = parse_bind)]
    pub listen: Vec<SocketAddr>,

    /// Log level; overrides [log] level (RUST_LOG, when set, still wins)
    #[arg(long, value_name = "LEVEL", value_enum, ignore_case = true)]
    pub log_level: Option<LogLevel>,

    /// I/O threads; 0 = one per two CPU cores; overrides [server] io_threads
    #[arg(long, value_name = "N", value_parser = parse_thread_count)]
    pub threads: Option<usize>,

    /// Router shards; 0 = one per I/O thread; overrides [server] router_shards
    #[arg(long, value_name = "N", value_parser = parse_thread_count)]
    pub shards: Option<usize>,

    /// Most client connections open at once; overrides [server] max_connections
    #[arg(long, value_name = "N", value_parser = parse_max_connections)]
    pub max_connections: Option<usize>,
}

/// Subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Create or update a Mosquitto-compatible password file ($7$ PBKDF2-SHA512 hashes)
    Passwd(PasswdArgs),
}

/// `picomq passwd`: the same options as `mosquitto_passwd`, so scripts carry over.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
#[command(
    after_help = "Without -b the password is read from standard input (one line; typed at a \
                  terminal it is asked twice and not shown). The file is replaced \
                  atomically; a new file is created readable by its owner only."
)]
pub struct PasswdArgs {
    /// Create a new file with this one user, replacing FILE if it exists
    #[arg(short = 'c', conflicts_with = "delete")]
    pub create: bool,
    /// Batch mode: take PASSWORD from the command line
    #[arg(short = 'b', conflicts_with = "delete", requires = "password")]
    pub batch: bool,
    /// Delete USER from FILE
    #[arg(short = 'D')]
    pub delete: bool,
    /// PBKDF2 rounds for the new hash [default: 101, as mosquitto_passwd]
    #[arg(
        short = 'I',
        value_name = "ROUNDS",
        conflicts_with = "delete",
        value_parser = clap::value_parser!(u32).range(1..=i64::from(i32::MAX))
    )]
    pub iterations: Option<u32>,
    /// Write a $scram-sha-256$ entry (for SCRAM-SHA-256 logins; Mosquitto cannot read it)
    #[arg(short = 'S', long = "scram-sha-256", conflicts_with = "delete")]
    pub scram_sha256: bool,
    /// Password file
    pub file: PathBuf,
    /// User name
    pub user: String,
    /// Password (with -b only)
    #[arg(requires = "batch")]
    pub password: Option<String>,
}

/// A log level as written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// No logging.
    Off,
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Also start-up and connection-level information.
    Info,
    /// Also per-packet detail.
    Debug,
    /// Everything.
    Trace,
}

impl From<LogLevel> for log::LevelFilter {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Off => log::LevelFilter::Off,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

impl Cli {
    /// Replaces the settings of `config` that a flag was given for. `--threads 0` and
    /// `--shards 0` mean one per two cores and one per I/O thread; repeated `--listen` addresses are an error.
    pub fn apply_to(&self, config: &mut Config) -> Result<(), ConfigError> {
        if !self.listen.is_empty() {
            let mut listeners: Vec<ListenerConfig> = Vec::with_capacity(self.listen.len());
            for &bind in &self.listen {
                if listeners.iter().any(|l| l.bind == bind) {
                    return Err(ConfigError::flag(
                        "--listen",
                        format!("{bind} is given twice"),
                    ));
                }
                listeners.push(ListenerConfig::plain(bind));
            }
            config.listeners = listeners;
        }
        if let Some(level) = self.log_level {
            config.log_level = level.into();
        }
        if let Some(n) = self.threads {
            config.io_threads = resolve_thread_count(n);
        }
        if let Some(n) = self.shards {
            config.router_shards = n;
        }
        if let Some(n) = self.max_connections {
            config.max_connections = n;
        }
        Ok(())
    }
}

/// Builds the configuration: the `--conf` file if given, else the built-in defaults (noted in the
/// log), then the flags on top.
pub fn load_config(cli: &Cli) -> Result<Config, ConfigError> {
    if cli.conf.is_none() {
        log::info!("no --conf given: using built-in defaults");
    }
    file_then_flags(cli)
}

/// [`load_config`] without its log line, for callers that say what they read themselves
/// (`--check`, a reload).
pub(super) fn file_then_flags(cli: &Cli) -> Result<Config, ConfigError> {
    let mut config = match &cli.conf {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    cli.apply_to(&mut config)?;
    Ok(config)
}

/// Parses `--threads` / `--shards`: 0 (automatic) up to [`MAX_THREADS`].
fn parse_thread_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n <= MAX_THREADS => Ok(n),
        _ => Err(format!(
            "expected a whole number from 0 (automatic) to {MAX_THREADS}"
        )),
    }
}

/// Parses `--max-connections`: at least 1.
fn parse_max_connections(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of at least 1".to_owned()),
    }
}
