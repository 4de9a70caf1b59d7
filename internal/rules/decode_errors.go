package rules

// The strict decoder (sigs.k8s.io/json) finds every problem of a policy
// document but places them loosely: a value of the wrong type by its struct
// fields alone ("ingressClasses.annotations": no map key, no list index) and
// a byte offset; an unknown or duplicate field by one dotted string, which is
// ambiguous when a map key holds dots ("controllers.example.com/x.annotation").
// This file turns those places into exact field paths by walking the
// document's tokens with encoding/json's tokenizer. It runs only when there
// is an error to explain.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// typeError turns a value of the wrong type into a field error in the user's
// terms, and returns where the value is in data (start < 0 when it cannot
// be found, which would be a decoder defect).
//
// sigs.k8s.io/json names such a field by its struct fields only, without map
// keys or list indexes ("ingressClasses.annotations"), and by Go type
// ("map[string]rules.PassthroughRule"); its byte offset is exact, so the
// value is found again by walking the document's tokens.
func typeError(data []byte, te *json.UnmarshalTypeError) (fe *field.Error, start, end int64) {
	var found *jsonNode
	walkJSON(data, func(n *jsonNode) bool {
		if n.tokenEnd == te.Offset {
			found = n
			return true
		}
		return false
	})
	if found == nil {
		return field.InternalError(nil, te), -1, -1
	}
	path := orDocument(found.path)
	if n, isInt := found.token.(json.Number); isInt && isIntegerKind(te.Type) && !strings.ContainsAny(string(n), ".eE") {
		bits := te.Type.Bits()
		return field.Invalid(path, n, fmt.Sprintf("must be an integer from %d to %d", int64(-1)<<(bits-1), int64(1)<<(bits-1)-1)), found.start, found.end
	}
	return field.TypeInvalid(path, field.OmitValueType{},
		fmt.Sprintf("must be %s, not %s", jsonKind(te.Type), describeToken(found.token))), found.start, found.end
}

func isIntegerKind(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return true
	}
	return false
}

// jsonKind names what a Go type is written as in YAML or JSON.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return `a string (quote values such as "true" or "443")`
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Map:
		return "a mapping"
	case reflect.Struct:
		return "a mapping of fields"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "another kind of value"
}

// strictFieldErrors turns the unknown and duplicate fields reported by
// sigs.k8s.io/json into field errors. The library writes a path as one
// string ("controllers.example.com/x.annotation"), which is ambiguous when a
// map key holds dots; the paths are matched against the document's own to
// recover where each key starts and ends.
func strictFieldErrors(data []byte, strictErrs []error) field.ErrorList {
	type fieldPather interface{ FieldPath() string }
	wanted := make(map[string]*jsonNode, len(strictErrs))
	for _, se := range strictErrs {
		var fp fieldPather
		if errors.As(se, &fp) {
			wanted[fp.FieldPath()] = nil
		}
	}
	remaining := len(wanted)
	walkJSON(data, func(n *jsonNode) bool {
		if seen, ok := wanted[n.libPath]; ok && seen == nil {
			wanted[n.libPath] = n
			remaining--
		}
		return remaining == 0
	})

	var errs field.ErrorList
	for _, se := range strictErrs {
		var fp fieldPather
		if !errors.As(se, &fp) {
			errs = append(errs, field.InternalError(nil, se))
			continue
		}
		n := wanted[fp.FieldPath()]
		path := field.NewPath(fp.FieldPath())
		if n != nil {
			path = n.path
		}
		switch {
		case strings.HasPrefix(se.Error(), "duplicate field"):
			errs = append(errs, field.Duplicate(path, field.OmitValueType{}))
		case n != nil && n.unknownIn != nil:
			errs = append(errs, unknownField(path, n.key, jsonFields(n.unknownIn)))
		default:
			errs = append(errs, field.Forbidden(path, "unknown field (the policy is read strictly)"))
		}
	}
	return errs
}

// jsonNode is one value of a JSON document, as walkJSON finds it.
type jsonNode struct {
	path    *field.Path // in the user's terms: struct fields, [key] of maps, [index] of lists
	libPath string      // as sigs.k8s.io/json writes it: "a.b[0].c"
	key     string      // the member name, for a member of an object
	token   json.Token  // the value's first token: a scalar, or '{' or '['
	// start and end delimit the whole value; tokenEnd is the end of its
	// first token, where the decoder reports a type error.
	start, end, tokenEnd int64
	// unknownIn is the struct type that has no field named key.
	unknownIn reflect.Type
}

// walkJSON calls visit for every value of a JSON object that decodes into a
// Document, children before their parent, until visit returns true. It is
// only used to explain errors, on a document that sigs.k8s.io/json has
// parsed already, so a syntax error simply ends the walk.
func walkJSON(data []byte, visit func(*jsonNode) bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := &jsonWalker{data: data, dec: dec, visit: visit}
	_ = w.value(reflect.TypeFor[Document](), nil, "", "") // a syntax error ends the walk; see above
}

type jsonWalker struct {
	data  []byte
	dec   *json.Decoder
	visit func(*jsonNode) bool
}

var errStopWalk = errors.New("stop")

// value reads one value of Go type t (nil under an unknown field).
func (w *jsonWalker) value(t reflect.Type, path *field.Path, libPath, key string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	start := w.dec.InputOffset()
	for start < int64(len(w.data)) && strings.IndexByte(" \t\r\n:,", w.data[start]) >= 0 {
		start++
	}
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	n := &jsonNode{path: path, libPath: libPath, key: key, token: tok, start: start, tokenEnd: w.dec.InputOffset()}
	switch tok {
	case json.Delim('{'):
		for w.dec.More() {
			keyTok, err := w.dec.Token()
			if err != nil {
				return err
			}
			k, _ := keyTok.(string)
			childType, childPath, unknownIn := member(t, path, k)
			childLib := k
			if libPath != "" {
				childLib = libPath + "." + k
			}
			if unknownIn != nil {
				// Report the unknown member itself; its content is skipped.
				memberStart := w.dec.InputOffset()
				var raw json.RawMessage
				if err := w.dec.Decode(&raw); err != nil {
					return err
				}
				if w.visit(&jsonNode{path: childPath, libPath: childLib, key: k, start: memberStart, end: w.dec.InputOffset(), unknownIn: unknownIn}) {
					return errStopWalk
				}
				continue
			}
			if err := w.value(childType, childPath, childLib, k); err != nil {
				return err
			}
		}
		if _, err := w.dec.Token(); err != nil {
			return err
		}
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(elem, orDocument(path).Index(i), libPath+"["+strconv.Itoa(i)+"]", ""); err != nil {
				return err
			}
		}
		if _, err := w.dec.Token(); err != nil {
			return err
		}
	}
	n.end = w.dec.InputOffset()
	if w.visit(n) {
		return errStopWalk
	}
	return nil
}

// member returns the Go type and path of member key of an object of Go
// type t, or the struct type that has no such field.
func member(t reflect.Type, path *field.Path, key string) (reflect.Type, *field.Path, reflect.Type) {
	child := func() *field.Path {
		if path == nil {
			return field.NewPath(key)
		}
		return path.Child(key)
	}
	switch {
	case t == nil:
		return nil, child(), nil
	case t.Kind() == reflect.Struct:
		if ft, ok := jsonFields(t)[key]; ok {
			return ft, child(), nil
		}
		return nil, child(), t
	case t.Kind() == reflect.Map:
		return t.Elem(), orDocument(path).Key(key), nil
	}
	return nil, child(), nil
}
