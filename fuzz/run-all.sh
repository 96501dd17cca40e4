#!/usr/bin/env bash
# Build every fuzz target once, run each (or those named as arguments) for
# FUZZ_SECONDS (default 20) and print libFuzzer's final stats line per
# target. Exits non-zero if any target crashes, times out or fails to build;
# the crashing input is kept in fuzz/artifacts/NAME/ and the log in
# fuzz/work/NAME.log.
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

# libFuzzer options per target: the longest input worth trying, from each
# format's own limits; the slow, cryptography-bound targets try long inputs
# at once instead of growing them over minutes (-len_control=0).
options() {
    case $1 in
        keyfile) echo -max_len=128 ;;
        ticket) echo -max_len=1100 ;;
        cli_parse) echo -max_len=1024 ;;
        beacon | hello) echo -max_len=600 ;;
        handshake_roundtrip_mutation) echo -max_len=300 -len_control=0 ;;
        handshake_*) echo -max_len=2100 -len_control=0 ;;
        transport) echo -max_len=4096 -len_control=0 ;;
        *) echo -max_len=4096 ;;
    esac
}

cargo +nightly fuzz build
failed=()
targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
for target in "${targets[@]}"; do
    mkdir -p "work/$target"
    log="work/$target.log"
    if cargo +nightly fuzz run "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 $(options "$target") \
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
