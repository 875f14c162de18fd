package sandbox

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/jitpam/jit/jitd/journalread"
)

// startJournald runs a real systemd-journald on the sandbox's private /run
// and /var/log, and waits until its socket accepts entries.
func (sb *Sandbox) startJournald() error {
	p := sb.Start("journald", exec.Command("/usr/lib/systemd/systemd-journald"))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat("/run/systemd/journal/socket"); err == nil {
			return nil
		}
		if !p.Running() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &startError{what: "systemd-journald", log: p.Output()}
}

type startError struct{ what, log string }

func (e *startError) Error() string {
	return e.what + " did not start: " + strings.TrimSpace(e.log)
}

// Journal returns the sandbox journal's entries that match args (journalctl
// matches and options).
func (sb *Sandbox) Journal(args ...string) []journalread.Entry {
	sb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	entries, err := journalread.Query(ctx, args...)
	if err != nil {
		sb.t.Fatalf("sandbox: read journal: %v", err)
	}
	return entries
}

// WaitJournal waits up to timeout for entries matching args that satisfy ok
// (nil: any) and returns them; the journal ingests datagrams asynchronously.
func (sb *Sandbox) WaitJournal(timeout time.Duration, ok func([]journalread.Entry) bool, args ...string) []journalread.Entry {
	sb.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		entries := sb.Journal(args...)
		if len(entries) > 0 && (ok == nil || ok(entries)) {
			return entries
		}
		if time.Now().After(deadline) {
			sb.t.Fatalf("sandbox: no journal entries matching %v after %v (found %d)", args, timeout, len(entries))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
