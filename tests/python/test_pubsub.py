"""Publish/subscribe: QoS downgrade, acknowledgements, ordering, wildcards, unsubscribe."""

import pytest

from conftest import ALL_VERSIONS, V5, VERSIONS


@pytest.mark.parametrize("sub_qos", [0, 1, 2])
@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_delivered_qos_is_min_of_publish_and_subscription(broker, connect, version, sub_qos):
    sub = connect(broker, version)
    pub = connect(broker, version)
    assert sub.subscribe("qos/t", sub_qos) == [sub_qos]
    for pub_qos in (0, 1, 2):
        rc = pub.publish("qos/t", f"pub{pub_qos}".encode(), qos=pub_qos)
        # on_publish fired: for QoS 1 the PUBACK, for QoS 2 the PUBCOMP arrived (success).
        assert rc == (None if pub_qos == 0 else 0x00)
        m = sub.expect_one()
        assert (m.topic, m.payload, m.qos, m.retain) == ("qos/t", f"pub{pub_qos}".encode(), min(pub_qos, sub_qos), False)
    sub.expect_none()


@pytest.mark.parametrize("qos", [1, 2])
@pytest.mark.parametrize("version", VERSIONS)
def test_two_hundred_messages_arrive_in_order(broker, connect, version, qos):
    sub = connect(broker, version)
    pub = connect(broker, version)
    assert sub.subscribe("order/t", qos) == [qos]
    infos = [pub.publish("order/t", str(i).encode(), qos=qos, wait=False) for i in range(200)]
    assert {info.rc for info in infos} == {0}
    for info in infos:
        rc, _ = pub.pubacks.wait(info.mid)
        assert rc == 0x00
    got = sub.expect(200, timeout=15)
    assert [m.payload for m in got] == [str(i).encode() for i in range(200)]
    assert {m.qos for m in got} == {qos}
    sub.expect_none(0.2)


@pytest.mark.parametrize("version", VERSIONS)
def test_wildcards_and_overlapping_filters(broker, connect, version):
    sub = connect(broker, version)
    pub = connect(broker, version)
    assert sub.subscribe([("wild/+/temp", 0), ("wild/#", 1)]) == [0, 1]
    pub.publish("wild/kitchen/temp", b"21", qos=1)
    pub.publish("wild/kitchen/hum", b"40", qos=1)
    pub.publish("other/kitchen/temp", b"x", qos=1)
    got = sub.expect(2)
    # Overlapping filters give one copy at the highest granted QoS (or one per match; the spec
    # allows both, picomq sends one).
    assert sorted((m.topic, m.payload, m.qos) for m in got) == [
        ("wild/kitchen/hum", b"40", 1),
        ("wild/kitchen/temp", b"21", 1),
    ]
    sub.expect_none()


@pytest.mark.parametrize("version", VERSIONS)
def test_unsubscribe_stops_delivery(broker, connect, version):
    sub = connect(broker, version)
    pub = connect(broker, version)
    assert sub.subscribe([("unsub/a", 1), ("unsub/b", 1)]) == [1, 1]
    pub.publish("unsub/a", b"before", qos=1)
    assert sub.expect_one().payload == b"before"

    rcs = sub.unsubscribe("unsub/a")
    assert rcs == ([0x00] if version == V5 else [])
    pub.publish("unsub/a", b"after", qos=1)
    pub.publish("unsub/b", b"still subscribed", qos=1)
    m = sub.expect_one()
    assert (m.topic, m.payload) == ("unsub/b", b"still subscribed")
    sub.expect_none()


def test_v5_unsubscribe_unknown_filter_reports_no_subscription(broker, connect):
    c = connect(broker, V5)
    assert c.unsubscribe("never/subscribed") == [0x11]


@pytest.mark.parametrize("version", VERSIONS)
def test_publisher_receives_own_message_without_no_local(broker, connect, version):
    c = connect(broker, version)
    assert c.subscribe("echo/t", 1) == [1]
    c.publish("echo/t", b"me", qos=1)
    m = c.expect_one()
    assert (m.topic, m.payload, m.qos) == ("echo/t", b"me", 1)
