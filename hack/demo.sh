#!/usr/bin/env bash
# demo.sh is `make demo`: on a fresh machine (root), install what is needed, build, bring up
# the local VPC and a one-node cluster, and run the seed tutorial. The cluster stays up.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "make demo needs root: it creates network namespaces, nftables rules and a kubelet" >&2
  exit 1
fi
hack/setup.sh
KUBE_BIN=$(hack/kube-bin.sh | tail -n 1)
CGO_ENABLED=0 go build -trimpath -o bin/ ./cmd/...
exec bin/podsg demo --kube-bin-dir "$KUBE_BIN" --bin-dir "$PWD/bin"
