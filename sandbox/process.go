package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a daemon started in the sandbox; its output goes to a log file
// that is shown when the test fails.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	Log  string

	done    chan struct{}
	mu      sync.Mutex
	err     error
	stopped bool
}

// Start starts cmd as a daemon called name. It is stopped when the test ends.
func (sb *Sandbox) Start(name string, cmd *exec.Cmd) *Process {
	sb.t.Helper()
	p := &Process{Name: name, Cmd: cmd, Log: filepath.Join(sb.Dir, name+".log"), done: make(chan struct{})}
	logf, err := os.Create(p.Log)
	if err != nil {
		sb.t.Fatalf("sandbox: %v", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		logf.Close()
		sb.t.Fatalf("sandbox: start %s: %v", name, err)
	}
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	sb.procs = append(sb.procs, p)
	sb.t.Cleanup(func() {
		if sb.t.Failed() {
			if out, err := os.ReadFile(p.Log); err == nil && len(out) > 0 {
				sb.t.Logf("--- log of %s:\n%s", name, tail(out, 8000))
			}
		}
	})
	return p
}

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Wait waits up to d for the process to exit and returns its error.
func (p *Process) Wait(d time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	case <-time.After(d):
		return false, nil
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error {
	return p.Cmd.Process.Signal(sig)
}

// Stop ends the process: SIGTERM, then SIGKILL to its whole process group.
func (p *Process) Stop() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.mu.Unlock()
	if p.Running() {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		if exited, _ := p.Wait(3 * time.Second); !exited {
			_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
			p.Wait(3 * time.Second)
		}
	}
	// Children it left behind in its group go too.
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
}

// Output returns what the process has logged so far.
func (p *Process) Output() string {
	out, _ := os.ReadFile(p.Log)
	return string(out)
}

// Result is how a command run as a test user ended.
type Result struct {
	Stdout, Stderr string
	Code           int // exit code; -1 when killed by a signal
	Err            error
	Elapsed        time.Duration
}

// Combined is stdout followed by stderr.
func (r Result) Combined() string { return r.Stdout + r.Stderr }

func (r Result) String() string {
	return fmt.Sprintf("exit %d (%v) after %v\nstdout:\n%s\nstderr:\n%s", r.Code, r.Err, r.Elapsed.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// UserCommand returns a command that runs argv as user with a clean login-like
// environment and no terminal. Extra env entries ("K=V") are added.
func (sb *Sandbox) UserCommand(ctx context.Context, user string, env []string, argv ...string) *exec.Cmd {
	sb.t.Helper()
	u, ok := LookupUser(user)
	if !ok {
		sb.t.Fatalf("sandbox: no test user %q", user)
	}
	args := []string{
		"--reuid=" + strconv.Itoa(u.UID), "--regid=" + strconv.Itoa(u.GID), "--init-groups",
		"--inh-caps=-all", "--",
	}
	cmd := exec.CommandContext(ctx, "/usr/bin/setpriv", append(args, argv...)...)
	cmd.Dir = u.Home
	cmd.Env = append([]string{
		"HOME=" + u.Home, "USER=" + u.Name, "LOGNAME=" + u.Name, "SHELL=/bin/bash",
		"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
	}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A context deadline must end the whole group (sudo and its command), not
	// only setpriv.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// RunAs runs argv as user without a terminal, with stdin from stdin (may be
// empty), and a hard limit of timeout.
func (sb *Sandbox) RunAs(user string, timeout time.Duration, stdin string, env []string, argv ...string) Result {
	sb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := sb.UserCommand(ctx, user, env, argv...)
	return run(cmd, stdin)
}

// RunAsTTY runs argv as user on a fresh pseudo-terminal (through script(1)),
// so that programs see a tty. stdout carries everything the terminal showed.
func (sb *Sandbox) RunAsTTY(user string, timeout time.Duration, stdin string, env []string, argv ...string) Result {
	sb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return run(sb.ttyCommand(ctx, user, env, argv), stdin)
}

// RunAsTTYTo is RunAsTTY with what the terminal showed going to w instead
// of Result.Stdout: for output too big to keep, such as in benchmarks,
// where growing a buffer would add its own work and noise to what is
// measured.
func (sb *Sandbox) RunAsTTYTo(w io.Writer, user string, timeout time.Duration, argv ...string) Result {
	sb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return runTo(sb.ttyCommand(ctx, user, nil, argv), "", w)
}

func (sb *Sandbox) ttyCommand(ctx context.Context, user string, env, argv []string) *exec.Cmd {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = ShellQuote(a)
	}
	return sb.UserCommand(ctx, user, append([]string{"TERM=xterm"}, env...),
		"/usr/bin/script", "-qefc", strings.Join(quoted, " "), "/dev/null")
}

func run(cmd *exec.Cmd, stdin string) Result {
	var stdout bytes.Buffer
	r := runTo(cmd, stdin, &stdout)
	r.Stdout = stdout.String()
	return r
}

func runTo(cmd *exec.Cmd, stdin string, stdout io.Writer) Result {
	var stderr bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := Result{Stderr: stderr.String(), Err: err, Elapsed: time.Since(start)}
	r.Code = cmd.ProcessState.ExitCode()
	return r
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append([]byte("…"), b[len(b)-n:]...)
}
