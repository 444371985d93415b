#!/usr/bin/env bash
# Builds Argo CD from the module pinned in go/argocd into $SLUICE_CACHE/argocd-<key>/bin: argocd
# (go/argocd/main.go: the application controller and the repo server, picked by argv[0]) and
# links to it named argocd-application-controller and argocd-repo-server, with the release's
# git-verify-wrapper.sh and gpg-wrapper.sh that the repo server runs by name; and the release's
# Application and AppProject CRDs into crds/.
# Its own key and folder, apart from the cluster binaries', so an Argo CD bump never rebuilds
# those. Does nothing when that folder is complete; one build per key at a time (flock), and the
# folder appears only when whole. build.sh runs it after the cluster binaries.
# Argo CD v3.6 needs Go 1.27: the build runs with GOTOOLCHAIN=go1.27.3, which the go command
# fetches from the module proxy once per machine (about 76 MB).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GO_BIN="$(sluice_go)"
dir="$(sluice_argocd_dir)"
if sluice_argocd_complete "$dir"; then
  echo "argocd up to date: $dir/bin/argocd"
  exit 0
fi

mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
if sluice_argocd_complete "$dir"; then
  echo "argocd up to date: $dir/bin/argocd"
  exit 0
fi

tmp="$(mktemp -d "$dir.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"

export GOTOOLCHAIN="$SLUICE_ARGOCD_TOOLCHAIN"
export CGO_ENABLED=0
# go.sum is committed and complete; a build must never rewrite it behind our back.
export GOFLAGS="${GOFLAGS:-} -mod=readonly"

start=$SECONDS
m="$SLUICE_CLUSTER_ROOT/go/argocd"
mod_field() { (cd "$m" && "$GO_BIN" list -m -f "$2" "$1"); }
aver="$(mod_field github.com/argoproj/argo-cd/v3 '{{.Version}}')"
adate="$(mod_field github.com/argoproj/argo-cd/v3 '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}')"
kver="$(mod_field k8s.io/client-go '{{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}')"
# The commit the release was tagged at, when the proxy recorded it.
info="$(cd "$m" && "$GO_BIN" mod download -json "github.com/argoproj/argo-cd/v3@$aver" |
  sed -n 's/.*"Info": *"\(.*\)".*/\1/p')"
acommit=""
[[ -f "$info" ]] && acommit="$(sed -n 's/.*"Hash": *"\([0-9a-f]*\)".*/\1/p' "$info" | head -n1)"
# Stamped the way upstream's Makefile does, so `argocd version` and the components' startup lines
# name the release.
pkg=github.com/argoproj/argo-cd/v3/common
ld="-s -w -X $pkg.version=${aver#v} -X $pkg.buildDate=$adate -X $pkg.gitCommit=$acommit"
ld+=" -X $pkg.gitTag=$aver -X $pkg.gitTreeState=clean -X $pkg.kubectlVersion=$kver"
echo "building argocd $aver with $GOTOOLCHAIN ..."
(cd "$m" && nice -n 10 "$GO_BIN" build -trimpath -buildvcs=false -ldflags "$ld" \
  -o "$tmp/bin/argocd" .)
for c in "${SLUICE_ARGOCD_LINKS[@]}"; do
  ln -s argocd "$tmp/bin/$c"
done
adir="$(mod_field github.com/argoproj/argo-cd/v3 '{{.Dir}}')"
# The repo server runs these of the release's scripts by name (its image puts them on PATH):
# git-verify-wrapper.sh on every revision it renders, gpg-wrapper.sh with GnuPG enabled.
for f in "${SLUICE_ARGOCD_SCRIPTS[@]}"; do
  install -m 0755 "$adir/hack/$f" "$tmp/bin/$f"
done
# The CRDs of the release (Application, AppProject), which the tests install.
mkdir -p "$tmp/crds"
cp "$adir/manifests/crds/application-crd.yaml" "$adir/manifests/crds/appproject-crd.yaml" "$tmp/crds/"
chmod 0644 "$tmp/crds/"*
"$tmp/bin/argocd" version
{
  echo "argo-cd $aver"
  (cd "$m" && "$GO_BIN" version)
} >"$tmp/VERSIONS"

touch "$tmp/$SLUICE_CLUSTER_STAMP"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "argocd built in $((SECONDS - start))s: $dir/bin/argocd ($(stat -c %s "$dir/bin/argocd") bytes)"
