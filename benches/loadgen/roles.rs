//! The client roles of a scenario: publisher loops (with their PUBACK reader for QoS 1),
//! subscriber loops, and the [`Gate`] that keeps publishers from burying the broker.
//!
//! Owns: what one client thread does between the start signal and its stop condition. Every loop
//! here is bounded by count and by time (`Shared::hard_end` and the window end) and blocks —
//! socket reads with timeouts, condition variables, sleeps — instead of spinning, so the load
//! generator leaves the CPU to the broker it measures. Must not spawn brokers or print.

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::client::{self, FrameReader, Link, DISCONNECT, PINGRESP, PUBACK, PUBLISH};
use crate::stats::{Header, Tally, Window};

/// Keep-alive announced in CONNECT (seconds); a PINGREQ goes out after half of it without writes.
pub const KEEP_ALIVE: u16 = 60;
const PING_AFTER_NS: u64 = KEEP_ALIVE as u64 * 1_000_000_000 / 2;
/// Read timeout of blocking loops: how quickly they notice a stop request.
const POLL: Duration = Duration::from_millis(100);
/// How long a publisher waits for its end-to-end window to reopen before assuming loss.
const STALL: Duration = Duration::from_millis(100);
/// How long a QoS 1 publisher waits after the window for its last PUBACKs.
const ACK_DRAIN: Duration = Duration::from_secs(2);

/// A counting semaphore between one publisher (acquires) and whoever observes completion
/// (releases): the PUBACK reader for QoS 1, the subscribers for QoS 0. Once full it stays shut
/// until outstanding work falls to the low-water mark, so a saturated publisher wakes once per
/// half window instead of once per message.
pub struct Gate {
    outstanding: AtomicU64,
    limit: u64,
    low_water: u64,
    waiting: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Gate {
    pub fn new(limit: u64) -> Gate {
        Gate {
            outstanding: AtomicU64::new(0),
            limit: limit.max(1),
            low_water: limit / 2,
            waiting: AtomicBool::new(false),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    /// Takes `cost` units, waiting up to `max_wait` for room. Only one thread may acquire.
    pub fn acquire(&self, cost: u64, max_wait: Duration) -> bool {
        if self.outstanding.load(SeqCst) + cost <= self.limit {
            self.outstanding.fetch_add(cost, SeqCst);
            return true;
        }
        let deadline = Instant::now() + max_wait;
        let mut guard = self.lock.lock();
        // Announce, then re-check: a release that missed the flag is seen by the re-check.
        self.waiting.store(true, SeqCst);
        while self.outstanding.load(SeqCst) > self.low_water {
            if self.cv.wait_until(&mut guard, deadline).timed_out() {
                break;
            }
        }
        self.waiting.store(false, SeqCst);
        if self.outstanding.load(SeqCst) + cost <= self.limit {
            self.outstanding.fetch_add(cost, SeqCst);
            true
        } else {
            false
        }
    }

    /// Returns `n` units; wakes the publisher when it waits and the low-water mark is reached.
    pub fn release(&self, n: u64) {
        let prev = self
            .outstanding
            .fetch_update(SeqCst, SeqCst, |v| Some(v.saturating_sub(n)))
            .unwrap_or(0);
        if self.waiting.load(SeqCst) && prev.saturating_sub(n) <= self.low_water {
            let _g = self.lock.lock();
            self.cv.notify_all();
        }
    }

    /// Forgets everything outstanding: used when QoS 0 messages were evidently dropped.
    pub fn forgive(&self) {
        self.outstanding.store(0, SeqCst);
    }

    pub fn outstanding(&self) -> u64 {
        self.outstanding.load(SeqCst)
    }
}

/// A counter on its own cache line so subscribers do not contend on one line.
#[repr(align(64))]
#[derive(Default)]
pub struct Padded(pub AtomicU64);

/// State shared by all client threads of one run.
pub struct Shared {
    pub epoch: Instant,
    /// When publishers start, in ns since `epoch`.
    pub start_ns: u64,
    pub window: Window,
    /// No client loop runs past this instant, whatever else happens.
    pub hard_end: Instant,
    pub stop_subscribers: AtomicBool,
    /// QoS 1 in-flight windows, one per publisher, released by PUBACKs; empty for QoS 0.
    pub inflight: Vec<Gate>,
    /// End-to-end windows, one per publisher, released by subscriber deliveries; empty when
    /// paced by `--rate`.
    pub delivery: Vec<Gate>,
    /// Deliveries seen so far, one counter per subscriber (for the drain phase).
    pub progress: Vec<Padded>,
}

impl Shared {
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn sleep_until_ns(&self, ns: u64) {
        let now = self.now_ns();
        if ns > now {
            thread::sleep(Duration::from_nanos(ns - now));
        }
    }
}

/// What one publisher does.
pub struct PubPlan {
    pub id: u32,
    pub topic: String,
    pub qos: u8,
    pub payload: usize,
    /// Messages per second; 0 = as fast as the gate allows.
    pub rate: f64,
    pub max_messages: u64,
    /// Delivery-gate units per message: the subscribers each message reaches.
    pub cost: u64,
}

/// What one publisher reports.
#[derive(Default, Debug)]
pub struct PubResult {
    pub sent_total: u64,
    /// Messages stamped with a send time inside the window.
    pub sent_in_window: u64,
    pub acked: u64,
    /// PUBACKs for ids not in flight, or with a failure reason code.
    pub bad_acks: u64,
    /// Times the end-to-end window stayed shut for [`STALL`] (messages presumed lost).
    pub stalls: u64,
    pub errors: Vec<String>,
}

/// Runs one publisher to completion and closes its connection.
pub fn run_publisher(mut link: Link, plan: PubPlan, sh: Arc<Shared>) -> PubResult {
    let mut res = PubResult::default();
    // One flag per packet id, so a PUBACK for an id not in flight is caught (QoS 1 only).
    let ids = if plan.qos == 1 { 1 << 16 } else { 0 };
    let pending: Arc<Vec<AtomicBool>> =
        Arc::new((0..ids).map(|_| AtomicBool::new(false)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let reader = if plan.qos == 1 {
        match spawn_ack_reader(&link, &plan, &sh, &pending, &stop) {
            Ok(h) => Some(h),
            Err(e) => {
                res.errors.push(e);
                link.close();
                return res;
            }
        }
    } else {
        None
    };
    if let Err(e) = publish_loop(&mut link, &plan, &sh, &pending, &mut res) {
        res.errors.push(format!("publisher {}: {e}", plan.id));
    }
    if let Some(h) = reader {
        // Let the last PUBACKs arrive, bounded, before stopping the reader.
        let gate = &sh.inflight[plan.id as usize];
        let until = (Instant::now() + ACK_DRAIN).min(sh.hard_end);
        while gate.outstanding() > 0 && Instant::now() < until {
            thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, SeqCst);
        match h.join() {
            Ok(ack) => {
                res.acked = ack.acked;
                res.bad_acks = ack.bad;
                res.errors.extend(ack.error);
            }
            Err(_) => res.errors.push("PUBACK reader panicked".into()),
        }
    }
    link.close();
    res
}

/// The send loop: pacing, gate, stamp, write — until the window ends or the count is reached.
fn publish_loop(
    link: &mut Link,
    plan: &PubPlan,
    sh: &Shared,
    pending: &[AtomicBool],
    res: &mut PubResult,
) -> Result<(), String> {
    let mut payload = vec![0xA5u8; plan.payload];
    let mut out = Vec::with_capacity(plan.payload + plan.topic.len() + 16);
    let interval_ns = if plan.rate > 0.0 {
        (1e9 / plan.rate) as u64
    } else {
        0
    };
    let inflight = sh.inflight.get(plan.id as usize);
    let delivery = sh.delivery.get(plan.id as usize);
    sh.sleep_until_ns(sh.start_ns);
    let end = sh.window.end_ns;
    let (mut seq, mut packet_id, mut last_write) = (0u64, 1u16, sh.now_ns());
    while seq < plan.max_messages && Instant::now() < sh.hard_end {
        let now = sh.now_ns();
        if now >= end {
            break;
        }
        if now - last_write > PING_AFTER_NS {
            out.clear();
            client::encode_pingreq(&mut out);
            link.send(&out).map_err(|e| e.to_string())?;
            last_write = now;
        }
        if interval_ns > 0 {
            let due = sh.start_ns + seq * interval_ns;
            if due > now {
                thread::sleep(Duration::from_nanos((due - now).min(end - now)));
                continue;
            }
        }
        let wait = STALL.min(Duration::from_nanos(end - now));
        if inflight.is_some_and(|g| !g.acquire(1, wait)) {
            continue; // PUBACKs are late; the loop re-checks the clock
        }
        if let Some(g) = delivery.filter(|g| !g.acquire(plan.cost, wait)) {
            inflight.inspect(|i| i.release(1));
            if sh.now_ns() < end {
                // Nothing delivered for STALL: presume the broker dropped what is outstanding.
                g.forgive();
                res.stalls += 1;
            }
            continue;
        }
        let ts = sh.now_ns();
        Header {
            sent_ns: ts,
            publisher: plan.id,
            seq,
        }
        .write(&mut payload);
        out.clear();
        let v = link.version;
        client::encode_publish(
            &mut out,
            v,
            plan.topic.as_bytes(),
            plan.qos,
            packet_id,
            &payload,
        );
        if plan.qos == 1 {
            pending[usize::from(packet_id)].store(true, SeqCst);
            packet_id = packet_id.checked_add(1).unwrap_or(1);
        }
        link.send(&out).map_err(|e| e.to_string())?;
        last_write = ts;
        res.sent_total += 1;
        if sh.window.contains(ts) {
            res.sent_in_window += 1;
        }
        seq += 1;
    }
    Ok(())
}

/// What the PUBACK reader of a QoS 1 publisher saw.
struct AckResult {
    acked: u64,
    bad: u64,
    error: Option<String>,
}

/// Starts the thread that reads PUBACKs for a QoS 1 publisher on a clone of its socket, so the
/// publisher can block on its gate while acknowledgements flow in.
fn spawn_ack_reader(
    link: &Link,
    plan: &PubPlan,
    sh: &Arc<Shared>,
    pending: &Arc<Vec<AtomicBool>>,
    stop: &Arc<AtomicBool>,
) -> Result<thread::JoinHandle<AckResult>, String> {
    let stream = link
        .stream
        .try_clone()
        .map_err(|e| format!("clone socket: {e}"))?;
    let (sh, pending, stop) = (sh.clone(), pending.clone(), stop.clone());
    let id = plan.id as usize;
    thread::Builder::new()
        .name(format!("puback-{id}"))
        .stack_size(128 * 1024)
        .spawn(move || read_acks(stream, &sh, id, &pending, &stop))
        .map_err(|e| format!("spawn PUBACK reader: {e}"))
}

fn read_acks(
    mut stream: TcpStream,
    sh: &Shared,
    id: usize,
    pending: &[AtomicBool],
    stop: &AtomicBool,
) -> AckResult {
    let mut r = AckResult {
        acked: 0,
        bad: 0,
        error: None,
    };
    let mut reader = FrameReader::new(16 * 1024);
    if let Err(e) = stream.set_read_timeout(Some(POLL)) {
        r.error = Some(format!("set read timeout: {e}"));
        return r;
    }
    while !stop.load(SeqCst) && Instant::now() < sh.hard_end {
        match reader.read_from(&mut stream) {
            Ok(0) => {
                r.error = Some(format!("publisher {id}: {}", client::Error::Closed));
                break;
            }
            Ok(_) => {}
            Err(e) if client::is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                r.error = Some(format!("publisher {id}: read PUBACK: {e}"));
                break;
            }
        }
        let mut done = 0;
        loop {
            match reader.next_frame() {
                Ok(None) => break,
                Ok(Some(f)) if f.kind == PUBACK => match client::parse_puback(f.body) {
                    Ok((pid, code)) => {
                        let was = pending[usize::from(pid)].swap(false, SeqCst);
                        if was && code < 0x80 {
                            r.acked += 1;
                        } else {
                            r.bad += 1;
                        }
                        // A failed or unexpected ack still frees the slot it claims to.
                        done += u64::from(was);
                    }
                    Err(e) => r.error = Some(format!("publisher {id}: {e}")),
                },
                Ok(Some(f)) if f.kind == PINGRESP => {}
                Ok(Some(f)) if f.kind == DISCONNECT => {
                    r.error = Some(format!("publisher {id}: {}", client::disconnected(f.body)));
                }
                Ok(Some(f)) => {
                    r.error = Some(format!("publisher {id}: unexpected packet type {}", f.kind));
                }
                Err(e) => {
                    r.error = Some(format!("publisher {id}: {e}"));
                    return r;
                }
            }
        }
        if done > 0 {
            sh.inflight[id].release(done);
        }
    }
    r
}

/// What one subscriber reports.
#[derive(Default)]
pub struct SubResult {
    pub tally: Tally,
    pub error: Option<String>,
}

/// Runs one subscriber until told to stop (after the drain) or the hard end; acknowledges QoS 1
/// deliveries in one write per read.
pub fn run_subscriber(
    mut link: Link,
    index: usize,
    publishers: usize,
    sh: Arc<Shared>,
) -> SubResult {
    let mut res = SubResult {
        tally: Tally::new(publishers),
        error: None,
    };
    if let Err(e) = link.stream.set_read_timeout(Some(POLL)) {
        res.error = Some(format!("subscriber {index}: set read timeout: {e}"));
        link.close();
        return res;
    }
    let mut acks: Vec<u8> = Vec::with_capacity(4096);
    let mut last_write = sh.now_ns();
    while !sh.stop_subscribers.load(SeqCst) && Instant::now() < sh.hard_end {
        let now = sh.now_ns();
        if now - last_write > PING_AFTER_NS {
            client::encode_pingreq(&mut acks);
        }
        if !acks.is_empty() {
            if let Err(e) = link.stream.write_all(&acks) {
                res.error = Some(format!("subscriber {index}: write: {e}"));
                break;
            }
            acks.clear();
            last_write = now;
        }
        match link.reader.read_from(&mut link.stream) {
            Ok(0) => {
                res.error = Some(format!("subscriber {index}: {}", client::Error::Closed));
                break;
            }
            Ok(_) => {}
            Err(e) if client::is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                res.error = Some(format!("subscriber {index}: read: {e}"));
                break;
            }
        }
        let recv_ns = sh.now_ns();
        match drain_frames(&mut link, &mut res.tally, &mut acks, recv_ns, &sh) {
            Ok(n) => {
                sh.progress[index].0.fetch_add(n, SeqCst);
            }
            Err(e) => {
                res.error = Some(format!("subscriber {index}: {e}"));
                break;
            }
        }
    }
    link.close();
    res
}

/// Handles every complete packet in the read buffer; returns how many PUBLISHes it counted.
fn drain_frames(
    link: &mut Link,
    tally: &mut Tally,
    acks: &mut Vec<u8>,
    recv_ns: u64,
    sh: &Shared,
) -> client::Result<u64> {
    let v = link.version;
    let mut n = 0;
    while let Some(f) = link.reader.next_frame()? {
        match f.kind {
            PUBLISH => {
                let p = client::parse_publish(v, f.flags, f.body)?;
                if p.qos == 1 {
                    client::encode_puback(acks, p.packet_id);
                }
                let from = tally.record(p.payload, recv_ns, &sh.window);
                if let Some(g) = from.and_then(|i| sh.delivery.get(i)) {
                    g.release(1);
                }
                n += 1;
            }
            PINGRESP => {}
            DISCONNECT => return Err(client::disconnected(f.body)),
            k => {
                return Err(client::Error::Protocol(format!(
                    "unexpected packet type {k}"
                )))
            }
        }
    }
    Ok(n)
}
