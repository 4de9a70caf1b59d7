# hcp-ingress-webhook — `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

BIN        := $(CURDIR)/bin
WEBHOOK    := $(BIN)/hcp-ingress-webhook
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO_LDFLAGS := -s -w -X github.com/hcp-ingress/hcp-ingress-webhook/internal/version.Version=$(VERSION)

# The local control plane (kube-apiserver, etcd, kubectl) is built from source
# through the Go module proxy: no Docker, no download sites. Each binary's
# upstream version is pinned by its tools module.
KUBE_VERSION  := v1.34.2
KUBE_MINOR    := 34
KUBE_LDFLAGS  := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(KUBE_MINOR) \
	-X k8s.io/client-go/pkg/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=$(KUBE_MINOR)
CONTROL_PLANE := $(BIN)/kube-apiserver $(BIN)/etcd $(BIN)/kubectl

# envtest starts etcd and kube-apiserver from here; e2e and demo use bin/kubectl.
export KUBEBUILDER_ASSETS := $(BIN)

# A count, not a duration: Go 1.26's fuzz coordinator can fail a clean run
# with "context deadline exceeded" when a duration ends mid-execution
# (golang/go#75804, fixed in Go 1.27). A count has no deadline to race.
FUZZ_TIME  ?= 20000x
FUZZ_LONG  ?= 5m
BENCH_COUNT ?= 6
UNIT_PKGS  = $(shell go list ./... | grep -v /e2e)

GOLANGCI_LINT_VERSION := v2.15.0

# Each area (image, chart, ingress controller, fleet, soak) keeps its targets in
# mk/<area>.mk and appends the targets `make test` must run to TEST_TARGETS.
TEST_TARGETS :=
include $(sort $(wildcard mk/*.mk))
BENCHSTAT_VERSION     := v0.0.0-20260908200009-22c9c6c9d4da

##@ General

.PHONY: help
help: ## List every target.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
		/^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Try it

.PHONY: demo
demo: build control-plane ## Local control plane + webhook registered through manifests/, examples applied with --dry-run=server, diffs shown, all stopped.
	go run ./e2e/demo

.PHONY: dev
dev: build control-plane ## Like demo, but keeps the control plane and webhook running and prints the KUBECONFIG.
	go run ./e2e/demo --keep

##@ Build

.PHONY: build
build: ## Build bin/hcp-ingress-webhook.
	go build -trimpath -ldflags '$(GO_LDFLAGS)' -o $(WEBHOOK) ./cmd/webhook

.PHONY: control-plane
control-plane: $(CONTROL_PLANE) ## Build kube-apiserver, etcd and kubectl from source into bin/ (first time: minutes).

$(BIN)/kube-apiserver: tools/kubernetes/go.mod
	@echo ">> building kube-apiserver $(KUBE_VERSION) from source (first time takes a few minutes)"
	go build -C tools/kubernetes -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/kube-apiserver

$(BIN)/kubectl: tools/kubernetes/go.mod
	@echo ">> building kubectl $(KUBE_VERSION) from source"
	go build -C tools/kubernetes -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/kubectl

$(BIN)/etcd: tools/etcd/go.mod
	@echo ">> building etcd from source"
	go build -C tools/etcd -trimpath -ldflags '-s -w' -o $@ go.etcd.io/etcd/server/v3

##@ Test

.PHONY: test
test: unit fuzz-smoke e2e $(TEST_TARGETS) ## All tests: unit, a short run of every fuzz target, e2e on a real control plane, and each area's own suite.

.PHONY: unit
unit: ## Unit tests of the engine, rules, server and commands.
	go test -count=1 $(UNIT_PKGS)

.PHONY: e2e
e2e: build control-plane ## End-to-end tests: real kube-apiserver + etcd + kubectl + the real binary (log in bin/e2e.log).
	go test -count=1 -timeout 25m -v ./e2e/... 2>&1 | tee $(BIN)/e2e.log

.PHONY: fuzz-smoke
fuzz-smoke: ## Run every fuzz target for $(FUZZ_TIME) executions.
	@for target in $$(grep -rhoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' internal cmd | sed 's/func //' | sort -u); do \
		pkg=$$(dirname $$(grep -rlE "^func $$target\b" --include='*_test.go' internal cmd | head -n1)); \
		echo ">> fuzz $$target ($$pkg) for $(FUZZ_TIME)"; \
		go test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZ_TIME) ./$$pkg; \
	done

.PHONY: fuzz
fuzz: ## Run every fuzz target for $(FUZZ_LONG) (a duration; see FUZZ_TIME for the caveat).
	$(MAKE) fuzz-smoke FUZZ_TIME=$(FUZZ_LONG)

.PHONY: bench
bench: build control-plane ## Benchmarks: engine vs baseline, policy sizes, HTTPS server vs a minimal webhook, dry-run and per-call latency through kube-apiserver, peak RSS vs a minimal controller-runtime webhook, offline mutate vs the code when issue 7 was filed.
	go test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) $(UNIT_PKGS) | tee $(BIN)/bench.txt
	HCP_BENCH=1 go test -count=1 -v -run '^(TestDryRunLatency|TestPeakRSS|TestOfflineSpeedup)$$' ./e2e | grep -E 'latency|rss |offline mutate|^(ok|FAIL)' | tee $(BIN)/bench-e2e.txt
	@echo ">> compare with an earlier run: make benchstat OLD=old.txt (NEW defaults to $(BIN)/bench.txt)"

.PHONY: benchstat
benchstat: ## Compare benchmark results: make benchstat OLD=a.txt [NEW=b.txt].
	go run golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION) $(OLD) $(or $(NEW),$(BIN)/bench.txt)

.PHONY: lint
lint: ## gofmt, go vet and golangci-lint.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...
	go run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

.PHONY: clean
clean: ## Remove the webhook binary (keeps the control-plane binaries).
	rm -f $(WEBHOOK)
