#!/usr/bin/env bash
# Runs the whole test suite as root: unit tests, ABI/verifier tests, end-to-end tests that load
# the real BPF programs and watch real processes. Uses the cheap dev profile.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
if [ "$(id -u)" != 0 ]; then
  echo "test: must run as root (the tests load BPF programs)" >&2
  exit 1
fi
cargo test --locked --workspace --all-targets -- --test-threads 2
