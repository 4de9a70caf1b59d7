package mutate

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The engine reads objects with go-json-experiment/json, the basis of Go's
// encoding/json/v2, into small structs that name only what the engine reads;
// everything else is skipped by the library's single pass (a control plane
// is mostly spec.k0sConfig, which the engine never decodes). The object
// itself is never re-marshalled: changes are JSON patch operations on the raw
// bytes, so fields the structs do not name survive byte for byte.
//
// The library's defaults are the API server's rules where they matter:
// member names match case-sensitively ("Spec" is not spec), and invalid
// UTF-8 is rejected. A duplicate member name is rejected too (the API server
// never sends one: it decodes and re-encodes every object before calling
// webhooks; offline input with one is a mistake to report). Errors carry a
// JSON pointer, which decodeError turns into the field path of the user's
// terms, indexes included.

// decodeOptions are the options of every decode. The library's defaults are
// spelled out so that a change of defaults cannot change what the engine
// accepts.
var decodeOptions = json.JoinOptions(
	json.MatchCaseInsensitiveNames(false),
	json.RejectUnknownMembers(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// Decoded is an object read by the engine's decoder inside the caller's
// pass over a larger document: the webhook decodes its AdmissionReview and
// the object in it in one pass, so the object's bytes (~10 KB for a control
// plane) are read once per request instead of once to find where the object
// ends and again to decode it. Give it to the engine as Input.Decoded.
//
// A nil Decoded (the document had no such member, or it was null) makes the
// engine read Input.Object as usual. When decoding the document fails, the
// caller should admit from the raw bytes instead, so that the error names
// the object's own field path.
type Decoded struct {
	controlPlane *controlPlaneObject
	workload     *workloadObject
}

// DecodeOptionsFor returns the options to read a document holding a
// *Decoded of target's objects with (json.Unmarshal(data, v, options)): the
// engine's own, so that the object is read exactly as decodeObject reads it
// (duplicate names and invalid UTF-8 are errors, names match
// case-sensitively), and the reader of a Decoded. Built once per target.
func DecodeOptionsFor(target Target) json.Options {
	return decodedOptions[target]
}

var decodedOptions = map[Target]json.Options{
	TargetControlPlane: json.JoinOptions(decodeOptions, json.WithUnmarshalers(json.UnmarshalFromFunc(
		func(dec *jsontext.Decoder, d *Decoded) error {
			d.controlPlane = new(controlPlaneObject)
			return json.UnmarshalDecode(dec, d.controlPlane)
		}))),
	TargetWorkload: json.JoinOptions(decodeOptions, json.WithUnmarshalers(json.UnmarshalFromFunc(
		func(dec *jsontext.Decoder, d *Decoded) error {
			d.workload = new(workloadObject)
			return json.UnmarshalDecode(dec, d.workload)
		}))),
}

// controlPlaneOr is the decoded control plane, or raw decoded now.
func (d *Decoded) controlPlaneOr(raw []byte) (*controlPlaneObject, error) {
	if d != nil && d.controlPlane != nil {
		return d.controlPlane, nil
	}
	return decodeControlPlane(raw)
}

// workloadOr is the decoded workload, or raw decoded now.
func (d *Decoded) workloadOr(raw []byte) (*workloadObject, error) {
	if d != nil && d.workload != nil {
		return d.workload, nil
	}
	return decodeWorkload(raw)
}

// decodeObject reads a whole object into a new T.
func decodeObject[T any](data []byte) (*T, error) {
	obj := new(T)
	if err := decodeValue(data, obj, nil); err != nil {
		return nil, err
	}
	return obj, nil
}

// decodeValue reads data, found at path in the object (nil: the object
// itself), into the value into points at.
func decodeValue(data []byte, into any, path *field.Path) error {
	if err := json.Unmarshal(data, into, decodeOptions); err != nil {
		return decodeError(err, data, reflect.TypeOf(into), path)
	}
	return nil
}

// decodeError says what is wrong with the JSON, and where, in the terms of
// the object's author: a field path with indexes and JSON type names.
func decodeError(err error, data []byte, root reflect.Type, base *field.Path) error {
	var semantic *json.SemanticError
	if errors.As(err, &semantic) {
		path := fieldPath(root, base, semantic.JSONPointer)
		if semantic.Err != nil && !errors.Is(semantic.Err, json.ErrUnknownName) {
			return fmt.Errorf("%s: %s", path, plainError(semantic.Err))
		}
		value := semantic.JSONValue
		if value == nil && semantic.JSONKind == '0' && semantic.ByteOffset >= 0 && semantic.ByteOffset < int64(len(data)) {
			value = leadingNumber(data[semantic.ByteOffset:])
		}
		return fmt.Errorf("%s: must be %s, got %s", path, jsonTypeOf(semantic.GoType), kindName(semantic.JSONKind, value))
	}
	var syntactic *jsontext.SyntacticError
	if errors.As(err, &syntactic) {
		if errors.Is(syntactic.Err, jsontext.ErrDuplicateName) {
			pointer := syntactic.JSONPointer
			return fmt.Errorf("%s: duplicate key %q", fieldPath(root, base, pointer.Parent()), pointer.LastToken())
		}
		where := ""
		if syntactic.JSONPointer != "" {
			where = " in " + fieldPath(root, base, syntactic.JSONPointer)
		}
		return fmt.Errorf("%s is not valid JSON at byte %d%s: %s", describePath(base), syntactic.ByteOffset, where, plainError(syntactic.Err))
	}
	return fmt.Errorf("%s: %s", describePath(base), plainError(err))
}

// DescribeJSONError says what is wrong with a JSON document, and where, in
// the terms of the engine's own errors (for the offline command's reading of
// its input).
func DescribeJSONError(err error, data []byte) string {
	return decodeError(err, data, nil, nil).Error()
}

// describePath names a path for messages, "the object" for the root.
func describePath(p *field.Path) string {
	if p == nil {
		return "the object"
	}
	return p.String()
}

// plainError is the text of an error of the library without its "json:" or
// "jsontext:" prefix.
func plainError(err error) string {
	s := err.Error()
	for _, prefix := range []string{"jsontext: ", "json: "} {
		s = strings.TrimPrefix(s, prefix)
	}
	return s
}

// fieldPath turns a JSON pointer into a field path (spec.containers[1].env[0]),
// following the Go type the value was decoded into to tell array indexes
// from object keys. Past the part of the object the engine reads (where the
// pointer leads into a skipped value) a token of digits is taken for an
// index.
func fieldPath(root reflect.Type, base *field.Path, pointer jsontext.Pointer) string {
	p := base
	t := root
	tokens := 0
	for token := range pointer.Tokens() {
		// A syntax error deep in a skipped value would otherwise make a
		// message as long as the nesting is deep.
		if tokens++; tokens > maxPathTokens {
			return describePath(p) + "..."
		}
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		var next reflect.Type
		switch {
		case t != nil && t.Kind() == reflect.Struct:
			if f, ok := structField(t, token); ok {
				next = f.Type
			}
			p = childOf(p, token)
		case t != nil && t.Kind() == reflect.Map:
			next = t.Elem()
			p = keyOf(p, token)
		case t != nil && t.Kind() == reflect.Slice && t != reflect.TypeFor[jsontext.Value]():
			next = t.Elem()
			p = indexOf(p, token)
		default:
			if _, err := strconv.Atoi(token); err == nil {
				p = indexOf(p, token)
			} else {
				p = childOf(p, token)
			}
		}
		t = next
	}
	return describePath(p)
}

// maxPathTokens bounds the path in an error message.
const maxPathTokens = 32

// leadingNumber returns the JSON number at the start of data, after white
// space.
func leadingNumber(data []byte) []byte {
	start := 0
	for start < len(data) && strings.IndexByte(" \t\r\n", data[start]) >= 0 {
		start++
	}
	end := start
	for end < len(data) && strings.IndexByte("+-.0123456789eE", data[end]) >= 0 {
		end++
	}
	return data[start:end]
}

func childOf(p *field.Path, name string) *field.Path {
	if p == nil {
		return field.NewPath(name)
	}
	return p.Child(name)
}

func keyOf(p *field.Path, key string) *field.Path {
	if p == nil {
		return field.NewPath("").Key(key)
	}
	return p.Key(key)
}

func indexOf(p *field.Path, token string) *field.Path {
	i, err := strconv.Atoi(token)
	if err != nil {
		return childOf(p, token)
	}
	if p == nil {
		return field.NewPath("").Index(i)
	}
	return p.Index(i)
}

// structField finds the field of t whose JSON name is name.
func structField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonTypeOf names the JSON value that decodes into a Go type.
func jsonTypeOf(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.Map:
		if t.Elem().Kind() == reflect.String {
			return "an object of strings"
		}
		return "an object"
	case reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	}
	return "a number"
}

// kindName names a JSON kind: an integer is told from another number by its
// text, when the library has it.
func kindName(kind jsontext.Kind, value jsontext.Value) string {
	switch kind {
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	case '"':
		return "string"
	case '0':
		if len(value) > 0 && !strings.ContainsAny(string(value), ".eE") {
			return "integer"
		}
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "another type"
}
