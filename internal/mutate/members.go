package mutate

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	sigsjson "sigs.k8s.io/json"
)

// A control plane is mostly spec.k0sConfig, free-form and often many
// kilobytes, of which the engine reads nothing. Decoding the whole object
// into a struct still walks every byte of it twice (once to validate, once to
// skip it while decoding), which made the engine cost as much as decoding the
// AdmissionReview itself. eachMember splits an object into its members with a
// plain byte scan instead, so that only the members the engine reads go
// through the decoder. It expects valid JSON: the caller checks that first
// (one pass), and falls back to a full decode when anything is unexpected.

// errUnexpectedJSON stops the member scan; the caller then decodes the
// object fully, for a precise error or the odd case the scan does not handle.
var errUnexpectedJSON = errors.New("unexpected JSON")

// eachMember calls fn with the key (unescaped) and raw value of each member
// of the JSON object in data, in order. data must be valid JSON. The key is
// only valid during the call.
func eachMember(data []byte, fn func(key, value []byte) error) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return errUnexpectedJSON
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return nil
	}
	for i < len(data) {
		if data[i] != '"' {
			return errUnexpectedJSON
		}
		keyEnd := skipString(data, i)
		if keyEnd < 0 {
			return errUnexpectedJSON
		}
		key := data[i+1 : keyEnd-1]
		// encoding/json unescapes keys and replaces invalid UTF-8: so must
		// this, or a key would not compare equal to the one JSON patch sees.
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
			var unescaped string
			if err := json.Unmarshal(data[i:keyEnd], &unescaped); err != nil {
				return errUnexpectedJSON
			}
			key = []byte(unescaped)
		}
		i = skipSpace(data, keyEnd)
		if i >= len(data) || data[i] != ':' {
			return errUnexpectedJSON
		}
		i = skipSpace(data, i+1)
		valueEnd := skipValue(data, i)
		if valueEnd < 0 {
			return errUnexpectedJSON
		}
		if err := fn(key, data[i:valueEnd]); err != nil {
			return err
		}
		i = skipSpace(data, valueEnd)
		if i >= len(data) {
			break
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return nil
		default:
			return errUnexpectedJSON
		}
	}
	return errUnexpectedJSON
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string that starts at data[i] (a
// quote), or -1 when it does not end. It jumps from quote to quote.
func skipString(data []byte, i int) int {
	for j := i + 1; j < len(data); {
		k := bytes.IndexByte(data[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		backslashes := 0
		for p := q - 1; p > i && data[p] == '\\'; p-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
	return -1
}

// skipValue returns the index after the value that starts at data[i], or -1.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return -1
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				end := skipString(data, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default: // number, true, false, null
		j := i
		for j < len(data) {
			switch data[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j
			}
			j++
		}
		return j
	}
}

// decodeString decodes a JSON string member the engine reads. A plain string
// (no escapes, valid UTF-8), which is nearly every one, is taken as it is.
func decodeString(value []byte, into *string) error {
	if n := len(value); n >= 2 && value[0] == '"' && value[n-1] == '"' &&
		bytes.IndexByte(value, '\\') < 0 && utf8.Valid(value) {
		*into = string(value[1 : n-1])
		return nil
	}
	*into = ""
	return sigsjson.UnmarshalCaseSensitivePreserveInts(value, into)
}

// decodeStringMap decodes a JSON object of strings (labels, annotations). A
// null value is an empty string, as encoding/json has it; any other value
// stops the scan, and the full decoder reports it.
func decodeStringMap(value []byte, into *map[string]string) error {
	*into = nil
	if isNull(value) {
		return nil
	}
	m := make(map[string]string)
	err := eachMember(value, func(key, value []byte) error {
		var s string
		if !isNull(value) {
			if value[0] != '"' {
				return errUnexpectedJSON
			}
			if err := decodeString(value, &s); err != nil {
				return err
			}
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

// decodeNumber decodes a JSON number member; null leaves nil.
func decodeNumber(value []byte, into **float64) error {
	*into = nil
	if isNull(value) {
		return nil
	}
	f, err := strconv.ParseFloat(string(value), 64)
	if err != nil || (value[0] != '-' && (value[0] < '0' || value[0] > '9')) {
		return errUnexpectedJSON
	}
	*into = &f
	return nil
}

func isNull(value []byte) bool { return string(value) == "null" }
