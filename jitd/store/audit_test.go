package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/jitpam/jit/jitd/grant"
)

// chainStore makes a closed store with n records (the genesis record plus
// n-1 decisions) and returns its directory.
func chainStore(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	c := newClock()
	s := openAt(t, dir, c)
	for i := 2; i <= n; i++ {
		c.Advance(time.Second)
		if _, err := s.AppendAudit(AuditRecord{Event: "decision.allow", Actor: "root", User: fmt.Sprintf("user%d", i),
			Fields: map[string]string{"command": "/bin/true"}}); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := s.Verify(); err != nil || res.Records != uint64(n) || res.HeadSeq != uint64(n) {
		t.Fatalf("fresh chain: %+v %v", res, err)
	}
	s.Close()
	return dir
}

func rawRecord(t testing.TB, tx *bolt.Tx, seq uint64) AuditRecord {
	t.Helper()
	var r AuditRecord
	if err := json.Unmarshal(tx.Bucket([]byte(bucketAudit)).Get(be64(seq)), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func putRecord(t testing.TB, tx *bolt.Tx, key uint64, r AuditRecord) {
	t.Helper()
	v, _ := json.Marshal(r)
	if err := tx.Bucket([]byte(bucketAudit)).Put(be64(key), v); err != nil {
		t.Fatal(err)
	}
}

func verifyBreak(t *testing.T, dir string, seq uint64, kind BreakKind) {
	t.Helper()
	s := openAt(t, dir, newClock())
	_, err := s.Verify()
	var ce *ChainError
	if !errors.As(err, &ce) || !errors.Is(err, ErrAuditBroken) {
		t.Fatalf("Verify = %v, want a *ChainError", err)
	}
	if ce.Seq != seq || ce.Kind != kind {
		t.Fatalf("Verify reported %v; want seq %d, %s", err, seq, kind)
	}
	t.Logf("%v", err)
}

func TestAuditVerifyIntactAndFields(t *testing.T) {
	s, c := openTest(t)
	recs, _ := s.AuditRange(0, 0)
	if len(recs) != 1 || recs[0].Event != EventStoreCreated || recs[0].Seq != 1 || recs[0].PrevHash != genesisHash {
		t.Fatalf("genesis %+v", recs)
	}
	var hooked []AuditRecord
	s.onAudit = func(r AuditRecord) { hooked = append(hooked, r) }
	rec, err := s.AppendAudit(AuditRecord{
		Event: "decision.allow", Actor: "root", User: "alice", GrantID: "g-1", SessionID: "s-2", Reason: "INC",
		Fields: map[string]string{"command": "/usr/bin/systemctl restart nginx", "runas": "root"},
		Seq:    99, Hash: "forged",
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Seq != 2 || rec.PrevHash != recs[0].Hash || rec.Hash == "forged" || !rec.Time.Equal(c.Now()) {
		t.Fatalf("appended %+v", rec)
	}
	if len(hooked) != 1 || hooked[0].Hash != rec.Hash {
		t.Fatalf("OnAudit saw %+v", hooked)
	}
	jf := rec.JournalFields()
	for k, v := range map[string]string{
		"JIT_EVENT": "decision.allow", "JIT_ACTOR": "root", "JIT_USER": "alice", "JIT_GRANT_ID": "g-1",
		"JIT_SESSION_ID": "s-2", "JIT_REASON": "INC", "JIT_COMMAND": "/usr/bin/systemctl restart nginx",
		"JIT_RUNAS": "root", "JIT_AUDIT_SEQ": "2", "JIT_AUDIT_HASH": rec.Hash, "JIT_AUDIT_PREV_HASH": rec.PrevHash,
	} {
		if jf[k] != v {
			t.Errorf("JournalFields[%s] = %q, want %q", k, jf[k], v)
		}
	}
	if _, ok := jf["JIT_REQUEST_ID"]; ok {
		t.Error("empty field exported to the journal")
	}

	for name, bad := range map[string]AuditRecord{
		"no event":      {Actor: "root"},
		"bad event":     {Event: "Decision Allow"},
		"bad field":     {Event: "x", Fields: map[string]string{"Command": "x"}},
		"digit field":   {Event: "x", Fields: map[string]string{"1x": "x"}},
		"control actor": {Event: "x", Actor: "a\nb"},
	} {
		if _, err := s.AppendAudit(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if len(hooked) != 1 {
		t.Errorf("OnAudit called for refused records")
	}

	res, err := s.Verify()
	if err != nil || res.Records != 2 || res.HeadSeq != 2 || res.HeadHash != rec.Hash {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
}

func TestAuditSinceAndRange(t *testing.T) {
	s, c := openTest(t)
	t0 := c.Now()
	for i := range 5 {
		c.Advance(time.Minute)
		if i == 3 {
			c.Advance(-10 * time.Minute) // the clock steps back
		}
		if _, err := s.AppendAudit(AuditRecord{Event: "tick", Actor: "jitd", Fields: map[string]string{"i": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	// Records 2..6 were stamped t0+1m, +2m, +3m, -6m, -5m.
	got, err := s.AuditSince(t0.Add(2 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Seq != 3 || got[1].Seq != 4 {
		t.Fatalf("AuditSince = %+v", got)
	}
	got, _ = s.AuditSince(t0.Add(-6 * time.Minute))
	if len(got) != 6 || got[0].Seq != 1 || got[5].Seq != 6 { // in sequence order, not time order
		t.Fatalf("AuditSince after clock step = %d records", len(got))
	}
	got, _ = s.AuditSince(time.Time{})
	if len(got) != 6 {
		t.Fatalf("AuditSince(zero) = %d records", len(got))
	}
	got, _ = s.AuditRange(2, 4)
	if len(got) != 3 || got[0].Seq != 2 || got[2].Seq != 4 {
		t.Fatalf("AuditRange(2,4) = %+v", got)
	}
	got, _ = s.AuditRange(5, 0)
	if len(got) != 2 {
		t.Fatalf("AuditRange(5,0) = %+v", got)
	}
}

func TestAuditVerifyDetectsTampering(t *testing.T) {
	const n = 6
	path := func(dir string) string { return dir + "/" + FileName }

	t.Run("edited record", func(t *testing.T) {
		dir := chainStore(t, n)
		tamper(t, path(dir), func(tx *bolt.Tx) error {
			r := rawRecord(t, tx, 3)
			r.User = "mallory"
			putRecord(t, tx, 3, r)
			return nil
		})
		verifyBreak(t, dir, 3, BreakEdited)
	})
	t.Run("edited field", func(t *testing.T) {
		dir := chainStore(t, n)
		tamper(t, path(dir), func(tx *bolt.Tx) error {
			r := rawRecord(t, tx, 4)
			r.Fields["command"] = "/bin/sh"
			putRecord(t, tx, 4, r)
			return nil
		})
		verifyBreak(t, dir, 4, BreakEdited)
	})
	t.Run("added unhashed field", func(t *testing.T) {
		dir := chainStore(t, n)
		tamper(t, path(dir), func(tx *bolt.Tx) error {
			v := tx.Bucket([]byte(bucketAudit)).Get(be64(2))
			nv := strings.Replace(string(v), "{", `{"note":"harmless",`, 1)
			return tx.Bucket([]byte(bucketAudit)).Put(be64(2), []byte(nv))
		})
		verifyBreak(t, dir, 2, BreakUndecodable)
	})
	t.Run("edited and rehashed record", func(t *testing.T) {
		dir := chainStore(t, n)
		tamper(t, path(dir), func(tx *bolt.Tx) error {
			r := rawRecord(t, tx, 3)
			r.User = "mallory"
			r.Hash = r.computeHash()
			putRecord(t, tx, 3, r)
			return nil
		})
		// Record 3 is self-consistent now; record 4 no longer points at it.
		verifyBreak(t, dir, 4, BreakPrevHash)
	})
	t.Run("deleted record", func(t *testing.T) {
		dir := chainStore(t, n)
		tamper(t, path(dir), func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucketAudit)).Delete(be64(3)) })
		verifyBreak(t, dir, 3, BreakMissing)
	})
	t.Run("deleted records", func(t *testing.T) {
		dir := chainStore(t, n)
		tamper(t, path(dir), func(tx *bolt.Tx) error {
			for _, k := range []uint64{2, 3, 4} {
				if err := tx.Bucket([]byte(bucketAudit)).Delete(be64(k)); err != nil {
					return err
				}
			}
			return nil
		})
		verifyBreak(t, dir, 2, BreakMissing)
	})
	t.Run("deleted first record", func(t *testing.T) {
		dir := chainStore(t, n)
		tamper(t, path(dir), func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucketAudit)).Delete(be64(1)) })
		verifyBreak(t, dir, 1, BreakMissing)
	})
	t.Run("deleted last record", func(t *testing.T) {
		dir := chainStore(t, n)
		tamper(t, path(dir), func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucketAudit)).Delete(be64(n)) })
		verifyBreak(t, dir, n, BreakHead)
	})
	t.Run("deleted and renumbered", func(t *testing.T) {
		// Closing the gap by moving later records down and renumbering them
		// changes what their hashes cover.
		dir := chainStore(t, n)
		tamper(t, path(dir), func(tx *bolt.Tx) error {
			for k := uint64(3); k < n; k++ {
				r := rawRecord(t, tx, k+1)
				r.Seq = k
				putRecord(t, tx, k, r)
			}
			return tx.Bucket([]byte(bucketAudit)).Delete(be64(n))
		})
		verifyBreak(t, dir, 3, BreakEdited)
	})
	t.Run("reordered records", func(t *testing.T) {
		dir := chainStore(t, n)
		tamper(t, path(dir), func(tx *bolt.Tx) error {
			r3, r4 := rawRecord(t, tx, 3), rawRecord(t, tx, 4)
			putRecord(t, tx, 3, r4)
			putRecord(t, tx, 4, r3)
			return nil
		})
		verifyBreak(t, dir, 3, BreakMisplaced)
	})
	t.Run("reordered and renumbered", func(t *testing.T) {
		// Swapping records and rewriting their numbers and hashes, as
		// someone who knows the encoding would, breaks the prev links.
		dir := chainStore(t, n)
		tamper(t, path(dir), func(tx *bolt.Tx) error {
			r3, r4 := rawRecord(t, tx, 3), rawRecord(t, tx, 4)
			r3.Seq, r4.Seq = 4, 3
			r3.Hash, r4.Hash = r3.computeHash(), r4.computeHash()
			putRecord(t, tx, 3, r4)
			putRecord(t, tx, 4, r3)
			return nil
		})
		verifyBreak(t, dir, 3, BreakPrevHash)
	})
	t.Run("replaced last record", func(t *testing.T) {
		dir := chainStore(t, n)
		tamper(t, path(dir), func(tx *bolt.Tx) error {
			r := rawRecord(t, tx, n)
			r.User = "nobody"
			r.Hash = r.computeHash()
			putRecord(t, tx, n, r)
			return nil
		})
		verifyBreak(t, dir, n, BreakHead)
	})
}

// A runas group is part of what a grant or request allows, so its audit
// record names it; a grant without one has no such field.
func TestAuditRecordsRunAsGroup(t *testing.T) {
	s, c := openTest(t)
	g := sudoGrant("alice", c.Now().Add(time.Hour))
	g.RunAsGroup = "adm"
	mustCreate(t, s, g)
	mustCreate(t, s, sudoGrant("bob", c.Now().Add(time.Hour)))
	r := grant.Request{User: "carol", Kind: grant.KindSudo, RunAs: "root", RunAsGroup: "adm",
		Commands: []string{"/usr/bin/id"}, Duration: time.Hour, Reason: "INC-9", CreatedAt: c.Now(), State: grant.RequestPending}
	if _, err := s.CreateRequest(r, lead("INC-9")); err != nil {
		t.Fatal(err)
	}
	recs, err := s.AuditRange(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, rec := range recs {
		if rec.Event == EventGrantCreated || rec.Event == EventRequestCreated {
			got[string(rec.Event)+" "+rec.User] = rec.Fields["runas_group"]
		}
	}
	want := map[string]string{"grant.created alice": "adm", "grant.created bob": "", "request.created carol": "adm"}
	if !maps.Equal(got, want) {
		t.Fatalf("runas_group in audit records: %v, want %v", got, want)
	}
}
