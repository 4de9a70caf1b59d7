package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/fleet"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// auditExitChanges is the exit status when something would change.
const auditExitChanges = 3

func runAudit(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit", stderr)
	var live livePolicyFlags
	live.register(fs)
	policyFile := fs.String("policy", "", "policy file (default: the embedded default policy, or --policy-configmap)")
	children := fs.Bool("children", false, "also read each child through its Cluster API kubeconfig Secret: webhook configuration and CCM workloads")
	output := fs.StringP("output", "o", "table", "output format: table, json or yaml")
	namespace := fs.StringP("namespace", "n", "", "only control planes of this namespace (default: all)")
	childURL := fs.String("child-webhook-url", "", "the URL serve's --child-webhook-url sets (default: the one each ConfigMap carries)")
	ownConfig := fs.String("webhook-configuration", "hcp-ingress-webhook", "our MutatingWebhookConfiguration, whose caBundle the ConfigMaps must carry")
	timeout := fs.Duration("child-timeout", 20*time.Second, "time allowed for each child")
	routesKept := fs.Bool("routes", false, "the install runs serve --routes: a missing or stale route counts toward exit status 3")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: hcp-ingress-webhook audit [--kubeconfig FILE] [--children] [--routes] [-o table|json|yaml]")
		fmt.Fprintln(stderr, "Exit status: 0 nothing would change, 3 something would, 1 error.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	switch *output {
	case "table", "json", "yaml":
	default:
		return fmt.Errorf("-o %q: want table, json or yaml", *output)
	}
	var policy *rules.Policy
	var err error
	switch {
	case *policyFile != "" && live.configMap != "":
		return fmt.Errorf("--policy and --policy-configmap are exclusive")
	case live.configMap != "":
		policy, _, err = live.load()
	default:
		policy, err = loadPolicyArg(*policyFile)
	}
	if err != nil {
		return err
	}
	cfg, err := clusterConfig(live.kubeconfig)
	if err != nil {
		return err
	}
	if cfg == nil {
		return fmt.Errorf("no --kubeconfig and not in a cluster")
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	kinds, err := fleet.ServedKinds(c.RESTMapper())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inv := fleet.Inventory{Reader: reader{c, *namespace}, Kinds: kinds, Policy: policy, ChildWebhookURL: *childURL,
		RouteStates: true, RoutesKept: *routesKept}
	if ca, err := ownCABundle(live.kubeconfig, *ownConfig); err == nil {
		inv.CABundle = ca
	}
	all, err := inv.Assess(ctx)
	if err != nil {
		return err
	}
	if *children {
		group, ctx := errgroup.WithContext(ctx)
		group.SetLimit(8)
		for i := range all {
			group.Go(func() error {
				inspectChild(ctx, c, &all[i], inv, *timeout)
				return nil
			})
		}
		_ = group.Wait()
	}
	if err := writeAudit(stdout, all, *output, *children); err != nil {
		return err
	}
	for i := range all {
		if all[i].WouldChange() {
			return &exitError{code: auditExitChanges, err: fmt.Errorf("%d control plane(s) not in the desired state", countChanges(all))}
		}
	}
	return nil
}

func countChanges(all []fleet.Assessment) int {
	n := 0
	for i := range all {
		if all[i].WouldChange() {
			n++
		}
	}
	return n
}

// reader restricts List to one namespace when given.
type reader struct {
	client.Client
	namespace string
}

func (r reader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if r.namespace != "" {
		// Ignored for cluster-scoped kinds (IngressClass).
		opts = append(opts, client.InNamespace(r.namespace))
	}
	return r.Client.List(ctx, list, opts...)
}

// inspectChild fills the child columns of a through its kubeconfig Secret.
func inspectChild(ctx context.Context, c client.Reader, a *fleet.Assessment, inv fleet.Inventory, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	unreachable := func(err error) {
		a.ChildWebhook = fleet.ChildUnreachable
		a.Details = append(a.Details, "child: "+err.Error())
	}
	cfg, err := fleet.ChildRESTConfig(ctx, c, a.Object(), timeout)
	if err != nil {
		unreachable(err)
		return
	}
	child, err := fleet.NewChild(cfg)
	if err != nil {
		unreachable(err)
		return
	}
	want, err := inv.WantChildConfig(a)
	if err != nil {
		unreachable(err)
		return
	}
	if a.ChildWebhook, err = child.WebhookState(ctx, want); err != nil {
		unreachable(err)
		return
	}
	state, lacking, err := child.CCMState(ctx, inv.Policy, a.APIServer())
	if err != nil {
		unreachable(err)
		return
	}
	a.CCM = state
	for _, w := range lacking {
		a.Details = append(a.Details, "child: "+w.String()+" lacks KUBERNETES_SERVICE_HOST/PORT")
	}
}

func writeAudit(w io.Writer, all []fleet.Assessment, format string, children bool) error {
	switch format {
	case "json":
		out, err := json.MarshalIndent(map[string]any{"controlPlanes": nonNil(all)}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", out)
		return err
	case "yaml":
		out, err := yaml.Marshal(map[string]any{"controlPlanes": nonNil(all)})
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := []string{"NAMESPACE", "NAME", "KIND", "CLASS", "CONTROLLER", "RULE", "PASSTHROUGH", "WIRING", "ROUTE"}
	if children {
		header = append(header, "CHILD-WEBHOOK", "CCM")
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, a := range all {
		row := []string{a.Namespace, a.Name, a.Kind, dash(a.Class), dash(a.Controller), dash(a.Rule), a.Passthrough, a.Wiring, dash(a.Route)}
		if children {
			row = append(row, dash(a.ChildWebhook), dash(a.CCM))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func nonNil(all []fleet.Assessment) []fleet.Assessment {
	if all == nil {
		return []fleet.Assessment{}
	}
	return all
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
