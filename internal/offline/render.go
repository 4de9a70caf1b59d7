package offline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	yamlv2 "go.yaml.in/yaml/v2"
	"gomodules.xyz/jsonpatch/v2"
)

// Formats are the values of `mutate -o`.
var Formats = []string{"yaml", "json", "patch", "diff"}

// Write renders outcomes in format:
//   - yaml: every document, mutated where the engine changed it, as a stream
//     that can be piped to `kubectl apply -f -`;
//   - json: the same as one object, or a v1 List when there are several;
//   - patch: a JSON array with, per mutated object, its JSON patch;
//   - diff: a unified diff per changed object (nothing for unchanged ones).
func Write(w io.Writer, outcomes []Outcome, format string) error {
	switch format {
	case "yaml", "":
		return writeYAML(w, outcomes)
	case "json":
		return writeJSON(w, outcomes)
	case "patch":
		return writePatches(w, outcomes)
	case "diff":
		return writeDiffs(w, outcomes)
	}
	return fmt.Errorf("output format %q is not one of %s", format, strings.Join(Formats, ", "))
}

func writeYAML(w io.Writer, outcomes []Outcome) error {
	texts := make([][]byte, len(outcomes))
	err := forEach(len(outcomes), func(i int) error {
		y, err := jsonToYAML(outcomes[i].Mutated)
		if err != nil {
			return fmt.Errorf("%s: %w", outcomes[i].Document, err)
		}
		texts[i] = y
		return nil
	})
	if err != nil {
		return err
	}
	for i, y := range texts {
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(y); err != nil {
			return err
		}
	}
	return nil
}

func writeJSON(w io.Writer, outcomes []Outcome) error {
	var out any
	if len(outcomes) == 1 {
		out = json.RawMessage(outcomes[0].Mutated)
	} else {
		items := make([]json.RawMessage, len(outcomes))
		for i, o := range outcomes {
			items[i] = o.Mutated
		}
		out = map[string]any{"apiVersion": "v1", "kind": "List", "items": items}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// objectPatch is one element of `-o patch` output.
type objectPatch struct {
	File       string                `json:"file"`
	Document   int                   `json:"document"`
	Item       int                   `json:"item,omitempty"`
	APIVersion string                `json:"apiVersion"`
	Kind       string                `json:"kind"`
	Namespace  string                `json:"namespace,omitempty"`
	Name       string                `json:"name"`
	Rule       string                `json:"rule,omitempty"`
	Patch      []jsonpatch.Operation `json:"patch"`
	Warnings   []string              `json:"warnings,omitempty"`
}

func writePatches(w io.Writer, outcomes []Outcome) error {
	patches := []objectPatch{}
	for _, o := range outcomes {
		if o.Target == "" {
			continue
		}
		d := o.Document
		patch := o.Result.Patch
		if patch == nil {
			patch = []jsonpatch.Operation{}
		}
		patches = append(patches, objectPatch{
			File: o.Document.File, Document: o.Document.Index, Item: o.Document.Item,
			APIVersion: d.APIVersion, Kind: d.Kind, Namespace: d.Namespace, Name: d.Name,
			Rule: o.Result.Rule, Patch: patch, Warnings: o.Result.Warnings,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(patches)
}

func writeDiffs(w io.Writer, outcomes []Outcome) error {
	texts := make([]string, len(outcomes))
	err := forEach(len(outcomes), func(i int) error {
		text, err := diff(outcomes[i])
		texts[i] = text
		return err
	})
	if err != nil {
		return err
	}
	for _, text := range texts {
		if _, err := io.WriteString(w, text); err != nil {
			return err
		}
	}
	return nil
}

// diff is the unified diff of one outcome, "" when unchanged.
func diff(o Outcome) (string, error) {
	if len(o.Result.Patch) == 0 {
		return "", nil
	}
	before, err := jsonToYAML(o.Document.JSON)
	if err != nil {
		return "", fmt.Errorf("%s: %w", o.Document, err)
	}
	after, err := jsonToYAML(o.Mutated)
	if err != nil {
		return "", fmt.Errorf("%s: %w", o.Document, err)
	}
	name := strings.ToLower(o.Document.Kind) + "/" + o.Document.qualifiedName()
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        difflib.SplitLines(string(before)),
		B:        difflib.SplitLines(string(after)),
		FromFile: "a/" + name,
		ToFile:   "b/" + name,
		Context:  3,
	})
	return text, err
}

// jsonToYAML renders a JSON object as sigs.k8s.io/yaml.JSONToYAML does, with
// the same output (TestJSONToYAMLMatchesSigsYAML holds it to that). The
// measured reason: JSONToYAML reads the JSON with the YAML parser, which is
// a third of the CPU time of `mutate -o yaml`; here encoding/json reads it and
// each number gets the Go type the YAML parser would give it (int, then
// uint64, then float64, from its text), before the same go.yaml.in/yaml/v2
// encoder writes it.
func jsonToYAML(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("data after the JSON value")
	}
	return yamlv2.Marshal(yamlNumbers(v))
}

// yamlNumbers replaces every json.Number in v by the value go.yaml.in/yaml/v2
// resolves the same plain scalar to.
func yamlNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = yamlNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = yamlNumbers(e)
		}
	case json.Number:
		text := string(v)
		if i, err := strconv.ParseInt(text, 0, 64); err == nil {
			if i == int64(int(i)) {
				return int(i)
			}
			return i
		}
		if u, err := strconv.ParseUint(text, 0, 64); err == nil {
			return u
		}
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return f
		}
		return text
	}
	return v
}
