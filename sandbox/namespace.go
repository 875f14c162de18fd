// Package sandbox runs jit's end-to-end tests and its demo against the real
// sudo, sshd, PAM and journald without changing the host.
//
// A process enters the sandbox by re-executing itself in a new mount and pid
// namespace. The first process there is a tiny init (this package) that mounts
// a fresh /proc, starts the real program as its child and reaps orphans; when
// the program ends, init ends, and the kernel kills every process left in the
// namespace. Mounts made inside are private: they vanish with the namespace.
// Inside, New builds a private /etc (an overlay), /run, /var/log, /home and a
// journald of its own.
package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// envStage tells a re-executed binary which part of the sandbox it is.
const envStage = "JIT_SANDBOX_STAGE"

const (
	stageInit   = "init"
	stageInside = "inside"
)

// envUnavailable carries, to tests running outside, why no sandbox exists.
const envUnavailable = "JIT_SANDBOX_UNAVAILABLE"

// envMarker is a string unique to one run that tests write into the sandbox's
// journal; the outer process proves it never reached the host's journal.
const envMarker = "JIT_SANDBOX_MARKER"

// Inside reports whether this process runs inside a sandbox namespace.
func Inside() bool { return os.Getenv(envStage) == stageInside }

// Marker returns the run's unique marker (see envMarker).
func Marker() string { return os.Getenv(envMarker) }

// CI reports whether the run is under continuous integration, where a missing
// prerequisite is a failure rather than a skip.
func CI() bool { return os.Getenv("CI") == "true" }

// Main is the TestMain of every end-to-end test package: it runs the package's
// tests inside a sandbox and fails the run if the host changed.
func Main(m *testing.M) {
	switch os.Getenv(envStage) {
	case stageInside:
		os.Exit(m.Run())
	case stageInit:
		os.Exit(runInit())
	}
	if err := canSandbox(); err != nil {
		// Tests still run so that each says, by name, that it could not:
		// New skips them, or fails them under CI.
		os.Setenv(envUnavailable, err.Error())
		os.Exit(m.Run())
	}
	os.Exit(Enter(os.Args))
}

// Enter runs argv inside a new sandbox namespace and returns its exit code,
// after checking that the host looks as it did before.
func Enter(argv []string) int {
	before, err := snapshotHost()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: cannot record host state: %v\n", err)
		return 1
	}
	marker := fmt.Sprintf("jit-sandbox-marker-%d-%d", os.Getpid(), before.taken.UnixNano())
	cmd := InitCommand(argv, marker)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	code := 0
	if err := runForwardingSignals(cmd); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
			return 1
		}
		code = exit.ExitCode()
		if code < 0 {
			code = 1
		}
	}
	after, err := snapshotHost()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: cannot record host state: %v\n", err)
		return 1
	}
	if diff := before.diff(after, marker); diff != "" {
		fmt.Fprintf(os.Stderr, "--- FAIL: sandbox host check: the host changed during the run:\n%s", diff)
		return 1
	}
	return code
}

// InitCommand returns the command that starts argv (argv[0] is re-executed as
// /proc/self/exe) as the child of a sandbox init in new mount and pid
// namespaces. It is exported for tests that drive the sandbox from outside.
func InitCommand(argv []string, marker string) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe", argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env = setEnv(setEnv(os.Environ(), envStage, stageInit), envMarker, marker)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID,
		// With CLONE_NEWNS in Unshareflags Go also makes every mount
		// private in the child before exec, so nothing propagates back.
		Unshareflags: syscall.CLONE_NEWNS,
		// If the outer process dies, init dies, and with it the namespace.
		Pdeathsig: syscall.SIGKILL,
	}
	return cmd
}

func runForwardingSignals(cmd *exec.Cmd) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sandbox init: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case err := <-done:
			return err
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		}
	}
}

// runInit is pid 1 of the sandbox's pid namespace.
func runInit() int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "sandbox init: "+format+"\n", args...)
		return 1
	}
	if os.Getpid() != 1 {
		return fail("not pid 1 of a new pid namespace (pid %d)", os.Getpid())
	}
	// Belt and braces: Go already made mounts private, and a shared mount
	// here would leak every later mount to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail("make mounts private: %v", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fail("mount /proc: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fail("find own executable: %v", err)
	}
	env := setEnv(os.Environ(), envStage, stageInside)
	proc, err := os.StartProcess(exe, os.Args, &os.ProcAttr{
		Env:   env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		return fail("start %s: %v", exe, err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	go func() {
		for s := range sigs {
			_ = proc.Signal(s)
		}
	}()
	// Reap every child, ours and orphans alike, until the main one ends.
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fail("wait: %v", err)
		}
		if pid != proc.Pid {
			continue
		}
		switch {
		case ws.Exited():
			return ws.ExitStatus()
		case ws.Signaled():
			fmt.Fprintf(os.Stderr, "sandbox init: child killed by %v\n", ws.Signal())
			return 128 + int(ws.Signal())
		}
	}
}

// canSandbox says why this process cannot create a sandbox, or nil.
func canSandbox() error {
	if os.Geteuid() != 0 {
		return errors.New("the sandbox needs root (it creates mount and pid namespaces); run the tests as root, e.g. `sudo make test`")
	}
	for _, tool := range requiredTools {
		if _, err := os.Stat(tool); err != nil {
			return fmt.Errorf("%s is missing: run `make deps` (installs the Debian packages the tests need)", tool)
		}
	}
	return nil
}

// requiredTools are the programs every sandbox needs; tests that need more
// (sudo, sshd, pamtester) check for those themselves.
var requiredTools = []string{
	"/usr/lib/systemd/systemd-journald",
	"/usr/bin/journalctl",
	"/usr/bin/setpriv",
	"/usr/bin/script",
}

// setEnv returns env with key set to value, replacing any earlier value:
// getenv returns the first of duplicate entries.
func setEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}
