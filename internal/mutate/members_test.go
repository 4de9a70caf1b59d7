package mutate

import (
	"encoding/json"
	"strings"
	"testing"
)

// jsonSyntaxCases are the corners of the JSON grammar where a hand-written
// scanner could part ways with encoding/json.
var jsonSyntaxCases = []string{
	`{}`, `[]`, ` {} `, "\t{\n}\r\n", `{"a":1}`, `{"a":1,}`, `{,}`, `{"a" 1}`, `{"a":}`, `{"a":1 "b":2}`, `{"a":1}}`, `{"a":1}x`,
	`{"a":[1,2,]}`, `[1,,2]`, `[1 2]`, `[`, `]`, `{`, `"`, ``, ` `, `{"a":{"b":[]}}`,
	`0`, `-0`, `01`, `-01`, `1.`, `.5`, `1.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-`, `--1`, `+1`, `1.5e3.2`, `0x10`, `1_000`,
	`true`, `false`, `null`, `tru`, `nul`, `truex`, `True`, `NULL`,
	`"plain"`, `"esc \" \\ \/ \b \f \n \r \t"`, `"\u00e9\uD83D\uDE00"`, `"\u00g0"`, `"\u12"`, `"\x"`, `"\'"`, "\"tab\there\"", "\"nl\nhere\"",
	"\"\x7f\"", "\"\xff\xfe\"", `"unterminated`, `"a\"`, `"a\\"`, `{"\u0061":1}`, `{"a\"b":1}`,
	`{"a":1}` + "\x00", "\xef\xbb\xbf{}",
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
}

func TestJSONCursorAgreesWithEncodingJSON(t *testing.T) {
	for _, doc := range jsonSyntaxCases {
		if got, want := validJSON([]byte(doc)), json.Valid([]byte(doc)); got != want {
			t.Errorf("validJSON(%.60q) = %t, json.Valid = %t", doc, got, want)
		}
	}
}

// FuzzJSONCursor holds the cursor to encoding/json's idea of valid JSON: the
// engine must reject exactly what the API server's decoder would.
func FuzzJSONCursor(f *testing.F) {
	for _, doc := range jsonSyntaxCases {
		if len(doc) < 1000 {
			f.Add([]byte(doc))
		}
	}
	f.Add(largeControlPlane(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validJSON(data), json.Valid(data); got != want {
			t.Fatalf("validJSON = %t, json.Valid = %t for %q", got, want, data)
		}
		c := &jsonCursor{data: data}
		if c.peek() == '{' && readObjectDocument(data, nil) != nil && json.Valid(data) {
			t.Fatalf("readObjectDocument rejects a valid object %q", data)
		}
	})
}
