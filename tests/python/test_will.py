"""Will messages: published when a client vanishes, not on a normal DISCONNECT."""

import select
import socket
import subprocess
import sys

import pytest
from paho.mqtt.packettypes import PacketTypes

from conftest import ALL_VERSIONS, V5, VERSIONS, WAIT, props, read_until_closed

# A paho client that connects with a will and then waits to be killed.
CRASHING_CLIENT = r"""
import sys, threading, time
import paho.mqtt.client as mqtt
host, port, version, topic = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ready = threading.Event()
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="crasher", protocol=version,
                reconnect_on_failure=False)
c.will_set(topic, b"crashed", qos=1)
c.on_connect = lambda *args: ready.set()
c.connect(host, port, 60)
c.loop_start()
print("connected" if ready.wait(5) else "no connack", flush=True)
time.sleep(30)
"""


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_will_published_on_abrupt_close(broker, connect, version):
    watcher = connect(broker, version)
    assert watcher.subscribe("will/+", 2) == [2]
    dying = connect.new(version)
    dying.will_set("will/dying", b"bye", qos=1)
    dying.connect(broker)
    dying.drop()
    m = watcher.expect_one()
    assert (m.topic, m.payload, m.qos, m.retain) == ("will/dying", b"bye", 1, False)
    watcher.expect_none()


@pytest.mark.parametrize("version", VERSIONS)
def test_will_published_when_client_process_is_killed(broker, connect, version):
    watcher = connect(broker, version)
    assert watcher.subscribe("will/killed", 1) == [1]
    host, port = broker
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CLIENT, host, str(port), str(int(version)), "will/killed"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready, "client process printed nothing within 10 s"
        assert proc.stdout.readline().strip() == b"connected"
        watcher.expect_none(0.2)  # nothing before the crash
    finally:
        proc.kill()
        proc.wait(timeout=WAIT)
        proc.stdout.close()
    m = watcher.expect_one()
    assert (m.topic, m.payload, m.qos) == ("will/killed", b"crashed", 1)


@pytest.mark.parametrize("version", VERSIONS)
def test_no_will_on_normal_disconnect(broker, connect, version):
    watcher = connect(broker, version)
    assert watcher.subscribe("will/#", 1) == [1]
    polite = connect.new(version)
    polite.will_set("will/polite", b"should not appear", qos=1)
    polite.connect(broker)
    polite.disconnect()
    watcher.expect_none(0.6)


@pytest.mark.parametrize("version", VERSIONS)
def test_retained_will_is_stored(broker, connect, version):
    dying = connect.new(version)
    dying.will_set("will/status", b"offline", qos=1, retain=True)
    dying.connect(broker)
    watcher = connect(broker, version)  # tells when the will has been routed (and stored)
    assert watcher.subscribe("will/status", 1) == [1]
    dying.drop()
    assert watcher.expect_one().payload == b"offline"
    late = connect(broker, version)
    assert late.subscribe("will/status", 1) == [1]
    m = late.expect_one()
    assert (m.payload, m.qos, m.retain) == (b"offline", 1, True)


def test_v5_disconnect_with_will_message_publishes_will(broker, connect):
    watcher = connect(broker, V5)
    assert watcher.subscribe("will/v5", 1) == [1]
    leaving = connect.new(V5)
    leaving.will_set("will/v5", b"left with will", qos=1)
    leaving.connect(broker)
    leaving.disconnect(reasoncode=0x04)
    m = watcher.expect_one()
    assert (m.topic, m.payload, m.qos) == ("will/v5", b"left with will", 1)


def test_v5_will_properties_are_forwarded(broker, connect):
    watcher = connect(broker, V5)
    assert watcher.subscribe("will/props", 1) == [1]
    dying = connect.new(V5)
    will_props = props(
        PacketTypes.WILLMESSAGE,
        ContentType="text/plain",
        UserProperty=[("device", "pump-7"), ("reason", "power")],
    )
    dying.will_set("will/props", b"gone", qos=1, properties=will_props)
    dying.connect(broker)
    dying.drop()
    m = watcher.expect_one()
    assert m.payload == b"gone"
    assert m.properties.ContentType == "text/plain"
    assert m.properties.UserProperty == [("device", "pump-7"), ("reason", "power")]



def test_v5_will_delay_interval_delays_the_will(broker, connect):
    watcher = connect(broker, V5)
    assert watcher.subscribe("will/delayed", 1) == [1]
    dying = connect.new(V5, client_id="slow-will", clean=False)
    dying.will_set("will/delayed", b"late", qos=1, properties=props(PacketTypes.WILLMESSAGE, WillDelayInterval=1))
    dying.connect(broker, session_expiry=60)
    dying.drop()
    watcher.expect_none(0.6)  # not before the delay...
    m = watcher.expect_one(timeout=2.0)  # ...but once it has passed
    assert m.payload == b"late"


def test_v5_reconnect_within_will_delay_cancels_the_will(broker, connect):
    watcher = connect(broker, V5)
    assert watcher.subscribe("will/cancelled", 1) == [1]
    dying = connect.new(V5, client_id="blip", clean=False)
    dying.will_set("will/cancelled", b"false alarm", qos=1, properties=props(PacketTypes.WILLMESSAGE, WillDelayInterval=1))
    dying.connect(broker, session_expiry=60)
    dying.drop()
    back = connect.new(V5, client_id="blip", clean=False)
    assert back.connect(broker, session_expiry=60) is True
    watcher.expect_none(1.5)


def test_v5_will_declared_utf8_but_invalid_is_refused(broker, connect):
    watcher = connect(broker, V5)
    assert watcher.subscribe("will/#", 1) == [1]
    # Raw, because paho 2.2 cannot decode CONNACK 0x99 (its reason table lacks CONNACK for 0x99
    # and reports a malformed packet).
    def s(text):
        return len(text).to_bytes(2, "big") + text

    body = (
        s(b"MQTT") + bytes([5, 0x0E]) + (60).to_bytes(2, "big") + b"\x00"  # will, QoS 1, clean
        + s(b"bad-will")
        + b"\x02\x01\x01"  # will properties: Payload Format Indicator = 1
        + s(b"will/bad")
        + s(b"\xc3\x28")  # not UTF-8
    )
    with socket.create_connection(tuple(broker), timeout=WAIT) as sock:
        sock.sendall(bytes([0x10, len(body)]) + body)
        data, _ = read_until_closed(sock, timeout=WAIT)
    assert data[0] == 0x20 and data[2:4] == b"\x00\x99", data
    watcher.expect_none()
    good = connect.new(V5)
    good.will_set("will/good", "ok ✓".encode(), qos=1, properties=props(PacketTypes.WILLMESSAGE, PayloadFormatIndicator=1))
    good.connect(broker)
    good.drop()
    m = watcher.expect_one()
    assert (m.topic, m.payload, m.properties.PayloadFormatIndicator) == ("will/good", "ok ✓".encode(), 1)
