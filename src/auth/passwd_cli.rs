//! `picomq passwd`: creates, updates and deletes entries of a password file, like
//! `mosquitto_passwd` (same flags: `-c`, `-b`, `-D`, `-I`), writing `$7$` hashes, or with `-S`
//! `$scram-sha-256$` credentials (picomq only).
//!
//! Owns: reading the password (argument or standard input), the salt (12 bytes from
//! `/dev/urandom`), and replacing the file atomically. Must not touch: the file format (that is
//! [`super::passwd`]), or anything of the broker. The flags are defined in `config/cli.rs`.
//!
//! Differences from `mosquitto_passwd` 2.0: comment lines are kept (it drops them with a
//! "corrupt file" message); a file with a bad line is refused with its line number, never
//! rewritten; user names that would not read back (leading `#`, surrounding blanks, `:`,
//! control characters) are refused; `-U` and `-H` are not offered (there is no plain-text or `$6$`
//! writing). A password typed at a terminal is hidden with `stty -echo` (shown only when `stty`
//! is missing).

use std::fs;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::passwd::{
    validate_user_name, PasswordFile, PasswordHash, DEFAULT_ITERATIONS, MAX_FIELD_LEN, SALT_LEN,
};

/// Rounds for `-S` entries unless `-I` says otherwise (defined with the file format). Only plain
/// CONNECT logins of such users pay them on the broker; a SCRAM login costs the broker no PBKDF2
/// at all (the client does it).
pub use super::passwd::SCRAM_SHA256_ITERATIONS;
use crate::config::cli::PasswdArgs;

/// What to do to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Add the user or replace its password.
    Set {
        /// User name.
        user: String,
        /// The new password.
        password: Vec<u8>,
        /// PBKDF2 rounds.
        iterations: u32,
        /// Write a `$scram-sha-256$` entry instead of `$7$`.
        scram_sha256: bool,
    },
    /// Remove the user.
    Delete {
        /// User name.
        user: String,
    },
}

/// Applies `edit` to the file text (`None`: start from an empty file) and returns the new text
/// and a message for the user. Pure, so every rule is testable without files.
pub fn apply(
    existing: Option<&str>,
    edit: &Edit,
    salt: [u8; SALT_LEN],
) -> Result<(String, String), String> {
    let mut file = match existing {
        Some(text) => PasswordFile::parse(text).map_err(|e| e.to_string())?,
        None => PasswordFile::new(),
    };
    let message = match edit {
        Edit::Set {
            user,
            password,
            iterations,
            scram_sha256,
        } => {
            if password.is_empty() {
                return Err("the password is empty".into());
            }
            if password.len() > MAX_FIELD_LEN {
                return Err("the password is longer than 65535 bytes".into());
            }
            let hash = if *scram_sha256 {
                PasswordHash::scram_sha256(password, salt, *iterations)
            } else {
                PasswordHash::pbkdf2(password, salt, *iterations)
            };
            if file.set(user, hash)? {
                format!("Updating password for user {user}")
            } else {
                format!("Adding password for user {user}")
            }
        }
        Edit::Delete { user } => {
            if !file.remove(user) {
                return Err(format!("user {user} is not in the file"));
            }
            format!("Deleted user {user}")
        }
    };
    Ok((file.to_text(), message))
}

/// Runs the subcommand; returns the process exit code (0 done, 1 refused). Messages go to stdout,
/// errors to stderr prefixed `picomq passwd:`.
pub fn run(args: &PasswdArgs) -> i32 {
    match run_inner(args) {
        Ok(message) => {
            println!("{message}");
            0
        }
        Err(e) => {
            eprintln!("picomq passwd: {e}");
            1
        }
    }
}

fn run_inner(args: &PasswdArgs) -> Result<String, String> {
    validate_user_name(&args.user).map_err(str::to_owned)?;
    let edit = if args.delete {
        Edit::Delete {
            user: args.user.clone(),
        }
    } else {
        let password = match &args.password {
            Some(p) => p.as_bytes().to_vec(),
            None => {
                let stdin = io::stdin();
                let interactive = stdin.is_terminal();
                // Typed at a terminal, the password is not shown (as with mosquitto_passwd); the
                // guard turns echo back on however the read ends.
                let hidden = interactive.then(EchoOff::new).flatten();
                let password = read_password(&mut stdin.lock(), interactive, &mut io::stderr());
                drop(hidden);
                password?
            }
        };
        Edit::Set {
            user: args.user.clone(),
            password,
            iterations: args.iterations.unwrap_or(if args.scram_sha256 {
                SCRAM_SHA256_ITERATIONS
            } else {
                DEFAULT_ITERATIONS
            }),
            scram_sha256: args.scram_sha256,
        }
    };
    let shown = args.file.display();
    let (target, existing) = if args.create {
        (args.file.clone(), None)
    } else {
        // Follow a symlink so the rename replaces the real file, not the link.
        let target = fs::canonicalize(&args.file)
            .map_err(|e| format!("{shown}: {e} (use -c to create a new file)"))?;
        let text = fs::read_to_string(&target).map_err(|e| format!("{shown}: cannot read: {e}"))?;
        (target, Some(text))
    };
    let salt = random_salt().map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let (text, message) =
        apply(existing.as_deref(), &edit, salt).map_err(|e| format!("{shown}: {e}"))?;
    replace_file(&target, text.as_bytes()).map_err(|e| format!("{shown}: cannot write: {e}"))?;
    Ok(message)
}

/// Reads the password: one line; at a terminal, prompted twice on `prompt` and both must agree.
/// The line ending (`\n` or `\r\n`) is not part of the password.
pub fn read_password(
    input: &mut dyn BufRead,
    interactive: bool,
    prompt: &mut dyn Write,
) -> Result<Vec<u8>, String> {
    let mut read_line = |label: &str| -> Result<Vec<u8>, String> {
        if interactive {
            // Ignore prompt errors: the password can still be read.
            let _ = write!(prompt, "{label}: ");
            let _ = prompt.flush();
        }
        let mut line = Vec::new();
        input
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read the password: {e}"))?;
        if interactive {
            // With echo off the Enter key is not shown either: end the prompt's line.
            let _ = writeln!(prompt);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        Ok(line)
    };
    let first = read_line("Password")?;
    if first.is_empty() {
        return Err("no password given (empty line or end of input)".into());
    }
    if interactive && read_line("Reenter password")? != first {
        return Err("the passwords do not match".into());
    }
    Ok(first)
}

/// Terminal echo switched off for as long as it lives, with `stty` (present on Debian and in
/// OpenWrt's busybox), which acts on the terminal it inherits as standard input: no libc or
/// termios binding needed for one prompt. `None` when `stty` is missing or fails; the password is
/// then read with echo on.
struct EchoOff;

impl EchoOff {
    fn new() -> Option<EchoOff> {
        stty("-echo").then_some(EchoOff)
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        stty("echo");
    }
}

fn stty(setting: &str) -> bool {
    std::process::Command::new("stty")
        .arg(setting)
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}

/// Twelve random bytes from the kernel.
fn random_salt() -> io::Result<[u8; SALT_LEN]> {
    let mut salt = [0u8; SALT_LEN];
    fs::File::open("/dev/urandom")?.read_exact(&mut salt)?;
    Ok(salt)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`, so a reader
/// (the broker reloading) sees the old file or the new one, never half of one. A new file is
/// created with mode 0600; an existing file's permissions are kept.
fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".picomq-tmp");
    let tmp: PathBuf = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        if let Ok(meta) = fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; SALT_LEN] = *b"salt-salt-12";

    fn set(user: &str, password: &str) -> Edit {
        Edit::Set {
            user: user.into(),
            password: password.as_bytes().to_vec(),
            iterations: 3,
            scram_sha256: false,
        }
    }

    #[test]
    fn writes_scram_sha_256_entries_that_verify() {
        let edit = Edit::Set {
            user: "carol".into(),
            password: b"pw".to_vec(),
            iterations: 5,
            scram_sha256: true,
        };
        let (text, _) = apply(None, &edit, SALT).unwrap();
        assert!(text.starts_with("carol:$scram-sha-256$5$"), "{text}");
        let file = PasswordFile::parse(&text).unwrap();
        assert!(file.verify("carol", b"pw"));
        assert!(!file.verify("carol", b"pw2"));
    }

    #[test]
    fn adds_updates_and_deletes() {
        let (text, msg) = apply(None, &set("alice", "pw1"), SALT).unwrap();
        assert_eq!(msg, "Adding password for user alice");
        let (text, msg) = apply(Some(&text), &set("bob", "pw2"), SALT).unwrap();
        assert_eq!(msg, "Adding password for user bob");
        let (text, msg) = apply(Some(&text), &set("alice", "pw3"), SALT).unwrap();
        assert_eq!(msg, "Updating password for user alice");
        let file = PasswordFile::parse(&text).unwrap();
        assert!(file.verify("alice", b"pw3") && file.verify("bob", b"pw2"));
        assert_eq!(file.users().collect::<Vec<_>>(), ["alice", "bob"]);
        assert!(text.starts_with("alice:$7$3$c2FsdC1zYWx0LTEy$"), "{text}");
        let delete = Edit::Delete {
            user: "alice".into(),
        };
        let (text, msg) = apply(Some(&text), &delete, SALT).unwrap();
        assert_eq!(msg, "Deleted user alice");
        assert_eq!(PasswordFile::parse(&text).unwrap().len(), 1);
        let err = apply(Some(&text), &delete, SALT).unwrap_err();
        assert!(err.contains("not in the file"), "{err}");
    }

    #[test]
    fn refuses_bad_input_and_bad_files() {
        assert!(apply(None, &set("alice", ""), SALT)
            .unwrap_err()
            .contains("empty"));
        assert!(apply(None, &set("a:b", "x"), SALT)
            .unwrap_err()
            .contains("':'"));
        let long = "x".repeat(MAX_FIELD_LEN + 1);
        assert!(apply(None, &set("a", &long), SALT).is_err());
        let err = apply(Some("# ok\nbroken\n"), &set("a", "x"), SALT).unwrap_err();
        assert_eq!(err, "line 2: expected user:hash");
    }

    #[test]
    fn keeps_comments() {
        let (text, _) = apply(Some("# owners\n"), &set("alice", "pw"), SALT).unwrap();
        assert!(text.starts_with("# owners\nalice:$7$"), "{text}");
    }

    #[test]
    fn reads_the_password_line() {
        let read = |input: &str, tty: bool| {
            let mut prompt = Vec::new();
            let result = read_password(&mut input.as_bytes(), tty, &mut prompt);
            (result, String::from_utf8(prompt).unwrap())
        };
        assert_eq!(
            read("secret\n", false),
            (Ok(b"secret".to_vec()), String::new())
        );
        assert_eq!(read("secret\r\nignored\n", false).0, Ok(b"secret".to_vec()));
        assert_eq!(read("no newline", false).0, Ok(b"no newline".to_vec()));
        assert_eq!(
            read(" spaces kept \n", false).0,
            Ok(b" spaces kept ".to_vec())
        );
        assert!(read("", false).0.is_err());
        assert!(read("\n", false).0.is_err());
        let (ok, prompt) = read("pw\npw\n", true);
        assert_eq!(ok, Ok(b"pw".to_vec()));
        assert!(
            prompt.contains("Password") && prompt.contains("Reenter"),
            "{prompt}"
        );
        assert_eq!(
            read("pw\nother\n", true).0,
            Err("the passwords do not match".into())
        );
        assert_eq!(
            read("pw\n", true).0,
            Err("the passwords do not match".into())
        );
    }

    #[test]
    fn replaces_files_atomically_with_private_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("picomq-passwd-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pw");
        let _ = fs::remove_file(&path);
        replace_file(&path, b"one\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        replace_file(&path, b"two\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert!(!dir.join("pw.picomq-tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
