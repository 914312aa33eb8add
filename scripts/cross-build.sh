#!/usr/bin/env bash
# Builds size-optimised static picomq binaries for device targets into dist/<target>/picomq and
# prints a size table. Usage: scripts/cross-build.sh TARGET... | all
#   TARGET is a name from cross/targets.tsv or an unambiguous prefix of one (aarch64, mipsel, ...).
# Installs what a target needs when it is missing: its rustup std, or nightly + rust-src + zig +
# cargo-zigbuild for the targets whose std is built from source, and qemu-user, which runs each
# new binary once (`picomq --version`) to prove it executes. cross/README.md explains the recipe.
# Builds one target at a time with CARGO_BUILD_JOBS=1 unless CARGO_BUILD_JOBS is set.
# CROSS_FEATURE_ARGS adds cargo feature flags, e.g. CROSS_FEATURE_ARGS=--no-default-features for a
# build without TLS (the size table's "no TLS" column).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=cross/lib.sh
. cross/lib.sh

resolved=$(cross_resolve_targets "$@") || exit 2
mapfile -t targets <<<"$resolved"

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
# zig keeps its cache under target/ (git-ignored) instead of the home directory.
export ZIG_GLOBAL_CACHE_DIR="${ZIG_GLOBAL_CACHE_DIR:-$PWD/target/zig-cache}"
target_dir="${CARGO_TARGET_DIR:-target}"
read -r -a feature_args <<<"${CROSS_FEATURE_ARGS:-}"
# RUSTFLAGS from the environment would replace each target's rustflags in cross/config.toml.
if [ -n "${RUSTFLAGS:-}" ]; then
  echo "note: ignoring RUSTFLAGS='$RUSTFLAGS' (per-target flags come from $CROSS_CONFIG)"
  unset RUSTFLAGS
fi

# Fails when $1 still has a symbol table or debug sections; the dist profile strips at link time.
check_stripped() {
  local sections
  sections=$(readelf -S -W "$1" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\.(symtab|debug_)/) print $i }')
  if [ -n "$sections" ]; then
    echo "$1 is not stripped (sections: ${sections//$'\n'/ }); is strip = true in [profile.dist]?" >&2
    return 1
  fi
}

declare -A size secs
for target in "${targets[@]}"; do
  cross_need_toolchain "$target"
  cross_need_qemu "$target"
  std=$(cross_std_of "$target")
  echo "== building $target (std from $std, CARGO_BUILD_JOBS=$CARGO_BUILD_JOBS)"
  start=$SECONDS
  if [ "$std" = rustup ]; then
    cargo --config "$CROSS_CONFIG" build --locked --profile dist --target "$target" --bin picomq \
      "${feature_args[@]}"
  else
    bootstrap=()
    if [ -n "$CROSS_STD_BOOTSTRAP" ]; then
      echo "   (no $CROSS_NIGHTLY toolchain: building std with $CROSS_STD_TOOLCHAIN and RUSTC_BOOTSTRAP=1)"
      bootstrap=(env RUSTC_BOOTSTRAP=1)
    fi
    # Size settings for std built from source (cross/README.md, "What each part costs"):
    # - optimize_for_size: std's smaller algorithms; leaving out std's default features also drops
    #   the backtrace symbolizer, useless in a stripped binary (a panic still prints its message
    #   and location, then aborts);
    # - no unwind tables (.eh_frame): nothing unwinds under panic = "abort". Appended to the
    #   target's rustflags from cross/config.toml (cargo joins the arrays).
    "${bootstrap[@]}" cargo "+$CROSS_STD_TOOLCHAIN" zigbuild --config "$CROSS_CONFIG" \
      --config "target.$target.rustflags = [\"-C\", \"force-unwind-tables=no\"]" \
      -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size \
      --locked --profile dist --target "$target" --bin picomq "${feature_args[@]}"
  fi
  secs[$target]=$((SECONDS - start))
  mkdir -p "dist/$target"
  # Replace, never write into, the installed file: a running copy keeps its own inode.
  cp "$target_dir/$target/dist/picomq" "dist/$target/picomq.new"
  # MIPS objects carry a .pdr section (procedure descriptors for debuggers, about 7% of the file)
  # that the link's strip keeps; nothing loads it at run time. rust-objcopy ships with rustc (it
  # finds rustc's libLLVM through LD_LIBRARY_PATH).
  if readelf -S -W "dist/$target/picomq.new" | grep -q ' \.pdr '; then
    sysroot=$(rustc --print sysroot)
    LD_LIBRARY_PATH="$sysroot/lib" \
      "$sysroot/lib/rustlib/$(rustc -vV | awk '/^host:/ { print $2 }')/bin/rust-objcopy" \
      --remove-section=.pdr "dist/$target/picomq.new"
  fi
  mv -f "dist/$target/picomq.new" "dist/$target/picomq"
  check_stripped "dist/$target/picomq"
  mapfile -t runner < <(cross_runner_of "$target")
  version=$(timeout 60 "${runner[@]}" "dist/$target/picomq" --version)
  echo "   $version runs$([ ${#runner[@]} -gt 0 ] && echo " under ${runner[*]}")"
  size[$target]=$(stat -c %s "dist/$target/picomq")
done

echo
echo "== stripped static binaries (dist profile)"
printf '%-32s %10s %8s %10s\n' target bytes KiB "build s"
for target in "${targets[@]}"; do
  printf '%-32s %10s %8s %10s\n' "$target" "${size[$target]}" \
    "$(((size[$target] + 512) / 1024))" "${secs[$target]}"
done
