#!/usr/bin/env bash
# build.sh [--from-source] [OUT]: builds the Sluice images without a daemon (buildah, vfs storage,
# chroot isolation) into OCI archives under OUT (default build/images):
#   sluice-operator.tar   ghcr.io/sluice-dev/sluice-operator:<version>   (operator/Dockerfile)
#   sluice-dataplane.tar  ghcr.io/sluice-dev/sluice-dataplane:<version>  (dataplane/Dockerfile)
#   sluice-e2e-models.tar ghcr.io/sluice-dev/sluice-e2e-models:<version> (e2e/models/Dockerfile), the
#                         HTTP model repository the demo and the end-to-end tests fetch models from
#                         (and the FeatureViews' batch sources, from a ConfigMap the tests fill)
#   sluice-e2e-redis.tar  ghcr.io/sluice-dev/sluice-e2e-redis:<version> (e2e/features/Dockerfile), the
#                         Redis online store of the demo and the end-to-end tests
#   pause.tar             registry.k8s.io/pause:<tag>, the real node's sandbox image, from the
#                         pause binary e2e/cluster/build.sh compiles from the pinned Kubernetes
# FROM debian:bookworm-slim resolves to a local base debootstrapped from the Debian mirror apt uses,
# built once per Debian point release and cached as $SLUICE_CACHE/images/<key>.tar.
# By default the images copy the binaries of the host build (BUILD, default build; same Debian 12
# userland: Dockerfile target from-host); --from-source compiles them in the Dockerfiles' build
# stage instead (JOBS=N limits its compile jobs). SLUICE_IMAGES="sluice-dataplane" builds only
# the images named. Needs root (debootstrap, chroot) and
# buildah + debootstrap (make deps).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

from_source=0
if [[ "${1:-}" == "--from-source" ]]; then
  from_source=1
  shift
fi
out="${1:-$SLUICE_REPO_ROOT/${BUILD:-build}/images}"
host_build="$SLUICE_REPO_ROOT/${BUILD:-build}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { echo "e2e/images: $tool is missing (make deps)" >&2; exit 1; }
done
if [[ "$(id -u)" -ne 0 ]]; then
  echo "e2e/images: needs root (debootstrap, buildah --isolation chroot)" >&2
  exit 1
fi
total_start=$SECONDS
bah() { sluice_buildah "$out" "$@"; }

# --- the Debian base --------------------------------------------------------------------------
suite="$SLUICE_BASE_SUITE"
mirror="$(sluice_debian_mirror)"
cache="$(sluice_cache_root)/images"
mkdir -p "$cache"
# The key: the suite's point release (Release "Version", e.g. 12.15) and this recipe. Offline,
# the newest cached base of the suite is used.
recipe_hash="$(sed -n '/^# --- the Debian base/,/^# --- end of base/p' "${BASH_SOURCE[0]}" | sha256sum | cut -c1-8)"
release="$(curl -fsS --max-time 20 "$mirror/dists/$suite/Release" 2>/dev/null | sed -n 's/^Version: *//p' | head -n1 || true)"
if [[ -n "$release" ]]; then
  base_key="debian-$suite-$release-$recipe_hash"
else
  base_key="$(cd "$cache" && ls -t "debian-$suite-"*"-$recipe_hash.tar" 2>/dev/null | head -n1 | sed 's/\.tar$//' || true)"
  [[ -n "$base_key" ]] || { echo "e2e/images: $mirror unreachable and no cached base" >&2; exit 1; }
fi
base_tar="$cache/$base_key.tar"
if [[ ! -f "$base_tar" ]]; then
  exec 9>"$base_tar.lock"
  flock 9
  if [[ ! -f "$base_tar" ]]; then
    start=$SECONDS
    echo "debootstrap $suite from $mirror ..."
    rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs"' EXIT
    nice -n 10 debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$cache/$base_key.log" 2>&1 || {
      tail -n 20 "$cache/$base_key.log" >&2
      exit 1
    }
    # Updates and security, like the official image; the host's mirror.
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    # "slim" as debuerreotype makes it: no docs, man pages or translations, now or on later installs.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
DPKG
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
APT
    echo 'APT::Install-Recommends "false";' >"$rootfs/etc/apt/apt.conf.d/docker-no-recommends"
    find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    rm -rf "$rootfs"/usr/share/{info,linda,lintian,locale,man,groff}/* \
      "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/root/.bash_history
    : >"$rootfs/etc/machine-id"
    tar --numeric-owner --xattrs -C "$rootfs" -cf "$base_tar.tmp" .
    mv "$base_tar.tmp" "$base_tar"
    rm -rf "$rootfs"
    trap - EXIT
    echo "  base $base_key built in $((SECONDS - start))s ($(du -m "$base_tar" | cut -f1) MB)"
  fi
  exec 9>&-
fi
# --- end of base ---

# debian:bookworm-slim in this storage is the cached base (re-imported when the key changes).
base_ref="docker.io/library/debian:$suite-slim"
have="$(bah inspect --type image --format '{{index .OCIv1.Config.Labels "dev.sluice.base"}}' "$base_ref" 2>/dev/null || true)"
if [[ "$have" != "$base_key" ]]; then
  start=$SECONDS
  ctr="$(bah from --pull=never scratch)"
  bah add --quiet "$ctr" "$base_tar" / >/dev/null
  bah config --cmd bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --label "dev.sluice.base=$base_key" --label "org.opencontainers.image.version=$release" "$ctr"
  bah commit --quiet --rm "$ctr" "$base_ref" >/dev/null
  echo "imported $base_key as $base_ref in $((SECONDS - start))s"
fi

# --- images ---------------------------------------------------------------------------------
version="$(sluice_version)"
revision="$(git -C "$SLUICE_REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$SLUICE_REPO_ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
  revision+="-dirty"
fi

# export REF FILE: the image as an OCI archive whose index names REF in full, so
# `ctr images import` and `podman load` give it that name.
export_image() {
  rm -f "$2"
  bah push --quiet "$1" "oci-archive:$2:$1" >/dev/null
  echo "  $1 -> $2 ($(du -m "$2" | cut -f1) MB)"
}

# context for --target from-host: the LICENSE and the stripped host binaries at the paths the
# Dockerfiles copy from; a few MB instead of the whole tree.
ctx_host="$out/context-host"
if ((!from_source)); then
  rm -rf "$ctx_host"
  mkdir -p "$ctx_host"
  cp "$SLUICE_REPO_ROOT/LICENSE" "$ctx_host/"
  for b in operator/sluice-operator operator/kubectl-sluice/kubectl-sluice dataplane/server/sluice-server dataplane/router/sluice-router \
           dataplane/materializer/sluice-materialize; do
    if [[ ! -x "$host_build/$b" ]]; then
      echo "e2e/images: $host_build/$b is missing; build it first (make build) or use --from-source" >&2
      exit 1
    fi
    mkdir -p "$ctx_host/build/$(dirname "$b")"
    strip -o "$ctx_host/build/$b" "$host_build/$b"
  done
fi

# context for --from-source: the files git tracks or would track (what a clone plus local edits
# has), a few MB; the repository root itself also holds build trees and buildah storage that
# buildah would walk despite .dockerignore.
ctx_src="$out/context-source"
if ((from_source)); then
  rm -rf "$ctx_src"
  mkdir -p "$ctx_src"
  if git -C "$SLUICE_REPO_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$SLUICE_REPO_ROOT" && git ls-files -co --exclude-standard -z |
      tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$ctx_src" -xf -
  else
    (cd "$SLUICE_REPO_ROOT" && tar --exclude-vcs --exclude='./build*' -cf - .) | tar -C "$ctx_src" -xf -
  fi
fi

# context for the model repository: the LICENSE and the model files it serves.
ctx_models="$out/context-models"
rm -rf "$ctx_models"
mkdir -p "$ctx_models/bench/fraud/model"
cp "$SLUICE_REPO_ROOT/LICENSE" "$ctx_models/"
cp "$SLUICE_REPO_ROOT"/bench/fraud/model/fraud.{json,ubj} "$ctx_models/bench/fraud/model/"

build_image() {
  local name="$1" dockerfile="$2" ref="$SLUICE_IMAGE_REPO/$1:$version" start=$SECONDS
  local args=(--layers --pull=never --isolation chroot --quiet
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" -f "$SLUICE_REPO_ROOT/$dockerfile" -t "$ref")
  echo "building $ref ($dockerfile, $( ((from_source)) && echo from source || echo from host binaries)) ..."
  if [[ "$name" == sluice-e2e-models || "$name" == sluice-e2e-redis ]]; then
    nice -n 10 buildah --root "$out/storage" --runroot "$out/run" --storage-driver "${SLUICE_BUILDAH_DRIVER:-vfs}" bud "${args[@]}" \
      "$ctx_models" >"$out/$name.build.log" 2>&1
  elif ((from_source)); then
    nice -n 10 buildah --root "$out/storage" --runroot "$out/run" --storage-driver "${SLUICE_BUILDAH_DRIVER:-vfs}" bud "${args[@]}" \
      --build-arg "JOBS=${JOBS:-}" --target from-source "$ctx_src" >"$out/$name.build.log" 2>&1
  else
    nice -n 10 buildah --root "$out/storage" --runroot "$out/run" --storage-driver "${SLUICE_BUILDAH_DRIVER:-vfs}" bud "${args[@]}" \
      --target from-host "$ctx_host" >"$out/$name.build.log" 2>&1
  fi || { tail -n 30 "$out/$name.build.log" >&2; exit 1; }
  export_image "$ref" "$out/$name.tar"
  echo "  built in $((SECONDS - start))s"
}
for name in ${SLUICE_IMAGES:-sluice-operator sluice-dataplane sluice-e2e-models sluice-e2e-redis}; do
  case "$name" in
    sluice-e2e-models) build_image sluice-e2e-models e2e/models/Dockerfile ;;
    sluice-e2e-redis) build_image sluice-e2e-redis e2e/features/Dockerfile ;;
    sluice-operator) build_image sluice-operator operator/Dockerfile ;;
    sluice-dataplane) build_image sluice-dataplane dataplane/Dockerfile ;;
    *) echo "e2e/images: unknown image $name" >&2; exit 2 ;;
  esac
done

# The sandbox image for the real node's containerd.
bin="$(sluice_k8s_bin pause 2>/dev/null || true)"
if [[ -n "$bin" ]]; then
  pause_ref="registry.k8s.io/pause:$(cat "$bin/pause.version")"
  ctr="$(bah from --pull=never scratch)"
  bah copy --quiet "$ctr" "$bin/pause" /pause
  bah config --entrypoint '["/pause"]' --user 65535:65535 "$ctr"
  bah commit --quiet --rm "$ctr" "$pause_ref" >/dev/null
  export_image "$pause_ref" "$out/pause.tar"
else
  echo "no pause binary in the cluster binaries (bash e2e/cluster/build.sh); skipped pause.tar"
fi
echo "images built in $((SECONDS - total_start))s: $out"
