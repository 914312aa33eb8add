#!/usr/bin/env bash
# Runs the whole picomq test suite: formatting, lints, Rust unit and integration tests, and the
# Python (paho-mqtt and gmqtt) interoperability tests. Installs what the tests need when it is
# missing: mosquitto + mosquitto-clients + openssl (Debian packages; openssl makes the TLS tests'
# certificates and plays a TLS 1.2-only client) and paho-mqtt + gmqtt + pytest (PyPI).
# A missing tool makes the run fail, never skip.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto_pub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! python3 -c 'import paho.mqtt, gmqtt, pytest' 2>/dev/null; then
  echo "== installing paho-mqtt, gmqtt and pytest"
  python3 -m pip install -q 'paho-mqtt>=2,<3' 'gmqtt>=0.8' pytest
fi

# The 1,000-client test needs about 2,100 descriptors; raise the soft limit when the hard one allows.
ulimit -n 4096 2>/dev/null || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets --no-default-features -- -D warnings
echo "== cargo test"
cargo build --release --bin picomq
cargo test
echo "== cargo test --no-default-features (no TLS)"
cargo test --no-default-features
echo "== python interoperability tests (paho-mqtt, gmqtt)"
PICOMQ_BIN="$PWD/target/release/picomq" python3 -m pytest -q tests/python
