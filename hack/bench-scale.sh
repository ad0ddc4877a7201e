#!/usr/bin/env bash
# bench-scale.sh runs the scale benchmarks (BenchmarkScale*, issue 15): the local VPC with
# 100,000 ENIs (DescribeNetworkInterfaces by filter, loading the state, podsg-vpc's restart
# after kill -9), podsg-controller's restart over simulated trunk nodes, and podsg-controller's
# binary over a cluster of simulated nodes and pods. Sizes: PODSG_SCALE_ENIS (100000),
# PODSG_SCALE_NODES (200; issue 15's 1700 takes longer) and PODSG_SCALE_PODS_PER_NODE (20) for
# the restart, PODSG_SCALE_SIZE_NODES (1000) and PODSG_SCALE_SIZE_PODS (20000; the issue's
# 5000 and 100000 take far longer: README) for the size benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBEBUILDER_ASSETS=$(hack/kube-bin.sh | tail -n 1)
export KUBEBUILDER_ASSETS
go test -run '^$' -bench '^BenchmarkScale' -benchtime "${BENCHTIME:-1x}" -timeout 120m \
	./internal/vpc/ec2api/ ./internal/vpc/state/ ./internal/vpc/vpccmd/ ./internal/controller/
