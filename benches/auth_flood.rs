//! A bystander's ping round-trip times while a flood of CONNECTs with unknown user names hits the
//! same I/O thread, on loopback, against a picomq binary started here (`--broker PATH` to measure
//! another build, e.g. one from before password checks left the I/O threads).
//!
//! ```text
//! cargo bench --bench auth_flood -- [--broker PATH] [--rounds N] [--seconds S] [--flooders N]
//!                                   [--batch N]
//! ```
//!
//! First it times one PBKDF2 check (the `$7$` default of 101 rounds and `--rounds`, default
//! 10,000) in this process. Then it starts the broker with one I/O thread, a password file whose
//! one entry has `--rounds` rounds (unknown users pay the same, against a decoy), and anonymous
//! clients allowed; connects a bystander anonymously and pings it for 1 s quietly, then for
//! `--seconds` (default 5) while `--flooders` threads (default 4) each open `--batch` sockets
//! (default 50), send a CONNECT with an unknown user name on every one, read the answers, and
//! start over. It prints the ping percentiles of both phases and the flood's CONNACK codes.
//! Everything is bounded in time and count, and stays on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use picomq::auth::passwd::PasswordHash;
use picomq::protocol::decode::decode_packet;
use picomq::protocol::encode::encode_packet;
use picomq::protocol::{Connect, Packet, Properties, ProtocolVersion, ReasonCode};

const V5: ProtocolVersion = ProtocolVersion::V5;
/// How long any socket read may wait: an answer slower than this counts as none.
const READ_WAIT: Duration = Duration::from_secs(10);
/// Pause between two pings of the bystander.
const PING_GAP: Duration = Duration::from_millis(5);

struct Options {
    broker: PathBuf,
    rounds: u32,
    seconds: u64,
    flooders: usize,
    batch: usize,
}

fn options() -> Options {
    let mut o = Options {
        broker: PathBuf::from(env!("CARGO_BIN_EXE_picomq")),
        rounds: 10_000,
        seconds: 5,
        flooders: 4,
        batch: 50,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        let number = |v: String| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("bad number {v}"))
        };
        match arg.as_str() {
            "--broker" => o.broker = PathBuf::from(value()),
            "--rounds" => o.rounds = number(value()).clamp(1, 10_000_000) as u32,
            "--seconds" => o.seconds = number(value()).clamp(1, 120),
            "--flooders" => o.flooders = number(value()).clamp(1, 64) as usize,
            "--batch" => o.batch = number(value()).clamp(1, 1_000) as usize,
            // cargo bench passes --bench; anything else is a mistake worth stopping for.
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// Mean time of one PBKDF2-SHA512 check with `rounds` rounds, in this process.
fn check_time(rounds: u32) -> Duration {
    let runs = 20u32;
    let start = Instant::now();
    for i in 0..runs {
        std::hint::black_box(PasswordHash::pbkdf2(b"guess", [i as u8; 12], rounds));
    }
    start.elapsed() / runs
}

/// Writes the password file and config into a fresh directory; returns the config's path.
fn write_config(dir: &Path, port: u16, rounds: u32) -> PathBuf {
    std::fs::create_dir_all(dir).expect("bench dir");
    let hash = PasswordHash::pbkdf2(b"wonderland", [5; 12], rounds).encode();
    let passwd = dir.join("passwd");
    std::fs::write(&passwd, format!("alice:{hash}\n")).expect("passwd");
    let conf = dir.join("picomq.toml");
    let text = format!(
        "[log]\nlevel = \"warn\"\n\n[server]\nio_threads = 1\n\n[[listener]]\n\
         bind = \"127.0.0.1:{port}\"\n\n[sys]\ninterval = \"0\"\n\n[auth]\n\
         password_file = {:?}\nallow_anonymous = true\n",
        passwd.display().to_string()
    );
    std::fs::write(&conf, text).expect("config");
    conf
}

/// Starts the broker and waits until it accepts connections.
fn start_broker(bin: &Path, conf: &Path, addr: SocketAddr) -> Child {
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("broker never listened on {addr}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child
}

fn connect_bytes(client_id: &str, user: Option<&str>) -> Vec<u8> {
    let connect = Connect {
        protocol: V5,
        clean_start: true,
        keep_alive: 600,
        client_id: client_id.into(),
        will: None,
        username: user.map(str::to_owned),
        password: user.map(|_| Bytes::from_static(b"guess")),
        properties: Properties::default(),
    };
    let mut out = BytesMut::new();
    encode_packet(&Packet::Connect(Box::new(connect)), V5, &mut out);
    out.to_vec()
}

/// The next packet on `s`, or None if it closed or nothing came within [`READ_WAIT`].
fn read_packet(s: &mut TcpStream, buf: &mut BytesMut) -> Option<Packet> {
    let deadline = Instant::now() + READ_WAIT;
    let mut chunk = [0u8; 4096];
    loop {
        if let Ok(Some(p)) = decode_packet(buf, Some(V5), u32::MAX) {
            return Some(p);
        }
        if Instant::now() > deadline {
            return None;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn open(addr: SocketAddr) -> Option<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, READ_WAIT).ok()?;
    s.set_nodelay(true).ok()?;
    s.set_read_timeout(Some(READ_WAIT)).ok()?;
    Some(s)
}

/// What the flood's CONNECTs got.
#[derive(Default)]
struct Tally {
    busy: u64,
    bad: u64,
    other: u64,
}

/// One flooding thread: batches of CONNECTs with unknown user names until `stop`.
fn flood(addr: SocketAddr, part: usize, batch: usize, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut socks = Vec::new();
        for _ in 0..batch {
            n += 1;
            let user = format!("nobody-{part}-{n}");
            let Some(mut s) = open(addr) else { continue };
            if s.write_all(&connect_bytes(&user, Some(&user))).is_ok() {
                socks.push(s);
            }
        }
        for mut s in socks {
            match read_packet(&mut s, &mut BytesMut::new()) {
                Some(Packet::ConnAck(a)) if a.reason == ReasonCode::SERVER_BUSY => tally.busy += 1,
                Some(Packet::ConnAck(a)) if a.reason == ReasonCode::BAD_USER_NAME_OR_PASSWORD => {
                    tally.bad += 1
                }
                _ => tally.other += 1,
            }
        }
    }
    tally
}

/// Pings until `until` (or `stop`), returning each round-trip time; panics if one is lost.
fn ping_for(s: &mut TcpStream, until: Instant) -> Vec<Duration> {
    let mut rtts = Vec::new();
    let mut buf = BytesMut::new();
    let mut ping = BytesMut::new();
    encode_packet(&Packet::PingReq, V5, &mut ping);
    while Instant::now() < until && rtts.len() < 100_000 {
        let start = Instant::now();
        s.write_all(&ping).expect("bystander write");
        match read_packet(s, &mut buf) {
            Some(Packet::PingResp) => rtts.push(start.elapsed()),
            other => panic!("bystander: expected PINGRESP, got {other:?}"),
        }
        thread::sleep(PING_GAP);
    }
    rtts
}

fn percentiles(label: &str, mut rtts: Vec<Duration>) {
    rtts.sort();
    let at = |q: f64| rtts[((rtts.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{label:<14} pings {:>6}  p50 {:>8.3} ms  p90 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms",
        rtts.len(),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(at(1.0))
    );
}

fn main() {
    let o = options();
    println!(
        "one PBKDF2-SHA512 check: {:?} at 101 rounds, {:?} at {} rounds",
        check_time(101),
        check_time(o.rounds),
        o.rounds
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = std::env::temp_dir().join(format!("picomq-auth-flood-{}", std::process::id()));
    let conf = write_config(&dir, port, o.rounds);
    let mut broker = start_broker(&o.broker, &conf, addr);
    let mut bystander = open(addr).expect("bystander connects");
    bystander
        .write_all(&connect_bytes("bystander", None))
        .expect("bystander CONNECT");
    match read_packet(&mut bystander, &mut BytesMut::new()) {
        Some(Packet::ConnAck(a)) if a.reason == ReasonCode::SUCCESS => {}
        other => panic!("bystander: expected CONNACK 0, got {other:?}"),
    }
    let quiet = ping_for(&mut bystander, Instant::now() + Duration::from_secs(1));
    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..o.flooders)
        .map(|part| {
            let stop = stop.clone();
            thread::spawn(move || flood(addr, part, o.batch, &stop))
        })
        .collect();
    let started = Instant::now();
    let loud = ping_for(&mut bystander, started + Duration::from_secs(o.seconds));
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for t in flooders {
        let t = t.join().expect("flood thread");
        total.busy += t.busy;
        total.bad += t.bad;
        total.other += t.other;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = broker.kill();
    let _ = broker.wait();
    let _ = std::fs::remove_dir_all(&dir);
    println!("broker: {}", o.broker.display());
    percentiles("quiet", quiet);
    percentiles("during flood", loud);
    println!(
        "flood: {} CONNECTs in {elapsed:.1} s: {} refused busy (0x89), {} checked (0x86), {} other",
        total.busy + total.bad + total.other,
        total.busy,
        total.bad,
        total.other
    );
}
