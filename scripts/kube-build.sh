#!/usr/bin/env bash
# Builds the local Kubernetes test cluster's binaries from the Go module proxy
# (no binary downloads) and caches them by version:
#   etcd, kube-apiserver, kube-scheduler, kube-controller-manager (k8s.io/kubernetes)
#   kwok (sigs.k8s.io/kwok) and its stage definitions (fake nodes and Pods)
#   kubelet (k8s.io/kubernetes), for the real node of internal/testenv/kube
#   kubectl (k8s.io/kubernetes), the log benchmark's baseline
# The cache dir is complete when it holds the file `complete`; a build goes to
# a temporary dir renamed into place, so an interrupted build never leaves a
# half-filled cache. The kubelet and kubectl came later: a complete dir
# without them gets them added on their own (built to temporary files,
# renamed in), so an existing cache is extended, never rebuilt. Prints the
# cache dir on stdout.
#
# usage: scripts/kube-build.sh            build if missing, print the dir
#        scripts/kube-build.sh --dir      print the dir only (no build)
# env:   AIMA_KUBE_VERSION [v1.37.2]  AIMA_KWOK_VERSION [v0.8.0]
#        AIMA_KUBE_CACHE [$HOME/.cache/aima-kube]
set -euo pipefail
K8S=${AIMA_KUBE_VERSION:-v1.37.2}
KWOK=${AIMA_KWOK_VERSION:-v0.8.0}
CACHE=${AIMA_KUBE_CACHE:-$HOME/.cache/aima-kube}
DIR=$CACHE/kubernetes-$K8S-kwok-$KWOK
if [ "${1:-}" = --dir ]; then echo "$DIR"; exit 0; fi
added="kubelet kubectl" # built after the first caches were made
have_added() { local b; for b in $added; do [ -x "$DIR/$b" ] || return 1; done; }
if [ -f "$DIR/complete" ] && have_added; then echo "$DIR"; exit 0; fi

log() { echo "kube-build: $*" >&2; }
t0=$SECONDS
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # one build at a time (CI and a test may race for it)
if [ -f "$DIR/complete" ] && have_added; then echo "$DIR"; exit 0; fi

export GOWORK=off GOFLAGS="-mod=mod -trimpath -buildvcs=false" CGO_ENABLED=0
SV=v0${K8S#v1} # v1.37.2 -> v0.37.2: the staging modules' published version
minor=${SV#v0.}; minor=${minor%%.*}
work=$(mktemp -d "$CACHE/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
out=$work/bin
mkdir -p "$out/stages"

# k8s.io/kubernetes as downloaded is not buildable as a module: its staging
# modules are replaced by ./staging paths absent from the zip, and vendor/
# disagrees with -mod=mod. Drop both and require the published v0.x modules.
k8s_source() {
  local src drops
  src=$(cd / && go mod download -json "k8s.io/kubernetes@$K8S" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  [ -n "$src" ] || { log "cannot download k8s.io/kubernetes@$K8S"; exit 1; }
  cp -r "$src" "$work/kubernetes"
  chmod -R u+w "$work/kubernetes"
  cd "$work/kubernetes"
  rm -rf vendor go.work go.work.sum
  drops=$(sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging.*#-dropreplace=\1#p' go.mod)
  # shellcheck disable=SC2086
  [ -z "$drops" ] || go mod edit $drops
  sed -i -E "s#^(\tk8s\.io/[a-z0-9-]+) v0\.0\.0\$#\1 $SV#" go.mod
}
# kubectl and client-go refuse the unstamped "-master+$Format:%H$" version.
ldf="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldf="$ldf -X $p.gitVersion=$K8S -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

# A cache built before the kubelet or kubectl joined: add what is missing
# alone, leaving the rest.
if [ -f "$DIR/complete" ]; then
  k8s_source
  for b in $added; do
    [ -x "$DIR/$b" ] && continue
    log "building $b $K8S into $DIR"
    nice -n 10 go build -ldflags "$ldf" -o "$out/$b" "./cmd/$b"
    mv "$out/$b" "$DIR/$b.tmp"
    mv "$DIR/$b.tmp" "$DIR/$b"
  done
  log "done in $((SECONDS - t0))s"
  echo "$DIR"
  exit 0
fi
k8s_source
# etcd as a library main: Debian's etcd 3.4 cannot serve the watches the API
# server needs (RequestWatchProgress), the module's etcdmain can.
mkdir -p cmd/aima-etcd
cat >cmd/aima-etcd/main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
log "building etcd kube-apiserver kube-scheduler kube-controller-manager kubelet kubectl $K8S"
nice -n 10 go build -ldflags "$ldf" -o "$out/" \
  ./cmd/aima-etcd ./cmd/kube-apiserver ./cmd/kube-scheduler ./cmd/kube-controller-manager ./cmd/kubelet ./cmd/kubectl
mv "$out/aima-etcd" "$out/etcd"
cd /
rm -rf "$work/kubernetes"

log "building kwok $KWOK"
GOBIN=$out nice -n 10 go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK"
kd=$(go mod download -json "sigs.k8s.io/kwok@$KWOK" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
for s in node/fast node/heartbeat pod/general; do
  for f in "$kd/kustomize/stage/$s"/*.yaml; do
    [ "${f##*/}" = kustomization.yaml ] || cp "$f" "$out/stages/${s//\//-}-${f##*/}"
  done
done

echo "kubernetes $K8S kwok $KWOK built in $((SECONDS - t0))s" >"$out/complete"
rm -rf "$DIR"
mv "$out" "$DIR"
log "done in $((SECONDS - t0))s: $DIR"
echo "$DIR"
