package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jitpam/jit/sandbox"
)

// openPTY returns a new pseudo-terminal's master and the path of its slave.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	return m, "/dev/pts/" + strconv.Itoa(n)
}

// processState returns the state letter of pid ("" when it is gone).
func processState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	return f[0]
}

// findCommand returns the pid of a process of the sandbox (its own /proc)
// running exe.
func findCommand(t *testing.T, exe string, timeout time.Duration) int {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		links, _ := filepath.Glob("/proc/[0-9]*/exe")
		for _, l := range links {
			if target, err := os.Readlink(l); err == nil && target == exe {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(l)))
				return pid
			}
		}
	}
	t.Fatalf("%s did not start within %v", exe, timeout)
	return 0
}

// A terminal resized while the command runs, and a command stopped and
// continued, are events of the recording, in order, with their values.
func TestRecordWinsizeAndSuspend(t *testing.T) {
	sb, j := recSandbox(t, "")
	grantSudo(t, sb, "jitalice", "30m", nil, "/bin/sleep")
	u, _ := sandbox.LookupUser("jitalice")

	master, slavePath := openPTY(t)
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80}); err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	if err := os.Chown(slavePath, u.UID, -1); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, master) // the terminal's reader

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := sb.UserCommand(ctx, "jitalice", []string{"TERM=xterm"}, "/usr/bin/sudo", "-n", "/bin/sleep", "1.5")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// sudo as the leader of a session whose terminal is the pty, like a
	// login shell's child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sudoPID := cmd.Process.Pid
	sleepPID := findCommand(t, "/usr/bin/sleep", 10*time.Second)

	// Resize: the kernel sends SIGWINCH to sudo, which passes the size on.
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 132}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	// Stop the command: sudo notices, records the suspend and stops itself
	// the same way, as it would for a ^Z; SIGCONT to sudo resumes both.
	if err := syscall.Kill(sleepPID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); processState(sudoPID) != "T"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sudo (pid %d) did not stop after its command did: state %q", sudoPID, processState(sudoPID))
		}
	}
	if err := syscall.Kill(sudoPID, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sudo sleep: %v", err)
	}

	id := lastSessionID(t, j, "jitalice")
	waitRecordingEnd(t, sb, id)
	start := sb.Journal("JIT_SESSION_ID="+id, "JIT_EVENT=sudo.io.start")
	if len(start) != 1 || start[0].Get("JIT_LINES") != "24" || start[0].Get("JIT_COLS") != "80" {
		t.Fatalf("start entry should carry the first size 24x80: %v", start)
	}
	var events []string
	for _, e := range sb.Journal("JIT_SESSION_ID=" + id) {
		switch e.Get("JIT_EVENT") {
		case "sudo.io.winsize":
			events = append(events, "winsize "+e.Get("JIT_LINES")+"x"+e.Get("JIT_COLS"))
		case "sudo.io.suspend":
			events = append(events, "suspend "+e.Get("JIT_SIGNAL"))
		}
	}
	got := strings.Join(events, ", ")
	if got != "winsize 40x132, suspend SIGSTOP, suspend SIGCONT" {
		t.Fatalf("recorded events: %q, want the resize, then the stop and the continue", got)
	}
	r := sb.Jitctl("root", "sessions", "--user", "jitalice")
	if !rowHas(r.Stdout, id, "complete") {
		t.Fatalf("jitctl sessions does not call %s complete:\n%s", id, r)
	}
}
