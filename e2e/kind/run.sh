#!/usr/bin/env bash
# run.sh [OUT]: the fraud scenario of e2e/scenario on a kind cluster, for machines with a Docker
# engine. Builds the images with `docker build` (the Dockerfiles' default stages, which
# compile from source), creates a kind cluster, `kind load`s the images into it, runs
# e2e/scenario/fraud.sh with the host reaching Services through `kubectl port-forward`, and deletes
# the cluster on exit. Needs docker, kind, kubectl, helm, python3 and builds of sluice-load and
# kubectl-sluice (cmake --build build --target sluice-load kubectl-sluice). OUT (default e2e/.work/kind) keeps logs and figures.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
source "$repo/e2e/images/lib.sh"

for tool in docker kind kubectl helm python3; do
  command -v "$tool" >/dev/null || { echo "e2e/kind: $tool is missing" >&2; exit 1; }
done
out="${1:-$repo/e2e/.work/kind}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cluster="${SLUICE_KIND_CLUSTER:-sluice-e2e}"
version="$(sluice_version)"
revision="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"

images=()
build() {
  local name="$1" dockerfile="$2" ref="$SLUICE_IMAGE_REPO/$1:$version"
  echo "== docker build $ref"
  docker build -f "$repo/$dockerfile" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    -t "$ref" "$repo"
  images+=("$ref")
}
build sluice-operator operator/Dockerfile
build sluice-dataplane dataplane/Dockerfile
build sluice-e2e-models e2e/models/Dockerfile
build sluice-e2e-redis e2e/features/Dockerfile

echo "== kind create cluster --name $cluster"
kind create cluster --name "$cluster" --kubeconfig "$out/kubeconfig" --wait 180s
trap 'kind delete cluster --name "$cluster"' EXIT
kind load docker-image --name "$cluster" "${images[@]}"

KUBECONFIG="$out/kubeconfig" KUBECTL=kubectl HELM=helm SLUICE_REACH=port-forward \
  bash "$repo/e2e/scenario/fraud.sh" "$out/scenario"
