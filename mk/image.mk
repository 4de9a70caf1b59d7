##@ Image

# The container image, built without a Docker engine by tools/image
# (go-containerregistry): the static webhook binary alone on an empty base.
# docs/image.md has the details and the figures.

# The one variable to change to publish elsewhere: the image is
# $(REGISTRY)/hcp-ingress-webhook:$(VERSION).
REGISTRY       ?= ghcr.io/hcp-ingress
IMAGE          ?= $(REGISTRY)/hcp-ingress-webhook:$(VERSION)
# More than one (comma-separated) builds a multi-arch index.
PLATFORMS      ?= linux/amd64
IMAGE_DIR      ?= $(BIN)/image
IMAGE_TAR      ?= $(BIN)/image.tar
IMAGE_SOURCE   := https://github.com/hcp-ingress/hcp-ingress-webhook
# The repository declares no license yet; NOASSERTION is SPDX for "not stated".
IMAGE_LICENSES ?= NOASSERTION
IMAGE_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# Every date in the image is the commit's, so two builds of one commit are
# byte-identical (https://reproducible-builds.org/specs/source-date-epoch/).
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

IMAGE_TOOL := $(BIN)/image-tool

$(IMAGE_TOOL): tools/image/go.mod tools/image/go.sum $(filter-out %_test.go,$(wildcard tools/image/*.go))
	go build -C tools/image -trimpath -o $@ .

.PHONY: image
image: $(IMAGE_TOOL) ## Build the image without Docker: OCI layout bin/image, and bin/image.tar for docker load (PLATFORMS=linux/amd64,linux/arm64: an index).
	$(IMAGE_TOOL) build \
		--platforms '$(PLATFORMS)' \
		--package ./cmd/webhook \
		--ldflags '$(GO_LDFLAGS)' \
		--layout '$(IMAGE_DIR)' \
		--tarball '$(IMAGE_TAR)' \
		--ref '$(IMAGE)' \
		--version '$(VERSION)' \
		--revision '$(IMAGE_REVISION)' \
		--source '$(IMAGE_SOURCE)' \
		--licenses '$(IMAGE_LICENSES)' \
		--source-date-epoch '$(SOURCE_DATE_EPOCH)'

.PHONY: image-push
image-push: image ## Build, then push to $(REGISTRY) (credentials from docker login / crane auth login): make image-push REGISTRY=registry.example.com/team.
	$(IMAGE_TOOL) push --layout '$(IMAGE_DIR)' --ref '$(IMAGE)'

.PHONY: image-ref
image-ref: ## Print the image reference that image and image-push use.
	@echo '$(IMAGE)'

.PHONY: image-test
image-test: ## Image tests: builds twice and multi-arch, reads the layout back, runs the binary from the layer, pushes to an in-process registry.
	go test -C tools/image -count=1 -timeout 20m ./...

TEST_TARGETS += image-test
