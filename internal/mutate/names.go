package mutate

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// The two checks below decide exactly what validation.IsDNS1123Subdomain
// and version.ParseGeneric decide (FuzzNameChecksAgree holds them to those
// functions on every input), without their regular expressions. They run on
// every control-plane admission, and in kube-apiserver's per-call measure,
// where each call arrives after the API server and etcd have had the same
// cores, the two host checks and the version parse through regexp took
// about 50 µs: skipping checkIngress altogether moved our webhook from
// 1.20-1.23x to 1.15-1.17x the same-response reference
// (TestDryRunLatency, docs/performance.md). Back to back the regexps cost
// 3 µs of 30 (BenchmarkControlPlaneEngine); cold, their code and state are
// what the call waits for.

// isDNS1123Subdomain reports whether validation.IsDNS1123Subdomain(s)
// finds nothing wrong: at most 253 characters; labels separated by dots,
// each of lowercase letters, digits and '-', starting and ending with a
// letter or digit.
func isDNS1123Subdomain(s string) bool {
	if s == "" || len(s) > validation.DNS1123SubdomainMaxLength {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || !isLowerAlnum(label[0]) || !isLowerAlnum(label[len(label)-1]) {
			return false
		}
		for i := 1; i < len(label)-1; i++ {
			if c := label[i]; !isLowerAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// parseGenericVersion returns the numeric components of s as
// version.ParseGeneric reads them (`^\s*v?([0-9]+(?:\.[0-9]+)*)(.*)*$`, at
// least two components, no leading zero in the first, each a uint), and
// false where ParseGeneric returns an error.
func parseGenericVersion(s string) ([]uint, bool) {
	s = strings.TrimLeft(s, "\t\n\f\r ") // RE2's \s
	s = strings.TrimPrefix(s, "v")
	end := 0
	for {
		digits := end
		for digits < len(s) && '0' <= s[digits] && s[digits] <= '9' {
			digits++
		}
		if digits == end { // a component needs a digit
			if end == 0 {
				return nil, false
			}
			end-- // the dot before belongs to the rest
			break
		}
		end = digits
		if end == len(s) || s[end] != '.' {
			break
		}
		end++
	}
	if strings.Contains(s[end:], "\n") { // the rest is `.*`, which stops at a newline
		return nil, false
	}
	parts := strings.Split(s[:end], ".")
	if len(parts) < 2 || (strings.HasPrefix(parts[0], "0") && parts[0] != "0") {
		return nil, false
	}
	components := make([]uint, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 0)
		if err != nil {
			return nil, false
		}
		components[i] = uint(n)
	}
	return components, true
}

// versionLess reports whether a is lower than b, as version.Version's
// LessThan compares two generic versions: component by component, a missing
// component counting as zero.
func versionLess(a, b []uint) bool {
	for i := range max(len(a), len(b)) {
		var x, y uint
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return x < y
		}
	}
	return false
}
