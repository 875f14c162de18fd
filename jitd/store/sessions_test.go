package store

import (
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/jitpam/jit/jitd/grant"
)

func sudoSession(user, grantID string, pid int) grant.Session {
	return grant.Session{
		Kind: grant.KindSudo, User: user, GrantID: grantID, RunAs: "root",
		Command: "/usr/bin/systemctl restart nginx", TTY: "/dev/pts/3", PID: pid, PIDStart: 123456,
	}
}

// TestSessions runs once with sessions committed before OpenSession
// returns, and once with a runtime directory and a commit delay longer
// than the test, where every registration and end is read while still
// pending, and read again from the database once committed.
func TestSessions(t *testing.T) {
	t.Run("committed", func(t *testing.T) { testSessions(t, false) })
	t.Run("pending", func(t *testing.T) { testSessions(t, true) })
}

func testSessions(t *testing.T, pending bool) {
	s, c := openTest(t)
	if pending {
		dir := t.TempDir()
		s = openWith(t, dir, Options{Now: c.Now, RuntimeDir: filepath.Join(dir, "run"), SessionCommitDelay: time.Hour})
	}
	g := mustCreate(t, s, sudoGrant("alice", c.Now().Add(time.Hour)))
	other := mustCreate(t, s, sudoGrant("alice", c.Now().Add(time.Hour)))

	s1, err := s.OpenSession(sudoSession("alice", g.ID, 100), Audit{Actor: "root"})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^s-[0-9a-f]{8}$`).MatchString(s1.ID) || s1.State != grant.SessionOpen || !s1.StartedAt.Equal(c.Now()) {
		t.Fatalf("opened %+v", s1)
	}
	s2, err := s.OpenSession(sudoSession("alice", g.ID, 101), Audit{Actor: "root"})
	if err != nil {
		t.Fatal(err)
	}
	s3, err := s.OpenSession(sudoSession("alice", other.ID, 102), Audit{Actor: "root"})
	if err != nil {
		t.Fatal(err)
	}
	// A session a standing rule allowed has no grant.
	rule := grant.Session{Kind: grant.KindLogin, User: "bob", RuleName: "oncall-login", Service: "sshd", RHost: "10.0.0.1", PID: 200}
	s4, err := s.OpenSession(rule, Audit{Actor: "root"})
	if err != nil {
		t.Fatal(err)
	}
	checkIndexes(t, s)

	for name, sess := range map[string]grant.Session{
		"no pid":        sudoSession("alice", g.ID, 0),
		"other's grant": sudoSession("bob", g.ID, 1),
		"wrong kind":    {Kind: grant.KindLogin, User: "alice", GrantID: g.ID, PID: 1},
		"closed":        {Kind: grant.KindSudo, User: "alice", PID: 1, State: grant.SessionClosed},
	} {
		if _, err := s.OpenSession(sess, Audit{Actor: "root"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	_, err = s.OpenSession(sudoSession("alice", "g-00000000", 1), Audit{Actor: "root"})
	wantErr(t, err, ErrNotFound)

	check := func(name string, got []grant.Session, err error, want ...grant.Session) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if g, w := sessionIDs(got), sessionIDs(want); !slices.Equal(g, w) {
			t.Errorf("%s = %v, want %v", name, g, w)
		}
	}
	got, err := s.OpenSessionsForGrant(g.ID)
	check("OpenSessionsForGrant", got, err, s1, s2)
	got, err = s.OpenSessions()
	check("OpenSessions", got, err, s1, s2, s3, s4)
	if pending {
		if n := storedSessions(t, s); n != 0 {
			t.Fatalf("%d sessions in the database while their commit is held back", n)
		}
		got, err = s.ListSessions(SessionFilter{User: "alice", OpenOnly: true})
		check("ListSessions pending", got, err, s1, s2, s3)
		if one, err := s.GetSession(s2.ID); err != nil || one.PID != 101 {
			t.Fatalf("GetSession(pending %s) = %+v, %v", s2.ID, one, err)
		}
		if cnt, err := s.Counts(); err != nil || cnt.OpenSessions != 4 || cnt.Sessions != 4 {
			t.Fatalf("Counts with 4 pending sessions: %+v, %v", cnt, err)
		}
		// s3 and s4 are read from the database from here on, s1 and s2
		// with their ends pending over it.
		if err := s.pending.commit(); err != nil {
			t.Fatal(err)
		}
	}

	exit := 3
	c.Advance(time.Minute)
	closed, err := s.CloseSession(s1.ID, &exit, time.Time{}, Audit{Actor: "root", Reason: "command exited"})
	if err != nil {
		t.Fatal(err)
	}
	if closed.State != grant.SessionClosed || closed.ExitStatus == nil || *closed.ExitStatus != 3 || !closed.EndedAt.Equal(c.Now()) {
		t.Fatalf("closed %+v", closed)
	}
	_, err = s.CloseSession(s1.ID, nil, time.Time{}, Audit{Actor: "root"})
	wantErr(t, err, ErrAlreadyEnded)
	_, err = s.TerminateSession(s1.ID, time.Time{}, Audit{Actor: "jitd"})
	var ae *AlreadyEndedError
	if !errors.As(err, &ae) || ae.What != "session" || ae.State != string(grant.SessionClosed) {
		t.Fatalf("terminate closed session: %v", err)
	}

	// Ending the grant: jitd terminates what runs under it.
	if _, err := s.EndGrant(g.ID, grant.StateRevoked, time.Time{}, lead("stop")); err != nil {
		t.Fatal(err)
	}
	got, err = s.OpenSessionsForGrant(g.ID)
	check("OpenSessionsForGrant after revoke", got, err, s2)
	term, err := s.TerminateSession(s2.ID, time.Time{}, Audit{Actor: "jitd", Reason: "grant revoked"})
	if err != nil || term.State != grant.SessionTerminated || term.EndReason != "grant revoked" {
		t.Fatalf("terminate: %+v %v", term, err)
	}
	got, err = s.OpenSessionsForGrant(g.ID)
	check("OpenSessionsForGrant after terminate", got, err)

	// No new session may start under the ended grant.
	_, err = s.OpenSession(sudoSession("alice", g.ID, 103), Audit{Actor: "root"})
	wantErr(t, err, ErrAlreadyEnded)

	lists := func(when string) {
		t.Helper()
		got, err = s.ListSessions(SessionFilter{})
		check("ListSessions"+when, got, err, s1, s2, s3, s4)
		got, err = s.ListSessions(SessionFilter{OpenOnly: true})
		check("ListSessions open"+when, got, err, s3, s4)
		got, err = s.ListSessions(SessionFilter{User: "alice"})
		check("ListSessions alice"+when, got, err, s1, s2, s3)
		got, err = s.ListSessions(SessionFilter{GrantID: g.ID})
		check("ListSessions grant"+when, got, err, s1, s2)
		got, err = s.ListSessions(SessionFilter{OpenOnly: true, GrantID: other.ID})
		check("ListSessions open grant"+when, got, err, s3)
		got, err = s.ListSessions(SessionFilter{Kind: grant.KindLogin})
		check("ListSessions login"+when, got, err, s4)
		got, err = s.OpenSessions()
		check("OpenSessions"+when, got, err, s3, s4)
		if cnt, err := s.Counts(); err != nil || cnt.OpenSessions != 2 || cnt.Sessions != 4 {
			t.Fatalf("Counts%s: %+v, %v; want 2 open of 4", when, cnt, err)
		}
		if one, err := s.GetSession(s2.ID); err != nil || one.State != grant.SessionTerminated {
			t.Fatalf("GetSession(%s)%s = %+v, %v", s2.ID, when, one, err)
		}
	}
	lists("")
	if pending {
		if got := storedSession(t, s, s1.ID); got.State != grant.SessionOpen {
			t.Fatalf("%s is %s in the database while its end is pending", s1.ID, got.State)
		}
		if err := s.pending.commit(); err != nil {
			t.Fatal(err)
		}
		if n := storedSessions(t, s); n != 4 {
			t.Fatalf("%d sessions in the database after the commit, want 4", n)
		}
		lists(" after the commit")
		if got := storedSession(t, s, s1.ID); got.State != grant.SessionClosed || got.ExitStatus == nil || *got.ExitStatus != 3 {
			t.Fatalf("%s in the database after the commit: %+v", s1.ID, got)
		}
	}
	checkIndexes(t, s)

	if _, err := s.OpenSessionsForGrant(""); !errors.Is(err, ErrInvalid) {
		t.Errorf("OpenSessionsForGrant(\"\"): %v", err)
	}
	one, err := s.GetSession(s4.ID)
	if err != nil {
		t.Fatal(err)
	}
	equalJSON(t, one, s4)

	recs, _ := s.AuditSince(time.Time{})
	var events []Event
	for _, r := range recs {
		if r.SessionID != "" {
			events = append(events, r.Event)
		}
	}
	want := []Event{EventSessionOpened, EventSessionOpened, EventSessionOpened, EventSessionOpened, EventSessionClosed, EventSessionTerminated}
	if !slices.Equal(events, want) {
		t.Fatalf("session audit events %v, want %v", events, want)
	}
}

// A grant past its expiry takes no new session, though the sweep has not
// marked it expired yet: in the database and pending alike.
func TestSessionUnderExpiredGrant(t *testing.T) {
	for _, pending := range []bool{false, true} {
		s, c := openTest(t)
		if pending {
			dir := t.TempDir()
			s = openWith(t, dir, Options{Now: c.Now, RuntimeDir: filepath.Join(dir, "run")})
		}
		g := mustCreate(t, s, sudoGrant("alice", c.Now().Add(time.Hour)))
		c.Advance(time.Hour)
		_, err := s.OpenSession(sudoSession("alice", g.ID, 100), Audit{Actor: "root"})
		var ae *AlreadyEndedError
		if !errors.As(err, &ae) || ae.State != string(grant.StateExpired) {
			t.Errorf("pending=%v: session under an expired grant: %v", pending, err)
		}
	}
}

// storedSessions counts the sessions in the database itself.
func storedSessions(t testing.TB, s *Store) int {
	t.Helper()
	var n int
	if err := s.view(func(tx *bolt.Tx) error {
		n = tx.Bucket([]byte(bucketSessions)).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}
