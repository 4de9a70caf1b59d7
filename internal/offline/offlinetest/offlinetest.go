// Package offlinetest builds the input of the offline measurements, for the
// tests that take them (internal/offline's benchmark and the e2e suite's
// comparison with an older binary).
package offlinetest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ThousandObjects is a 1,000-document YAML stream (0.9 MB) made of the
// examples under root/examples/controlplanes and root/examples/workloads in
// turn: control planes of every kind, CCM and other workloads.
func ThousandObjects(tb testing.TB, root string) []byte {
	tb.Helper()
	var files []string
	for _, dir := range []string{"controlplanes", "workloads"} {
		matches, err := filepath.Glob(filepath.Join(root, "examples", dir, "*.yaml"))
		if err != nil || len(matches) == 0 {
			tb.Fatalf("examples/%s: %v", dir, err)
		}
		files = append(files, matches...)
	}
	var b bytes.Buffer
	for i := range 1000 {
		data, err := os.ReadFile(files[i%len(files)])
		if err != nil {
			tb.Fatal(err)
		}
		b.WriteString("---\n")
		b.WriteString(strings.ReplaceAll(string(data), "\n---\n", "\n"))
	}
	return b.Bytes()
}
