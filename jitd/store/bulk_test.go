package store

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

func TestCreateGrants(t *testing.T) {
	s, c := openTest(t)
	var hooked []AuditRecord
	s.onAudit = func(r AuditRecord) { hooked = append(hooked, r) }
	now := c.Now()
	h := head(t, s)

	if out, err := s.CreateGrants(nil, lead("empty")); out != nil || err != nil {
		t.Fatalf("empty batch: %v %v", out, err)
	}
	if head(t, s) != h {
		t.Fatal("an empty batch wrote an audit record")
	}

	const n = 500
	in := make([]grant.Grant, n)
	for i := range in {
		in[i] = sudoGrant(fmt.Sprintf("user%02d", i%50), now.Add(time.Hour+time.Duration(i)*time.Second))
	}
	in[7].Kind, in[7].Commands = grant.KindLogin, nil
	out, err := s.CreateGrants(in, lead("bulk"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != n || len(hooked) != n {
		t.Fatalf("returned %d grants, hook saw %d records; want %d", len(out), len(hooked), n)
	}
	seen := map[string]bool{}
	for i, g := range out {
		if seen[g.ID] {
			t.Fatalf("id %s handed out twice", g.ID)
		}
		seen[g.ID] = true
		if g.User != in[i].User || !g.ExpiresAt.Equal(in[i].ExpiresAt) || g.State != grant.StateActive || g.GrantedBy != "lead" || !g.CreatedAt.Equal(now) {
			t.Fatalf("grant %d: %+v", i, g)
		}
		if got, err := s.GetGrant(g.ID); err != nil || !reflect.DeepEqual(got, g) {
			t.Fatalf("GetGrant(%s) = %+v, %v\nreturned %+v", g.ID, got, err, g)
		}
		// One record per grant, in the order of the batch.
		if r := hooked[i]; r.Seq != h+uint64(i)+1 || r.Event != EventGrantCreated || r.GrantID != g.ID {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	if out[7].RunAs != "" || out[8].RunAs != grant.DefaultRunAs {
		t.Errorf("runas defaults: login %q, sudo %q", out[7].RunAs, out[8].RunAs)
	}
	if gs, err := s.GrantsForUser("user03"); err != nil || len(gs) != n/50 {
		t.Errorf("GrantsForUser(user03): %d grants, %v", len(gs), err)
	}
	if e, ok, err := s.NextExpiry(); err != nil || !ok || e.GrantID != out[0].ID {
		t.Errorf("NextExpiry = %+v %v %v, want %s", e, ok, err, out[0].ID)
	}
	checkIndexes(t, s)
	if res, err := s.Verify(); err != nil || res.HeadSeq != h+n {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
}

// A grant written in bulk leaves the same record as one written alone:
// the bulk path must not become a second, drifting way to create grants.
func TestCreateGrantsSameRecordAsCreateGrant(t *testing.T) {
	s, c := openTest(t)
	g := sudoGrant("alice", c.Now().Add(time.Hour))
	g.Windows, g.Timezone = []string{"Mon-Fri 09:00-17:00"}, "Europe/Berlin"
	a := Audit{Actor: "lead", Reason: "INC-1", Fields: map[string]string{"client": "import"}}

	one, err := s.CreateGrant(g, a)
	if err != nil {
		t.Fatal(err)
	}
	bulk, err := s.CreateGrants([]grant.Grant{g}, a)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.AuditRange(head(t, s)-1, 0)
	if err != nil || len(recs) != 2 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	norm := func(r AuditRecord) AuditRecord {
		r.Seq, r.GrantID, r.PrevHash, r.Hash = 0, "", "", ""
		return r
	}
	equalJSON(t, norm(recs[1]), norm(recs[0]))
	one.ID, bulk[0].ID = "", ""
	equalJSON(t, bulk[0], one)
}

// One refused grant refuses the batch: nothing is stored, indexed, audited
// or handed to OnAudit.
func TestCreateGrantsAllOrNothing(t *testing.T) {
	s, c := openTest(t)
	var hooked int
	s.onAudit = func(AuditRecord) { hooked++ }
	before, err := s.Counts()
	if err != nil {
		t.Fatal(err)
	}
	in := []grant.Grant{
		sudoGrant("alice", c.Now().Add(time.Hour)),
		sudoGrant("bob", c.Now().Add(time.Hour)),
		sudoGrant("carol", c.Now().Add(-time.Second)), // already expired
		sudoGrant("dave", c.Now().Add(time.Hour)),
	}
	_, err = s.CreateGrants(in, lead("bulk"))
	wantErr(t, err, ErrInvalid)
	if want := "grant 3 of 4 (for carol)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
	after, err := s.Counts()
	if err != nil {
		t.Fatal(err)
	}
	if after != before || hooked != 0 {
		t.Fatalf("a refused batch left state: before %+v, after %+v, %d records hooked", before, after, hooked)
	}
	if _, err := s.CreateGrants(in, Audit{}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "actor") {
		t.Errorf("batch without an actor: %v", err)
	}
	checkIndexes(t, s)
	if _, err := s.Verify(); err != nil {
		t.Fatal(err)
	}
}
