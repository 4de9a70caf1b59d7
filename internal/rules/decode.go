package rules

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// errEmpty is the decoding error of a document with no content.
var errEmpty = errors.New("the policy document is empty: it needs at least apiVersion: " + APIVersion + " and kind: " + Kind)

// decodeDocument turns YAML or JSON into a Document. It is strict: duplicate
// keys, unknown fields (matched case-sensitively, as the API server matches
// them) and values of the wrong type are errors, every one of them reported
// with its field path. err is set when nothing could be decoded at all: the
// document is empty, is not YAML or JSON, or is not a mapping. Otherwise doc
// holds what did decode, fields with errors left at their zero value.
func decodeDocument(data []byte) (doc *Document, errs field.ErrorList, err error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil, errEmpty
	}
	jsonData := trimmed
	if trimmed[0] != '{' {
		// YAML, read as kubectl reads it (YAML 1.1 scalars, duplicate keys
		// are errors). A JSON document is read as JSON directly, so that the
		// YAML parser's stricter whitespace rules never apply to it.
		if jsonData, err = yaml.YAMLToJSONStrict(data); err != nil {
			return nil, nil, yamlError(err)
		}
	}

	var generic any
	strictErrs, err := sigsjson.UnmarshalStrict(jsonData, &generic)
	if err != nil {
		if ok, offset := sigsjson.SyntaxErrorOffset(err); ok {
			return nil, nil, fmt.Errorf("not valid YAML or JSON: %w (at byte %d)", err, offset)
		}
		return nil, nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	switch generic.(type) {
	case nil:
		return nil, nil, errEmpty
	case map[string]any:
	default:
		return nil, nil, fmt.Errorf("the policy document must be a mapping of fields (apiVersion, kind, ...), not %s", describeJSON(generic))
	}
	for _, se := range strictErrs { // duplicate keys of a JSON document
		errs = append(errs, strictError(se))
	}
	errs = append(errs, checkShape(nil, generic, reflect.TypeFor[Document]())...)

	doc = &Document{}
	// Errors here are the type errors checkShape has reported already, with
	// better paths; the decoder skips such a field and goes on.
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(jsonData, doc); err != nil && len(errs) == 0 {
		errs = append(errs, field.InternalError(nil, err))
	}
	return doc, errs, nil
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

// strictError turns a duplicate (or unknown) field reported by the strict
// JSON decoder into a field error.
func strictError(err error) *field.Error {
	type fieldPather interface{ FieldPath() string }
	var fp fieldPather
	if !errors.As(err, &fp) {
		return field.InternalError(nil, err)
	}
	path := field.NewPath(fp.FieldPath())
	if strings.HasPrefix(err.Error(), "duplicate field") {
		return field.Duplicate(path, field.OmitValueType{})
	}
	return field.Invalid(path, field.OmitValueType{}, err.Error())
}

// checkShape compares a decoded JSON value with the Go type it is meant to
// fill and reports every unknown field and every value of the wrong type.
// encoding/json would stop at the first of either, and name a type error's
// field without the map keys on its way ("ingressClasses.annotations").
func checkShape(path *field.Path, v any, t reflect.Type) field.ErrorList {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil { // null leaves the zero value, as encoding/json does
		return nil
	}
	var errs field.ErrorList
	wrongType := func(want string) field.ErrorList {
		return field.ErrorList{field.TypeInvalid(orDocument(path), field.OmitValueType{},
			fmt.Sprintf("must be %s, not %s", want, describeJSON(v)))}
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return wrongType("a mapping of fields")
		}
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			ft, known := fields[k]
			if !known {
				errs = append(errs, unknownField(childOf(path, k), k, fields))
				continue
			}
			errs = append(errs, checkShape(childOf(path, k), m[k], ft)...)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return wrongType("a mapping")
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			errs = append(errs, checkShape(childOf(path, k), m[k], t.Elem())...)
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return wrongType("a list")
		}
		for i, item := range list {
			errs = append(errs, checkShape(orDocument(path).Index(i), item, t.Elem())...)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return wrongType(`a string (quote values such as "true" or "443")`)
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return wrongType("true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(int64) // PreserveInts: integers decode as int64, others as float64
		if !ok {
			return wrongType("an integer")
		}
		bits := t.Bits()
		if n < -1<<(bits-1) || n > 1<<(bits-1)-1 {
			return field.ErrorList{field.Invalid(orDocument(path), n, fmt.Sprintf("must fit in %d bits", bits))}
		}
	default:
		return field.ErrorList{field.InternalError(orDocument(path), fmt.Errorf("no shape check for %s", t))}
	}
	return errs
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

func childOf(path *field.Path, name string) *field.Path {
	if path == nil {
		return field.NewPath(name)
	}
	return path.Child(name)
}

func orDocument(path *field.Path) *field.Path {
	if path == nil {
		return field.NewPath("<document>")
	}
	return path
}

// describeJSON names the kind of a decoded JSON value for messages.
func describeJSON(v any) string {
	switch v := v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return fmt.Sprintf("the string %q", v)
	case bool:
		return fmt.Sprintf("the boolean %t", v)
	case int64, float64:
		return fmt.Sprintf("the number %v", v)
	}
	return fmt.Sprintf("%T", v)
}

// outside returns the errors of more that are not about a field (or a field
// under one) that already has an error in errs, nor a missing field next to
// an unknown one, which is most likely the same field misspelt.
func outside(errs, more field.ErrorList) field.ErrorList {
	if len(errs) == 0 {
		return more
	}
	out := more[:0:0]
	for _, e := range more {
		covered := slices.ContainsFunc(errs, func(d *field.Error) bool {
			if e.Field == d.Field || strings.HasPrefix(e.Field, d.Field+".") || strings.HasPrefix(e.Field, d.Field+"[") {
				return true
			}
			if e.Type == field.ErrorTypeRequired && d.Type == field.ErrorTypeForbidden {
				parent, _ := cutLast(d.Field)
				sibling, _ := cutLast(e.Field)
				return parent == sibling
			}
			return false
		})
		if !covered {
			out = append(out, e)
		}
	}
	return out
}

// cutLast splits a field path at its last dot.
func cutLast(path string) (parent, last string) {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i], path[i+1:]
	}
	return "", path
}
