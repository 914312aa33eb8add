"""Helpers for the gmqtt (asyncio) interoperability tests in test_gmqtt_v5.py.

gmqtt is callback based: CONNACK, SUBACK, messages and disconnects arrive through `on_*`
callbacks, and a QoS 1/2 publish is finished when its packet leaves gmqtt's in-flight storage.
`GClient` turns those into awaitables, each bounded by a timeout, and `run_gmqtt` runs one
test body in its own event loop with every client it made closed at the end.

gmqtt 0.8 has no public way to do a few things the tests need. Those few places reach into
gmqtt internals and say so where they do:
  * an empty client id (gmqtt replaces a falsy id by a random uuid),
  * closing the socket without DISCONNECT (a crashed client),
  * seeing whether a received PUBLISH had an empty topic (a broker-assigned alias reused).
Turning off its automatic reconnect is done by overriding the public `reconnect` coroutine.
"""

import asyncio
import uuid
from dataclasses import dataclass, field

try:
    import gmqtt
except ImportError as e:  # a missing client library is a failure, never a skip
    raise RuntimeError("gmqtt is required for tests/python: python3 -m pip install 'gmqtt>=0.8'") from e

if tuple(int(x) for x in gmqtt.__version__.split(".")[:2]) < (0, 8):
    raise RuntimeError(f"gmqtt 0.8 or later is required, found {gmqtt.__version__}")

from gmqtt.storage import PersistentStorage  # noqa: E402  (after the version check)

from conftest import QUIET, WAIT

# Bound for one test body; the whole gmqtt file should stay well under 20 s.
TEST_TIMEOUT = 15.0


class _TestClient(gmqtt.Client):
    """gmqtt.Client that never reconnects on its own.

    Every test watches how one connection ends (a takeover, a dropped socket); a reconnect would
    start a new session behind the test's back. `reconnect_retries = 0` is not enough in gmqtt
    0.8: with no failed attempt yet, its retry check (failed <= retries) still allows one."""

    async def reconnect(self, delay=False):
        return None


@dataclass
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    props: dict = field(default_factory=dict)  # MQTT 5 properties, as gmqtt gives them (lists)


class GClient:
    """One gmqtt client plus queues for what it receives. Create through `Clients.new/connect`."""

    def __init__(self, broker, client_id=None, clean_start=True, will=None, **connect_props):
        self.host, self.port = broker
        self.client_id = uuid.uuid4().hex[:12] if client_id is None else client_id
        # Our own storage object: gmqtt keeps unacknowledged outgoing QoS 1/2 PUBLISH (and, after
        # PUBREC, the PUBREL) in it until PUBACK/PUBCOMP, so "empty" means "all acknowledged".
        self.storage = PersistentStorage()
        self.gmqtt = _TestClient(
            self.client_id,
            clean_session=clean_start,
            will_message=will,
            persistent_storage=self.storage,
            **connect_props,
        )
        if client_id == "":
            # Internal: gmqtt.Client substitutes uuid4().hex for a falsy client id, so an empty
            # id (MQTT 5 "assign one for me") cannot be asked for through its API.
            self.gmqtt._client_id = ""
        self.connack = None  # (session_present, reason code, properties dict) from on_connect
        self.messages = asyncio.Queue()
        self.disconnects = asyncio.Queue()  # raw DISCONNECT bodies; b"" when the socket closed
        self.disconnect_log = []
        self._subacks = {}
        self._unsubacks = {}
        self.started = False
        g = self.gmqtt
        g.on_connect = self._on_connect
        g.on_message = self._on_message
        g.on_disconnect = self._on_disconnect
        g.on_subscribe = self._on_subscribe
        g.on_unsubscribe = self._on_unsubscribe

    # -- callbacks (run on the event loop) -------------------------------------------------

    def _on_connect(self, client, session_present, rc, properties):
        self.connack = (session_present, rc, properties)

    def _on_message(self, client, topic, payload, qos, properties):
        props = dict(properties)
        retain = bool(props.pop("retain"))
        props.pop("dup", None)
        self.messages.put_nowait(Received(topic, payload, qos, retain, props))
        return 0  # PUBACK/PUBREC reason code, used only without optimistic acknowledgement

    def _on_disconnect(self, client, packet, exc=None):
        body = bytes(packet) if isinstance(packet, (bytes, bytearray)) else packet
        self.disconnect_log.append(body)
        self.disconnects.put_nowait(body)

    def _future(self, table, mid):
        if mid not in table:
            table[mid] = asyncio.get_running_loop().create_future()
        return table[mid]

    def _on_subscribe(self, client, mid, granted, properties):
        fut = self._future(self._subacks, mid)
        if not fut.done():
            fut.set_result(list(granted))

    def _on_unsubscribe(self, client, mid, codes):
        fut = self._future(self._unsubacks, mid)
        if not fut.done():
            fut.set_result(list(codes))

    # -- actions ----------------------------------------------------------------------------

    @property
    def connack_props(self):
        """CONNACK properties only. gmqtt's on_connect merges CONNECT and CONNACK properties, the
        client's own values winning; those from CONNACK are lists."""
        assert self.connack is not None, "no CONNACK yet"
        return {k: v for k, v in self.connack[2].items() if isinstance(v, list)}

    async def connect(self, keepalive=60, expect_rc=0):
        """Connects (MQTT 5) and waits for CONNACK; returns session present as a bool."""
        self.started = True
        try:
            await asyncio.wait_for(
                self.gmqtt.connect(self.host, self.port, keepalive=keepalive, raise_exc=False), WAIT
            )
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.client_id}: no CONNACK within {WAIT} s") from None
        if expect_rc == 0:
            assert self.connack is not None, f"{self.client_id}: connection refused"
            session_present, rc, _ = self.connack
            assert rc == 0, f"CONNACK reason {rc:#04x}"
            return bool(session_present)
        return None

    async def subscribe(self, topic, qos=0, **options):
        """Subscribes and returns the SUBACK reason codes. `options`: no_local,
        retain_as_published, retain_handling_options, subscription_identifier, user_property."""
        mid = self.gmqtt.subscribe(topic, qos=qos, **options)
        try:
            return await asyncio.wait_for(self._future(self._subacks, mid), WAIT)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.client_id}: no SUBACK for {topic!r} within {WAIT} s") from None

    async def unsubscribe(self, topic):
        mid = self.gmqtt.unsubscribe(topic)
        try:
            return await asyncio.wait_for(self._future(self._unsubacks, mid), WAIT)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.client_id}: no UNSUBACK for {topic!r} within {WAIT} s") from None

    def publish_nowait(self, topic, payload=b"", qos=0, retain=False, **props):
        """Hands one PUBLISH to gmqtt. gmqtt does no flow control: with more than Receive
        Maximum - 1 QoS 1/2 messages unacknowledged it raises OverflowError, so callers that
        send many await `acked()` now and then."""
        self.gmqtt.publish(gmqtt.Message(topic, payload, qos=qos, retain=retain, **props))

    async def acked(self, timeout=WAIT):
        """Waits until every QoS 1/2 message sent so far is acknowledged (PUBACK / PUBCOMP).
        gmqtt does not expose the acknowledgement's reason code."""
        try:
            await asyncio.wait_for(self.storage.wait_empty(), timeout)
        except asyncio.TimeoutError:
            left = [mid for mid, _ in self.storage.get_all()]
            raise AssertionError(f"{self.client_id}: packets {left} unacknowledged after {timeout} s") from None

    async def publish(self, topic, payload=b"", qos=0, retain=False, **props):
        """Publishes one message; for QoS 1/2 waits for its final acknowledgement. A QoS 0
        message is written to the socket (asyncio transports write at once when they can)."""
        self.publish_nowait(topic, payload, qos=qos, retain=retain, **props)
        if qos:
            await self.acked()

    async def expect(self, n=1, timeout=WAIT):
        """Waits for `n` messages in total within `timeout` and returns them."""
        got = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(got) < n:
            left = deadline - loop.time()
            try:
                got.append(await asyncio.wait_for(self.messages.get(), max(left, 0.001)))
            except asyncio.TimeoutError:
                raise AssertionError(
                    f"{self.client_id}: got {len(got)} of {n} messages within {timeout} s: "
                    f"{[(m.topic, m.payload) for m in got]}"
                ) from None
        return got

    async def expect_one(self, timeout=WAIT):
        return (await self.expect(1, timeout))[0]

    async def expect_none(self, timeout=QUIET):
        try:
            m = await asyncio.wait_for(self.messages.get(), timeout)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"{self.client_id}: unexpected message {m.topic} {m.payload!r} retain={m.retain}")

    async def wait_disconnect(self, timeout=WAIT):
        """Waits for gmqtt's on_disconnect and returns what it reported: the body of the
        broker's DISCONNECT packet (reason code byte, then raw properties), or b"" when the
        socket closed without one."""
        try:
            return await asyncio.wait_for(self.disconnects.get(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.client_id}: still connected after {timeout} s") from None

    async def disconnect(self, reason_code=0):
        """Sends DISCONNECT with `reason_code` and closes the connection."""
        await asyncio.wait_for(self.gmqtt.disconnect(reason_code=reason_code), WAIT)

    async def drop(self):
        """Closes the TCP connection without DISCONNECT, like a crashed client."""
        # Internal: gmqtt has no public call for this; MQTTConnection.close() closes the
        # transport without writing anything first.
        await asyncio.wait_for(self.gmqtt._connection.close(), WAIT)
        assert await self.wait_disconnect() == b""

    @property
    def is_connected(self):
        return self.started and self.gmqtt._connection is not None and self.gmqtt.is_connected

    async def close(self):
        if self.is_connected:
            try:
                await asyncio.wait_for(self.gmqtt.disconnect(), 1.0)
            except (asyncio.TimeoutError, OSError):
                pass


class Clients:
    """Makes GClients for one broker and closes them all at the end of the test body."""

    def __init__(self, broker):
        self.broker = broker
        self.made = []

    def new(self, client_id=None, clean_start=True, will=None, **connect_props):
        c = GClient(self.broker, client_id, clean_start, will, **connect_props)
        self.made.append(c)
        return c

    async def connect(self, client_id=None, clean_start=True, will=None, **connect_props):
        c = self.new(client_id, clean_start, will, **connect_props)
        await c.connect()
        return c

    async def close_all(self):
        for c in self.made:
            await c.close()


def run_gmqtt(broker, body, timeout=TEST_TIMEOUT):
    """Runs `await body(clients)` in a fresh event loop, bounded by `timeout` seconds."""

    async def main():
        clients = Clients(broker)
        try:
            await asyncio.wait_for(body(clients), timeout)
        finally:
            await clients.close_all()

    asyncio.run(main())


def will_message(topic, payload, qos=0, retain=False, **props):
    """A gmqtt will; `props` become Will Properties (e.g. will_delay_interval, content_type)."""
    return gmqtt.Message(topic, payload, qos=qos, retain=retain, **props)
