#!/usr/bin/env bash
# bench-scale.sh runs the scale benchmarks (BenchmarkScale*, issue 15): the local VPC with
# 100,000 ENIs (DescribeNetworkInterfaces by filter, podsg-vpc's restart after kill -9) and
# podsg-controller's restart over simulated trunk nodes. Sizes: PODSG_SCALE_ENIS (100000),
# PODSG_SCALE_NODES (200; issue 15's 1700 takes longer) and PODSG_SCALE_PODS_PER_NODE (20).
set -euo pipefail
cd "$(dirname "$0")/.."
KUBEBUILDER_ASSETS=$(hack/kube-bin.sh | tail -n 1)
export KUBEBUILDER_ASSETS
go test -run '^$' -bench '^BenchmarkScale' -benchtime "${BENCHTIME:-1x}" -timeout 90m \
	./internal/vpc/ec2api/ ./internal/vpc/vpccmd/ ./internal/controller/
