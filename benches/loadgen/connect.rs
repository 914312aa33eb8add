//! `--connect-rate N`: how many short-lived sessions per second a broker accepts. Each session is
//! an anonymous plain-TCP connect, CONNECT (clean session, keep-alive 60 s), CONNACK, DISCONNECT,
//! close — the pattern of a fleet of devices reconnecting after an outage. Up to
//! `--connect-parallel` sessions are in progress at once, driven from one thread with mio.
//!
//! Owns: those sockets, all closed before it returns. Bounded: at most N sessions, started only
//! during the window (`--duration`), and sessions still unfinished [`FINISH_GRACE`] after it are
//! counted as failed and closed. Must not spawn brokers or print.

use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::broker::Target;
use crate::client::{self, FrameReader, Version, CONNACK};
use crate::procstat;
use crate::roles::KEEP_ALIVE;
use crate::stats::Histogram;

/// How long sessions started inside the window get to finish after it.
const FINISH_GRACE: Duration = Duration::from_secs(2);
/// Pause after the last session before the second CPU reading, so the broker's teardown of the
/// last connections (it sees the DISCONNECT and the close after we do) is counted.
const TAIL: Duration = Duration::from_millis(200);
/// Slot index bits of a token; the bits above are the slot's generation, so an event left over
/// from a closed socket is never taken for its successor in the same slot.
const SLOT_BITS: u32 = 16;

/// What the connect-rate run found.
#[derive(Default)]
pub struct ConnectResult {
    pub requested: u64,
    /// Sessions started (TCP connect issued).
    pub started: u64,
    /// Sessions that got a successful CONNACK and sent DISCONNECT.
    pub completed: u64,
    pub failed: u64,
    /// From the first connect to the last completion, seconds.
    pub secs: f64,
    /// Broker CPU seconds from the first connect to [`TAIL`] after the last completion.
    pub broker_cpu: Option<f64>,
    pub loadgen_cpu: Option<f64>,
    /// Connect issued to CONNACK read, per completed session.
    pub latency: Histogram,
    /// Starting stopped early: this machine ran out of ephemeral ports (EADDRNOTAVAIL).
    pub ports_exhausted: bool,
    pub first_error: Option<String>,
}

impl ConnectResult {
    pub fn per_sec(&self) -> f64 {
        self.completed as f64 / self.secs.max(1e-9)
    }

    pub fn cpu_us_per_connect(&self) -> Option<f64> {
        self.broker_cpu
            .filter(|_| self.completed > 0)
            .map(|c| c * 1e6 / self.completed as f64)
    }

    fn fail(&mut self, why: String) {
        self.failed += 1;
        self.first_error.get_or_insert(why);
    }
}

/// What the run is asked to do.
pub struct ConnectPlan {
    pub total: u64,
    pub parallel: usize,
    pub window: Duration,
    pub version: Version,
}

#[derive(PartialEq, Eq)]
enum State {
    Connecting,
    AwaitConnack,
}

struct Session {
    stream: TcpStream,
    state: State,
    out: Vec<u8>,
    reader: FrameReader,
    started: Instant,
}

/// One place for a session in progress; `generation` grows each time it is reused.
#[derive(Default)]
struct Slot {
    generation: usize,
    session: Option<Session>,
}

/// Runs the connect-rate measurement against `target`.
pub fn run(target: &Target, plan: &ConnectPlan, hard_end: Instant) -> io::Result<ConnectResult> {
    let mut res = ConnectResult {
        requested: plan.total,
        ..ConnectResult::default()
    };
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut slots: Vec<Slot> = (0..plan.parallel).map(|_| Slot::default()).collect();
    let cpu = || target.pid.and_then(procstat::cpu_seconds);
    let (broker0, own0) = (cpu(), procstat::cpu_seconds(0));
    let t0 = Instant::now();
    let start_until = (t0 + plan.window).min(hard_end);
    let finish_until = (start_until + FINISH_GRACE).min(hard_end);
    let mut last_done = t0;
    let mut can_start = true;
    loop {
        let now = Instant::now();
        can_start &= now < start_until && res.started < plan.total;
        if can_start {
            for (i, slot) in slots.iter_mut().enumerate() {
                if slot.session.is_none() && res.started < plan.total {
                    can_start = start(&poll, slot, i, target, plan.version, &mut res)?;
                    if !can_start {
                        break;
                    }
                }
            }
        }
        let busy = slots.iter().any(|s| s.session.is_some());
        if (!busy && !can_start) || now >= finish_until {
            break;
        }
        let until = if can_start { start_until } else { finish_until };
        let left = until
            .saturating_duration_since(now)
            .min(Duration::from_millis(100));
        poll.poll(&mut events, Some(left))?;
        for ev in events.iter() {
            let (i, generation) = (
                ev.token().0 & ((1 << SLOT_BITS) - 1),
                ev.token().0 >> SLOT_BITS,
            );
            let Some(slot) = slots.get_mut(i) else {
                continue;
            };
            if slot.generation != generation || slot.session.is_none() {
                continue; // an event for a session already closed
            }
            if let Some(done) = advance(slot, plan.version, &mut res) {
                if done {
                    last_done = Instant::now();
                }
            }
        }
    }
    for slot in slots.iter_mut() {
        if slot.session.take().is_some() {
            res.fail("no CONNACK within 2 s after the window".into());
        }
    }
    res.secs = last_done.duration_since(t0).as_secs_f64();
    thread::sleep(TAIL.min(hard_end.saturating_duration_since(Instant::now())));
    res.broker_cpu = broker0.zip(cpu()).map(|(a, b)| b - a);
    res.loadgen_cpu = own0.zip(procstat::cpu_seconds(0)).map(|(a, b)| b - a);
    Ok(res)
}

/// Opens a session in the empty `slot`. Returns whether starting more makes sense: false once the
/// machine has no ephemeral port left. Other connect errors count as a failed session.
fn start(
    poll: &Poll,
    slot: &mut Slot,
    i: usize,
    target: &Target,
    v: Version,
    res: &mut ConnectResult,
) -> io::Result<bool> {
    res.started += 1;
    let mut stream = match TcpStream::connect(target.addr) {
        Ok(s) => s,
        Err(e) if e.raw_os_error() == Some(99) => {
            // EADDRNOTAVAIL: every local port is in use or in TIME_WAIT.
            res.ports_exhausted = true;
            res.fail(format!("connect: {e} (out of ephemeral ports)"));
            return Ok(false);
        }
        Err(e) if matches!(e.raw_os_error(), Some(23 | 24)) => return Err(e),
        Err(e) => {
            res.fail(format!("connect: {e}"));
            return Ok(true);
        }
    };
    slot.generation += 1;
    let token = Token(i | (slot.generation << SLOT_BITS));
    poll.registry()
        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
    let mut out = Vec::with_capacity(48);
    let id = format!("lg-conn-{}-{}", std::process::id(), res.started);
    client::encode_connect(&mut out, v, &id, KEEP_ALIVE);
    slot.session = Some(Session {
        stream,
        state: State::Connecting,
        out,
        reader: FrameReader::new(64),
        started: Instant::now(),
    });
    Ok(true)
}

/// Moves the session in `slot` on after a readiness event. `Some(true)` when it completed (CONNACK
/// read, DISCONNECT sent, socket closed), `Some(false)` when it failed, `None` while it goes on.
fn advance(slot: &mut Slot, v: Version, res: &mut ConnectResult) -> Option<bool> {
    let s = slot.session.as_mut()?;
    let outcome = step(s, v);
    let ok = outcome.is_ok();
    match outcome {
        Ok(false) => return None,
        Ok(true) => {
            res.latency.record(s.started.elapsed().as_nanos() as u64);
            let mut bye = Vec::with_capacity(2);
            client::encode_disconnect(&mut bye);
            // Two bytes into an empty socket buffer: a short write is not a real possibility, and
            // a failed one means the broker closed first, which is still a completed session.
            let _ = s.stream.write_all(&bye);
            res.completed += 1;
        }
        Err(why) => res.fail(why),
    }
    slot.session = None; // closes the socket
    Some(ok)
}

/// Finishes connecting, sends CONNECT, reads CONNACK. `Ok(true)` once a successful CONNACK is in.
fn step(s: &mut Session, v: Version) -> Result<bool, String> {
    if s.state == State::Connecting {
        if let Ok(Some(e)) | Err(e) = s.stream.take_error() {
            return Err(format!("connect: {e}"));
        }
        match s.stream.peer_addr() {
            Ok(_) => s.state = State::AwaitConnack,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
            Err(e) => return Err(format!("connect: {e}")),
        }
    }
    if !s.out.is_empty() {
        match s.stream.write(&s.out) {
            Ok(k) => {
                s.out.drain(..k);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(format!("send CONNECT: {e}")),
        }
    }
    loop {
        match s.reader.read_from(&mut s.stream) {
            Ok(0) => return Err("closed before CONNACK".into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    match s.reader.next_frame() {
        Ok(Some(f)) if f.kind == CONNACK => client::parse_connack(v, f.body)
            .map(|_| true)
            .map_err(|e| e.to_string()),
        Ok(Some(f)) => Err(format!("expected CONNACK, got type {}", f.kind)),
        Ok(None) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}
