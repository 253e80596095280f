#!/usr/bin/env bash
# Installs what building and testing Vigil needs on Debian 12 (as root). Idempotent.
set -euo pipefail
pkgs=(gcc libc6-dev make pkg-config libelf-dev zlib1g-dev clang busybox-static iproute2 procps dnsmasq-base nftables runc containerd podman ca-certificates)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  echo "deps: Rust >= 1.95 (cargo, rustfmt) is required; install it with rustup" >&2
  exit 1
fi
