package store

import (
	"errors"
	"testing"
)

func TestAppendAuditBatch(t *testing.T) {
	s, _ := openTest(t)
	var hooked []AuditRecord
	s.onAudit = func(r AuditRecord) { hooked = append(hooked, r) }
	h := head(t, s)

	if out, err := s.AppendAuditBatch(nil); out != nil || err != nil {
		t.Fatalf("empty batch: %v %v", out, err)
	}
	batch := []AuditRecord{
		{Event: "decision.allow", Actor: "root", User: "alice"},
		{Event: "decision.deny", Actor: "root", User: "bob", Reason: "no grant"},
		{Event: "decision.allow", Actor: "root", User: "carol"},
	}
	out, err := s.AppendAuditBatch(batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || len(hooked) != 3 {
		t.Fatalf("returned %d records, hook saw %d", len(out), len(hooked))
	}
	for i, r := range out {
		if r.Seq != h+uint64(i)+1 || r.User != batch[i].User || hooked[i].Hash != r.Hash {
			t.Fatalf("record %d: %+v", i, r)
		}
		if i > 0 && r.PrevHash != out[i-1].Hash {
			t.Fatalf("record %d does not link to record %d", i, i-1)
		}
	}

	// One bad record refuses the whole batch: nothing written, nothing hooked.
	bad := []AuditRecord{{Event: "decision.allow", Actor: "root"}, {Event: "Bad Event"}}
	if _, err := s.AppendAuditBatch(bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad batch: %v, want ErrInvalid", err)
	}
	if head(t, s) != h+3 || len(hooked) != 3 {
		t.Fatalf("a refused batch left records (head %d, hook saw %d)", head(t, s), len(hooked))
	}
	if _, err := s.Verify(); err != nil {
		t.Fatal(err)
	}
}
