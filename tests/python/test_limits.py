"""Flow control and limits: inflight windows, Receive Maximum, redelivery, queue and packet size
limits, and limits set in the configuration file."""

import socket
import time

import pytest
from paho.mqtt.packettypes import PacketTypes

from conftest import V5, V311, VERSIONS, WAIT, props, raw_connect_packet, read_until_closed


def _publish_numbered(pub, topic, n, qos=1):
    for i in range(n):
        assert pub.publish(topic, f"m{i}".encode(), qos=qos) == 0x00


@pytest.mark.parametrize("version", VERSIONS)
def test_inflight_window_from_config(broker_factory, connect, version):
    b = broker_factory("[mqtt]\nmax_inflight = 2\n")
    sub = connect(b, version, manual_ack=True)
    pub = connect(b, version)
    assert sub.subscribe("win/t", 1) == [1]
    _publish_numbered(pub, "win/t", 5)
    first = sub.expect(2)
    assert [m.payload for m in first] == [b"m0", b"m1"]
    sub.expect_none()  # window full until something is acknowledged
    sub.paho.ack(first[0].mid, 1)
    third = sub.expect_one()
    assert third.payload == b"m2"
    sub.expect_none()
    sub.paho.ack(first[1].mid, 1)
    sub.paho.ack(third.mid, 1)
    rest = sub.expect(2)
    assert [m.payload for m in rest] == [b"m3", b"m4"]


def test_v5_receive_maximum_limits_inflight(broker, connect):
    sub = connect(broker, V5, manual_ack=True, ReceiveMaximum=3)
    pub = connect(broker, V5)
    assert sub.subscribe("rm/t", 1) == [1]
    _publish_numbered(pub, "rm/t", 6)
    first = sub.expect(3)
    assert [m.payload for m in first] == [b"m0", b"m1", b"m2"]
    sub.expect_none()
    for m in first:
        sub.paho.ack(m.mid, 1)
    assert [m.payload for m in sub.expect(3)] == [b"m3", b"m4", b"m5"]


@pytest.mark.parametrize("version", VERSIONS)
def test_unacknowledged_message_redelivered_with_dup_on_reconnect(broker, connect, version):
    expiry = 60 if version == V5 else None
    sub = connect(broker, version, client_id="no-ack", clean=False, session_expiry=expiry, manual_ack=True)
    assert sub.subscribe("dup/t", 1) == [1]
    pub = connect(broker, version)
    pub.publish("dup/t", b"unacked", qos=1)
    m = sub.expect_one()
    assert (m.payload, m.dup) == (b"unacked", False)
    sub.drop()  # never acknowledged

    again = connect.new(version, client_id="no-ack", clean=False)
    assert again.connect(broker, session_expiry=expiry) is True
    m = again.expect_one()
    assert (m.topic, m.payload, m.qos, m.dup) == ("dup/t", b"unacked", 1, True)
    again.expect_none()


@pytest.mark.parametrize("version", VERSIONS)
def test_wildcards_do_not_match_dollar_topics(broker, connect, version):
    sub = connect(broker, version)
    pub = connect(broker, version)
    assert sub.subscribe([("#", 1), ("+/status", 1), ("$app/#", 0)]) == [1, 1, 0]
    pub.publish("$app/status", b"dollar", qos=1)
    m = sub.expect_one()
    assert (m.topic, m.payload, m.qos) == ("$app/status", b"dollar", 0)  # only via "$app/#"
    pub.publish("app/status", b"plain", qos=1)
    m = sub.expect_one()
    assert (m.topic, m.payload, m.qos) == ("app/status", b"plain", 1)
    sub.expect_none()


@pytest.mark.parametrize("version", VERSIONS)
def test_large_payload_roundtrip(broker, connect, version):
    sub = connect(broker, version)
    pub = connect(broker, version)
    assert sub.subscribe("big/t", 1) == [1]
    payload = bytes((i * 7 + 3) % 256 for i in range(512 * 1024))
    assert pub.publish("big/t", payload, qos=1) == 0x00
    m = sub.expect_one()
    assert len(m.payload) == len(payload)
    assert m.payload == payload


def test_v5_client_maximum_packet_size_respected(broker, connect):
    sub = connect(broker, V5, MaximumPacketSize=256)
    pub = connect(broker, V5)
    assert sub.subscribe("mps/t", 1) == [1]
    pub.publish("mps/t", b"x" * 1000, qos=1)  # would exceed the subscriber's limit: not sent
    pub.publish("mps/t", b"small", qos=1)
    m = sub.expect_one()
    assert m.payload == b"small"
    sub.expect_none()
    assert not sub.disconnected.is_set()


@pytest.mark.parametrize("version", VERSIONS)
def test_oversized_publish_closes_connection(broker_factory, connect, version):
    b = broker_factory('[mqtt]\nmax_packet_size = "4KiB"\n')
    pub = connect(b, version)
    if version == V5:
        assert pub.connack[2].MaximumPacketSize == 4096
    pub.publish("big/t", b"y" * 8192, qos=0, wait=False)
    reason = pub.wait_disconnected()
    if version == V5:
        assert reason == 0x95, f"expected Packet too large (0x95), got {reason:#04x}"


@pytest.mark.parametrize("version", VERSIONS)
def test_full_queue_drops_new_qos1_messages(broker_factory, connect, version):
    b = broker_factory("[mqtt]\nmax_queued_messages = 3\n")
    expiry = 60 if version == V5 else None
    sub = connect(b, version, client_id="small-queue", clean=False, session_expiry=expiry)
    assert sub.subscribe("queue/t", 1) == [1]
    sub.disconnect()
    # A PUBACK only says the broker took the message; routing to the offline session happens
    # after. An online subscriber on the same topic tells us when routing is done, so that no
    # message reaches the session only after it has reconnected (and its queue has drained).
    watcher = connect(b, version)
    assert watcher.subscribe("queue/t", 1) == [1]
    pub = connect(b, version)
    _publish_numbered(pub, "queue/t", 6)
    assert len(watcher.expect(6)) == 6
    time.sleep(0.2)
    again = connect.new(version, client_id="small-queue", clean=False)
    assert again.connect(b, session_expiry=expiry) is True
    assert [m.payload for m in again.expect(3)] == [b"m0", b"m1", b"m2"]
    again.expect_none()


LIMITED = """
[mqtt]
max_qos = 1
max_keepalive = 5
max_session_expiry = 10
retain_available = false
topic_alias_maximum = 0
receive_maximum = 10
"""


def test_v5_configured_limits_in_connack_and_enforced(broker_factory, connect):
    b = broker_factory(LIMITED)
    c = connect(b, V5, keepalive=60, session_expiry=60)
    p = c.connack[2]
    assert p.MaximumQoS == 1
    assert p.ServerKeepAlive == 5
    assert p.SessionExpiryInterval == 10
    assert p.RetainAvailable == 0
    assert p.ReceiveMaximum == 10
    assert not hasattr(p, "TopicAliasMaximum")
    assert c.subscribe("lim/t", 2) == [1]  # granted QoS capped
    c.publish("lim/t", b"q1", qos=1)
    m = c.expect_one()
    assert (m.payload, m.qos) == (b"q1", 1)
    c.publish("lim/t", b"kept?", qos=1, retain=True, wait=False)
    assert c.wait_disconnected() == 0x9A  # Retain not supported


def test_v5_qos_above_maximum_disconnects(broker_factory, connect):
    b = broker_factory(LIMITED)
    c = connect(b, V5)
    c.publish("lim/t", b"q2", qos=2, wait=False)
    assert c.wait_disconnected() == 0x9B  # QoS not supported


def test_v5_disconnect_can_lower_session_expiry(broker, connect):
    c = connect.new(V5, client_id="lowered", clean=False)
    assert c.connect(broker, session_expiry=60) is False
    c.paho.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    c.wait_disconnected()
    c.paho.loop_stop()
    again = connect.new(V5, client_id="lowered", clean=False)
    assert again.connect(broker, session_expiry=60) is False


def test_max_connections_refuses_extra_sockets_and_frees_slots(broker_factory, connect):
    b = broker_factory("[server]\nmax_connections = 2\n")
    first = connect(b, V311)
    # The fixture's readiness probe (a bare TCP connect) may still hold a slot for a moment: its
    # release is asynchronous, so the second client retries until it is in.
    second = connect_raw_retrying(b, "second")
    with socket.create_connection(tuple(b), timeout=WAIT) as s:
        s.sendall(raw_connect_packet(V311, "third", keepalive=60))
        data, _ = read_until_closed(s, timeout=WAIT)
    assert data == b"", f"third connection got {data!r} instead of being closed"
    first.disconnect()
    # The freed slot is usable again (its release is asynchronous: allow a moment).
    connect_raw_retrying(b, "replacement").close()
    second.close()


def connect_raw_retrying(b, client_id):
    """A raw 3.1.1 connection accepted with CONNACK 0, retried for up to WAIT seconds while the
    broker refuses it (a slot not yet released); returns the open socket."""
    deadline = time.monotonic() + WAIT
    while True:
        s = socket.create_connection(tuple(b), timeout=WAIT)
        s.sendall(raw_connect_packet(V311, client_id, keepalive=60))
        try:
            reply = s.recv(4)
        except (ConnectionResetError, socket.timeout):
            reply = b""
        if reply == bytes([0x20, 0x02, 0x00, 0x00]):
            return s
        s.close()
        assert time.monotonic() < deadline, f"{client_id}: CONNACK {reply!r}, wanted accepted"
        time.sleep(0.1)


# ---- [limits] ----


@pytest.mark.parametrize("version", VERSIONS)
def test_max_subscriptions_per_client_from_config(broker_factory, connect, version):
    b = broker_factory("[limits]\nmax_subscriptions_per_client = 2\n")
    c = connect(b, version)
    assert c.subscribe([("q/1", 0), ("q/2", 0)]) == [0, 0]
    quota = 0x97 if version == V5 else 0x80
    assert c.subscribe([("q/3", 0), ("q/1", 1)]) == [quota, 1]  # q/1 again does not count


@pytest.mark.parametrize("version", VERSIONS)
def test_max_topic_length_from_config(broker_factory, connect, version):
    b = broker_factory("[limits]\nmax_topic_length = 10\n")
    c = connect(b, version)
    invalid = 0x8F if version == V5 else 0x80
    assert c.subscribe([("a" * 11, 0), ("a" * 10, 0)]) == [invalid, 0]
    c.publish("b" * 11, b"x", qos=1, wait=False)
    reason = c.wait_disconnected()
    if version == V5:
        assert reason == 0x90, f"expected Topic Name invalid (0x90), got {reason:#04x}"


def test_v5_too_many_user_properties_disconnects_0x97(broker_factory, connect):
    b = broker_factory("[limits]\nmax_user_properties = 3\n")
    c = connect(b, V5)
    p = props(PacketTypes.PUBLISH)
    p.UserProperty = [("k", str(i)) for i in range(4)]
    c.publish("props/t", b"x", qos=1, properties=p, wait=False)
    assert c.wait_disconnected() == 0x97


@pytest.mark.parametrize("version", VERSIONS)
def test_publish_rate_throttles_without_loss(broker_factory, connect, version):
    b = broker_factory("[limits]\npublish_rate = 20\n")
    sub = connect(b, version)
    assert sub.subscribe("rate/t", 1) == [1]
    pub = connect(b, version)
    start = time.monotonic()
    infos = [pub.paho.publish("rate/t", f"m{i}".encode(), qos=1) for i in range(40)]
    got = sub.expect(40, timeout=10)
    took = time.monotonic() - start
    assert [m.payload for m in got] == [f"m{i}".encode() for i in range(40)]
    assert all(i.rc == 0 for i in infos)
    assert took >= 0.8, f"40 messages at 20/s (burst 20) arrived in {took:.2f} s"


def test_retained_store_full_still_delivers(broker_factory, connect):
    b = broker_factory("[limits]\nmax_retained_messages = 1\n")
    live = connect(b, V5)
    assert live.subscribe("ret/#", 1) == [1]
    pub = connect(b, V5)
    assert pub.publish("ret/1", b"kept", qos=1, retain=True) == 0
    assert pub.publish("ret/2", b"not kept", qos=1, retain=True) == 0
    assert [m.payload for m in live.expect(2)] == [b"kept", b"not kept"]
    late = connect(b, V5)
    assert late.subscribe("ret/#", 1) == [1]
    assert [(m.topic, m.payload) for m in late.expect(1)] == [("ret/1", b"kept")]
    late.expect_none()
