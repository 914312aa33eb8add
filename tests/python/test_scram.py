"""MQTT 5 enhanced authentication (SCRAM-SHA-512, SCRAM-SHA-256) against an independent client.

paho-mqtt has no AUTH flow, so the packets are framed here over a raw socket, with paho's own
MQTT 5 property encoder/decoder (`paho.mqtt.properties`) for the Authentication Method and Data;
the SCRAM client (RFC 5802) is written with Python's hashlib/hmac, so nothing on the client side
shares code with picomq. The password file is written here in Mosquitto's $7$ format.

Every socket read has a timeout; every loop is bounded.
"""

import base64
import hashlib
import hmac
import os
import socket

from conftest import WAIT
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

METHOD = "SCRAM-SHA-512"
CONNACK, AUTH, DISCONNECT, PINGREQ, PINGRESP = 2, 15, 14, 12, 13


def passwd_line(user, password, iterations=101):
    salt = os.urandom(12)
    dk = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"{user}:$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}\n"


def scram_sha256_line(user, password, iterations=4096):
    """A $scram-sha-256$ entry (StoredKey, ServerKey), as `picomq passwd -S` writes it."""
    salt = os.urandom(12)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"{user}:$scram-sha-256${iterations}${b64(salt)}${b64(stored)}${b64(server)}\n"


def scram_broker(broker_factory, tmp_path):
    pw = tmp_path / "passwd"
    pw.write_text(
        passwd_line("alice", "wonderland")
        + passwd_line("bob", "builder", 1000)
        + scram_sha256_line("carol", "pencil")
    )
    methods = '["SCRAM-SHA-512", "SCRAM-SHA-256"]'
    return broker_factory(
        f'[auth]\npassword_file = "{pw}"\nallow_anonymous = true\nmethods = {methods}\n'
    )


def varint(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def auth_props(packet_type, data, method=METHOD):
    p = Properties(packet_type)
    p.AuthenticationMethod = method
    p.AuthenticationData = data
    return p.pack()


def connect_packet(client_id, data, method=METHOD):
    body = utf8("MQTT") + bytes([5, 0x02]) + (30).to_bytes(2, "big")
    body += auth_props(PacketTypes.CONNECT, data, method) + utf8(client_id)
    return b"\x10" + varint(len(body)) + body


def auth_packet(reason, data, method=METHOD):
    body = bytes([reason]) + auth_props(PacketTypes.AUTH, data, method)
    return b"\xf0" + varint(len(body)) + body


class Raw:
    def __init__(self, addr):
        self.sock = socket.create_connection(addr, timeout=WAIT)
        self.buf = b""

    def _need(self, n):
        for _ in range(1000):
            if len(self.buf) >= n:
                return True
            chunk = self.sock.recv(4096)
            if not chunk:
                return False
            self.buf += chunk
        return False

    def packet(self):
        """(type, body) of the next packet, or None when the broker closed the connection."""
        if not self._need(2):
            return None
        length, mult, i = 0, 1, 1
        for _ in range(4):
            if not self._need(i + 1):
                return None
            b = self.buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if not self._need(i + length):
            return None
        ptype, body = self.buf[0] >> 4, self.buf[i : i + length]
        self.buf = self.buf[i + length :]
        return ptype, body

    def send(self, data):
        self.sock.sendall(data)


def props_of(packet_type, raw):
    props, _ = Properties(packet_type).unpack(raw)
    return props


def expect_auth(c, reason, method=METHOD):
    ptype, body = c.packet()
    assert ptype == AUTH, (ptype, body)
    assert body[0] == reason
    props = props_of(PacketTypes.AUTH, body[1:])
    assert props.AuthenticationMethod == method
    return props.AuthenticationData.decode()


class ScramClient:
    """RFC 5802 client side (SHA-512 or SHA-256), written from the RFC."""

    def __init__(self, user, password, hash_name="sha512"):
        self.user, self.password, self.h = user, password, hash_name
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.bare = f"n={user},r={self.nonce}"

    def first(self):
        return ("n,," + self.bare).encode()

    def final(self, server_first):
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        assert attrs["r"].startswith(self.nonce) and len(attrs["r"]) > len(self.nonce)
        h = self.h
        salted = hashlib.pbkdf2_hmac(
            h, self.password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"])
        )
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{self.bare},{server_first},{without_proof}".encode()
        client_key = hmac.new(salted, b"Client Key", h).digest()
        stored_key = hashlib.new(h, client_key).digest()
        signature = hmac.new(stored_key, auth_message, h).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", h).digest()
        self.expected = "v=" + base64.b64encode(hmac.new(server_key, auth_message, h).digest()).decode()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


def scram_login(addr, client_id, user, password):
    c = Raw(addr)
    scram = ScramClient(user, password)
    c.send(connect_packet(client_id, scram.first()))
    server_first = expect_auth(c, 0x18)
    c.send(auth_packet(0x18, scram.final(server_first)))
    ptype, body = c.packet()
    assert ptype == CONNACK
    return c, scram, body[1], props_of(PacketTypes.CONNACK, body[2:])


def test_scram_sha_512_login_and_reauthentication(broker_factory, tmp_path):
    b = scram_broker(broker_factory, tmp_path)
    c, scram, reason, props = scram_login(tuple(b), "py-scram", "alice", "wonderland")
    assert reason == 0x00
    assert props.AuthenticationMethod == METHOD
    assert props.AuthenticationData.decode() == scram.expected
    c.send(b"\xc0\x00")
    assert c.packet()[0] == PINGRESP
    # Re-authentication on the live connection: AUTH 0x19 -> 0x18 -> AUTH 0x00.
    again = ScramClient("alice", "wonderland")
    c.send(auth_packet(0x19, again.first()))
    server_first = expect_auth(c, 0x18)
    c.send(auth_packet(0x18, again.final(server_first)))
    assert expect_auth(c, 0x00) == again.expected
    # A failing re-authentication ends the connection with DISCONNECT 0x87.
    wrong = ScramClient("alice", "nope")
    c.send(auth_packet(0x19, wrong.first()))
    c.send(auth_packet(0x18, wrong.final(expect_auth(c, 0x18))))
    ptype, body = c.packet()
    assert (ptype, body[0]) == (DISCONNECT, 0x87)
    assert c.packet() is None
    # Another user with another iteration count.
    _, _, reason, _ = scram_login(tuple(b), "py-scram2", "bob", "builder")
    assert reason == 0x00


def test_scram_wrong_password_0x86_and_unknown_method_0x8c(broker_factory, tmp_path):
    b = scram_broker(broker_factory, tmp_path)
    c, _, reason, _ = scram_login(tuple(b), "py-bad", "alice", "looking-glass")
    assert reason == 0x86
    assert c.packet() is None
    c = Raw(tuple(b))
    body = utf8("MQTT") + bytes([5, 0x02]) + (30).to_bytes(2, "big")
    p = Properties(PacketTypes.CONNECT)
    p.AuthenticationMethod = "GS2-KRB5"
    body += p.pack() + utf8("py-krb")
    c.send(b"\x10" + varint(len(body)) + body)
    ptype, body = c.packet()
    assert (ptype, body[1]) == (CONNACK, 0x8C)
    assert c.packet() is None


def test_scram_sha_256_login_and_reauthentication(broker_factory, tmp_path):
    b = scram_broker(broker_factory, tmp_path)
    m = "SCRAM-SHA-256"
    c = Raw(tuple(b))
    scram = ScramClient("carol", "pencil", "sha256")
    c.send(connect_packet("py-256", scram.first(), m))
    c.send(auth_packet(0x18, scram.final(expect_auth(c, 0x18, m)), m))
    ptype, body = c.packet()
    assert (ptype, body[1]) == (CONNACK, 0x00)
    props = props_of(PacketTypes.CONNACK, body[2:])
    assert props.AuthenticationMethod == m
    assert props.AuthenticationData.decode() == scram.expected
    again = ScramClient("carol", "pencil", "sha256")
    c.send(auth_packet(0x19, again.first(), m))
    c.send(auth_packet(0x18, again.final(expect_auth(c, 0x18, m)), m))
    assert expect_auth(c, 0x00, m) == again.expected
    # alice has a $7$ entry only: no SCRAM-SHA-256 for her.
    c2 = Raw(tuple(b))
    wrong_kind = ScramClient("alice", "wonderland", "sha256")
    c2.send(connect_packet("py-256b", wrong_kind.first(), m))
    c2.send(auth_packet(0x18, wrong_kind.final(expect_auth(c2, 0x18, m)), m))
    ptype, body = c2.packet()
    assert (ptype, body[1]) == (CONNACK, 0x86)
