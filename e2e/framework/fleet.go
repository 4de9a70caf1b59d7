package framework

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/discovery"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/controlplanes"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/fleet"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// FleetOptions configure StartFleet.
type FleetOptions struct {
	ChildWebhookURL string
	Repair          bool
	// CABundle returns the CA bundle the ConfigMaps must carry.
	CABundle func() []byte
	// Policy is the policy in force; nil: the embedded default.
	Policy *rules.Policy
	// Intervals, short for tests (see fleet.Options).
	CheckInterval, RepairInterval, ChildTimeout, RetryBase, RetryMax time.Duration
}

// Fleet is the fleet controllers running against a cluster, on a
// controller-runtime manager built the way serve builds its own (the
// control-plane transform and fleet.CacheByObject in the cache options).
type Fleet struct {
	cancel context.CancelFunc
	done   chan error

	mu  sync.Mutex
	log bytes.Buffer
}

// Write collects the fleet's log.
func (f *Fleet) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.log.Write(p)
}

// Log returns the fleet's log so far (JSON lines).
func (f *Fleet) Log() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.log.String()
}

// StartFleet starts the fleet controllers against c until Stop.
func StartFleet(ctx context.Context, c *Cluster, o FleetOptions) (*Fleet, error) {
	f := &Fleet{done: make(chan error, 1)}
	log := logr.FromSlogHandler(slog.NewJSONHandler(f, nil))
	mgr, err := manager.New(c.Config, manager.Options{
		Cache: cache.Options{
			DefaultTransform: controlplanes.Transform,
			ByObject:         fleet.CacheByObject(),
		},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 log,
		// Several fleets may run in one test process, one after another.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	watcher := controlplanes.NewWatcher(mgr.GetCache(), dc, log.WithName("controlplanes"))
	watcher.Interval = time.Second
	if err := mgr.Add(watcher); err != nil {
		return nil, err
	}
	policy := o.Policy
	if policy == nil {
		policy = rules.Default()
	}
	err = fleet.Setup(mgr, watcher, fleet.Options{
		ChildWebhookURL: o.ChildWebhookURL,
		Repair:          o.Repair,
		CABundle:        o.CABundle,
		Policy:          func() *rules.Policy { return policy },
		Log:             log.WithName("fleet"),
		Recorder:        mgr.GetEventRecorderFor("hcp-ingress-webhook"),
		CheckInterval:   o.CheckInterval,
		RepairInterval:  o.RepairInterval,
		ChildTimeout:    o.ChildTimeout,
		RetryBase:       o.RetryBase,
		RetryMax:        o.RetryMax,
	})
	if err != nil {
		return nil, err
	}
	ctx, f.cancel = context.WithCancel(ctx)
	go func() { f.done <- mgr.Start(ctx) }()
	deadline := time.After(time.Minute)
	for watcher.Synced() != nil {
		select {
		case err := <-f.done:
			return nil, fmt.Errorf("fleet manager exited: %v", err)
		case <-deadline:
			f.Stop()
			return nil, fmt.Errorf("fleet: control-plane view not synced after a minute: %v", watcher.Synced())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return f, nil
}

// Stop stops the manager and waits for it.
func (f *Fleet) Stop() {
	if f == nil || f.cancel == nil {
		return
	}
	f.cancel()
	<-f.done
	f.cancel = nil
}
