//! Idle connections, two measurements. `--idle-clients N`: how much memory a broker spends per
//! idle connection — opens N CONNECTed-but-silent MQTT connections from one thread with mio,
//! reads the broker's RSS before and after, and closes them again. `--idle-cpu-clients N`: how
//! much CPU a broker burns while N clients sit connected — the same connections, held for
//! `--idle-secs` while each sends a PINGREQ once per keep-alive period as a real client would.
//!
//! Owns: those idle sockets, all closed before it returns. Bounded: at most N connection
//! attempts, at most [`CONNECT_PHASE`] for them, a fixed settle time, and the idle window
//! (at most 600 s, checked by the options). Must not spawn brokers or print.

use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::broker::Target;
use crate::client::{self, FrameReader, Version, CONNACK, PINGRESP};
use crate::procstat;
use crate::roles::KEEP_ALIVE;

/// At most this many handshakes in progress at once, so the listen backlog is never flooded.
const MAX_HANDSHAKING: usize = 128;
/// Longest the whole open-and-CONNACK phase may take.
const CONNECT_PHASE: Duration = Duration::from_secs(30);
/// Descriptors given back when the limit is hit, for reading /proc and the like.
const FD_RESERVE: usize = 8;
/// Pause before each RSS reading so the broker has finished allocating (and freeing).
const SETTLE: Duration = Duration::from_millis(1000);

/// What the idle-connection run found.
#[derive(Default)]
pub struct IdleResult {
    pub requested: usize,
    /// Connections that got a successful CONNACK.
    pub opened: usize,
    pub failed: usize,
    /// Connections the broker closed while they sat idle.
    pub dropped: usize,
    /// Opening stopped early because this process ran out of file descriptors.
    pub fd_limit: bool,
    pub first_error: Option<String>,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    /// `--idle-cpu-clients`: length of the idle window and the broker's CPU seconds in it.
    pub idle_secs: f64,
    pub idle_cpu: Option<f64>,
    /// `--idle-cpu-clients`: keep-alive PINGREQs sent and PINGRESPs received in the window.
    pub pings: u64,
    pub pongs: u64,
}

impl IdleResult {
    /// Connections still open when the second RSS reading was taken.
    pub fn held(&self) -> usize {
        self.opened.saturating_sub(self.dropped)
    }

    /// Broker RSS growth per held connection, in KiB.
    pub fn kib_per_conn(&self) -> Option<f64> {
        let (b, a) = (self.rss_before_kib?, self.rss_after_kib?);
        (self.held() > 0).then(|| (a as f64 - b as f64) / self.held() as f64)
    }

    /// Broker CPU in the idle window as % of one core.
    pub fn idle_cpu_pct(&self) -> Option<f64> {
        self.idle_cpu
            .filter(|_| self.idle_secs > 0.0)
            .map(|c| c / self.idle_secs * 100.0)
    }

    fn fail(&mut self, e: String) {
        self.failed += 1;
        self.first_error.get_or_insert(e);
    }
}

#[derive(PartialEq, Eq)]
enum State {
    Connecting,
    AwaitConnack,
    Ready,
    Dead,
}

struct Conn {
    stream: TcpStream,
    state: State,
    out: Vec<u8>,
    reader: FrameReader,
    /// When this connection owes the broker its next PINGREQ (`--idle-cpu-clients` only).
    next_ping: Option<Instant>,
}

/// The open connections and the poller they are registered with.
struct Held {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
}

fn handshaking_state(s: &State) -> bool {
    matches!(s, State::Connecting | State::AwaitConnack)
}

/// Opens `n` idle connections to `target`, measures the broker's RSS growth, closes them.
pub fn run(target: &Target, n: usize, v: Version, hard_end: Instant) -> io::Result<IdleResult> {
    let mut res = IdleResult {
        requested: n,
        ..IdleResult::default()
    };
    let rss = || target.pid.and_then(procstat::memory).map(|m| m.rss_kib);
    thread::sleep(SETTLE);
    res.rss_before_kib = rss();
    let mut held = open_all(target, n, v, hard_end, &mut res)?;
    watch(&mut held, v, &mut res, Instant::now() + SETTLE)?;
    res.rss_after_kib = rss();
    close_all(&mut held);
    Ok(res)
}

/// Opens `n` idle connections to `target`, lets them settle, then measures the broker's CPU time
/// over `secs` while each connection pings once per keep-alive period; closes them.
pub fn run_cpu(
    target: &Target,
    n: usize,
    v: Version,
    secs: Duration,
    hard_end: Instant,
) -> io::Result<IdleResult> {
    let mut res = IdleResult {
        requested: n,
        ..IdleResult::default()
    };
    let mut held = open_all(target, n, v, hard_end, &mut res)?;
    watch(&mut held, v, &mut res, Instant::now() + SETTLE)?;
    res.rss_after_kib = target.pid.and_then(procstat::memory).map(|m| m.rss_kib);
    let now = Instant::now();
    // Spread first pings over one period, as clients that connected at different times would.
    let period = Duration::from_secs(u64::from(KEEP_ALIVE));
    let ready = held
        .conns
        .iter()
        .filter(|c| c.state == State::Ready)
        .count();
    for (k, c) in held
        .conns
        .iter_mut()
        .filter(|c| c.state == State::Ready)
        .enumerate()
    {
        c.next_ping = Some(now + period.mul_f64(k as f64 / ready.max(1) as f64));
    }
    // Fine-grained (schedstat) when the kernel has it, else clock ticks, the same for both ends.
    let fine = target.pid.and_then(procstat::cpu_seconds_fine).is_some();
    let cpu = || {
        let pid = target.pid?;
        if fine {
            procstat::cpu_seconds_fine(pid)
        } else {
            procstat::cpu_seconds(pid)
        }
    };
    let end = (now + secs).min(hard_end);
    let cpu0 = cpu();
    let t0 = Instant::now();
    watch(&mut held, v, &mut res, end)?;
    res.idle_secs = t0.elapsed().as_secs_f64();
    res.idle_cpu = cpu0.zip(cpu()).map(|(a, b)| b - a);
    close_all(&mut held);
    Ok(res)
}

/// Opens up to `n` connections and waits for their CONNACKs, at most [`MAX_HANDSHAKING`] at a
/// time and for at most [`CONNECT_PHASE`]; fills in `opened`, `failed` and the fd-limit note.
fn open_all(
    target: &Target,
    n: usize,
    v: Version,
    hard_end: Instant,
    res: &mut IdleResult,
) -> io::Result<Held> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Conn> = Vec::with_capacity(n);
    let phase_end = (Instant::now() + CONNECT_PHASE).min(hard_end);
    let mut handshaking = 0usize;
    loop {
        while conns.len() < n && handshaking < MAX_HANDSHAKING && !res.fd_limit {
            match open_one(&poll, conns.len(), target, v) {
                Ok(c) => {
                    conns.push(c);
                    handshaking += 1;
                }
                Err(e) if matches!(e.raw_os_error(), Some(23 | 24)) => {
                    // EMFILE / ENFILE: report how far we got and carry on with those, minus a
                    // few closed again so /proc can still be read.
                    res.fd_limit = true;
                    res.first_error
                        .get_or_insert(format!("after {} sockets: {e}", conns.len()));
                    for _ in 0..FD_RESERVE.min(conns.len()) {
                        if let Some(c) = conns.pop() {
                            handshaking -= usize::from(handshaking_state(&c.state));
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let done = (conns.len() == n || res.fd_limit) && handshaking == 0;
        if done || Instant::now() >= phase_end {
            break;
        }
        let left = phase_end.saturating_duration_since(Instant::now());
        poll.poll(&mut events, Some(left.min(Duration::from_millis(200))))?;
        for ev in events.iter() {
            // Events for connections dropped to free descriptors may still arrive.
            let Some(c) = conns.get_mut(ev.token().0) else {
                continue;
            };
            let before = handshaking_state(&c.state);
            step(c, v, res);
            if before && !handshaking_state(&c.state) {
                handshaking -= 1;
            }
        }
    }
    // Anything still handshaking at the phase end counts as failed.
    for c in conns.iter_mut() {
        if handshaking_state(&c.state) {
            c.state = State::Dead;
            res.fail("no CONNACK before the connect-phase deadline".into());
        }
    }
    res.opened = conns.iter().filter(|c| c.state == State::Ready).count();
    Ok(Held {
        poll,
        events,
        conns,
    })
}

/// Says goodbye on every connection still up; the sockets close when `held` drops.
fn close_all(held: &mut Held) {
    for c in held.conns.iter_mut().filter(|c| c.state == State::Ready) {
        let mut bye = Vec::with_capacity(2);
        client::encode_disconnect(&mut bye);
        let _ = c.stream.write_all(&bye);
    }
}

/// Starts one non-blocking connect and registers it under token `i`.
fn open_one(poll: &Poll, i: usize, target: &Target, v: Version) -> io::Result<Conn> {
    let mut stream = TcpStream::connect(target.addr)?;
    poll.registry().register(
        &mut stream,
        Token(i),
        Interest::READABLE | Interest::WRITABLE,
    )?;
    let mut out = Vec::with_capacity(32);
    client::encode_connect(
        &mut out,
        v,
        &format!("lg-idle-{}-{i}", std::process::id()),
        KEEP_ALIVE,
    );
    Ok(Conn {
        stream,
        state: State::Connecting,
        out,
        reader: FrameReader::new(64),
        next_ping: None,
    })
}

/// Advances one connection on a readiness event: finish connecting, send CONNECT, read CONNACK,
/// or notice the broker closing an idle connection.
fn step(c: &mut Conn, v: Version, res: &mut IdleResult) {
    if c.state == State::Connecting {
        match c.stream.take_error() {
            Ok(Some(e)) | Err(e) => return kill(c, res, format!("connect: {e}")),
            Ok(None) => {}
        }
        match c.stream.peer_addr() {
            Ok(_) => c.state = State::AwaitConnack,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
            Err(e) => return kill(c, res, format!("connect: {e}")),
        }
    }
    if !c.out.is_empty() {
        match c.stream.write(&c.out) {
            Ok(k) => {
                c.out.drain(..k);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => return kill(c, res, format!("send CONNECT: {e}")),
        }
    }
    loop {
        match c.reader.read_from(&mut c.stream) {
            Ok(0) => {
                if c.state == State::Ready {
                    res.dropped += 1;
                    c.state = State::Dead;
                    return;
                }
                return kill(c, res, "closed before CONNACK".into());
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return kill(c, res, format!("read: {e}")),
        }
    }
    if c.state == State::Ready {
        // Only PINGRESPs are expected now; anything else is consumed and ignored.
        while let Ok(Some(f)) = c.reader.next_frame() {
            res.pongs += u64::from(f.kind == PINGRESP);
        }
        return;
    }
    if c.state == State::AwaitConnack {
        let outcome = match c.reader.next_frame() {
            Ok(Some(f)) if f.kind == CONNACK => client::parse_connack(v, f.body)
                .map(|_| true)
                .map_err(|e| e.to_string()),
            Ok(Some(f)) => Err(format!("expected CONNACK, got type {}", f.kind)),
            Ok(None) => Ok(false),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(true) => c.state = State::Ready,
            Ok(false) => {}
            Err(e) => kill(c, res, e),
        }
    }
}

fn kill(c: &mut Conn, res: &mut IdleResult, why: String) {
    c.state = State::Dead;
    res.fail(why);
}

/// Services events until `end`, so connections the broker drops are counted, and sends each
/// connection's PINGREQ when it is due (only connections given a `next_ping` ever ping).
fn watch(held: &mut Held, v: Version, res: &mut IdleResult, end: Instant) -> io::Result<()> {
    let period = Duration::from_secs(u64::from(KEEP_ALIVE));
    while Instant::now() < end {
        // Waking once a second to look for due pings costs far less than the broker's own timers.
        let left = end.saturating_duration_since(Instant::now());
        held.poll
            .poll(&mut held.events, Some(left.min(Duration::from_secs(1))))?;
        for ev in held.events.iter() {
            if let Some(c) = held.conns.get_mut(ev.token().0) {
                if c.state == State::Ready {
                    step(c, v, res);
                }
            }
        }
        let now = Instant::now();
        for c in held.conns.iter_mut().filter(|c| c.state == State::Ready) {
            let Some(due) = c.next_ping.filter(|&due| due <= now) else {
                continue;
            };
            let mut ping = Vec::with_capacity(2);
            client::encode_pingreq(&mut ping);
            // Two bytes on a silent socket: a short write would mean a broker not reading.
            match c.stream.write(&ping) {
                Ok(2) => res.pings += 1,
                Ok(_) | Err(_) => kill(c, res, "PINGREQ not sent".into()),
            }
            c.next_ping = Some(due + period);
        }
    }
    Ok(())
}
