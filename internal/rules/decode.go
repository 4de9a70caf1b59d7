package rules

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// errEmpty is the decoding error of a document with no content.
var errEmpty = errors.New("the policy document is empty: it needs at least apiVersion: " + APIVersion + " and kind: " + Kind)

// maxTypeErrors bounds how many values of the wrong type one load reports
// (each costs one more decoding pass, see decodeDocument).
const maxTypeErrors = 10

// decodeDocument turns one YAML or JSON document into a Document, the way the
// API server reads objects: sigs.k8s.io/yaml turns YAML into JSON (YAML 1.1
// scalars, duplicate keys are errors) and sigs.k8s.io/json decodes it
// strictly (case-sensitive field names; every unknown and duplicate field is
// reported).
//
// err is set when nothing could be decoded at all: the document is empty,
// holds several YAML documents, is not YAML or JSON, or is not a mapping.
// errs lists the fields that did not decode, each with its path in the
// user's terms (map keys as [key], list items as [index]); doc is nil then.
func decodeDocument(data []byte) (doc *Document, errs field.ErrorList, err error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil, errEmpty
	}
	jsonData := trimmed
	if trimmed[0] != '{' {
		// A JSON document is read as JSON directly, so that the YAML
		// parser's stricter whitespace rules never apply to it.
		if err := singleDocument(data); err != nil {
			return nil, nil, err
		}
		if jsonData, err = yaml.YAMLToJSONStrict(data); err != nil {
			return nil, nil, yamlError(err)
		}
	}
	switch first := bytes.TrimSpace(jsonData); {
	case len(first) == 0 || string(first) == "null":
		return nil, nil, errEmpty
	case first[0] != '{':
		var v any
		if err := json.Unmarshal(first, &v); err != nil {
			return nil, nil, syntaxError(err)
		}
		return nil, nil, fmt.Errorf("the policy document must be a mapping of fields (apiVersion, kind, ...), not %s", describeValue(v))
	}

	// sigs.k8s.io/json stops at the first value of the wrong type and then
	// drops the unknown and duplicate fields it found. Each such value is
	// reported and replaced by null (which leaves the field unset), and the
	// document decoded again, so that one load reports every problem.
	for typeErrors := 0; ; typeErrors++ {
		doc = &Document{}
		strictErrs, err := sigsjson.UnmarshalStrict(jsonData, doc)
		var typeErr *json.UnmarshalTypeError
		switch {
		case err == nil && len(strictErrs) == 0 && len(errs) == 0:
			return doc, nil, nil
		case err == nil:
			return nil, append(errs, strictFieldErrors(jsonData, strictErrs)...), nil
		case errors.As(err, &typeErr) && typeErrors < maxTypeErrors:
			fe, start, end := typeError(jsonData, typeErr)
			errs = append(errs, fe)
			if start < 0 {
				return nil, errs, nil
			}
			jsonData = replaceRange(jsonData, start, end, "null")
		case errors.As(err, &typeErr):
			return nil, append(errs, field.Forbidden(orDocument(nil), fmt.Sprintf(
				"more than %d values of the wrong type: fix these and load again to see the others", maxTypeErrors))), nil
		default:
			return nil, nil, syntaxError(err)
		}
	}
}

// singleDocument rejects a YAML stream of several documents: the server
// reads one, and silently ignoring the others (invalid ones included) would
// hide half of what the author wrote. Documents that hold only comments do
// not count, so a leading or trailing "---" is fine.
func singleDocument(data []byte) error {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	count := 0
	for {
		chunk, err := reader.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not valid YAML: %w", err)
		}
		if blankYAML(chunk) {
			continue
		}
		if count++; count > 1 {
			return fmt.Errorf("document %d: a policy file holds exactly one YAML document, but a \"---\" line starts another here "+
				"(the webhook would ignore it): merge the documents or split the file", count)
		}
	}
}

// blankYAML reports whether a YAML document holds only comments and blank
// lines.
func blankYAML(doc []byte) bool {
	for line := range bytes.Lines(doc) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' {
			return false
		}
	}
	return true
}

func replaceRange(data []byte, start, end int64, with string) []byte {
	out := make([]byte, 0, int64(len(data))-(end-start)+int64(len(with)))
	out = append(out, data[:start]...)
	out = append(out, with...)
	return append(out, data[end:]...)
}

// syntaxError describes a JSON syntax error with its byte offset.
func syntaxError(err error) error {
	if ok, offset := sigsjson.SyntaxErrorOffset(err); ok {
		return fmt.Errorf("not valid YAML or JSON: %w (at byte %d)", err, offset)
	}
	return fmt.Errorf("not valid YAML or JSON: %w", err)
}

// yamlError turns a YAML parser error into one line per problem.
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "unmarshal errors:\n"); ok {
		lines := strings.Split(rest, "\n")
		for i, l := range lines {
			l = strings.TrimSpace(l)
			if strings.HasSuffix(l, "already set in map") {
				l += " (duplicate key)"
			}
			lines[i] = l
		}
		return errors.New(strings.Join(lines, "\n"))
	}
	return errors.New("not valid YAML or JSON: " + msg)
}

// unknownField reports a field the type does not have, suggesting the field
// that was probably meant.
func unknownField(path *field.Path, name string, fields map[string]reflect.Type) *field.Error {
	detail := "unknown field (the policy is read strictly)"
	best, bestDistance := "", math.MaxInt
	for known := range fields {
		d := editDistance(strings.ToLower(name), strings.ToLower(known))
		if d < bestDistance || d == bestDistance && known < best {
			best, bestDistance = known, d
		}
	}
	if best != "" && bestDistance <= max(2, len(name)/4) {
		detail += fmt.Sprintf("; did you mean %q?", best)
	}
	return field.Forbidden(path, detail)
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt // a name that long is no typo of a field name
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// jsonFieldsCache holds, per struct type, its JSON field names and types.
var jsonFieldsCache sync.Map // reflect.Type -> map[string]reflect.Type

func jsonFields(t reflect.Type) map[string]reflect.Type {
	if cached, ok := jsonFieldsCache.Load(t); ok {
		return cached.(map[string]reflect.Type)
	}
	fields := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	jsonFieldsCache.Store(t, fields)
	return fields
}

func orDocument(path *field.Path) *field.Path {
	if path == nil {
		return field.NewPath("<document>")
	}
	return path
}

// describeToken names the first token of a JSON value for messages.
func describeToken(tok json.Token) string {
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '[' {
			return "a list"
		}
		return "a mapping"
	case json.Number:
		return "the number " + tok.String()
	case string:
		return fmt.Sprintf("the string %q", tok)
	case bool:
		return fmt.Sprintf("the boolean %t", tok)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

// describeValue names a decoded JSON value for messages.
func describeValue(v any) string {
	switch v := v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case float64:
		return "the number " + strconv.FormatFloat(v, 'g', -1, 64)
	}
	return describeToken(v)
}
