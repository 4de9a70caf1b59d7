package webhook

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// EmbeddedSource is the source name of the embedded default policy.
const EmbeddedSource = "embedded default"

// PolicyFile keeps the policy in a file in force: loaded at start (an
// invalid file is fatal then), reloaded when it changes. A change that does
// not load keeps the last good policy and is reported (log, metric, /readyz
// details). The file may be a ConfigMap volume, whose updates arrive as a
// symlink swap in the directory, so the directory is watched, with a poll as
// a safety net for file systems that do not deliver events.
type PolicyFile struct {
	Path  string
	Store *PolicyStore
	Log   logr.Logger
	// Poll is how often the file is read even without events.
	Poll time.Duration

	last []byte
}

// Load loads the file once; the error names the file and every field.
func (f *PolicyFile) Load() error {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return err
	}
	return f.apply(data)
}

func (f *PolicyFile) apply(data []byte) error {
	if f.last != nil && bytes.Equal(data, f.last) {
		return nil
	}
	p, err := rules.Load(f.Path, data)
	f.last = bytes.Clone(data)
	if err != nil {
		f.Store.Fail(f.Path, err)
		return err
	}
	state := f.Store.Set(p, f.Path)
	f.Log.Info("policy loaded", "source", f.Path, "generation", state.Generation)
	return nil
}

// Run watches the file until ctx ends.
func (f *PolicyFile) Run(ctx context.Context) error {
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer watcher.Close()
	if err := watcher.Add(filepath.Dir(f.Path)); err != nil {
		return fmt.Errorf("watching %s: %w", filepath.Dir(f.Path), err)
	}
	poll := f.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-watcher.Errors:
			f.Log.Error(err, "watching the policy file", "path", f.Path)
		case <-watcher.Events:
		case <-ticker.C:
		}
		f.reload()
	}
}

func (f *PolicyFile) reload() {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		// Mid-swap or deleted: keep the last good policy and retry on the
		// next event or tick.
		if !os.IsNotExist(err) {
			f.Log.Error(err, "reading the policy file; keeping the last good policy", "path", f.Path)
		}
		return
	}
	if err := f.apply(data); err != nil {
		f.Log.Error(err, "policy did not load; keeping the last good policy", "path", f.Path)
	}
}
