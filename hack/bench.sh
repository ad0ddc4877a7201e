#!/usr/bin/env bash
# bench.sh runs the benchmarks that check podsg's speed and memory targets.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBEBUILDER_ASSETS=$(hack/kube-bin.sh | tail -n 1)
export KUBEBUILDER_ASSETS
# The controller benchmark alone allocates 500 branch ENIs through EC2-like throttling: ~10 min.
go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-1x}" -timeout 45m ./...
