package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/webhook"
)

func runPolicy(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("want a subcommand: validate, show or diff")
	}
	switch args[0] {
	case "validate":
		return runPolicyValidate(args[1:], stdout, stderr)
	case "show":
		return runPolicyShow(args[1:], stdout, stderr)
	case "diff":
		return runPolicyDiff(args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown subcommand %q: want validate, show or diff", args[0])
}

// runPolicyValidate loads each file as the server would and lists every
// error with its field path; valid-but-risky settings are warnings.
func runPolicyValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy validate", stderr)
	files := fs.StringArrayP("filename", "f", nil, `policy file to validate, "-" for standard input; repeatable`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	*files = append(*files, fs.Args()...)
	if len(*files) == 0 {
		return fmt.Errorf("-f FILE is required")
	}
	invalid := 0
	for _, name := range *files {
		p, err := loadPolicyArg(name)
		if err != nil {
			fmt.Fprintln(stderr, err)
			invalid++
			continue
		}
		for _, w := range p.Warnings() {
			fmt.Fprintf(stderr, "Warning: %s: %s\n", policySourceName(name), w)
		}
		fmt.Fprintf(stdout, "%s: valid\n", policySourceName(name))
	}
	if invalid > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d policies are invalid", invalid, len(*files))}
	}
	return nil
}

// stdin is what "-" reads, for every file argument of every command; tests
// replace it.
var stdin io.Reader = os.Stdin

// policySourceName is how errors and messages name a policy argument.
func policySourceName(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

// loadPolicyArg loads the policy named on the command line: the embedded
// default for "", standard input for "-", a file otherwise. It reads at most
// rules.MaxPolicyBytes (and one byte more), so that an oversized input is
// rejected without being read whole.
func loadPolicyArg(name string) (*rules.Policy, error) {
	switch name {
	case "":
		return rules.Default(), nil
	case "-":
		return rules.LoadReader(policySourceName(name), stdin)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return rules.LoadReader(name, f)
}

// livePolicyFlags select the policy in force in a cluster.
type livePolicyFlags struct {
	kubeconfig, configMap string
}

func (l *livePolicyFlags) register(fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&l.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster the webhook runs in (default: in-cluster config)")
	fs.StringVar(&l.configMap, "policy-configmap", "", "NAMESPACE/NAME of the live policy ConfigMap")
}

// load returns the live policy: the ConfigMap's, or the embedded default
// when the ConfigMap does not exist (as the server does).
func (l *livePolicyFlags) load() (*rules.Policy, string, error) {
	namespace, name, ok := strings.Cut(l.configMap, "/")
	if !ok {
		return nil, "", fmt.Errorf("--policy-configmap %q: want NAMESPACE/NAME", l.configMap)
	}
	cfg, err := clusterConfig(l.kubeconfig)
	if err != nil {
		return nil, "", err
	}
	if cfg == nil {
		return nil, "", fmt.Errorf("--policy-configmap needs --kubeconfig or an in-cluster config")
	}
	clients, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cm, err := clients.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return rules.Default(), webhook.EmbeddedSource + " (configmap " + l.configMap + " absent)", nil
	}
	if err != nil {
		return nil, "", err
	}
	p, err := webhook.LoadPolicyConfigMap(cm)
	if err != nil {
		return nil, "", fmt.Errorf("the live policy does not load (the webhook keeps its last good one): %w", err)
	}
	return p, "configmap " + l.configMap, nil
}

func runPolicyShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy show", stderr)
	policyFile := fs.String("policy", "", `policy file, "-" for standard input (default: the embedded default policy)`)
	var live livePolicyFlags
	live.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var p *rules.Policy
	var source string
	var err error
	switch {
	case *policyFile != "" && live.configMap != "":
		return fmt.Errorf("--policy and --policy-configmap are exclusive")
	case live.configMap != "":
		p, source, err = live.load()
	default:
		source = *policyFile
		if source == "" {
			source = webhook.EmbeddedSource
		}
		p, err = loadPolicyArg(*policyFile)
	}
	if err != nil {
		return err
	}
	out, err := rules.ShowEffective(p, source)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// runPolicyDiff compares the effective policy of a file with the live one.
func runPolicyDiff(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy diff", stderr)
	file := fs.StringP("filename", "f", "", `policy file to compare with the live policy, "-" for standard input (required)`)
	var live livePolicyFlags
	live.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" || live.configMap == "" {
		return fmt.Errorf("-f FILE and --policy-configmap NAMESPACE/NAME are required")
	}
	mine, err := loadPolicyArg(*file)
	if err != nil {
		return err
	}
	theirs, source, err := live.load()
	if err != nil {
		return err
	}
	a, err := rules.ShowEffective(theirs, "")
	if err != nil {
		return err
	}
	b, err := rules.ShowEffective(mine, "")
	if err != nil {
		return err
	}
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(a)), B: difflib.SplitLines(string(b)),
		FromFile: "live: " + source, ToFile: *file, Context: 3,
	})
	if err != nil {
		return err
	}
	if text == "" {
		fmt.Fprintln(stderr, "no differences")
		return nil
	}
	_, err = io.WriteString(stdout, text)
	if err == nil {
		err = &exitError{code: 1, err: fmt.Errorf("the file differs from the live policy")}
	}
	return err
}
