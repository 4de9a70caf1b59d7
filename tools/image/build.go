package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// binaryName is the only file in the image, at its root.
	binaryName = "hcp-ingress-webhook"
	entrypoint = "/" + binaryName
	// nonRoot is distroless's nonroot user and group; the manifests'
	// securityContext runs the pod as the same 65532.
	nonRoot = "65532:65532"
	// refNameAnnotation tags an entry of the layout's index.json, so that
	// `skopeo copy oci:bin/image:<tag>` finds it.
	refNameAnnotation = "org.opencontainers.image.ref.name"
)

type buildOptions struct {
	platforms []v1.Platform
	pkg       string
	ldflags   string
	layout    string
	tarball   string
	ref       string
	version   string
	revision  string
	source    string
	licenses  string
	epoch     int64
}

// parsePlatforms reads "linux/amd64,linux/arm64". Only Linux: the webhook runs
// in Linux pods.
func parsePlatforms(list string) ([]v1.Platform, error) {
	var platforms []v1.Platform
	seen := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := v1.ParsePlatform(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		if p.OS != "linux" || p.Architecture == "" {
			return nil, fmt.Errorf("%q: want linux/<arch>[/<variant>]", s)
		}
		if seen[p.String()] {
			return nil, fmt.Errorf("%q is listed twice", s)
		}
		seen[p.String()] = true
		platforms = append(platforms, *p)
	}
	if len(platforms) == 0 {
		return nil, errors.New("no platform given")
	}
	return platforms, nil
}

// build compiles the binary for each platform, wraps each in a one-layer
// image and writes the layout (an index of the images when there are several)
// and, for a single platform, the docker load tarball.
func build(ctx context.Context, o buildOptions, stdout, stderr io.Writer) error {
	tag, err := name.NewTag(o.ref)
	if err != nil {
		return fmt.Errorf("--ref %q: %w", o.ref, err)
	}
	created := time.Unix(o.epoch, 0).UTC()
	labels := map[string]string{
		"org.opencontainers.image.title":    binaryName,
		"org.opencontainers.image.source":   o.source,
		"org.opencontainers.image.version":  o.version,
		"org.opencontainers.image.revision": o.revision,
		"org.opencontainers.image.licenses": o.licenses,
		"org.opencontainers.image.created":  created.Format(time.RFC3339),
	}

	work, err := os.MkdirTemp("", "hcp-ingress-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	var images []v1.Image
	for _, p := range o.platforms {
		binary, err := compile(ctx, o, p, filepath.Join(work, strings.ReplaceAll(p.String(), "/", "_")), stderr)
		if err != nil {
			return err
		}
		img, err := platformImage(binary, p, created, labels)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := describe(stdout, p.String(), img); err != nil {
			return err
		}
		images = append(images, img)
	}

	var top mutate.Appendable = images[0]
	if len(images) > 1 {
		top = platformIndex(images, o.platforms, labels)
	}
	if err := writeLayout(o.layout, top, tag.TagStr()); err != nil {
		return fmt.Errorf("writing %s: %w", o.layout, err)
	}
	digest, err := top.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s@%s\n", o.layout, tag, digest)

	if len(images) > 1 {
		// A docker load tarball holds one platform; a stale one beside a
		// fresh index would be a different build.
		if err := os.Remove(o.tarball); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := writeFileAtomically(o.tarball, func(path string) error {
		return tarball.WriteToFile(path, tag, images[0])
	}); err != nil {
		return fmt.Errorf("writing %s: %w", o.tarball, err)
	}
	fmt.Fprintf(stdout, "%s: docker load -i %s\n", o.tarball, o.tarball)
	return nil
}

// compile builds a static binary for one platform, as `make build` does
// (same -trimpath and -ldflags), with cgo off so the image needs no libc.
func compile(ctx context.Context, o buildOptions, p v1.Platform, dir string, stderr io.Writer) ([]byte, error) {
	out := filepath.Join(dir, binaryName)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", o.ldflags, "-o", out, o.pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if p.Architecture == "arm" && p.Variant != "" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	fmt.Fprintf(stderr, ">> go build %s for %s\n", o.pkg, p)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s for %s: %w", o.pkg, p, err)
	}
	return os.ReadFile(out)
}

// binaryLayer is a layer with the binary alone, root-owned, mode 0555, dated
// created. crane.Layer would be the library's way, but it writes mode 0 (not
// executable) and no date, so the one tar header is written here.
func binaryLayer(binary []byte, created time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     binaryName,
		Mode:     0o555,
		Size:     int64(len(binary)),
		ModTime:  created,
		Format:   tar.FormatUSTAR,
	}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(binary); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	uncompressed := buf.Bytes()
	return tarball.LayerFromOpener(
		func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(uncompressed)), nil },
		tarball.WithMediaType(types.OCILayer),
		tarball.WithCompressionLevel(gzip.BestCompression),
		tarball.WithCompressedCaching,
	)
}

// platformImage is the binary on an empty base: no shell, no libc, no CA
// store (the webhook only talks to API servers whose CA it is given).
func platformImage(binary []byte, p v1.Platform, created time.Time, labels map[string]string) (v1.Image, error) {
	layer, err := binaryLayer(binary, created)
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "go build -trimpath (CGO_ENABLED=0) " + binaryName,
		},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: created}
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	cfg.Config.User = nonRoot
	cfg.Config.Entrypoint = []string{entrypoint}
	cfg.Config.WorkingDir = "/"
	cfg.Config.Labels = labels
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, labels).(v1.Image), nil
}

func platformIndex(images []v1.Image, platforms []v1.Platform, annotations map[string]string) v1.ImageIndex {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, img := range images {
		p := platforms[i]
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return mutate.Annotations(idx, annotations).(v1.ImageIndex)
}

// writeLayout replaces dir with a layout whose index.json has one entry, the
// image or the index, so `crane push dir` and `skopeo copy oci:dir` take it
// without naming it.
func writeLayout(dir string, top mutate.Appendable, tag string) error {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	ann := layout.WithAnnotations(map[string]string{refNameAnnotation: tag})
	switch t := top.(type) {
	case v1.ImageIndex:
		err = p.AppendIndex(t, ann)
	case v1.Image:
		err = p.AppendImage(t, ann)
	default:
		err = fmt.Errorf("%T is neither an image nor an index", top)
	}
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

func writeFileAtomically(path string, write func(string) error) error {
	tmp := path + ".tmp"
	if err := write(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// describe prints what docs/image.md quotes: digest and layer sizes.
func describe(w io.Writer, platform string, img v1.Image) error {
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	var compressed, uncompressed int64
	for _, l := range layers {
		size, err := l.Size()
		if err != nil {
			return err
		}
		compressed += size
		rc, err := l.Uncompressed()
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
		uncompressed += n
	}
	fmt.Fprintf(w, "%s: %s, layer %s compressed, %s uncompressed\n", platform, digest, mebibytes(compressed), mebibytes(uncompressed))
	return nil
}

func mebibytes(n int64) string {
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}
