package mutate

import (
	"syscall"
	"testing"
	"time"
)

// measureCPU reports the process's CPU time per iteration (cpu-ns/op) from
// the call to the call of the function it returns, next to the wall time
// b reports. On a shared machine wall time moves with the neighbours' load;
// CPU time moves with the code. Call it after the setup:
//
//	defer measureCPU(b)()
//	for b.Loop() { ... }
func measureCPU(b *testing.B) func() {
	start := cpuTime(b)
	return func() {
		b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
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
