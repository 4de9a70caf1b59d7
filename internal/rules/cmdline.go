package rules

import (
	"slices"
	"strings"
)

// cmdToken is one word of a container's command line, ready for matching.
type cmdToken struct {
	text  string // flag as --name[=value], or the base name of anything else
	field string // "command" or "args"
	flag  cmdFlag
	// isFlag: the word starts with "-" (and is not after "--").
	isFlag bool
}

// cmdFlag is a flag of a command line, whichever form it was written in.
type cmdFlag struct {
	name     string // without dashes: "cloud-provider"
	value    string
	hasValue bool
}

// commandTokens appends the tokens of command followed by args (the
// container runtime concatenates them) to buf.
func commandTokens(buf []cmdToken, command, args []string) []cmdToken {
	var words [2][]string // command and args, split into words
	words[0], words[1] = command, args
	for i := range words {
		if slices.ContainsFunc(words[i], hasSpace) {
			var split []string
			for _, w := range words[i] {
				split = append(split, shellWords(w)...)
			}
			words[i] = split
		}
	}
	fields := [2]string{"command", "args"}
	afterDashDash := false
	for i := range words {
		for j, w := range words[i] {
			if w == "" {
				continue
			}
			if w == "--" {
				afterDashDash = true
				continue
			}
			if afterDashDash || w[0] != '-' || w == "-" {
				buf = append(buf, cmdToken{text: baseName(w), field: fields[i]})
				continue
			}
			f := parseFlag(w, nextWord(words, i, j))
			buf = append(buf, cmdToken{text: f.String(), field: fields[i], flag: f, isFlag: true})
		}
	}
	return buf
}

// parseFlag reads a flag in each of the forms Go's flag and pflag packages
// and Kubernetes components accept: --name=value, -name=value, and the
// two-word --name value / -name value, where the next word is the value
// unless it is a flag itself. A flag with neither has no value.
func parseFlag(w, next string) cmdFlag {
	name := strings.TrimPrefix(strings.TrimPrefix(w, "-"), "-")
	if name, value, ok := strings.Cut(name, "="); ok {
		return cmdFlag{name: name, value: value, hasValue: true}
	}
	if next != "" && next[0] != '-' {
		return cmdFlag{name: name, value: next, hasValue: true}
	}
	return cmdFlag{name: name}
}

// String writes the flag as the flags patterns see it: --name or
// --name=value, whatever form it was given in.
func (f *cmdFlag) String() string {
	if !f.hasValue {
		return "--" + f.name
	}
	return "--" + f.name + "=" + f.value
}

// nextWord is the word after words[i][j], crossing from command to args.
func nextWord(words [2][]string, i, j int) string {
	if j+1 < len(words[i]) {
		return words[i][j+1]
	}
	if i == 0 && len(words[1]) > 0 {
		return words[1][0]
	}
	return ""
}

func hasSpace(s string) bool { return strings.ContainsAny(s, " \t\n") }

// shellWords splits a shell script into rough words: enough to find the
// binary and flags of `sh -c "exec /bin/x-cloud-controller-manager --v=2"`.
func shellWords(s string) []string {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = strings.Trim(w, `"';&|()`)
	}
	return words
}

// baseName is the last element of a path, "/" or "\" separated, without a
// Windows ".exe" suffix; "./x" is "x".
func baseName(w string) string {
	if i := strings.LastIndexAny(w, `/\`); i >= 0 {
		w = w[i+1:]
	}
	if len(w) > 4 && strings.EqualFold(w[len(w)-4:], ".exe") {
		w = w[:len(w)-4]
	}
	return w
}
