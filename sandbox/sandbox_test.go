package sandbox

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/jitpam/jit/jitd/spool"
)

// These tests drive the sandbox from outside, as a user's `make test` does,
// and check the host afterwards. The sandboxed side is TestSandboxChild, run
// in a child process.

const envChild = "JIT_SANDBOX_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(envStage) {
	case stageInit:
		os.Exit(runInit())
	}
	os.Exit(m.Run())
}

func requireRoot(t *testing.T) {
	t.Helper()
	if err := canSandbox(); err != nil {
		if CI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// startChild runs TestSandboxChild in mode inside a fresh sandbox namespace
// and returns the command and a reader of its output.
func startChild(t *testing.T, mode, marker string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := InitCommand([]string{os.Args[0], "-test.run=^TestSandboxChild$", "-test.v", "-test.count=1"}, marker)
	cmd.Env = setEnv(cmd.Env, envChild, mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out)
}

// The whole sandbox — overlay /etc with test users and a broken sudo.conf,
// private /run and /var/log, journald, sshd — leaves the host as it was, and
// the child's journal entry never reaches the host's journal.
func TestHostUnchanged(t *testing.T) {
	requireRoot(t)
	for _, mode := range []string{"finish", "killed"} {
		t.Run(mode, func(t *testing.T) {
			before, err := snapshotHost()
			if err != nil {
				t.Fatal(err)
			}
			marker := fmt.Sprintf("jit-sandbox-test-%s-%d", mode, time.Now().UnixNano())
			cmd, out := startChild(t, mode, marker)
			var transcript strings.Builder
			var dir string
			ready := false
			for out.Scan() {
				line := out.Text()
				transcript.WriteString(line + "\n")
				if d, ok := strings.CutPrefix(strings.TrimSpace(line), "SANDBOX-READY "); ok {
					dir, ready = d, true
					if mode == "killed" {
						// An interrupted run: init and everything below it die at once.
						_ = cmd.Process.Signal(syscall.SIGKILL)
					}
				}
			}
			err = cmd.Wait()
			if !ready {
				t.Fatalf("child never got its sandbox ready:\n%s", transcript.String())
			}
			if mode == "finish" && err != nil {
				t.Fatalf("child failed: %v\n%s", err, transcript.String())
			}
			after, err := snapshotHost()
			if err != nil {
				t.Fatal(err)
			}
			if diff := before.diff(after, marker); diff != "" {
				t.Fatalf("host changed:\n%s\nchild output:\n%s", diff, transcript.String())
			}
			// Nothing the child started is still running on the host.
			deadline := time.Now().Add(5 * time.Second)
			for {
				left := processesMentioning(dir)
				if len(left) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("processes of the sandbox outlived it: %v", left)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if mode == "killed" {
				os.RemoveAll(filepath.Dir(dir)) // the child had no chance to
			}
		})
	}
}

func processesMentioning(s string) []string {
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), s) {
			found = append(found, filepath.Base(filepath.Dir(p))+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return found
}

// TestSandboxChild is the sandboxed half of TestHostUnchanged; it does
// nothing unless that test started it.
func TestSandboxChild(t *testing.T) {
	mode := os.Getenv(envChild)
	if mode == "" {
		t.Skip("runs only as the child of TestHostUnchanged")
	}
	if !Inside() {
		t.Fatal("child is not inside a sandbox")
	}
	sb := New(t)
	// The worst a test does: a sudo.conf that would lock the host out, PAM
	// and policy edits, state under /run.
	sb.WriteFile("/etc/sudo.conf", "Plugin broken /nonexistent/broken.so\n", 0o644)
	sb.WriteFile("/etc/pam.d/sudo", "auth requisite pam_deny.so\n", 0o644)
	sb.WriteFile("/etc/jitd/jitd.hcl", "# sandbox test\n", 0o644)
	sb.WriteFile("/run/jitd/state", "x", 0o600)
	// Writes are refused wherever they could reach the host, symlinks included.
	if err := os.Symlink("/usr/share/jit-escape", "/etc/jit-escape"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"/etc/passwd": true, "/etc/jitd/new/file": true, "/run/x": true, "/home/jitalice/x": true,
		"/usr/libexec/jit/x": false, "/etc/jit-escape": false, "/etc/../usr/x": false, "etc/passwd": false,
	} {
		if got := sb.isPrivate(path); got != want {
			t.Errorf("isPrivate(%q) = %v, want %v", path, got, want)
		}
	}
	if _, err := os.Stat("/home/jitalice"); err != nil {
		t.Fatalf("test user home missing: %v", err)
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err != nil || !spool.HugePages(mi, SpoolDir) {
		t.Errorf("%s is not a tmpfs with huge pages (%v)", SpoolDir, err)
	}
	sshd := sb.StartSSHD(SSHDConfig{})
	if r := sshd.SSH("jitbob", 60*time.Second, "true"); r.Code != 0 {
		t.Fatalf("ssh as jitbob: %s\n%s", r, sshd.Proc.Output())
	}
	if err := journal.Send("sandbox child "+Marker(), journal.PriInfo, nil); err != nil {
		t.Fatal(err)
	}
	sb.WaitJournal(10*time.Second, nil, "MESSAGE=sandbox child "+Marker())
	// sshd's command line names the scratch dir: the parent looks for it.
	fmt.Printf("SANDBOX-READY %s\n", sb.Dir)
	if mode == "killed" {
		time.Sleep(time.Minute)
		t.Fatal("child was not killed")
	}
}

// The host check notices each kind of change it exists for.
func TestHostDiffReportsChanges(t *testing.T) {
	before := &hostState{mounts: []string{"/ /dev/vda"}, files: map[string]string{
		"/etc/passwd": "a", "/etc/jitd": "absent", "/etc/pam.d/sudo": "b",
	}}
	same := &hostState{mounts: []string{"/ /dev/vda"}, files: map[string]string{
		"/etc/passwd": "a", "/etc/jitd": "absent", "/etc/pam.d/sudo": "b",
	}}
	if d := before.diff(same, ""); d != "" {
		t.Fatalf("identical states differ: %s", d)
	}
	after := &hostState{mounts: []string{"/ /dev/vda", "/etc overlay"}, files: map[string]string{
		"/etc/passwd": "changed", "/etc/jitd": "c", "/etc/jitd/jitd.hcl": "d",
	}}
	d := before.diff(after, "")
	for _, want := range []string{"+ /etc overlay", "/etc/passwd changed", "/etc/jitd appeared", "/etc/jitd/jitd.hcl appeared", "/etc/pam.d/sudo disappeared"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
}

// The sandbox mounts the recording spool as the unit shipped for hosts
// does, so that tests and benchmarks measure what a host runs.
func TestSpoolMountMatchesUnit(t *testing.T) {
	b, err := os.ReadFile("../contrib/systemd/run-jitd-spool.mount")
	if err != nil {
		t.Fatal(err)
	}
	var where, options string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Where="); ok {
			where = v
		}
		if v, ok := strings.CutPrefix(line, "Options="); ok {
			options = v
		}
	}
	if where != SpoolDir {
		t.Errorf("the unit mounts %q, the sandbox %q", where, SpoolDir)
	}
	for _, o := range strings.Split(SpoolMountOptions, ",") {
		if !slices.Contains(strings.Split(options, ","), o) {
			t.Errorf("the unit's options %q lack the sandbox's %q", options, o)
		}
	}
}
