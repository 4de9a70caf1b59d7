package framework

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StopAPIServer stops this cluster's kube-apiserver as a kubelet stops a
// pod: SIGTERM, then SIGKILL once grace has passed. etcd keeps running. It
// reports whether the process exited within the grace period.
// StartAPIServer starts it again on the same etcd, address and port with the
// same serving certificate and client CA, so every kubeconfig written so far
// (bin/kubectl's, the webhook's --kubeconfig) keeps working: what a client
// sees of a control-plane restart or upgrade.
//
// Two things envtest does not do for a restart are done here. envtest gives
// each kube-apiserver a temporary certificate directory that it deletes on
// Stop, and a restart would then mint a new serving CA that no kubeconfig
// trusts: the directory is copied into the work directory first and the
// restarted process is pointed at the copy. And envtest's Stop waits its
// whole stop timeout (30s here) while kube-apiserver drains open watches
// (its own shutdown timeout is 60s); the grace period bounds that.
func (c *Cluster) StopAPIServer(grace time.Duration) (graceful bool, err error) {
	s := c.env.ControlPlane.APIServer
	if s == nil {
		return false, fmt.Errorf("%s: no kube-apiserver to stop", c.Name)
	}
	keep := filepath.Join(filepath.Dir(c.cacheDir), c.Name+".kube-apiserver")
	if s.CertDir != keep {
		if err := os.CopyFS(keep, os.DirFS(s.CertDir)); err != nil {
			return false, fmt.Errorf("%s: keeping the kube-apiserver certificates: %w", c.Name, err)
		}
	}
	pid, err := c.apiServerPID()
	if err != nil {
		return false, err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return false, fmt.Errorf("%s: stopping kube-apiserver (pid %d): %w", c.Name, pid, err)
	}
	graceful = waitExit(pid, grace)
	if !graceful {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// The process is gone or going: envtest's Stop only waits for its exit
	// and forgets the temporary directory.
	err = s.Stop()
	s.CertDir = keep
	if err != nil {
		return graceful, fmt.Errorf("%s: stopping kube-apiserver: %w", c.Name, err)
	}
	return graceful, nil
}

// StartAPIServer starts the kube-apiserver that StopAPIServer stopped and
// returns once its /healthz answers.
func (c *Cluster) StartAPIServer() error {
	if err := c.env.ControlPlane.APIServer.Start(); err != nil {
		return fmt.Errorf("%s: starting kube-apiserver again: %w", c.Name, err)
	}
	return nil
}

// apiServerPID finds this cluster's kube-apiserver among the children of
// the test process by its --secure-port (envtest does not expose the
// process).
func (c *Cluster) apiServerPID() (int, error) {
	u, err := url.Parse(c.Config.Host)
	if err != nil {
		return 0, err
	}
	want := []byte("--secure-port=" + u.Port())
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ")".
		_, rest, ok := bytes.Cut(stat, []byte(") "))
		if fields := strings.Fields(string(rest)); !ok || len(fields) < 2 || fields[1] != self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(cmdline, []byte{0})
		if len(args) > 0 && filepath.Base(string(args[0])) == "kube-apiserver" && bytes.Contains(cmdline, want) {
			return pid, nil
		}
	}
	return 0, errors.New(c.Name + ": no kube-apiserver child process serves port " + u.Port())
}

// waitExit polls until pid has exited (gone, or a zombie not yet reaped) or
// timeout passes.
func waitExit(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		if _, rest, ok := bytes.Cut(stat, []byte(") ")); ok && bytes.HasPrefix(rest, []byte("Z")) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
