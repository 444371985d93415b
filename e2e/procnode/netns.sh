#!/usr/bin/env bash
# netns.sh [--pod-cidr=CIDR] CMD [ARGS...] — runs CMD in a private network namespace in which `lo`
# is up and all of CIDR (default 10.244.0.0/16) is routed to it, so sluice-procnode can give pods
# addresses that kube-apiserver accepts in EndpointSlices and everything in the namespace can
# reach. Root gets a plain network namespace; other users an unprivileged user namespace too.
# Nothing outside the namespace sees these addresses, and 127.0.0.1 works inside as usual.
set -euo pipefail
cidr=10.244.0.0/16
if [[ "${1:-}" == --pod-cidr=* ]]; then
  cidr="${1#--pod-cidr=}"
  shift
fi
if [[ $# -eq 0 ]]; then
  echo "usage: $0 [--pod-cidr=CIDR] CMD [ARGS...]" >&2
  exit 2
fi
userns=()
[[ "$(id -u)" -eq 0 ]] || userns=(--user --map-root-user)
exec unshare "${userns[@]}" --net -- bash -c '
  set -e
  ip link set lo up
  ip route add local "$0" dev lo table local
  exec "$@"' "$cidr" "$@"
