package certs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const (
	// dataLink names the symlink that points at the current version directory,
	// as in the kubelet's atomic writer for Secret and ConfigMap volumes.
	dataLink = "..data"
	// versionPrefix marks the version directories this package creates; only
	// those are ever removed.
	versionPrefix = "..certs-"
)

type dirFile struct {
	name string
	data []byte
	mode os.FileMode
}

// WriteDir publishes ca.crt, tls.crt and tls.key into dir, replacing what an
// earlier WriteDir published in one atomic step.
//
// The files go into a new hidden version directory first; renaming the
// ..data symlink to it is the single step that makes them visible, and
// tls.crt, tls.key and ca.crt are symlinks through ..data. So at every instant
// the two names resolve to a matching certificate and key. A reader that
// opens them one after the other may still straddle a swap; certwatcher
// rejects such a pair (tls.X509KeyPair checks the key matches), keeps serving
// the old one, and reloads on the events the swap causes.
func WriteDir(dir string, caPEM []byte, pair KeyPair) error {
	files := []dirFile{
		{CAFile, caPEM, 0o644},
		{CertFile, pair.CertPEM, 0o644},
		{KeyFile, pair.KeyPEM, 0o600},
	}
	for _, f := range files {
		if len(f.data) == 0 {
			return fmt.Errorf("writing %s: %s is empty", dir, f.name)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating certificate directory: %w", err)
	}
	version, err := os.MkdirTemp(dir, versionPrefix)
	if err != nil {
		return fmt.Errorf("creating certificate version directory: %w", err)
	}
	if err := os.Chmod(version, 0o755); err != nil {
		_ = os.RemoveAll(version)
		return err
	}
	for _, f := range files {
		if err := writeSynced(filepath.Join(version, f.name), f.data, f.mode); err != nil {
			_ = os.RemoveAll(version)
			return err
		}
	}
	if err := syncDir(version); err != nil {
		_ = os.RemoveAll(version)
		return err
	}

	previous, _ := os.Readlink(filepath.Join(dir, dataLink))
	if err := replaceWithSymlink(dir, dataLink, filepath.Base(version)); err != nil {
		_ = os.RemoveAll(version)
		return err
	}
	// The user-visible names point through ..data, so they are created once
	// and never change again (a directory written by something else, with
	// plain files, is converted here).
	for _, f := range files {
		target := filepath.Join(dataLink, f.name)
		if current, err := os.Readlink(filepath.Join(dir, f.name)); err == nil && current == target {
			continue
		}
		if err := replaceWithSymlink(dir, f.name, target); err != nil {
			return err
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if strings.HasPrefix(previous, versionPrefix) && previous != filepath.Base(version) {
		// Removing the old version after the swap is what wakes up watchers
		// that followed the old symlinks (inotify reports the removal).
		if err := os.RemoveAll(filepath.Join(dir, previous)); err != nil {
			return fmt.Errorf("removing previous certificates: %w", err)
		}
	}
	return nil
}

func writeSynced(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// replaceWithSymlink points dir/name at target; rename(2) makes the switch
// atomic whether or not dir/name existed.
func replaceWithSymlink(dir, name, target string) error {
	suffix := make([]byte, 6)
	if _, err := rand.Read(suffix); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+name+".tmp-"+hex.EncodeToString(suffix))
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("linking %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("publishing %s: %w", name, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
