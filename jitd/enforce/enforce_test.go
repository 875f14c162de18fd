package enforce

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	line := "4242 (evil) (name) S 1 4242 4242 34816 4242 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100"
	p, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if p.PPID != 1 || p.SID != 4242 || p.Start != 987654 || p.State != 'S' {
		t.Fatalf("parsed %+v", p)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) accepted garbage", bad)
		}
	}
}

// StartTime reads what Read does for the start time, and a pid with no
// process is gone.
func TestStartTime(t *testing.T) {
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	for _, pid := range []int{os.Getpid(), cmd.Process.Pid} {
		start, err := StartTime(pid)
		p, rerr := Read(pid)
		if err != nil || rerr != nil || start != p.Start || start == 0 {
			t.Errorf("pid %d: StartTime %d (%v), Read %+v (%v)", pid, start, err, p, rerr)
		}
	}
	if _, err := StartTime(1 << 30); err != errGone {
		t.Errorf("StartTime of no process: %v, want errGone", err)
	}
}

// A "child" that started before its parent is a reused pid, not a child.
func TestTreeIgnoresReusedPIDs(t *testing.T) {
	procs := []Proc{
		{PID: 10, PPID: 1, Start: 100},
		{PID: 11, PPID: 10, Start: 150},
		{PID: 12, PPID: 11, Start: 160},
		{PID: 13, PPID: 10, Start: 50}, // older than 10: its parent 10 was another process
		{PID: 14, PPID: 2, Start: 170},
	}
	got := Tree(procs, procs[0])
	var pids []int
	for _, p := range got {
		pids = append(pids, p.PID)
	}
	if len(pids) != 3 || pids[0] != 10 || pids[1] != 11 || pids[2] != 12 {
		t.Fatalf("tree = %v, want [10 11 12]", pids)
	}
}

func TestWarnOnlyWritesTerminals(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o600)
	for _, p := range []string{file, "/etc/passwd", "/dev/../etc/passwd", "relative"} {
		if err := Warn(p, "x"); err == nil {
			t.Errorf("Warn wrote to %s", p)
		}
	}
	if data, _ := os.ReadFile(file); len(data) != 0 {
		t.Fatal("a regular file was written")
	}
}

func start(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	go cmd.Wait() // reap, so that an ended process does not linger as a zombie
	return cmd
}

func session(t *testing.T, pid int) grant.Session {
	t.Helper()
	p, err := Read(pid)
	if err != nil {
		t.Fatal(err)
	}
	return grant.Session{ID: "s-test", Kind: grant.KindSudo, PID: pid, PIDStart: p.Start}
}

// Ending a session reaches the process and its children; polite processes go
// at SIGTERM, stubborn ones at SIGKILL after the grace period.
func TestTerminateTree(t *testing.T) {
	for _, c := range []struct {
		name, script string
		killed       bool
	}{
		{"polite", "sleep 60 & sleep 60 & wait", false},
		{"stubborn", "trap '' TERM HUP; sleep 60 & sleep 60 & wait; sleep 60", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := start(t, c.script)
			time.Sleep(200 * time.Millisecond) // let the children start
			procs, err := All()
			if err != nil {
				t.Fatal(err)
			}
			targets, err := Find(session(t, cmd.Process.Pid), procs)
			if err != nil {
				t.Fatal(err)
			}
			if len(targets.Procs) < 3 {
				t.Fatalf("found %d processes, want the shell and its two children", len(targets.Procs))
			}
			killed, err := Terminate(targets, 500*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if (killed > 0) != c.killed {
				t.Errorf("killed %d with SIGKILL; stubborn=%v", killed, c.killed)
			}
			deadline := time.Now().Add(2 * time.Second)
			for !targets.Gone() {
				if time.Now().After(deadline) {
					t.Fatal("processes survived Terminate")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// A registered pid whose start time does not match names another process:
// it is never signalled.
func TestNeverSignalsAReusedPID(t *testing.T) {
	cmd := start(t, "sleep 60")
	sess := session(t, cmd.Process.Pid)
	sess.PIDStart++ // as if the registered process had ended and the pid been reused
	procs, _ := All()
	if _, err := Find(sess, procs); err == nil {
		t.Fatal("Find matched a process whose start time differs")
	}
	if Alive(sess.PID, sess.PIDStart) {
		t.Fatal("Alive accepted a wrong start time")
	}
	if err := signal(Proc{PID: sess.PID, Start: sess.PIDStart}, syscall.SIGKILL); err == nil {
		t.Fatal("signal sent to a reused pid")
	}
	time.Sleep(100 * time.Millisecond)
	if !Alive(cmd.Process.Pid, sess.PIDStart-1) {
		t.Fatal("the unrelated process was hurt")
	}
	if !strings.Contains(errGone.Error(), "gone") {
		t.Fatal(errGone)
	}
}
