package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
	"github.com/pmezard/go-difflib/difflib"
)

const skipLabel = "hcp-ingress.io/skip"

type demo struct {
	env  *framework.Env
	root string
}

func (d *demo) show(ctx context.Context) error {
	mgmt, child := d.env.Management, d.env.Child

	section("IngressClasses: the class name alone does not say which controller serves it")
	for _, f := range []string{"haproxy-community.yaml", "ingress-nginx.yaml", "traefik.yaml", "default-cilium.yaml"} {
		if err := d.applyFile(ctx, mgmt, d.example("ingressclasses", f)); err != nil {
			return err
		}
	}
	d.waitUntilMutated(ctx, mgmt, d.example("controlplanes", "haproxy.yaml"))

	section("Control planes: kubectl apply --dry-run=server -f examples/controlplanes/…")
	files, err := filepath.Glob(d.example("controlplanes", "*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		if err := d.preview(ctx, mgmt, f); err != nil {
			return err
		}
	}

	section("Same class name, another controller: IngressClass haproxy now served by HAProxy Technologies")
	if err := d.kubectl(ctx, mgmt, "", "delete", "ingressclass", "haproxy"); err != nil {
		return err
	}
	if err := d.applyFile(ctx, mgmt, d.example("ingressclasses", "haproxy-technologies.yaml")); err != nil {
		return err
	}
	haproxy := d.example("controlplanes", "haproxy.yaml")
	d.waitUntil(ctx, func() bool {
		out, _, _ := d.dryRunAll(ctx, mgmt, haproxy, false)
		return strings.Contains(out, "haproxy.org/ssl-passthrough")
	})
	if err := d.preview(ctx, mgmt, haproxy); err != nil {
		return err
	}

	section("CCM workloads in a child cluster whose API server runs in the management cluster")
	if err := d.applyFile(ctx, mgmt, haproxy); err != nil {
		return err
	}
	progress("bin/hcp-ingress-webhook child-config default/haproxy --url %s --ca-file … | kubectl --kubeconfig child apply -f -", d.env.Webhook.URL)
	config, err := d.childConfig(ctx, "default/haproxy")
	if err != nil {
		return err
	}
	if err := d.kubectl(ctx, child, config, "apply", "-f", "-"); err != nil {
		return err
	}
	workloads, err := filepath.Glob(d.example("workloads", "*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(workloads)
	for _, f := range workloads {
		if strings.Contains(f, "ccm") {
			d.waitUntilMutated(ctx, child, f)
			break
		}
	}
	for _, f := range workloads {
		if err := d.preview(ctx, child, f); err != nil {
			return err
		}
	}
	section("Done")
	return nil
}

func section(title string) {
	fmt.Printf("\n%s\n", paint(bold, "━━ "+title))
}

// ANSI styles, used only when stdout is a terminal.
const (
	bold   = "1"
	red    = "31"
	green  = "32"
	yellow = "33"
)

var colorful = func() bool {
	fi, err := os.Stdout.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("NO_COLOR") == ""
}()

func paint(style, s string) string {
	if !colorful {
		return s
	}
	return "\033[" + style + "m" + s + "\033[0m"
}

// preview shows, for every object in file, what the webhook changes when it
// is applied with --dry-run=server: a diff against the same object run past
// the API server with the skip label (which keeps the webhook away), and
// the webhook's warnings. API server defaults are in both, so the diff is
// the webhook's doing only.
func (d *demo) preview(ctx context.Context, c *framework.Cluster, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	objects, err := framework.DecodeObjects(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	rel, _ := filepath.Rel(d.root, file)
	for _, obj := range objects {
		ns := obj.GetNamespace()
		if ns != "" {
			ns += "/"
		}
		fmt.Printf("\n%s  %s %s%s\n", paint(bold, rel), obj.GetKind(), ns, obj.GetName())

		skipped := obj.DeepCopy()
		labels := skipped.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[skipLabel] = "true"
		skipped.SetLabels(labels)
		before, err := d.dryRun(ctx, c, skipped)
		if err != nil {
			fmt.Printf("  (cannot be applied: %v)\n", err)
			continue
		}
		dropLabel(before, skipLabel, obj.GetLabels())

		res, err := c.Kubectl(ctx, toYAML(obj), "apply", "--dry-run=server", "-o", "json", "-f", "-")
		if err != nil {
			return err
		}
		if res.ExitCode != 0 {
			fmt.Printf("  %s %s\n", paint(red, "rejected:"), strings.TrimSpace(res.Stderr))
			continue
		}
		after := &unstructured.Unstructured{}
		if err := after.UnmarshalJSON([]byte(res.Stdout)); err != nil {
			return err
		}
		diff, err := unifiedDiff(normalize(before), normalize(after))
		if err != nil {
			return err
		}
		if diff == "" {
			fmt.Println("  unchanged")
		} else {
			fmt.Print(indent(colorDiff(diff)))
		}
		for _, w := range res.Warnings() {
			fmt.Printf("  %s %s\n", paint(yellow, "warning:"), w)
		}
	}
	return nil
}

func (d *demo) dryRun(ctx context.Context, c *framework.Cluster, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	res, err := c.Kubectl(ctx, toYAML(obj), "apply", "--dry-run=server", "-o", "json", "-f", "-")
	if err != nil {
		return nil, err
	}
	if err := res.Err(); err != nil {
		return nil, errors.New(strings.TrimSpace(res.Stderr))
	}
	u := &unstructured.Unstructured{}
	return u, u.UnmarshalJSON([]byte(res.Stdout))
}

// dryRunAll applies a whole file with --dry-run=server and returns the YAML
// output, with or without the webhook (skip label).
func (d *demo) dryRunAll(ctx context.Context, c *framework.Cluster, file string, skip bool) (string, string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", "", err
	}
	objects, err := framework.DecodeObjects(data)
	if err != nil {
		return "", "", err
	}
	for _, o := range objects {
		if skip {
			labels := o.GetLabels()
			if labels == nil {
				labels = map[string]string{}
			}
			labels[skipLabel] = "true"
			o.SetLabels(labels)
		}
	}
	res, err := c.Kubectl(ctx, toYAML(objects...), "apply", "--dry-run=server", "-o", "yaml", "-f", "-")
	if err != nil {
		return "", "", err
	}
	return res.Stdout, res.Stderr, res.Err()
}

// waitUntilMutated gives caches and webhook registrations a few seconds to
// settle: it returns once the webhook changes the file's objects, or after
// 10s (then the preview shows what is, and says "unchanged").
func (d *demo) waitUntilMutated(ctx context.Context, c *framework.Cluster, file string) {
	d.waitUntil(ctx, func() bool {
		out, _, err := d.dryRunAll(ctx, c, file, false)
		return err == nil && strings.Contains(out, "hcp-ingress.io/mutated")
	})
}

func (d *demo) waitUntil(ctx context.Context, done func() bool) {
	deadline := time.Now().Add(10 * time.Second)
	for !done() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}
}

func (d *demo) applyFile(ctx context.Context, c *framework.Cluster, file string) error {
	res, err := c.Kubectl(ctx, "", "apply", "-f", file)
	if err != nil {
		return err
	}
	if err := res.Err(); err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		progress("kubectl apply: %s", line)
	}
	return nil
}

func (d *demo) kubectl(ctx context.Context, c *framework.Cluster, stdin string, args ...string) error {
	res, err := c.Kubectl(ctx, stdin, args...)
	if err != nil {
		return err
	}
	return res.Err()
}

func (d *demo) childConfig(ctx context.Context, controlPlane string) (string, error) {
	cmd := exec.CommandContext(ctx, d.env.Paths.Webhook, "child-config", controlPlane,
		"--url", d.env.Webhook.URL, "--ca-file", d.env.Webhook.CAFile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hcp-ingress-webhook child-config %s: %w\n%s", controlPlane, err, stderr.String())
	}
	return stdout.String(), nil
}

// normalize drops what differs between two dry-runs of the same object.
func normalize(u *unstructured.Unstructured) []byte {
	c := u.DeepCopy()
	for _, f := range []string{"uid", "creationTimestamp", "managedFields", "resourceVersion", "generation"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(c.Object, "metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration")
	if len(c.GetAnnotations()) == 0 {
		unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
	}
	data, _ := yaml.Marshal(c.Object)
	return data
}

// dropLabel removes the label added for the baseline run (unless the object
// had it itself).
func dropLabel(u *unstructured.Unstructured, key string, original map[string]string) {
	if _, had := original[key]; had {
		return
	}
	labels := u.GetLabels()
	delete(labels, key)
	if len(labels) == 0 {
		unstructured.RemoveNestedField(u.Object, "metadata", "labels")
		return
	}
	u.SetLabels(labels)
}

func unifiedDiff(before, after []byte) (string, error) {
	if bytes.Equal(before, after) {
		return "", nil
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        difflib.SplitLines(string(before)),
		B:        difflib.SplitLines(string(after)),
		FromFile: "without the webhook",
		ToFile:   "with the webhook",
		Context:  3,
	})
}

func colorDiff(diff string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(diff, "\n") {
		switch {
		case strings.HasPrefix(line, "+++"), strings.HasPrefix(line, "---"):
			b.WriteString(line)
		case strings.HasPrefix(line, "+"):
			b.WriteString(paint(green, strings.TrimSuffix(line, "\n")) + "\n")
		case strings.HasPrefix(line, "-"):
			b.WriteString(paint(red, strings.TrimSuffix(line, "\n")) + "\n")
		default:
			b.WriteString(line)
		}
	}
	return b.String()
}

func indent(s string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line != "" {
			b.WriteString("  " + line)
		}
	}
	return b.String()
}

func toYAML(objects ...*unstructured.Unstructured) string {
	data, _ := framework.EncodeObjects(objects)
	return string(data)
}
