# The same image as `make image` (which needs no Docker engine; see
# docs/image.md), for those who build with Docker or BuildKit:
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg REVISION=$(git rev-parse HEAD) -t <registry>/hcp-ingress-webhook:<tag> .
#   docker buildx build --platform linux/amd64,linux/arm64 ... --push .
#
# Not exercised by CI here (no Docker engine); tools/image's tests check that
# it keeps saying what make image does. The distroless base adds what the
# webhook does not need (CA certificates, /etc/passwd, tzdata), so the two
# images differ in digest, not in behaviour.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath \
      -ldflags "-s -w -X github.com/hcp-ingress/hcp-ingress-webhook/internal/version.Version=${VERSION}" \
      -o /out/hcp-ingress-webhook ./cmd/webhook

FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="hcp-ingress-webhook" \
      org.opencontainers.image.source="https://github.com/hcp-ingress/hcp-ingress-webhook" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="NOASSERTION"
COPY --from=build /out/hcp-ingress-webhook /hcp-ingress-webhook
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/hcp-ingress-webhook"]
