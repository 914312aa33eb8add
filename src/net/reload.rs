//! SIGHUP for a running broker: re-read the files a config names (password, ACL, certificates),
//! and apply a whole new configuration ([`Reloader::reload_config`]).
//!
//! A new configuration is applied all or nothing: every authenticator, certificate and new
//! listening socket it needs is built first; any failure refuses the whole reload and the running
//! configuration stays. Then, in order: kept listeners get their new settings, removed listeners
//! are marked (their clients get MQTT 5 DISCONNECT 0x8B Server shutting down, or a close), the
//! broker-wide state is swapped, the retained maxima change, the accept loop opens and closes
//! sockets, and every I/O thread's core picks up the new configuration. What cannot change while
//! running is decided by `config::reload::plan` (and logged by the caller).
//!
//! Owns: [`Reloader`] and building a listener's runtime ([`net_listener`]). Holds only the I/O
//! threads' control inboxes, never their router channels. Must not touch: what a key means
//! (`config`), connections (the cores disconnect them).

use std::sync::Arc;

use mio::net::TcpListener;
use parking_lot::Mutex;

use super::acceptor::{AcceptorHandle, AcceptorMsg, ListenerUpdate};
use super::shared::{Control, IoHandle, NetListener};
use crate::auth::Authenticator;
use crate::broker::{Listener, Shared};
use crate::config::reload::{plan, ReloadPlan};
use crate::config::{Config, ListenerConfig, ListenerProtocol};
use crate::router::retained_limit::RetainedBudget;

/// The authenticator of a listener's clients: its own when it overrides `[auth]`, else `global`.
fn listener_auth(
    l: &ListenerConfig,
    global: &Arc<Authenticator>,
) -> Result<Arc<Authenticator>, String> {
    match &l.auth {
        None => Ok(global.clone()),
        Some(cfg) => {
            let auth = Authenticator::load(cfg).map_err(|e| format!("listener {}: {e}", l.bind))?;
            for warning in auth.warnings() {
                log::warn!("listener {}: {warning}", l.bind);
            }
            Ok(Arc::new(auth))
        }
    }
}

/// The certificates of a TLS listener (none for plain MQTT).
#[cfg(feature = "tls")]
fn listener_tls(l: &ListenerConfig) -> Result<Option<Arc<super::tls::TlsAcceptor>>, String> {
    match (&l.protocol, &l.tls) {
        (ListenerProtocol::Mqtts, Some(t)) => super::tls::TlsAcceptor::load(t)
            .map(|a| Some(Arc::new(a)))
            .map_err(|e| format!("listener {}: {e}", l.bind)),
        _ => Ok(None),
    }
}

/// The runtime of one configured listener (`id` stays with it across reloads): its
/// authenticator and TLS certificates.
pub fn net_listener(
    id: u32,
    l: &ListenerConfig,
    global: &Arc<Authenticator>,
) -> Result<NetListener, String> {
    #[cfg(not(feature = "tls"))]
    if l.protocol == ListenerProtocol::Mqtts {
        return Err(format!(
            "listener {}: protocol = \"mqtts\" but this picomq was built without TLS support \
             (cargo feature `tls`)",
            l.bind
        ));
    }
    let auth = listener_auth(l, global)?;
    Ok(NetListener {
        listener: Arc::new(Listener::new(id, l.clone(), auth)),
        #[cfg(feature = "tls")]
        tls: listener_tls(l)?,
    })
}

/// What is running now, for the next reload to compare with.
struct Running {
    cfg: Config,
    /// In `cfg.listeners` order.
    listeners: Vec<NetListener>,
    next_id: u32,
}

struct Inner {
    running: Mutex<Running>,
    shared: Arc<Shared>,
    budget: Arc<RetainedBudget>,
    io: Vec<IoHandle>,
    acceptor: AcceptorHandle,
}

/// Reloads a running broker's files and configuration (SIGHUP). Cheap to clone.
#[derive(Clone)]
pub struct Reloader(Arc<Inner>);

/// A kept listener's new settings, applied once the whole reload is known to succeed.
struct KeptSettings {
    listener: Arc<Listener>,
    cfg: ListenerConfig,
    auth: Arc<Authenticator>,
}

impl Reloader {
    /// A reloader for a broker started with `cfg` and these listeners.
    pub(super) fn new(
        cfg: Config,
        listeners: Vec<NetListener>,
        shared: Arc<Shared>,
        budget: Arc<RetainedBudget>,
        io: Vec<IoHandle>,
        acceptor: AcceptorHandle,
    ) -> Reloader {
        let next_id = listeners.len() as u32;
        Reloader(Arc::new(Inner {
            running: Mutex::new(Running {
                cfg,
                listeners,
                next_id,
            }),
            shared,
            budget,
            io,
            acceptor,
        }))
    }

    /// Re-reads every authenticator's password and ACL files and every TLS listener's
    /// certificates. What fails to load keeps its previous version; each failure is one message
    /// in the error list. Connections stay up; new TLS connections get the new certificate.
    pub fn reload(&self) -> Result<(), Vec<String>> {
        let running = self.0.running.lock();
        let mut auths: Vec<Arc<Authenticator>> = vec![self.0.shared.auth()];
        for l in &running.listeners {
            let a = l.listener.auth();
            if !auths.iter().any(|x| Arc::ptr_eq(x, &a)) {
                auths.push(a);
            }
        }
        let mut errors = Vec::new();
        for auth in &auths {
            if let Err(e) = auth.reload() {
                errors.push(e.to_string());
            }
        }
        #[cfg(feature = "tls")]
        for l in &running.listeners {
            if let Some(tls) = &l.tls {
                if let Err(e) = tls.reload() {
                    errors.push(format!("listener {}: {e}", l.listener.settings().cfg.bind));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Applies `new` (read as start-up reads it: file, then the start-up flags) to the running
    /// broker, all or nothing. On success returns the plan that was applied (its
    /// `needs_restart` lists the keys that kept their running value, for the caller to log); on
    /// failure every error, and nothing changed.
    pub fn reload_config(&self, new: Config) -> Result<ReloadPlan, Vec<String>> {
        let inner = &self.0;
        let mut running = inner.running.lock();
        let plan = plan(&running.cfg, &new);
        let cfg = plan.config.clone();
        let mut errors = Vec::new();
        let global = if plan.auth_changed {
            match Authenticator::load(&cfg.auth) {
                Ok(a) => {
                    for warning in a.warnings() {
                        log::warn!("{warning}");
                    }
                    Arc::new(a)
                }
                Err(e) => {
                    errors.push(e.to_string());
                    inner.shared.auth()
                }
            }
        } else {
            inner.shared.auth()
        };
        let mut list: Vec<NetListener> = Vec::new();
        let mut kept_settings = Vec::new();
        let mut update = ListenerUpdate::default();
        let mut next_id = running.next_id;
        for (i, l) in cfg.listeners.iter().enumerate() {
            let kept = plan.listeners.kept.iter().find(|k| k.new_index == i);
            let Some(k) = kept else {
                let net = match net_listener(next_id, l, &global) {
                    Ok(net) => net,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                next_id += 1;
                match TcpListener::bind(l.bind) {
                    Ok(socket) => update.add.push((socket, net.clone())),
                    Err(e) => errors.push(format!("cannot listen on {}: {e}", l.bind)),
                }
                list.push(net);
                continue;
            };
            let old = &running.listeners[k.running_index];
            let auth = if k.auth_changed || (l.auth.is_none() && plan.auth_changed) {
                match listener_auth(l, &global) {
                    Ok(a) => a,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                }
            } else {
                old.listener.auth()
            };
            #[cfg(feature = "tls")]
            let tls = if k.tls_changed {
                match listener_tls(l) {
                    Ok(t) => t,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                }
            } else {
                old.tls.clone()
            };
            let net = NetListener {
                listener: old.listener.clone(),
                #[cfg(feature = "tls")]
                tls,
            };
            if k.tls_changed {
                update.replace.push(net.clone());
            }
            kept_settings.push(KeptSettings {
                listener: old.listener.clone(),
                cfg: l.clone(),
                auth,
            });
            list.push(net);
        }
        if !errors.is_empty() {
            // The sockets bound for added listeners close as `update` drops.
            return Err(errors);
        }
        // Everything is built: apply.
        for k in kept_settings {
            k.listener.set_settings(k.cfg, k.auth);
        }
        let kept_ids: Vec<u32> = list.iter().map(|n| n.listener.id).collect();
        for old in &running.listeners {
            if !kept_ids.contains(&old.listener.id) {
                old.listener.mark_removed();
                update.remove.push(old.listener.id);
            }
        }
        let limits = &cfg.mqtt.limits;
        inner
            .budget
            .set_limits(limits.max_retained_messages, limits.max_retained_bytes);
        let arcs = list.iter().map(|n| n.listener.clone()).collect();
        inner.shared.swap(Arc::new(cfg.clone()), global, arcs);
        inner.acceptor.send(AcceptorMsg::Listeners(update));
        for io in &inner.io {
            io.send(Control::Reconfigure);
        }
        *running = Running {
            cfg,
            listeners: list,
            next_id,
        };
        Ok(plan)
    }
}
