//! Tests of the [`Authenticator`]: CONNECT decisions, loading errors, reload.

use super::*;
use std::fs;

/// alice / secret, written by mosquitto_passwd 2.0.11.
const ALICE: &str = "alice:$7$101$+uvZ5ECV1OVfVv2F$4NAUhKkB7PJZA/mQHJ46nvxNVZJTbcA5XDuFzqYEqDq8tlg4VnCK9gZXd2bpAO4B6iedoo9x1wgatTmqDYm/kg==\n";

fn passwords() -> Option<PasswordFile> {
    Some(PasswordFile::parse(ALICE).unwrap())
}

const NOT_AUTHORIZED: Result<(), ReasonCode> = Err(ReasonCode::NOT_AUTHORIZED);
const BAD_LOGIN: Result<(), ReasonCode> = Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD);

#[test]
fn connect_with_a_password_file() {
    for anonymous in [false, true] {
        let auth = Authenticator::from_parts(anonymous, passwords(), None);
        assert_eq!(auth.check_connect(Some("alice"), Some(b"secret")), Ok(()));
        assert_eq!(auth.check_connect(Some("alice"), Some(b"wrong")), BAD_LOGIN);
        assert_eq!(auth.check_connect(Some("alice"), None), BAD_LOGIN);
        assert_eq!(auth.check_connect(Some("alice"), Some(b"")), BAD_LOGIN);
        // An unknown user is a bad login, never a fallback to anonymous.
        assert_eq!(
            auth.check_connect(Some("mallory"), Some(b"secret")),
            BAD_LOGIN
        );
        let anon = if anonymous { Ok(()) } else { NOT_AUTHORIZED };
        assert_eq!(auth.check_connect(None, None), anon);
        assert_eq!(auth.check_connect(None, Some(b"secret")), anon);
    }
    // The 3.1.1 CONNACK return codes.
    assert_eq!(ReasonCode::BAD_USER_NAME_OR_PASSWORD.to_v3_connack(), 4);
    assert_eq!(ReasonCode::NOT_AUTHORIZED.to_v3_connack(), 5);
}

#[test]
fn connect_without_a_password_file() {
    let open = Authenticator::from_parts(true, None, None);
    assert!(open.allows_everything());
    assert_eq!(open.check_connect(None, None), Ok(()));
    // User names are taken as given, like Mosquitto.
    assert_eq!(open.check_connect(Some("anyone"), Some(b"x")), Ok(()));
    let closed = Authenticator::from_parts(false, None, None);
    assert!(!closed.allows_everything());
    assert_eq!(closed.check_connect(None, None), NOT_AUTHORIZED);
    assert_eq!(
        closed.check_connect(Some("anyone"), Some(b"x")),
        NOT_AUTHORIZED
    );
    assert_eq!(closed.warnings().len(), 1);
}

#[test]
fn topic_checks_follow_the_acl() {
    let acl = Acl::parse("user alice\ntopic readwrite a/#\n").unwrap();
    let auth = Authenticator::from_parts(false, passwords(), Some(acl));
    assert!(auth.check("c", Some("alice"), "a/b", Access::Write));
    assert!(!auth.check("c", Some("alice"), "b", Access::Write));
    let view = auth.client_acl("c", Some("alice"));
    assert_eq!(view.check_subscribe("a/+"), SubscribeVerdict::Full);
    // No ACL: everything passes.
    let open = Authenticator::from_parts(true, None, None);
    assert!(open.check("c", None, "x/y", Access::Write));
    assert_eq!(open.client_acl("c", None), ClientAcl::allow_all());
    // from_parts has nothing to reload.
    assert!(auth.reload().is_ok());
    assert_eq!(auth.generation(), 0);
}

#[test]
fn warnings_for_surprising_settings() {
    let acl = Acl::parse("user alice\ntopic read #\n").unwrap();
    let trusting = Authenticator::from_parts(true, None, Some(acl));
    assert!(trusting.warnings()[0].contains("any client can claim"));
    let empty = Authenticator::from_parts(true, Some(PasswordFile::new()), None);
    assert!(empty.warnings()[0].contains("no users"));
    assert!(Authenticator::from_parts(false, passwords(), None)
        .warnings()
        .is_empty());
}

/// A scratch directory under the system temp dir, removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("picomq-auth-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn loading_errors_name_file_and_line() {
    let dir = Scratch::new("load");
    let pw = dir.write("pw", &format!("{ALICE}\n"));
    let config = AuthConfig {
        password_file: Some(pw.clone()),
        acl_file: None,
        allow_anonymous: false,
        methods: Vec::new(),
    };
    let err = Authenticator::load(&config).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: blank line (remove it; comments start with '#')",
            pw.display()
        )
    );
    let acl = dir.write("acl", "topic read a\nuser\n");
    let pw = dir.write("pw", ALICE);
    let config = AuthConfig {
        password_file: Some(pw),
        acl_file: Some(acl.clone()),
        allow_anonymous: false,
        methods: Vec::new(),
    };
    let err = Authenticator::load(&config).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:2: `user` needs a user name", acl.display())
    );
    let missing = AuthConfig {
        acl_file: Some(dir.0.join("nope")),
        ..config
    };
    let err = Authenticator::load(&missing).unwrap_err();
    assert!(
        err.to_string().contains("nope: cannot read ACL file:"),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn reload_swaps_files_or_keeps_the_old_ones() {
    let dir = Scratch::new("reload");
    let pw = dir.write("pw", ALICE);
    let acl = dir.write("acl", "user alice\ntopic read a/#\n");
    let config = AuthConfig {
        password_file: Some(pw.clone()),
        acl_file: Some(acl.clone()),
        allow_anonymous: false,
        methods: Vec::new(),
    };
    let auth = Authenticator::load(&config).unwrap();
    assert_eq!(auth.config(), &config);
    assert_eq!(auth.generation(), 0);
    assert!(auth.check("c", Some("alice"), "a/x", Access::Read));

    // A broken file: error, old state kept, generation unchanged.
    fs::write(&acl, "user alice\ntopic reed a/#\n").unwrap();
    let err = auth.reload().unwrap_err();
    assert!(
        err.to_string().contains(":2: unknown access \"reed\""),
        "{err}"
    );
    assert_eq!(auth.generation(), 0);
    assert!(auth.check("c", Some("alice"), "a/x", Access::Read));

    // Fixed files: new rules and passwords in force, new generation.
    fs::write(&acl, "user alice\ntopic read b/#\n").unwrap();
    let hash = PasswordHash::pbkdf2(b"new", [9; passwd::SALT_LEN], 2);
    fs::write(&pw, format!("alice:{}\n", hash.encode())).unwrap();
    auth.reload().unwrap();
    assert_eq!(auth.generation(), 1);
    assert!(!auth.check("c", Some("alice"), "a/x", Access::Read));
    assert!(auth.check("c", Some("alice"), "b/x", Access::Read));
    assert_eq!(auth.check_connect(Some("alice"), Some(b"new")), Ok(()));
    assert_eq!(
        auth.check_connect(Some("alice"), Some(b"secret")),
        BAD_LOGIN
    );

    // A vanished file is an error too.
    fs::remove_file(&pw).unwrap();
    assert!(matches!(
        auth.reload(),
        Err(AuthError::Read {
            what: "password file",
            ..
        })
    ));
    assert_eq!(auth.check_connect(Some("alice"), Some(b"new")), Ok(()));
}

#[test]
fn authenticator_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Authenticator>();
    assert_send_sync::<ClientAcl>();
}

/// The salt a SCRAM-SHA-512 exchange of `auth` shows for `user`.
fn scram_salt(auth: &Authenticator, user: &str) -> String {
    let method = auth.auth_method(SCRAM_SHA_512).unwrap();
    match method.start().step(format!("n,,n={user},r=abc").as_bytes()) {
        Step::Continue(d) => String::from_utf8(d)
            .unwrap()
            .split(',')
            .nth(1)
            .unwrap()
            .to_owned(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn decoy_salts_survive_a_restart_while_the_file_is_unchanged() {
    let dir = Scratch::new("decoy");
    let config = |path: PathBuf| AuthConfig {
        password_file: Some(path),
        acl_file: None,
        allow_anonymous: false,
        methods: vec![SCRAM_SHA_512.to_owned()],
    };
    let pw = dir.write("pw", ALICE);
    // Two loads of one file stand for two runs of the broker (each seeds its nonces anew).
    let first = Authenticator::load(&config(pw.clone())).unwrap();
    let second = Authenticator::load(&config(pw.clone())).unwrap();
    assert_eq!(
        scram_salt(&first, "mallory"),
        scram_salt(&second, "mallory")
    );
    assert_eq!(scram_salt(&first, "alice"), scram_salt(&second, "alice"));
    let hash = PasswordHash::pbkdf2(b"pw", [5; passwd::SALT_LEN], 101);
    let other = dir.write("other", &format!("{ALICE}bob:{}\n", hash.encode()));
    let third = Authenticator::load(&config(other)).unwrap();
    assert_ne!(scram_salt(&first, "mallory"), scram_salt(&third, "mallory"));
    // A reload of a changed file changes it too; the real user's salt stays.
    fs::write(&pw, format!("{ALICE}bob:{}\n", hash.encode())).unwrap();
    first.reload().unwrap();
    assert_eq!(scram_salt(&first, "mallory"), scram_salt(&third, "mallory"));
    assert_eq!(scram_salt(&first, "alice"), scram_salt(&second, "alice"));
}

#[test]
fn a_config_built_in_code_with_bad_methods_is_refused() {
    let mut config = AuthConfig {
        methods: vec![SCRAM_SHA_256.to_owned()],
        ..AuthConfig::default()
    };
    let err = Authenticator::load(&config).unwrap_err();
    assert!(err.to_string().contains("need a password_file"), "{err}");
    let dir = Scratch::new("methods");
    config.password_file = Some(dir.write("pw", ALICE));
    assert!(Authenticator::load(&config).is_ok());
    config.methods = vec!["SCRAM-SHA-1".to_owned()];
    let err = Authenticator::load(&config).unwrap_err();
    assert!(
        err.to_string().contains("unknown authentication method"),
        "{err}"
    );
    for name in BUILT_IN_METHODS {
        config.methods = vec![name.to_owned()];
        let auth = Authenticator::load(&config).unwrap();
        assert_eq!(auth.auth_method(name).unwrap().name(), name);
    }
}
