// Package offline runs the admission engine on files, for the `mutate`
// command: it reads multi-document YAML or JSON (and List kinds), feeds the
// IngressClass objects it finds to rule resolution, runs the same engine the
// webhook runs, and renders the outcome as YAML, JSON, a JSON patch or a diff.
package offline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Document is one object of the input, as JSON, with where it came from.
type Document struct {
	File  string // file name, "-" for standard input
	Index int    // 1-based position of the document in its file
	// Item is the 1-based position inside a List document, 0 otherwise.
	Item   int
	JSON   []byte
	Object *unstructured.Unstructured
}

// String names the document in messages: file, document number, kind and name.
func (d Document) String() string {
	where := fmt.Sprintf("%s: document %d", d.File, d.Index)
	if d.Item > 0 {
		where += fmt.Sprintf(" item %d", d.Item)
	}
	if d.Object != nil && d.Object.GetKind() != "" {
		where += fmt.Sprintf(" (%s %s)", d.Object.GetKind(), qualifiedName(d.Object))
	}
	return where
}

func qualifiedName(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetName()
	}
	return u.GetNamespace() + "/" + u.GetName()
}

// maxDocumentBytes bounds one document, like the API server's request limit.
const maxDocumentBytes = 3 * 1024 * 1024

// Read splits r into documents: a YAML stream on "---", a JSON stream
// object by object (apimachinery's YAML-or-JSON decoder tells them apart);
// List kinds are expanded into their items. Documents that are empty or only
// comments are skipped.
func Read(file string, r io.Reader) ([]Document, error) {
	decoder := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReaderSize(r, 64*1024), 64*1024)
	var docs []Document
	for index := 1; ; index++ {
		var raw json.RawMessage
		err := decoder.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: not valid YAML or JSON: %w", file, index, err)
		}
		if len(raw) > maxDocumentBytes {
			return nil, fmt.Errorf("%s: document %d: %d bytes is larger than the %d bytes an API server accepts", file, index, len(raw), maxDocumentBytes)
		}
		if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
			continue
		}
		more, err := decode(file, index, raw)
		if err != nil {
			return nil, err
		}
		docs = append(docs, more...)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no objects found", file)
	}
	return docs, nil
}

func decode(file string, index int, js []byte) ([]Document, error) {
	var object map[string]any
	if err := json.Unmarshal(js, &object); err != nil {
		return nil, fmt.Errorf("%s: document %d: not an object: %w", file, index, err)
	}
	u := &unstructured.Unstructured{Object: object}
	doc := Document{File: file, Index: index, JSON: js, Object: u}
	if u.GetAPIVersion() == "" || u.GetKind() == "" {
		return nil, fmt.Errorf("%s: apiVersion and kind are required", doc)
	}
	if !u.IsList() {
		return []Document{doc}, nil
	}
	items, _, err := unstructured.NestedSlice(object, "items")
	if err != nil {
		return nil, fmt.Errorf("%s: items: %w", doc, err)
	}
	docs := make([]Document, 0, len(items))
	for i, item := range items {
		itemObject, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: items[%d]: expected an object, got %T", doc, i, item)
		}
		itemJSON, err := json.Marshal(itemObject)
		if err != nil {
			return nil, fmt.Errorf("%s: items[%d]: %w", doc, i, err)
		}
		d := Document{File: file, Index: index, Item: i + 1, JSON: itemJSON, Object: &unstructured.Unstructured{Object: itemObject}}
		if d.Object.GetAPIVersion() == "" || d.Object.GetKind() == "" {
			return nil, fmt.Errorf("%s: apiVersion and kind are required", d)
		}
		docs = append(docs, d)
	}
	return docs, nil
}
