package rules

import "testing"

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
