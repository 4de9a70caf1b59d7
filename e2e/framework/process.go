package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a program the tests run (the webhook, Traefik): its log file,
// its exit, and an orderly stop.
type process struct {
	// LogFile receives the program's output.
	LogFile string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit, valid after done is closed
	once sync.Once
}

func newProcess(logFile string) process {
	return process{LogFile: logFile, done: make(chan struct{})}
}

// start runs binary with args in its own process group (a Ctrl-C in `make
// dev` reaches the demo, which then stops it in order), its output to LogFile
// and to extra, if set.
func (p *process) start(binary string, args, env []string, extra io.Writer) error {
	logFile, err := os.Create(p.LogFile)
	if err != nil {
		return err
	}
	var out io.Writer = logFile
	if extra != nil {
		out = io.MultiWriter(logFile, extra)
	}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Env = env
	if err := p.cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("starting %s: %w", binary, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return nil
}

// waitOK polls url every 200 ms until it answers 200 and ready (when set)
// returns nil, the process exits, or timeout passes; name says what is waited
// for in the errors.
func (p *process) waitOK(ctx context.Context, name, url string, timeout time.Duration, ready func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %v", name, p.err)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %v", name, timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := client.Get(url)
		if err != nil {
			last = err
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			last = fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
			continue
		}
		if ready != nil {
			if err := ready(); err != nil {
				last = err
				continue
			}
		}
		return nil
	}
}

// Stop sends SIGTERM, waits for a graceful shutdown, then kills.
func (p *process) Stop() error {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	var exit *exec.ExitError
	if p.err != nil && !errors.As(p.err, &exit) {
		return p.err
	}
	return nil
}

// Exited reports whether the process has ended (a crash during the tests).
func (p *process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// PID is the process id (to tell a reload from a restart, to read its
// memory).
func (p *process) PID() int {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// PeakRSS is the process's peak resident set size (VmHWM), in bytes.
func (p *process) PeakRSS() (int64, error) {
	return ProcStatus(p.PID(), "VmHWM:")
}

// RSS is the process's resident set size now (VmRSS), in bytes.
func (p *process) RSS() (int64, error) {
	return ProcStatus(p.PID(), "VmRSS:")
}

// Program is another program a test runs (a reference webhook to measure
// against): its log, its memory and an orderly stop.
type Program struct {
	process
}

// StartProgram runs binary with args, its output in logFile, and waits until
// readyURL answers 200 (or the program exits, or a minute passes).
func StartProgram(ctx context.Context, binary string, args []string, logFile, readyURL string) (*Program, error) {
	p := &Program{process: newProcess(logFile)}
	if err := p.start(binary, args, kubectlEnv(), nil); err != nil {
		return nil, err
	}
	if err := p.waitOK(ctx, filepath.Base(binary), readyURL, time.Minute, nil); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("%w\n%s log (last lines):\n%s", err, binary, p.LogTail(30))
	}
	return p, nil
}

// LogTail returns the last n lines of the log.
func (p *process) LogTail(n int) string {
	data, err := os.ReadFile(p.LogFile)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
