#!/usr/bin/env bash
# conformance-netpol.sh runs the upstream NetworkPolicy conformance suites against a local cluster
# with podsg enforcing network policy (make conformance-netpol; root):
#   - Kubernetes' own e2e tests "[sig-network] Netpol" (e2e.test of KUBE_VERSION), and
#   - sigs.k8s.io/network-policy-api's conformance tests for ClusterNetworkPolicy (admin and
#     baseline tiers).
# The first run builds both into ~/.cache/podsg (hack/e2e-bin.sh: cold ~15-25 min on 2 cores).
# The test (internal/localcluster, build tag netpolconf) brings up a 2-node local cluster under
# the machine-wide cluster lock, imports the agnhost image it assembles, runs each suite,
# prints and writes the counts (PODSG_NETPOL_CONF_OUT, default ./bin/conformance-netpol), tears
# down. PODSG_NETPOL_CONF_FOCUS / _RUN / _SKIP narrow it for debugging (see the test file).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "conformance-netpol: run as root: it brings up a local cluster" >&2
  exit 1
fi
hack/setup.sh
KUBEBUILDER_ASSETS=$(hack/kube-bin.sh | tail -n 1)
mapfile -t dirs < <(hack/e2e-bin.sh | tail -n 2)
PODSG_NETPOL_NPAPI_DIR=${dirs[0]}
PODSG_NETPOL_E2E_DIR=${dirs[1]}
PODSG_NETPOL_CONF_OUT=${PODSG_NETPOL_CONF_OUT:-$PWD/bin/conformance-netpol}
export KUBEBUILDER_ASSETS PODSG_NETPOL_E2E_DIR PODSG_NETPOL_NPAPI_DIR PODSG_NETPOL_CONF_OUT PODSG_TEST_STRICT=1
rm -rf "$PODSG_NETPOL_CONF_OUT"
mkdir -p "$PODSG_NETPOL_CONF_OUT"
# One local cluster per machine (fixed ports); as make test runs tests: a fresh /run, and a
# failure if anything is left behind.
exec flock /tmp/podsg-cluster.lock hack/fresh-run.sh \
  go test -tags netpolconf -count=1 -v -timeout 150m -run '^TestNetpolConformance$' ./internal/localcluster/
