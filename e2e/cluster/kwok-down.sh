#!/usr/bin/env bash
# kwok-down.sh DIR — deletes the kwokctl cluster kwok-up.sh DIR created (stops its processes and
# removes its state under DIR/kwok). Idempotent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $# -ne 1 ]]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
[[ -d "$1/kwok" ]] || exit 0
dir="$(cd "$1" && pwd)"
bin="$(sluice_k8s_bin kwokctl)"
KWOK_WORKDIR="$dir/kwok" "$bin/kwokctl" --name sluice delete cluster --kubeconfig "$dir/kubeconfig"
