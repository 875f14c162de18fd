package store

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/jitpam/jit/jitd/grant"
)

func TestOpenSecondFailsFastWithErrLocked(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, newClock())
	for _, timeout := range []time.Duration{200 * time.Millisecond, 0} {
		start := time.Now()
		s2, err := Open(dir, Options{LockTimeout: timeout})
		took := time.Since(start)
		if err == nil {
			s2.Close()
			t.Fatal("second Open on the same directory succeeded")
		}
		wantErr(t, err, ErrLocked)
		if !strings.Contains(err.Error(), "another jitd holds the lock") || !strings.Contains(err.Error(), dir) {
			t.Errorf("message does not say what happened: %v", err)
		}
		limit := timeout
		if limit == 0 {
			limit = DefaultLockTimeout
		}
		if took > limit+500*time.Millisecond {
			t.Errorf("second Open took %s with lock timeout %s", took, limit)
		}
		t.Logf("second Open failed after %s: %v", took.Round(time.Millisecond), err)
	}
	// The first store is unharmed and, once closed, the lock is free.
	if _, err := s.CreateGrant(sudoGrant("alice", time.Now().Add(time.Hour*24*365*10)), lead("x")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s3, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s3.Close()
}

func TestFileAndDirectoryModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "jitd")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %04o, want 0700", fi.Mode().Perm())
	}
	path := filepath.Join(dir, FileName)
	fi, _ = os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database mode %04o, want 0600", fi.Mode().Perm())
	}
	if s.Path() != path {
		t.Errorf("Path() = %s", s.Path())
	}
	s.Close()

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, _ = os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database mode after reopen %04o, want 0600", fi.Mode().Perm())
	}

	// An existing empty file with loose bits is initialised and tightened.
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, FileName), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if fi, _ := os.Stat(filepath.Join(dir2, FileName)); fi.Mode().Perm() != 0o600 {
		t.Errorf("pre-existing file mode %04o, want 0600", fi.Mode().Perm())
	}
}

func TestOpenRefusesUnsafePaths(t *testing.T) {
	loose := t.TempDir()
	if err := os.Chmod(loose, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(loose, Options{}); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("world-writable directory: %v", err)
	}

	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere.db")
	if err := os.Symlink(target, filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Error("Open followed a symlink")
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Error("symlink target was created")
	}
	if _, err := Open("", Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty dir: %v", err)
	}
}

func TestSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, newClock())
	path := s.Path()
	s.Close()

	tamper(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchema), be64(SchemaVersion+1))
	})
	_, err := Open(dir, Options{})
	wantErr(t, err, ErrSchemaTooNew)
	if !strings.Contains(err.Error(), "schema version 2") || !strings.Contains(err.Error(), "up to 1") {
		t.Errorf("message does not name both versions: %v", err)
	}
	t.Logf("newer schema: %v", err)

	// A bbolt file of someone else's is not taken over.
	other := t.TempDir()
	db, err := bolt.Open(filepath.Join(other, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("etcd")); return err })
	db.Close()
	_, err = Open(other, Options{})
	wantErr(t, err, ErrForeignDB)

	// A vanished bucket is damage, not something to recreate silently.
	dir3 := t.TempDir()
	s = openAt(t, dir3, newClock())
	s.Close()
	tamper(t, s.Path(), func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte(bucketGrants)) })
	_, err = Open(dir3, Options{})
	wantErr(t, err, ErrForeignDB)
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	s := openAt(t, dir, c)
	g1 := mustCreate(t, s, sudoGrant("alice", c.Now().Add(time.Hour)))
	g2 := mustCreate(t, s, sudoGrant("bob", c.Now().Add(2*time.Hour)))
	if _, err := s.EndGrant(g2.ID, grant.StateRevoked, time.Time{}, lead("x")); err != nil {
		t.Fatal(err)
	}
	r := mustRequest(t, s, "carol")
	sess, err := s.OpenSession(sudoSession("alice", g1.ID, 42), Audit{Actor: "root"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(AuditRecord{Event: "decision.allow", Actor: "root", User: "alice", GrantID: g1.ID}); err != nil {
		t.Fatal(err)
	}
	grants, _ := s.ListGrants(GrantFilter{IncludeEnded: true})
	audit, _ := s.AuditRange(0, 0)
	s.Close()

	s = openAt(t, dir, c)
	grants2, _ := s.ListGrants(GrantFilter{IncludeEnded: true})
	audit2, _ := s.AuditRange(0, 0)
	if !reflect.DeepEqual(grants, grants2) {
		t.Errorf("grants changed across reopen:\n%+v\n%+v", grants, grants2)
	}
	if !reflect.DeepEqual(audit, audit2) {
		t.Errorf("audit changed across reopen")
	}
	if got, err := s.GetRequest(r.ID); err != nil || got.State != grant.RequestPending {
		t.Errorf("request after reopen: %+v %v", got, err)
	}
	if open, _ := s.OpenSessions(); len(open) != 1 || open[0].ID != sess.ID {
		t.Errorf("open sessions after reopen: %+v", open)
	}
	if e, ok, _ := s.NextExpiry(); !ok || e.GrantID != g1.ID {
		t.Errorf("next expiry after reopen: %+v", e)
	}
	res, err := s.Verify()
	if err != nil || res.Records != uint64(len(audit)) {
		t.Fatalf("Verify after reopen: %+v %v", res, err)
	}
	// The chain continues where it stopped.
	rec, err := s.AppendAudit(AuditRecord{Event: "jitd.started", Actor: "jitd"})
	if err != nil || rec.Seq != uint64(len(audit))+1 || rec.PrevHash != audit[len(audit)-1].Hash {
		t.Fatalf("append after reopen: %+v %v", rec, err)
	}
	checkIndexes(t, s)
	counts, err := s.Counts()
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{Grants: 2, ActiveGrants: 1, Requests: 1, PendingRequests: 1, Sessions: 1, OpenSessions: 1, AuditSeq: rec.Seq}
	if counts != want {
		t.Errorf("Counts = %+v, want %+v", counts, want)
	}
}

func TestPrune(t *testing.T) {
	s, c := openTest(t)
	start := c.Now()
	old := mustCreate(t, s, sudoGrant("alice", start.Add(time.Hour)))
	busy := mustCreate(t, s, sudoGrant("bob", start.Add(time.Hour)))
	active := mustCreate(t, s, sudoGrant("carol", start.Add(48*time.Hour)))
	oldSess, _ := s.OpenSession(sudoSession("alice", old.ID, 10), Audit{Actor: "root"})
	busySess, _ := s.OpenSession(sudoSession("bob", busy.ID, 11), Audit{Actor: "root"})
	denied := mustRequest(t, s, "dave")
	if _, err := s.DenyRequest(denied.ID, lead("no")); err != nil {
		t.Fatal(err)
	}
	approved := mustRequest(t, s, "erin")
	_, erinG, err := s.ApproveRequest(approved.ID, grant.Grant{}, lead("ok"))
	if err != nil {
		t.Fatal(err)
	}
	pending := mustRequest(t, s, "frank")
	if _, err := s.CloseSession(oldSess.ID, nil, time.Time{}, Audit{Actor: "root"}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []grant.Grant{old, busy} {
		if _, err := s.EndGrant(g.ID, grant.StateRevoked, time.Time{}, lead("x")); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(24 * time.Hour)
	audit := head(t, s)

	st, err := s.Prune(c.Now().Add(-time.Hour), lead("retention"))
	if err != nil {
		t.Fatal(err)
	}
	// old grant, its closed session and the denied request go; busy has an
	// open session, active is active, erin's grant still exists (active).
	if st != (PruneStats{Grants: 1, Sessions: 1, Requests: 1}) {
		t.Fatalf("Prune = %+v", st)
	}
	_, err = s.GetGrant(old.ID)
	wantErr(t, err, ErrNotFound)
	_, err = s.GetSession(oldSess.ID)
	wantErr(t, err, ErrNotFound)
	_, err = s.GetRequest(denied.ID)
	wantErr(t, err, ErrNotFound)
	for _, id := range []string{busy.ID, active.ID, erinG.ID} {
		if _, err := s.GetGrant(id); err != nil {
			t.Errorf("kept grant %s: %v", id, err)
		}
	}
	if _, err := s.GetSession(busySess.ID); err != nil {
		t.Error(err)
	}
	for _, id := range []string{approved.ID, pending.ID} {
		if _, err := s.GetRequest(id); err != nil {
			t.Errorf("kept request %s: %v", id, err)
		}
	}
	// Audit records stay; the prune itself is one more.
	if h := head(t, s); h != audit+1 {
		t.Fatalf("audit head %d, want %d", h, audit+1)
	}
	if _, err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	checkIndexes(t, s)
	// Retired ids are never reissued.
	err = s.view(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte(bucketRetired)).Get([]byte(old.ID)) == nil {
			return errors.New("pruned grant id not retired")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
