package rules

// Policy is a loaded, validated, merged and compiled policy. It is immutable,
// so the server can swap it atomically and share it between requests.
type Policy struct {
	ccm *CCM
}

// CCM returns the compiled CCM policy.
func (p *Policy) CCM() *CCM { return p.ccm }
