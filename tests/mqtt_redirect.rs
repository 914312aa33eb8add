//! MQTT 5 server redirection over real loopback sockets (MQTT 5.0 section 4.11): a broker
//! configured to refuse connections answers CONNACK 0x9C / 0x9D with a Server Reference (3.1.1
//! clients get return code 3, server unavailable; without a reference v5 gets 0x88), and a broker shutting down with a reference
//! configured sends DISCONNECT 0x9C with it instead of 0x8B.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use picomq::config::Config;
use picomq::protocol::{Packet, Properties, ProtocolVersion, ReasonCode};

const OTHER: &str = "127.0.0.2:1883";

fn redirecting(refuse: bool, reason: ReasonCode) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        let r = &mut c.mqtt.redirect;
        r.server_reference = Some(Arc::from(OTHER));
        r.reason = reason;
        r.refuse_connections = refuse;
    }
}

#[test]
fn mqtt_4_11_refused_connect_names_the_other_server_0x9c_and_0x9d() {
    with_deadline(Duration::from_secs(20), || {
        for reason in [ReasonCode::USE_ANOTHER_SERVER, ReasonCode::SERVER_MOVED] {
            let b = TestBroker::start_with(redirecting(true, reason));
            let (mut c, ack) = Client::connect_v5(b.addr, "moved", true, 60, Properties::default());
            assert_eq!(ack.reason, reason);
            assert_eq!(ack.properties.server_reference.as_deref(), Some(OTHER));
            assert!(!ack.session_present, "[MQTT-3.2.2-6]");
            c.expect_closed();

            let (mut c3, ack) = Client::connect_v311_ack(b.addr, "moved-3", true, 60);
            assert_eq!(ack.reason.to_v3_connack(), 3, "3.1.1: server unavailable");
            c3.expect_closed();
        }
    });
}

#[test]
fn mqtt_3_1_2_24_refusal_connack_leaves_out_a_reference_larger_than_the_client_maximum() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(redirecting(true, ReasonCode::USE_ANOTHER_SERVER));
        let props = Properties {
            maximum_packet_size: Some(8),
            ..Properties::default()
        };
        let (mut c, ack) = Client::connect_v5(b.addr, "tiny", true, 60, props);
        assert_eq!(ack.reason, ReasonCode::USE_ANOTHER_SERVER);
        assert_eq!(
            ack.properties.server_reference, None,
            "would not fit in 8 bytes"
        );
        c.expect_closed();
    });
}

#[test]
fn refusing_without_a_reference_is_0x88_server_unavailable() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.mqtt.redirect.refuse_connections = true);
        let (mut c, ack) = Client::connect_v5(b.addr, "maint", true, 60, Properties::default());
        assert_eq!(ack.reason, ReasonCode::SERVER_UNAVAILABLE);
        assert_eq!(ack.properties.server_reference, None);
        c.expect_closed();
    });
}

#[test]
fn shutdown_with_a_server_reference_sends_disconnect_0x9c_with_it() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(redirecting(false, ReasonCode::USE_ANOTHER_SERVER));
        let mut c5 = Client::connect(b.addr, ProtocolVersion::V5, "drained-5");
        let mut c3 = Client::connect(b.addr, ProtocolVersion::V311, "drained-3");
        c5.ping();
        c3.ping();
        b.shutdown();
        match c5.expect_packet() {
            Packet::Disconnect(d) => {
                assert_eq!(d.reason, ReasonCode::USE_ANOTHER_SERVER);
                assert_eq!(d.properties.server_reference.as_deref(), Some(OTHER));
            }
            other => panic!("expected DISCONNECT 0x9C, got {other:?}"),
        }
        // Exactly one DISCONNECT: the 0x8B one must not follow the redirect.
        c5.expect_closed();
        c3.expect_closed();
    });
}

#[test]
fn redirect_on_shutdown_can_be_turned_off() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| {
            redirecting(false, ReasonCode::USE_ANOTHER_SERVER)(c);
            c.mqtt.redirect.on_shutdown = false;
        });
        let mut c5 = Client::connect(b.addr, ProtocolVersion::V5, "plain-stop");
        c5.ping();
        b.shutdown();
        c5.expect_disconnect(ReasonCode::SERVER_SHUTTING_DOWN);
    });
}
