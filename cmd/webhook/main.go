// Command hcp-ingress-webhook is the admission webhook that makes hosted
// control planes work behind an Ingress: the controller-specific SSL
// passthrough annotation on k0smotron control planes, and the API server
// address of the cloud-controller-manager. See PRODUCT.md for the contract.
//
// This file only wires subcommands; the logic lives in internal/.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"
)

// exitError carries an exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the admission webhook server", runServe},
		{"mutate", "show offline what the webhook would change in files", runMutate},
		{"child-config", "print the MutatingWebhookConfiguration for a child cluster's CCM", runChildConfig},
		{"policy", "validate, show or diff a policy (policy validate|show|diff)", runPolicy},
		{"audit", "per control plane: passthrough, wiring and (--children) child state; exit 3 when something would change", runAudit},
		{"certs", "make a CA and serving certificate without cert-manager (in-child bootstrap)", runCerts},
		{"version", "print the version", runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 1
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		if err == nil || errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "hcp-ingress-webhook %s: %v\n", c.name, err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	fmt.Fprintf(stderr, "hcp-ingress-webhook: unknown command %q\n\n", args[0])
	usage(stderr)
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: hcp-ingress-webhook <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'hcp-ingress-webhook <command> --help' for a command's flags.")
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("hcp-ingress-webhook "+name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	return fs
}
