#!/usr/bin/env bash
# kube-bin.sh ensures the real Kubernetes binaries podsg tests and runs against exist in a
# version-keyed cache directory outside the repository, building them from the Go module proxy
# when missing. The last line printed is that directory.
#
# It holds kube-apiserver, kube-scheduler, kube-controller-manager, kubectl, kubelet and
# kube-proxy (all of KUBE_VERSION), etcd and etcdctl (ETCD_VERSION), and `coredns`, a link to
# CoreDNS built in a directory of its own version (COREDNS_VERSION). A directory that lacks only
# some of them (an older kube-bin.sh made it) gets just those built and added.
#
# Why build: the machine reaches only the module proxy, so no release tarball can be downloaded.
# Why a throwaway module: k8s.io/kubernetes requires its staging modules at v0.0.0, so each needs
# a replace to the published tag; keeping that out of podsg's go.mod keeps our graph small.
#
# Safe when two runs race: a flock serialises builders, and every binary is moved into place by
# an atomic rename, so a reader sees either no binary or a complete one.
set -euo pipefail
. "$(dirname "$0")/kube-module.sh"

KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
CACHE_ROOT=${PODSG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/podsg}
DEST="$CACHE_ROOT/kube-$KUBE_VERSION-etcd-$ETCD_VERSION"
COREDNS_DIR="$CACHE_ROOT/coredns-$COREDNS_VERSION"
KUBE_BINARIES=(kubectl kubelet kube-proxy kube-scheduler kube-controller-manager kube-apiserver)
BINARIES=("${KUBE_BINARIES[@]}" etcd coredns)

complete() {
  local b
  for b in "${BINARIES[@]}"; do [ -x "$1/$b" ] || return 1; done
  [ "$(readlink "$1/coredns")" = "$COREDNS_DIR/coredns" ]
}

log() { echo "kube-bin: $*" >&2; }

if complete "$DEST"; then
  echo "$DEST"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.kube-bin.lock"
log "waiting for the build lock"
flock 9
if complete "$DEST"; then # another run finished while we waited
  echo "$DEST"
  exit 0
fi

WORK=$(mktemp -d "$CACHE_ROOT/.build-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
mkdir -p "$WORK/k8s" "$WORK/etcd" "$WORK/coredns" "$WORK/bin" "$DEST"

# missing lists the binaries of $@ that DEST lacks.
missing() {
  local b
  for b in "$@"; do [ -x "$DEST/$b" ] || echo "$b"; done
}

mapfile -t kube < <(missing "${KUBE_BINARIES[@]}")
if [ ${#kube[@]} -gt 0 ]; then
  log "building Kubernetes $KUBE_VERSION: ${kube[*]} (cold, all of them: ~15 min on 2 cores) in $WORK"
  (
    cd "$WORK/k8s"
    kube_module podsg.local/kubebuild
    pkgs=()
    for c in "${kube[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    go get -tool "${pkgs[@]}" >&2
    ldf="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldf="$ldf -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
      ldf="$ldf -X $p.buildDate=2026-01-01T00:00:00Z -X $p.gitCommit=0000000000000000000000000000000000000000"
    done
    for c in "${kube[@]}"; do
      log "go build $c"
      go build -trimpath -ldflags "$ldf" -o "$WORK/bin/$c" "k8s.io/kubernetes/cmd/$c"
    done
  )
fi
if [ -n "$(missing etcd etcdctl)" ]; then
  (
    cd "$WORK/etcd"
    printf 'module podsg.local/etcdbuild\n\ngo 1.26.0\n' >go.mod
    go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION" >&2
    log "go build etcd"
    go build -trimpath -ldflags "-s -w" -o "$WORK/bin/etcd" go.etcd.io/etcd/server/v3
    go build -trimpath -ldflags "-s -w" -o "$WORK/bin/etcdctl" go.etcd.io/etcd/etcdctl/v3
  )
fi
# CoreDNS has its own version, so its own directory; DEST links to it. Its main package is
# the module root, whose go.mod has no replace directives: go install works as is.
if [ ! -x "$COREDNS_DIR/coredns" ]; then
  log "go install github.com/coredns/coredns@$COREDNS_VERSION (~2 min)"
  GOBIN="$WORK/coredns" go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  mkdir -p "$COREDNS_DIR"
  mv "$WORK/coredns/coredns" "$COREDNS_DIR/coredns"
fi
ln -sfn "$COREDNS_DIR/coredns" "$WORK/bin/coredns"
for f in "$WORK"/bin/*; do
  mv -T "$f" "$DEST/$(basename "$f")"
done
log "done"
echo "$DEST"
