package offline

import (
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// FuzzOfflineRead feeds the offline reader arbitrary input: it never panics, every
// error names the file, and every document it returns says what it is.
func FuzzOfflineRead(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: DaemonSet\n  metadata: {name: ccm}\n",
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}} {"apiVersion":"v1","kind":"List","items":[1]}`,
		"a: 1\na: 2\n", "---\n---\n# c\n", "[1, 2]", "items: {}\napiVersion: v1\nkind: X\n",
		`{"a":1,"a":2}`, "apiVersion: v1\nkind: X\nmetadata: {name: 5}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := Read("in.yaml", strings.NewReader(string(data)))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "in.yaml: ") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, d := range docs {
			if d.APIVersion == "" || d.Kind == "" || len(d.JSON) == 0 {
				t.Fatalf("document %s without apiVersion, kind or JSON", d)
			}
		}
	})
}

// FuzzJSONToYAML holds jsonToYAML to sigs.k8s.io/yaml.JSONToYAML on any JSON
// both accept.
func FuzzJSONToYAML(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[1.5,"x",null,true],"c":{"d":-0}}`, `{"n":12345678901234567890,"e":1e21,"s":"a: b"}`, `[]`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return // the engine renders only JSON it wrote
		}
		want, err := yaml.JSONToYAML(data)
		if err != nil {
			return
		}
		got, err := jsonToYAML(data)
		if err != nil {
			return // JSON the YAML parser reads leniently (YAML is a superset)
		}
		if string(got) != string(want) {
			t.Fatalf("jsonToYAML(%q):\n%s\nsigs.k8s.io/yaml:\n%s", data, got, want)
		}
	})
}
