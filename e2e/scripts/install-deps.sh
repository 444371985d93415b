#!/usr/bin/env bash
# Installs the Debian packages Sluice builds and tests with. Idempotent: does nothing when all
# are present.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git ca-certificates openssl curl iproute2
  libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  prometheus-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev libboost-system-dev libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libxgboost-dev libhiredis-dev libsnappy-dev libzstd-dev zlib1g-dev
  redis-server prometheus wrk python3-venv python3-yaml
  nginx python3-matplotlib
  clang clang-format clang-tidy libclang-rt-14-dev
  golang-go
  lua5.1
  buildah debootstrap containerd runc containernetworking-plugins iptables conntrack nftables
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A Go toolchain already on PATH (newer than Debian's) is kept.
if command -v go >/dev/null 2>&1; then
  missing=("${missing[@]/golang-go}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if ((${#missing[@]} == 0)); then
  echo "deps: all Debian packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
