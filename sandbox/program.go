package sandbox

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// Run is Main for a plain program (the demo): it runs main inside a sandbox
// namespace, checks afterwards that the host looks as it did before, and
// exits with main's code. The program must call Run first thing in its own
// main: the sandbox re-executes the binary for its init and inside stages.
func Run(main func() int) {
	switch os.Getenv(envStage) {
	case stageInside:
		os.Exit(main())
	case stageInit:
		os.Exit(runInit())
	}
	if err := canSandbox(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[0], err)
		os.Exit(1)
	}
	os.Exit(Enter(os.Args))
}

// Program is a testing.TB for a program that is not a test: logs go to
// Out, a fatal error runs the cleanups and exits 1, a skip exits 1 with the
// reason (a program has nobody to report a skip to). Close runs the
// cleanups (last registered first).
type Program struct {
	// testing.TB is embedded only for its unexported method; every method
	// a caller can reach is defined below, so the nil value is never used.
	testing.TB

	Out io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	dirs     []string
	env      map[string]*string
}

// NewProgram returns a Program that writes its log lines to out.
func NewProgram(out io.Writer) *Program {
	return &Program{Out: out, env: map[string]*string{}}
}

// NewForProgram builds a sandbox for a program (see Run and Program).
func NewForProgram(p *Program) *Sandbox { return New(p) }

func (p *Program) ArtifactDir() string    { return p.TempDir() }
func (p *Program) Attr(key, value string) {}
func (p *Program) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}
func (p *Program) Error(args ...any)                 { p.Log(args...); p.Fail() }
func (p *Program) Errorf(format string, args ...any) { p.Logf(format, args...); p.Fail() }
func (p *Program) Fail() {
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
}
func (p *Program) FailNow() {
	p.Fail()
	p.Close()
	os.Exit(1)
}
func (p *Program) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}
func (p *Program) Fatal(args ...any)                 { p.Log(args...); p.FailNow() }
func (p *Program) Fatalf(format string, args ...any) { p.Logf(format, args...); p.FailNow() }
func (p *Program) Helper()                           {}
func (p *Program) Log(args ...any)                   { fmt.Fprintln(p.Out, args...) }
func (p *Program) Logf(format string, args ...any) {
	fmt.Fprintf(p.Out, format+"\n", args...)
}
func (p *Program) Name() string { return "program" }
func (p *Program) Setenv(key, value string) {
	p.mu.Lock()
	if _, seen := p.env[key]; !seen {
		if old, ok := os.LookupEnv(key); ok {
			p.env[key] = &old
		} else {
			p.env[key] = nil
		}
	}
	p.mu.Unlock()
	os.Setenv(key, value)
}
func (p *Program) Chdir(dir string) {
	if err := os.Chdir(dir); err != nil {
		p.Fatalf("chdir %s: %v", dir, err)
	}
}
func (p *Program) Skip(args ...any)                 { p.Fatal(append([]any{"cannot run:"}, args...)...) }
func (p *Program) SkipNow()                         { p.FailNow() }
func (p *Program) Skipf(format string, args ...any) { p.Fatalf("cannot run: "+format, args...) }
func (p *Program) Skipped() bool                    { return false }
func (p *Program) TempDir() string {
	d, err := os.MkdirTemp("", "jit-program-")
	if err != nil {
		p.Fatalf("temp dir: %v", err)
	}
	p.mu.Lock()
	p.dirs = append(p.dirs, d)
	p.mu.Unlock()
	return d
}
func (p *Program) Context() context.Context { return context.Background() }
func (p *Program) Output() io.Writer        { return p.Out }

// Close runs the cleanups, last registered first, then removes the
// temporary directories and restores the environment. It is idempotent.
func (p *Program) Close() {
	for {
		p.mu.Lock()
		n := len(p.cleanups)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		f := p.cleanups[n-1]
		p.cleanups = p.cleanups[:n-1]
		p.mu.Unlock()
		f()
	}
	p.mu.Lock()
	dirs, env := p.dirs, p.env
	p.dirs, p.env = nil, map[string]*string{}
	p.mu.Unlock()
	for _, d := range dirs {
		os.RemoveAll(d)
	}
	for k, v := range env {
		if v == nil {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, *v)
		}
	}
}
