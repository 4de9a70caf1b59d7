package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// The webhook runs with --policy-file; rewriting the file changes what the
// next admission does, without a restart.
func TestPolicyFile(t *testing.T) {
	requireWebhook(t)
	ns := newNamespace(t, env.Management, "e2e-policy-file", nil)
	pid := env.Webhook.PID()
	cp := k0smotronCP(ns, "reloaded", "e2e-reload")
	policyWith := func(value string) string {
		return basePolicy + fmt.Sprintf(`ingressClasses:
  e2e-reload:
    annotations:
      example.com/passthrough: %q
`, value)
	}
	annotationIs := func(want string) func(*unstructured.Unstructured) string {
		return func(u *unstructured.Unstructured) string {
			if got := ingressAnnotations(u)["example.com/passthrough"]; got != want {
				return fmt.Sprintf("example.com/passthrough is %q, want %q", got, want)
			}
			return ""
		}
	}
	t.Cleanup(func() { writePolicy(t, basePolicy, true) })

	t.Run("a rewritten policy file decides the next admission within seconds", func(t *testing.T) {
		// Renamed into place, as a ConfigMap volume updates.
		writePolicy(t, policyWith("one"), false)
		took := pollDryRun(t, cp, annotationIs("one"))
		// Rewritten in place, as an editor does.
		if err := os.WriteFile(env.PolicyFile, []byte(policyWith("two")), 0o644); err != nil {
			t.Fatal(err)
		}
		took2 := pollDryRun(t, cp, annotationIs("two"))
		t.Logf("policy followed after %v (renamed) and %v (rewritten in place)", took.Round(time.Millisecond), took2.Round(time.Millisecond))
		if took > 5*time.Second || took2 > 5*time.Second {
			t.Errorf("a policy change took more than 5s to apply")
		}
		if env.Webhook.Exited() || env.Webhook.PID() != pid {
			t.Errorf("the webhook restarted")
		}
	})

	t.Run("a policy that does not load leaves the last good one in force", func(t *testing.T) {
		errorsBefore, err := env.Webhook.Metric("hcp_ingress_policy_load_errors_total", "")
		if err != nil {
			t.Fatal(err)
		}
		writePolicy(t, policyWith("two")+"noSuchField: true\n", false)
		eventually(t, "the webhook reports the failed load", func() string {
			n, err := env.Webhook.Metric("hcp_ingress_policy_load_errors_total", "")
			if err != nil || n <= errorsBefore {
				return fmt.Sprintf("hcp_ingress_policy_load_errors_total = %v (%v)", n, err)
			}
			return ""
		})
		got, _ := dryRun(t, env.Management, cp)
		if msg := annotationIs("two")(got); msg != "" {
			t.Errorf("after a bad policy: %s", msg)
		}
	})

	t.Run("onUnknownClass: Deny rejects a control plane whose controller cannot pass TLS through", func(t *testing.T) {
		ingressClass(t, "e2e-traefik-deny", controllerTraefik, false)
		writePolicy(t, basePolicy+"onUnknownClass: Deny\n", true)
		denied := k0smotronCP(ns, "denied", "e2e-traefik-deny")
		var res framework.KubectlResult
		eventually(t, "the traefik control plane is denied", func() string {
			res = kubectl(t, env.Management, toYAML(t, denied), "apply", "--dry-run=server", "-f", "-")
			if res.ExitCode == 0 {
				return "allowed: " + res.String()
			}
			return ""
		})
		res = kubectl(t, env.Management, toYAML(t, denied), "apply", "-f", "-")
		if res.ExitCode == 0 {
			t.Fatalf("apply succeeded: %s", res)
		}
		if !strings.Contains(res.Stderr, "denied") || !strings.Contains(res.Stderr, "e2e-traefik-deny") {
			t.Errorf("the rejection should say it was denied and name the class: %s", res.Stderr)
		}
		if got := kubectl(t, env.Management, "", "get", "k0smotroncontrolplanes", "denied", "-n", ns); got.ExitCode == 0 {
			t.Errorf("the denied object was stored")
		}
	})
}

// pollDryRun repeats a server-side dry-run in the management cluster until
// check accepts it and returns how long that took.
func pollDryRun(t *testing.T, obj *unstructured.Unstructured, check func(*unstructured.Unstructured) string) time.Duration {
	t.Helper()
	return eventually(t, "dry-run of "+obj.GetKind()+" "+obj.GetName(), func() string {
		got, _ := dryRun(t, env.Management, obj)
		return check(got)
	})
}
