package main

import (
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

type pushOptions struct {
	layout string
	ref    string
}

// push copies the layout's one entry (an image, or the multi-arch index with
// its images) to a registry unchanged, so the pushed digest is the built one.
// Credentials come from the Docker config (`docker login`, `crane auth
// login`); localhost and private-network registries are spoken to over HTTP,
// as the library decides.
func push(ctx context.Context, o pushOptions, stdout io.Writer) error {
	ref, err := name.ParseReference(o.ref)
	if err != nil {
		return fmt.Errorf("--ref %q: %w", o.ref, err)
	}
	top, err := layoutEntry(o.layout)
	if err != nil {
		return err
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	if err := remote.Push(ref, top, opts...); err != nil {
		return fmt.Errorf("pushing %s to %s: %w", o.layout, ref, err)
	}
	digest, err := top.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pushed %s@%s\n", ref, digest)
	return nil
}

// manifest is an image or an index: what remote.Push takes, and its digest.
type manifest interface {
	remote.Taggable
	Digest() (v1.Hash, error)
}

// layoutEntry is the one image or index that `image build` wrote.
func layoutEntry(dir string) (manifest, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s is not an OCI image layout (run make image first): %w", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%s/index.json: %w", dir, err)
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("%s/index.json: %d entries, want the one that make image writes", dir, len(m.Manifests))
	}
	desc := m.Manifests[0]
	switch {
	case desc.MediaType.IsIndex():
		return idx.ImageIndex(desc.Digest)
	case desc.MediaType.IsImage():
		return idx.Image(desc.Digest)
	default:
		return nil, fmt.Errorf("%s/index.json: manifests[0].mediaType %q is neither an image nor an index", dir, desc.MediaType)
	}
}
