#!/usr/bin/env bash
# Runs the whole picomq test suite: formatting, lints, Rust unit and integration tests, and the
# Python (paho-mqtt and gmqtt) interoperability tests, the aarch64 and mipsel cross builds with an
# MQTT round trip under qemu-user (scripts/cross-build.sh + cross-test.sh), and the amd64 .deb
# installed, run and removed (scripts/package-test.sh; root or passwordless sudo). Installs what the
# tests need when it is missing: mosquitto + mosquitto-clients + openssl (Debian packages; openssl
# makes the TLS tests' certificates and plays a TLS 1.2-only client), paho-mqtt + gmqtt + pytest
# (PyPI), and what the cross scripts install (cross/README.md). A missing tool makes the run fail,
# never skip. PICOMQ_PACKAGE_TEST=0 leaves the package test out (it installs a package and creates
# a user on the machine, which CI's throwaway machine allows but a laptop may not).
# Prints a summary line with the time of each step.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

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

step_start=$SECONDS
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
native_secs=$((SECONDS - step_start))

# Every run builds the two device targets CI can afford and proves them under qemu: aarch64 (64-bit
# ARM) and mipsel (32-bit, tier 3), both with std built from source: the real dist-profile
# binaries that ship. About 6 minutes from a cold target directory (cross/README.md, "CI").
echo "== cross builds under qemu-user: aarch64, mipsel"
step_start=$SECONDS
# One job per core: nothing else builds while this step runs.
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-$(nproc)}" scripts/cross-build.sh aarch64 mipsel
scripts/cross-test.sh aarch64 mipsel
cross_secs=$((SECONDS - step_start))

step_start=$SECONDS
if [ "${PICOMQ_PACKAGE_TEST:-1}" = 0 ]; then
  package="package test left out (PICOMQ_PACKAGE_TEST=0)"
else
  echo "== Debian package: install, run, remove (amd64)"
  scripts/package-test.sh
  package="package test $((SECONDS - step_start)) s"
fi

echo "test.sh: all passed in $((SECONDS - start)) s (native $native_secs s, cross aarch64+mipsel $cross_secs s, $package)"
