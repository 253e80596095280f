#!/usr/bin/env bash
# Installs build dependencies and builds the release agent: target/release/vigil.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo build --release --locked -p vigil
