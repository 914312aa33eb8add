#!/usr/bin/env bash
# Proves that each cross-built binary works: runs dist/<target>/picomq (from scripts/cross-build.sh)
# under qemu-user on a free 127.0.0.1 port with a small config file, and does real MQTT round trips
# from the host with mosquitto_pub/mosquitto_sub:
#   - a subscriber (MQTT 5) gets messages published at QoS 0, 1 and 2 (3.1.1), each at its QoS,
#     and the QoS 1/2 publishers get their PUBACK / PUBCOMP;
#   - a retained message reaches a later subscriber with the retain flag, and clearing it works;
#   - the will of a client that dies without DISCONNECT (SIGKILL) reaches a subscriber;
#   - SIGTERM stops the broker cleanly (exit status 0, "picomq stopped").
# Prints the broker's resident memory at start (under qemu: the guest program's, without the
# emulator's own, see cross/guest-rss.py).
# Usage: scripts/cross-test.sh TARGET... | all   (names as for cross-build.sh)
# Any failure fails the script; every wait is bounded. Installs qemu-user and mosquitto-clients
# when missing. Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=cross/lib.sh
. cross/lib.sh

resolved=$(cross_resolve_targets "$@") || exit 2
mapfile -t targets <<<"$resolved"

command -v mosquitto_sub >/dev/null 2>&1 || cross_apt_install mosquitto-clients
for target in "${targets[@]}"; do
  if [ ! -x "dist/$target/picomq" ]; then
    echo "dist/$target/picomq is missing: run scripts/cross-build.sh $target first" >&2
    exit 1
  fi
  cross_need_qemu "$target"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/picomq-cross-test.XXXXXX")
pids=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Starts a command in the background with stdout+stderr to file $1; its pid goes to $last_pid and
# is killed at exit if it is still running. Clients whose output is watched while they run go
# through `stdbuf -oL` (stdbuf execs them, so the pid stays theirs): stdio buffers a file fully.
spawn() {
  local out=$1
  shift
  "$@" >"$out" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
}

# Waits up to $3 seconds until file $1 has a line matching the extended regex $2.
wait_for_line() {
  local file=$1 pattern=$2 deadline=$((SECONDS + $3))
  until grep -qE -- "$pattern" "$file" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

# Waits up to $2 seconds for background process $1 to exit; its exit status goes to $exit_status.
# A process still running then is killed and the wait fails.
wait_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      return 1
    fi
    sleep 0.1
  done
  exit_status=0
  wait "$pid" || exit_status=$?
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The messages a client printed with -F '%t|%q|%r|%p' (topic|qos|retain|payload), sorted; the
# other lines are mosquitto's -d protocol trace and notices.
messages() {
  grep '^cross/' "$1" | sort || true
}

# Runs every check against target $1; returns non-zero at the first failure, with a reason.
test_target() {
  local target=$1 dir="$work/$1" port broker try runner rss
  mkdir -p "$dir"
  mapfile -t runner < <(cross_runner_of "$target")
  pids=()
  # Reports a failure and ends this target's processes (broker and clients).
  fail() {
    local pid
    echo "FAIL [$target] $*"
    echo "--- broker log (last 30 lines)"
    tail -n 30 "$dir/broker.log" 2>/dev/null || true
    for pid in "${pids[@]}"; do
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    done
    pids=()
    return 1
  }

  # Start the broker; a port taken between free_port and bind makes it exit: try another one.
  for try in 1 2 3; do
    port=$(free_port)
    cat >"$dir/picomq.toml" <<EOF
[log]
level = "info"

[server]
io_threads = 2
router_shards = 2
max_connections = 64

[[listener]]
bind = "127.0.0.1:$port"
EOF
    if [ ${#runner[@]} -gt 0 ]; then
      # qemu logs the guest's page layout so that cross/guest-rss.py can tell its memory apart.
      spawn "$dir/broker.log" env QEMU_LOG=page QEMU_LOG_FILENAME="$dir/qemu-page.log" \
        "${runner[@]}" "dist/$target/picomq" --conf "$dir/picomq.toml"
    else
      spawn "$dir/broker.log" "dist/$target/picomq" --conf "$dir/picomq.toml"
    fi
    broker=$last_pid
    if wait_for_line "$dir/broker.log" "listening on 127\\.0\\.0\\.1:$port" 30; then
      break
    fi
    kill -KILL "$broker" 2>/dev/null || true
    [ $try -lt 3 ] || { fail "broker did not start listening within 30 s (3 tries)"; return 1; }
  done
  # Resident memory at start: of the process natively, of the guest program under qemu.
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$broker/status" 2>/dev/null || echo "?")
  if [ ${#runner[@]} -gt 0 ]; then
    rss_at_start[$target]=$(python3 cross/guest-rss.py "$broker" "$dir/qemu-page.log" || echo "?")
    echo "   [$target] broker listening on 127.0.0.1:$port; resident memory at start:" \
      "${rss_at_start[$target]} KiB (qemu process with it: $rss KiB)"
  else
    rss_at_start[$target]=$rss
    echo "   [$target] broker listening on 127.0.0.1:$port; resident memory at start: $rss KiB"
  fi
  local -a mq=(-h 127.0.0.1 -p "$port")

  # 1. QoS 0, 1 and 2: an MQTT 5 subscriber at QoS 2, one 3.1.1 publisher per QoS.
  spawn "$dir/sub.out" stdbuf -oL mosquitto_sub "${mq[@]}" -V mqttv5 -i cross-sub -t 'cross/qos/#' -q 2 \
    -d -F '%t|%q|%r|%p' -C 3 -W 30
  local sub=$last_pid
  wait_for_line "$dir/sub.out" 'received SUBACK' 15 || { fail "no SUBACK for cross/qos/#"; return 1; }
  local q ack
  for q in 0 1 2; do
    timeout 20 mosquitto_pub "${mq[@]}" -i "cross-pub$q" -t "cross/qos/$q" -m "hello at qos $q" \
      -q "$q" -d >"$dir/pub$q.out" 2>&1 || { fail "mosquitto_pub at QoS $q failed"; cat "$dir/pub$q.out"; return 1; }
    case $q in 1) ack=PUBACK ;; 2) ack=PUBCOMP ;; *) ack="" ;; esac
    if [ -n "$ack" ] && ! grep -q "received $ack" "$dir/pub$q.out"; then
      fail "QoS $q publisher got no $ack"; cat "$dir/pub$q.out"; return 1
    fi
  done
  wait_exit "$sub" 35 || { fail "subscriber did not get 3 messages within 30 s"; cat "$dir/sub.out"; return 1; }
  [ "$exit_status" -eq 0 ] || { fail "subscriber exited with $exit_status"; cat "$dir/sub.out"; return 1; }
  local want got
  want=$(printf '%s\n' 'cross/qos/0|0|0|hello at qos 0' 'cross/qos/1|1|0|hello at qos 1' \
    'cross/qos/2|2|0|hello at qos 2')
  got=$(messages "$dir/sub.out")
  [ "$got" = "$want" ] || { fail "QoS round trip: expected"$'\n'"$want"$'\n'"got"$'\n'"$got"; return 1; }
  echo "   [$target] QoS 0/1/2 round trip ok"

  # 2. Retained: stored, delivered to a later subscriber with the retain flag, then cleared.
  timeout 20 mosquitto_pub "${mq[@]}" -i cross-retainer -t cross/retained -m 'kept for later' -q 1 -r \
    >"$dir/retain-pub.out" 2>&1 || { fail "retained publish failed"; cat "$dir/retain-pub.out"; return 1; }
  timeout 30 mosquitto_sub "${mq[@]}" -i cross-late -t cross/retained -q 1 -F '%t|%q|%r|%p' -C 1 -W 20 \
    >"$dir/retain-sub.out" 2>&1 || { fail "late subscriber got no retained message"; cat "$dir/retain-sub.out"; return 1; }
  got=$(messages "$dir/retain-sub.out")
  [ "$got" = 'cross/retained|1|1|kept for later' ] || { fail "retained: got '$got'"; return 1; }
  timeout 20 mosquitto_pub "${mq[@]}" -i cross-retainer -t cross/retained -n -r \
    >"$dir/retain-clear.out" 2>&1 || { fail "clearing the retained message failed"; return 1; }
  # With nothing retained the subscriber gets nothing and gives up after -W 2 seconds.
  timeout 30 mosquitto_sub "${mq[@]}" -i cross-later -t cross/retained -F '%t|%q|%r|%p' -C 1 -W 2 \
    >"$dir/retain-none.out" 2>&1 || true
  got=$(messages "$dir/retain-none.out")
  [ -z "$got" ] || { fail "retained message still delivered after clearing: '$got'"; return 1; }
  echo "   [$target] retained message ok (delivered later, then cleared)"

  # 3. Will: a client killed without DISCONNECT has its will published.
  spawn "$dir/will-watch.out" stdbuf -oL mosquitto_sub "${mq[@]}" -i cross-watcher -t cross/will -q 1 \
    -d -F '%t|%q|%r|%p' -C 1 -W 30
  local watcher=$last_pid
  wait_for_line "$dir/will-watch.out" 'received SUBACK' 15 || { fail "no SUBACK for cross/will"; return 1; }
  spawn "$dir/victim.out" stdbuf -oL mosquitto_sub "${mq[@]}" -i cross-victim -t cross/nothing -d -W 60 \
    --will-topic cross/will --will-payload 'victim died' --will-qos 1
  local victim=$last_pid
  wait_for_line "$dir/victim.out" 'received SUBACK' 15 || { fail "will client did not connect"; return 1; }
  kill -KILL "$victim"
  wait "$victim" 2>/dev/null || true
  wait_exit "$watcher" 35 || { fail "will not delivered within 30 s"; cat "$dir/will-watch.out"; return 1; }
  got=$(messages "$dir/will-watch.out")
  [ "$got" = 'cross/will|1|0|victim died' ] || { fail "will: got '$got'"; return 1; }
  echo "   [$target] will ok"

  # 4. SIGTERM: clients disconnected, threads joined, exit status 0.
  kill -TERM "$broker"
  wait_exit "$broker" 20 || { fail "broker still running 20 s after SIGTERM"; return 1; }
  [ "$exit_status" -eq 0 ] || { fail "broker exited with status $exit_status after SIGTERM"; return 1; }
  grep -q 'picomq stopped' "$dir/broker.log" || { fail "no 'picomq stopped' in the broker log"; return 1; }
  echo "   [$target] SIGTERM: stopped cleanly"
}

declare -A result rss_at_start secs
failed=0
for target in "${targets[@]}"; do
  how=$(cross_runner_of "$target" | tr '\n' ' ')
  how=${how% }
  echo "== $target (${how:-native})"
  start=$SECONDS
  if test_target "$target"; then
    result[$target]=pass
  else
    result[$target]=FAIL
    failed=1
  fi
  secs[$target]=$((SECONDS - start))
done

echo
echo "== MQTT round trip (foreign targets under qemu-user)"
printf '%-32s %-6s %14s %8s\n' target result "RSS start KiB" seconds
for target in "${targets[@]}"; do
  printf '%-32s %-6s %14s %8s\n' "$target" "${result[$target]}" "${rss_at_start[$target]:-?}" "${secs[$target]}"
done
passed=0
for target in "${targets[@]}"; do
  if [ "${result[$target]}" = pass ]; then passed=$((passed + 1)); fi
done
echo "cross-test: $passed passed, $((${#targets[@]} - passed)) failed"
exit $failed
