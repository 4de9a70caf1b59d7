package rules

import (
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// BuiltinSource is what RuleSource answers for a rule of the embedded default
// policy.
const BuiltinSource = "built-in"

//go:embed default-policy.yaml
var defaultPolicyYAML []byte

// DefaultPolicyYAML returns the embedded default policy as written, for
// `policy show` and documentation.
func DefaultPolicyYAML() []byte { return bytes.Clone(defaultPolicyYAML) }

// defaultDocument is the embedded default policy, decoded and validated once.
// A broken embedded policy is a build defect that the tests catch, so it
// panics rather than letting every caller handle an impossible error.
var defaultDocument = sync.OnceValue(func() *Document {
	doc, errs, err := decodeDocument(defaultPolicyYAML)
	if err == nil {
		errs = append(errs, validateDocument(doc)...)
	}
	if err != nil || len(errs) > 0 {
		panic((&LoadError{Source: BuiltinSource, Errs: errs, Err: err}).Error())
	}
	return doc
})

// Default returns the embedded default policy. It is loaded once and shared:
// a Policy is immutable.
func Default() *Policy { return defaultPolicy() }

var defaultPolicy = sync.OnceValue(func() *Policy {
	p, errs := compile(defaultDocument(), nil, "")
	if len(errs) > 0 {
		panic((&LoadError{Source: BuiltinSource, Errs: errs}).Error())
	}
	return p
})

// Load parses a policy document (YAML or JSON) strictly, validates it, merges
// it over the embedded defaults unless it sets replaceDefaults: true, and
// compiles the result. source names the document in errors and in
// RuleSource, for example "policy.yaml" or a file path.
//
// A document that does not decode (unknown, duplicate or wrong-typed fields)
// reports every such field; one that decodes reports every problem that
// validation and compiling find. Each problem comes with its field path; the
// error is a *LoadError.
func Load(source string, data []byte) (*Policy, error) {
	if len(data) > MaxPolicyBytes {
		return nil, &LoadError{Source: source, Err: tooBig(int64(len(data)))}
	}
	doc, errs, err := decodeDocument(data)
	if err != nil {
		return nil, &LoadError{Source: source, Err: err}
	}
	if len(errs) > 0 {
		// Fields that did not decode are unset in doc: validating it would
		// only add confusing errors about the same fields.
		return nil, &LoadError{Source: source, Errs: errs}
	}
	errs = validateDocument(doc)
	merged := doc
	if !doc.ReplaceDefaults {
		merged = mergeDocuments(defaultDocument(), doc)
	}
	p, compileErrs := compile(merged, doc, source)
	errs = append(errs, compileErrs...)
	if len(errs) > 0 {
		return nil, &LoadError{Source: source, Errs: errs}
	}
	return p, nil
}

// LoadReader reads a policy document from r and loads it as Load does. It
// reads at most MaxPolicyBytes and one byte more, so that a document over
// the limit is rejected without being read whole.
func LoadReader(source string, r io.Reader) (*Policy, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if len(data) > MaxPolicyBytes {
		return nil, &LoadError{Source: source, Err: tooBig(-1)}
	}
	return Load(source, data)
}

func tooBig(size int64) error {
	if size < 0 {
		return fmt.Errorf("the policy document is larger than the limit of %d bytes", MaxPolicyBytes)
	}
	return fmt.Errorf("the policy document is %d bytes, more than the limit of %d bytes", size, MaxPolicyBytes)
}

// LoadError is a policy document that did not load. Error prints one line per
// problem, each starting with the source and the field path:
//
//	policy.yaml: ingressClasses.nginx.annotations: Invalid value: "nginx.ingress.kubernetes.io/ssl passthrough": ...
type LoadError struct {
	// Source names the document, as given to Load.
	Source string
	// Errs are the problems found, each with its field path. Unknown and
	// duplicate fields are reported here too.
	Errs field.ErrorList
	// Err is a problem that stopped decoding before any field could be
	// checked: the document is empty, is not YAML or JSON, or is not a
	// mapping.
	Err error
}

func (e *LoadError) Error() string {
	var b strings.Builder
	line := func(text string) {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Source)
		b.WriteString(": ")
		b.WriteString(text)
	}
	if e.Err != nil {
		// The YAML parser reports several problems in one multi-line error.
		for _, l := range strings.Split(e.Err.Error(), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				line(l)
			}
		}
	}
	for i, fe := range e.Errs {
		if i == maxErrorLines {
			line(fmt.Sprintf("... and %d more problems", len(e.Errs)-i))
			break
		}
		line(fe.Error())
	}
	if b.Len() == 0 {
		line("the policy did not load")
	}
	return b.String()
}

// Unwrap returns the decoding error, if any.
func (e *LoadError) Unwrap() error { return e.Err }
