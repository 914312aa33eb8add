"""CONNECT / CONNACK, client identifiers, session takeover, keep-alive and the connect timeout."""

import socket
import time

import pytest

from conftest import ALL_VERSIONS, V5, V31, V311, VERSIONS, WAIT, raw_connect_packet, read_until_closed

PERSIST = 60  # v5 Session Expiry Interval that makes a session outlive its connection


@pytest.mark.parametrize("version", VERSIONS)
def test_connack_success_and_session_present_on_resume(broker, connect, version):
    expiry = PERSIST if version == V5 else None
    first = connect.new(version, client_id="resume-me", clean=False)
    assert first.connect(broker, session_expiry=expiry) is False
    assert first.connack[1] == 0x00
    first.disconnect()

    again = connect.new(version, client_id="resume-me", clean=False)
    assert again.connect(broker, session_expiry=expiry) is True
    again.disconnect()

    # A clean connection discards the stored session (and, in v5 with expiry 0, its own session
    # ends with it), so the next resume finds none.
    fresh = connect.new(version, client_id="resume-me", clean=True)
    assert fresh.connect(broker) is False
    fresh.disconnect()
    last = connect.new(version, client_id="resume-me", clean=False)
    assert last.connect(broker, session_expiry=expiry) is False


def test_v31_connack_has_no_session_present_flag(broker, connect):
    # MQTT 3.1 has no session-present flag: the first CONNACK byte is reserved and must be 0
    # (paho reads it as flags all the same), even when a stored session is resumed.
    first = connect.new(V31, client_id="old-timer", clean=False)
    assert first.connect(broker) is False
    assert first.subscribe("v31/t", 1) == [1]
    first.disconnect()
    again = connect.new(V31, client_id="old-timer", clean=False)
    assert again.connect(broker) is False
    # The session itself was resumed: its subscription is still there.
    again.publish("v31/t", b"kept", qos=1)
    assert again.expect_one().payload == b"kept"


def test_v5_session_without_expiry_ends_with_connection(broker, connect):
    # Clean Start 0 with no Session Expiry Interval (= 0): the session ends at DISCONNECT.
    first = connect.new(V5, client_id="short-lived", clean=False)
    assert first.connect(broker) is False
    first.disconnect()
    again = connect.new(V5, client_id="short-lived", clean=False)
    assert again.connect(broker) is False


def test_v5_assigned_client_identifier(broker, connect):
    a = connect.new(V5, client_id="")
    a.connect(broker)
    b = connect.new(V5, client_id="")
    b.connect(broker)
    id_a = a.connack[2].AssignedClientIdentifier
    id_b = b.connack[2].AssignedClientIdentifier
    assert isinstance(id_a, str) and len(id_a) > 0
    assert isinstance(id_b, str) and len(id_b) > 0
    assert id_a != id_b
    # Both connections stay usable: the assigned ids did not collide into a takeover.
    assert b.subscribe("assigned/t", 1) == [1]
    a.publish("assigned/t", b"hi", qos=1)
    assert b.expect_one().payload == b"hi"
    assert not a.disconnected.is_set()


def test_v311_empty_client_id_is_accepted(broker, connect):
    c = connect.new(V311, client_id="")
    assert c.connect(broker) is False
    assert c.subscribe("empty/id", 0) == [0]


def test_v5_connack_properties(broker, connect):
    c = connect(broker, V5)
    p = c.connack[2]
    assert p.ReceiveMaximum == 64
    assert p.TopicAliasMaximum == 16
    assert p.MaximumPacketSize == 1024 * 1024
    # Features that are available are not advertised (absent means available).
    for absent in (
        "AssignedClientIdentifier",
        "SharedSubscriptionAvailable",
        "WildcardSubscriptionAvailable",
        "SubscriptionIdentifierAvailable",
        "RetainAvailable",
        "MaximumQoS",
        "ServerKeepAlive",
        "SessionExpiryInterval",
    ):
        assert not hasattr(p, absent), absent


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_takeover_disconnects_first_client(broker, connect, version):
    first = connect(broker, version, client_id="twin")
    second = connect(broker, version, client_id="twin")
    reason = first.wait_disconnected()
    if version == V5:
        assert reason == 0x8E, f"expected Session taken over (0x8E), got {reason:#04x}"
    else:
        assert reason == 0x80, f"expected Unspecified error (0x80) for a lost 3.1/3.1.1 link, got {reason:#04x}"
    # The new connection is the one that works; it is not kicked back.
    assert second.subscribe("twin/t", 1) == [1]
    second.publish("twin/t", b"still here", qos=1)
    assert second.expect_one().payload == b"still here"
    assert not second.disconnected.is_set()


def test_keepalive_pings_keep_client_connected(broker, connect):
    # Both protocol versions side by side, to spend the 3 s once.
    clients = [connect(broker, V311, keepalive=1), connect(broker, V5, keepalive=1)]
    time.sleep(3.0)
    for c in clients:
        assert not c.disconnected.is_set(), f"v{c.version} disconnected: {c.disconnect_reasons}"
        pings = sum("Sending PINGREQ" in line for line in c.log_lines)
        pongs = sum("Received PINGRESP" in line for line in c.log_lines)
        assert pings >= 2, c.log_lines
        assert pongs >= 2, c.log_lines
        assert c.subscribe("ka/t", 1) == [1]
        c.publish("ka/t", b"alive", qos=1)
        assert c.expect_one().payload == b"alive"


@pytest.mark.parametrize("version", VERSIONS)
def test_silent_client_is_disconnected_after_one_and_a_half_keepalives(broker, version):
    with socket.create_connection(tuple(broker), timeout=WAIT) as s:
        s.sendall(raw_connect_packet(version, "silent", keepalive=1))
        data, elapsed = read_until_closed(s, timeout=5.0)
    # CONNACK: no session present, success.
    assert data[0] == 0x20 and data[2:4] == b"\x00\x00", data
    # 1.5 x keep-alive = 1.5 s; allow for the broker's timer granularity.
    assert 1.4 <= elapsed <= 3.0, elapsed
    if version == V5:
        rest = data[2 + data[1]:]
        assert rest[0] == 0xE0, f"expected DISCONNECT after CONNACK, got {rest!r}"
        assert rest[2] == 0x8D, f"expected Keep alive timeout (0x8D), got {rest[2]:#04x}"
    else:
        assert data == bytes([0x20, 0x02, 0x00, 0x00]), data


def test_connect_timeout_from_config_closes_idle_socket(broker_factory):
    b = broker_factory('[mqtt]\nconnect_timeout = "1s"\n')
    with socket.create_connection(tuple(b), timeout=WAIT) as s:
        data, elapsed = read_until_closed(s, timeout=4.0)
    assert data == b""
    assert 0.9 <= elapsed <= 2.5, elapsed


def test_default_connect_timeout_keeps_idle_socket_open(broker):
    with socket.create_connection(tuple(broker), timeout=WAIT) as s:
        s.settimeout(1.2)
        start = time.monotonic()
        try:
            data = s.recv(16)
        except socket.timeout:
            data = None
        assert data is None, f"closed after {time.monotonic() - start:.2f} s with default 10 s timeout"


@pytest.mark.parametrize("version", VERSIONS)
def test_client_id_length_limit(broker, connect, version):
    ok = connect.new(version, client_id="k" * 256)  # max_client_id_len default
    assert ok.connect(broker) is False
    too_long = connect.new(version, client_id="k" * 257)
    # v5: 0x85 Client Identifier not valid; 3.1.1 return code 2, which paho reports as 0x85 too.
    too_long.connect(broker, expect_rc=0x85)
    too_long.wait_disconnected()
    assert not ok.disconnected.is_set()


def test_v31_client_id_longer_than_23_is_refused(broker, connect):
    ok = connect.new(V31, client_id="x" * 23)
    assert ok.connect(broker) is False
    refused = connect.new(V31, client_id="x" * 24)
    refused.connect(broker, expect_rc=0x85)  # 3.1 return code 2, identifier rejected


def test_v311_empty_client_id_needs_clean_session(broker):
    # paho refuses to build this CONNECT itself, so it goes out raw: clean session 0, empty id.
    body = b"\x00\x04MQTT\x04\x00\x00\x3c\x00\x00"
    with socket.create_connection(tuple(broker), timeout=WAIT) as s:
        s.sendall(bytes([0x10, len(body)]) + body)
        data, _ = read_until_closed(s, timeout=WAIT)
    assert data == bytes([0x20, 0x02, 0x00, 0x02])


@pytest.mark.parametrize("requested", [True, False])
def test_v5_response_information(broker_factory, connect, requested):
    b = broker_factory('[mqtt]\nresponse_information = "replies/"\n')
    extra = {"RequestResponseInformation": 1} if requested else {}
    c = connect(b, V5, **extra)
    if requested:
        assert c.connack[2].ResponseInformation == "replies/"
    else:
        assert not hasattr(c.connack[2], "ResponseInformation")


def test_v5_response_information_not_offered_by_default(broker, connect):
    c = connect(broker, V5, RequestResponseInformation=1)
    assert not hasattr(c.connack[2], "ResponseInformation")
