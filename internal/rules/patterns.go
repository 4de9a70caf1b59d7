package rules

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
)

// patterns is a list of regular expressions; a string matches when any does.
type patterns []pattern

func (p patterns) match(s string) bool {
	for i := range p {
		if p[i].match(s) {
			return true
		}
	}
	return false
}

// pattern is a compiled regular expression with a cheap necessary condition:
// every match contains one of literals, so a string that contains none of
// them is rejected without running the regexp. Unanchored patterns such as
// "(?:^|/)cloud-pv-vsphere/cloud-provider-vsphere$" cost microseconds per
// string in Go's regexp; strings.Contains costs nanoseconds.
type pattern struct {
	re       *regexp.Regexp
	literals []string // nil: no prefilter
}

func (p *pattern) match(s string) bool {
	if p.literals != nil && !slices.ContainsFunc(p.literals, func(l string) bool { return strings.Contains(s, l) }) {
		return false
	}
	return p.re.MatchString(s)
}

// compilePattern compiles expr and derives its prefilter. It refuses a
// pattern over MaxPatternLength or whose program would exceed
// MaxPatternInstructions, before regexp compiles it: Go's regexp accepts
// programs of millions of instructions, and a few hundred bytes of bounded
// repetitions ("a{1,1000}a{1,1000}...") cost tens of megabytes each.
// instructions is the size of the compiled program.
func compilePattern(expr string) (p pattern, instructions int, err error) {
	if len(expr) > MaxPatternLength {
		return pattern{}, 0, fmt.Errorf("must be at most %d bytes long, not %d", MaxPatternLength, len(expr))
	}
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return pattern{}, 0, err
	}
	// Simplify expands counted repetitions, so it costs what the program
	// will: check the estimate first, then the real program.
	if estimate := programSizeEstimate(tree); estimate > 2*MaxPatternInstructions {
		return pattern{}, 0, tooLarge(fmt.Sprintf("about %d", estimate))
	}
	simple := tree.Simplify()
	prog, err := syntax.Compile(simple)
	if err != nil {
		return pattern{}, 0, err
	}
	if len(prog.Inst) > MaxPatternInstructions {
		return pattern{}, 0, tooLarge(strconv.Itoa(len(prog.Inst)))
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return pattern{}, 0, err
	}
	return pattern{re: re, literals: requiredLiterals(simple)}, len(prog.Inst), nil
}

func tooLarge(size string) error {
	return fmt.Errorf("compiles to %s instructions, more than the limit of %d: write counted repetitions such as {1,1000} as + or *", size, MaxPatternInstructions)
}

// programSizeEstimate is an upper bound of the instructions that the
// program of re needs, computed without expanding repetitions. Parse
// already refuses repetition counts over 1000 and nesting that multiplies
// beyond that, so the products cannot overflow.
func programSizeEstimate(re *syntax.Regexp) int64 {
	var subs int64
	for _, sub := range re.Sub {
		subs += programSizeEstimate(sub)
	}
	switch re.Op {
	case syntax.OpLiteral:
		return int64(len(re.Rune)) + 1
	case syntax.OpRepeat:
		n := int64(max(re.Min, re.Max, 1))
		return (subs+2)*n + 1
	}
	return subs + int64(len(re.Sub)) + 2
}

// requiredLiterals returns strings one of which occurs in every match of re,
// or nil when it cannot tell.
func requiredLiterals(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 || len(re.Rune) == 0 {
			return nil
		}
		return []string{string(re.Rune)}
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			lits := requiredLiterals(sub)
			if lits == nil {
				return nil
			}
			out = append(out, lits...)
		}
		return out
	case syntax.OpConcat:
		// Every child's requirement holds; adjacent literals make a longer
		// one. Keep the most selective: the longest shortest literal.
		var best []string
		var runText strings.Builder
		flush := func() {
			if runText.Len() > 0 {
				best = moreSelective(best, []string{runText.String()})
				runText.Reset()
			}
		}
		for _, sub := range re.Sub {
			if sub.Op == syntax.OpLiteral && sub.Flags&syntax.FoldCase == 0 {
				runText.WriteString(string(sub.Rune))
				continue
			}
			flush()
			best = moreSelective(best, requiredLiterals(sub))
		}
		flush()
		return best
	}
	return nil
}

func moreSelective(a, b []string) []string {
	shortest := func(l []string) int {
		n := -1
		for _, s := range l {
			if n < 0 || len(s) < n {
				n = len(s)
			}
		}
		return n
	}
	if b == nil || (a != nil && shortest(a) >= shortest(b)) {
		return a
	}
	return b
}
