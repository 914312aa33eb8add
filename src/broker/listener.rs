//! Broker-wide state the cores of every I/O thread read: the configuration in force, the
//! listeners and their authenticators, the connection counts and client-id assignment.
//!
//! Owns: [`Shared`] and [`Listener`]. Nothing here is touched per message: the configuration and
//! the listener settings are read when a connection arrives or a session is (re)built, and swapped
//! whole on reload (readers clone an `Arc` under a short read lock, never hold it across work).
//! Must not touch: sockets, channels or TLS state (the I/O layer keeps those beside the listener,
//! keyed by [`Listener::id`]).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::auth::Authenticator;
use crate::config::{Config, ListenerConfig};

/// A listener's settings as of the last (re)load.
pub struct ListenerSettings {
    /// Its configuration.
    pub cfg: ListenerConfig,
    /// The authenticator its clients are checked with: the broker-wide one, or its own when the
    /// listener overrides `[auth]`.
    pub auth: Arc<Authenticator>,
}

/// One configured listener. Connections hold it by `Arc`, so a listener removed by a reload stays
/// valid for the connections still closing on it.
pub struct Listener {
    /// Stable identity across reloads (indexes shift when listeners are added or removed).
    pub id: u32,
    settings: RwLock<Arc<ListenerSettings>>,
    /// Open connections accepted by this listener, for its `max_connections`.
    pub connections: AtomicUsize,
    /// Set when a reload removed the listener: its connections are disconnected (v5: 0x8B).
    removed: AtomicBool,
}

impl Listener {
    /// A listener with these settings.
    pub fn new(id: u32, cfg: ListenerConfig, auth: Arc<Authenticator>) -> Listener {
        Listener {
            id,
            settings: RwLock::new(Arc::new(ListenerSettings { cfg, auth })),
            connections: AtomicUsize::new(0),
            removed: AtomicBool::new(false),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<ListenerSettings> {
        self.settings.read().clone()
    }

    /// The authenticator in force for this listener's clients.
    pub fn auth(&self) -> Arc<Authenticator> {
        self.settings.read().auth.clone()
    }

    /// Replaces the settings (a reload that kept the listener): new connections use them.
    pub fn set_settings(&self, cfg: ListenerConfig, auth: Arc<Authenticator>) {
        *self.settings.write() = Arc::new(ListenerSettings { cfg, auth });
    }

    /// Marks the listener removed by a reload.
    pub fn mark_removed(&self) {
        self.removed.store(true, Ordering::Release);
    }

    /// Whether a reload removed it.
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }
}

/// Everything the cores of all I/O threads share.
pub struct Shared {
    cfg: RwLock<Arc<Config>>,
    /// Password and ACL files of listeners without their own.
    auth: RwLock<Arc<Authenticator>>,
    listeners: RwLock<Arc<Vec<Arc<Listener>>>>,
    /// Bumped when a reload replaced authenticators, so sessions rebuild their ACL views.
    auth_epoch: AtomicU32,
    /// Open client connections, for `max_connections`.
    pub connections: AtomicUsize,
    /// Counter for assigned client identifiers (32 bits: fine on MIPS, unique enough with the salt).
    next_assigned: AtomicU32,
    /// Per-process salt so assigned identifiers differ across restarts.
    salt: u32,
    /// Number of I/O threads (a client id's sessions live on `owner_thread` of it).
    pub threads: usize,
}

impl Shared {
    /// Shared state for `threads` I/O threads.
    pub fn new(
        cfg: Arc<Config>,
        auth: Arc<Authenticator>,
        listeners: Vec<Arc<Listener>>,
        threads: usize,
    ) -> Shared {
        let salt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ (d.as_secs() as u32));
        Shared {
            cfg: RwLock::new(cfg),
            auth: RwLock::new(auth),
            listeners: RwLock::new(Arc::new(listeners)),
            auth_epoch: AtomicU32::new(0),
            connections: AtomicUsize::new(0),
            next_assigned: AtomicU32::new(0),
            salt,
            threads,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.cfg.read().clone()
    }

    /// The broker-wide authenticator in force.
    pub fn auth(&self) -> Arc<Authenticator> {
        self.auth.read().clone()
    }

    /// The listeners in force, in config order.
    pub fn listeners(&self) -> Arc<Vec<Arc<Listener>>> {
        self.listeners.read().clone()
    }

    /// Installs a reloaded configuration, broker-wide authenticator and listener list.
    pub fn swap(&self, cfg: Arc<Config>, auth: Arc<Authenticator>, listeners: Vec<Arc<Listener>>) {
        *self.cfg.write() = cfg;
        *self.auth.write() = auth;
        *self.listeners.write() = Arc::new(listeners);
        self.auth_epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// Changes whenever any authenticator in force is reloaded or replaced.
    pub fn auth_generation(&self) -> u64 {
        let epoch = u64::from(self.auth_epoch.load(Ordering::Relaxed)) << 32;
        self.listeners().iter().map(|l| l.auth().generation()).fold(
            epoch.wrapping_add(self.auth().generation()),
            u64::wrapping_add,
        )
    }

    /// Counts a closed connection of `listener` out of the global and listener totals.
    pub fn connection_closed(&self, listener: &Listener) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
        listener.connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// A broker-unique client identifier for a client that sent an empty one.
    pub fn assign_client_id(&self) -> String {
        let n = self.next_assigned.fetch_add(1, Ordering::Relaxed);
        format!("picomq-{:08x}-{n}", self.salt)
    }
}
