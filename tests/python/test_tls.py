"""paho-mqtt over TLS against picomq's `protocol = "mqtts"` listener.

Certificates are made per module with the `openssl` command (a missing openssl fails the run):
two CAs, a server certificate for 127.0.0.1 signed by the first, and client certificates `alice`
(first CA) and `mallory` (second CA). picomq runs from target/release with a config of its own
(no --listen, which would replace the TLS listener). Loopback only; files go to pytest's tmp dirs.
"""

import os
import ssl
import subprocess
import time
import uuid

import pytest

from conftest import HOST, V5, VERSIONS, WAIT, Broker, _free_port, _port_accepts


def _openssl(directory, *args):
    try:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    except FileNotFoundError as e:  # a failure, never a skip
        raise RuntimeError("openssl is required for the TLS tests: apt-get install openssl") from e


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ["ca", "other-ca"]:
        _openssl(d, "req", "-x509", *ec, "-days", "2", "-subj", f"/CN=picomq py {ca}",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.crt")
    (d / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "extendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    leaves = [("server", "ca", "server.ext"), ("alice", "ca", "client.ext"),
              ("mallory", "other-ca", "client.ext")]
    for serial, (name, ca, ext) in enumerate(leaves, start=100):
        _openssl(d, "req", *ec, "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr")
        _openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey",
                 f"{ca}.key", "-set_serial", str(serial), "-days", "2", "-extfile", ext,
                 "-out", f"{name}.crt")
    return d


class TlsBroker(Broker):
    """picomq with one TLS listener on a free loopback port; `extra` is appended to it."""

    def __init__(self, binary, workdir, pki, extra=""):
        super().__init__(binary, workdir)
        self.pki = pki
        self.extra = extra

    def start(self):
        tag = uuid.uuid4().hex[:8]
        self.log_path = self.workdir / f"picomq-tls-{tag}.log"
        self.port = _free_port()
        conf = self.workdir / f"picomq-tls-{tag}.toml"
        conf.write_text(
            "[server]\nio_threads = 2\nrouter_shards = 1\n"
            f'[[listener]]\nbind = "{HOST}:{self.port}"\nprotocol = "mqtts"\n'
            f'cert_file = "{self.pki / "server.crt"}"\nkey_file = "{self.pki / "server.key"}"\n'
            + self.extra)
        env = dict(os.environ)
        env.pop("RUST_LOG", None)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.binary), "--conf", str(conf), "--log-level", "debug"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"picomq exited with {self.proc.returncode}\n{self.log_tail()}")
            if _port_accepts(self.port):
                return self
            time.sleep(0.02)
        pytest.fail(f"picomq did not accept on port {self.port}\n{self.log_tail()}")


@pytest.fixture
def tls_broker(request, picomq_bin, tmp_path, pki):
    started = []
    request.node._picomq_brokers = started

    def start(extra=""):
        b = TlsBroker(picomq_bin, tmp_path, pki, extra)
        started.append(b)
        return b.start()

    yield start
    for b in started:
        b.stop()
        assert "panicked" not in b.log(), b.log_tail()


def context(pki, cert=None, max_version=None):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki / "ca.crt"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def tls_client(connect, version, ctx):
    c = connect.new(version)
    c.paho.tls_set_context(ctx)
    return c


def refused(c, broker):
    """True when the TLS handshake (or the connection right after it) fails: no CONNACK."""
    try:
        c.connect(broker)
    except (ssl.SSLError, OSError, AssertionError):
        return True
    return False


@pytest.mark.parametrize("version", VERSIONS)
def test_tls_pubsub_round_trip(tls_broker, connect, pki, version):
    broker = tls_broker()
    sub = tls_client(connect, version, context(pki))
    sub.connect(broker)
    assert sub.subscribe("tls/#", 1) == [1]
    pub = tls_client(connect, version, context(pki))
    pub.connect(broker)
    pub.publish("tls/x", b"secret payload", qos=1)
    m = sub.expect_one()
    assert (m.topic, m.payload, m.qos) == ("tls/x", b"secret payload", 1)


def test_mutual_tls_required(tls_broker, connect, pki):
    broker = tls_broker(f'ca_file = "{pki / "ca.crt"}"\nclient_certificate = "required"\n')
    ok = tls_client(connect, V5, context(pki, cert="alice"))
    ok.connect(broker)
    assert refused(tls_client(connect, V5, context(pki, cert="mallory")), broker)
    assert refused(tls_client(connect, V5, context(pki)), broker)
    # The accepted client is unaffected.
    assert ok.subscribe("still/here", 0) == [0]


def test_identity_as_username_with_acl(tls_broker, connect, pki, tmp_path):
    acl = tmp_path / "acl"
    acl.write_text("user alice\ntopic readwrite alice/#\n")
    broker = tls_broker(
        f'ca_file = "{pki / "ca.crt"}"\nuse_identity_as_username = true\n'
        f'acl_file = "{acl}"\n')
    alice = tls_client(connect, V5, context(pki, cert="alice"))
    alice.connect(broker)
    assert alice.subscribe("alice/#", 0) == [0]
    assert alice.subscribe("bob/#", 0) == [0x87]


def test_minimum_tls_1_3_refuses_a_tls_1_2_client(tls_broker, connect, pki):
    broker = tls_broker('tls_min_version = "1.3"\n')
    assert refused(tls_client(connect, V5, context(pki, max_version=ssl.TLSVersion.TLSv1_2)),
                   broker)
    c = tls_client(connect, V5, context(pki))
    c.connect(broker)
    assert c.paho.socket().version() == "TLSv1.3"
