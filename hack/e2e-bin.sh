#!/usr/bin/env bash
# e2e-bin.sh ensures the upstream NetworkPolicy conformance suites exist in version-keyed cache
# directories outside the repository, building them from the Go module proxy when missing. The
# last line printed is the Kubernetes directory; the network-policy-api directory is printed on
# the line before it:
#
#   $CACHE/kube-e2e-$KUBE_VERSION/e2e.test     Kubernetes' e2e suite (test/e2e), whose
#                                              "[sig-network] Netpol" tests make conformance-netpol runs
#   $CACHE/kube-e2e-$KUBE_VERSION/agnhost      the test image's program (test/images/agnhost), of
#                                              the same Kubernetes version; internal/conformance
#                                              assembles the agnhost image around it
#   $CACHE/kube-e2e-$KUBE_VERSION/ginkgo       the Ginkgo CLI at the version Kubernetes' go.mod
#                                              pins (e2e.test's), which runs its specs in parallel processes
#                                              (as Kubernetes' hack/ginkgo-e2e.sh does)
#   $CACHE/network-policy-api-$NPAPI_VERSION/conformance.test
#                                              sigs.k8s.io/network-policy-api's conformance/ tests
#                                              (ClusterNetworkPolicy, admin and baseline tiers)
#
# Why build: the machine reaches only the module proxy: no release tarball, no image registry.
# Why throwaway modules: k8s.io/kubernetes requires its staging modules at v0.0.0, so each needs a
# replace to the published tag (as hack/kube-bin.sh does); the network-policy-api module keeps its
# own dependency versions. Neither is podsg's graph, and nothing of theirs is committed.
#
# Safe when two runs race: a flock serialises builders, and every file is moved into place by an
# atomic rename, so a reader sees either no file or a complete one.
set -euo pipefail
. "$(dirname "$0")/kube-module.sh"

KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
NPAPI_VERSION=${NPAPI_VERSION:-v0.3.0}
CACHE_ROOT=${PODSG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/podsg}
KDEST="$CACHE_ROOT/kube-e2e-$KUBE_VERSION"
NDEST="$CACHE_ROOT/network-policy-api-$NPAPI_VERSION"

log() { echo "e2e-bin: $*" >&2; }
complete() { [ -x "$KDEST/e2e.test" ] && [ -x "$KDEST/agnhost" ] && [ -x "$KDEST/ginkgo" ] && [ -x "$NDEST/conformance.test" ]; }
done_() {
  echo "$NDEST"
  echo "$KDEST"
  exit 0
}

complete && done_
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.e2e-bin.lock"
log "waiting for the build lock"
flock 9
complete && done_ # another run finished while we waited

WORK=$(mktemp -d "$CACHE_ROOT/.build-e2e-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
mkdir -p "$WORK/k8s" "$WORK/npapi" "$KDEST" "$NDEST"

if [ ! -x "$KDEST/e2e.test" ] || [ ! -x "$KDEST/agnhost" ]; then
  log "building Kubernetes $KUBE_VERSION e2e.test and agnhost (cold: ~15-25 min on 2 cores) in $WORK"
  (
    cd "$WORK/k8s"
    kube_module podsg.local/e2ebuild
    # -tool records the packages (and what their tests import) in go.mod/go.sum.
    go get -tool k8s.io/kubernetes/test/images/agnhost >&2
    go get -t k8s.io/kubernetes/test/e2e >&2
    ldf="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldf="$ldf -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
      ldf="$ldf -X $p.buildDate=2026-01-01T00:00:00Z -X $p.gitCommit=0000000000000000000000000000000000000000"
    done
    log "go build agnhost"
    go build -trimpath -ldflags "$ldf" -o "$WORK/agnhost" k8s.io/kubernetes/test/images/agnhost
    log "go test -c k8s.io/kubernetes/test/e2e"
    go test -c -trimpath -ldflags "$ldf" -o "$WORK/e2e.test" k8s.io/kubernetes/test/e2e
  )
  mv -T "$WORK/agnhost" "$KDEST/agnhost"
  mv -T "$WORK/e2e.test" "$KDEST/e2e.test"
fi
if [ ! -x "$KDEST/ginkgo" ]; then
  # The CLI and the library in e2e.test must be the same version (the CLI drives the suite's
  # processes over a protocol of that version): the one k8s.io/kubernetes's go.mod pins. (A test
  # binary's build information names no dependencies, so e2e.test cannot say.)
  kmod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  gv=$(awk '$1 == "github.com/onsi/ginkgo/v2" { print $2 }' "$kmod")
  if [ -z "$gv" ]; then
    log "k8s.io/kubernetes@$KUBE_VERSION's go.mod ($kmod) requires no github.com/onsi/ginkgo/v2"
    exit 1
  fi
  log "building the Ginkgo CLI $gv (~1 min)"
  GOBIN="$WORK" go install -trimpath -ldflags "-s -w" "github.com/onsi/ginkgo/v2/ginkgo@$gv"
  mv -T "$WORK/ginkgo" "$KDEST/ginkgo"
fi
if [ ! -x "$NDEST/conformance.test" ]; then
  log "building sigs.k8s.io/network-policy-api@$NPAPI_VERSION conformance tests (~3 min)"
  (
    cd "$WORK/npapi"
    printf 'module podsg.local/npapibuild\n\ngo 1.26.0\n' >go.mod
    printf 'package main\n\nfunc main() {}\n' >main.go
    go get -t "sigs.k8s.io/network-policy-api/conformance@$NPAPI_VERSION" >&2
    go test -c -trimpath -ldflags "-s -w" -o "$WORK/conformance.test" sigs.k8s.io/network-policy-api/conformance
  )
  mv -T "$WORK/conformance.test" "$NDEST/conformance.test"
fi
log "done"
done_
