"""Fixtures for the paho-mqtt interoperability tests.

`broker` starts one picomq per test on a free loopback port and stops it afterwards;
`broker_factory` does the same with an optional TOML configuration. `connect` makes paho
clients (MQTT 3.1.1 or 5.0) running on their own network thread, with every callback recorded
so tests can wait for CONNACK, acknowledgements, messages and disconnects with a timeout.

Nothing here may block without a bound: every wait takes a timeout and fails the test when it
runs out. A missing paho-mqtt or picomq binary fails the run instead of skipping it.
"""

import os
import pathlib
import queue
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

try:
    import paho.mqtt
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode
    from paho.mqtt.subscribeoptions import SubscribeOptions
except ImportError as e:  # a missing client library is a failure, never a skip
    raise RuntimeError(
        "paho-mqtt 2.x is required for tests/python: python3 -m pip install 'paho-mqtt>=2,<3'"
    ) from e

if int(paho.mqtt.__version__.split(".")[0]) != 2:
    raise RuntimeError(f"paho-mqtt 2.x is required, found {paho.mqtt.__version__}")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

V31 = mqtt.MQTTv31
V311 = mqtt.MQTTv311
V5 = mqtt.MQTTv5
VERSIONS = [pytest.param(V311, id="v311"), pytest.param(V5, id="v5")]
# For the basics, also MQTT 3.1 ("MQIsdp"), which picomq accepts.
ALL_VERSIONS = [pytest.param(V31, id="v31")] + VERSIONS

# How long to wait for something that should happen, and for something that should not.
WAIT = 5.0
QUIET = 0.3


# --------------------------------------------------------------------------------------------
# The broker process


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port_accepts(port):
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    """One picomq process. Unpacks as (host, port)."""

    def __init__(self, binary, workdir, conf_text=None):
        self.binary = binary
        self.workdir = workdir
        self.conf_text = conf_text
        self.host = HOST
        self.port = None
        self.proc = None
        self.log_path = None

    def __iter__(self):
        return iter((self.host, self.port))

    def start(self):
        tag = uuid.uuid4().hex[:8]
        self.log_path = self.workdir / f"picomq-{tag}.log"
        cmd = [str(self.binary)]
        if self.conf_text is not None:
            conf = self.workdir / f"picomq-{tag}.toml"
            conf.write_text(self.conf_text)
            cmd += ["--conf", str(conf)]
        # The port is free when picked but could be taken before picomq binds it: retry a few times.
        for _ in range(3):
            self.port = _free_port()
            args = cmd + ["--listen", f"{HOST}:{self.port}", "--log-level", "debug"]
            env = dict(os.environ)
            env.pop("RUST_LOG", None)
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
                )
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if _port_accepts(self.port):
                    return self
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.stop()
                pytest.fail(f"picomq did not accept on port {self.port} within 10 s\n{self.log_tail()}")
            if "in use" not in self.log_tail():
                pytest.fail(f"picomq exited with {self.proc.returncode} at start-up\n{self.log_tail()}")
        pytest.fail(f"picomq could not bind a free port\n{self.log_tail()}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def log(self):
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines=80):
        return "\n".join(self.log().splitlines()[-lines:])


@pytest.fixture(scope="session")
def picomq_bin():
    path = os.environ.get("PICOMQ_BIN") or str(REPO_ROOT / "target" / "release" / "picomq")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"picomq binary not found at {path}: run "
            "`cargo build --release --bin picomq` or set PICOMQ_BIN"
        )
    return path


@pytest.fixture
def broker_factory(request, picomq_bin, tmp_path):
    """Starts brokers on demand: `broker_factory(conf_text=None)`; stops them all at teardown."""
    started = []
    request.node._picomq_brokers = started

    def start(conf_text=None):
        b = Broker(picomq_bin, tmp_path, conf_text)
        started.append(b)
        return b.start()

    yield start
    for b in started:
        b.stop()
    for b in started:
        if "panicked" in b.log():
            pytest.fail(f"picomq panicked during the test\n{b.log_tail()}")


@pytest.fixture
def broker(broker_factory):
    """A picomq with built-in defaults on a free loopback port; unpacks as (host, port)."""
    return broker_factory()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for b in getattr(item, "_picomq_brokers", []):
            report.sections.append((f"picomq log tail (port {b.port})", b.log_tail()))


# --------------------------------------------------------------------------------------------
# paho clients


class _Acks:
    """Results keyed by packet id, filled by callbacks on paho's thread and awaited by the test."""

    def __init__(self, what):
        self.what = what
        self.items = {}
        self.cond = threading.Condition()

    def put(self, mid, value):
        with self.cond:
            self.items[mid] = value
            self.cond.notify_all()

    def wait(self, mid, timeout=WAIT):
        with self.cond:
            if not self.cond.wait_for(lambda: mid in self.items, timeout):
                raise AssertionError(f"no {self.what} for packet {mid} within {timeout} s")
            return self.items.pop(mid)


def codes(reason_codes):
    """paho reason codes (a list or one) as plain ints."""
    if isinstance(reason_codes, list):
        return [rc.value for rc in reason_codes]
    return reason_codes.value


def props(packet_type=PacketTypes.PUBLISH, **values):
    """A paho Properties object for `packet_type` with the given attributes."""
    p = Properties(packet_type)
    for k, v in values.items():
        setattr(p, k, v)
    return p


class Client:
    """A paho client on its own network thread that records what it receives."""

    def __init__(self, version, client_id=None, clean=True, manual_ack=False):
        self.version = version
        self.client_id = uuid.uuid4().hex[:12] if client_id is None else client_id
        kwargs = {}
        if version != V5:
            kwargs["clean_session"] = clean
        self.clean = clean
        self.paho = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=version,
            reconnect_on_failure=False,
            manual_ack=manual_ack,
            **kwargs,
        )
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.connack = None  # (session_present, reason code int, properties)
        self.disconnected = threading.Event()
        self.disconnect_reasons = []
        self.disconnect_props = []
        self.pubacks = _Acks("PUBACK/PUBCOMP")
        self.subacks = _Acks("SUBACK")
        self.unsubacks = _Acks("UNSUBACK")
        self.log_lines = []
        p = self.paho
        p.on_connect = self._on_connect
        p.on_disconnect = self._on_disconnect
        p.on_message = lambda c, u, m: self.messages.put(m)
        p.on_publish = lambda c, u, mid, rc, pr: self.pubacks.put(mid, (rc.value, pr))
        p.on_subscribe = lambda c, u, mid, rcs, pr: self.subacks.put(mid, codes(rcs))
        p.on_unsubscribe = lambda c, u, mid, rcs, pr: self.unsubacks.put(mid, codes(rcs))
        p.on_log = lambda c, u, level, buf: self.log_lines.append(buf)

    @property
    def is_v5(self):
        return self.version == V5

    def _on_connect(self, c, u, flags, rc, properties):
        self.connack = (flags.session_present, rc.value, properties)
        self.connected.set()

    def _on_disconnect(self, c, u, flags, rc, properties):
        self.disconnect_reasons.append(rc.value)
        self.disconnect_props.append(properties)
        self.disconnected.set()

    def will_set(self, topic, payload, qos=0, retain=False, properties=None):
        self.paho.will_set(topic, payload, qos=qos, retain=retain, properties=properties)

    def connect(self, broker, keepalive=60, session_expiry=None, expect_rc=0, **connect_props):
        """Connects and waits for CONNACK; returns session present. `connect_props` are v5
        CONNECT properties by paho name (e.g. ReceiveMaximum=2)."""
        host, port = broker
        kwargs = {}
        if self.is_v5:
            kwargs["clean_start"] = self.clean
            if session_expiry is not None:
                connect_props["SessionExpiryInterval"] = session_expiry
            if connect_props:
                kwargs["properties"] = props(PacketTypes.CONNECT, **connect_props)
        else:
            assert not connect_props, "CONNECT properties need MQTT 5"
        self.paho.connect(host, port, keepalive=keepalive, **kwargs)
        self.paho.loop_start()
        assert self.connected.wait(WAIT), f"no CONNACK for {self.client_id} within {WAIT} s"
        session_present, rc, _ = self.connack
        assert rc == expect_rc, f"CONNACK reason {rc:#04x}, expected {expect_rc:#04x}"
        return session_present

    def allow_invalid_filters(self):
        """Turns off paho's own filter check so that malformed filters reach the broker."""
        # paho rejects "a/#/b" and "a+" before sending; the instance attribute shadows the
        # static method it calls.
        self.paho._filter_wildcard_len_check = lambda sub: mqtt.MQTT_ERR_SUCCESS

    def subscribe(self, topic, qos=0, no_local=False, rap=False, retain_handling=0, sub_id=None):
        """Subscribes one filter (or a list of (filter, qos) pairs) and returns the SUBACK codes."""
        pairs = topic if isinstance(topic, list) else [(topic, qos)]
        if self.is_v5:
            pairs = [
                (t, SubscribeOptions(q, noLocal=no_local, retainAsPublished=rap, retainHandling=retain_handling))
                for t, q in pairs
            ]
            properties = None
            if sub_id is not None:
                properties = props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=sub_id)
            rc, mid = self.paho.subscribe(pairs, properties=properties)
        else:
            rc, mid = self.paho.subscribe(pairs)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe not sent: {rc}"
        return self.subacks.wait(mid)

    def unsubscribe(self, topic):
        rc, mid = self.paho.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"unsubscribe not sent: {rc}"
        return self.unsubacks.wait(mid)

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None, wait=True):
        """Publishes; for QoS 1/2 waits for the final acknowledgement and returns its reason code."""
        info = self.paho.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if not wait:
            # The broker may answer a bad PUBLISH with DISCONNECT before paho's publish() returns;
            # paho then reports "no connection" although the packet went out. Callers check the
            # outcome (the DISCONNECT) instead.
            return info
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish not sent: {info.rc}"
        if qos == 0:
            info.wait_for_publish(WAIT)
            assert info.is_published(), "QoS 0 publish not written within timeout"
            return None
        rc, _ = self.pubacks.wait(info.mid)
        return rc

    def expect(self, n=1, timeout=WAIT):
        """Waits for `n` messages; fails if they do not all arrive within `timeout` (in total)."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            try:
                got.append(self.messages.get(timeout=max(left, 0.001)))
            except queue.Empty:
                raise AssertionError(
                    f"{self.client_id}: got {len(got)} of {n} messages within {timeout} s: "
                    f"{[(m.topic, m.payload) for m in got]}"
                ) from None
        return got

    def expect_one(self, timeout=WAIT):
        return self.expect(1, timeout)[0]

    def expect_none(self, timeout=QUIET):
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"{self.client_id}: unexpected message {m.topic} {m.payload!r} retain={m.retain}")

    def wait_disconnected(self, timeout=WAIT):
        assert self.disconnected.wait(timeout), f"{self.client_id} still connected after {timeout} s"
        return self.disconnect_reasons[0]

    def disconnect(self, reasoncode=None):
        """Sends DISCONNECT (optionally with a v5 reason code) and stops the network thread."""
        if reasoncode is None:
            self.paho.disconnect()
        else:
            self.paho.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=reasoncode))
        self.wait_disconnected()
        self.paho.loop_stop()

    def drop(self):
        """Closes the TCP connection without a DISCONNECT packet, like a crashed client."""
        sock = self.paho.socket()
        assert sock is not None, "not connected"
        sock.shutdown(socket.SHUT_RDWR)
        self.wait_disconnected()
        self.paho.loop_stop()

    def close(self):
        """Teardown: stops the thread, quietly disconnecting if still connected."""
        try:
            if self.connected.is_set() and not self.disconnected.is_set():
                self.paho.disconnect()
                self.disconnected.wait(1.0)
        finally:
            self.paho.loop_stop()


def witness(connect, broker, topic_filter):
    """A subscriber to `topic_filter` made before a test publishes: once it has the messages,
    the broker has routed them, and stored the retained ones. (A PUBACK only means the broker
    took a message; routing follows, so a later SUBSCRIBE from another client could overtake it.)"""
    w = connect(broker, V5)
    assert w.subscribe(topic_filter, 1) == [1]
    return w


@pytest.fixture
def connect(broker_factory):
    """`connect(broker, version, client_id=None, clean=True, keepalive=60, session_expiry=None,
    manual_ack=False, **v5_connect_props)` returns a connected Client; `connect.new(version,
    client_id, clean, manual_ack)` returns one not yet connected."""
    made = []

    def new(version, client_id=None, clean=True, manual_ack=False):
        c = Client(version, client_id, clean, manual_ack)
        made.append(c)
        return c

    def make(broker, version, client_id=None, clean=True, keepalive=60, session_expiry=None,
             manual_ack=False, **connect_props):
        c = new(version, client_id, clean, manual_ack)
        c.connect(broker, keepalive=keepalive, session_expiry=session_expiry, **connect_props)
        return c

    make.new = new
    yield make
    for c in made:
        c.close()


# --------------------------------------------------------------------------------------------
# Raw sockets, for what paho will not do on purpose (stay silent, skip PINGREQ)


def raw_connect_packet(version, client_id, keepalive):
    """A minimal CONNECT (clean session/start, no will) as bytes."""
    cid = client_id.encode()
    variable = b"\x00\x04MQTT" + bytes([5 if version == V5 else 4, 0x02]) + keepalive.to_bytes(2, "big")
    if version == V5:
        variable += b"\x00"  # no properties
    body = variable + len(cid).to_bytes(2, "big") + cid
    assert len(body) < 128
    return bytes([0x10, len(body)]) + body


def read_until_closed(sock, timeout):
    """Reads until the peer closes; returns (bytes, seconds). Fails if still open after `timeout`."""
    start = time.monotonic()
    data = b""
    while True:
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            raise AssertionError(f"connection still open after {timeout} s (read {data!r})")
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return data, time.monotonic() - start
        data += chunk
