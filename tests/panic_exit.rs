//! A thread that panics must not leave a half-alive broker: the real binary, with the test-only
//! fault `PICOMQ_FAULT=io-new-connection` (debug builds only), exits with code 101 and logs the
//! panic as soon as an I/O thread receives a connection; without the fault it keeps serving.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], common::free_port()))
}

fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_panicking_io_thread_ends_the_process_with_code_101() {
    let addr = free_addr();
    let mut child = Command::new(env!("CARGO_BIN_EXE_picomq"))
        .args(["--listen", &addr.to_string(), "--threads", "2"])
        .env("PICOMQ_FAULT", "io-new-connection")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("picomq starts");
    // The readiness probe itself is the connection that trips the fault.
    wait_listening(addr);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("picomq still running after an I/O thread panicked");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(101), "{stderr}");
    assert!(
        stderr.contains("picomq-io-") && stderr.contains("test fault injected"),
        "{stderr}"
    );
}

#[test]
fn without_the_fault_the_same_connection_is_served() {
    let addr = free_addr();
    let mut child = Command::new(env!("CARGO_BIN_EXE_picomq"))
        .args(["--listen", &addr.to_string(), "--threads", "2"])
        .env_remove("PICOMQ_FAULT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("picomq starts");
    wait_listening(addr);
    std::thread::sleep(Duration::from_millis(200));
    let alive = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(alive, "picomq exited without a fault");
}
