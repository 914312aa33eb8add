//! The admin seam over a running broker (what the HTTP API will call): listing the clients of every
//! I/O thread, describing one, and disconnecting one with a reason — MQTT 5 clients get the
//! DISCONNECT with that reason and reason string, 3.1.1 clients are closed, wills are published
//! as for any server-side disconnect, and other clients keep being served.

mod common;

use std::time::Duration;

use common::*;
use picomq::broker::admin::AdminReply;
use picomq::protocol::{Packet, ProtocolVersion, QoS, ReasonCode};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

#[test]
fn admin_lists_clients_of_every_io_thread() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start_with(|c| c.io_threads = 3);
        let mut clients = Vec::new();
        for i in 0..12 {
            let version = if i % 2 == 0 { V311 } else { V5 };
            let mut c = Client::connect(b.addr, version, &format!("adm-{i}"));
            if i == 0 {
                c.sub_ok(1, "adm/#", QoS::AtLeastOnce);
            }
            clients.push(c);
        }
        let admin = b.admin();
        let mut list = admin.list_clients();
        list.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        let ids: Vec<&str> = list.iter().map(|c| &*c.client_id).collect();
        let mut want: Vec<String> = (0..12).map(|i| format!("adm-{i}")).collect();
        want.sort();
        assert_eq!(ids, want);
        assert!(list.iter().all(|c| c.connected));
        let zero = admin.client("adm-0").expect("adm-0 exists");
        assert_eq!(zero.subscriptions, 1);
        assert_eq!(zero.protocol, Some(V311));
        // The listener as configured (the test config binds port 0).
        assert_eq!(zero.listener.ip(), b.addr.ip());
        assert_eq!(admin.client("adm-1").map(|c| c.protocol), Some(Some(V5)));
        assert!(admin.client("nobody").is_none());
    });
}

#[test]
fn admin_disconnect_sends_reason_v5_and_closes_v311_and_publishes_will() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let mut watcher = Client::connect(b.addr, V5, "adm-watch");
        watcher.sub_ok(1, "adm/will/#", QoS::AtLeastOnce);
        let mut c5 = connect_packet(V5, "adm-v5", true, 60);
        c5.will = Some(will("adm/will/v5", b"gone", QoS::AtLeastOnce, false));
        let (mut v5, _) = Client::handshake(b.addr, c5);
        let mut v311 = Client::connect(b.addr, V311, "adm-v311");
        let admin = b.admin();

        let why = Some("maintenance".to_owned());
        let reply = admin.disconnect("adm-v5", ReasonCode::ADMINISTRATIVE_ACTION, why);
        assert_eq!(reply, Some(AdminReply::Disconnected));
        match v5.expect_packet() {
            Packet::Disconnect(d) => {
                assert_eq!(d.reason, ReasonCode::ADMINISTRATIVE_ACTION);
                assert_eq!(d.properties.reason_string.as_deref(), Some("maintenance"));
            }
            other => panic!("expected DISCONNECT, got {other:?}"),
        }
        v5.expect_closed();
        let got = watcher.expect_publish_acked();
        assert_publish(&got, "adm/will/v5", b"gone", QoS::AtLeastOnce);

        let reply = admin.disconnect("adm-v311", ReasonCode::ADMINISTRATIVE_ACTION, None);
        assert_eq!(reply, Some(AdminReply::Disconnected));
        v311.expect_closed();

        let again = admin.disconnect("adm-v311", ReasonCode::ADMINISTRATIVE_ACTION, None);
        assert_eq!(again, Some(AdminReply::NotFound), "clean session ended");
        assert_eq!(
            admin.disconnect("nobody", ReasonCode::ADMINISTRATIVE_ACTION, None),
            Some(AdminReply::NotFound)
        );
        // Everyone else is still served.
        watcher.ping();
        assert_broker_healthy(b.addr, V5, "after admin disconnects");
    });
}

#[test]
fn admin_disconnect_of_offline_persistent_session_says_not_connected() {
    with_deadline(Duration::from_secs(20), || {
        let b = TestBroker::start();
        let c = Client::connect_v311(b.addr, "adm-offline", false, 60);
        c.disconnect();
        let admin = b.admin();
        // The DISCONNECT is handled asynchronously: wait (bounded) for the session to go offline.
        let mut info = None;
        for _ in 0..100 {
            info = admin.client("adm-offline");
            if info.as_ref().is_some_and(|i| !i.connected) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(info.map(|i| i.connected), Some(false));
        let reply = admin.disconnect("adm-offline", ReasonCode::ADMINISTRATIVE_ACTION, None);
        assert_eq!(reply, Some(AdminReply::NotConnected));
    });
}
