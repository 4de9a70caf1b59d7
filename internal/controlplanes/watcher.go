package controlplanes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// DefaultRediscoverInterval is how often a kind the cluster does not serve
// yet is looked up again.
const DefaultRediscoverInterval = 10 * time.Second

// Watcher keeps an informer of every control-plane kind the cluster serves in
// a controller-runtime cache. It is a manager.Runnable that runs on every
// replica (admission needs the view everywhere); Synced is its readiness.
type Watcher struct {
	Cache  cache.Cache
	Mapper meta.RESTMapper
	Log    logr.Logger
	// Interval between lookups of kinds not served yet; 0 means
	// DefaultRediscoverInterval.
	Interval time.Duration

	mu          sync.RWMutex
	served      map[schema.GroupKind]schema.GroupVersionKind
	discovered  bool // the first discovery has completed and its informers synced
	lastErr     error
	subscribers []func(schema.GroupVersionKind)
}

// NewWatcher returns a watcher over c; mapper answers which kinds are served.
func NewWatcher(c cache.Cache, mapper meta.RESTMapper, log logr.Logger) *Watcher {
	return &Watcher{Cache: c, Mapper: mapper, Log: log, served: map[schema.GroupKind]schema.GroupVersionKind{}}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every
// replica admits, so every replica watches.
func (w *Watcher) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable.
func (w *Watcher) Start(ctx context.Context) error {
	interval := w.Interval
	if interval <= 0 {
		interval = DefaultRediscoverInterval
	}
	for {
		w.discover(ctx)
		if len(w.Served()) == len(Kinds) {
			<-ctx.Done()
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// discover starts an informer for every kind that is served and not watched
// yet, and waits for it to sync.
func (w *Watcher) discover(ctx context.Context) {
	var errs []error
	for _, gk := range Kinds {
		if _, ok := w.gvk(gk); ok {
			continue
		}
		gvk, ok, err := servedVersion(w.Mapper, gk)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		// Blocks until the informer has synced (or ctx ends).
		if _, err := w.Cache.GetInformer(ctx, u); err != nil {
			errs = append(errs, fmt.Errorf("watching %s: %w", gvk, err))
			continue
		}
		w.Log.Info("watching control planes", "kind", gvk.String())
		w.mu.Lock()
		w.served[gk] = gvk
		subscribers := slices.Clone(w.subscribers)
		w.mu.Unlock()
		for _, fn := range subscribers {
			fn(gvk)
		}
	}
	w.mu.Lock()
	w.lastErr = errors.Join(errs...)
	if w.lastErr == nil {
		w.discovered = true
	}
	w.mu.Unlock()
	if len(errs) > 0 {
		w.Log.Error(w.lastErr, "discovering control-plane kinds")
	}
}

// servedVersion returns the preferred version of gk when the cluster serves
// it. The manager's REST mapper (controller-runtime's dynamic mapper) looks a
// group up again when it does not know it, so a CRD installed after the
// start is found on the next pass.
func servedVersion(mapper meta.RESTMapper, gk schema.GroupKind) (schema.GroupVersionKind, bool, error) {
	mapping, err := mapper.RESTMapping(gk)
	switch {
	case meta.IsNoMatchError(err) || apierrors.IsNotFound(err):
		return schema.GroupVersionKind{}, false, nil
	case err != nil:
		return schema.GroupVersionKind{}, false, fmt.Errorf("discovering %s: %w", gk, err)
	}
	return mapping.GroupVersionKind, true, nil
}

func (w *Watcher) gvk(gk schema.GroupKind) (schema.GroupVersionKind, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	gvk, ok := w.served[gk]
	return gvk, ok
}

// Served returns the kinds watched now, in lookup order.
func (w *Watcher) Served() []schema.GroupVersionKind {
	w.mu.RLock()
	defer w.mu.RUnlock()
	var out []schema.GroupVersionKind
	for _, gk := range Kinds {
		if gvk, ok := w.served[gk]; ok {
			out = append(out, gvk)
		}
	}
	return out
}

// Synced is the readiness check: nil once the first discovery has completed
// and the informer of every kind served then has synced.
func (w *Watcher) Synced() error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	switch {
	case w.discovered:
		return nil
	case w.lastErr != nil:
		return fmt.Errorf("control-plane view not synced: %w", w.lastErr)
	default:
		return errors.New("control-plane view not synced yet")
	}
}

// OnServed calls fn for every kind watched now and, later, for each kind the
// moment it is watched. fn must not block.
func (w *Watcher) OnServed(fn func(schema.GroupVersionKind)) {
	w.mu.Lock()
	w.subscribers = append(w.subscribers, fn)
	var now []schema.GroupVersionKind
	for _, gk := range Kinds {
		if gvk, ok := w.served[gk]; ok {
			now = append(now, gvk)
		}
	}
	w.mu.Unlock()
	for _, gvk := range now {
		fn(gvk)
	}
}

// Get returns the control plane NAMESPACE/NAME, trimmed (see Trim), looking
// at each served kind in the order of Kinds; nil when there is none.
func (w *Watcher) Get(ctx context.Context, namespace, name string) (*unstructured.Unstructured, error) {
	for _, gvk := range w.Served() {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		err := w.Cache.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, u)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return u, nil
	}
	return nil, nil
}
