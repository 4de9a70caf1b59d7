package rules

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkLoadDefaultPolicy loads the embedded default policy as a user
// policy: decoding, validation, merging over the defaults and compiling every
// pattern, which is what a ConfigMap change or /validate-policy costs.
func BenchmarkLoadDefaultPolicy(b *testing.B) {
	data := DefaultPolicyYAML()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Load("policy.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadPolicyAtTheRuleLimit loads a policy with MaxRules
// ingressClasses rules: what the largest policy of rules costs to load.
func BenchmarkLoadPolicyAtTheRuleLimit(b *testing.B) {
	var doc strings.Builder
	doc.WriteString(header + "ingressClasses:\n")
	for i := range MaxRules {
		fmt.Fprintf(&doc, "  c%d: {annotations: {example.com/p%d: \"true\"}}\n", i, i)
	}
	data := []byte(doc.String())
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Load("policy.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
