package rules

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// patternList writes a YAML list of n copies of pattern, under ccm.match.<list>.
func patternList(list, pattern string, n int) string {
	var b strings.Builder
	b.WriteString(header + "ccm:\n  match:\n    " + list + ":\n")
	for i := range n {
		// Each copy differs, so that merging keeps them all.
		fmt.Fprintf(&b, "      - '%s(?:x%d)?'\n", pattern, i)
	}
	return b.String()
}

func flagValuesList(n int) string {
	var b strings.Builder
	b.WriteString(header + "ccm:\n  match:\n    flagValues:\n")
	for i := range n {
		fmt.Fprintf(&b, "      - name: flag-%d\n", i)
	}
	return b.String()
}

func TestLoadEnforcesLimits(t *testing.T) {
	manyClasses := func(n int) string {
		var b strings.Builder
		b.WriteString(header + "ingressClasses:\n")
		for i := range n {
			fmt.Fprintf(&b, "  c%d: {annotations: {example.com/passthrough: \"true\"}}\n", i)
		}
		return b.String()
	}
	tests := map[string]struct {
		doc  string
		want string // a prefix of the one error line
	}{
		"a document over the size limit": {
			doc:  header + "# " + strings.Repeat("x", MaxPolicyBytes) + "\n",
			want: fmt.Sprintf("policy.yaml: the policy document is %d bytes, more than the limit of %d bytes", len(header)+MaxPolicyBytes+3, MaxPolicyBytes),
		},
		"more rules than the limit": {
			doc:  manyClasses(MaxRules + 1),
			want: fmt.Sprintf("policy.yaml: ingressClasses: Too many: %d: must have at most %d items", MaxRules+1, MaxRules),
		},
		"more patterns in a list than the limit": {
			doc:  patternList("binaries", "^x$", MaxPatternsPerList+1),
			want: fmt.Sprintf("policy.yaml: ccm.match.binaries: Too many: %d: must have at most %d items", MaxPatternsPerList+1+len(defaultDocument().CCM.Match.Binaries), MaxPatternsPerList),
		},
		"a pattern longer than the limit": {
			doc:  header + "ccm:\n  match:\n    names: ['" + strings.Repeat("a", MaxPatternLength+1) + "']\n",
			want: fmt.Sprintf("policy.yaml: ccm.match.names[0]: Invalid value: %q: must be at most %d bytes long", strings.Repeat("a", MaxPatternLength+1), MaxPatternLength),
		},
		"a pattern whose program is over the limit": {
			doc:  header + "ccm:\n  veto:\n    images: ['(?:abcdefghij){210}']\n",
			want: fmt.Sprintf(`policy.yaml: ccm.veto.images[0]: Invalid value: "(?:abcdefghij){210}": compiles to 2102 instructions, more than the limit of %d`, MaxPatternInstructions),
		},
		"a pattern whose program would be far over the limit is not expanded": {
			doc:  header + "ccm:\n  match:\n    labels: ['a{1,1000}b{1,1000}']\n",
			want: fmt.Sprintf(`policy.yaml: ccm.match.labels[0]: Invalid value: "a{1,1000}b{1,1000}": compiles to about 8006 instructions, more than the limit of %d`, MaxPatternInstructions),
		},
		"patterns over the limit together": {
			doc:  patternList("binaries", "(?:abcdefghij){190}", 11),
			want: fmt.Sprintf(`policy.yaml: ccm.match.binaries[10]: Invalid value: "(?:abcdefghij){190}(?:x10)?": the CCM patterns of the policy (the built-in ones included) compile to more than %d instructions together`, MaxTotalInstructions),
		},
		"more namespaces than the limit": {
			doc:  header + "ccm:\n  namespaces: [" + strings.Repeat("a, ", MaxRules) + "a]\n",
			want: fmt.Sprintf("policy.yaml: ccm.namespaces: Too many: %d: must have at most %d items", MaxRules+1, MaxRules),
		},
		"more flagValues than the limit": {
			doc:  flagValuesList(MaxPatternsPerList + 1),
			want: fmt.Sprintf("policy.yaml: ccm.match.flagValues: Too many: %d: must have at most %d items", MaxPatternsPerList+1+len(defaultDocument().CCM.Match.FlagValues), MaxPatternsPerList),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			lines := loadErrorLines(t, tc.doc)
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) {
				t.Errorf("errors:\n  %s\nwant one starting with\n  %s", strings.Join(lines, "\n  "), tc.want)
			}
		})
	}
}

// Each value of the wrong type costs one more decoding pass, so only the
// first maxTypeErrors are reported.
func TestLoadReportsAtMostTenTypeErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString(header + "ccm:\n  match:\n    binaries: [")
	for i := range maxTypeErrors + 5 {
		fmt.Fprintf(&b, "%d, ", i)
	}
	b.WriteString("x]\n")
	lines := loadErrorLines(t, b.String())
	if len(lines) != maxTypeErrors+1 {
		t.Fatalf("got %d lines, want %d:\n  %s", len(lines), maxTypeErrors+1, strings.Join(lines, "\n  "))
	}
	if want := fmt.Sprintf("policy.yaml: <document>: Forbidden: more than %d values of the wrong type: fix these and load again to see the others", maxTypeErrors); lines[maxTypeErrors] != want {
		t.Errorf("last line = %q, want %q", lines[maxTypeErrors], want)
	}
	if want := "policy.yaml: ccm.match.binaries[9]: Invalid value: must be a string"; !strings.HasPrefix(lines[maxTypeErrors-1], want) {
		t.Errorf("line %d = %q, want it to start with %q", maxTypeErrors, lines[maxTypeErrors-1], want)
	}
}

// What a limit allows loads.
func TestLoadAcceptsPoliciesAtTheLimits(t *testing.T) {
	for name, doc := range map[string]string{
		"as many patterns as a list may hold":    patternList("binaries", "^x$", MaxPatternsPerList-9),
		"a pattern just under the program limit": header + "ccm:\n  veto:\n    images: ['(?:abcdefghij){199}']\n",
		"a pattern of the longest length":        header + "ccm:\n  match:\n    names: ['" + strings.Repeat("a", MaxPatternLength) + "']\n",
	} {
		t.Run(name, func(t *testing.T) { mustLoad(t, doc) })
	}
}

// countingReader yields n bytes of a YAML comment and counts what is read.
type countingReader struct{ n, read int }

func (r *countingReader) Read(p []byte) (int, error) {
	if r.read >= r.n {
		return 0, io.EOF
	}
	k := min(len(p), r.n-r.read)
	for i := range k {
		p[i] = '#'
	}
	r.read += k
	return k, nil
}

func TestLoadReaderStopsAtTheSizeLimit(t *testing.T) {
	r := &countingReader{n: 50 << 20}
	_, err := LoadReader("stdin", r)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("stdin: the policy document is larger than the limit of %d bytes", MaxPolicyBytes)) {
		t.Fatalf("err = %v, want the size limit", err)
	}
	if r.read > MaxPolicyBytes+64<<10 {
		t.Errorf("read %d bytes of a 50 MiB document, want about the limit (%d)", r.read, MaxPolicyBytes)
	}
	if _, err := LoadReader("stdin", strings.NewReader(header)); err != nil {
		t.Errorf("a small document through LoadReader: %v", err)
	}
}

// hostilePolicy is the attack of issue 7: bounded repetitions repeated in
// ccm.match patterns until the document has size bytes. Unbounded, 28 KB of
// it took 280 MB of heap and 4 s to compile.
func hostilePolicy(size int, perList int) string {
	var b strings.Builder
	b.WriteString(header + "ccm:\n")
	for _, section := range []string{"match", "veto"} {
		b.WriteString("  " + section + ":\n")
		for _, list := range []string{"binaries", "flags", "images", "names", "labels"} {
			b.WriteString("    " + list + ":\n")
			for i := 0; i < perList && b.Len() < size; i++ {
				fmt.Fprintf(&b, "      - 'a{1,1000}a{1,1000}a{1,1000}a{1,1000}%d'\n", i)
			}
		}
	}
	for b.Len() < size { // the rest into one list, over its count limit
		b.WriteString("      - 'a{1,1000}a{1,1000}a{1,1000}a{1,1000}'\n")
	}
	return b.String()
}

func TestLoadRejectsHostilePatternsCheaply(t *testing.T) {
	tests := map[string]string{
		"28 KB in one list (the issue's policy)":    hostilePolicy(28<<10, 1<<20),
		"86 KB in one list":                         hostilePolicy(86<<10, 1<<20),
		"28 KB spread under the count of each list": hostilePolicy(28<<10, MaxPatternsPerList-10),
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Load("policy.yaml", []byte(doc))
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("the hostile policy loaded")
			}
			// Unbounded, these cost 0.6 to 6 GB of allocations; each
			// pattern is now refused before its repetitions are expanded.
			if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 64<<20 {
				t.Errorf("loading allocated %d MB, want under 64 MB", allocated>>20)
			}
			if lines := strings.Count(err.Error(), "\n") + 1; lines > maxErrorLines+1 {
				t.Errorf("the error has %d lines, want at most %d", lines, maxErrorLines+1)
			}
			first, _, _ := strings.Cut(err.Error(), "\n")
			t.Logf("%d bytes, %d KB allocated: %s (%d error lines)", len(doc), (after.TotalAlloc-before.TotalAlloc)>>10, first, strings.Count(err.Error(), "\n")+1)
		})
	}
}

// BenchmarkLoadHostilePolicy measures what rejecting the 28 KB
// policy costs.
func BenchmarkLoadHostilePolicy(b *testing.B) {
	for name, doc := range map[string]string{
		"one list": hostilePolicy(28<<10, 1<<20),
		"spread":   hostilePolicy(28<<10, MaxPatternsPerList),
	} {
		b.Run(name, func(b *testing.B) {
			data := []byte(doc)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Load("policy.yaml", data); err == nil {
					b.Fatal("loaded")
				}
			}
		})
	}
}
