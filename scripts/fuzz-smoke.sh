#!/usr/bin/env bash
# The short fuzz pass (docs/fuzzing.md): builds every cargo-fuzz target in fuzz/ and runs each
# over its committed corpus, then for FUZZ_SECS seconds (default 15) of new inputs. Fails on a
# crash, a panic or an input slower than 10 s: libFuzzer then exits non-zero and leaves the
# reproducer under fuzz/artifacts/<target>/.
# Unoptimized and without AddressSanitizer (debug assertions and overflow checks stay on): this
# builds in a third of the time of the long runs' release+ASan build, and the pass is short.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
secs="${FUZZ_SECS:-15}"
# The stable toolchain: cargo-fuzz is made for nightly; stable takes its flags when the compiler
# is told it is bootstrapping itself.
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
# Outside the clone, so that a later run on the same machine rebuilds only Vigil's own crates.
target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/vigil/fuzz-target}"
start=$SECONDS
cargo fuzz build --dev -s none --target-dir "$target_dir"
echo "fuzz-smoke: built in $((SECONDS - start)) s"
for target in $(cargo fuzz list); do
  # New inputs go to a scratch directory: the committed corpus is only read.
  scratch="$(mktemp -d)"
  echo "fuzz-smoke: $target"
  if ! cargo fuzz run --dev -s none --target-dir "$target_dir" "$target" \
    "$scratch" "fuzz/corpus/$target" -- \
    -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$scratch.log" 2>&1; then
    grep -A1 "panicked at" "$scratch.log" >&2 || true
    tail -n 40 "$scratch.log" >&2
    echo "fuzz-smoke: $target failed; the reproducer is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::number_of_executed_units' "$scratch.log" || true
  rm -rf "$scratch" "$scratch.log"
done
echo "fuzz-smoke: every target ran ${secs} s with no crash ($((SECONDS - start)) s in all)"
