"""Retained messages: delivery on subscribe, the retain flag, replacement and clearing."""

import pytest

from conftest import ALL_VERSIONS, VERSIONS, witness


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_retained_delivered_on_subscribe_with_retain_flag(broker, connect, version):
    pub = connect(broker, version)
    w = witness(connect, broker, "ret/#")
    assert pub.publish("ret/a", b"first", qos=1, retain=True) == 0x00
    assert pub.publish("ret/a", b"second", qos=1, retain=True) == 0x00  # replaces "first"
    assert pub.publish("ret/b", b"other", qos=0, retain=True) is None
    w.expect(3)

    sub = connect(broker, version)
    assert sub.subscribe("ret/#", 1) == [1]
    got = sub.expect(2)
    assert sorted((m.topic, m.payload, m.qos, m.retain) for m in got) == [
        ("ret/a", b"second", 1, True),
        ("ret/b", b"other", 0, True),
    ]
    sub.expect_none()


@pytest.mark.parametrize("version", VERSIONS)
def test_live_delivery_of_retained_publish_has_retain_false(broker, connect, version):
    sub = connect(broker, version)
    pub = connect(broker, version)
    assert sub.subscribe("ret/live", 1) == [1]
    pub.publish("ret/live", b"now", qos=1, retain=True)
    m = sub.expect_one()
    assert (m.payload, m.retain) == (b"now", False)
    # ...and it was stored all the same.
    late = connect(broker, version)
    assert late.subscribe("ret/live", 1) == [1]
    m = late.expect_one()
    assert (m.payload, m.retain) == (b"now", True)


@pytest.mark.parametrize("version", VERSIONS)
def test_empty_retained_payload_clears_retained_message(broker, connect, version):
    pub = connect(broker, version)
    w = witness(connect, broker, "ret/#")
    pub.publish("ret/clear", b"stale", qos=1, retain=True)
    pub.publish("ret/keep", b"kept", qos=1, retain=True)
    pub.publish("ret/clear", b"", qos=1, retain=True)
    w.expect(3)

    sub = connect(broker, version)
    assert sub.subscribe("ret/+", 1) == [1]
    m = sub.expect_one()
    assert (m.topic, m.payload, m.retain) == ("ret/keep", b"kept", True)
    sub.expect_none()


@pytest.mark.parametrize("version", VERSIONS)
def test_resubscribe_sends_retained_again(broker, connect, version):
    pub = connect(broker, version)
    w = witness(connect, broker, "ret/again")
    pub.publish("ret/again", b"r", qos=1, retain=True)
    w.expect_one()
    sub = connect(broker, version)
    assert sub.subscribe("ret/again", 1) == [1]
    assert sub.expect_one().retain is True
    # Retain Handling 0 (and 3.1.1): a repeated SUBSCRIBE delivers the retained message again.
    assert sub.subscribe("ret/again", 0) == [0]
    m = sub.expect_one()
    assert (m.payload, m.qos, m.retain) == (b"r", 0, True)
