#!/usr/bin/env bash
# Builds Debian packages of picomq with dpkg-deb from the cross-built static binaries in
# dist/<target>/picomq (scripts/cross-build.sh makes them). Usage:
#   scripts/package-deb.sh [amd64|arm64|armhf|all]...      (default: all)
# amd64 = x86_64-unknown-linux-musl, arm64 = aarch64-unknown-linux-musl,
# armhf = armv7-unknown-linux-musleabihf. Writes dist/picomq_<version>_<arch>.deb.
# It owns the package layout: /usr/bin/picomq, /etc/picomq/picomq.toml (a conffile, from
# conf/picomq.toml), /usr/lib/systemd/system/picomq.service (conf/picomq.service), the docs, and
# the maintainer scripts in packaging/deb/ (user picomq and /var/lib/picomq in postinst).
# A missing binary fails the script with the cross-build command that makes it.
set -euo pipefail
cd "$(dirname "$0")/.."

target_of() {
  case "$1" in
    amd64) echo x86_64-unknown-linux-musl ;;
    arm64) echo aarch64-unknown-linux-musl ;;
    armhf) echo armv7-unknown-linux-musleabihf ;;
    *) return 1 ;;
  esac
}

archs=()
[ $# -gt 0 ] || set -- all
for arg in "$@"; do
  case "$arg" in
    all) archs+=(amd64 arm64 armhf) ;;
    amd64 | arm64 | armhf) archs+=("$arg") ;;
    *)
      echo "usage: scripts/package-deb.sh [amd64|arm64|armhf|all]... (got '$arg')" >&2
      exit 2
      ;;
  esac
done

command -v dpkg-deb >/dev/null 2>&1 || { echo "dpkg-deb is missing (Debian package dpkg)" >&2; exit 1; }
version=$(python3 -c 'import tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["package"]["version"])')
for arch in "${archs[@]}"; do
  bin="dist/$(target_of "$arch")/picomq"
  if [ ! -x "$bin" ]; then
    echo "$bin is missing: run scripts/cross-build.sh $(target_of "$arch") first" >&2
    exit 1
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/picomq-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT

for arch in "${archs[@]}"; do
  root="$work/$arch"
  install -D -m 0755 "dist/$(target_of "$arch")/picomq" "$root/usr/bin/picomq"
  install -D -m 0644 conf/picomq.toml "$root/etc/picomq/picomq.toml"
  install -D -m 0644 conf/picomq.service "$root/usr/lib/systemd/system/picomq.service"
  install -D -m 0644 README.md "$root/usr/share/doc/picomq/README.md"
  cat >"$root/usr/share/doc/picomq/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: picomq

Files: *
Copyright: the picomq authors
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
  install -d "$root/DEBIAN"
  install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
  echo /etc/picomq/picomq.toml >"$root/DEBIAN/conffiles"
  installed_kib=$(du -sk --exclude=DEBIAN "$root" | awk '{ print $1 }')
  cat >"$root/DEBIAN/control" <<CONTROL
Package: picomq
Version: $version
Architecture: $arch
Maintainer: picomq maintainers <picomq@localhost>
Installed-Size: $installed_kib
Section: net
Priority: optional
Description: small MQTT 3.1/3.1.1/5.0 broker for gateways and routers
 picomq is an MQTT broker with QoS 0/1/2, retained messages, wills, shared
 subscriptions and MQTT 5 features, in one static binary. The service
 (picomq.service) reads /etc/picomq/picomq.toml and listens on 127.0.0.1:1883
 by default; systemctl reload picomq re-reads the password and ACL files.
CONTROL
  out="dist/picomq_${version}_${arch}.deb"
  # root:root ownership inside the package whoever builds it.
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out.new" >/dev/null
  mv -f "$out.new" "$out"
  echo "$out ($(stat -c %s "$out") bytes, installed $installed_kib KiB)"
done
