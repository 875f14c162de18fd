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

	bolt "go.etcd.io/bbolt"

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
	// Its end is pending too, and committed with its registration.
	term, err := s.TerminateSession(sess.ID, time.Time{}, Audit{Actor: "jitd", Reason: "grant revoked"})
	if err != nil || term.State != grant.SessionTerminated {
		t.Fatalf("terminate pending session: %+v, %v", term, err)
	}
	if got, err := s.OpenSessionsForGrant(g.ID); err != nil || len(got) != 0 {
		t.Fatalf("open sessions after the pending end = %v, %v; want none", sessionIDs(got), err)
	}
	if err := s.pending.commit(); err != nil {
		t.Fatal(err)
	}
	if got := storedSession(t, s, sess.ID); got.State != grant.SessionTerminated || got.EndReason != "grant revoked" {
		t.Fatalf("stored after the commit: %+v", got)
	}
}

// storedSession reads session id from the database itself.
func storedSession(t testing.TB, s *Store, id string) grant.Session {
	t.Helper()
	var sess grant.Session
	if err := s.view(func(tx *bolt.Tx) error {
		var err error
		sess, err = getSession(tx, id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return sess
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

	began := c.Now()
	c.Advance(7 * time.Minute) // jitd comes back a while later
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
			// Committed at the replay, the record still says when the
			// session began.
			if r.Fields["started_at"] != fmtTime(began) {
				t.Errorf("record of %s: started_at %q, want %q (its commit: %s)", r.SessionID, r.Fields["started_at"], fmtTime(began), r.Time)
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

// A registration or an end that cannot be written to the pending file is
// committed directly rather than refused.
func TestPendingWriteFailureCommitsDirectly(t *testing.T) {
	s, c, _ := openPendingTest(t)
	g := mustCreate(t, s, sudoGrant("alice", c.Now().Add(time.Hour)))
	unwritable := func(do func()) {
		t.Helper()
		ro, err := os.Open(s.pending.path)
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		s.pending.mu.Lock()
		rw := s.pending.file
		s.pending.file = ro // writes fail (EBADF)
		s.pending.mu.Unlock()
		do()
		s.pending.mu.Lock()
		s.pending.file = rw
		s.pending.mu.Unlock()
	}
	var sess grant.Session
	var err error
	unwritable(func() { sess, err = s.OpenSession(sudoSession("alice", g.ID, 100), Audit{Actor: "root"}) })
	if err != nil {
		t.Fatalf("OpenSession with an unwritable pending file: %v", err)
	}
	if n := storedSessions(t, s); n != 1 {
		t.Fatalf("%d sessions stored right after the fallback, want 1", n)
	}
	if got, err := s.GetSession(sess.ID); err != nil || got.State != grant.SessionOpen {
		t.Fatalf("GetSession: %+v, %v", got, err)
	}

	// A pending session whose end cannot be written: its registration is
	// committed first, then the end.
	pending, err := s.OpenSession(sudoSession("alice", g.ID, 101), Audit{Actor: "root"})
	if err != nil {
		t.Fatal(err)
	}
	exit := 1
	for _, id := range []string{sess.ID, pending.ID} {
		unwritable(func() { _, err = s.CloseSession(id, &exit, time.Time{}, Audit{Actor: "root"}) })
		if err != nil {
			t.Fatalf("CloseSession(%s) with an unwritable pending file: %v", id, err)
		}
		if got := storedSession(t, s, id); got.State != grant.SessionClosed || got.ExitStatus == nil || *got.ExitStatus != 1 {
			t.Fatalf("%s stored right after the fallback: %+v", id, got)
		}
	}
	_, err = s.CloseSession(pending.ID, &exit, time.Time{}, Audit{Actor: "root"})
	wantErr(t, err, ErrAlreadyEnded)
}

// Ends left pending are replayed in order after their registrations: an
// end of a session registered in the same file, an end of a session
// already in the database, a repeated end (applied once) and the end of a
// session the database does not have (nothing to apply).
func TestPendingEndsReplay(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	s := openWith(t, dir, Options{Now: c.Now, RuntimeDir: run})
	g := mustCreate(t, s, sudoGrant("alice", c.Now().Add(time.Hour)))
	stored, err := s.OpenSession(sudoSession("alice", g.ID, 99), Audit{Actor: "root"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	line := func(e pendingEntry) string {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	fresh := sudoSession("alice", g.ID, 100)
	fresh.ID, fresh.State, fresh.StartedAt = "s-0000000a", grant.SessionOpen, c.Now()
	closed := fresh
	exit := 5
	endSessionAs(&closed, grant.SessionClosed, &exit, c.Now().Add(time.Second), "command exited")
	terminated := stored
	endSessionAs(&terminated, grant.SessionTerminated, nil, c.Now().Add(2*time.Second), "grant revoked")
	unknown := terminated
	unknown.ID = "s-0000dead"
	lines := []string{
		line(pendingEntry{Session: fresh, Actor: "root"}),
		line(pendingEntry{Op: opEnd, Session: closed, Actor: "root", Reason: "command exited"}),
		line(pendingEntry{Op: opEnd, Session: terminated, Actor: "jitd", Reason: "grant revoked"}),
		line(pendingEntry{Op: opEnd, Session: terminated, Actor: "jitd", Reason: "grant revoked"}),
		line(pendingEntry{Op: opEnd, Session: unknown, Actor: "jitd", Reason: "grant revoked"}),
		line(pendingEntry{Op: "rewind", Session: fresh, Actor: "root"}), // an op this jitd does not know
	}
	body := strings.Join(lines, "\n") + "\n" + `{"op":"end","session":{"id":"s-0000000a","st` // torn
	path := pendingPath(run, filepath.Join(dir, FileName))
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	s = openWith(t, dir, Options{Now: c.Now, RuntimeDir: run})
	if replayed, unreadable := s.SessionRecovery(); replayed != 4 || unreadable != 2 {
		t.Fatalf("SessionRecovery = %d replayed, %d unreadable; want 4, 2", replayed, unreadable)
	}
	if got := storedSession(t, s, fresh.ID); got.State != grant.SessionClosed || got.ExitStatus == nil || *got.ExitStatus != 5 ||
		!got.EndedAt.Equal(closed.EndedAt) || got.EndReason != "command exited" {
		t.Fatalf("replayed close: %+v", got)
	}
	if got := storedSession(t, s, stored.ID); got.State != grant.SessionTerminated || got.EndReason != "grant revoked" || !got.EndedAt.Equal(terminated.EndedAt) {
		t.Fatalf("replayed termination: %+v", got)
	}
	if _, err := s.GetSession(unknown.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the end of an unknown session created it: %v", err)
	}
	recs, err := s.AuditSince(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	events := map[string][]Event{}
	for _, r := range recs {
		if r.SessionID != "" {
			events[r.SessionID] = append(events[r.SessionID], r.Event)
		}
	}
	want := map[string][]Event{
		stored.ID: {EventSessionOpened, EventSessionTerminated},
		fresh.ID:  {EventSessionOpened, EventSessionClosed},
	}
	for id, w := range want {
		if !slices.Equal(events[id], w) {
			t.Errorf("session %s audit events %v, want %v", id, events[id], w)
		}
	}
	if len(events) != len(want) {
		t.Errorf("audit records for sessions %v, want only %v and %v", events, stored.ID, fresh.ID)
	}
	if _, err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	checkIndexes(t, s)
}
