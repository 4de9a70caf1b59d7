package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// BenchmarkServer compares, in one run, the real admission server (TLS 1.2+,
// controller-runtime's webhook handler, the engine, patch and warnings) with
// a trivial HTTPS handler that returns a canned AdmissionReview under the
// same TLS settings. Both are driven over loopback with keep-alive by
// several concurrent clients. It reports requests per second and p50/p99
// latency; the target is at least 0.8x the canned throughput.
//
//	go test -run '^$' -bench BenchmarkServer -benchtime 5s ./internal/webhook
func BenchmarkServer(b *testing.B) {
	s := startServer(b)
	body := reviewBody(b, haproxyControlPlane)
	canned := s.admitRaw(b, s.base+PathControlPlane, body)

	b.Run("webhook", func(b *testing.B) { driveHTTPS(b, s.client, s.base+PathControlPlane, body) })

	// The canned server: same certificate, same TLS minimum, no work.
	dir := filepath.Dir(s.policyFile)
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "certs", "tls.crt"), filepath.Join(dir, "certs", "tls.key"))
	if err != nil {
		b.Fatal(err)
	}
	listener, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}})
	if err != nil {
		b.Fatal(err)
	}
	server := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(canned)
	})}
	go func() { _ = server.Serve(listener) }()
	defer server.Close()
	b.Run("canned", func(b *testing.B) {
		driveHTTPS(b, s.client, "https://"+listener.Addr().(*net.TCPAddr).String()+"/", body)
	})

	// The floor controller-runtime's admission handler sets by itself: the
	// same TLS listener, its AdmissionReview decoding and response encoding,
	// and a handler that allows without looking.
	mux := http.NewServeMux()
	mux.Handle("/", &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	})})
	noopListener, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}})
	if err != nil {
		b.Fatal(err)
	}
	noop := &http.Server{Handler: mux}
	go func() { _ = noop.Serve(noopListener) }()
	defer noop.Close()
	b.Run("controller-runtime-noop", func(b *testing.B) {
		driveHTTPS(b, s.client, "https://"+noopListener.Addr().(*net.TCPAddr).String()+"/", body)
	})
}

func (s *runningServer) admitRaw(b *testing.B, url string, body []byte) []byte {
	resp, err := s.client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// driveHTTPS posts body b.N times from 4×GOMAXPROCS goroutines and reports
// throughput and latency percentiles.
func driveHTTPS(b *testing.B, client *http.Client, url string, body []byte) {
	var mu sync.Mutex
	var latencies []time.Duration
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			resp, err := client.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		latencies = append(latencies, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(latencies) == 0 {
		return
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
}
