#!/usr/bin/env bash
# Builds CoreDNS, the real node's cluster DNS, from the module pinned in go/coredns (our main.go
# with only the plugins node-up.sh's Corefile uses) into $SLUICE_CACHE/coredns-<key>/bin/coredns.
# Its own key and folder, apart from the cluster binaries', so a CoreDNS change never rebuilds
# those. Does nothing when that folder is complete; one build per key at a time (flock), and the
# folder appears only when whole. build.sh runs it after the cluster binaries.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GO_BIN="$(sluice_go)"
dir="$(sluice_coredns_dir)"
if sluice_coredns_complete "$dir"; then
  echo "coredns up to date: $dir/bin/coredns"
  exit 0
fi

mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
if sluice_coredns_complete "$dir"; then
  echo "coredns up to date: $dir/bin/coredns"
  exit 0
fi

tmp="$(mktemp -d "$dir.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"

export CGO_ENABLED=0
# go.sum is committed and complete; a build must never rewrite it behind our back.
export GOFLAGS="${GOFLAGS:-} -mod=readonly"

start=$SECONDS
m="$SLUICE_CLUSTER_ROOT/go/coredns"
cver="$(cd "$m" && "$GO_BIN" list -m -f '{{.Version}}' github.com/coredns/coredns)"
# -version prints the commit the release was tagged at, when the proxy recorded it.
info="$(cd "$m" && "$GO_BIN" mod download -json "github.com/coredns/coredns@$cver" |
  sed -n 's/.*"Info": *"\(.*\)".*/\1/p')"
ccommit=""
[[ -f "$info" ]] && ccommit="$(sed -n 's/.*"Hash": *"\([0-9a-f]*\)".*/\1/p' "$info" | head -n1)"
echo "building coredns $cver ..."
# No VCS stamp: main.go sits in the Sluice checkout, whose git state says nothing about CoreDNS
# (and git refuses to report on a checkout another user owns).
(cd "$m" && nice -n 10 "$GO_BIN" build -trimpath -buildvcs=false \
  -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=${ccommit:0:7}" -o "$tmp/bin/coredns" .)
{
  echo "coredns $cver"
  "$GO_BIN" version
} >"$tmp/VERSIONS"
# The plugins it registers (the Corefile can use those in main.go's directives).
"$tmp/bin/coredns" -plugins | awk 'NF {print "plugin " $1}' >>"$tmp/VERSIONS"

touch "$tmp/$SLUICE_CLUSTER_STAMP"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "coredns built in $((SECONDS - start))s: $dir/bin/coredns ($(stat -c %s "$dir/bin/coredns") bytes)"
