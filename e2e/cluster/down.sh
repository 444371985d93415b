#!/usr/bin/env bash
# down.sh DIR — stops the kube-apiserver and etcd that up.sh DIR started (and nothing else: a pid
# is signalled only while its command line still names DIR). Keeps DIR's data; idempotent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $# -ne 1 ]]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
[[ -d "$1" ]] || exit 0
dir="$(cd "$1" && pwd)"
[[ -f "$dir/env" ]] || exit 0
# shellcheck disable=SC1091
source "$dir/env"
sluice_stop_pid "${APISERVER_PID:-}" "$dir" kube-apiserver
sluice_stop_pid "${ETCD_PID:-}" "$dir" etcd
rm -f "$dir/env"
echo "stopped the cluster in $dir"
