#!/usr/bin/env bash
# bench.sh runs the benchmarks that check podsg's speed and memory targets.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBEBUILDER_ASSETS=$(hack/kube-bin.sh | tail -n 1)
export KUBEBUILDER_ASSETS
# The controller benchmark alone runs twice (with branch reuse and without) through EC2's
# documented throttling, creating 1,000 branch ENIs and, without reuse, a thousand more for a
# rolling update: ~35 min. Alone: go test -run '^$' -bench . ./internal/controller/
# The scale benchmarks (BenchmarkScale*: fleets of thousands of nodes) are make bench-scale's.
go test -run '^$' -bench . -skip '^BenchmarkScale' -benchmem -benchtime "${BENCHTIME:-1x}" -timeout 90m ./...
