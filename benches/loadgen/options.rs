//! The command line of the load generator and its validation into a [`Plan`].
//!
//! Owns: option names, defaults, limits, and the short preset used by a bare `cargo bench`.
//! Must not act on the options (main.rs does).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::client::Version;
use crate::scenario::{Plan, Scenario};
use crate::stats::HEADER_LEN;

/// A broker the tool knows how to spawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BrokerKind {
    Picomq,
    Mosquitto,
    Rumqttd,
}

impl BrokerKind {
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Picomq => "picomq",
            BrokerKind::Mosquitto => "mosquitto",
            BrokerKind::Rumqttd => "rumqttd",
        }
    }
}

/// Drives MQTT brokers on this machine and prints throughput, loss, ordering, latency, and the
/// broker's CPU time per delivered message and memory, to compare picomq with Mosquitto and
/// rumqttd.
#[derive(Parser, Debug)]
#[command(name = "loadgen", version = None)]
pub struct Options {
    /// Traffic pattern
    #[arg(long, value_enum, default_value = "fan-out")]
    pub scenario: Scenario,
    /// N: publishers (fan-in), subscribers (fan-out) or pairs (p2p)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub clients: u32,
    /// QoS of publishes and subscriptions
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,
    /// Payload size in bytes (at least 20: timestamp, publisher id, sequence)
    #[arg(long, default_value_t = 64, value_parser = parse_payload)]
    pub payload: usize,
    /// Messages per second per publisher; 0 = as fast as the in-flight/end-to-end window allows
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Length of the measured window, seconds
    #[arg(long, default_value_t = 10.0, value_parser = parse_secs)]
    pub duration: f64,
    /// Traffic before the window that is not measured, seconds
    #[arg(long, default_value_t = 2.0, value_parser = parse_secs)]
    pub warmup: f64,
    /// MQTT protocol level: 4 (3.1.1) or 5 (5.0)
    #[arg(long = "mqtt-version", default_value_t = 4, value_parser = clap::value_parser!(u8).range(4..=5))]
    pub mqtt_version: u8,
    /// Drive an already running broker on this loopback address instead of spawning brokers
    #[arg(long, value_name = "HOST:PORT")]
    pub broker: Option<String>,
    /// Process id of the --broker, for CPU and memory figures
    #[arg(long, requires = "broker")]
    pub pid: Option<u32>,
    /// Label of the --broker in the table
    #[arg(long, default_value = "broker", requires = "broker")]
    pub name: String,
    /// Brokers to spawn and compare, in order
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "picomq,mosquitto"
    )]
    pub compare: Vec<BrokerKind>,
    /// picomq binary to spawn
    #[arg(long, default_value = "target/release/picomq")]
    pub picomq: PathBuf,
    /// Mosquitto binary to spawn
    #[arg(long, default_value = "/usr/sbin/mosquitto")]
    pub mosquitto: PathBuf,
    /// rumqttd binary to spawn (a bare name is looked up in PATH); install it with
    /// `cargo install rumqttd --version 0.20.0 --locked --root DIR`
    #[arg(long, default_value = "rumqttd")]
    pub rumqttd: PathBuf,
    /// Leave Nagle's algorithm on in the spawned Mosquitto (its default); by default loadgen sets
    /// `set_tcp_nodelay true`, matching picomq, which disables Nagle on every connection
    #[arg(long = "mosquitto-nagle")]
    pub mosquitto_nagle: bool,
    /// Instead of a scenario: open N idle connections and report broker RSS per connection
    #[arg(long = "idle-clients", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub idle_clients: Option<u32>,
    /// Instead of a scenario: hold N idle connections for --idle-secs and report the broker's CPU
    /// time as % of one core
    #[arg(long = "idle-cpu-clients", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000), conflicts_with = "idle_clients")]
    pub idle_cpu_clients: Option<u32>,
    /// With --idle-cpu-clients: length of the measured idle window, seconds
    #[arg(long = "idle-secs", default_value_t = 20.0, value_parser = parse_idle_secs)]
    pub idle_secs: f64,
    /// Instead of a scenario: open up to N connections (CONNECT, CONNACK, DISCONNECT, close),
    /// --connect-parallel at a time, for at most --duration seconds; report connects per second
    #[arg(long = "connect-rate", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=2_000_000), conflicts_with_all = ["idle_clients", "idle_cpu_clients"])]
    pub connect_rate: Option<u32>,
    /// With --connect-rate: connections in progress at once
    #[arg(long = "connect-parallel", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub connect_parallel: u32,
    /// Run the whole comparison N times, brokers interleaved (A, B, C, A, B, C, ...), and print
    /// per-broker medians
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
    /// QoS 1: unacknowledged PUBLISHes per publisher (capped by the broker's Receive Maximum)
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub inflight: u16,
    /// At --rate 0: undelivered messages allowed per subscriber, split among its publishers
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub window: u64,
    /// Hard cap on messages per publisher per run
    #[arg(long = "max-messages", default_value_t = 50_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_messages: u64,
    /// Hard overall deadline in seconds (default: estimated from the options); on expiry brokers
    /// are killed and the process exits
    #[arg(long, value_parser = parse_secs)]
    pub deadline: Option<f64>,
    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    pub bench: bool,
    /// Benchmark name filter passed by `cargo bench FILTER`; loadgen runs only if it matches
    #[arg(hide = true)]
    pub filter: Vec<String>,
}

fn parse_payload(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if !(HEADER_LEN..=1 << 20).contains(&n) {
        return Err(format!(
            "must be between {HEADER_LEN} (timestamp + publisher id + sequence) and 1048576"
        ));
    }
    Ok(n)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(0.0..=10_000_000.0).contains(&r) {
        return Err("must be between 0 and 10000000".into());
    }
    Ok(r)
}

fn parse_idle_secs(s: &str) -> Result<f64, String> {
    let t: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(1.0..=600.0).contains(&t) {
        return Err("must be between 1 and 600 seconds".into());
    }
    Ok(t)
}

fn parse_secs(s: &str) -> Result<f64, String> {
    let t: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(0.0..=3600.0).contains(&t) {
        return Err("must be between 0 and 3600 seconds".into());
    }
    Ok(t)
}

impl Options {
    /// The short default comparison of a bare `cargo bench`: fan-out to 10 subscribers, QoS 0,
    /// 1 s warm-up, 5 s window.
    pub fn preset() -> Options {
        let mut o = Options::parse_from(["loadgen"]);
        o.scenario = Scenario::FanOut;
        o.clients = 10;
        o.qos = 0;
        o.duration = 5.0;
        o.warmup = 1.0;
        o
    }

    pub fn version(&self) -> Version {
        if self.mqtt_version == 5 {
            Version::V5
        } else {
            Version::V4
        }
    }

    /// Checks cross-option constraints and builds the broker-independent plan.
    pub fn plan(&self) -> Result<Plan, String> {
        if self.duration < 0.1 {
            return Err("--duration must be at least 0.1 s".into());
        }
        Ok(Plan {
            scenario: self.scenario,
            clients: self.clients as usize,
            qos: self.qos,
            payload: self.payload,
            rate: self.rate,
            warmup: Duration::from_secs_f64(self.warmup),
            duration: Duration::from_secs_f64(self.duration),
            version: self.version(),
            inflight: self.inflight,
            window: self.window,
            max_messages: self.max_messages,
        })
    }

    /// How many brokers this invocation will drive.
    pub fn target_count(&self) -> usize {
        if self.broker.is_some() {
            1
        } else {
            self.compare.len()
        }
    }

    /// A generous bound on the whole invocation: per broker and round, startup (10 s),
    /// worst-case setup (30 s), drains (10 s) plus warm-up and window, or the idle or connect
    /// phases; plus slack.
    pub fn default_deadline(&self) -> Duration {
        let per_target = if self.idle_clients.is_some() {
            10.0 + 30.0 + 5.0
        } else if self.idle_cpu_clients.is_some() {
            10.0 + 30.0 + 5.0 + self.idle_secs
        } else if self.connect_rate.is_some() {
            10.0 + 10.0 + self.duration
        } else {
            10.0 + 30.0 + 10.0 + self.warmup + self.duration
        };
        let runs = self.target_count() as f64 * f64::from(self.rounds);
        Duration::from_secs_f64(per_target * runs + 10.0)
    }
}
