#!/usr/bin/env bash
# Tests the amd64 Debian package on this machine: builds dist/picomq_<version>_amd64.deb
# (scripts/package-deb.sh, after scripts/cross-build.sh x86_64-unknown-linux-musl),
# installs it with `dpkg -i`, checks what postinst set up (user, data directory, conffile), verifies
# the systemd unit with `systemd-analyze verify`, runs the installed /usr/bin/picomq as the picomq
# user with the installed /etc/picomq/picomq.toml on a free 127.0.0.1 port (the shipped config's
# 1883 may be taken), does a mosquitto_pub/mosquitto_sub round trip, sends SIGHUP (the unit's
# ExecReload) and SIGTERM, then removes the package with `dpkg -r` and purges it.
# Needs root (or sudo) and dpkg: it changes the machine, so run it on a CI or throwaway machine.
# Refuses to run when a picomq package is already installed. Any failure fails the script; every
# wait is bounded; traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=cross/lib.sh
. cross/lib.sh

if dpkg-query -W -f='${Status}' picomq 2>/dev/null | grep -q 'ok installed'; then
  echo "a picomq package is already installed; this test installs and removes its own" >&2
  exit 1
fi
command -v mosquitto_sub >/dev/null 2>&1 || cross_apt_install mosquitto-clients
# Always through cross-build.sh, so the package never holds a stale binary (cargo does nothing when
# dist/x86_64-unknown-linux-musl/picomq is up to date).
scripts/cross-build.sh x86_64-unknown-linux-musl
scripts/package-deb.sh amd64
version=$(python3 -c 'import tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["package"]["version"])')
deb="dist/picomq_${version}_amd64.deb"

work=$(mktemp -d "${TMPDIR:-/tmp}/picomq-package-test.XXXXXX")
chmod 755 "$work"
user_existed=no
getent passwd picomq >/dev/null && user_existed=yes
installed=no
broker=""
cleanup() {
  if [ -n "$broker" ]; then kill -KILL "$broker" 2>/dev/null || true; fi
  if [ "$installed" = yes ]; then cross_sudo dpkg --purge picomq >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [ ! -f "$work/broker.log" ] || { echo "--- broker log" >&2; tail -n 20 "$work/broker.log" >&2; }
  exit 1
}
wait_for_line() {
  local file=$1 pattern=$2 deadline=$((SECONDS + $3))
  until grep -qE -- "$pattern" "$file" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

echo "== dpkg -i $deb"
cross_sudo dpkg -i "$deb"
installed=yes
[ -x /usr/bin/picomq ] || fail "/usr/bin/picomq not installed"
dpkg-query -W -f='${Conffiles}\n' picomq | grep -q '/etc/picomq/picomq.toml' ||
  fail "/etc/picomq/picomq.toml is not a conffile"
getent passwd picomq >/dev/null || fail "postinst did not create the picomq user"
[ "$(stat -c %U:%a /var/lib/picomq)" = picomq:750 ] || fail "/var/lib/picomq: $(stat -c %U:%a /var/lib/picomq)"
echo "   installed: /usr/bin/picomq ($(/usr/bin/picomq --version)), conffile, user picomq, /var/lib/picomq"

unit=/usr/lib/systemd/system/picomq.service
if command -v systemd-analyze >/dev/null 2>&1; then
  # verify checks the unit's syntax, directives and ExecStart binary without a running systemd.
  systemd-analyze verify "$unit" >"$work/verify.out" 2>&1 || { cat "$work/verify.out"; fail "systemd-analyze verify $unit"; }
  if [ -s "$work/verify.out" ]; then cat "$work/verify.out"; fail "systemd-analyze verify printed warnings"; fi
  echo "   systemd-analyze verify $unit: ok"
else
  echo "   systemd-analyze is not installed: unit not verified"
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "== the installed broker as user picomq on 127.0.0.1:$port"
(cd /var/lib/picomq && exec setpriv --reuid=picomq --regid=picomq --clear-groups \
  /usr/bin/picomq --conf /etc/picomq/picomq.toml --listen "127.0.0.1:$port") >"$work/broker.log" 2>&1 &
broker=$!
wait_for_line "$work/broker.log" "listening on 127\\.0\\.0\\.1:$port" 20 || fail "broker not listening within 20 s"
mq=(-h 127.0.0.1 -p "$port")
timeout 30 stdbuf -oL mosquitto_sub "${mq[@]}" -i pkg-sub -t pkg/test -q 1 -d -F '%t|%p' -C 1 -W 20 \
  >"$work/sub.out" 2>&1 &
sub=$!
wait_for_line "$work/sub.out" 'received SUBACK' 15 || fail "no SUBACK"
timeout 10 mosquitto_pub "${mq[@]}" -i pkg-pub -t pkg/test -m "installed package works" -q 1 ||
  fail "mosquitto_pub failed"
sub_status=0
wait "$sub" || sub_status=$?
[ "$sub_status" -eq 0 ] || { cat "$work/sub.out"; fail "mosquitto_sub exited with $sub_status"; }
grep -qx 'pkg/test|installed package works' "$work/sub.out" || { cat "$work/sub.out"; fail "round trip: message not received"; }
echo "   mosquitto_pub -> picomq -> mosquitto_sub: ok"
kill -HUP "$broker"
wait_for_line "$work/broker.log" 'SIGHUP: password, ACL and certificate files reloaded' 10 || fail "no reload after SIGHUP"
echo "   SIGHUP (ExecReload): auth and certificate files reloaded"
kill -TERM "$broker"
status=0
for _ in $(seq 100); do kill -0 "$broker" 2>/dev/null || break; sleep 0.1; done
kill -0 "$broker" 2>/dev/null && fail "broker still running 10 s after SIGTERM"
wait "$broker" || status=$?
broker=""
[ "$status" -eq 0 ] || fail "broker exited with $status after SIGTERM"
echo "   SIGTERM: stopped, exit status 0"

echo "== dpkg -r picomq"
cross_sudo dpkg -r picomq
[ ! -e /usr/bin/picomq ] || fail "/usr/bin/picomq still there after dpkg -r"
[ -f /etc/picomq/picomq.toml ] || fail "dpkg -r removed the conffile (only --purge should)"
cross_sudo dpkg --purge picomq
installed=no
[ ! -e /etc/picomq/picomq.toml ] || fail "conffile still there after --purge"
[ ! -e /var/lib/picomq ] || fail "/var/lib/picomq still there after --purge"
if [ "$user_existed" = no ]; then cross_sudo userdel picomq; fi
echo "package-test: $deb installed, served an MQTT round trip, removed and purged: pass"
