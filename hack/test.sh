#!/usr/bin/env bash
# test.sh runs every test tier this machine can run: unit, real-apiserver, privileged (as root)
# and end-to-end. It first installs what the tiers need, so that it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# make test runs every tier; PODSG_TEST_TIER=unit (make test-unit) would skip all but one.
if [ -n "${PODSG_TEST_TIER:-}" ]; then
  echo "test: PODSG_TEST_TIER=$PODSG_TEST_TIER is set: make test runs every tier; unset it, or run make test-unit" >&2
  exit 2
fi
hack/setup.sh
# The last line kube-bin.sh prints is the binaries' directory; progress goes to stderr.
KUBEBUILDER_ASSETS=$(hack/kube-bin.sh | tail -n 1)
export KUBEBUILDER_ASSETS
# Under make test a test whose prerequisite is missing fails instead of skipping.
export PODSG_TEST_STRICT=1
if [ "$(id -u)" -ne 0 ]; then
  echo "test: not root: the privileged and e2e tiers will skip" >&2
fi
go build ./...
go vet ./...
if [ "$(id -u)" -eq 0 ] && [ "${PODSG_TEST_HOST_RUN:-}" != 1 ]; then
  # As a fresh machine sees it (no /run/netns mount yet), and fail on anything left behind.
  # PODSG_TEST_HOST_RUN=1 runs against this machine's own /run instead.
  exec hack/fresh-run.sh go test -count=1 -timeout 60m ./...
fi
go test -count=1 -timeout 60m ./...
