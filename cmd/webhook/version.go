package main

import (
	"fmt"
	"io"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/version"
)

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, version.String())
	return err
}
