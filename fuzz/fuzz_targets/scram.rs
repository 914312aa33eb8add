//! Fuzz target `scram`: untrusted bytes into the SCRAM-SHA-512 server exchange (the first thing
//! an unauthenticated client reaches with enhanced authentication). Input: messages separated by
//! 0xFF, fed as successive steps; after the first, a valid client-first may be prepended so the
//! fuzzer also reaches the client-final parser.
//!
//! Oracle: no panic, and never `Success` (no input can know the password of the only user).
//! Owns: the oracle only. Must not touch: the code under test (`src/auth/scram.rs`).

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use picomq::auth::scram::ScramSha512Method;
use picomq::auth::{AuthMethod, NonceSource, PasswordFile, PasswordHash, PasswordSource, Step};

fn method() -> &'static ScramSha512Method {
    static METHOD: OnceLock<ScramSha512Method> = OnceLock::new();
    METHOD.get_or_init(|| {
        let hash = PasswordHash::pbkdf2(b"a long random password nobody guesses", [1; 12], 1);
        let file = PasswordFile::parse(&format!("alice:{}\n", hash.encode())).unwrap();
        ScramSha512Method::new(
            PasswordSource::fixed(Some(file)),
            Arc::new(NonceSource::from_seed([3; 64])),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let mut exchange = method().start();
    let (valid_first, data) = match data.split_first() {
        Some((&b, rest)) => (b & 1 == 1, rest),
        None => return,
    };
    if valid_first {
        let step = exchange.step(b"n,,n=alice,r=fuzznonce");
        assert!(matches!(step, Step::Continue(_)));
    }
    for message in data.split(|&b| b == 0xFF).take(4) {
        match exchange.step(message) {
            Step::Success { .. } => panic!("authenticated without the password"),
            Step::Continue(_) | Step::Failure { .. } => {}
        }
    }
});
