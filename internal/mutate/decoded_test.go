package mutate

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// envelope stands for the webhook's AdmissionReview: a document that holds
// the object under request.object.
type envelope struct {
	Request *struct {
		UID    string   `json:"uid"`
		Object *Decoded `json:"object"`
	} `json:"request"`
}

// decodeInEnvelope wraps object as the webhook receives it and decodes it
// in one pass, as the webhook does.
func decodeInEnvelope(t *testing.T, target Target, object string) (*Decoded, error) {
	t.Helper()
	var e envelope
	err := json.Unmarshal([]byte(`{"request":{"uid":"u","object":`+object+`,"after":[1,{"x":"y"}]}}`), &e, DecodeOptionsFor(target))
	if e.Request == nil {
		return nil, err
	}
	return e.Request.Object, err
}

// TestDecodedInOnePassAdmitsAsTheRawObject: every object of the repository
// (examples, engine and provider fixtures, e2e workloads) gets the same
// result from the engine when decoded in the webhook's pass as when read
// from its raw bytes, under a policy and classes that exercise both engines.
func TestDecodedInOnePassAdmitsAsTheRawObject(t *testing.T) {
	var files []string
	for _, pattern := range []string{
		"../../examples/controlplanes/*.yaml", "../../examples/workloads/*.yaml",
		"testdata/*.yaml", "testdata/workloads/*.yaml",
		"../rules/testdata/providers/*.yaml", "../../e2e/testdata/workloads/*.yaml",
	} {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, matches...)
	}
	classes := rules.NewStaticClasses(rules.IngressClass{Name: "haproxy", Controller: "haproxy.org/ingress-controller/haproxy", IsDefault: true})
	checked := 0
	for _, file := range files {
		if strings.HasSuffix(file, ".expected.yaml") {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(data), "\n---\n") {
			object, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil || string(object) == "null" {
				continue
			}
			tm, err := decodeObject[struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}](object)
			if err != nil {
				t.Fatalf("%s #%d: %v", file, i, err)
			}
			target, ok := TargetOf(tm.APIVersion, tm.Kind)
			if !ok {
				continue
			}
			in := Input{Object: object, Operation: "CREATE", Namespace: "kube-system", Policy: rules.Default(), Classes: classes,
				APIServer: &rules.APIServer{Host: "api.example.com", Port: 443}}
			engine := ControlPlane
			if target == TargetWorkload {
				engine = Workload
			}
			want, wantErr := engine(in)
			decoded, err := decodeInEnvelope(t, target, string(object))
			if err != nil {
				t.Fatalf("%s #%d: decoding in the envelope: %v", file, i, err)
			}
			in.Object, in.Decoded = nil, decoded
			got, gotErr := engine(in)
			if !reflect.DeepEqual(got, want) || (gotErr == nil) != (wantErr == nil) {
				t.Errorf("%s #%d: decoded in one pass: %+v, %v; from the raw bytes: %+v, %v", file, i, got, gotErr, want, wantErr)
			}
			checked++
		}
	}
	if checked < 40 {
		t.Fatalf("only %d objects checked", checked)
	}
	t.Logf("%d objects admitted alike", checked)
}

// TestDecodedFallsBack: what the one pass cannot decode fails the pass (the
// caller then admits from the raw bytes, for an error with the object's own
// path), and an absent or null object leaves the engine to read Input.Object.
func TestDecodedFallsBack(t *testing.T) {
	for name, object := range map[string]string{
		"a duplicate key in the object": `{"apiVersion":"apps/v1","kind":"DaemonSet","kind":"DaemonSet"}`,
		"a wrong type":                  `{"apiVersion":"apps/v1","kind":"DaemonSet","spec":{"template":{"spec":{"containers":"x"}}}}`,
		"invalid UTF-8":                 "{\"apiVersion\":\"apps/v1\",\"kind\":\"\xff\"}",
	} {
		if _, err := decodeInEnvelope(t, TargetWorkload, object); err == nil {
			t.Errorf("%s: the one pass decoded it", name)
		}
	}
	if decoded, err := decodeInEnvelope(t, TargetWorkload, "null"); err != nil || decoded != nil {
		t.Fatalf("a null object: %+v, %v; want nil, nil", decoded, err)
	}
	if _, err := Workload(Input{Operation: "CREATE", Decoded: &Decoded{}}); err == nil {
		t.Fatal("an empty Decoded and no Object admitted without error")
	}
}
