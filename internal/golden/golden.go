// Package golden compares test output with golden files under testdata/golden,
// for every test package that keeps them (the CLI's and the e2e suite's).
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// Update is the -update flag of the test binary: rewrite the golden files
// from the current output instead of comparing.
var Update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// Check compares got with testdata/golden/name of the package under test.
func Check(t testing.TB, name, got string) {
	t.Helper()
	File(t, filepath.Join("testdata", "golden", name), got)
}

// File compares got with the file at path (relative to the package under
// test), or rewrites it with -update.
func File(t testing.TB, path, got string) {
	t.Helper()
	if *Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run the test with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
