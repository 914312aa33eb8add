//! Fuzz target `scram`: untrusted bytes into the SCRAM-SHA-512 and SCRAM-SHA-256 server exchanges (the first thing
//! an unauthenticated client reaches with enhanced authentication). Input: messages separated by
//! 0xFF, fed as successive steps; after the first, a valid client-first may be prepended so the
//! fuzzer also reaches the client-final parser.
//!
//! Oracle: no panic, and never `Success` (no input can know the password of the only user).
//! Owns: the oracle only. Must not touch: the code under test (`src/auth/scram.rs`).

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use picomq::auth::scram::{ScramSha256Method, ScramSha512Method};
use picomq::auth::{AuthMethod, NonceSource, PasswordFile, PasswordHash, PasswordSource, Step};

fn methods() -> &'static [Box<dyn AuthMethod>; 2] {
    static METHODS: OnceLock<[Box<dyn AuthMethod>; 2]> = OnceLock::new();
    METHODS.get_or_init(|| {
        let pw = b"a long random password nobody guesses";
        let text = format!(
            "alice:{}\ncarol:{}\n",
            PasswordHash::pbkdf2(pw, [1; 12], 1).encode(),
            PasswordHash::scram_sha256(pw, [2; 12], 1).encode()
        );
        let source = PasswordSource::fixed(Some(PasswordFile::parse(&text).unwrap()));
        let nonces = Arc::new(NonceSource::from_seed([3; 64]));
        [
            Box::new(ScramSha512Method::new(source.clone(), nonces.clone())),
            Box::new(ScramSha256Method::new(source, nonces)),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let sha256 = flags & 2 != 0;
    let mut exchange = methods()[usize::from(sha256)].start();
    if flags & 1 == 1 {
        let first: &[u8] = if sha256 {
            b"n,,n=carol,r=fuzznonce"
        } else {
            b"n,,n=alice,r=fuzznonce"
        };
        let step = exchange.step(first);
        assert!(matches!(step, Step::Continue(_)));
    }
    for message in data.split(|&b| b == 0xFF).take(4) {
        match exchange.step(message) {
            Step::Success { .. } => panic!("authenticated without the password"),
            Step::Continue(_) | Step::Failure { .. } => {}
        }
    }
});
