//! Compatibility of password files with Mosquitto's own tools, and the `picomq passwd`
//! subcommand and start-up checks through the real binary.
//!
//! Owns: nothing but tests. They need `mosquitto_passwd` and `mosquitto` (Debian package
//! `mosquitto`, which `scripts/test.sh` installs): a missing tool fails the test, it never skips.
//! Files go to `CARGO_TARGET_TMPDIR`; a Mosquitto broker is started on a free loopback port and
//! killed at the end.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::{fs, io::Write};

use picomq::auth::{AuthConfig, Authenticator, PasswordFile, PasswordHash};
use picomq::protocol::ReasonCode;

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("auth-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs an external tool, failing the test with advice when it is not installed.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): install the Debian package mosquitto (scripts/test.sh does)")
        })
}

fn run_ok(program: &str, args: &[&str]) {
    let out = run(program, args);
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
}

/// Runs the picomq binary with `stdin` as standard input.
fn picomq(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_picomq"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn picomq");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn entries_written_by_mosquitto_passwd_verify() {
    let dir = scratch("mosquitto-passwd");
    let file = dir.join("pw");
    let f = file.to_str().unwrap();
    run_ok("mosquitto_passwd", &["-c", "-b", f, "alice", "secret"]);
    run_ok(
        "mosquitto_passwd",
        &["-H", "sha512", "-b", f, "bob", "hunter2"],
    );
    run_ok(
        "mosquitto_passwd",
        &["-b", f, "carol", "pass with spaces é"],
    );
    run_ok("mosquitto_passwd", &["-b", f, "alice", "changed"]);

    let written = fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert!(lines[0].starts_with("alice:$7$101$"), "{written}");
    assert!(lines[1].starts_with("bob:$6$"), "{written}");

    let parsed = PasswordFile::parse(&written).unwrap_or_else(|e| panic!("{e}\n{written}"));
    assert_eq!(
        parsed.users().collect::<Vec<_>>(),
        ["alice", "bob", "carol"]
    );
    assert!(parsed.verify("alice", b"changed"));
    assert!(!parsed.verify("alice", b"secret"));
    assert!(parsed.verify("bob", b"hunter2"));
    assert!(parsed.verify("carol", "pass with spaces é".as_bytes()));
    assert!(matches!(
        parsed.get("alice"),
        Some(PasswordHash::Pbkdf2Sha512 {
            iterations: 101,
            ..
        })
    ));

    let auth = Authenticator::load(&AuthConfig {
        password_file: Some(file.clone()),
        acl_file: None,
        allow_anonymous: false,
        methods: Vec::new(),
    })
    .unwrap();
    assert_eq!(auth.check_connect(Some("bob"), Some(b"hunter2")), Ok(()));
    assert_eq!(
        auth.check_connect(Some("bob"), Some(b"hunter3")),
        Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
    assert_eq!(
        auth.check_connect(None, None),
        Err(ReasonCode::NOT_AUTHORIZED)
    );
}

/// A Mosquitto broker on a free loopback port, killed on drop.
struct Mosquitto {
    child: Child,
    port: u16,
}

impl Mosquitto {
    fn start(dir: &Path, password_file: &Path) -> Mosquitto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // `user root`: stay root so it can read the 0600 file picomq writes (as root here).
        let config = format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n\
             user root\npersistence false\nlog_dest stderr\n",
            password_file.display()
        );
        let child = common::spawn_mosquitto(dir, &config, port);
        Mosquitto { child, port }
    }

    /// True if Mosquitto accepts this user name and password (a QoS 0 publish succeeds).
    fn accepts(&self, user: &str, password: &str) -> bool {
        let port = self.port.to_string();
        let args = [
            "-p", &port, "-u", user, "-P", password, "-t", "t", "-m", "x",
        ];
        run("mosquitto_pub", &args).status.success()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn picomq_passwd_writes_files_mosquitto_accepts() {
    let dir = scratch("picomq-passwd");
    let file = dir.join("pw");
    let f = file.to_str().unwrap();

    let out = picomq(&["passwd", "-c", "-b", f, "alice", "secret"], "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "Adding password for user alice\n");
    let out = picomq(&["passwd", "-b", "-I", "1000", f, "bob", "builder"], "");
    assert!(out.status.success(), "{out:?}");
    // Without -b the password is one line of standard input.
    let out = picomq(&["passwd", f, "carol"], "from stdin\n");
    assert!(out.status.success(), "{out:?}");
    let out = picomq(&["passwd", "-b", f, "alice", "newer"], "");
    assert_eq!(text(&out.stdout), "Updating password for user alice\n");
    let out = picomq(&["passwd", "-b", f, "dave", "temp"], "");
    assert!(out.status.success(), "{out:?}");
    let out = picomq(&["passwd", "-D", f, "dave"], "");
    assert_eq!(text(&out.stdout), "Deleted user dave\n");

    let written = fs::read_to_string(&file).unwrap();
    let parsed = PasswordFile::parse(&written).unwrap();
    assert_eq!(
        parsed.users().collect::<Vec<_>>(),
        ["alice", "bob", "carol"]
    );
    assert!(parsed.verify("alice", b"newer") && parsed.verify("carol", b"from stdin"));
    assert!(matches!(
        parsed.get("bob"),
        Some(PasswordHash::Pbkdf2Sha512 {
            iterations: 1000,
            ..
        })
    ));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a new password file is private");
    }

    // mosquitto_passwd reads our file (it rewrites it to add an entry without complaint)...
    let out = run("mosquitto_passwd", &["-b", f, "erin", "e"]);
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let parsed = PasswordFile::parse(&fs::read_to_string(&file).unwrap()).unwrap();
    assert!(parsed.verify("erin", b"e") && parsed.verify("bob", b"builder"));

    // ...and the Mosquitto broker logs our users in.
    let broker = Mosquitto::start(&dir, &file);
    assert!(broker.accepts("alice", "newer"));
    assert!(broker.accepts("bob", "builder"));
    assert!(broker.accepts("carol", "from stdin"));
    assert!(!broker.accepts("alice", "secret"));
    assert!(!broker.accepts("dave", "temp"));
}

#[test]
fn picomq_passwd_refusals() {
    let dir = scratch("passwd-refusals");
    let file = dir.join("pw");
    let f = file.to_str().unwrap();
    // Without -c the file must exist.
    let out = picomq(&["passwd", "-b", f, "alice", "x"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("use -c to create"), "{out:?}");
    // A bad line is reported with its number and the file is left alone.
    fs::write(&file, "# users\nalice\n").unwrap();
    let out = picomq(&["passwd", "-b", f, "bob", "x"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("line 2: expected user:hash"),
        "{out:?}"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "# users\nalice\n");
    // User names that would not read back, empty passwords, unknown users.
    let out = picomq(&["passwd", "-c", "-b", f, "a:b", "x"], "");
    assert!(text(&out.stderr).contains("':'"), "{out:?}");
    let out = picomq(&["passwd", "-c", f, "alice"], "\n");
    assert!(text(&out.stderr).contains("no password given"), "{out:?}");
    fs::write(&file, "").unwrap();
    let out = picomq(&["passwd", "-D", f, "nobody"], "");
    assert!(text(&out.stderr).contains("not in the file"), "{out:?}");
    // Flag combinations clap refuses (exit code 2, like any usage error).
    for args in [
        &["passwd", "-c", "-D", f, "u"][..],
        &["passwd", "-b", f, "u"],
        &["passwd", f, "u", "password-without-b"],
        &["passwd", "-I", "0", "-b", f, "u", "p"],
        &["--listen", "127.0.0.1:1", "passwd", "-b", f, "u", "p"],
    ] {
        let out = picomq(args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}

#[test]
fn start_up_stops_on_a_bad_auth_file() {
    let dir = scratch("startup");
    let pw = dir.join("pw");
    fs::write(&pw, "alice:$7$101$short$x\n").unwrap();
    let conf = dir.join("picomq.toml");
    fs::write(
        &conf,
        format!("[auth]\npassword_file = \"{}\"\n", pw.display()),
    )
    .unwrap();
    let out = picomq(&["--conf", conf.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let want = format!("{}:1: user \"alice\": salt", pw.display());
    assert!(text(&out.stderr).contains(&want), "{out:?}");

    fs::write(
        &conf,
        format!("[auth]\nacl_file = \"{}\"\n", dir.join("missing").display()),
    )
    .unwrap();
    let out = picomq(&["--conf", conf.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stderr).contains("missing: cannot read ACL file"),
        "{out:?}"
    );
}
