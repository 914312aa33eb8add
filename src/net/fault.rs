//! Test-only fault injection for the thread supervision test: in debug builds, the environment
//! variable `PICOMQ_FAULT` names one point where a thread panics on purpose (today only
//! `io-new-connection`: an I/O thread receiving a connection). Release builds compile none of it,
//! so no deployed broker can be made to crash through its environment.
//!
//! Owns: [`hit`]. Must not touch: anything else.

use std::sync::OnceLock;

/// Panics when `PICOMQ_FAULT` names `point` (debug builds only; a no-op in release builds).
#[inline]
pub fn hit(point: &str) {
    if cfg!(debug_assertions) {
        static FAULT: OnceLock<Option<String>> = OnceLock::new();
        let fault = FAULT.get_or_init(|| std::env::var("PICOMQ_FAULT").ok());
        if fault.as_deref() == Some(point) {
            panic!("test fault injected at {point} (PICOMQ_FAULT)");
        }
    }
}
