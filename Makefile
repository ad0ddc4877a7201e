# podsg — make help lists the targets. Longer logic lives in hack/*.sh.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO            ?= go
CONTROLLER_GEN = $(GO) tool -modfile=go.tools.mod controller-gen
GOLANGCI_LINT  = $(GO) tool -modfile=go.tools.mod golangci-lint
BIN           := bin

.PHONY: help
help: ## Show this menu.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: demo
demo: ## The main job: set up, bring up the local VPC and cluster, run the seed tutorial, print the result.
	hack/demo.sh

.PHONY: test
test: ## Every test tier this machine can run (installs Debian packages, builds Kubernetes binaries once).
	hack/test.sh

.PHONY: test-unit
test-unit: ## The unit tier only: no root, no Kubernetes binaries, no other programs; about a minute on a warm build cache (docs/testing.md).
	PODSG_TEST_TIER=unit $(GO) test -count=1 ./...

.PHONY: test-moto
test-moto: ## Compare the local VPC's answers with moto_server's (needs moto, which only PyPI has: not part of make test).
	$(GO) test -count=1 -tags moto -run TestDifferentialAgainstMoto ./internal/vpc/conformance/

.PHONY: conformance-aws-controller
conformance-aws-controller: ## AWS's vpc-resource-controller, built once from the Go module proxy, gives a pod a branch ENI through the local VPC (root).
	hack/aws-compare.sh conformance

.PHONY: conformance-netpol
conformance-netpol: ## Kubernetes' [sig-network] Netpol e2e tests and network-policy-api's ClusterNetworkPolicy conformance against a local cluster (root; suites built once; README has the counts).
	hack/conformance-netpol.sh

.PHONY: bench-compare
bench-compare: ## The same workload against AWS's vpc-resource-controller and podsg-controller, one table (root; ~15 min).
	hack/aws-compare.sh bench

.PHONY: build
build: ## Build the five binaries of docs/architecture.md and pgcheck into bin/.
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

.PHONY: images
images: build ## Write the podsg-agent and podsg-controller image archives (OCI layout tars) into bin/images/.
	$(BIN)/podsg images save --out $(BIN)/images --bin-dir $(BIN)

.PHONY: generate
generate: ## Regenerate deepcopy, CRDs, RBAC and webhook manifests from the markers.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/... paths=./internal/netpol/calicov3/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	@# Calico's API has a float (order): allowed there only, where Calico's own CRDs have it.
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./internal/netpol/calicov3/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=podsg-controller webhook paths=./internal/... \
		output:rbac:artifacts:config=config/rbac output:webhook:artifacts:config=config/webhook

.PHONY: lint
lint: ## Run golangci-lint with .golangci.yml.
	$(GOLANGCI_LINT) run ./...

.PHONY: verify
verify: generate lint ## Fail if generated code or go.mod is stale, or lint/vet complain.
	$(GO) mod tidy -diff
	$(GO) vet ./...
	@git diff --exit-code -- api config internal/netpol/calicov3 || { echo "generated files are stale: run 'make generate' and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- api config internal/netpol/calicov3)" || { git status --porcelain -- api config internal/netpol/calicov3; echo "untracked generated files: commit them" >&2; exit 1; }

.PHONY: bench
bench: ## Run the benchmarks (speed and memory targets).
	hack/bench.sh

.PHONY: bench-scale
bench-scale: ## Scale benchmarks: the local VPC with 100,000 ENIs, podsg-controller's restart and its size over simulated nodes (~20 min; README).
	hack/bench-scale.sh

.PHONY: clean
clean: ## Remove build outputs (not the cached Kubernetes binaries).
	rm -rf $(BIN)
