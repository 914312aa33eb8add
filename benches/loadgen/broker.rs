//! The brokers under test: spawning picomq, Mosquitto and rumqttd on free loopback ports, waiting until
//! they accept connections, and killing and reaping them afterwards — or describing an already
//! running broker given by `--broker`/`--pid`.
//!
//! Owns: child processes it spawned (and only those: every kill goes through the [`Child`] handle
//! kept in the registry here, never by name), their generated config and log files in a private
//! temp directory. Must not send MQTT traffic (the scenarios do that) and must not accept any
//! address other than loopback.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::client::Version;

/// How long a spawned broker gets to start accepting connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Every child we spawned and have not reaped yet, so the hard-deadline watchdog can kill them
/// even while the main thread is stuck somewhere.
static CHILDREN: Mutex<Vec<(u64, Child)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A broker to drive: where it listens, which process to observe (if known), and — when we
/// spawned it — the handle that kills it on drop.
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    spawned: Option<Spawned>,
}

/// A child process we own. Dropping it kills and reaps the child.
struct Spawned {
    id: u64,
    log: PathBuf,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        kill_child(self.id);
    }
}

impl Target {
    /// An already running broker at `addr`, observed through `pid` when given.
    pub fn external(name: &str, addr: SocketAddr, pid: Option<u32>) -> Target {
        Target {
            name: name.to_string(),
            addr,
            pid,
            spawned: None,
        }
    }

    /// Whether a spawned broker has exited on its own, with the tail of its log if so.
    pub fn exited(&self) -> Option<String> {
        let s = self.spawned.as_ref()?;
        let mut list = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
        let (_, child) = list.iter_mut().find(|(id, _)| *id == s.id)?;
        match child.try_wait() {
            Ok(Some(status)) => Some(format!("{status}; log: {}", log_tail(&s.log))),
            _ => None,
        }
    }
}

/// Resolves `--broker HOST:PORT`, insisting on a loopback address: this tool only ever loads
/// brokers on this machine.
pub fn resolve_loopback(spec: &str) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = spec
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {spec:?}: {e}"))?
        .collect();
    addrs
        .iter()
        .copied()
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| {
            format!("{spec:?} is not a loopback address (127.0.0.0/8 or ::1); refusing to load it")
        })
}

/// A port on 127.0.0.1 that was free a moment ago (the OS picks it; we release it for the
/// broker). A race with another process is possible but harmless: the readiness wait fails.
fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("find free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("find free port: {e}"))
}

/// Private directory for generated configs and broker logs.
pub fn work_dir() -> PathBuf {
    std::env::temp_dir().join(format!("picomq-loadgen-{}", std::process::id()))
}

/// Removes [`work_dir`]; best effort, at the very end.
pub fn remove_work_dir() {
    let _ = fs::remove_dir_all(work_dir());
}

/// Starts picomq from `bin` on a free port, or explains why it cannot.
pub fn spawn_picomq(bin: &Path) -> Result<Target, String> {
    if !bin.is_file() {
        return Err(format!(
            "picomq binary {} not found; build it with `cargo build --release` (or pass --picomq PATH)",
            bin.display()
        ));
    }
    let port = free_port()?;
    let mut cmd = Command::new(bin);
    cmd.arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--log-level")
        .arg("warn");
    spawn("picomq", cmd, port)
}

/// Starts Mosquitto from `bin` with a generated config whose queueing limits match picomq's
/// defaults (1000 queued, 32 in flight per client), or explains why it cannot. `nodelay` sets
/// TCP_NODELAY on its sockets as picomq does on every accepted socket; Mosquitto's own default
/// (Nagle on) lets a QoS 0 subscriber that never writes stall delivery on delayed-ACK timers,
/// which would measure the TCP stack instead of the broker.
pub fn spawn_mosquitto(bin: &Path, nodelay: bool) -> Result<Target, String> {
    if !bin.is_file() {
        return Err(format!(
            "mosquitto binary {} not found (apt-get install mosquitto, or pass --mosquitto PATH)",
            bin.display()
        ));
    }
    let port = free_port()?;
    let dir = work_dir();
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let conf = dir.join(format!("mosquitto-{port}.conf"));
    // Only errors and warnings are logged, like picomq at --log-level warn, so neither pays for
    // per-connection log lines.
    let text = format!(
        "# generated by picomq loadgen\n\
         listener {port} 127.0.0.1\n\
         allow_anonymous true\n\
         max_queued_messages 1000\n\
         max_inflight_messages 32\n\
         persistence false\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n\
         set_tcp_nodelay {nodelay}\n"
    );
    fs::write(&conf, text).map_err(|e| format!("write {}: {e}", conf.display()))?;
    let mut cmd = Command::new(bin);
    cmd.arg("-c").arg(&conf);
    spawn("mosquitto", cmd, port)
}

/// Starts rumqttd from `bin` with a generated config (see [`rumqttd_config`]), or explains why it
/// cannot. A rumqttd listener speaks one protocol version, so the config has a 3.1.1 and a 5.0
/// listener and the target is the one for `v`. A bare name such as `rumqttd` is looked up in PATH.
pub fn spawn_rumqttd(bin: &Path, v: Version) -> Result<Target, String> {
    let bin = find_in_path(bin).ok_or_else(|| {
        format!(
            "rumqttd binary {} not found (cargo install rumqttd --version 0.20.0 --locked --root DIR, \
             then pass --rumqttd DIR/bin/rumqttd)",
            bin.display()
        )
    })?;
    let (v4_port, v5_port) = (free_port()?, free_port()?);
    let dir = work_dir();
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    // rumqttd picks the config format from the file name's extension.
    let conf = dir.join(format!("rumqttd-{v4_port}.toml"));
    fs::write(&conf, rumqttd_config(v4_port, v5_port))
        .map_err(|e| format!("write {}: {e}", conf.display()))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--config").arg(&conf).arg("--quiet");
    let port = match v {
        Version::V4 => v4_port,
        Version::V5 => v5_port,
    };
    spawn("rumqttd", cmd, port)
}

/// rumqttd's TOML config (format of rumqttd 0.20's `rumqttd.toml`; every section not written here
/// — console, prometheus, websocket, bridge — is optional and left off, so rumqttd opens no other
/// port). Values differ from its demo file only where the demo would measure something else:
/// - `next_connection_delay_ms = 0`: the demo's 1 ms sleep after every accept caps a listener
///   at 1,000 connects/s, which the connect-rate mode would measure instead of the broker;
/// - `max_connections = 20010`: room for the 10,000-idle-connection measurement and more;
/// - `max_payload_size = 1 MiB`: loadgen's largest `--payload`;
/// - `max_inflight_count = 500`: despite its name, how many incoming packets a connection reads
///   in one batch (its QoS 1 outgoing window is a constant 100 in 0.20, above loadgen's 32);
/// - `connection_timeout_ms = 60000`: wait for CONNECT after accept (a u16 in 0.20);
/// - `dynamic_filters = true` on both listeners (the demo sets it on v4 only): a publisher's
///   topic gets its log even when nobody has subscribed to it yet.
///
/// Segments of 100 MiB x 10 per topic (the demo's) keep a subscriber that lags behind from
/// losing messages to log truncation; loadgen's windows keep the lag far below that.
/// rumqttd logs warnings and errors only when started without `-v`, like the others.
fn rumqttd_config(v4_port: u16, v5_port: u16) -> String {
    let listener = |section: &str, port: u16| {
        format!(
            "[{section}.1]\n\
             name = \"{section}-1\"\n\
             listen = \"127.0.0.1:{port}\"\n\
             next_connection_delay_ms = 0\n\
             [{section}.1.connections]\n\
             connection_timeout_ms = 60000\n\
             max_payload_size = 1048576\n\
             max_inflight_count = 500\n\
             dynamic_filters = true\n\n"
        )
    };
    format!(
        "# generated by picomq loadgen for rumqttd 0.20\n\
         id = 0\n\n\
         [router]\n\
         id = 0\n\
         max_connections = 20010\n\
         max_outgoing_packet_count = 200\n\
         max_segment_size = 104857600\n\
         max_segment_count = 10\n\n\
         {}{}",
        listener("v4", v4_port),
        listener("v5", v5_port)
    )
}

/// `bin` itself when it names a file (absolute, or relative with a slash); a bare name is looked
/// up in the directories of PATH.
fn find_in_path(bin: &Path) -> Option<PathBuf> {
    if bin.components().count() > 1 || bin.is_absolute() {
        return bin.is_file().then(|| bin.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(bin))
        .find(|p| p.is_file())
}

/// Spawns `cmd` with its output going to a log file, registers the child, and waits until its
/// port accepts a TCP connection. On any failure the child is killed before returning.
fn spawn(name: &str, mut cmd: Command, port: u16) -> Result<Target, String> {
    let dir = work_dir();
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let log = dir.join(format!("{name}-{port}.log"));
    let out = File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("dup log handle: {e}"))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let child = cmd.spawn().map_err(|e| format!("spawn {name}: {e}"))?;
    let pid = child.id();
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((id, child));
    let target = Target {
        name: name.to_string(),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        pid: Some(pid),
        spawned: Some(Spawned { id, log }),
    };
    wait_ready(&target)?; // on error `target` drops here and the child is killed
    Ok(target)
}

/// Polls the port every 50 ms until it accepts, the child exits, or [`READY_TIMEOUT`] passes.
fn wait_ready(t: &Target) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if let Some(why) = t.exited() {
            return Err(format!("{} exited during startup ({why})", t.name));
        }
        if TcpStream::connect_timeout(&t.addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if start.elapsed() > READY_TIMEOUT {
            return Err(format!(
                "{} did not accept connections on {} within {:?}",
                t.name, t.addr, READY_TIMEOUT
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Kills and reaps the registered child `id` (if still registered).
fn kill_child(id: u64) {
    let child = {
        let mut list = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
        list.iter()
            .position(|(i, _)| *i == id)
            .map(|pos| list.swap_remove(pos).1)
    };
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Kills and reaps every child still registered; used by the hard-deadline watchdog. Uses
/// `try_lock` so a main thread holding the lock cannot block the watchdog forever.
pub fn kill_all() {
    let Ok(mut list) = CHILDREN.try_lock() else {
        return;
    };
    for (_, c) in list.iter_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    list.clear();
}

/// Last ~400 bytes of a log file, on one line, for error messages.
fn log_tail(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(400)));
        let _ = f.read_to_end(&mut bytes);
    }
    let text = String::from_utf8_lossy(&bytes);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        "(empty)".to_string()
    } else {
        text
    }
}
