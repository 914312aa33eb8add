#!/usr/bin/env bash
# Measures picomq's memory footprint for the table in cross/README.md: resident memory at start and
# with N idle MQTT connections (default 1000)
#   - natively: dist/x86_64-unknown-linux-musl/picomq next to Mosquitto, in the same run
#     (`cargo bench --bench loadgen -- --idle-clients N`: each broker spawned in turn on 127.0.0.1);
#   - under qemu-user for one foreign target (default mipsel-unknown-linux-musl): the guest
#     program's own resident memory (cross/guest-rss.py, without the emulator's), sampled while
#     loadgen holds the connections open; the peak sample is reported.
# Usage: scripts/footprint.sh [TARGET [N]]. Needs the binaries from scripts/cross-build.sh
# x86_64 TARGET, and /usr/sbin/mosquitto. Traffic goes to 127.0.0.1 only; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=cross/lib.sh
. cross/lib.sh

target=$(cross_resolve_targets "${1:-mipsel-unknown-linux-musl}")
n=${2:-1000}
native=dist/x86_64-unknown-linux-musl/picomq
for bin in "$native" "dist/$target/picomq"; do
  [ -x "$bin" ] || { echo "$bin is missing: run scripts/cross-build.sh first" >&2; exit 1; }
done
# One descriptor per connection in loadgen and in the broker, plus slack.
ulimit -n $((2 * n + 512))
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
cargo bench --bench loadgen --no-run -q 2>/dev/null || cargo bench --bench loadgen --no-run

echo "== natively (x86_64): $native and Mosquitto, $n idle connections"
cargo bench -q --bench loadgen -- --idle-clients "$n" --picomq "$native" --compare picomq,mosquitto

mapfile -t runner < <(cross_runner_of "$target")
[ ${#runner[@]} -gt 0 ] || { echo "$target runs natively: no qemu measurement" >&2; exit 0; }
work=$(mktemp -d "${TMPDIR:-/tmp}/picomq-footprint.XXXXXX")
broker=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [ -n "$broker" ]; then kill -KILL "$broker" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "== under ${runner[*]}: dist/$target/picomq on 127.0.0.1:$port, $n idle connections"
# Started like loadgen starts a broker: built-in defaults, --listen, warnings only.
env QEMU_LOG=page QEMU_LOG_FILENAME="$work/qemu-page.log" "${runner[@]}" "dist/$target/picomq" \
  --listen "127.0.0.1:$port" --log-level warn >"$work/broker.log" 2>&1 &
broker=$!
listening=no
for _ in $(seq 300); do
  if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then
    listening=yes
    break
  fi
  sleep 0.1
done
[ "$listening" = yes ] || { cat "$work/broker.log"; echo "broker not listening after 30 s" >&2; exit 1; }
sleep 1
start_kib=$(python3 cross/guest-rss.py "$broker" "$work/qemu-page.log")
cargo bench -q --bench loadgen -- --idle-clients "$n" --broker "127.0.0.1:$port" --pid "$broker" \
  --name "picomq-$target" >"$work/loadgen.out" 2>&1 &
loadgen=$!
peak_kib=$start_kib
# Sample until loadgen is done (it has its own hard deadline), at most 5 minutes.
for _ in $(seq 1500); do
  kill -0 "$loadgen" 2>/dev/null || break
  kib=$(python3 cross/guest-rss.py "$broker" "$work/qemu-page.log" 2>/dev/null || echo 0)
  [ "$kib" -le "$peak_kib" ] || peak_kib=$kib
  sleep 0.2
done
loadgen_status=0
wait "$loadgen" || loadgen_status=$?
cat "$work/loadgen.out"
[ "$loadgen_status" -eq 0 ] || { echo "loadgen failed ($loadgen_status)" >&2; exit 1; }
kill -TERM "$broker"
for _ in $(seq 200); do kill -0 "$broker" 2>/dev/null || break; sleep 0.1; done
broker=""
echo "$target under qemu, guest program only: $start_kib KiB at start, $peak_kib KiB with $n idle" \
  "connections (peak sample), $(python3 -c "print(round(($peak_kib - $start_kib) / $n, 2))") KiB per connection"
