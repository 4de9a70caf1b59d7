package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"sigs.k8s.io/yaml"
)

// The tests drive `make image` in the repository, as a user does, and read
// what it wrote back with go-containerregistry.

var repoRoot = func() string {
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return abs
}()

// hostPlatform is what the single-platform builds target, so that the binary
// taken out of the image runs here.
var hostPlatform = "linux/" + runtime.GOARCH

type builtImages struct {
	first, second, multi  string // layout directories
	tarball, multiTarball string
	ref                   string // $(IMAGE)
	version               string // its tag, $(VERSION)
	revision              string // git HEAD
	created               time.Time
}

var (
	buildOnce sync.Once
	built     builtImages
	buildErr  error
)

// images builds once for all tests: the host platform twice, and
// linux/amd64 + linux/arm64.
func images(t *testing.T) builtImages {
	t.Helper()
	buildOnce.Do(func() { built, buildErr = buildAll() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func buildAll() (builtImages, error) {
	dir, err := os.MkdirTemp("", "image-test-")
	if err != nil {
		return builtImages{}, err
	}
	// Removed by TestMain.
	testDir = dir
	b := builtImages{
		first:        filepath.Join(dir, "first"),
		second:       filepath.Join(dir, "second"),
		multi:        filepath.Join(dir, "multi"),
		tarball:      filepath.Join(dir, "first.tar"),
		multiTarball: filepath.Join(dir, "multi.tar"),
	}
	if b.ref, err = makeOutput("image-ref"); err != nil {
		return b, err
	}
	b.version = b.ref[strings.LastIndex(b.ref, ":")+1:]
	if b.revision, err = gitOutput("rev-parse", "HEAD"); err != nil {
		return b, err
	}
	epoch, err := gitOutput("log", "-1", "--format=%ct")
	if err != nil {
		return b, err
	}
	seconds, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return b, err
	}
	b.created = time.Unix(seconds, 0).UTC()

	// A stale tarball that the multi-arch build must remove.
	if err := os.WriteFile(b.multiTarball, []byte("stale"), 0o644); err != nil {
		return b, err
	}
	for _, build := range []struct{ layout, tarball, platforms string }{
		{b.first, b.tarball, hostPlatform},
		{b.second, filepath.Join(dir, "second.tar"), hostPlatform},
		{b.multi, b.multiTarball, "linux/amd64,linux/arm64"},
	} {
		if _, err := makeOutput("image", "PLATFORMS="+build.platforms, "IMAGE_DIR="+build.layout, "IMAGE_TAR="+build.tarball); err != nil {
			return b, err
		}
	}
	return b, nil
}

var testDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if testDir != "" {
		os.RemoveAll(testDir)
	}
	os.Exit(code)
}

// makeOutput runs make in the repository root, free of the variables an
// outer `make test REGISTRY=...` would pass down, so the defaults are tested.
func makeOutput(args ...string) (string, error) {
	cmd := exec.Command("make", append([]string{"-s", "-C", repoRoot}, args...)...)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" && k != "MAKEOVERRIDES" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", errors.New("make " + strings.Join(args, " ") + ": " + err.Error() + "\n" + stderr.String() + stdout.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

func gitOutput(args ...string) (string, error) {
	out, err := exec.Command("git", append([]string{"-C", repoRoot}, args...)...).Output()
	if err != nil {
		return "", errors.New("git " + strings.Join(args, " ") + ": " + err.Error())
	}
	return strings.TrimSpace(string(out)), nil
}

// entry reads a layout's one index.json entry.
func entry(t *testing.T, dir string) (v1.Descriptor, v1.ImageIndex) {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("%s/index.json has %d entries, want 1", dir, len(m.Manifests))
	}
	return m.Manifests[0], idx
}

func layoutImage(t *testing.T, dir string) v1.Image {
	t.Helper()
	desc, idx := entry(t, dir)
	if !desc.MediaType.IsImage() {
		t.Fatalf("%s holds a %s, want an image", dir, desc.MediaType)
	}
	img, err := idx.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func configOf(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type layerFile struct {
	header *tar.Header
	body   []byte
}

// layerFiles is every entry of every layer, in order.
func layerFiles(t *testing.T, img v1.Image) []layerFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var files []layerFile
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, layerFile{h, body})
		}
		rc.Close()
	}
	return files
}

// staticELF checks the binary is for machine and has no interpreter (no
// dynamic loader, so no libc needed: what CGO_ENABLED=0 gives).
func staticELF(t *testing.T, binary []byte, machine elf.Machine) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		t.Fatalf("the binary in the layer is not ELF: %v", err)
	}
	if f.Machine != machine {
		t.Errorf("binary machine %s, want %s", f.Machine, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("binary has a PT_INTERP program header: it is dynamically linked")
		}
	}
}

func TestSinglePlatformImage(t *testing.T) {
	b := images(t)
	img := layoutImage(t, b.first)
	cfg := configOf(t, img)

	t.Run("runs the binary as 65532:65532 from / with nothing else set", func(t *testing.T) {
		c := cfg.Config
		if c.User != "65532:65532" {
			t.Errorf("user %q, want 65532:65532", c.User)
		}
		if !slices.Equal(c.Entrypoint, []string{"/hcp-ingress-webhook"}) {
			t.Errorf("entrypoint %q, want [/hcp-ingress-webhook]", c.Entrypoint)
		}
		if len(c.Cmd) != 0 || len(c.Env) != 0 {
			t.Errorf("cmd %q and env %q, want neither: the manifests pass the subcommand", c.Cmd, c.Env)
		}
		if c.WorkingDir != "/" {
			t.Errorf("working directory %q, want /", c.WorkingDir)
		}
		if got := cfg.OS + "/" + cfg.Architecture; got != hostPlatform {
			t.Errorf("platform %s, want %s", got, hostPlatform)
		}
	})

	t.Run("labels name the source, version, revision, licenses and the commit time", func(t *testing.T) {
		want := map[string]string{
			"org.opencontainers.image.source":   "https://github.com/hcp-ingress/hcp-ingress-webhook",
			"org.opencontainers.image.version":  b.version,
			"org.opencontainers.image.revision": b.revision,
			"org.opencontainers.image.licenses": "NOASSERTION",
			"org.opencontainers.image.created":  b.created.Format(time.RFC3339),
		}
		for k, v := range want {
			if got := cfg.Config.Labels[k]; got != v {
				t.Errorf("label %s = %q, want %q", k, got, v)
			}
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if got := m.Annotations[k]; got != v {
				t.Errorf("manifest annotation %s = %q, want %q", k, got, v)
			}
		}
		if !cfg.Created.Time.Equal(b.created) {
			t.Errorf("created %s, want the commit time %s", cfg.Created.Time, b.created)
		}
	})

	t.Run("the layer holds the binary alone: no shell, no other file", func(t *testing.T) {
		files := layerFiles(t, img)
		var names []string
		for _, f := range files {
			names = append(names, f.header.Name)
		}
		if !slices.Equal(names, []string{"hcp-ingress-webhook"}) {
			t.Fatalf("layer files %q, want [hcp-ingress-webhook]", names)
		}
		h := files[0].header
		if h.Typeflag != tar.TypeReg || h.Mode != 0o555 || h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(b.created) {
			t.Errorf("header: type %c mode %o owner %d:%d time %s; want a regular file, 0555, 0:0, %s",
				h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime.UTC(), b.created)
		}
	})

	t.Run("the binary from the layer is static and prints the version it was built with", func(t *testing.T) {
		binary := layerFiles(t, img)[0].body
		staticELF(t, binary, map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH])
		if runtime.GOOS != "linux" {
			t.Skip("a linux binary does not run on " + runtime.GOOS)
		}
		path := filepath.Join(t.TempDir(), "hcp-ingress-webhook")
		if err := os.WriteFile(path, binary, 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(path, "version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s version: %v\n%s", path, err, out)
		}
		want := "hcp-ingress-webhook " + b.version + " ("
		if got := string(out); !strings.HasPrefix(got, want) || !strings.Contains(got, hostPlatform+")") {
			t.Errorf("version printed %q, want %q...%s)", got, want, hostPlatform)
		}
	})

	t.Run("two builds of the same commit have the same digest", func(t *testing.T) {
		first, second := digestOf(t, img), digestOf(t, layoutImage(t, b.second))
		if first != second {
			t.Errorf("first build %s, second build %s", first, second)
		}
	})

	t.Run("the layout entry is tagged with the version for skopeo's oci:dir:tag", func(t *testing.T) {
		desc, _ := entry(t, b.first)
		if got := desc.Annotations["org.opencontainers.image.ref.name"]; got != b.version {
			t.Errorf("ref.name %q, want %q", got, b.version)
		}
	})

	t.Run("the docker load tarball holds the same image under its reference", func(t *testing.T) {
		tag, err := name.NewTag(b.ref)
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := tarball.ImageFromPath(b.tarball, &tag)
		if err != nil {
			t.Fatal(err)
		}
		// docker load keys an image by its config digest (the image ID).
		got, err := loaded.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		want, err := img.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("tarball config %s, layout config %s", got, want)
		}
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(b.tarball) })
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{b.ref}) {
			t.Errorf("manifest.json %+v, want one image tagged %s", m, b.ref)
		}
	})
}

func TestMultiPlatformIndex(t *testing.T) {
	b := images(t)
	desc, idx := entry(t, b.multi)
	if !desc.MediaType.IsIndex() {
		t.Fatalf("%s holds a %s, want an index", b.multi, desc.MediaType)
	}
	index, err := idx.ImageIndex(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("lists linux/amd64 and linux/arm64, each image of its platform", func(t *testing.T) {
		var platforms []string
		for _, d := range m.Manifests {
			if d.Platform == nil {
				t.Fatalf("manifest %s has no platform", d.Digest)
			}
			platforms = append(platforms, d.Platform.String())
			img, err := index.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if cfg := configOf(t, img); cfg.OS+"/"+cfg.Architecture != d.Platform.String() {
				t.Errorf("%s: config says %s/%s", d.Platform, cfg.OS, cfg.Architecture)
			}
			files := layerFiles(t, img)
			if len(files) != 1 {
				t.Fatalf("%s: %d files in the layers, want the binary alone", d.Platform, len(files))
			}
			staticELF(t, files[0].body, map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[d.Platform.Architecture])
		}
		if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
			t.Errorf("platforms %q, want [linux/amd64 linux/arm64]", platforms)
		}
	})

	t.Run("its host-platform image is the single-platform build, digest for digest", func(t *testing.T) {
		single := digestOf(t, layoutImage(t, b.first))
		for _, d := range m.Manifests {
			if d.Platform.String() == hostPlatform && d.Digest != single {
				t.Errorf("index has %s for %s, the single-platform build is %s", d.Digest, hostPlatform, single)
			}
		}
	})

	t.Run("the index carries the labels as annotations", func(t *testing.T) {
		if got := m.Annotations["org.opencontainers.image.source"]; got != "https://github.com/hcp-ingress/hcp-ingress-webhook" {
			t.Errorf("source annotation %q", got)
		}
	})

	t.Run("a stale docker load tarball is removed: it would hold one platform", func(t *testing.T) {
		if _, err := os.Stat(b.multiTarball); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there (err %v)", b.multiTarball, err)
		}
	})
}

// A registry from go-containerregistry, in this process: the push path is
// real HTTP, only the registry is local.
func TestPush(t *testing.T) {
	b := images(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	t.Run("make image-push REGISTRY=... pushes the image the build wrote, under the version tag", func(t *testing.T) {
		pushed := filepath.Join(t.TempDir(), "pushed")
		if _, err := makeOutput("image-push", "REGISTRY="+host+"/team", "PLATFORMS="+hostPlatform,
			"IMAGE_DIR="+pushed, "IMAGE_TAR="+pushed+".tar"); err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(host + "/team/hcp-ingress-webhook:" + b.version)
		if err != nil {
			t.Fatal(err)
		}
		got, err := remote.Head(ref)
		if err != nil {
			t.Fatal(err)
		}
		// A third build of the commit: the same digest again.
		if want := digestOf(t, layoutImage(t, b.first)); got.Digest != want {
			t.Errorf("registry has %s, built %s", got.Digest, want)
		}
	})

	t.Run("the multi-arch index is pushed with both images", func(t *testing.T) {
		refStr := host + "/team/hcp-ingress-webhook:multi"
		var out bytes.Buffer
		if err := push(context.Background(), pushOptions{layout: b.multi, ref: refStr}, &out); err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(refStr)
		if err != nil {
			t.Fatal(err)
		}
		remoteIndex, err := remote.Index(ref)
		if err != nil {
			t.Fatal(err)
		}
		desc, _ := entry(t, b.multi)
		if got := digestOf(t, remoteIndex); got != desc.Digest {
			t.Errorf("registry has %s, built %s", got, desc.Digest)
		}
		m, err := remoteIndex.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range m.Manifests {
			img, err := remoteIndex.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := img.RawConfigFile(); err != nil {
				t.Errorf("%s: config not in the registry: %v", d.Platform, err)
			}
		}
	})
}

func TestManifestsNameTheDefaultImage(t *testing.T) {
	ref, err := makeOutput("image-ref", "VERSION=v9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, "manifests", "base", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Images []struct {
			Name    string `json:"name"`
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
		} `json:"images"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatalf("manifests/base/kustomization.yaml: %v", err)
	}
	if len(k.Images) != 1 {
		t.Fatalf("manifests/base/kustomization.yaml: images has %d entries, want 1", len(k.Images))
	}
	got := k.Images[0]
	if got.Name != "hcp-ingress-webhook" || got.NewName+":v9.9.9" != ref || got.NewTag == "" {
		t.Errorf("images[0] = %+v, want name hcp-ingress-webhook, newName %s and a tag", got, strings.TrimSuffix(ref, ":v9.9.9"))
	}
}

// The Dockerfile is not built here (no Docker engine); this keeps it saying
// what make image does.
func TestDockerfileMatchesMakeImage(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"FROM gcr.io/distroless/static:nonroot",
		"CGO_ENABLED=0",
		"-trimpath",
		"-X github.com/hcp-ingress/hcp-ingress-webhook/internal/version.Version=",
		"COPY --from=build /out/hcp-ingress-webhook " + entrypoint,
		"USER " + nonRoot,
		"WORKDIR /",
		`ENTRYPOINT ["` + entrypoint + `"]`,
		"org.opencontainers.image.source",
		"org.opencontainers.image.licenses",
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

func TestParsePlatforms(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []string
		wantErr string
	}{
		"one platform":                  {in: "linux/amd64", want: []string{"linux/amd64"}},
		"two platforms, spaces trimmed": {in: "linux/amd64, linux/arm64", want: []string{"linux/amd64", "linux/arm64"}},
		"an arm variant is kept":        {in: "linux/arm/v7", want: []string{"linux/arm/v7"}},
		"a platform listed twice":       {in: "linux/amd64,linux/amd64", wantErr: "listed twice"},
		"not linux":                     {in: "windows/amd64", wantErr: "want linux/<arch>"},
		"no architecture":               {in: "linux", wantErr: "want linux/<arch>"},
		"nothing":                       {in: " , ", wantErr: "no platform"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parsePlatforms(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range got {
				names = append(names, p.String())
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("got %q, want %q", names, tc.want)
			}
		})
	}
}

func TestBuildFlagsNameWhatIsMissing(t *testing.T) {
	_, err := parseBuildFlags([]string{"--ref", "example.com/x:v1", "--version", "v1", "--revision", "abc", "--source", "https://example.com"}, io.Discard)
	if err == nil || err.Error() != "build: --licenses is required" {
		t.Errorf("error %v, want build: --licenses is required", err)
	}
}
