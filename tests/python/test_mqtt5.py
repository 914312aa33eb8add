"""MQTT 5 features: properties passed through, subscription options and identifiers, message
expiry, topic aliases, reason codes."""

import time

from conftest import V5, V311, props, witness


def _pair(broker, connect, topic, qos=1, **sub_opts):
    sub = connect(broker, V5)
    pub = connect(broker, V5)
    assert sub.subscribe(topic, qos, **sub_opts) == [qos]
    return sub, pub


def test_user_properties_forwarded_in_order(broker, connect):
    sub, pub = _pair(broker, connect, "v5/user")
    user = [("b", "2"), ("a", "1"), ("b", "3"), ("ünïcode", "välue"), ("empty", "")]
    pub.publish("v5/user", b"x", qos=1, properties=props(UserProperty=user))
    m = sub.expect_one()
    assert m.properties.UserProperty == user


def test_response_topic_and_correlation_data_passed_through(broker, connect):
    sub, pub = _pair(broker, connect, "v5/request")
    corr = bytes(range(256))
    pub.publish(
        "v5/request",
        b"ping",
        qos=1,
        properties=props(ResponseTopic="v5/reply/client-1", CorrelationData=corr),
    )
    m = sub.expect_one()
    assert m.properties.ResponseTopic == "v5/reply/client-1"
    assert m.properties.CorrelationData == corr


def test_content_type_and_payload_format_indicator_forwarded(broker, connect):
    sub, pub = _pair(broker, connect, "v5/ct")
    text = "température 21.5 °C".encode()
    pub.publish("v5/ct", text, qos=1, properties=props(ContentType="text/plain; charset=utf-8", PayloadFormatIndicator=1))
    pub.publish("v5/ct", b"\x00\xff", qos=1, properties=props(ContentType="application/octet-stream"))
    first, second = sub.expect(2)
    assert first.payload == text
    assert first.properties.ContentType == "text/plain; charset=utf-8"
    assert first.properties.PayloadFormatIndicator == 1
    assert second.payload == b"\x00\xff"
    assert second.properties.ContentType == "application/octet-stream"
    assert not hasattr(second.properties, "PayloadFormatIndicator")


def test_retained_message_expires(broker, connect):
    pub = connect(broker, V5)
    pub.publish("v5/exp/short", b"gone soon", qos=1, retain=True, properties=props(MessageExpiryInterval=1))
    pub.publish("v5/exp/long", b"still here", qos=1, retain=True, properties=props(MessageExpiryInterval=60))
    time.sleep(1.5)
    sub = connect(broker, V5)
    assert sub.subscribe("v5/exp/#", 1) == [1]
    m = sub.expect_one()
    assert (m.topic, m.payload, m.retain) == ("v5/exp/long", b"still here", True)
    assert m.properties.MessageExpiryInterval in (58, 59), m.properties.MessageExpiryInterval
    sub.expect_none()


def test_live_message_carries_message_expiry_interval(broker, connect):
    sub, pub = _pair(broker, connect, "v5/exp/live")
    pub.publish("v5/exp/live", b"x", qos=1, properties=props(MessageExpiryInterval=30))
    pub.publish("v5/exp/live", b"y", qos=1)
    with_expiry, without = sub.expect(2)
    assert with_expiry.properties.MessageExpiryInterval in (29, 30)
    assert not hasattr(without.properties, "MessageExpiryInterval")


def test_subscription_identifier_delivered(broker, connect):
    sub = connect(broker, V5)
    pub = connect(broker, V5)
    assert sub.subscribe("v5/sid/+", 1, sub_id=42) == [1]
    assert sub.subscribe("v5/sid/only", 1, sub_id=268435455) == [1]
    assert sub.subscribe("v5/plain/#", 1) == [1]
    pub.publish("v5/sid/a", b"a", qos=1)
    m = sub.expect_one()
    assert m.properties.SubscriptionIdentifier == [42]
    pub.publish("v5/plain/x", b"p", qos=1)
    m = sub.expect_one()
    assert m.payload == b"p"
    assert not hasattr(m.properties, "SubscriptionIdentifier")
    # Both subscriptions match: one copy carrying both identifiers (in any order).
    pub.publish("v5/sid/only", b"both", qos=1)
    m = sub.expect_one()
    assert sorted(m.properties.SubscriptionIdentifier) == [42, 268435455]
    sub.expect_none()


def test_no_local_suppresses_own_messages(broker, connect):
    me = connect(broker, V5)
    other = connect(broker, V5)
    assert me.subscribe("v5/nolocal", 1, no_local=True) == [1]
    assert other.subscribe("v5/nolocal", 1) == [1]
    me.publish("v5/nolocal", b"mine", qos=1)
    assert other.expect_one().payload == b"mine"
    other.publish("v5/nolocal", b"theirs", qos=1)
    assert me.expect_one().payload == b"theirs"
    assert other.expect_one().payload == b"theirs"
    me.expect_none()


def test_retain_as_published(broker, connect):
    rap = connect(broker, V5)
    plain = connect(broker, V5)
    pub = connect(broker, V5)
    assert rap.subscribe("v5/rap", 1, rap=True) == [1]
    assert plain.subscribe("v5/rap", 1) == [1]
    pub.publish("v5/rap", b"kept", qos=1, retain=True)
    pub.publish("v5/rap/none", b"-", qos=1)  # not subscribed, ignored
    pub.publish("v5/rap", b"not kept", qos=1, retain=False)
    assert [(m.payload, m.retain) for m in rap.expect(2)] == [(b"kept", True), (b"not kept", False)]
    assert [(m.payload, m.retain) for m in plain.expect(2)] == [(b"kept", False), (b"not kept", False)]


def test_retain_handling(broker, connect):
    pub = connect(broker, V5)
    w = witness(connect, broker, "v5/rh")
    pub.publish("v5/rh", b"stored", qos=1, retain=True)
    w.expect_one()

    never = connect(broker, V5)
    assert never.subscribe("v5/rh", 1, retain_handling=2) == [1]
    never.expect_none()

    if_new = connect(broker, V5)
    assert if_new.subscribe("v5/rh", 1, retain_handling=1) == [1]
    m = if_new.expect_one()
    assert (m.payload, m.retain) == (b"stored", True)
    assert if_new.subscribe("v5/rh", 1, retain_handling=1) == [1]  # exists already: nothing
    if_new.expect_none()

    # Live messages still flow to the retain-handling-2 subscriber.
    pub.publish("v5/rh", b"live", qos=1)
    assert never.expect_one().payload == b"live"
    assert if_new.expect_one().payload == b"live"


def test_topic_alias_from_client(broker, connect):
    sub, pub = _pair(broker, connect, "v5/alias/#")
    pub.publish("v5/alias/long/topic/name", b"1", qos=1, properties=props(TopicAlias=3))
    pub.publish("", b"2", qos=1, properties=props(TopicAlias=3))
    pub.publish("v5/alias/other", b"3", qos=1, properties=props(TopicAlias=3))  # remap
    pub.publish("", b"4", qos=1, properties=props(TopicAlias=3))
    got = sub.expect(4)
    assert sorted((m.topic, m.payload) for m in got) == [
        ("v5/alias/long/topic/name", b"1"),
        ("v5/alias/long/topic/name", b"2"),
        ("v5/alias/other", b"3"),
        ("v5/alias/other", b"4"),
    ]
    assert all(not hasattr(m.properties, "TopicAlias") for m in got)
    assert not pub.disconnected.is_set()


def test_topic_alias_above_maximum_disconnects_with_0x94(broker, connect):
    pub = connect(broker, V5)
    assert pub.connack[2].TopicAliasMaximum == 16
    pub.publish("v5/alias/x", b"x", qos=1, properties=props(TopicAlias=17), wait=False)
    assert pub.wait_disconnected() == 0x94


def test_unknown_topic_alias_disconnects_with_protocol_error(broker, connect):
    pub = connect(broker, V5)
    pub.publish("", b"x", qos=1, properties=props(TopicAlias=5), wait=False)
    assert pub.wait_disconnected() == 0x82


def test_suback_reason_codes_for_invalid_filters(broker, connect):
    c = connect(broker, V5)
    c.allow_invalid_filters()
    filters = [
        ("ok/+", 1),
        ("bad/#/more", 1),
        ("also+bad", 0),
        ("fine/#", 2),
        ("$share/g/t", 1),
        ("$share/g", 1),  # no filter after the share name
        ("$share/g+/t", 1),  # wildcard in the share name
    ]
    assert c.subscribe(filters) == [0x01, 0x8F, 0x8F, 0x02, 0x01, 0x8F, 0x8F]
    assert not c.disconnected.is_set()


def test_v311_suback_failure_for_invalid_filter(broker, connect):
    c = connect(broker, V311)
    c.allow_invalid_filters()
    assert c.subscribe([("ok/+", 1), ("bad/#/more", 1)]) == [0x01, 0x80]


def test_payload_format_invalid_utf8_gets_puback_0x99(broker, connect):
    sub, pub = _pair(broker, connect, "v5/pfi")
    rc = pub.publish("v5/pfi", b"\xff\xfe not utf-8", qos=1, properties=props(PayloadFormatIndicator=1))
    assert rc == 0x99
    sub.expect_none()
    # The connection stays usable and a valid UTF-8 payload goes through.
    assert pub.publish("v5/pfi", "ok ✓".encode(), qos=1, properties=props(PayloadFormatIndicator=1)) == 0x00
    assert sub.expect_one().payload == "ok ✓".encode()



def test_retained_message_keeps_properties_and_gets_subscription_identifier(broker, connect):
    pub = connect(broker, V5)
    w = witness(connect, broker, "v5/ret/#")
    user = [("site", "north"), ("site", "south")]
    pub.publish(
        "v5/ret/props",
        "état".encode(),
        qos=1,
        retain=True,
        properties=props(
            UserProperty=user,
            ContentType="text/plain",
            ResponseTopic="v5/ret/reply",
            CorrelationData=b"\x01\x02",
            PayloadFormatIndicator=1,
        ),
    )
    w.expect_one()
    sub = connect(broker, V5)
    assert sub.subscribe("v5/ret/#", 1, sub_id=7) == [1]
    m = sub.expect_one()
    assert (m.topic, m.payload, m.retain) == ("v5/ret/props", "état".encode(), True)
    p = m.properties
    assert p.UserProperty == user
    assert (p.ContentType, p.ResponseTopic, p.CorrelationData, p.PayloadFormatIndicator) == (
        "text/plain",
        "v5/ret/reply",
        b"\x01\x02",
        1,
    )
    assert p.SubscriptionIdentifier == [7]


def test_topic_aliases_do_not_survive_reconnect(broker, connect):
    first = connect(broker, V5, client_id="aliaser")
    first.publish("v5/alias/t", b"set", qos=1, properties=props(TopicAlias=1))
    first.disconnect()
    second = connect(broker, V5, client_id="aliaser")
    second.publish("", b"stale alias", qos=1, properties=props(TopicAlias=1), wait=False)
    assert second.wait_disconnected() == 0x82


def test_empty_topic_without_alias_is_protocol_error(broker, connect):
    c = connect(broker, V5)
    c.publish("", b"where to?", qos=1, wait=False)
    assert c.wait_disconnected() == 0x82


def test_reason_string_only_when_problem_information_requested(broker, connect):
    chatty = connect(broker, V5)
    quiet = connect(broker, V5, RequestProblemInformation=0)
    for c in (chatty, quiet):
        c.publish("v5/x", b"x", qos=0, properties=props(TopicAlias=17), wait=False)
        assert c.wait_disconnected() == 0x94
    assert isinstance(chatty.disconnect_props[0].ReasonString, str)
    assert len(chatty.disconnect_props[0].ReasonString) > 0
    assert not hasattr(quiet.disconnect_props[0], "ReasonString")


def test_outbound_topic_aliases_resolve_to_the_right_topics(broker, connect):
    sub = connect(broker, V5, TopicAliasMaximum=2)
    pub = connect(broker, V5)
    assert sub.subscribe("v5/oa/#", 1) == [1]
    sequence = ["a", "b", "a", "a", "c", "b", "a", "c", "c", "b", "a", "b"]
    for i, t in enumerate(sequence):
        pub.publish(f"v5/oa/{t}", f"{t}{i}".encode(), qos=1)
    aliases = {}
    resolved = []
    reused = 0
    for m in sub.expect(len(sequence)):
        alias = getattr(m.properties, "TopicAlias", None)
        if alias is not None:
            assert 1 <= alias <= 2, f"alias {alias} above the client's maximum 2"
        if m.topic:
            if alias is not None:
                aliases[alias] = m.topic
            resolved.append((m.topic, m.payload))
        else:
            assert alias in aliases, f"empty topic with unknown alias {alias}"
            reused += 1
            resolved.append((aliases[alias], m.payload))
    assert sorted(resolved) == sorted((f"v5/oa/{t}", f"{t}{i}".encode()) for i, t in enumerate(sequence))
    assert reused > 0, "the broker never reused an alias"
    # Per topic, order is kept.
    for t in "abc":
        assert [p for topic, p in resolved if topic == f"v5/oa/{t}"] == [
            f"{t}{i}".encode() for i, x in enumerate(sequence) if x == t
        ]


FEATURES_OFF = """
[mqtt]
wildcard_subscriptions = false
subscription_identifiers = false
shared_subscriptions = false
"""


def test_v5_features_switched_off_in_config(broker_factory, connect):
    b = broker_factory(FEATURES_OFF)
    c = connect(b, V5)
    p = c.connack[2]
    assert (p.WildcardSubscriptionAvailable, p.SubscriptionIdentifierAvailable, p.SharedSubscriptionAvailable) == (0, 0, 0)
    assert c.subscribe([("f/+", 1), ("f/#", 1), ("$share/g/f", 1), ("f/plain", 1)]) == [0xA2, 0xA2, 0x9E, 0x01]
    assert c.subscribe("f/with-id", 1, sub_id=5) == [0xA1]
    assert not c.disconnected.is_set()


def test_v311_features_switched_off_in_config(broker_factory, connect):
    b = broker_factory(FEATURES_OFF)
    c = connect(b, V311)
    assert c.subscribe([("f/+", 1), ("$share/g/f", 1), ("f/plain", 1)]) == [0x80, 0x80, 0x01]
