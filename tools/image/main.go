// Command image builds and pushes the hcp-ingress-webhook container image
// without a Docker engine, with go-containerregistry. `make image` and
// `make image-push` (mk/image.mk) run it; docs/image.md describes the result.
//
//	image build --platforms linux/amd64,linux/arm64 --ldflags ... --layout bin/image ...
//	image push --layout bin/image --ref ghcr.io/hcp-ingress/hcp-ingress-webhook:v0.1.0
//
// It lives in its own module so that the webhook's go.mod does not carry
// go-containerregistry and its dependencies.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("want a subcommand: build or push")
	}
	switch args[0] {
	case "build":
		opts, err := parseBuildFlags(args[1:], stderr)
		if err != nil {
			return err
		}
		return build(ctx, opts, stdout, stderr)
	case "push":
		opts, err := parsePushFlags(args[1:], stderr)
		if err != nil {
			return err
		}
		return push(ctx, opts, stdout)
	default:
		return fmt.Errorf("unknown subcommand %q: want build or push", args[0])
	}
}

func parseBuildFlags(args []string, stderr io.Writer) (buildOptions, error) {
	var o buildOptions
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	platforms := fs.String("platforms", "linux/amd64", "comma-separated os/arch[/variant] list; more than one builds an index")
	fs.StringVar(&o.pkg, "package", "./cmd/webhook", "Go package of the binary, built from the working directory")
	fs.StringVar(&o.ldflags, "ldflags", "", "go build -ldflags (the version variable is set here)")
	fs.StringVar(&o.layout, "layout", "bin/image", "OCI image layout directory to (re)write")
	fs.StringVar(&o.tarball, "tarball", "bin/image.tar", "docker load tarball, written for a single platform and removed otherwise")
	fs.StringVar(&o.ref, "ref", "", "image reference, for the tarball's tag and the layout's ref.name (required)")
	fs.StringVar(&o.version, "version", "", "org.opencontainers.image.version (required)")
	fs.StringVar(&o.revision, "revision", "", "org.opencontainers.image.revision: the git commit (required)")
	fs.StringVar(&o.source, "source", "", "org.opencontainers.image.source: the repository URL (required)")
	fs.StringVar(&o.licenses, "licenses", "", "org.opencontainers.image.licenses: an SPDX expression (required)")
	fs.Int64Var(&o.epoch, "source-date-epoch", 0, "creation time of the image and its files, in seconds since 1970 (SOURCE_DATE_EPOCH)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() != 0 {
		return o, fmt.Errorf("build: unexpected arguments %q", fs.Args())
	}
	for name, v := range map[string]string{"ref": o.ref, "version": o.version, "revision": o.revision, "source": o.source, "licenses": o.licenses} {
		if v == "" {
			return o, fmt.Errorf("build: --%s is required", name)
		}
	}
	if o.epoch < 0 {
		return o, fmt.Errorf("build: --source-date-epoch %d is before 1970", o.epoch)
	}
	var err error
	if o.platforms, err = parsePlatforms(*platforms); err != nil {
		return o, fmt.Errorf("build: --platforms: %w", err)
	}
	return o, nil
}

func parsePushFlags(args []string, stderr io.Writer) (pushOptions, error) {
	var o pushOptions
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.layout, "layout", "bin/image", "OCI image layout written by `image build`")
	fs.StringVar(&o.ref, "ref", "", "where to push, registry/repository:tag (required)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() != 0 {
		return o, fmt.Errorf("push: unexpected arguments %q", fs.Args())
	}
	if strings.TrimSpace(o.ref) == "" {
		return o, fmt.Errorf("push: --ref is required")
	}
	return o, nil
}
