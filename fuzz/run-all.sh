#!/usr/bin/env bash
# Build every fuzz target once, run each for FUZZ_SECONDS (default 20) and
# print libFuzzer's final stats line per target. Exits non-zero if any target
# crashes, times out or fails to build; the crashing input is kept in
# fuzz/artifacts/NAME/ and the log in fuzz/work/NAME.log.
#
# New inputs go to fuzz/work/NAME/ (ignored by git), so the checked-in seeds
# in fuzz/corpus/NAME/ are only read. A crash that is fixed is copied to
# fuzz/regressions/NAME/, which stable `cargo test` replays.
#
# Needs the nightly toolchain and cargo-fuzz (installed here if missing).
set -euo pipefail

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
cd "$fuzz_dir"
seconds=${FUZZ_SECONDS:-20}

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "run-all.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Longest input worth trying, from each format's own limits.
max_len() {
    case $1 in
        keyfile) echo 128 ;;
        handshake_roundtrip_mutation) echo 300 ;;
        beacon | hello) echo 600 ;;
        handshake_*) echo 2100 ;;
        *) echo 4096 ;;
    esac
}

cargo +nightly fuzz build
failed=()
for target in $(cargo +nightly fuzz list); do
    mkdir -p "work/$target"
    log="work/$target.log"
    if cargo +nightly fuzz run "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 \
        >"$log" 2>&1; then
        printf '%-30s %s\n' "$target" "$(grep -a 'DONE' "$log" | tail -n 1)"
    else
        printf '%-30s FAILED, see fuzz/%s\n' "$target" "$log"
        grep -a -A 40 -E '^==[0-9]+==|panicked|SUMMARY' "$log" | head -n 60 || tail -n 40 "$log"
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz targets that failed: ${failed[*]}" >&2
    exit 1
fi
