#!/usr/bin/env bash
# Prints the folder that holds (or will hold, after `make deps`) the test cluster binaries for the
# pinned versions. With --check, exits 1 when that folder is not complete.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir="$(sluice_cluster_dir)"
echo "$dir/bin"
if [[ "${1:-}" == "--check" ]] && ! sluice_cluster_complete "$dir"; then
  echo "e2e/cluster: $dir/bin is incomplete; run 'make deps'" >&2
  exit 1
fi
