//! A client that floods requests and never reads the replies must not make the broker buffer
//! without bound: once that client's pending output passes a high-water mark the broker stops
//! reading its socket, so the client's own writes block. Another client keeps being served.
//!
//! Alone in its file: it pushes tens of megabytes through loopback.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use picomq::protocol::ProtocolVersion;

/// Far more than the broker's output high-water mark plus both kernels' socket buffers on loopback;
/// without backpressure every byte would be accepted and answered into the broker's memory.
const FLOOD_CAP: usize = 96 * 1024 * 1024;

#[test]
fn pingreq_flood_from_a_non_reader_is_throttled_by_the_broker() {
    with_deadline(Duration::from_secs(60), || {
        let broker = TestBroker::start();
        let addr = broker.addr;
        let mut flooder = Client::connect_v311(addr, "flooder", true, 0);
        flooder
            .stream
            .set_write_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let chunk = [0xC0u8, 0x00].repeat(32 * 1024); // 32k PINGREQs
        let mut sent = 0usize;
        let started = Instant::now();
        while sent < FLOOD_CAP && started.elapsed() < Duration::from_secs(30) {
            match flooder.stream.write(&chunk) {
                Ok(n) => sent += n,
                // The broker stopped reading: our send buffer is full and the write timed out.
                Err(_) => break,
            }
        }
        assert!(
            sent < FLOOD_CAP,
            "broker kept reading {sent} bytes of PINGREQ while its replies went unread"
        );
        // Everyone else is still served.
        let mut other = Client::connect(addr, ProtocolVersion::V5, "other");
        other.send(&picomq::protocol::Packet::PingReq);
        other.expect_pingresp();
        drop(flooder);
        broker.shutdown();
    });
}
