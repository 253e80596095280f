#!/usr/bin/env bash
# Installs what building and testing Vigil needs on Debian 12 (as root). Idempotent.
set -euo pipefail
# Build: gcc .. clang. Tests: busybox-static .. ca-certificates (containers, network labs, the
# Kubernetes client's TLS store), prometheus (a real scrape), chromium + chromium-driver (the web
# UI), tmux (`vigil top`), python3-venv (the OTLP receiver below), util-linux (losetup), systemd
# (systemd-analyze verify of the unit).
pkgs=(gcc libc6-dev make pkg-config libelf-dev zlib1g-dev clang busybox-static iproute2 procps dnsmasq-base nftables runc containerd podman ca-certificates prometheus chromium chromium-driver tmux python3-venv util-linux systemd)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The OTLP tests' receiver: rotel, a Rust OpenTelemetry collector shipped as a PyPI wheel, in a
# venv of its own (Debian's python3, not whatever python3 comes first on PATH).
if ! /opt/vigil-rotel/bin/python -c 'import rotel' 2>/dev/null; then
  /usr/bin/python3 -m venv /opt/vigil-rotel
  /opt/vigil-rotel/bin/pip install -q --disable-pip-version-check 'rotel==0.0.1a15'
fi
if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  echo "deps: Rust >= 1.95 (cargo, rustfmt) is required; install it with rustup" >&2
  exit 1
fi
