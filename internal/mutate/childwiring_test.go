package mutate

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// Fleet wiring (PRODUCT.md "Fleet wiring"): the spec.manifests entry is
// appended on CREATE, on an UPDATE that itself changes spec.manifests and
// leaves the entry out, and never otherwise.
func TestControlPlaneChildWiring(t *testing.T) {
	const (
		cp       = `{"apiVersion":"controlplane.cluster.x-k8s.io/v1beta1","kind":"K0smotronControlPlane","metadata":{"name":"tenant-a","namespace":"tenants"},"spec":{%s"ingress":{"className":"haproxy","apiHost":"api.example.com","konnectivityHost":"k.example.com"}}}`
		entry    = `{"name":"hcp-ingress-child","configMap":{"name":"hcp-ingress-child-tenant-a","optional":true}}`
		charts   = `"manifests":[{"name":"charts","configMap":{"name":"charts-v1"}}],`
		charts2  = `"manifests":[{"name":"charts","configMap":{"name":"charts-v2"}}],`
		wired    = `"manifests":[{"name":"hcp-ingress-child","configMap":{"name":"mine"}}],`
		appended = "add /spec/manifests/- " + entry
		created  = "add /spec/manifests [" + entry + "]"
	)
	object := func(manifests string) string { return strings.Replace(cp, "%s", manifests, 1) }
	cases := map[string]struct {
		object    string
		operation string
		old       string
		off       bool
		want      string // the spec.manifests operation; "" none
		warning   string
		wantErr   string
	}{
		"create without spec.manifests creates the list":     {object: object(""), want: created, warning: "fleet wiring, on create"},
		"create with a null spec.manifests creates the list": {object: object(`"manifests":null,`), want: created},
		"create with other manifests appends":                {object: object(charts), want: appended},
		"create with the entry already there (any content)":  {object: object(wired)},
		"an empty operation is a create (offline)":           {object: object(""), operation: "-", want: created},
		"a k0smotron Cluster is wired too": {
			object: `{"apiVersion":"k0smotron.io/v1beta2","kind":"Cluster","metadata":{"name":"tenant-a"},"spec":{"ingress":{"className":"haproxy"}}}`, want: created,
		},
		"never for a template": {
			object: `{"apiVersion":"controlplane.cluster.x-k8s.io/v1beta1","kind":"K0smotronControlPlaneTemplate","metadata":{"name":"tenant-a"},"spec":{"template":{"spec":{"ingress":{"className":"haproxy"}}}}}`,
		},
		"never without spec.ingress":   {object: `{"apiVersion":"k0smotron.io/v1beta2","kind":"Cluster","metadata":{"name":"tenant-a"},"spec":{}}`},
		"never with spec.ingress null": {object: `{"apiVersion":"k0smotron.io/v1beta2","kind":"Cluster","metadata":{"name":"tenant-a"},"spec":{"ingress":null}}`},
		"never when skip-labelled": {
			object: `{"apiVersion":"k0smotron.io/v1beta2","kind":"Cluster","metadata":{"name":"tenant-a","labels":{"hcp-ingress.io/skip":"true"}},"spec":{"ingress":{}}}`,
		},
		"never with fleet wiring off":                            {object: object(""), off: true},
		"update that does not touch spec.manifests":              {object: object(charts), operation: "UPDATE", old: object(charts)},
		"update with the same list spelled differently":          {object: object(charts), operation: "UPDATE", old: object(`"manifests" : [ {"configMap":{"name":"charts-v1"},"name":"charts"} ],`)},
		"update that rewrites spec.manifests without it":         {object: object(charts2), operation: "UPDATE", old: object(charts), want: appended, warning: "this update changes spec.manifests"},
		"update that drops the entry":                            {object: object(charts), operation: "UPDATE", old: object(`"manifests":[{"name":"charts","configMap":{"name":"charts-v1"}},` + entry + `],`), want: appended},
		"update that adds spec.manifests":                        {object: object(charts), operation: "UPDATE", old: object(""), want: appended},
		"update that removes spec.manifests gets the entry back": {object: object(""), operation: "UPDATE", old: object(charts), want: created},
		"update from absent to null is no change":                {object: object(`"manifests":null,`), operation: "UPDATE", old: object("")},
		"update without an old object is never wired":            {object: object(charts2), operation: "UPDATE"},
		"a name too long for a ConfigMap is a warning": {
			object:  strings.Replace(object(""), "tenant-a", strings.Repeat("a", 240), 1),
			warning: "not a valid ConfigMap name",
		},
		"spec.manifests of the wrong type is an error naming it": {object: object(`"manifests":{"name":"x"},`), wantErr: "spec.manifests: must be an array, got object"},
		"an entry name of the wrong type is an error naming it":  {object: object(`"manifests":[{"name":"a"},{"name":7}],`), wantErr: "spec.manifests[1].name: must be a string, got integer"},
		"a null entry is not the wiring entry":                   {object: object(`"manifests":[null],`), want: appended},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := Input{Object: []byte(tc.object), Operation: "CREATE", Policy: rules.Default(), ChildWiring: !tc.off}
			switch tc.operation {
			case "-":
				in.Operation = ""
			case "UPDATE":
				in.Operation = "UPDATE"
			}
			if tc.old != "" {
				in.OldObject = []byte(tc.old)
			}
			res, err := ControlPlane(in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, op := range res.Patch {
				if strings.HasPrefix(op.Path, "/spec/manifests") {
					value, _ := json.Marshal(op.Value)
					got = append(got, op.Operation+" "+op.Path+" "+string(value))
				}
			}
			if want := tc.want; strings.Join(got, "\n") != want {
				t.Errorf("spec.manifests operations %q, want %q", got, want)
			}
			if tc.want != "" && res.AuditAnnotations["child-wiring"] != "appended hcp-ingress-child" {
				t.Errorf("audit annotations %v lack child-wiring", res.AuditAnnotations)
			}
			if tc.warning != "" {
				assertWarnings(t, res.Warnings, []string{tc.warning})
			}
			checkInvariants(t, ControlPlane, controlPlanePath, in, res)
		})
	}
}
