// Package webhook is the admission server: thin admission.Handler adapters
// around the engine in internal/mutate, and the sources of policy (embedded,
// file, ConfigMap), IngressClasses and control planes they read.
package webhook

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// PolicyState is one loaded policy with where it came from. It is immutable;
// the store swaps whole states, so a request never sees half a policy.
type PolicyState struct {
	Policy *rules.Policy
	// Generation counts successful loads, starting at 1.
	Generation int64
	// Source says where the policy came from: "embedded default", a file path,
	// or "configmap NS/NAME".
	Source   string
	LoadedAt time.Time
}

// PolicyStore holds the policy every request uses, and the last load error.
type PolicyStore struct {
	current atomic.Pointer[PolicyState]
	mu      sync.Mutex // serialises writers, so generations are ordered
	failure atomic.Pointer[LoadFailure]
	metrics *Metrics
}

// LoadFailure is a policy that did not load; the previous policy stays.
type LoadFailure struct {
	Source string
	Err    error
	At     time.Time
}

// NewPolicyStore returns an empty store: not ready until Set is called.
func NewPolicyStore(m *Metrics) *PolicyStore { return &PolicyStore{metrics: m} }

// Current returns the policy in force, nil before the first successful load.
func (s *PolicyStore) Current() *PolicyState { return s.current.Load() }

// Policy returns the policy in force, nil while none is loaded.
func (s *PolicyStore) Policy() *rules.Policy {
	if state := s.current.Load(); state != nil {
		return state.Policy
	}
	return nil
}

// LastFailure returns the last load failure since the last success, or nil.
func (s *PolicyStore) LastFailure() *LoadFailure { return s.failure.Load() }

// Set makes p the policy in force and returns its state.
func (s *PolicyStore) Set(p *rules.Policy, source string) *PolicyState {
	s.mu.Lock()
	defer s.mu.Unlock()
	var generation int64 = 1
	if old := s.current.Load(); old != nil {
		generation = old.Generation + 1
	}
	state := &PolicyState{Policy: p, Generation: generation, Source: source, LoadedAt: time.Now()}
	s.current.Store(state)
	s.failure.Store(nil)
	s.metrics.policyLoaded(state)
	return state
}

// Fail records a policy that did not load. The policy in force is kept.
func (s *PolicyStore) Fail(source string, err error) {
	s.failure.Store(&LoadFailure{Source: source, Err: err, At: time.Now()})
	s.metrics.policyLoadFailed(source)
}
