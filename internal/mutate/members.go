package mutate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"unicode/utf8"

	sigsjson "sigs.k8s.io/json"
)

// A control plane is mostly spec.k0sConfig, free-form and often many
// kilobytes, of which the engine reads nothing. encoding/json walks every
// byte of it twice (once to validate the document, once to skip the field
// while decoding), which made the engine cost as much as decoding the whole
// AdmissionReview. jsonCursor reads the document once: it checks the syntax
// exactly as encoding/json does (FuzzJSONCursor holds it to that), skips what
// the engine does not read, and hands the members the engine reads to small
// decoders. Anything unexpected, a syntax error or a value of the wrong type,
// stops it with errUnexpectedJSON, and the caller decodes the document again
// with encoding/json, whose error names the field.

// errUnexpectedJSON stops a cursor.
var errUnexpectedJSON = errors.New("unexpected JSON")

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// jsonCursor reads one JSON document from start to end.
type jsonCursor struct {
	data  []byte
	pos   int
	depth int
}

// memberFunc reads the value of the member key, the cursor at its first
// byte. It may leave the value unread: the cursor then skips it.
type memberFunc func(c *jsonCursor, key []byte) error

// readObjectDocument reads data, which must be a single JSON object, calling
// fn for each of its members.
func readObjectDocument(data []byte, fn memberFunc) error {
	c := &jsonCursor{data: data}
	if err := c.object(fn); err != nil {
		return err
	}
	if c.space(); c.pos != len(c.data) {
		return errUnexpectedJSON
	}
	return nil
}

// validJSON reports whether data is one valid JSON value, as json.Valid does.
func validJSON(data []byte) bool {
	c := &jsonCursor{data: data}
	if err := c.skip(); err != nil {
		return false
	}
	c.space()
	return c.pos == len(c.data)
}

func (c *jsonCursor) space() {
	for c.pos < len(c.data) {
		switch c.data[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, 0 at the end.
func (c *jsonCursor) peek() byte {
	c.space()
	if c.pos < len(c.data) {
		return c.data[c.pos]
	}
	return 0
}

// object reads an object, calling fn (nil: none) for each member.
func (c *jsonCursor) object(fn memberFunc) error {
	if c.peek() != '{' {
		return errUnexpectedJSON
	}
	if c.depth++; c.depth > maxJSONDepth {
		return errUnexpectedJSON
	}
	c.pos++
	if c.peek() == '}' {
		c.pos++
		c.depth--
		return nil
	}
	for {
		if c.peek() != '"' {
			return errUnexpectedJSON
		}
		key, err := c.key()
		if err != nil {
			return err
		}
		if c.peek() != ':' {
			return errUnexpectedJSON
		}
		c.pos++
		c.space()
		start := c.pos
		if fn != nil {
			if err := fn(c, key); err != nil {
				return err
			}
		}
		if done, err := c.afterValue(start, '}'); done || err != nil {
			return err
		}
	}
}

// array skips an array.
func (c *jsonCursor) array() error {
	return c.arrayElements(func(*jsonCursor) error { return nil })
}

// arrayElements reads an array, calling fn for each element with the cursor
// at its first byte; an element fn leaves unread is skipped.
func (c *jsonCursor) arrayElements(fn func(c *jsonCursor) error) error {
	if c.peek() != '[' {
		return errUnexpectedJSON
	}
	if c.depth++; c.depth > maxJSONDepth {
		return errUnexpectedJSON
	}
	c.pos++
	if c.peek() == ']' {
		c.pos++
		c.depth--
		return nil
	}
	for {
		c.space()
		start := c.pos
		if err := fn(c); err != nil {
			return err
		}
		if done, err := c.afterValue(start, ']'); done || err != nil {
			return err
		}
	}
}

// afterValue ends one member or element that started at start: it skips the
// value when the callback left it unread, then reads the separator. It
// reports done at the closing byte of the object or array.
func (c *jsonCursor) afterValue(start int, closing byte) (done bool, err error) {
	if c.pos == start {
		if err := c.skip(); err != nil {
			return false, err
		}
	}
	switch c.peek() {
	case ',':
		c.pos++
		return false, nil
	case closing:
		c.pos++
		c.depth--
		return true, nil
	}
	return false, errUnexpectedJSON
}

// skip reads any value.
func (c *jsonCursor) skip() error {
	switch b := c.peek(); {
	case b == '"':
		_, _, err := c.str()
		return err
	case b == '{':
		return c.object(nil)
	case b == '[':
		return c.array()
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	case b == '-' || b >= '0' && b <= '9':
		return c.number()
	}
	return errUnexpectedJSON
}

func (c *jsonCursor) literal(word string) error {
	if !bytes.HasPrefix(c.data[c.pos:], []byte(word)) {
		return errUnexpectedJSON
	}
	c.pos += len(word)
	return nil
}

// null reads a null, if that is what comes next.
func (c *jsonCursor) null() bool {
	if c.peek() == 'n' && c.literal("null") == nil {
		return true
	}
	return false
}

// number reads a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (c *jsonCursor) number() error {
	d, i := c.data, c.pos
	digits := func() bool {
		start := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case !digits():
		return errUnexpectedJSON
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			return errUnexpectedJSON
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			return errUnexpectedJSON
		}
	}
	c.pos = i
	return nil
}

// str reads a string and returns its raw bytes, quotes included, and whether
// it needs unescaping: escapes, or bytes that are not UTF-8, which
// encoding/json replaces.
func (c *jsonCursor) str() (raw []byte, plain bool, err error) {
	d := c.data
	start := c.pos
	escaped := false
	for i := start + 1; i < len(d); {
		switch b := d[i]; {
		case b == '"':
			c.pos = i + 1
			raw = d[start:c.pos]
			return raw, !escaped && utf8.Valid(raw), nil
		case b == '\\':
			escaped = true
			if i+1 >= len(d) {
				return nil, false, errUnexpectedJSON
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+5 >= len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					return nil, false, errUnexpectedJSON
				}
				i += 6
			default:
				return nil, false, errUnexpectedJSON
			}
		case b < 0x20:
			return nil, false, errUnexpectedJSON
		default:
			i++
		}
	}
	return nil, false, errUnexpectedJSON
}

func isHex(b byte) bool { return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' }

// key reads a member name, unescaped.
func (c *jsonCursor) key() ([]byte, error) {
	raw, plain, err := c.str()
	if err != nil {
		return nil, err
	}
	if plain {
		return raw[1 : len(raw)-1], nil
	}
	var key string
	if err := json.Unmarshal(raw, &key); err != nil {
		return nil, errUnexpectedJSON
	}
	return []byte(key), nil
}

// stringValue reads a string (null: ""). Of duplicate members the last one
// wins, so the value is set, not merged.
func (c *jsonCursor) stringValue(into *string) error {
	*into = ""
	if c.null() {
		return nil
	}
	if c.peek() != '"' {
		return errUnexpectedJSON
	}
	raw, plain, err := c.str()
	if err != nil {
		return err
	}
	if plain {
		*into = string(raw[1 : len(raw)-1])
		return nil
	}
	return sigsjson.UnmarshalCaseSensitivePreserveInts(raw, into)
}

// stringMap reads an object of strings (labels, annotations); null is a nil
// map, and a null value an empty string, as encoding/json has them.
func (c *jsonCursor) stringMap(into *map[string]string) error {
	*into = nil
	if c.null() {
		return nil
	}
	m := make(map[string]string)
	err := c.object(func(c *jsonCursor, key []byte) error {
		var s string
		if err := c.stringValue(&s); err != nil {
			return err
		}
		m[string(key)] = s
		return nil
	})
	if err != nil {
		return err
	}
	*into = m
	return nil
}

// numberValue reads a number (null: nil).
func (c *jsonCursor) numberValue(into **float64) error {
	*into = nil
	if c.null() {
		return nil
	}
	if b := c.peek(); b != '-' && (b < '0' || b > '9') {
		return errUnexpectedJSON
	}
	start := c.pos
	if err := c.number(); err != nil {
		return err
	}
	f, err := strconv.ParseFloat(string(c.data[start:c.pos]), 64)
	if err != nil { // out of the range of a float64: encoding/json rejects it too
		return errUnexpectedJSON
	}
	*into = &f
	return nil
}

// optionalObject reads an object member into a new T through its member
// function; null leaves *into nil.
func optionalObject[T any, PT interface {
	*T
	member(c *jsonCursor, key []byte) error
}](c *jsonCursor, into **T) error {
	*into = nil
	if c.null() {
		return nil
	}
	v := PT(new(T))
	*into = (*T)(v)
	return c.object(v.member)
}

// decodeObject reads an object of type T. The fast path reads only the
// members T asks for; bad input, or a value of the wrong type, gets the full
// case-sensitive decoder, whose error names the field.
func decodeObject[T any, PT interface {
	*T
	member(c *jsonCursor, key []byte) error
}](data []byte) (*T, error) {
	obj := PT(new(T))
	if err := readObjectDocument(data, obj.member); err == nil {
		return obj, nil
	}
	obj = PT(new(T))
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(data, obj); err != nil {
		return nil, decodeError(err, reflect.TypeFor[T]())
	}
	return obj, nil
}

// decodeError names the field of an object of type root that could not be
// read.
func decodeError(err error, root reflect.Type) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		name := typeErr.Field
		if name == "" {
			return fmt.Errorf("the object: expected %s, got %s", describeGoType(typeErr.Type), typeErr.Value)
		}
		// The decoder names a map, not the entry in it, when a value of the
		// map has the wrong type.
		if t := fieldType(root, name); t != nil && t.Kind() == reflect.Map && t != typeErr.Type {
			return fmt.Errorf("%s: expected %s, got a map with a %s value", name, describeGoType(t), typeErr.Value)
		}
		return fmt.Errorf("%s: expected %s, got %s", name, describeGoType(typeErr.Type), typeErr.Value)
	}
	if ok, offset := sigsjson.SyntaxErrorOffset(err); ok {
		return fmt.Errorf("the object is not valid JSON: %w (at byte %d)", err, offset)
	}
	return fmt.Errorf("decoding the object: %w", err)
}
