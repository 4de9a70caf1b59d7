package rules

// Limits on what a policy may cost. A policy comes from a ConfigMap that any
// holder of its RBAC can write, and from /validate-policy, which compiles
// whatever the API server sends; without these, 28 KB of bounded
// repetitions in ccm.match took 1.9 GB of allocations and 4 s to compile (see
// TestLoadRejectsHostilePatternsCheaply and docs/limits.md).
//
// The values leave a wide margin over the embedded default policy: its
// largest pattern compiles to 93 instructions, the longest is 125 bytes, no
// list holds more than 9 patterns, and all of them together compile to
// 1,313 instructions.
const (
	// MaxPolicyBytes is the largest policy document, checked before it is
	// parsed. A ConfigMap cannot hold more either.
	MaxPolicyBytes = 1 << 20
	// MaxRules is the most entries each of ingressClasses, controllers and
	// classGuesses may have, after merging over the defaults.
	MaxRules = 10000
	// MaxPatternsPerList is the most patterns each list of ccm.match and
	// ccm.veto may have, the built-in ones included.
	MaxPatternsPerList = 100
	// MaxPatternLength is the longest pattern, in bytes.
	MaxPatternLength = 1024
	// MaxPatternInstructions is the largest compiled program of one
	// pattern, in regexp/syntax instructions: what memory and matching
	// time grow with.
	MaxPatternInstructions = 2000
	// MaxTotalInstructions bounds the compiled programs of all the CCM
	// patterns of a policy together.
	MaxTotalInstructions = 20000
	// maxErrorLines is the most problems a LoadError prints; the policy size
	// bounds how many there are, this how long the message (an admission
	// response, an Event) gets.
	maxErrorLines = 50
)
