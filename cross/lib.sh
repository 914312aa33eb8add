# shellcheck shell=bash disable=SC2034  # sourced: the variables are used by the scripts
# Shared by scripts/cross-build.sh, cross-test.sh and package-test.sh (sourced, not run). Expects the
# current directory to be the repository root.

CROSS_TABLE=cross/targets.tsv
CROSS_CONFIG=cross/config.toml
# The toolchain that builds std from source (-Zbuild-std) for the "source" targets: this nightly
# when it is installed (tested: nightly 2026-05-19, rustc 1.97.0-nightly; set CROSS_NIGHTLY to pin
# another), else the default (stable) toolchain with RUSTC_BOOTSTRAP=1, which unlocks -Zbuild-std
# there (tested: 1.95.0). A machine may have only the stable toolchain and no way to fetch another.
CROSS_NIGHTLY=${CROSS_NIGHTLY:-nightly}
# Versions tested with this recipe; installed only when zig or cargo-zigbuild is missing.
ZIGLANG_VERSION=0.17.1
CARGO_ZIGBUILD_VERSION=0.24.1

# Every target of the table, in order.
cross_all_targets() {
  awk '!/^#/ && NF { print $1 }' "$CROSS_TABLE"
}

# The std column ("rustup" or "source") of target $1.
cross_std_of() {
  awk -v t="$1" '!/^#/ && $1 == t { print $2 }' "$CROSS_TABLE"
}

# Turns the command-line arguments into full target names, one a line: "all", a full target name,
# or an unambiguous prefix of one ("aarch64", "mipsel", "armv7"). Fails on anything else.
cross_resolve_targets() {
  local arg t matches
  if [ $# -eq 0 ]; then
    echo "no target given: name one or more of these, or all:" >&2
    cross_all_targets | sed 's/^/  /' >&2
    return 2
  fi
  for arg in "$@"; do
    if [ "$arg" = all ]; then
      cross_all_targets
      continue
    fi
    matches=()
    while read -r t; do
      if [ "$t" = "$arg" ]; then matches=("$t"); break; fi
      case "$t" in "$arg"*) matches+=("$t") ;; esac
    done < <(cross_all_targets)
    if [ ${#matches[@]} -ne 1 ]; then
      echo "unknown or ambiguous target '$arg' (matches: ${matches[*]:-none}); known targets:" >&2
      cross_all_targets | sed 's/^/  /' >&2
      return 2
    fi
    echo "${matches[0]}"
  done
}

# The qemu-user command (one word a line) that runs binaries of target $1: its `runner` in
# cross/config.toml, or nothing for the host's own architecture.
cross_runner_of() {
  python3 - "$CROSS_CONFIG" "$1" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    cfg = tomllib.load(f)
runner = cfg.get("target", {}).get(sys.argv[2], {}).get("runner", [])
if isinstance(runner, str):
    runner = runner.split()
for word in runner:
    print(word)
PY
}

cross_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

CROSS_APT_UPDATED=no
# Installs the named Debian packages.
cross_apt_install() {
  echo "== installing $* (Debian packages)"
  if [ "$CROSS_APT_UPDATED" = no ]; then
    cross_sudo apt-get update -qq
    CROSS_APT_UPDATED=yes
  fi
  cross_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Makes sure the qemu-user program that target $1 runs under is installed.
cross_need_qemu() {
  local qemu runner
  mapfile -t runner < <(cross_runner_of "$1")
  [ ${#runner[@]} -gt 0 ] || return 0
  qemu=${runner[0]}
  command -v "$qemu" >/dev/null 2>&1 || cross_apt_install qemu-user
  command -v "$qemu" >/dev/null 2>&1 || { echo "$qemu is still missing after installing qemu-user" >&2; return 1; }
}

# Sets CROSS_STD_TOOLCHAIN (for `cargo +TOOLCHAIN`) and CROSS_STD_BOOTSTRAP (the value for
# RUSTC_BOOTSTRAP, empty for a nightly) for the targets whose std is built from source.
cross_pick_std_toolchain() {
  if rustup toolchain list | grep "^$CROSS_NIGHTLY" >/dev/null; then
    CROSS_STD_TOOLCHAIN=$CROSS_NIGHTLY
    CROSS_STD_BOOTSTRAP=
  else
    CROSS_STD_TOOLCHAIN=$(rustup default | awk '{ print $1 }')
    CROSS_STD_BOOTSTRAP=1
  fi
}

# Makes sure the toolchain pieces that target $1 needs are installed.
cross_need_toolchain() {
  local target=$1
  case "$(cross_std_of "$target")" in
    rustup)
      if ! rustup target list --installed | grep -x "$target" >/dev/null; then
        echo "== rustup target add $target"
        rustup target add "$target"
      fi
      ;;
    source)
      cross_pick_std_toolchain
      if ! rustup component list --toolchain "$CROSS_STD_TOOLCHAIN" --installed | grep "^rust-src" >/dev/null; then
        echo "== rustup component add rust-src --toolchain $CROSS_STD_TOOLCHAIN"
        rustup component add rust-src --toolchain "$CROSS_STD_TOOLCHAIN"
      fi
      if ! command -v zig >/dev/null 2>&1 && ! python3 -m ziglang version >/dev/null 2>&1; then
        echo "== pip install ziglang==$ZIGLANG_VERSION"
        python3 -m pip install -q "ziglang==$ZIGLANG_VERSION"
      fi
      if ! command -v cargo-zigbuild >/dev/null 2>&1; then
        echo "== pip install cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
        python3 -m pip install -q "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
        hash -r
      fi
      command -v cargo-zigbuild >/dev/null 2>&1 || {
        echo "cargo-zigbuild is installed but not on PATH (pip's script directory?)" >&2
        return 1
      }
      ;;
    *)
      echo "target $target has no std column in $CROSS_TABLE" >&2
      return 1
      ;;
  esac
}

