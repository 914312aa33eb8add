//! The password worker: one thread, `picomq-auth`, that checks CONNECT passwords for every I/O
//! thread, so PBKDF2 (thousands of rounds for a hardened `$7$` entry, and as many for an unknown
//! user's decoy) never runs on an I/O thread and a flood of CONNECTs with wrong or unknown user
//! names cannot stall the clients already connected there.
//!
//! Owns: the worker thread and the size of its queue. The I/O threads put [`AuthJob`]s in with
//! `try_send` (never blocking: a job that finds the queue full goes back to its core, which
//! refuses the CONNECT as Server busy); the worker runs [`AuthJob::check`] and sends job and
//! verdict to the job's I/O thread as [`Control::AuthDone`], waking it. Must not touch: what a
//! verdict means (the core carries on with it), sockets.
//!
//! # One thread
//! A check is pure CPU and the machines picomq runs on have one to four cores, already shared by
//! the I/O threads (one per two cores) and the clients. One worker caps what a login flood can
//! take at one core, whatever its size, and leaves the rest to the connected clients: more
//! workers would only let the flood take more. It also keeps verdicts in the order the CONNECTs
//! were decoded on each thread (one FIFO queue, one control channel per thread), as when checks
//! ran inline: two CONNECTs with the same client id are placed in the order they came.
//!
//! # Lifetime
//! The queue's only sender is in the I/O threads' shared [`Wiring`], of which the worker keeps a
//! weak reference (to reach the I/O threads' control channels): once every I/O thread and the
//! acceptor have exited, the queue is closed and the worker ends after at most the check in
//! progress, dropping jobs still queued (their threads are gone).

use std::io;
use std::sync::Weak;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::broker::AuthJob;

use super::shared::{Control, Wiring};

/// Capacity of the password worker's queue, in CONNECTs. It bounds how long an accepted CONNECT
/// waits for its verdict: queue length times one check. One check (benches/auth_flood.rs prints
/// it) took 40 us with the `$7$` default of 101 rounds and 4.1 ms with 10,000 on the 2-core x86
/// machine this was measured on, so a full queue drains in 3 ms or 0.26 s there, and in about a
/// second with 10,000 rounds on a gateway core several times slower: inside the default 10 s
/// connect timeout and most clients' patience. A longer queue would only make a flood's victims
/// wait longer; the cost is that a burst of more than 64 password logins at once (a reconnect
/// storm) sees some refused with 0x89 Server busy, which clients retry.
pub const AUTH_QUEUE: usize = 64;

/// The queue's two ends: the sender goes into [`Wiring::auth`], the receiver to [`spawn`].
pub fn queue() -> (Sender<AuthJob>, Receiver<AuthJob>) {
    bounded(AUTH_QUEUE)
}

/// Starts the worker on `jobs`; verdicts go back through `wiring`'s control channels.
pub fn spawn(jobs: Receiver<AuthJob>, wiring: Weak<Wiring>) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("picomq-auth".into())
        .spawn(move || run(&jobs, &wiring))
}

/// Checks jobs until the queue is closed or the I/O threads are gone.
fn run(jobs: &Receiver<AuthJob>, wiring: &Weak<Wiring>) {
    while let Ok(job) = jobs.recv() {
        // Every holder of the queue's sender has exited (shutdown): nobody takes a verdict.
        let Some(wiring) = wiring.upgrade() else {
            return;
        };
        let verdict = job.check();
        if let Some(io) = wiring.io.get(usize::from(job.thread)) {
            // A thread that has exited meanwhile drops it (its connections are gone).
            io.send(Control::AuthDone(Box::new(job), verdict));
        }
    }
}
