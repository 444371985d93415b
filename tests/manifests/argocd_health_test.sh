#!/usr/bin/env bash
# Runs the Argo CD health-check tests (argocd_health_test.lua) against the argocd-cm patch users
# apply, manifests/argocd/argocd-cm-health.yaml, or against the YAML given as $1.
# Needs lua5.1 (Debian package lua5.1, installed by e2e/scripts/install-deps.sh); LUA overrides.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
yaml="${1:-$here/../../manifests/argocd/argocd-cm-health.yaml}"
lua="${LUA:-lua5.1}"
if ! command -v "$lua" >/dev/null 2>&1; then
  echo "argocd_health_test: $lua not found; run e2e/scripts/install-deps.sh (Debian package lua5.1)" >&2
  exit 1
fi
exec "$lua" "$here/argocd_health_test.lua" "$yaml"
