##@ Ingress controller (Traefik): TLS passthrough proven on a real data path

# Traefik Proxy is built from the Go module proxy like kube-apiserver: its own
# tools module (tools/traefik) pins the version and carries the replace
# directives of Traefik's go.mod. v3.7 cannot be built this way: its go.mod
# replaces a nested module by a relative path, which the proxy does not serve.
TRAEFIK_VERSION := v3.6.12
TRAEFIK         := $(BIN)/traefik

$(TRAEFIK): tools/traefik/go.mod
	@echo ">> building Traefik $(TRAEFIK_VERSION) from source (first time takes several minutes)"
	CGO_ENABLED=0 go build -C tools/traefik -trimpath \
		-ldflags '-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$(TRAEFIK_VERSION)' \
		-o $@ github.com/traefik/traefik/v3/cmd/traefik

.PHONY: traefik
traefik: $(TRAEFIK) ## Build Traefik Proxy from source into bin/traefik (first time: several minutes).

.PHONY: e2e-passthrough
e2e-passthrough: build control-plane $(TRAEFIK) ## TLS through real Traefik: the webhook's passthrough annotation reaches the control plane's certificate.
	HCP_E2E_PASSTHROUGH=1 go test -count=1 -timeout 15m -v -run '^TestPassthrough' ./e2e 2>&1 | tee $(BIN)/e2e-passthrough.log

TEST_TARGETS += e2e-passthrough
