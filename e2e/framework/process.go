package framework

import (
	"errors"
	"os"
	"os/exec"
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
