#!/usr/bin/env bash
# Measures the performance targets of issue 9 with loadgen (benches/README.md): picomq next to
# Mosquitto and rumqttd, each broker spawned in turn on 127.0.0.1, the whole comparison repeated
# ROUNDS times with the brokers interleaved, figures quoted as medians and picomq/peer ratios.
#   1. 5,000 msg/s p2p (16 pairs x 312.5 msg/s), QoS 0 and 1, 64 B: CPU per message, p99 latency
#   2. full speed fan-in 8->1, fan-out 1->32, p2p 16 pairs, p2p QoS 1: CPU per message, zero
#      loss and reordering
#   3. memory per idle connection at 10,000 connections
#   4. connects per second (CONNECT/CONNACK/DISCONNECT, 64 in parallel)
#   5. broker CPU with 1,000 idle clients over 20 s
# Usage: scripts/bench-compare.sh [ROUNDS] (default 5; about 30 minutes at 5 rounds).
# Environment: PICOMQ, MOSQUITTO, RUMQTTD (binaries; a missing one gives a `not measured` row),
# QUICK=1 (3 s windows, 5 s idle window, 20,000 connects: checks the tooling, proves nothing).
# Only loopback traffic; every loadgen run has its own hard deadline.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-5}
target_dir=${CARGO_TARGET_DIR:-target}
picomq=${PICOMQ:-$target_dir/release/picomq}
mosquitto=${MOSQUITTO:-/usr/sbin/mosquitto}
rumqttd=${RUMQTTD:-rumqttd}
window=10
idle_secs=20
connects=100000
if [ "${QUICK:-0}" = 1 ]; then
  window=3
  idle_secs=5
  connects=20000
fi

# 10,000 idle connections need one descriptor each in loadgen and in the broker (which inherits
# the limit). Raise the soft limit as far as the hard limit allows; loadgen itself refuses a run
# the limit is too low for, with a clear message.
ulimit -n 30000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open-files limit: $(ulimit -n)"

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
cargo build --release -q
cargo bench --bench loadgen --no-run -q

failed=0
lg() {
  echo
  echo "== loadgen $*"
  cargo bench -q --bench loadgen -- --compare picomq,mosquitto,rumqttd \
    --picomq "$picomq" --mosquitto "$mosquitto" --rumqttd "$rumqttd" "$@" || failed=$((failed + 1))
}

for qos in 0 1; do
  lg --scenario p2p --clients 16 --qos "$qos" --payload 64 --rate 312.5 \
    --duration "$window" --rounds "$rounds"
done
lg --scenario fan-in --clients 8 --qos 0 --payload 64 --duration "$window" --rounds "$rounds"
lg --scenario fan-out --clients 32 --qos 0 --payload 64 --duration "$window" --rounds "$rounds"
lg --scenario p2p --clients 16 --qos 0 --payload 64 --duration "$window" --rounds "$rounds"
lg --scenario p2p --clients 16 --qos 1 --payload 64 --duration "$window" --rounds "$rounds"
lg --idle-clients 10000 --rounds "$(( rounds < 3 ? rounds : 3 ))"
lg --connect-rate "$connects" --connect-parallel 64 --duration "$window" --rounds "$rounds"
lg --idle-cpu-clients 1000 --idle-secs "$idle_secs" --rounds "$rounds"

echo
if [ "$failed" -gt 0 ]; then
  echo "$failed loadgen run(s) measured no broker at all" >&2
  exit 1
fi
