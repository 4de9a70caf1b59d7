// Package version holds the build version, set with -ldflags by `make build`.
package version

import (
	"fmt"
	"runtime"
)

// Version is the release or git description of this build.
var Version = "dev"

// String is what `hcp-ingress-webhook version` prints.
func String() string {
	return fmt.Sprintf("hcp-ingress-webhook %s (%s, %s/%s)", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
