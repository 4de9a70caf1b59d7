package offline

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/yaml"
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
		y, err := yaml.JSONToYAML(outcomes[i].Mutated)
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
	before, err := yaml.JSONToYAML(o.Document.JSON)
	if err != nil {
		return "", fmt.Errorf("%s: %w", o.Document, err)
	}
	after, err := yaml.JSONToYAML(o.Mutated)
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
