#!/usr/bin/env bash
# Fuzz smoke test for the wire codec: runs the cargo-fuzz target `decode` for N seconds
# (default 30), installing cargo-fuzz from crates.io if it is missing.
#
# Owns: how the fuzzer is run locally and in CI. Must not touch: the codec or the main crate's
# build (fuzz/ is its own workspace). New corpus entries go to fuzz/corpus/decode (ignored by git);
# the committed seeds in fuzz/seeds/decode are read, never written. A crash leaves a reproducer in
# fuzz/artifacts/decode and makes this script exit non-zero.
set -euo pipefail

secs="${1:-30}"
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# libFuzzer instrumentation needs nightly flags; use the nightly toolchain when there is one,
# otherwise let the stable compiler accept them.
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    echo "fuzz-smoke: no nightly toolchain, using stable with RUSTC_BOOTSTRAP=1" >&2
    export RUSTC_BOOTSTRAP=1
fi

cd "$root/fuzz"
mkdir -p corpus/decode
cargo "${toolchain[@]}" fuzz run decode corpus/decode seeds/decode -- \
    -max_total_time="$secs" -max_len=4096 -rss_limit_mb=1024 -print_final_stats=1
