//! Tests of the SCRAM server and client: the RFC 7677 SCRAM-SHA-256 example byte for byte, and
//! SCRAM-SHA-512 end to end against `$7$` password entries. Must not touch: files or sockets.

use super::*;
use crate::auth::PasswordFile;

fn sha256_rfc7677_server() -> ScramServer<ScramSha256> {
    // RFC 7677 section 3: user "user", password "pencil".
    let salt = base64::decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let salted = ScramSha256::hi(b"pencil", &salt, 4096);
    let cred = ServerCredential::from_salted::<ScramSha256>(&salted, &salt, 4096);
    ScramServer::new(
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
        Box::new(move |user| match user {
            "user" => (cred, true),
            _ => (
                ServerCredential::from_salted::<ScramSha256>(&[0; 32], &[0; 16], 4096),
                false,
            ),
        }),
    )
}

#[test]
fn rfc_7677_scram_sha_256_example_server_side() {
    let mut server = sha256_rfc7677_server();
    let first = server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    assert_eq!(
        first,
        Step::Continue(
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
                .to_vec()
        )
    );
    let last = server.step(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
          p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    );
    assert_eq!(
        last,
        Step::Success {
            data: Some(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec()),
            username: "user".into()
        }
    );
    // The exchange is over: anything more fails.
    assert!(matches!(
        server.step(b"n,,n=user,r=x"),
        Step::Failure { .. }
    ));
}

#[test]
fn rfc_7677_scram_sha_256_example_client_side() {
    let mut client = ScramClient::<ScramSha256>::new("user", "rOprNGfwEbeRWgbNEkqO");
    assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let fin = client
        .client_final(
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            b"pencil",
        )
        .unwrap();
    assert_eq!(
        fin,
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
         p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    assert!(client.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
    assert!(!client.verify_server_final("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
}

fn method(file: &str) -> ScramSha512Method {
    let file = PasswordFile::parse(file).unwrap();
    ScramSha512Method::new(
        PasswordSource::fixed(Some(file)),
        Arc::new(NonceSource::from_seed([7; 64])),
    )
}

fn entry_7(user: &str, password: &[u8], iterations: u32) -> String {
    let hash = PasswordHash::pbkdf2(password, [3; SALT_LEN], iterations);
    format!("{user}:{}\n", hash.encode())
}

/// Runs a whole SCRAM-SHA-512 exchange; returns the server's last step and whether the client
/// accepted the server's signature.
fn run_sha512(m: &ScramSha512Method, user: &str, password: &[u8]) -> (Step, bool) {
    let mut server = m.start();
    let mut client = ScramClient::<ScramSha512>::new(user, "fyko+d2lbbFgONRv9qkxdawL");
    let Step::Continue(first) = server.step(client.client_first().as_bytes()) else {
        panic!("server refused client-first");
    };
    let first = String::from_utf8(first).unwrap();
    let fin = client.client_final(&first, password).unwrap();
    let step = server.step(fin.as_bytes());
    let verified = match &step {
        Step::Success { data: Some(d), .. } => {
            client.verify_server_final(std::str::from_utf8(d).unwrap())
        }
        _ => false,
    };
    (step, verified)
}

#[test]
fn scram_sha_512_from_a_mosquitto_7_entry() {
    let m = method(&(entry_7("alice", b"s3cret", 101) + &entry_7("bob", b"pw", 1000)));
    let (step, verified) = run_sha512(&m, "alice", b"s3cret");
    assert!(matches!(step, Step::Success { ref username, .. } if username == "alice"));
    assert!(verified, "client must accept the server signature");
    let (step, _) = run_sha512(&m, "bob", b"pw");
    assert!(matches!(step, Step::Success { .. }));
}

#[test]
fn scram_sha_512_wrong_password_fails() {
    let m = method(&entry_7("alice", b"s3cret", 101));
    let (step, verified) = run_sha512(&m, "alice", b"s3cret!");
    assert!(matches!(step, Step::Failure { .. }));
    assert!(!verified);
}

#[test]
fn scram_sha_512_unknown_and_6_users_fail_and_look_like_real_ones() {
    let six = PasswordHash::sha512(b"pw", [1; SALT_LEN]);
    // Most $7$ entries use 1000 rounds: decoys show that count too.
    let m = method(&format!(
        "old:{}\n{}{}",
        six.encode(),
        entry_7("alice", b"x", 1000),
        entry_7("bob", b"y", 1000)
    ));
    for user in ["old", "nobody"] {
        let (step, _) = run_sha512(&m, user, b"pw");
        assert!(matches!(step, Step::Failure { .. }), "{user}");
    }
    // The decoy salt is stable per user (asking twice shows the same salt) and has the real
    // format: 12 bytes, the file's usual round count.
    let first = |user: &str| {
        let mut s = m.start();
        match s.step(format!("n,,n={user},r=abc").as_bytes()) {
            Step::Continue(d) => String::from_utf8(d).unwrap(),
            other => panic!("{other:?}"),
        }
    };
    let salt = |msg: String| msg.split(',').nth(1).unwrap().to_owned();
    assert_eq!(salt(first("nobody")), salt(first("nobody")));
    assert_ne!(salt(first("nobody")), salt(first("other")));
    assert!(first("nobody").ends_with(",i=1000"));
    assert_eq!(
        base64::decode(&salt(first("old"))[2..]).unwrap().len(),
        SALT_LEN
    );
}

#[test]
fn malformed_client_messages_fail() {
    let m = method(&entry_7("alice", b"x", 101));
    for bad in [
        &b"p=tls-unique,,n=alice,r=abc"[..],
        b"n,a=bob,n=alice,r=abc",
        b"n,,m=ext,n=alice,r=abc",
        b"n,,n=,r=abc",
        b"n,,n=al=ice,r=abc",
        b"n,,n=alice,r=",
        b"n,,n=alice,r=a,b",
        b"n,,n=alice",
        b"n,,r=abc",
        b"x,,n=alice,r=abc",
        b"",
        b"\xff\xfe",
    ] {
        let mut s = m.start();
        assert!(
            matches!(s.step(bad), Step::Failure { .. }),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let long = format!("n,,n=alice,r={}", "a".repeat(MAX_NONCE_LEN + 1));
    assert!(matches!(
        m.start().step(long.as_bytes()),
        Step::Failure { .. }
    ));
}

#[test]
fn client_final_must_echo_header_and_nonce() {
    let m = method(&entry_7("alice", b"x", 101));
    let start = |m: &ScramSha512Method| {
        let mut s = m.start();
        let Step::Continue(first) = s.step(b"n,,n=alice,r=abc") else {
            panic!()
        };
        (s, String::from_utf8(first).unwrap())
    };
    let (mut s, first) = start(&m);
    let nonce = first.split(',').next().unwrap().to_owned();
    // c= must be base64("n,,") = "biws".
    let bad_cb = format!("c=eSws,{nonce},p=AAAA");
    assert!(matches!(s.step(bad_cb.as_bytes()), Step::Failure { .. }));
    let (mut s, _) = start(&m);
    assert!(matches!(
        s.step(b"c=biws,r=abcXYZ,p=AAAA"),
        Step::Failure { .. }
    ));
    let (mut s, _) = start(&m);
    let no_proof = format!("c=biws,{nonce}");
    assert!(matches!(s.step(no_proof.as_bytes()), Step::Failure { .. }));
}

#[test]
fn saslname_escapes_round_trip() {
    assert_eq!(encode_saslname("a,b=c"), "a=2Cb=3Dc");
    assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
    assert_eq!(decode_saslname("a=2"), None);
    let m = method(&entry_7("we,ird=", b"pw", 101));
    let (step, verified) = run_sha512(&m, "we,ird=", b"pw");
    assert!(matches!(step, Step::Success { ref username, .. } if username == "we,ird="));
    assert!(verified);
}

#[test]
fn y_flag_is_accepted_and_must_be_echoed() {
    let m = method(&entry_7("alice", b"pw", 101));
    let mut s = m.start();
    let Step::Continue(first) = s.step(b"y,,n=alice,r=abc") else {
        panic!()
    };
    let first = String::from_utf8(first).unwrap();
    let mut client = ScramClient::<ScramSha512>::new("alice", "abc");
    // The client helper always sends c=biws ("n,,"): a "y,," exchange must then fail.
    let fin = client.client_final(&first, b"pw").unwrap();
    assert!(matches!(s.step(fin.as_bytes()), Step::Failure { .. }));
}

fn method_256(file: &str) -> ScramSha256Method {
    let file = PasswordFile::parse(file).unwrap();
    ScramSha256Method::new(
        PasswordSource::fixed(Some(file)),
        Arc::new(NonceSource::from_seed([8; 64])),
    )
}

fn entry_256(user: &str, password: &[u8], iterations: u32) -> String {
    let hash = PasswordHash::scram_sha256(password, [4; SALT_LEN], iterations);
    format!("{user}:{}\n", hash.encode())
}

/// A whole exchange with the SHA-256 client against any method.
fn run_sha256(m: &dyn AuthMethod, user: &str, password: &[u8]) -> (Step, bool) {
    let mut server = m.start();
    let mut client = ScramClient::<ScramSha256>::new(user, "rOprNGfwEbeRWgbNEkqO");
    let Step::Continue(first) = server.step(client.client_first().as_bytes()) else {
        panic!("server refused client-first");
    };
    let fin = client
        .client_final(std::str::from_utf8(&first).unwrap(), password)
        .unwrap();
    let step = server.step(fin.as_bytes());
    let verified = match &step {
        Step::Success { data: Some(d), .. } => {
            client.verify_server_final(std::str::from_utf8(d).unwrap())
        }
        _ => false,
    };
    (step, verified)
}

#[test]
fn scram_sha_256_entries_parse_encode_and_verify_plain_passwords() {
    let hash = PasswordHash::scram_sha256(b"pencil", [4; SALT_LEN], 4096);
    let text = hash.encode();
    assert!(text.starts_with("$scram-sha-256$4096$"), "{text}");
    assert_eq!(PasswordHash::parse(&text), Ok(hash.clone()));
    assert!(hash.matches(b"pencil"));
    assert!(!hash.matches(b"pencil!"));
    for bad in [
        "$scram-sha-256$4096$AAAA$AAAA",
        "$scram-sha-256$0$BAQEBAQEBAQEBAQE$AAAA$AAAA",
    ] {
        assert!(PasswordHash::parse(bad).is_err(), "{bad}");
    }
    // The keys are the RFC 5802 ones: a client computing them itself agrees.
    let PasswordHash::ScramSha256 {
        stored_key,
        server_key,
        ..
    } = hash
    else {
        panic!()
    };
    let salted = ScramSha256::hi(b"pencil", &[4; SALT_LEN], 4096);
    let c = ServerCredential::from_salted::<ScramSha256>(&salted, &[4; SALT_LEN], 4096);
    assert_eq!(
        (c.stored_key.as_slice(), c.server_key.as_slice()),
        (&stored_key[..], &server_key[..])
    );
}

#[test]
fn scram_sha_256_method_over_scram_sha_256_entries() {
    let file = entry_256("carol", b"pw256", 64) + &entry_7("alice", b"pw512", 101);
    let m256 = method_256(&file);
    let m512 = method(&file);
    let (step, verified) = run_sha256(&m256, "carol", b"pw256");
    assert!(matches!(step, Step::Success { ref username, .. } if username == "carol"));
    assert!(verified);
    assert!(matches!(
        run_sha256(&m256, "carol", b"nope").0,
        Step::Failure { .. }
    ));
    // Each method only uses its own kind of entry.
    assert!(matches!(
        run_sha256(&m256, "alice", b"pw512").0,
        Step::Failure { .. }
    ));
    assert!(matches!(
        run_sha512(&m512, "carol", b"pw256").0,
        Step::Failure { .. }
    ));
    assert!(matches!(
        run_sha512(&m512, "alice", b"pw512").0,
        Step::Success { .. }
    ));
    assert_eq!(m256.name(), "SCRAM-SHA-256");
}

/// The server-first-message `m` sends for `user`.
fn server_first(m: &dyn AuthMethod, user: &str) -> String {
    match m.start().step(format!("n,,n={user},r=abc").as_bytes()) {
        Step::Continue(d) => String::from_utf8(d).unwrap(),
        other => panic!("{other:?}"),
    }
}

fn iterations_shown(m: &dyn AuthMethod, user: &str) -> String {
    server_first(m, user).rsplit(',').next().unwrap().to_owned()
}

#[test]
fn decoys_show_the_rounds_of_the_methods_own_kind_in_a_mixed_file() {
    // Mostly `$7$` with 101 rounds, one `-S` user with 4096: an unknown user must show 4096 to
    // SCRAM-SHA-256 (as carol does), not the file's overall most common 101.
    let mostly_7 = entry_7("a", b"pw", 101)
        + &entry_7("b", b"pw", 101)
        + &entry_7("c", b"pw", 101)
        + &entry_256("carol", b"pw", 4096);
    let m256 = method_256(&mostly_7);
    assert_eq!(iterations_shown(&m256, "carol"), "i=4096");
    assert_eq!(iterations_shown(&m256, "nobody"), "i=4096");
    assert_eq!(iterations_shown(&m256, "a"), "i=4096");
    let m512 = method(&mostly_7);
    assert_eq!(iterations_shown(&m512, "a"), "i=101");
    assert_eq!(iterations_shown(&m512, "nobody"), "i=101");
    // And the other way round: mostly `-S`, one `$7$` user.
    let mostly_256 = entry_256("s1", b"pw", 4096)
        + &entry_256("s2", b"pw", 4096)
        + &entry_256("s3", b"pw", 4096)
        + &entry_7("alice", b"pw", 101);
    let m512 = method(&mostly_256);
    assert_eq!(iterations_shown(&m512, "alice"), "i=101");
    assert_eq!(iterations_shown(&m512, "nobody"), "i=101");
    assert_eq!(iterations_shown(&m512, "s1"), "i=101");
    let m256 = method_256(&mostly_256);
    assert_eq!(iterations_shown(&m256, "nobody"), "i=4096");
    // Without entries of a kind, the defaults `picomq passwd` writes for it.
    let only_7 = entry_7("a", b"pw", 1000);
    assert_eq!(iterations_shown(&method_256(&only_7), "x"), "i=4096");
    let only_256 = entry_256("s", b"pw", 8192);
    assert_eq!(iterations_shown(&method(&only_256), "x"), "i=101");
    // A decoy still fails, whatever the password.
    assert!(matches!(
        run_sha256(&method_256(&mostly_7), "nobody", b"pw").0,
        Step::Failure { .. }
    ));
}

#[test]
fn decoy_salts_follow_the_file_not_the_nonce_key() {
    let text = entry_7("alice", b"pw", 101) + &entry_256("carol", b"pw", 4096);
    let salt = |m: &dyn AuthMethod, user: &str| {
        server_first(m, user).split(',').nth(1).unwrap().to_owned()
    };
    // Different nonce keys (as after a restart), same file: same decoy salts.
    let file = PasswordFile::parse(&text).unwrap();
    let other_key = ScramSha512Method::new(
        PasswordSource::fixed(Some(file)),
        Arc::new(NonceSource::from_seed([99; 64])),
    );
    assert_eq!(salt(&method(&text), "nobody"), salt(&other_key, "nobody"));
    // The two methods show different decoy salts for one user, and another file other ones.
    assert_ne!(
        salt(&method(&text), "nobody"),
        salt(&method_256(&text), "nobody")
    );
    let changed = text.clone() + &entry_7("dave", b"pw", 101);
    assert_ne!(
        salt(&method(&text), "nobody"),
        salt(&method(&changed), "nobody")
    );
    // A real user's salt is its own.
    assert_eq!(
        salt(&method(&text), "alice"),
        salt(&method(&changed), "alice")
    );
}

thread_local! {
    /// (credentials derived, decoys made) by [`Counting`] on this thread.
    static WORK: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// SCRAM-SHA-512 that counts the expensive steps of a lookup.
struct Counting;

impl ScramHash for Counting {
    const NAME: &'static str = ScramSha512::NAME;
    const LEN: usize = ScramSha512::LEN;
    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        ScramSha512::hmac(key, data)
    }
    fn hash(data: &[u8]) -> Vec<u8> {
        ScramSha512::hash(data)
    }
    fn hi(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        ScramSha512::hi(password, salt, iterations)
    }
}

impl FileCredential for Counting {
    const KIND: HashKind = ScramSha512::KIND;
    fn credential(hash: &PasswordHash) -> Option<ServerCredential> {
        WORK.with(|w| w.set((w.get().0 + 1, w.get().1)));
        ScramSha512::credential(hash)
    }
    fn decoy(salt: [u8; SALT_LEN], iterations: u32, key: &[u8; 64]) -> PasswordHash {
        WORK.with(|w| w.set((w.get().0, w.get().1 + 1)));
        ScramSha512::decoy(salt, iterations, key)
    }
}

#[test]
fn lookups_do_the_same_work_for_known_unknown_and_wrong_kind_users() {
    let six = PasswordHash::sha512(b"pw", [1; SALT_LEN]);
    let text = format!("old:{}\n{}", six.encode(), entry_7("alice", b"x", 101));
    let m = ScramFileMethod::<Counting>::new(
        PasswordSource::fixed(Some(PasswordFile::parse(&text).unwrap())),
        Arc::new(NonceSource::from_seed([5; 64])),
    );
    for user in ["alice", "nobody", "old"] {
        WORK.with(|w| w.set((0, 0)));
        server_first(&m, user);
        // One decoy made and exactly one credential derived, whoever asks.
        assert_eq!(WORK.with(|w| w.get()), (1, 1), "{user}");
    }
}
