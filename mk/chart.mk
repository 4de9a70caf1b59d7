##@ Chart

# helm is built from its Go module, pinned by tools/helm (no download site).
# The ldflags are those of helm's own release build: its version, and the
# Kubernetes version `helm template` and `helm lint` assume, taken from the
# client-go it is built with (v0.37 -> 1.37).
HELM_VERSION := v3.22.0
HELM         := $(BIN)/helm
HELM_LDFLAGS := -s -w \
	-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/internal/version.metadata= \
	-X helm.sh/helm/v3/internal/version.gitTreeState=clean \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37 \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37
CHART := charts/hcp-ingress-webhook

TEST_TARGETS += chart-test

.PHONY: helm
helm: $(HELM) ## Build helm from its Go module into bin/ (first time: a few minutes).

$(HELM): tools/helm/go.mod
	@echo ">> building helm $(HELM_VERSION) from source"
	go build -C tools/helm -trimpath -ldflags '$(HELM_LDFLAGS)' -o $@ helm.sh/helm/v3/cmd/helm

.PHONY: helm-lint
helm-lint: $(HELM) ## helm lint --strict the chart (default values and every documented mode).
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict $(CHART) --set certificates.mode=cert-manager
	$(HELM) lint --strict $(CHART) --set topology=child --set policy.ccm.apiServer.host=api.example.com

.PHONY: chart-test
chart-test: helm-lint build control-plane $(HELM) ## Chart and k0rdent objects on a real API server: render, validate, compare with manifests/, install (log in bin/chart-test.log).
	HCP_CHART_E2E=1 go test -count=1 -timeout 10m -v ./e2e/chart/ 2>&1 | tee $(BIN)/chart-test.log
