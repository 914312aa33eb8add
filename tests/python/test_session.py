"""Persistent sessions: subscriptions and QoS 1/2 messages kept while the client is offline."""

import time

import pytest

from conftest import ALL_VERSIONS, V5, V31, VERSIONS, props

PERSIST = 60


def _offline_subscriber(broker, connect, version, client_id, qos, expiry=PERSIST):
    """Connects a persistent session, subscribes `offline/#` and disconnects normally."""
    c = connect.new(version, client_id=client_id, clean=False)
    assert c.connect(broker, session_expiry=expiry if version == V5 else None) is False
    assert c.subscribe("offline/#", qos) == [qos]
    c.disconnect()


def _resume(broker, connect, version, client_id, expiry=PERSIST):
    c = connect.new(version, client_id=client_id, clean=False)
    present = c.connect(broker, session_expiry=expiry if version == V5 else None)
    return c, present


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_qos1_messages_queued_while_offline_are_delivered_on_reconnect(broker, connect, version):
    _offline_subscriber(broker, connect, version, "sleepy", qos=1)
    pub = connect(broker, version)
    for i in range(5):
        assert pub.publish("offline/t", f"m{i}".encode(), qos=1) == 0x00

    c, present = _resume(broker, connect, version, "sleepy")
    if version != V31:  # 3.1 has no session-present flag: see test_connect.py
        assert present is True
    got = c.expect(5)
    assert [(m.topic, m.payload, m.qos) for m in got] == [("offline/t", f"m{i}".encode(), 1) for i in range(5)]
    c.expect_none()
    # The subscription survived too: live messages arrive without subscribing again.
    pub.publish("offline/t", b"live", qos=1)
    m = c.expect_one()
    assert (m.payload, m.qos) == (b"live", 1)


@pytest.mark.parametrize("version", VERSIONS)
def test_qos2_and_downgraded_messages_queued_while_offline(broker, connect, version):
    _offline_subscriber(broker, connect, version, "sleepy2", qos=2)
    pub = connect(broker, version)
    pub.publish("offline/a", b"two", qos=2)
    pub.publish("offline/b", b"one", qos=1)
    pub.publish("offline/c", b"zero", qos=0)  # QoS 0 is not kept for offline sessions
    pub.publish("offline/a", b"two again", qos=2)

    c, present = _resume(broker, connect, version, "sleepy2")
    assert present is True
    got = [(m.topic, m.payload, m.qos) for m in c.expect(3)]
    # Order is guaranteed per topic only (topics may be routed by different shards).
    assert [g for g in got if g[0] == "offline/a"] == [("offline/a", b"two", 2), ("offline/a", b"two again", 2)]
    assert [g for g in got if g[0] == "offline/b"] == [("offline/b", b"one", 1)]
    c.expect_none()


@pytest.mark.parametrize("version", VERSIONS)
def test_clean_connection_drops_queued_messages(broker, connect, version):
    _offline_subscriber(broker, connect, version, "forgetful", qos=1)
    pub = connect(broker, version)
    pub.publish("offline/t", b"lost", qos=1)
    c = connect.new(version, client_id="forgetful", clean=True)
    assert c.connect(broker) is False
    c.expect_none()
    # ...and the old subscription is gone with the session.
    pub.publish("offline/t", b"after", qos=1)
    c.expect_none()


def test_v5_session_expires_after_its_interval(broker, connect):
    _offline_subscriber(broker, connect, V5, "expiring", qos=1, expiry=1)
    pub = connect(broker, V5)
    pub.publish("offline/t", b"too late", qos=1)
    time.sleep(1.5)
    c, present = _resume(broker, connect, V5, "expiring")
    assert present is False
    c.expect_none()


def test_v5_queued_message_expires_while_offline(broker, connect):
    _offline_subscriber(broker, connect, V5, "patient", qos=1)
    pub = connect(broker, V5)
    pub.publish("offline/short", b"expired", qos=1, properties=props(MessageExpiryInterval=1))
    pub.publish("offline/long", b"fresh", qos=1, properties=props(MessageExpiryInterval=60))
    time.sleep(1.5)
    c, present = _resume(broker, connect, V5, "patient")
    assert present is True
    m = c.expect_one()
    assert (m.topic, m.payload) == ("offline/long", b"fresh")
    # The remaining lifetime is forwarded, reduced by the ~1.5 s spent waiting.
    assert m.properties.MessageExpiryInterval in (58, 59), m.properties.MessageExpiryInterval
    c.expect_none()
