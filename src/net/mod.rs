//! Networking and threads: the acceptor, the mio I/O threads and broker start-up/shutdown.
//!
//! Owns: every socket, every thread, and the channels between I/O threads (router shards live
//! in the I/O threads' cores, see `broker::routing`).
//! Must not touch: protocol or session rules (those are sans-IO in `protocol` and `session`).

pub mod acceptor;
pub mod admin;
pub mod auth_worker;
mod dial;
pub mod fault;
pub mod io_thread;
pub mod reload;
pub mod shared;
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded};
use mio::net::TcpListener;
use mio::{Poll, Waker};

use crate::auth::Authenticator;
use crate::broker::routing::shard_owner;
use crate::broker::sys_stats::SysShared;
use crate::broker::{Core, Shared};
use crate::config::Config;
use crate::router::retained_limit::RetainedBudget;
use crate::router::shard::Shard;

use acceptor::{AcceptorHandle, AcceptorMsg};
use io_thread::{IoThread, WAKER};
pub use reload::Reloader;
use shared::{Control, IoHandle, Wiring, WorkTx};

/// Capacity, in batches, of each I/O thread's channel of commands for its shards. Senders never
/// block: a full channel leaves the batch with its sender, which stops reading PUBLISH packets
/// until it is sent (`broker::routing`).
const COMMAND_QUEUE: usize = 64;
/// Capacity, in batches, of each I/O thread's channel of deliveries for its sessions.
const DELIVERY_QUEUE: usize = 256;

/// Stops a running broker from any thread.
#[derive(Clone)]
pub struct StopHandle(AcceptorHandle);

impl StopHandle {
    /// Asks the broker to stop; returns at once.
    pub fn stop(&self) {
        self.0.send(AcceptorMsg::Stop);
    }
}

/// A running broker.
pub struct Broker {
    admin: admin::AdminHandle,
    auth: Arc<Authenticator>,
    reloader: Reloader,
    addrs: Vec<SocketAddr>,
    stop: AcceptorHandle,
    threads: Vec<JoinHandle<()>>,
}

impl Broker {
    /// Binds the listeners and starts every thread.
    pub fn start(cfg: Config) -> io::Result<Broker> {
        let cfg = Arc::new(cfg);
        let auth = Authenticator::load(&cfg.auth)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        for warning in auth.warnings() {
            log::warn!("{warning}");
        }
        let auth = Arc::new(auth);
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        let runtimes = cfg
            .listeners
            .iter()
            .enumerate()
            .map(|(i, l)| reload::net_listener(i as u32, l, &auth).map_err(invalid))
            .collect::<io::Result<Vec<_>>>()?;
        let mut listeners = Vec::new();
        for l in &cfg.listeners {
            let listener = TcpListener::bind(l.bind).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot listen on {}: {e}", l.bind))
            })?;
            listeners.push(listener);
        }
        let addrs = listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<io::Result<Vec<_>>>()?;
        let mut polls = Vec::new();
        let mut io_handles = Vec::new();
        let mut work = Vec::new();
        let mut inboxes = Vec::new();
        for _ in 0..cfg.io_threads {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (ctx, crx) = unbounded();
            let (cmd_tx, cmd_rx) = bounded(COMMAND_QUEUE);
            let (dtx, drx) = bounded(DELIVERY_QUEUE);
            io_handles.push(IoHandle { tx: ctx, waker });
            work.push(WorkTx {
                commands: cmd_tx,
                deliveries: dtx,
            });
            inboxes.push((crx, cmd_rx, drx));
            polls.push(poll);
        }
        let mut threads = Vec::new();
        let limits = &cfg.mqtt.limits;
        let budget = Arc::new(RetainedBudget::new(
            limits.max_retained_messages,
            limits.max_retained_bytes,
        ));
        let mut owned: Vec<Vec<(usize, Shard)>> = (0..cfg.io_threads).map(|_| Vec::new()).collect();
        for i in 0..cfg.shards() {
            let shard = Shard::with_budget(cfg.mqtt.shared_strategy, budget.clone());
            owned[shard_owner(i, cfg.io_threads)].push((i, shard));
        }
        let sys = Arc::new(SysShared::new(cfg.io_threads, budget.clone()));
        let shared = Arc::new(Shared::new(
            cfg.clone(),
            auth.clone(),
            runtimes.iter().map(|r| r.listener.clone()).collect(),
            cfg.io_threads,
        ));
        let admin = admin::AdminHandle::new(io_handles.clone());
        let (auth_tx, auth_rx) = auth_worker::queue();
        let wiring = Arc::new(Wiring {
            work,
            io: io_handles,
            auth: auth_tx,
        });
        threads.push(auth_worker::spawn(auth_rx, Arc::downgrade(&wiring))?);
        let parts = polls.into_iter().zip(inboxes).zip(owned);
        for (i, ((poll, (crx, cmd_rx, drx)), shards)) in parts.enumerate() {
            let core = Core::new(
                i as u16,
                shared.clone(),
                sys.clone(),
                cfg.shards(),
                shards,
                std::time::Instant::now(),
            );
            let io = IoThread::new(core, poll, wiring.clone(), drx, cmd_rx, crx);
            let t = std::thread::Builder::new()
                .name(format!("picomq-io-{i}"))
                .spawn(move || io.run())?;
            threads.push(t);
        }
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), acceptor::WAKE)?);
        let (atx, arx) = unbounded();
        let stop = AcceptorHandle::new(atx, waker);
        let reloader = Reloader::new(
            (*cfg).clone(),
            runtimes.clone(),
            shared.clone(),
            budget,
            wiring.io.clone(),
            stop.clone(),
        );
        let accepting: Vec<_> = listeners.into_iter().zip(runtimes).collect();
        let t = std::thread::Builder::new()
            .name("picomq-accept".into())
            .spawn(move || acceptor::run(poll, accepting, arx, shared, wiring))?;
        threads.push(t);
        for a in &addrs {
            log::info!("listening on {a}");
        }
        Ok(Broker {
            admin,
            auth,
            reloader,
            addrs,
            stop,
            threads,
        })
    }

    /// The password and ACL files in force; `reload()` re-reads them (SIGHUP) and the I/O threads
    /// pick the new ACL up within a tick, without dropping connections.
    pub fn authenticator(&self) -> Arc<Authenticator> {
        self.auth.clone()
    }

    /// The admin seam: list clients, describe one, disconnect one.
    pub fn admin(&self) -> admin::AdminHandle {
        self.admin.clone()
    }

    /// Dials a link to another broker on I/O thread 0 (`broker::dialled`): the seam bridges use.
    pub fn dial(&self, spec: crate::broker::dialled::DialSpec) {
        self.admin.send_control(0, Control::Dial(Box::new(spec)));
    }

    /// Reloads auth files and certificates of every listener (what SIGHUP does).
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// The bound addresses, in listener order (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Asks the broker to stop: clients are disconnected (v5: 0x8B) and threads exit.
    pub fn stop(&self) {
        self.stop_handle().stop();
    }

    /// A handle that can stop the broker from another thread (e.g. a signal watcher).
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// Waits until every thread has exited (after [`Broker::stop`]).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}
