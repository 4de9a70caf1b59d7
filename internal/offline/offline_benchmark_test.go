package offline

import (
	"bytes"
	"io"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/offline/offlinetest"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// BenchmarkMutateThousandObjects is `mutate -f big.yaml -o FORMAT` without
// the process: read, run the engine on every document, render. The input is
// the same as the command line figure in docs/engine.md.
func BenchmarkMutateThousandObjects(b *testing.B) {
	input := offlinetest.ThousandObjects(b, filepath.Join("..", ".."))
	opts := Options{Policy: rules.Default(), APIServer: &rules.APIServer{Host: "api.example.com", Port: 443}}
	for _, format := range []string{"json", "yaml"} {
		b.Run(format, func(b *testing.B) {
			b.SetBytes(int64(len(input)))
			b.ReportAllocs()
			// CPU time next to wall time: on a shared machine wall time
			// says more about the neighbours than about the code, and
			// wall ≈ CPU / cores tells whether both cores are used.
			start := cpuTime(b)
			defer func() { b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op") }()
			for b.Loop() {
				docs, err := Read("big.yaml", bytes.NewReader(input))
				if err != nil {
					b.Fatal(err)
				}
				outcomes, err := Run(docs, opts)
				if err != nil {
					b.Fatal(err)
				}
				if err := Write(io.Discard, outcomes, format); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
