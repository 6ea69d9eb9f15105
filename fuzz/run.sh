#!/usr/bin/env bash
# Builds the libFuzzer targets with coverage instrumentation (stable Rust:
# SanitizerCoverage through -C passes / -C llvm-args, as cargo-fuzz does with
# `--sanitizer none`) and runs each for a bounded time from its seed corpus.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET ...]     # default 30 s, all targets
#
# A crash, a panic (an assertion in a target included), a leak, an input
# taking more than 10 s or an allocation over 512 MiB fails the run; libFuzzer
# writes the input that did it to fuzz/artifacts/<target>/. Seeds are in
# fuzz/seeds/<target>/ (real encodings made with the crates' own encoders:
# `cargo run -p qcss-tests --example fuzz_seeds -- fuzz/seeds` remakes them);
# what the fuzzer adds is kept in fuzz/corpus/<target>/ (not committed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
secs="${1:-30}"
shift || true
all=(envelope policy chain_wire mdss_manifest iot_wire unit_code chaincode_package ca_enroll)
targets=("${@:-${all[@]}}")

export CARGO_TARGET_DIR="${QCSS_FUZZ_TARGET_DIR:-$here/target}"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
# An explicit --target keeps the flags off build scripts and proc macros
# (they run on the host and are not linked against libFuzzer).
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --bins --target "$host"
bin="$CARGO_TARGET_DIR/$host/release"

for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "== fuzzing $t for $secs s"
    rc=0
    "$bin/$t" "corpus/$t" "seeds/$t" \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
        >"artifacts/$t.log" 2>&1 || rc=$?
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+== ERROR|SUMMARY)|panicked at" \
        "artifacts/$t.log" || true
    if [ "$rc" -ne 0 ]; then
        tail -n 40 "artifacts/$t.log" >&2
        echo "fuzz/run.sh: $t failed (exit $rc); the input is in fuzz/artifacts/$t/;" \
            "reproduce with: $bin/$t fuzz/artifacts/$t/<file>" >&2
        exit 1
    fi
done
echo "fuzz/run.sh: ${#targets[@]} targets, $secs s each, no failure"
