//! One measured run of a scenario against one broker: topology (who publishes where, who
//! subscribes to what), connection setup, the timeline (start, warm-up, window, drain), CPU and
//! memory sampling around the window, and merging of the per-thread results.
//!
//! Owns: client threads of a run — it starts them and joins every one before returning, so no
//! traffic outlives a run. Must not spawn or kill brokers (broker.rs) nor print (report.rs).

use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::broker::Target;
use crate::client::{Link, Version};
use crate::procstat::{self, Memory};
use crate::roles::{self, Gate, Padded, PubPlan, PubResult, Shared, SubResult};
use crate::stats::{Tally, Window};

/// Which traffic pattern to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// N publishers on distinct topics -> 1 subscriber on a `+` wildcard.
    FanIn,
    /// 1 publisher -> N subscribers of the same topic.
    FanOut,
    /// N independent publisher -> subscriber pairs, one topic each.
    P2p,
}

/// Everything that defines a run, independent of the broker.
#[derive(Clone, Debug)]
pub struct Plan {
    pub scenario: Scenario,
    pub clients: usize,
    pub qos: u8,
    pub payload: usize,
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub version: Version,
    pub inflight: u16,
    pub window: u64,
    pub max_messages: u64,
}

/// The figures of one run, before formatting.
#[derive(Default)]
pub struct RunResult {
    /// Messages sent inside the window.
    pub sent: u64,
    /// Deliveries those should have produced (sent x subscribers per message).
    pub expected: u64,
    pub tally: Tally,
    /// QoS 1 only: PUBLISHes sent over the whole run, and PUBACKs received for them.
    pub qos1_sent: u64,
    pub acked: u64,
    pub bad_acks: u64,
    pub stalls: u64,
    pub window_secs: f64,
    /// Broker CPU seconds (user + system) inside the window.
    pub broker_cpu: Option<f64>,
    /// This process's CPU seconds inside the window.
    pub loadgen_cpu: Option<f64>,
    pub memory: Option<Memory>,
    /// Client errors (a broker refusing or dropping connections), deduplicated.
    pub errors: Vec<String>,
}

/// Longest the whole connect/subscribe phase may take, and one client's handshake within it.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Drain: stop waiting for in-flight deliveries after this long without progress, or in total.
const DRAIN_IDLE: Duration = Duration::from_secs(1);
const DRAIN_MAX: Duration = Duration::from_secs(5);

/// Distinguishes runs of one process so topics and client ids never collide on a shared broker.
static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Topic of each publisher and filter of each subscriber, and how many subscribers get each
/// message (`fanout`) and how many publishers feed each subscriber (`fanin`).
struct Topology {
    pub_topics: Vec<String>,
    sub_filters: Vec<String>,
    fanout: u64,
    fanin: u64,
}

fn topology(s: Scenario, n: usize, tag: &str) -> Topology {
    let base = format!("picomq-loadgen/{tag}");
    match s {
        Scenario::FanIn => Topology {
            pub_topics: (0..n).map(|i| format!("{base}/in/{i}")).collect(),
            sub_filters: vec![format!("{base}/in/+")],
            fanout: 1,
            fanin: n as u64,
        },
        Scenario::FanOut => Topology {
            pub_topics: vec![format!("{base}/out")],
            sub_filters: vec![format!("{base}/out"); n],
            fanout: n as u64,
            fanin: 1,
        },
        Scenario::P2p => Topology {
            pub_topics: (0..n).map(|i| format!("{base}/p2p/{i}")).collect(),
            sub_filters: (0..n).map(|i| format!("{base}/p2p/{i}")).collect(),
            fanout: 1,
            fanin: 1,
        },
    }
}

/// Runs `plan` against `target`. Errors before traffic starts (cannot connect, refused) are
/// returned; errors during traffic are collected in the result.
pub fn run(target: &Target, plan: &Plan, hard_end: Instant) -> Result<RunResult, String> {
    let tag = format!(
        "{}-{}",
        std::process::id(),
        RUN_COUNTER.fetch_add(1, SeqCst)
    );
    let topo = topology(plan.scenario, plan.clients, &tag);
    let setup_end = (Instant::now() + SETUP_TIMEOUT).min(hard_end);
    let (subs, pubs) = connect_all(target, plan, &topo, &tag, setup_end)?;

    let epoch = Instant::now();
    let start_ns = 100_000_000; // 100 ms for threads to get going
    let window = Window {
        start_ns: start_ns + plan.warmup.as_nanos() as u64,
        end_ns: start_ns + (plan.warmup + plan.duration).as_nanos() as u64,
    };
    let receive_max = pubs.iter().map(|l| l.receive_max).min().unwrap_or(u16::MAX);
    let (inflight, delivery) = gating(plan, &topo, receive_max);
    let gates = |limit: Option<u64>| -> Vec<Gate> {
        limit.map_or_else(Vec::new, |l| {
            (0..pubs.len()).map(|_| Gate::new(l)).collect()
        })
    };
    let sh = Arc::new(Shared {
        epoch,
        start_ns,
        window,
        hard_end,
        stop_subscribers: AtomicBool::new(false),
        inflight: gates(inflight),
        delivery: gates(delivery),
        progress: (0..subs.len()).map(|_| Padded::default()).collect(),
    });

    let mut errors = Vec::new();
    let publishers = topo.pub_topics.len();
    let sub_handles = spawn_subscribers(subs, publishers, &sh, &mut errors);
    let pub_handles = spawn_publishers(pubs, plan, &topo, &sh, &mut errors);

    let mut res = RunResult {
        window_secs: window.secs(),
        ..RunResult::default()
    };
    sample_window(target.pid, &sh, &mut res);

    let mut deliveries_due = 0; // whole run, for the drain
    for h in pub_handles {
        let r = h.join().unwrap_or_else(|_| PubResult {
            errors: vec!["publisher thread panicked".into()],
            ..PubResult::default()
        });
        res.sent += r.sent_in_window;
        res.expected += r.sent_in_window * topo.fanout;
        res.acked += r.acked;
        if plan.qos == 1 {
            res.qos1_sent += r.sent_total;
        }
        res.bad_acks += r.bad_acks;
        res.stalls += r.stalls;
        errors.extend(r.errors);
        deliveries_due += r.sent_total * topo.fanout;
    }
    drain(&sh, deliveries_due);
    sh.stop_subscribers.store(true, SeqCst);
    for h in sub_handles {
        let r = h.join().unwrap_or_else(|_| SubResult {
            error: Some("subscriber thread panicked".into()),
            ..SubResult::default()
        });
        res.tally.merge(&r.tally);
        errors.extend(r.error);
    }
    res.memory = target.pid.and_then(procstat::memory);
    errors.dedup();
    res.errors = errors;
    Ok(res)
}

/// Connects and subscribes every subscriber, then connects every publisher. Any failure closes
/// what was opened and is returned, since a partial topology would measure something else.
fn connect_all(
    target: &Target,
    plan: &Plan,
    topo: &Topology,
    tag: &str,
    deadline: Instant,
) -> Result<(Vec<Link>, Vec<Link>), String> {
    let v = plan.version;
    let step = || (Instant::now() + HANDSHAKE_TIMEOUT).min(deadline);
    let mut subs = Vec::with_capacity(topo.sub_filters.len());
    let mut pubs = Vec::with_capacity(topo.pub_topics.len());
    let result = (|| {
        for (i, filter) in topo.sub_filters.iter().enumerate() {
            let id = format!("lg-{tag}-s{i}");
            let mut link = Link::connect(target.addr, v, &id, roles::KEEP_ALIVE, step())
                .map_err(|e| format!("subscriber {i}: {e}"))?;
            let granted = link
                .subscribe(filter, plan.qos, step())
                .map_err(|e| format!("subscriber {i}: {e}"))?;
            subs.push(link);
            if granted < plan.qos {
                return Err(format!("broker granted QoS {granted} for QoS {}", plan.qos));
            }
        }
        for i in 0..topo.pub_topics.len() {
            let id = format!("lg-{tag}-p{i}");
            let link = Link::connect(target.addr, v, &id, roles::KEEP_ALIVE, step())
                .map_err(|e| format!("publisher {i}: {e}"))?;
            let max_qos = link.max_qos;
            pubs.push(link);
            if max_qos < plan.qos {
                return Err(format!("broker allows QoS {max_qos} only"));
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok((subs, pubs)),
        Err(e) => {
            subs.into_iter().chain(pubs).for_each(Link::close);
            Err(e)
        }
    }
}

/// Chooses the limits of the two gates of each publisher (`None` = no such gate):
/// the QoS 1 in-flight window (`--inflight`, capped by the broker's Receive Maximum), and, at
/// `--rate 0`, the end-to-end window: `--window` undelivered messages per subscriber, split
/// among the publishers feeding it, counted in deliveries. Without the latter a publisher acked
/// by the broker could still outrun the subscriber until the broker's queue overflows, and the
/// run would measure the drop policy instead of delivery.
fn gating(plan: &Plan, topo: &Topology, receive_max: u16) -> (Option<u64>, Option<u64>) {
    let inflight = (plan.qos == 1).then(|| u64::from(plan.inflight.min(receive_max)));
    let delivery = (plan.rate <= 0.0).then(|| (plan.window / topo.fanin).max(1) * topo.fanout);
    (inflight, delivery)
}

/// Small stacks: a few hundred client threads must fit comfortably.
const STACK: usize = 256 * 1024;

fn spawn_subscribers(
    subs: Vec<Link>,
    publishers: usize,
    sh: &Arc<Shared>,
    errors: &mut Vec<String>,
) -> Vec<JoinHandle<SubResult>> {
    let mut handles = Vec::with_capacity(subs.len());
    for (i, link) in subs.into_iter().enumerate() {
        let sh = sh.clone();
        let spawned = thread::Builder::new()
            .name(format!("sub-{i}"))
            .stack_size(STACK)
            .spawn(move || roles::run_subscriber(link, i, publishers, sh));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => errors.push(format!("spawn subscriber thread: {e}")),
        }
    }
    handles
}

fn spawn_publishers(
    pubs: Vec<Link>,
    plan: &Plan,
    topo: &Topology,
    sh: &Arc<Shared>,
    errors: &mut Vec<String>,
) -> Vec<JoinHandle<PubResult>> {
    let cost = topo.fanout;
    let mut handles = Vec::with_capacity(pubs.len());
    for (i, link) in pubs.into_iter().enumerate() {
        let p = PubPlan {
            id: i as u32,
            topic: topo.pub_topics[i].clone(),
            qos: plan.qos,
            payload: plan.payload,
            rate: plan.rate,
            max_messages: plan.max_messages,
            cost,
        };
        let sh = sh.clone();
        let spawned = thread::Builder::new()
            .name(format!("pub-{i}"))
            .stack_size(STACK)
            .spawn(move || roles::run_publisher(link, p, sh));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => errors.push(format!("spawn publisher thread: {e}")),
        }
    }
    handles
}

/// Sleeps to the window start, samples broker and own CPU, sleeps to the window end, samples
/// again. Sleeping, not polling: the main thread costs nothing during the window.
fn sample_window(pid: Option<u32>, sh: &Shared, res: &mut RunResult) {
    let sleep_to = |ns: u64| {
        let now = sh.now_ns();
        let left = Duration::from_nanos(ns.saturating_sub(now));
        let cap = sh.hard_end.saturating_duration_since(Instant::now());
        thread::sleep(left.min(cap));
    };
    sleep_to(sh.window.start_ns);
    let broker0 = pid.and_then(procstat::cpu_seconds);
    let own0 = procstat::cpu_seconds(0);
    sleep_to(sh.window.end_ns);
    let broker1 = pid.and_then(procstat::cpu_seconds);
    let own1 = procstat::cpu_seconds(0);
    res.broker_cpu = broker0.zip(broker1).map(|(a, b)| b - a);
    res.loadgen_cpu = own0.zip(own1).map(|(a, b)| b - a);
}

/// Waits (polling every 20 ms, bounded) until subscribers have seen `due` deliveries, or no
/// progress for [`DRAIN_IDLE`], or [`DRAIN_MAX`] in total.
fn drain(sh: &Shared, due: u64) {
    let start = Instant::now();
    let seen = || sh.progress.iter().map(|p| p.0.load(SeqCst)).sum::<u64>();
    let (mut last, mut last_change) = (seen(), Instant::now());
    while last < due && start.elapsed() < DRAIN_MAX && Instant::now() < sh.hard_end {
        thread::sleep(Duration::from_millis(20));
        let now = seen();
        if now != last {
            (last, last_change) = (now, Instant::now());
        } else if last_change.elapsed() > DRAIN_IDLE {
            break;
        }
    }
}
