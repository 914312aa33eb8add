//! picomq: a small, fast MQTT 3.1 / 3.1.1 / 5.0 broker for edge gateways and routers.
//!
//! # Layers
//! - [`protocol`]: sans-IO codec. Bytes in, packets (or an error carrying the reason code) out.
//! - [`session`]: sans-IO per-client state machine. Packets, deliveries and `now` in; bytes to write
//!   and actions for the broker out. Never touches sockets, threads, channels or the clock.
//! - [`router`]: sharded topic router. Each shard is a plain struct (subscription trie + retained
//!   store) with a thin thread loop around it, fed over crossbeam channels.
//! - [`broker`]: sans-IO broker core of one I/O thread: connections' protocol state, the sessions
//!   living on the thread, CONNECT placement, timers, `$SYS` counters. Bytes, deliveries and `now`
//!   in; bytes to write, router commands, closes and handovers out (its `Outbox`).
//! - [`net`]: mio event-loop threads that own sockets and transports (TCP, TLS) and drive the core.
//! - [`config`]: TOML file + command line, validated once into an immutable [`config::Config`].
//! - [`sys`]: the `$SYS/broker/...` status topics (sans-IO; gathered and routed by `net`).
//!
//! # Threads
//! - `picomq-io-N` (one per two cores by default): each runs a mio `Poll` around one broker core, owns
//!   its connections' sockets (the core owns their sessions) and the router shards placed on it
//!   (`shard % threads`). Commands for its own shards are applied inline, without a thread hop;
//!   commands for other threads' shards and deliveries for other threads' sessions go in batches
//!   over bounded channels, one send and one wake-up per destination per turn. Each thread keeps
//!   plain `$SYS` counters and folds them into a shared slot on its 250 ms tick; `picomq-io-0`
//!   also routes the `$SYS/broker/...` topics every `[sys] interval`.
//! - `picomq-accept`: accepts connections and hands them to I/O threads round-robin; a config
//!   reload opens and closes its listening sockets.
//! - `picomq-auth`: checks passwords (PBKDF2) for the cores, from a bounded queue; a CONNECT
//!   that finds it full is refused as Server busy, so a login flood never stalls an I/O thread.
//! - `picomq-signals`, `picomq-sighup` (the binary only): stop on SIGINT/SIGTERM, reload on SIGHUP.
//!
//! # Safety
//! No `unsafe` anywhere: the whole crate is `forbid(unsafe_code)`, so a module that one day needs
//! it has to lift this deliberately and say why beside the block.

#![forbid(unsafe_code)]

pub mod auth;
pub mod broker;
pub mod config;
pub mod message;
pub mod net;
pub mod protocol;
pub mod router;
pub mod session;
pub mod sys;
