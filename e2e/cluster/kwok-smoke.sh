#!/usr/bin/env bash
# kwok-smoke.sh — brings a kwok cluster up in a temporary folder, checks that a Deployment gets
# all its (fake) pods Ready on the fake nodes, and takes the cluster down again. Exit status 0
# only if every step held.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

dir="$(mktemp -d "${TMPDIR:-/tmp}/sluice-kwok.XXXXXX")"
finish() {
  local rc=$?
  bash "$here/kwok-down.sh" "$dir" >/dev/null 2>&1 || true
  if ((rc != 0)); then
    echo "kwok-smoke: FAILED; component logs:" >&2
    find "$dir/kwok" -name '*.log' -print -exec tail -n 20 {} \; >&2 2>/dev/null || true
  fi
  rm -rf "$dir"
  exit $rc
}
trap finish EXIT

bash "$here/kwok-up.sh" "$dir" 2
bin="$(sluice_k8s_bin kubectl)"
k=("$bin/kubectl" --kubeconfig "$dir/kubeconfig")
"${k[@]}" create namespace smoke
"${k[@]}" -n smoke create deployment web --image=registry.invalid/web:1 --replicas=3
"${k[@]}" -n smoke rollout status deployment/web --timeout=120s
ready="$("${k[@]}" -n smoke get deployment web -o jsonpath='{.status.readyReplicas}')"
if [[ "$ready" != 3 ]]; then
  echo "kwok-smoke: expected 3 ready replicas, got '$ready'" >&2
  exit 1
fi
"${k[@]}" -n smoke get pods -o wide
echo "kwok-smoke: ok (3/3 pods Ready on fake nodes)"
