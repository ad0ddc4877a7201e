#!/usr/bin/env bash
# aws-compare.sh runs podsg side by side with AWS's own vpc-resource-controller
# (internal/sidebyside, build tag awsrc). As root: the controllers run in network namespaces of
# the tests' own.
#   hack/aws-compare.sh conformance   AWS's controller gives a pod a branch ENI through the local
#                                     VPC and frees it after its cool-down (~2 min)
#   hack/aws-compare.sh bench         the same workload against both controllers; prints the
#                                     table (PODSG_COMPARE_OUT=FILE also writes it there)
# The first run builds AWS's controller into ~/.cache/podsg (hack/aws-vpc-rc.sh: 3 min warm,
# about 10 cold) and the Kubernetes binaries if missing (hack/kube-bin.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-}
case "$what" in
  conformance) args=(-run '^TestAWSControllerBranchENI$' -timeout 20m) ;;
  bench) args=(-run '^$' -bench '^BenchmarkCompare$' -benchtime 1x -timeout 120m) ;;
  *) echo "usage: $0 conformance|bench" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  echo "aws-compare: run as root: each controller runs in a network namespace of its own" >&2
  exit 1
fi
hack/setup.sh
KUBEBUILDER_ASSETS=$(hack/kube-bin.sh | tail -n 1)
PODSG_AWS_VPC_RC=$(hack/aws-vpc-rc.sh | tail -n 1)
export KUBEBUILDER_ASSETS PODSG_AWS_VPC_RC PODSG_TEST_STRICT=1
# As make test runs tests: a fresh /run, and a failure if anything is left behind.
exec hack/fresh-run.sh go test -tags awsrc -count=1 -v "${args[@]}" ./internal/sidebyside/
