package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/offline"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

func runMutate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mutate", stderr)
	files := fs.StringArrayP("filename", "f", nil, "file to read (YAML or JSON, multi-document, List kinds); - for standard input; repeatable")
	policyFile := fs.String("policy", "", "policy file, - for standard input (default: the embedded default policy)")
	apiServer := fs.String("api-server", "", "HOST:PORT the CCM of workloads is pointed at")
	childURL := fs.String("child-webhook-url", "", "base URL child API servers dial, as given to serve: turns on fleet wiring (the spec.manifests entry of control planes)")
	output := fs.StringP("output", "o", "yaml", "output format: "+strings.Join(offline.Formats, "|"))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(*files) == 0 {
		return fmt.Errorf("-f FILE is required (- for standard input)")
	}
	if !slices.Contains(offline.Formats, *output) {
		return fmt.Errorf("-o %s: output format must be one of %s", *output, strings.Join(offline.Formats, ", "))
	}
	if n := slices.Index(*files, "-"); n >= 0 && (slices.Contains((*files)[n+1:], "-") || *policyFile == "-") {
		return fmt.Errorf("standard input (-) can be read only once")
	}
	policy, err := loadPolicyArg(*policyFile)
	if err != nil {
		return err
	}
	opts := offline.Options{Policy: policy}
	if *apiServer != "" {
		if opts.APIServer, err = parseHostPort(*apiServer); err != nil {
			return fmt.Errorf("--api-server: %w", err)
		}
	}
	if *childURL != "" {
		if err := validateWebhookURL(*childURL); err != nil {
			return fmt.Errorf("--child-webhook-url: %w", err)
		}
		opts.ChildWiring = true
	}
	oneShotGC()
	var docs []offline.Document
	for _, name := range *files {
		more, err := readDocuments(name)
		if err != nil {
			return err
		}
		docs = append(docs, more...)
	}
	outcomes, err := offline.Run(docs, opts)
	if err != nil {
		return err
	}
	// One write per stream rather than one per warning and per document:
	// 1,000 objects made 3,500 write system calls.
	warnings := bufio.NewWriterSize(stderr, 64<<10)
	for _, o := range outcomes {
		for _, w := range o.Result.Warnings {
			fmt.Fprintf(warnings, "Warning: %s: %s\n", o.Document, w)
		}
	}
	if err := warnings.Flush(); err != nil {
		return err
	}
	out := bufio.NewWriterSize(stdout, 256<<10)
	if err := offline.Write(out, outcomes, *output); err != nil {
		return err
	}
	return out.Flush()
}

// oneShotGC sets the garbage collector for a command that reads its input,
// allocates for a fraction of a second and exits: collect at 5x the live
// heap instead of 2x, with a 512 MiB soft limit past which it collects as
// often as it must. The measured reason (go test -run '^$' -bench Thousand
// -count 6 ./internal/offline, GOGC=100 vs 400): 82 to 63 ms for -o json
// and 109 to 85 ms for -o yaml; the largest input (32 MiB) peaks at 553 MB
// instead of 325 MB. GOGC and GOMEMLIMIT in the environment still win.
func oneShotGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(512 << 20)
	}
}

func readDocuments(name string) ([]offline.Document, error) {
	r, closeInput, err := openInput(name)
	if err != nil {
		return nil, err
	}
	defer closeInput()
	return offline.Read(name, r)
}

// openInput opens a file, or standard input for "-". A regular file over
// offline.MaxFileBytes is refused before anything is read; standard input
// and other streams are cut off by the reader at the same size.
func openInput(name string) (io.Reader, func(), error) {
	if name == "-" {
		return stdin, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	if info, err := f.Stat(); err == nil && info.Mode().IsRegular() && info.Size() > offline.MaxFileBytes {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %d bytes is larger than %d MiB, the limit of offline input", name, info.Size(), offline.MaxFileBytes>>20)
	}
	return f, func() { f.Close() }, nil
}

// readInput reads a whole file, or standard input for "-", up to
// offline.MaxFileBytes.
func readInput(name string) ([]byte, error) {
	r, closeInput, err := openInput(name)
	if err != nil {
		return nil, err
	}
	defer closeInput()
	data, err := io.ReadAll(io.LimitReader(r, offline.MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > offline.MaxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB, the limit of offline input", name, offline.MaxFileBytes>>20)
	}
	return data, nil
}

// parseHostPort parses HOST[:PORT]; the port defaults to 443.
func parseHostPort(s string) (*rules.APIServer, error) {
	host, portText, err := net.SplitHostPort(s)
	if err != nil {
		host, portText = s, "443"
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("%q: port must be 1-65535", s)
	}
	if host == "" {
		return nil, fmt.Errorf("%q: host is empty", s)
	}
	return &rules.APIServer{Host: host, Port: int32(port)}, nil
}
