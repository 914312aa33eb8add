//! `picomq --check -c FILE` through the real binary: exit codes, the `OK` line, and errors that
//! name the config file's line and key or the password, ACL or certificate file at fault; and the
//! `-c` short flag beside `picomq passwd -c`.
//!
//! Owns nothing but tests. Files go to a fresh directory under `CARGO_TARGET_TMPDIR`; no broker is
//! started (that `--check` binds nothing is itself tested, with a port held busy).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use clap::Parser;
use picomq::config::cli::{Cli, Command as Subcommand};

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("check-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `text` to `dir/name` and returns the path as a string.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs the binary with `args`, standard input closed.
fn picomq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picomq"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run picomq")
}

/// Exit code, stdout and stderr.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = picomq(args);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// A valid password file with one user, made by `picomq passwd -c` (which must keep its own `-c`).
fn password_file(dir: &Path) -> String {
    let path = dir.join("passwd").display().to_string();
    let (code, _, err) = run(&["passwd", "-c", "-b", &path, "alice", "secret"]);
    assert_eq!(code, Some(0), "{err}");
    path
}

#[test]
fn a_good_config_and_its_files_are_ok() {
    let dir = scratch("good");
    let pw = password_file(&dir);
    let acl = write(&dir, "acl", "user alice\ntopic readwrite sensors/#\n");
    let own_acl = write(&dir, "acl-8884", "topic read #\n");
    let conf = write(
        &dir,
        "picomq.toml",
        &format!(
            "[auth]\npassword_file = \"{pw}\"\nacl_file = \"{acl}\"\n\
             [[listener]]\nbind = \"127.0.0.1:1883\"\n\
             [[listener]]\nbind = \"127.0.0.1:1884\"\nacl_file = \"{own_acl}\"\n"
        ),
    );
    for flag in ["-c", "--conf"] {
        let (code, out, err) = run(&["--check", flag, &conf]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(out, format!("{conf}: OK\n"));
        assert_eq!(err, "");
    }
}

#[test]
fn the_shipped_config_is_ok() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/picomq.toml");
    let (code, out, err) = run(&["--check", "-c", shipped]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, format!("{shipped}: OK\n"));
}

#[test]
fn without_a_file_the_defaults_are_checked() {
    let (code, out, err) = run(&["--check"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "built-in defaults: OK\n");
}

#[test]
fn a_bad_key_names_file_line_and_key() {
    let dir = scratch("bad-key");
    let conf = write(
        &dir,
        "bad.toml",
        "[log]\nlevel = \"info\"\n\n[mqtt]\nmax_qos = 3\n",
    );
    let (code, out, err) = run(&["--check", "-c", &conf]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(out, "");
    assert_eq!(
        err,
        format!("picomq: {conf}:5: mqtt.max_qos: must be 0, 1 or 2\n")
    );

    let unknown = write(&dir, "unknown.toml", "[mqtt]\nmax_qoss = 1\n");
    let (code, _, err) = run(&["--check", "-c", &unknown]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!("picomq: {unknown}:2: mqtt.max_qoss: ")),
        "{err}"
    );
}

#[test]
fn a_missing_config_file_is_named() {
    let (code, _, err) = run(&["--check", "-c", "/nonexistent/picomq.toml"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("/nonexistent/picomq.toml: cannot read config file"),
        "{err}"
    );
}

#[test]
fn missing_auth_files_are_named() {
    let dir = scratch("missing-auth");
    let pw = dir.join("no-passwd").display().to_string();
    let acl = dir.join("no-acl").display().to_string();
    let conf = write(
        &dir,
        "picomq.toml",
        &format!("[auth]\npassword_file = \"{pw}\"\nacl_file = \"{acl}\"\n"),
    );
    let (code, out, err) = run(&["--check", "-c", &conf]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(out, "");
    // Both files, not only the first one read.
    assert!(
        err.contains(&format!("picomq: {pw}: cannot read password file")),
        "{err}"
    );
    assert!(
        err.contains(&format!("picomq: {acl}: cannot read ACL file")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 2, "{err}");
}

#[test]
fn garbled_auth_files_name_file_and_line() {
    let dir = scratch("garbled-auth");
    let pw = write(&dir, "passwd", "# users\nalice\n");
    let acl = write(&dir, "acl", "topic read a/#\nfrobnicate b\n");
    let conf = write(
        &dir,
        "picomq.toml",
        &format!("[auth]\npassword_file = \"{pw}\"\nacl_file = \"{acl}\"\n"),
    );
    let (code, _, err) = run(&["--check", "-c", &conf]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("picomq: {pw}:2: ")), "{err}");
    assert!(err.contains(&format!("picomq: {acl}:2: ")), "{err}");
}

#[test]
fn a_listeners_own_files_are_checked_and_named_with_it() {
    let dir = scratch("listener-auth");
    let pw = password_file(&dir);
    let acl = write(&dir, "acl", "topic wrong a/#\n");
    let conf = write(
        &dir,
        "picomq.toml",
        &format!(
            "[[listener]]\nbind = \"127.0.0.1:1883\"\n\
             [[listener]]\nbind = \"127.0.0.1:1884\"\npassword_file = \"{pw}\"\n\
             acl_file = \"{acl}\"\n"
        ),
    );
    let (code, _, err) = run(&["--check", "-c", &conf]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!("picomq: listener 127.0.0.1:1884: {acl}:1: ")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn flags_apply_as_at_start_up() {
    let dir = scratch("flags");
    let acl = dir.join("no-acl").display().to_string();
    // The file's only listener has a broken file of its own; --listen replaces the listeners.
    let conf = write(
        &dir,
        "picomq.toml",
        &format!("[[listener]]\nbind = \"127.0.0.1:1883\"\nacl_file = \"{acl}\"\n"),
    );
    let (code, _, err) = run(&["--check", "-c", &conf]);
    assert_eq!(code, Some(2), "{err}");
    let (code, out, err) = run(&["--check", "-c", &conf, "--listen", "127.0.0.1:1884"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, format!("{conf}: OK\n"));
    // A flag error is a config error too.
    let twice = [
        "--check",
        "--listen",
        "127.0.0.1:1",
        "--listen",
        "127.0.0.1:1",
    ];
    let (code, _, err) = run(&twice);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err,
        "picomq: command line: --listen: 127.0.0.1:1 is given twice\n"
    );
}

#[test]
fn check_binds_nothing() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (code, _, err) = run(&["--check", "--listen", &addr]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn warnings_do_not_fail_the_check() {
    let dir = scratch("warnings");
    let conf = write(&dir, "picomq.toml", "[auth]\nallow_anonymous = false\n");
    let (code, out, err) = run(&["--check", "-c", &conf]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, format!("{conf}: OK\n"));
    assert!(
        err.starts_with("picomq: warning: auth: allow_anonymous = false"),
        "{err}"
    );
}

#[cfg(feature = "tls")]
#[test]
fn a_bad_certificate_path_is_named() {
    let dir = scratch("tls");
    let cert = dir.join("no-server.crt").display().to_string();
    let garbage = write(&dir, "garbage.pem", "not a certificate\n");
    let key = write(&dir, "server.key", "not a key either\n");
    for cert in [&cert, &garbage] {
        let conf = write(
            &dir,
            "picomq.toml",
            &format!(
                "[[listener]]\nbind = \"127.0.0.1:8883\"\nprotocol = \"mqtts\"\n\
                 cert_file = \"{cert}\"\nkey_file = \"{key}\"\n"
            ),
        );
        let (code, out, err) = run(&["--check", "-c", &conf]);
        assert_eq!(code, Some(2), "{err}");
        assert_eq!(out, "");
        assert!(
            err.starts_with(&format!("picomq: listener 127.0.0.1:8883: {cert}: ")),
            "{err}"
        );
    }
}

#[cfg(not(feature = "tls"))]
#[test]
fn a_tls_listener_needs_the_tls_feature() {
    let dir = scratch("no-tls");
    let conf = write(
        &dir,
        "picomq.toml",
        "[[listener]]\nbind = \"127.0.0.1:8883\"\nprotocol = \"mqtts\"\n\
         cert_file = \"/s.crt\"\nkey_file = \"/s.key\"\n",
    );
    let (code, _, err) = run(&["--check", "-c", &conf]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("built without TLS support"), "{err}");
}

#[test]
fn dash_c_is_the_config_file_and_passwd_keeps_its_own() {
    let parse =
        |args: &[&str]| Cli::try_parse_from(std::iter::once("picomq").chain(args.iter().copied()));
    let cli = parse(&["-c", "/etc/picomq.toml"]).unwrap();
    assert_eq!(cli.conf, Some(PathBuf::from("/etc/picomq.toml")));
    assert!(!cli.check);

    let cli = parse(&["passwd", "-c", "/etc/picomq/passwd", "alice"]).unwrap();
    assert_eq!(cli.conf, None);
    match cli.command {
        Some(Subcommand::Passwd(args)) => {
            assert!(args.create);
            assert_eq!(args.file, PathBuf::from("/etc/picomq/passwd"));
        }
        other => panic!("{other:?}"),
    }
    // The broker's flags and a subcommand do not mix.
    assert!(parse(&["-c", "/etc/picomq.toml", "passwd", "-c", "f", "u"]).is_err());

    // Through the binary: passwd -c creates the file.
    let dir = scratch("passwd-c");
    let pw = password_file(&dir);
    let text = std::fs::read_to_string(pw).unwrap();
    assert!(text.starts_with("alice:$7$"), "{text}");
}
