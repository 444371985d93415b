# Sourced by the e2e/images scripts: the cached Debian base and the buildah invocation.
# shellcheck source=../cluster/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../cluster" && pwd)/lib.sh"

SLUICE_IMAGES_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SLUICE_REPO_ROOT="$(cd "$SLUICE_IMAGES_ROOT/../.." && pwd)"
SLUICE_BASE_SUITE="${SLUICE_BASE_SUITE:-bookworm}"
# Where the images would be published; the chart's values name the same repository.
SLUICE_IMAGE_REPO="${SLUICE_IMAGE_REPO:-ghcr.io/sluice-dev}"

# The Debian mirror apt on this machine uses (deb822 or one-line sources), else deb.debian.org.
sluice_debian_mirror() {
  local m
  m="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ {u=$2} /^Suites:/ && $0 ~ /(^| )'"$SLUICE_BASE_SUITE"'( |$)/ && u !~ /security/ {print u; exit}')"
  [[ -n "$m" ]] || m="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" && $3 == "'"$SLUICE_BASE_SUITE"'" {print $2; exit}')"
  echo "${m:-http://deb.debian.org/debian}"
}

# The project version CMake builds (project(sluice VERSION x.y.z)).
sluice_version() {
  sed -n 's/^project(sluice VERSION \([0-9.]*\).*/\1/p' "$SLUICE_REPO_ROOT/CMakeLists.txt"
}

# buildah with its own storage under DIR, so it needs neither a daemon nor the host's
# /var/lib/containers. SLUICE_BUILDAH_DRIVER: vfs (default: works anywhere, copies every layer in
# full) or overlay (needs overlayfs mounts, i.e. root outside a user namespace). One storage
# folder keeps the driver it was created with.
sluice_buildah() {
  local dir="$1"
  shift
  buildah --root "$dir/storage" --runroot "$dir/run" --storage-driver "${SLUICE_BUILDAH_DRIVER:-vfs}" "$@"
}
