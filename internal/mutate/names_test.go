package mutate

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/version"
)

var nameCheckSeeds = []string{
	"", "a", "api.example.com", "API.example.com", "-a", "a-", "a..b", ".a", "a.", "a_b", "a-b.c-d", "1.2.3.4",
	"xn--bcher-kva.example", "a.b.c.d.e", "\n", "a\n", "é.example.com",
	"v1.34.1+k0s.0", "1.34.1", "v1.34", "1", "v1", "01.2", "0.1", "1.02", "v1.33.9+k0s.0", " v1.35.0", "\tv1.35.0",
	"1.2.", "1..2", "1.2.x", "1.2\n", "1.2x\n", "\n1.2", "vv1.2", "v", "v.1", "1.18446744073709551616",
	"18446744073709551615.1", "1.34.1.0", "1.34.1.1", "1.34.0.9", "1.34", "1.35", "2.0",
}

// TestNameChecksAgree and FuzzNameChecksAgree hold isDNS1123Subdomain,
// parseGenericVersion and versionLess to the apimachinery functions they
// stand in for.
func TestNameChecksAgree(t *testing.T) {
	for _, s := range nameCheckSeeds {
		checkNameChecksAgree(t, s)
	}
	// The long-host boundary.
	long := ""
	for len(long) < 260 {
		long += "abcdefghi."
	}
	for _, s := range []string{long[:253], long[:252] + "a", long + "abcd", long[:249] + "aaaa"} {
		checkNameChecksAgree(t, s)
	}
}

func FuzzNameChecksAgree(f *testing.F) {
	for _, s := range nameCheckSeeds {
		f.Add(s)
	}
	f.Fuzz(checkNameChecksAgree)
}

func checkNameChecksAgree(t *testing.T, s string) {
	if got, want := isDNS1123Subdomain(s), len(validation.IsDNS1123Subdomain(s)) == 0; got != want {
		t.Errorf("isDNS1123Subdomain(%q) = %v, validation.IsDNS1123Subdomain says %v", s, got, want)
	}
	components, ok := parseGenericVersion(s)
	parsed, err := version.ParseGeneric(s)
	if ok != (err == nil) {
		t.Fatalf("parseGenericVersion(%q) ok = %v, version.ParseGeneric: %v", s, ok, err)
	}
	if !ok {
		return
	}
	if got, want := versionLess(components, minIngressComponents), parsed.LessThan(minIngressVersion); got != want {
		t.Errorf("versionLess(%q, 1.34.1) = %v, version.LessThan says %v", s, got, want)
	}
	if got := len(components); got != len(parsed.Components()) {
		t.Errorf("%q: %d components, version.ParseGeneric has %d", s, got, len(parsed.Components()))
	}
	for i, c := range parsed.Components() {
		if components[i] != c {
			t.Errorf("%q: component %d is %d, version.ParseGeneric says %d", s, i, components[i], c)
		}
	}
}
