"""MQTT 5 interoperability with gmqtt, an asyncio client written independently of paho.

Each test runs its body with `run_gmqtt` (a fresh event loop, every wait bounded) against the
`broker` fixture's picomq. gmqtt hands MQTT 5 properties over as a dict of lists, e.g.
{"user_property": [("k", "v")], "message_expiry_interval": [9]}; see gmqtt_helpers.py.
"""

import asyncio
import time

import pytest

from gmqtt_helpers import run_gmqtt, will_message

# What picomq's built-in defaults put in every CONNACK (conf/picomq.toml): Receive Maximum 64,
# Topic Alias Maximum 16, Maximum Packet Size 1 MiB; available features are not advertised.
DEFAULT_CONNACK = {
    "receive_maximum": [64],
    "topic_alias_maximum": [16],
    "maximum_packet_size": [1024 * 1024],
}


def test_connack_properties_and_assigned_client_identifier(broker):
    async def body(gm):
        named = gm.new(client_id="gm-named")
        assert await named.connect() is False
        assert named.connack[1] == 0
        assert named.connack_props == DEFAULT_CONNACK

        first = gm.new(client_id="")
        second = gm.new(client_id="")
        assert await first.connect() is False
        assert await second.connect() is False
        ids = []
        for c in (first, second):
            got = dict(c.connack_props)
            assigned = got.pop("assigned_client_identifier")
            assert got == DEFAULT_CONNACK
            assert len(assigned) == 1 and isinstance(assigned[0], str) and assigned[0]
            ids.append(assigned[0])
        assert ids[0] != ids[1]
        # Neither took the other over: both connections still work.
        assert await second.subscribe("gm/assigned", 1) == [1]
        await first.publish("gm/assigned", b"hi", qos=1)
        assert (await second.expect_one()).payload == b"hi"
        assert first.disconnect_log == [] and second.disconnect_log == []

        # The broker keeps the requested Session Expiry Interval: no override in CONNACK.
        lasting = gm.new(session_expiry_interval=120)
        await lasting.connect()
        assert "session_expiry_interval" not in lasting.connack_props
        assert lasting.gmqtt.session_expiry_interval == 120

    run_gmqtt(broker, body)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_hundred_messages_in_order(broker, qos):
    async def body(gm):
        sub = await gm.connect()
        pub = await gm.connect()
        assert await sub.subscribe("gm/order", qos) == [qos]
        sent = [f"msg-{i:03d}".encode() for i in range(100)]
        for i, payload in enumerate(sent):
            pub.publish_nowait("gm/order", payload, qos=qos)
            if qos and i % 20 == 19:
                # gmqtt raises instead of waiting when Receive Maximum (64) would be exceeded.
                await pub.acked()
        await pub.acked()
        got = await sub.expect(100)
        assert [m.payload for m in got] == sent
        assert {(m.topic, m.qos, m.retain) for m in got} == {("gm/order", qos, False)}
        await sub.expect_none()

    run_gmqtt(broker, body)


def test_qos_is_the_minimum_of_publish_and_subscription(broker):
    async def body(gm):
        subs = {}
        for q in (0, 1, 2):
            subs[q] = await gm.connect()
            assert await subs[q].subscribe("gm/downgrade", q) == [q]
        pub = await gm.connect()
        for q in (0, 1, 2):
            await pub.publish("gm/downgrade", f"p{q}".encode(), qos=q)
        for sq, sub in subs.items():
            got = await sub.expect(3)
            assert [(m.payload, m.qos) for m in got] == [(f"p{q}".encode(), min(q, sq)) for q in (0, 1, 2)]

    run_gmqtt(broker, body)


def test_user_properties_forwarded_in_order(broker):
    async def body(gm):
        sub = await gm.connect()
        pub = await gm.connect()
        assert await sub.subscribe("gm/user", 1) == [1]
        user = [("z", "1"), ("a", "2"), ("z", "3"), ("clé", "välüe ✓"), ("empty", "")]
        await pub.publish("gm/user", b"x", qos=1, user_property=user)
        m = await sub.expect_one()
        assert m.payload == b"x"
        assert m.props["user_property"] == user

    run_gmqtt(broker, body)


def test_content_type_and_payload_format_indicator(broker):
    async def body(gm):
        sub = await gm.connect()
        pub = await gm.connect()
        assert await sub.subscribe("gm/ct", 1) == [1]
        text = "22.5 °C".encode()
        await pub.publish("gm/ct", text, qos=1, content_type="text/plain; charset=utf-8", payload_format_id=1)
        await pub.publish("gm/ct", b"\x00\xff", qos=1, content_type="application/octet-stream", payload_format_id=0)
        await pub.publish("gm/ct", b"bare", qos=1)
        first, second, third = await sub.expect(3)
        assert first.payload == text
        assert first.props["content_type"] == ["text/plain; charset=utf-8"]
        assert first.props["payload_format_id"] == [1]
        assert second.payload == b"\x00\xff"
        assert second.props["content_type"] == ["application/octet-stream"]
        # 0 (unspecified bytes) is the default; a broker may forward it or leave it out.
        assert second.props.get("payload_format_id", [0]) == [0]
        assert third.payload == b"bare"
        assert "content_type" not in third.props and "payload_format_id" not in third.props

    run_gmqtt(broker, body)


def test_response_topic_and_correlation_data(broker):
    async def body(gm):
        responder = await gm.connect()
        requester = await gm.connect()
        assert await responder.subscribe("gm/req", 1) == [1]
        assert await requester.subscribe("gm/reply/+", 1) == [1]
        corr = bytes(range(256))
        await requester.publish("gm/req", b"ping", qos=1, response_topic="gm/reply/r1", correlation_data=corr)
        req = await responder.expect_one()
        assert req.props["response_topic"] == ["gm/reply/r1"]
        assert req.props["correlation_data"] == [corr]
        # Answer the way a real responder would: to the response topic, echoing the data.
        await responder.publish(req.props["response_topic"][0], b"pong", qos=1,
                                correlation_data=req.props["correlation_data"][0])
        reply = await requester.expect_one()
        assert (reply.topic, reply.payload, reply.props["correlation_data"]) == ("gm/reply/r1", b"pong", [corr])

    run_gmqtt(broker, body)


def test_message_expiry_interval_is_counted_down(broker):
    async def body(gm):
        watcher = await gm.connect()
        assert await watcher.subscribe("gm/exp/#", 1) == [1]
        pub = await gm.connect()
        await pub.publish("gm/exp/retained", b"r", qos=1, retain=True, message_expiry_interval=10)
        live = await watcher.expect_one()  # routed, so stored as retained
        assert live.props["message_expiry_interval"] in ([10], [9])
        await asyncio.sleep(1.2)
        late = await gm.connect()
        assert await late.subscribe("gm/exp/retained", 1) == [1]
        m = await late.expect_one()
        assert (m.payload, m.retain) == (b"r", True)
        # 1.2 s of the 10 s have gone: what is left is 8.8 s, sent as 8 or 9, never 10.
        assert m.props["message_expiry_interval"] in ([8], [9]), m.props
        # A message published without expiry carries none.
        await pub.publish("gm/exp/plain", b"p", qos=1)
        plain = await watcher.expect_one()
        assert plain.payload == b"p" and "message_expiry_interval" not in plain.props

    run_gmqtt(broker, body)


def test_subscription_identifier_delivered(broker):
    async def body(gm):
        sub = await gm.connect()
        pub = await gm.connect()
        assert await sub.subscribe("gm/sid/+", 1, subscription_identifier=42) == [1]
        assert await sub.subscribe("gm/sid/both", 1, subscription_identifier=268435455) == [1]
        assert await sub.subscribe("gm/plain/#", 1) == [1]
        await pub.publish("gm/sid/a", b"a", qos=1)
        m = await sub.expect_one()
        assert (m.payload, m.props["subscription_identifier"]) == (b"a", [42])
        await pub.publish("gm/plain/x", b"p", qos=1)
        m = await sub.expect_one()
        assert m.payload == b"p" and "subscription_identifier" not in m.props
        # Two matching subscriptions of one client: a single copy with both identifiers.
        await pub.publish("gm/sid/both", b"b", qos=1)
        m = await sub.expect_one()
        assert m.payload == b"b"
        assert sorted(m.props["subscription_identifier"]) == [42, 268435455]
        await sub.expect_none()

    run_gmqtt(broker, body)


def test_no_local(broker):
    async def body(gm):
        me = await gm.connect()
        other = await gm.connect()
        assert await me.subscribe("gm/nolocal", 1, no_local=True) == [1]
        assert await other.subscribe("gm/nolocal", 1) == [1]
        await me.publish("gm/nolocal", b"mine", qos=1)
        assert (await other.expect_one()).payload == b"mine"
        await other.publish("gm/nolocal", b"theirs", qos=1)
        assert (await me.expect_one()).payload == b"theirs"
        assert (await other.expect_one()).payload == b"theirs"
        await me.expect_none()

    run_gmqtt(broker, body)


def test_retain_as_published(broker):
    async def body(gm):
        rap = await gm.connect()
        plain = await gm.connect()
        pub = await gm.connect()
        assert await rap.subscribe("gm/rap", 1, retain_as_published=True) == [1]
        assert await plain.subscribe("gm/rap", 1) == [1]
        await pub.publish("gm/rap", b"kept", qos=1, retain=True)
        await pub.publish("gm/rap", b"live", qos=1, retain=False)
        assert [(m.payload, m.retain) for m in await rap.expect(2)] == [(b"kept", True), (b"live", False)]
        assert [(m.payload, m.retain) for m in await plain.expect(2)] == [(b"kept", False), (b"live", False)]

    run_gmqtt(broker, body)


def test_retain_handling(broker):
    async def body(gm):
        watcher = await gm.connect()
        assert await watcher.subscribe("gm/rh", 1) == [1]
        pub = await gm.connect()
        await pub.publish("gm/rh", b"stored", qos=1, retain=True)
        await watcher.expect_one()

        never = await gm.connect()
        assert await never.subscribe("gm/rh", 1, retain_handling_options=2) == [1]
        await never.expect_none()

        if_new = await gm.connect()
        assert await if_new.subscribe("gm/rh", 1, retain_handling_options=1) == [1]
        m = await if_new.expect_one()
        assert (m.payload, m.retain) == (b"stored", True)
        assert await if_new.subscribe("gm/rh", 1, retain_handling_options=1) == [1]  # not new
        await if_new.expect_none()

        always = await gm.connect()
        for _ in range(2):
            assert await always.subscribe("gm/rh", 1, retain_handling_options=0) == [1]
            m = await always.expect_one()
            assert (m.payload, m.retain) == (b"stored", True)

        # Retain handling only concerns retained messages at subscribe time.
        await pub.publish("gm/rh", b"live", qos=1)
        for c in (never, if_new, always):
            m = await c.expect_one()
            assert (m.payload, m.retain) == (b"live", False)

    run_gmqtt(broker, body)


def test_retained_delivery_and_deletion(broker):
    async def body(gm):
        watcher = await gm.connect()
        assert await watcher.subscribe("gm/ret/#", 2) == [2]
        pub = await gm.connect()
        await pub.publish("gm/ret/a", b"first", qos=1, retain=True)
        await pub.publish("gm/ret/a", b"second", qos=2, retain=True)  # replaces "first"
        await pub.publish("gm/ret/b", b"other", qos=0, retain=True)
        assert [m.payload for m in await watcher.expect(3)] == [b"first", b"second", b"other"]

        late = await gm.connect()
        assert await late.subscribe("gm/ret/#", 2) == [2]
        got = sorted(await late.expect(2), key=lambda m: m.topic)
        assert [(m.topic, m.payload, m.qos, m.retain) for m in got] == [
            ("gm/ret/a", b"second", 2, True),
            ("gm/ret/b", b"other", 0, True),
        ]
        await late.expect_none()

        # An empty retained payload deletes; it is still delivered to current subscribers.
        await pub.publish("gm/ret/a", b"", qos=1, retain=True)
        m = await watcher.expect_one()
        assert (m.topic, m.payload) == ("gm/ret/a", b"")
        after = await gm.connect()
        assert await after.subscribe("gm/ret/#", 1) == [1]
        m = await after.expect_one()
        assert (m.topic, m.payload, m.retain) == ("gm/ret/b", b"other", True)
        await after.expect_none()

    run_gmqtt(broker, body)


def test_will_on_abrupt_close(broker):
    async def body(gm):
        watcher = await gm.connect()
        assert await watcher.subscribe("gm/will/#", 2) == [2]
        will = will_message(
            "gm/will/crash", b"gone", qos=1,
            content_type="text/plain", user_property=[("device", "pump-7"), ("cause", "power")],
        )
        dying = await gm.connect(will=will)
        await watcher.expect_none(0.2)  # nothing while it is connected
        await dying.drop()
        m = await watcher.expect_one()
        assert (m.topic, m.payload, m.qos, m.retain) == ("gm/will/crash", b"gone", 1, False)
        assert m.props["content_type"] == ["text/plain"]
        assert m.props["user_property"] == [("device", "pump-7"), ("cause", "power")]

        # A normal DISCONNECT (reason 0x00) discards the will ...
        polite = await gm.connect(will=will_message("gm/will/polite", b"no", qos=1))
        await polite.disconnect()
        await watcher.expect_none(0.5)
        # ... and DISCONNECT with 0x04 (Disconnect with Will Message) publishes it.
        leaving = await gm.connect(will=will_message("gm/will/asked", b"yes", qos=1))
        await leaving.disconnect(reason_code=0x04)
        m = await watcher.expect_one()
        assert (m.topic, m.payload, m.qos) == ("gm/will/asked", b"yes", 1)

    run_gmqtt(broker, body)


def test_will_delay_interval(broker):
    async def body(gm):
        watcher = await gm.connect()
        assert await watcher.subscribe("gm/will/delayed", 1) == [1]
        will = will_message("gm/will/delayed", b"late", qos=1, will_delay_interval=1)
        dying = await gm.connect(client_id="gm-slow-will", clean_start=False, will=will,
                                 session_expiry_interval=60)
        dropped_at = time.monotonic()
        await dying.drop()
        await watcher.expect_none(0.6)  # not before the delay ...
        m = await watcher.expect_one(timeout=2.5)  # ... but once it has passed
        waited = time.monotonic() - dropped_at
        assert m.payload == b"late"
        assert 0.9 <= waited <= 2.5, f"will published {waited:.2f} s after the close"

    run_gmqtt(broker, body)


def test_session_resume_delivers_queued_qos1(broker):
    async def body(gm):
        first = gm.new(client_id="gm-resume", clean_start=False, session_expiry_interval=60)
        assert await first.connect() is False
        assert await first.subscribe("gm/queue", 1) == [1]
        await first.disconnect()

        pub = await gm.connect()
        sent = [f"q{i}".encode() for i in range(5)]
        for p in sent:
            await pub.publish("gm/queue", p, qos=1)

        again = gm.new(client_id="gm-resume", clean_start=False, session_expiry_interval=60)
        assert await again.connect() is True
        got = await again.expect(5)
        assert [(m.topic, m.payload, m.qos) for m in got] == [("gm/queue", p, 1) for p in sent]
        await again.expect_none()
        # The subscription itself came back with the session.
        await pub.publish("gm/queue", b"live", qos=1)
        assert (await again.expect_one()).payload == b"live"
        await again.disconnect()

        # Clean Start discards the stored session.
        fresh = gm.new(client_id="gm-resume", clean_start=True)
        assert await fresh.connect() is False

    run_gmqtt(broker, body)


def test_session_expires_after_its_interval(broker):
    async def body(gm):
        short = gm.new(client_id="gm-expiring", clean_start=False, session_expiry_interval=1)
        assert await short.connect() is False
        assert await short.subscribe("gm/expiring", 1) == [1]
        await short.disconnect()
        await asyncio.sleep(1.5)
        back = gm.new(client_id="gm-expiring", clean_start=False, session_expiry_interval=1)
        assert await back.connect() is False
        pub = await gm.connect()
        await pub.publish("gm/expiring", b"x", qos=1)
        await back.expect_none()  # the subscription went with the session

    run_gmqtt(broker, body)


def test_topic_alias_from_client(broker):
    async def body(gm):
        sub = await gm.connect()
        pub = await gm.connect()
        assert pub.connack_props["topic_alias_maximum"] == [16]
        assert await sub.subscribe("gm/alias/#", 1) == [1]
        # gmqtt sends what it is given: a topic with an alias sets the alias, an empty topic
        # with the alias uses it.
        await pub.publish("gm/alias/a/rather/long/topic/name", b"1", qos=1, topic_alias=1)
        await pub.publish("", b"2", qos=1, topic_alias=1)
        await pub.publish("gm/alias/other", b"3", qos=1, topic_alias=1)  # remapped
        await pub.publish("", b"4", qos=1, topic_alias=1)
        await pub.publish("", b"5", qos=0, topic_alias=1)
        got = await sub.expect(5)
        assert [(m.topic, m.payload) for m in got] == [
            ("gm/alias/a/rather/long/topic/name", b"1"),
            ("gm/alias/a/rather/long/topic/name", b"2"),
            ("gm/alias/other", b"3"),
            ("gm/alias/other", b"4"),
            ("gm/alias/other", b"5"),
        ]
        # The subscriber allowed no aliases (no Topic Alias Maximum in its CONNECT).
        assert all("topic_alias" not in m.props for m in got)

    run_gmqtt(broker, body)


def test_topic_alias_above_maximum_disconnects_with_0x94(broker):
    async def body(gm):
        pub = await gm.connect()
        pub.publish_nowait("gm/alias/x", b"x", qos=1, topic_alias=17)  # maximum is 16
        reported = await pub.wait_disconnect()
        assert reported[:1] == b"\x94", f"DISCONNECT body {reported!r}, expected reason 0x94 (Topic Alias invalid)"

    run_gmqtt(broker, body)


def test_broker_assigned_topic_aliases_resolved_by_gmqtt(broker):
    async def body(gm):
        sub = gm.new(topic_alias_maximum=2)
        # Internal, observation only: count PUBLISH packets that arrive with an empty topic
        # (an alias reused by the broker) before gmqtt resolves them. gmqtt looks its packet
        # handlers up by attribute, so an instance attribute set before connecting is used.
        handler = sub.gmqtt._package_handler
        original = handler._handle_publish_packet
        wire_topics = []

        def spy(cmd, raw_packet):
            wire_topics.append(int.from_bytes(raw_packet[:2], "big"))
            return original(cmd, raw_packet)

        handler._handle_publish_packet = spy
        await sub.connect()
        pub = await gm.connect()
        assert await sub.subscribe("gm/oa/#", 1) == [1]
        sequence = ["a", "b", "a", "a", "c", "b", "a", "c", "c", "b", "a", "b"]
        sent = [(f"gm/oa/{t}", f"{t}{i}".encode()) for i, t in enumerate(sequence)]
        for topic, payload in sent:
            await pub.publish(topic, payload, qos=1)
        got = await sub.expect(len(sent))
        # One publisher, one subscriber: the order is kept, and every topic resolved right.
        assert [(m.topic, m.payload) for m in got] == sent
        aliases = [m.props.get("topic_alias", [None])[0] for m in got]
        assert all(a in (1, 2) for a in aliases), f"aliases {aliases}, the client allows 1..2"
        assert len(wire_topics) == len(sent)
        assert wire_topics.count(0) > 0, "the broker never reused an alias (no empty topic on the wire)"
        await sub.expect_none()

    run_gmqtt(broker, body)


def test_shared_subscription_splits_messages(broker):
    async def body(gm):
        a = await gm.connect()
        b = await gm.connect()
        plain = await gm.connect()
        assert await a.subscribe("$share/g/gm/shared", 1) == [1]
        assert await b.subscribe("$share/g/gm/shared", 1) == [1]
        assert await plain.subscribe("gm/shared", 1) == [1]
        pub = await gm.connect()
        sent = [f"s{i}".encode() for i in range(10)]
        for p in sent:
            await pub.publish("gm/shared", p, qos=1)
        assert [m.payload for m in await plain.expect(10)] == sent
        got = {a: [], b: []}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while sum(map(len, got.values())) < 10:
            assert loop.time() < deadline, f"shared members got {[len(v) for v in got.values()]} of 10"
            for c in (a, b):
                while not c.messages.empty():
                    got[c].append(c.messages.get_nowait())
            await asyncio.sleep(0.01)
        await a.expect_none(0.2)
        await b.expect_none(0.01)
        pa = [m.payload for m in got[a]]
        pb = [m.payload for m in got[b]]
        assert sorted(pa + pb) == sorted(sent)  # each message to exactly one member
        assert (len(pa), len(pb)) == (5, 5)  # round_robin is the default strategy
        assert pa == [p for p in sent if p in pa] and pb == [p for p in sent if p in pb]
        assert {(m.topic, m.qos) for m in got[a] + got[b]} == {("gm/shared", 1)}

    run_gmqtt(broker, body)


def test_session_takeover_reported_as_0x8e(broker):
    async def body(gm):
        first = await gm.connect(client_id="gm-twin")
        assert await first.subscribe("gm/twin", 1) == [1]
        second = await gm.connect(client_id="gm-twin")
        # gmqtt hands on_disconnect the DISCONNECT packet body: reason code, then properties.
        reported = await first.wait_disconnect()
        assert reported[:1] == b"\x8e", f"DISCONNECT body {reported!r}, expected reason 0x8E"
        # Then the broker closes the socket, which gmqtt reports as an empty body.
        assert await first.wait_disconnect() == b""
        assert not first.gmqtt.is_connected
        assert second.disconnect_log == []
        assert await second.subscribe("gm/twin", 1) == [1]
        await second.publish("gm/twin", b"still here", qos=1)
        assert (await second.expect_one()).payload == b"still here"
        await first.expect_none(0.05)

    run_gmqtt(broker, body)
