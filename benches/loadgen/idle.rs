//! `--idle-clients N`: how much memory a broker spends per idle connection. Opens N
//! CONNECTed-but-silent MQTT connections from one thread with mio, reads the broker's RSS before
//! and after, and closes them again.
//!
//! Owns: those idle sockets, all closed before it returns. Bounded: at most N connection
//! attempts, at most [`CONNECT_PHASE`] for them, a fixed settle time. Must not spawn brokers or
//! print.

use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::broker::Target;
use crate::client::{self, FrameReader, Version, CONNACK};
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
}

fn handshaking_state(s: &State) -> bool {
    matches!(s, State::Connecting | State::AwaitConnack)
}

/// Opens `n` idle connections to `target`, measures, closes them.
pub fn run(target: &Target, n: usize, v: Version, hard_end: Instant) -> io::Result<IdleResult> {
    let mut res = IdleResult {
        requested: n,
        ..IdleResult::default()
    };
    let rss = || target.pid.and_then(procstat::memory).map(|m| m.rss_kib);
    thread::sleep(SETTLE);
    res.rss_before_kib = rss();

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
            step(c, v, &mut res);
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
    settle_and_watch(&mut poll, &mut events, &mut conns, v, &mut res)?;
    res.rss_after_kib = rss();
    for c in conns.iter_mut().filter(|c| c.state == State::Ready) {
        let mut bye = Vec::with_capacity(2);
        client::encode_disconnect(&mut bye);
        let _ = c.stream.write_all(&bye);
    }
    Ok(res)
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

/// Waits [`SETTLE`] while still servicing events, so connections the broker drops are counted.
fn settle_and_watch(
    poll: &mut Poll,
    events: &mut Events,
    conns: &mut [Conn],
    v: Version,
    res: &mut IdleResult,
) -> io::Result<()> {
    let end = Instant::now() + SETTLE;
    while Instant::now() < end {
        poll.poll(events, Some(end.saturating_duration_since(Instant::now())))?;
        for ev in events.iter() {
            if let Some(c) = conns.get_mut(ev.token().0) {
                if c.state == State::Ready {
                    step(c, v, res);
                }
            }
        }
    }
    Ok(())
}
