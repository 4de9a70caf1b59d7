package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/offline/offlinetest"
)

// offlineBase is the commit the offline speed is compared with: the code
// when issue 7 ("offline mutate of 1,000 real objects at least 3x faster
// than today") was filed.
const offlineBase = "b025362"

// TestOfflineSpeedup measures `mutate` of 1,000 objects (the repository's
// control plane and workload examples in turn, 0.9 MB) as a user runs it,
// process start included, against the binary built from offlineBase in the
// same run: both built with the same flags, run in alternation, 11 rounds,
// medians. The outputs must be byte for byte the same. HCP_OFFLINE_BASE
// names another commit to compare with.
//
// A measurement, not a test of time: it runs only with HCP_BENCH=1 (make
// bench) and needs the repository's history (not a shallow clone).
func TestOfflineSpeedup(t *testing.T) {
	requireBench(t, "make bench")
	base := offlineBase
	if b := os.Getenv("HCP_OFFLINE_BASE"); b != "" {
		base = b
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "base")
	git := func(args ...string) ([]byte, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = env.Paths.Root
		return cmd.CombinedOutput()
	}
	if out, err := git("worktree", "add", "--detach", tree, base); err != nil {
		t.Skipf("git worktree add %s: %v (a clone without the history of %s?)\n%s", base, err, base, out)
	}
	t.Cleanup(func() {
		if out, err := git("worktree", "remove", "--force", tree); err != nil {
			t.Logf("git worktree remove: %v\n%s", err, out)
		}
	})

	binaries := map[string]string{base: filepath.Join(dir, "old"), "now": filepath.Join(dir, "now")}
	for name, src := range map[string]string{base: tree, "now": env.Paths.Root} {
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", binaries[name], "./cmd/webhook")
		build.Dir = src
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, out)
		}
	}
	input := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(input, offlinetest.ThousandObjects(t, env.Paths.Root), 0o600); err != nil {
		t.Fatal(err)
	}

	const rounds = 11
	for _, format := range []string{"json", "yaml"} {
		times := map[string][]time.Duration{}
		outputs := map[string][]byte{}
		for range rounds {
			for _, name := range []string{base, "now"} {
				var stdout, stderr bytes.Buffer
				cmd := exec.Command(binaries[name], "mutate", "-f", input, "--api-server", "api.example.com:443", "-o", format)
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				start := time.Now()
				if err := cmd.Run(); err != nil {
					t.Fatalf("%s mutate -o %s: %v\n%s", name, format, err, stderr.Bytes())
				}
				times[name] = append(times[name], time.Since(start))
				outputs[name] = stdout.Bytes()
			}
		}
		if !bytes.Equal(outputs[base], outputs["now"]) {
			t.Errorf("-o %s: the output differs from %s's", format, base)
		}
		old, now := median(times[base]), median(times["now"])
		t.Logf("offline mutate of 1,000 objects -o %s, process start included, medians of %d: %s %.1f ms, now %.1f ms: %.2fx faster",
			format, rounds, base, ms(old), ms(now), float64(old)/float64(now))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
