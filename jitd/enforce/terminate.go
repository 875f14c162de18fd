package enforce

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

// Targets are the processes that make up one session when it is ended.
type Targets struct {
	// Procs were alive, and identified by pid and start time, when the
	// session was looked at.
	Procs []Proc
	// SIDs are setsid sessions that belong wholly to the elevated command
	// (sudo runs commands on a pty in a session of their own); a process
	// that joins one later is caught by it.
	SIDs map[int]bool
}

// Find returns what ending sess must reach: for a sudo session, sudo and
// every descendant; for a login, every process of its audit session (and,
// when the audit session is unknown, the PAM host's process tree).
func Find(sess grant.Session, procs []Proc) (Targets, error) {
	t := Targets{SIDs: map[int]bool{}}
	self := os.Getpid()
	var found []Proc
	if sess.Kind == grant.KindLogin && sess.AuditSession != 0 {
		found = InSession(procs, sess.AuditSession)
	}
	var root Proc
	haveRoot := false
	for _, p := range procs {
		if p.PID == sess.PID && p.Start == sess.PIDStart {
			root, haveRoot = p, true
		}
	}
	if haveRoot {
		found = append(found, Tree(procs, root)...)
	}
	seen := map[int]bool{}
	for _, p := range found {
		if seen[p.PID] || p.PID == self || p.PID == 1 || p.State == 'Z' {
			continue
		}
		seen[p.PID] = true
		t.Procs = append(t.Procs, p)
		// The command's own session, never the session sudo was typed in.
		if haveRoot && p.SID != root.SID && p.SID == p.PID {
			t.SIDs[p.SID] = true
		}
	}
	if len(t.Procs) == 0 {
		return t, errGone
	}
	return t, nil
}

// Gone reports whether none of the targets is alive any more.
func (t Targets) Gone() bool {
	for _, p := range t.Procs {
		if Alive(p.PID, p.Start) {
			return false
		}
	}
	return true
}

// Terminate asks the targets to end (SIGHUP, as a closing terminal does, and
// SIGTERM), waits up to grace, then kills what is left, including processes
// that joined the command's sessions meanwhile. It returns how many
// processes it killed with SIGKILL.
func Terminate(t Targets, grace time.Duration) (killed int, err error) {
	var errs []error
	for _, p := range t.Procs {
		for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGCONT} {
			if err := signal(p, sig); err != nil && !errors.Is(err, errGone) {
				errs = append(errs, fmt.Errorf("pid %d: %v: %w", p.PID, sig, err))
			}
		}
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if t.Gone() && !sessionsLive(t.SIDs) {
			return 0, errors.Join(errs...)
		}
		time.Sleep(20 * time.Millisecond)
	}
	victims := append([]Proc(nil), t.Procs...)
	if len(t.SIDs) > 0 {
		if procs, err := All(); err == nil {
			for _, p := range procs {
				if t.SIDs[p.SID] {
					victims = append(victims, p)
				}
			}
		}
	}
	for _, p := range victims {
		if p.PID == os.Getpid() || p.PID == 1 {
			continue
		}
		if err := signal(p, syscall.SIGKILL); err == nil {
			killed++
		} else if !errors.Is(err, errGone) {
			errs = append(errs, fmt.Errorf("pid %d: SIGKILL: %w", p.PID, err))
		}
	}
	return killed, errors.Join(errs...)
}

// sessionsLive reports whether any process is still in one of sids.
func sessionsLive(sids map[int]bool) bool {
	if len(sids) == 0 {
		return false
	}
	procs, err := All()
	if err != nil {
		return true
	}
	for _, p := range procs {
		if sids[p.SID] && p.State != 'Z' {
			return true
		}
	}
	return false
}
