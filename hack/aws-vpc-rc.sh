#!/usr/bin/env bash
# aws-vpc-rc.sh ensures AWS's own security-groups-for-pods controller,
# github.com/aws/amazon-vpc-resource-controller-k8s, is built at a pinned release in a
# version-keyed cache directory outside the repository, building it from the Go module proxy
# when missing. The last line printed is the path of the binary; beside it are the CRDs
# (crd/*.yaml) and webhook configurations (webhook/manifests.yaml) of the same release, which
# the tests install as AWS ships them.
#
# Why build: the machine reaches only the module proxy, and AWS publishes the controller as an
# image only. Neither AWS's code nor the binary is ever committed: the comparison
# (make bench-compare, make conformance-aws-controller) runs it unmodified, as a subprocess.
# Why `go install pkg@version`: its go.mod has no replace directives, so the module builds as
# published, with exactly the dependency versions AWS pinned, and no module of ours is involved.
#
# Safe when two runs race: a flock serialises builders, and the binary appears by an atomic
# rename, so a reader sees either no binary or a complete one.
set -euo pipefail

VERSION=${AWS_VPC_RC_VERSION:-v1.8.2}
CACHE_ROOT=${PODSG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/podsg}
DEST="$CACHE_ROOT/aws-vpc-resource-controller-$VERSION"
BIN="$DEST/controller"
MODULE=github.com/aws/amazon-vpc-resource-controller-k8s

log() { echo "aws-vpc-rc: $*" >&2; }

complete() { [ -x "$BIN" ] && [ -f "$DEST/webhook/manifests.yaml" ] && [ -f "$DEST/crd/vpcresources.k8s.aws_cninodes.yaml" ]; }

if complete; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.aws-vpc-rc.lock"
log "waiting for the build lock"
flock 9
if complete; then # another run finished while we waited
  echo "$BIN"
  exit 0
fi

WORK=$(mktemp -d "$CACHE_ROOT/.build-aws-vpc-rc-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "building $MODULE@$VERSION (about 3 min warm, 10 cold, on 2 cores) in $WORK"
# The version variables AWS's Makefile sets, so its logs and events name the release.
ldf="-s -w -X $MODULE/pkg/version.GitVersion=$VERSION -X $MODULE/pkg/version.GitCommit=module-proxy"
ldf="$ldf -X $MODULE/pkg/version.BuildDate=2026-01-01T00:00:00Z"
(
  cd "$WORK"
  # Outside any module, so the build cannot pick up podsg's go.mod.
  GOBIN="$WORK/bin" CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local \
    go install -trimpath -ldflags "$ldf" "$MODULE@$VERSION"
)
mkdir -p "$WORK/out/crd" "$WORK/out/webhook"
mv "$WORK/bin/amazon-vpc-resource-controller-k8s" "$WORK/out/controller"
# go install left the module in the module cache; its manifests are read-only there.
src=$(cd "$WORK" && GOFLAGS=-mod=mod go mod download -json "$MODULE@$VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
cp "$src"/config/crd/bases/*.yaml "$WORK/out/crd/"
cp "$src/config/webhook/manifests.yaml" "$WORK/out/webhook/"
chmod -R u+w "$WORK/out"
rm -rf "$DEST"
mv "$WORK/out" "$DEST"
log "done"
echo "$BIN"
