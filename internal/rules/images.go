package rules

import "strings"

// imageName returns an image reference without tag and digest (name), and
// name without its registry host (path). The first component is a registry
// host when it contains "." or ":" or is "localhost", as for docker.
func imageName(image string) (name, path string) {
	name = image
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 && i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	path = name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		if host := name[:i]; strings.ContainsAny(host, ".:") || host == "localhost" {
			path = name[i+1:]
		}
	}
	return name, path
}

// matchImage matches image patterns against the name with its registry host
// (so that a policy can say "example.com/my-ccm$") and without it (so that
// "^nutanix-cloud-native/..." works whatever the mirror).
func matchImage(p patterns, name, path string) bool {
	return p.match(name) || (path != name && p.match(path))
}
