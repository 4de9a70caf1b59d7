// Package offline runs the admission engine on files, for the `mutate`
// command: it reads multi-document YAML or JSON (and List kinds), feeds the
// IngressClass objects it finds to rule resolution, runs the same engine the
// webhook runs, and renders the outcome as YAML, JSON, a JSON patch or a diff.
//
// Documents are independent once read, so converting, admitting and
// rendering them runs on every core (see forEach); the output keeps the
// input's order.
package offline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	yaml3 "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
)

// Document is one object of the input, as JSON, with where it came from.
type Document struct {
	File  string // file name, "-" for standard input
	Index int    // 1-based position of the document in its file
	// Item is the 1-based position inside a List document, 0 otherwise.
	Item int
	JSON []byte
	// What the object says it is, for messages and for the output.
	APIVersion, Kind, Namespace, Name string
}

// String names the document in messages: file, document number, kind and name.
func (d Document) String() string {
	where := fmt.Sprintf("%s: document %d", d.File, d.Index)
	if d.Item > 0 {
		where += fmt.Sprintf(" item %d", d.Item)
	}
	if d.Kind != "" {
		where += fmt.Sprintf(" (%s %s)", d.Kind, d.qualifiedName())
	}
	return where
}

func (d Document) qualifiedName() string {
	if d.Namespace == "" {
		return d.Name
	}
	return d.Namespace + "/" + d.Name
}

// The limits of offline input. A document is bounded like an API server
// request (3 MiB); a file is bounded at 32 MiB and refused before it is read
// whole, so that a huge or endless input costs neither the memory nor the
// time of converting it.
const (
	MaxFileBytes     = 32 << 20
	maxDocumentBytes = 3 << 20
)

// rawDocument is one document of a file as written, before conversion.
type rawDocument struct {
	index int
	data  []byte
	json  bool // data is JSON already (a JSON stream)
}

// Read splits r into documents: a YAML stream on "---", a JSON stream
// object by object (apimachinery tells them apart as kubectl does); List
// kinds are expanded into their items. Documents that are empty or only
// comments are skipped. Duplicate keys are errors naming the file, the
// document and the path.
func Read(file string, r io.Reader) ([]Document, error) {
	raws, err := split(file, r)
	if err != nil {
		return nil, err
	}
	perRaw := make([][]Document, len(raws))
	err = forEach(len(raws), func(i int) error {
		docs, err := convert(file, raws[i])
		perRaw[i] = docs
		return err
	})
	if err != nil {
		return nil, err
	}
	var docs []Document
	for _, more := range perRaw {
		docs = append(docs, more...)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no objects found", file)
	}
	return docs, nil
}

// split reads the documents of r as written. The input is read in chunks
// and refused as soon as it passes MaxFileBytes: a 50 MiB stream costs 32 MiB
// to refuse, where reading it whole, or splitting it line by line, cost ten
// times as much.
func split(file string, r io.Reader) ([]rawDocument, error) {
	data, err := readAtMost(r, MaxFileBytes)
	if errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("%s: larger than %d MiB, the limit of offline input", file, MaxFileBytes>>20)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	buffered, _, isJSON := utilyaml.GuessJSONStream(bytes.NewReader(data), 4096)
	var raws []rawDocument
	if isJSON {
		dec := jsontext.NewDecoder(buffered)
		for index := 1; ; index++ {
			value, err := dec.ReadValue()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: document %d: %s", file, index, mutate.DescribeJSONError(err, nil))
			}
			raws = append(raws, rawDocument{index: index, data: bytes.Clone(value), json: true})
		}
		return raws, nil
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(buffered))
	for index := 1; ; index++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, index, err)
		}
		raws = append(raws, rawDocument{index: index, data: doc})
	}
	return raws, nil
}

var errTooLarge = errors.New("input too large")

// readAtMost reads r whole, or fails with errTooLarge as soon as it has read
// more than limit bytes.
func readAtMost(r io.Reader, limit int) ([]byte, error) {
	const chunkSize = 256 << 10
	var chunks [][]byte
	total := 0
	for {
		chunk := make([]byte, chunkSize)
		n, err := io.ReadFull(r, chunk)
		total += n
		if total > limit {
			return nil, errTooLarge
		}
		chunks = append(chunks, chunk[:n])
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	return bytes.Join(chunks, nil), nil
}

// header is what the offline command reads of every object.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	// Items makes a List (any object whose items is an array, as
	// apimachinery's unstructured.IsList has it).
	Items jsontext.Value `json:"items"`
}

// convert turns one document into JSON and reads what it is; a List gives
// its items.
func convert(file string, raw rawDocument) ([]Document, error) {
	where := fmt.Sprintf("%s: document %d", file, raw.index)
	if len(raw.data) > maxDocumentBytes {
		return nil, fmt.Errorf("%s: %d bytes is larger than the %d bytes an API server accepts", where, len(raw.data), maxDocumentBytes)
	}
	js := raw.data
	if !raw.json {
		var err error
		if js, err = yaml.YAMLToJSONStrict(raw.data); err != nil {
			if dups := duplicateKeys(raw.data); len(dups) > 0 {
				return nil, fmt.Errorf("%s: %s", where, strings.Join(dups, "; "))
			}
			return nil, fmt.Errorf("%s: not valid YAML or JSON: %w", where, err)
		}
	}
	if trimmed := bytes.TrimSpace(js); len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return nil, nil
	}
	doc, h, err := readHeader(Document{File: file, Index: raw.index, JSON: js})
	if err != nil {
		return nil, err
	}
	if h.Items.Kind() != '[' {
		return []Document{doc}, nil
	}
	var items []jsontext.Value
	if err := json.Unmarshal(h.Items, &items); err != nil {
		return nil, fmt.Errorf("%s: items: %s", doc, mutate.DescribeJSONError(err, h.Items))
	}
	docs := make([]Document, 0, len(items))
	for i, item := range items {
		d, _, err := readHeader(Document{File: file, Index: raw.index, Item: i + 1, JSON: item})
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// readHeader fills apiVersion, kind, name and namespace of doc.
func readHeader(doc Document) (Document, *header, error) {
	h := &header{}
	if err := json.Unmarshal(doc.JSON, h); err != nil {
		return doc, nil, fmt.Errorf("%s: %s", doc, mutate.DescribeJSONError(err, doc.JSON))
	}
	doc.APIVersion, doc.Kind, doc.Name, doc.Namespace = h.APIVersion, h.Kind, h.Metadata.Name, h.Metadata.Namespace
	if doc.APIVersion == "" || doc.Kind == "" {
		return doc, nil, fmt.Errorf("%s: apiVersion and kind are required", doc)
	}
	return doc, h, nil
}

// duplicateKeys lists the duplicate keys of a YAML document with their
// paths. The strict YAML decoder says only "line 7: key already set";
// go.yaml.in/yaml/v3 keeps duplicates in its node tree, where the path can be
// found.
func duplicateKeys(data []byte) []string {
	var root yaml3.Node
	if yaml3.Unmarshal(data, &root) != nil {
		return nil
	}
	var found []string
	var walk func(n *yaml3.Node, path *field.Path)
	walk = func(n *yaml3.Node, path *field.Path) {
		switch n.Kind {
		case yaml3.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml3.SequenceNode:
			for i, c := range n.Content {
				walk(c, indexPath(path, i))
			}
		case yaml3.MappingNode:
			seen := map[string]bool{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				key, value := n.Content[i], n.Content[i+1]
				if seen[key.Value] {
					at := "the document"
					if path != nil {
						at = path.String()
					}
					found = append(found, fmt.Sprintf("%s: duplicate key %q (line %d of the document)", at, key.Value, key.Line))
				}
				seen[key.Value] = true
				walk(value, childPath(path, key.Value))
			}
		}
	}
	walk(&root, nil)
	return found
}

func childPath(p *field.Path, name string) *field.Path {
	if p == nil {
		return field.NewPath(name)
	}
	return p.Child(name)
}

func indexPath(p *field.Path, i int) *field.Path {
	if p == nil {
		return field.NewPath("").Index(i)
	}
	return p.Index(i)
}
