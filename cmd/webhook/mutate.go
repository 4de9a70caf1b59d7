package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/offline"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

func runMutate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mutate", stderr)
	files := fs.StringArrayP("filename", "f", nil, "file to read (YAML or JSON, multi-document, List kinds); - for standard input; repeatable")
	policyFile := fs.String("policy", "", "policy file (default: the embedded default policy)")
	apiServer := fs.String("api-server", "", "HOST:PORT the CCM of workloads is pointed at")
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
	policy, err := loadPolicyFile(*policyFile)
	if err != nil {
		return err
	}
	opts := offline.Options{Policy: policy}
	if *apiServer != "" {
		if opts.APIServer, err = parseHostPort(*apiServer); err != nil {
			return fmt.Errorf("--api-server: %w", err)
		}
	}
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
	for _, o := range outcomes {
		for _, w := range o.Result.Warnings {
			fmt.Fprintf(stderr, "Warning: %s: %s\n", o.Document, w)
		}
	}
	return offline.Write(stdout, outcomes, *output)
}

func readDocuments(name string) ([]offline.Document, error) {
	if name == "-" {
		return offline.Read("-", os.Stdin)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return offline.Read(name, f)
}

// loadPolicyFile loads a policy file, or the embedded default for "".
func loadPolicyFile(name string) (*rules.Policy, error) {
	if name == "" {
		return rules.Default(), nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return rules.Load(name, data)
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
