//! The brokers under test: spawning picomq and Mosquitto on free loopback ports, waiting until
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
