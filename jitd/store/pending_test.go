package store

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

func openPendingTest(t *testing.T) (*Store, *clock, string) {
	t.Helper()
	c := newClock()
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	return openWith(t, dir, Options{Now: c.Now, RuntimeDir: run}), c, run
}

// A revocation that lands while a session's commit is still pending sees
// the session, and a registration after it is refused.
func TestPendingSessionMeetsRevocation(t *testing.T) {
	s, c, _ := openPendingTest(t)
	g := mustCreate(t, s, sudoGrant("alice", c.Now().Add(time.Hour)))
	s.pending.commitMu.Lock()
	sess, err := s.OpenSession(sudoSession("alice", g.ID, 100), Audit{Actor: "root"})
	if err != nil {
		s.pending.commitMu.Unlock()
		t.Fatal(err)
	}
	if _, err := s.EndGrant(g.ID, grant.StateRevoked, time.Time{}, lead("stop")); err != nil {
		s.pending.commitMu.Unlock()
		t.Fatal(err)
	}
	got, err := s.OpenSessionsForGrant(g.ID)
	_, lateErr := s.OpenSession(sudoSession("alice", g.ID, 101), Audit{Actor: "root"})
	s.pending.commitMu.Unlock()
	if err != nil || len(got) != 1 || got[0].ID != sess.ID {
		t.Fatalf("open sessions of the revoked grant = %v, %v; want the pending %s", sessionIDs(got), err, sess.ID)
	}
	wantErr(t, lateErr, ErrAlreadyEnded)
	// Ending it commits it first.
	term, err := s.TerminateSession(sess.ID, time.Time{}, Audit{Actor: "jitd", Reason: "grant revoked"})
	if err != nil || term.State != grant.SessionTerminated {
		t.Fatalf("terminate pending session: %+v, %v", term, err)
	}
	if n := storedSessions(t, s); n != 1 {
		t.Fatalf("%d sessions stored, want 1", n)
	}
}

// Open commits what a killed jitd left pending, skips a torn last line,
// never commits one session twice, and empties the file.
func TestPendingSessionsReplay(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	s := openWith(t, dir, Options{Now: c.Now, RuntimeDir: run})
	g := mustCreate(t, s, sudoGrant("alice", c.Now().Add(time.Hour)))
	committed, err := s.OpenSession(sudoSession("alice", g.ID, 99), Audit{Actor: "root"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var lines []string
	var want []string
	for i, id := range []string{"s-0000000a", "s-0000000b", committed.ID} {
		sess := sudoSession("alice", g.ID, 200+i)
		sess.ID, sess.State, sess.StartedAt = id, grant.SessionOpen, c.Now()
		b, err := json.Marshal(pendingEntry{Session: sess, Actor: "root", Fields: map[string]string{"client_pid": "7"}})
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
		want = append(want, id)
	}
	lines = append(lines, lines[0])                                                // the same entry twice
	body := strings.Join(lines, "\n") + "\n" + `{"session":{"id":"s-0000000c","ki` // torn
	path := pendingPath(run, filepath.Join(dir, FileName))
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	s = openWith(t, dir, Options{Now: c.Now, RuntimeDir: run})
	if replayed, unreadable := s.SessionRecovery(); replayed != 3 || unreadable != 1 {
		t.Fatalf("SessionRecovery = %d replayed, %d unreadable; want 3, 1", replayed, unreadable)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("pending file after replay: %v, %v", fi, err)
	}
	if n := storedSessions(t, s); n != 3 {
		t.Fatalf("%d sessions stored, want 3", n)
	}
	got, err := s.OpenSessionsForGrant(g.ID)
	if err != nil || !slices.Equal(sessionIDs(got), slices.Sorted(slices.Values(want))) {
		t.Fatalf("open sessions after replay: %v, %v; want %v", sessionIDs(got), err, want)
	}
	recs, err := s.AuditSince(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	opened := map[string]int{}
	for _, r := range recs {
		if r.Event == EventSessionOpened {
			opened[r.SessionID]++
			if r.SessionID == "s-0000000a" && (r.Actor != "root" || r.Fields["client_pid"] != "7") {
				t.Errorf("replayed record %+v lost its audit details", r)
			}
		}
	}
	for _, id := range want {
		if opened[id] != 1 {
			t.Errorf("session %s has %d opened records, want 1", id, opened[id])
		}
	}
	if _, err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	checkIndexes(t, s)
}

// A pending file that is a symlink, or a runtime directory others may
// write, is refused: root would write through them.
func TestPendingRefusesUnsafePlaces(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), pendingPath(run, filepath.Join(dir, FileName))); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{RuntimeDir: run}); err == nil {
		t.Fatal("Open followed a symlinked pending file")
	}
	open := filepath.Join(dir, "open")
	if err := os.MkdirAll(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{RuntimeDir: open})
	if err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("Open with a world-writable runtime directory: %v", err)
	}
	if errors.Is(err, ErrLocked) {
		t.Fatal("the failed Open kept the database locked")
	}
}

// A registration that cannot be written to the pending file is committed
// directly rather than refused.
func TestPendingWriteFailureCommitsDirectly(t *testing.T) {
	s, c, _ := openPendingTest(t)
	g := mustCreate(t, s, sudoGrant("alice", c.Now().Add(time.Hour)))
	ro, err := os.Open(s.pending.path)
	if err != nil {
		t.Fatal(err)
	}
	s.pending.mu.Lock()
	rw := s.pending.file
	s.pending.file = ro // writes fail (EBADF)
	s.pending.mu.Unlock()
	sess, err := s.OpenSession(sudoSession("alice", g.ID, 100), Audit{Actor: "root"})
	s.pending.mu.Lock()
	s.pending.file = rw
	s.pending.mu.Unlock()
	ro.Close()
	if err != nil {
		t.Fatalf("OpenSession with an unwritable pending file: %v", err)
	}
	if n := storedSessions(t, s); n != 1 {
		t.Fatalf("%d sessions stored right after the fallback, want 1", n)
	}
	if got, err := s.GetSession(sess.ID); err != nil || got.State != grant.SessionOpen {
		t.Fatalf("GetSession: %+v, %v", got, err)
	}
}
