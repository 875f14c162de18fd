package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

// crashChildEnv makes the test binary act as the crash test's writer;
// crashKindEnv says what it writes ("sessions": sessions, else grants).
const (
	crashChildEnv = "JIT_STORE_CRASH_CHILD_DIR"
	crashKindEnv  = "JIT_STORE_CRASH_CHILD_KIND"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		if os.Getenv(crashKindEnv) == "sessions" {
			crashSessionChild(dir)
		}
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// crashSessionChild registers sessions, with a runtime directory, until it
// is killed, printing each id once OpenSession returned; every other
// session it then closes, printing "ID closed" once CloseSession returned.
func crashSessionChild(dir string) {
	s, err := Open(dir, Options{LockTimeout: 5 * time.Second, RuntimeDir: filepath.Join(dir, "run")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	g, err := s.CreateGrant(grant.Grant{User: "alice", Kind: grant.KindSudo, Commands: []string{"/usr/bin/true"},
		ExpiresAt: time.Now().Add(time.Hour)}, Audit{Actor: "crash"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	exit := crashExitStatus
	for i := 0; ; i++ {
		sess, err := s.OpenSession(grant.Session{Kind: grant.KindSudo, User: "alice", GrantID: g.ID, PID: os.Getpid(), RunAs: "root"}, Audit{Actor: "root"})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		fmt.Fprintln(os.Stdout, sess.ID)
		if i%2 == 0 {
			if _, err := s.CloseSession(sess.ID, &exit, time.Time{}, Audit{Actor: "root"}); err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
				os.Exit(3)
			}
			fmt.Fprintln(os.Stdout, sess.ID, "closed")
		}
	}
}

// crashChild writes grants until it is killed, printing each id only after
// CreateGrant returned: a printed id is an acknowledged write.
func crashChild(dir string) {
	s, err := Open(dir, Options{LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		g, err := s.CreateGrant(grant.Grant{
			User:      fmt.Sprintf("user%d", i%37),
			Kind:      grant.KindSudo,
			Commands:  []string{"/usr/bin/true"},
			ExpiresAt: time.Now().Add(time.Hour),
			Reason:    strings.Repeat("r", i%300), // vary record sizes so pages split
		}, Audit{Actor: "crash"})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		// os.Stdout is unbuffered: one write(2) per line, done before the
		// next transaction starts.
		fmt.Fprintln(os.Stdout, g.ID)
	}
}

func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	crashRounds(t, "grants", 30, 60, Options{}, func(s *Store, id string) error {
		g, err := s.GetGrant(id)
		if err == nil && g.State != grant.StateActive {
			err = fmt.Errorf("state %s", g.State)
		}
		return err
	})
}

// crashExitStatus is what the crash test's session writer closes with.
const crashExitStatus = 7

// A session registration or end acknowledged from the pending file (not
// yet committed) is committed by the next Open after jitd was killed.
func TestCrashKeepsAcknowledgedSessions(t *testing.T) {
	crashRounds(t, "sessions", 200, 2000, Options{}, func(s *Store, line string) error {
		id, closed := strings.CutSuffix(line, " closed")
		sess, err := s.GetSession(id)
		switch {
		case err != nil:
			return err
		case closed && (sess.State != grant.SessionClosed || sess.ExitStatus == nil || *sess.ExitStatus != crashExitStatus):
			return fmt.Errorf("acknowledged as closed with status %d, stored as %s with %v", crashExitStatus, sess.State, sess.ExitStatus)
		}
		return nil
	})
}

// crashRounds kills a writer child (kind) five times after it acknowledged
// between min and min+spread ids, reopens the store with opts (plus the
// child's runtime directory) and checks every acknowledged id.
func crashRounds(t *testing.T, kind string, min, spread int, opts Options, check func(*Store, string) error) {
	if testing.Short() {
		t.Skip("spawns writer processes")
	}
	dir := t.TempDir()
	var acked []string
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashKindEnv+"="+kind)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(out)
		killAfter := min + rand.IntN(spread)
		var lines []string
		for len(lines) < killAfter {
			line, err := r.ReadString('\n')
			if err != nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("round %d: child stopped early after %d ids: %v; stderr: %s", round, len(lines), err, stderr.String())
			}
			lines = append(lines, strings.TrimSuffix(line, "\n"))
		}
		// Land the kill at a varying point of the next transaction.
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Whatever the child wrote before it died is still in the pipe.
		rest, _ := io.ReadAll(r)
		for _, l := range strings.SplitAfter(string(rest), "\n") {
			if strings.HasSuffix(l, "\n") { // a torn last line was not acknowledged
				lines = append(lines, strings.TrimSuffix(l, "\n"))
			}
		}
		werr := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, not SIGKILL; stderr: %s", round, werr, stderr.String())
		}
		acked = append(acked, lines...)

		// Sessions are checked in the database itself: the reopened store
		// has committed what was pending, and a second Open without the
		// runtime directory reads only the database.
		s, err := Open(dir, Options{RuntimeDir: filepath.Join(dir, "run")})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		replayed, unreadable := s.SessionRecovery()
		s.Close()
		s, err = Open(dir, opts)
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		for _, id := range acked {
			if err := check(s, id); err != nil {
				s.Close()
				t.Fatalf("round %d: acknowledged %s %s: %v", round, kind, id, err)
			}
		}
		if _, err := s.Verify(); err != nil {
			s.Close()
			t.Fatalf("round %d: audit chain after SIGKILL: %v", round, err)
		}
		checkIndexes(t, s)
		c, _ := s.Counts()
		t.Logf("round %d: %d ids acknowledged before SIGKILL, %d grants and %d sessions on disk in total (%d acknowledged so far); %d sessions were pending, %d unreadable lines",
			round, len(lines), c.Grants, c.Sessions, len(acked), replayed, unreadable)
		s.Close()
	}
}
