#!/usr/bin/env bash
# Fuzz smoke test: runs every cargo-fuzz target (decode, topic, session) for N seconds each
# (default 30), then prints one line per target with its total executions and findings.
# Usage: scripts/fuzz-smoke.sh [seconds] [target...]   (no targets = all of them)
#
# Owns: how the fuzzers are run locally and in CI. Must not touch: the code under test or the main
# crate's build (fuzz/ is its own workspace). New corpus entries go to fuzz/corpus/TARGET (ignored
# by git); committed seeds in fuzz/seeds/TARGET are read, never written. A finding leaves a
# reproducer in fuzz/artifacts/TARGET (replay: cargo +nightly fuzz run TARGET FILE) and makes
# this script exit non-zero after all targets ran. Logs go to fuzz/logs/TARGET.log.
set -euo pipefail

secs="${1:-30}"
shift || true
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
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
fi
mkdir -p logs
summary=()
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    dirs=("corpus/$t")
    [ -d "seeds/$t" ] && dirs+=("seeds/$t")
    before=$(find "artifacts/$t" -type f | wc -l)
    log="logs/$t.log"
    echo "fuzz-smoke: $t for ${secs}s (log: fuzz/$log)" >&2
    status=0
    cargo "${toolchain[@]}" fuzz run "$t" "${dirs[@]}" -- \
        -max_total_time="$secs" -max_len=4096 -rss_limit_mb=1024 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    # Final stats when the run ended normally; otherwise the last "#N ..." progress line.
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ -z "$execs" ]; then
        execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
    fi
    after=$(find "artifacts/$t" -type f | wc -l)
    findings=$((after - before))
    if [ "$status" -ne 0 ] && [ "$findings" -eq 0 ]; then
        findings="error (exit $status, see fuzz/$log)"
    fi
    if [ "$status" -ne 0 ]; then
        failed=1
    fi
    summary+=("$(printf '%-8s executions: %-12s findings: %s' "$t" "${execs:-0}" "$findings")")
done
echo "fuzz-smoke: ${secs}s per target"
printf '%s\n' "${summary[@]}"
exit "$failed"
