package store

import (
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

func TestCreateGetGrant(t *testing.T) {
	s, c := openTest(t)
	now := c.Now()
	before := head(t, s)
	g := mustCreate(t, s, sudoGrant("alice", now.Add(30*time.Minute)))

	if !regexp.MustCompile(`^g-[0-9a-f]{8}$`).MatchString(g.ID) {
		t.Errorf("id %q is not g- and 8 hex digits", g.ID)
	}
	if g.State != grant.StateActive || g.RunAs != grant.DefaultRunAs || g.GrantedBy != "lead" || !g.CreatedAt.Equal(now) {
		t.Errorf("defaults not applied: %+v", g)
	}
	got, err := s.GetGrant(g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, g) {
		t.Errorf("GetGrant = %+v\nCreateGrant = %+v", got, g)
	}
	if got, err := s.GetGrant(strings.ToUpper(g.ID)); err != nil || got.ID != g.ID {
		t.Errorf("upper-case lookup: %v %v", got.ID, err)
	}
	_, err = s.GetGrant("g-00000000")
	wantErr(t, err, ErrNotFound)

	// The grant's audit record was written with it.
	if h := head(t, s); h != before+1 {
		t.Fatalf("audit head %d, want %d", h, before+1)
	}
	recs, err := s.AuditRange(before+1, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := recs[0]
	if r.Event != EventGrantCreated || r.GrantID != g.ID || r.User != "alice" || r.Actor != "lead" || r.Reason != "INC-4711" ||
		r.Fields["expires_at"] != g.ExpiresAt.Format(time.RFC3339Nano) || r.Fields["runas"] != "root" {
		t.Errorf("audit record %+v", r)
	}
	checkIndexes(t, s)
}

func TestCreateGrantValidation(t *testing.T) {
	s, c := openTest(t)
	now := c.Now()
	ok := sudoGrant("alice", now.Add(time.Hour))
	cases := map[string]func(g *grant.Grant){
		"id given":              func(g *grant.Grant) { g.ID = "g-12345678" },
		"no user":               func(g *grant.Grant) { g.User = "" },
		"control in user":       func(g *grant.Grant) { g.User = "al\x00ice" },
		"bad kind":              func(g *grant.Grant) { g.Kind = "root" },
		"ended state":           func(g *grant.Grant) { g.State = grant.StateRevoked },
		"end details":           func(g *grant.Grant) { g.EndedBy = "x" },
		"no expiry":             func(g *grant.Grant) { g.ExpiresAt = time.Time{} },
		"expiry in the past":    func(g *grant.Grant) { g.ExpiresAt = now.Add(-time.Second) },
		"expiry now":            func(g *grant.Grant) { g.ExpiresAt = now },
		"expiry before start":   func(g *grant.Grant) { g.NotBefore = now.Add(2 * time.Hour) },
		"expiry out of range":   func(g *grant.Grant) { g.ExpiresAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) },
		"control in granted-by": func(g *grant.Grant) { g.GrantedBy = "x\n" },
	}
	before := head(t, s)
	for name, mod := range cases {
		g := ok
		mod(&g)
		if _, err := s.CreateGrant(g, lead("x")); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.CreateGrant(ok, Audit{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no actor: error %v, want ErrInvalid", err)
	}
	if _, err := s.CreateGrant(ok, Audit{Actor: "lead", Fields: map[string]string{"Bad-Key": "x"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad field key: error %v, want ErrInvalid", err)
	}
	if gs, _ := s.ListGrants(GrantFilter{IncludeEnded: true}); len(gs) != 0 || head(t, s) != before {
		t.Fatalf("refused creates left %d grants, audit head %d (was %d)", len(gs), head(t, s), before)
	}
	// Login grants have no runas default.
	lg := mustCreate(t, s, grant.Grant{User: "bob", Kind: grant.KindLogin, ExpiresAt: now.Add(time.Hour)})
	if lg.RunAs != "" {
		t.Errorf("login grant got runas %q", lg.RunAs)
	}
}

func TestListGrantsAndGrantsForUser(t *testing.T) {
	s, c := openTest(t)
	now := c.Now()
	a1 := mustCreate(t, s, sudoGrant("alice", now.Add(time.Hour)))
	a2 := mustCreate(t, s, grant.Grant{User: "alice", Kind: grant.KindLogin, ExpiresAt: now.Add(2 * time.Hour)})
	a3 := mustCreate(t, s, sudoGrant("alice", now.Add(3*time.Hour)))
	b1 := mustCreate(t, s, sudoGrant("bob", now.Add(time.Hour)))
	// "alic" must not see alice's grants through the prefix index.
	al := mustCreate(t, s, sudoGrant("alic", now.Add(time.Hour)))
	if _, err := s.EndGrant(a3.ID, grant.StateRevoked, time.Time{}, lead("done")); err != nil {
		t.Fatal(err)
	}

	check := func(name string, got []grant.Grant, want ...grant.Grant) {
		t.Helper()
		if g, w := grantIDs(got), grantIDs(want); !slices.Equal(g, w) {
			t.Errorf("%s = %v, want %v", name, g, w)
		}
	}
	gs, err := s.GrantsForUser("alice")
	if err != nil {
		t.Fatal(err)
	}
	check("GrantsForUser(alice)", gs, a1, a2)
	gs, _ = s.GrantsForUser("nobody")
	check("GrantsForUser(nobody)", gs)

	for _, tc := range []struct {
		f    GrantFilter
		want []grant.Grant
	}{
		{GrantFilter{}, []grant.Grant{a1, a2, b1, al}},
		{GrantFilter{IncludeEnded: true}, []grant.Grant{a1, a2, a3, b1, al}},
		{GrantFilter{User: "alice"}, []grant.Grant{a1, a2}},
		{GrantFilter{User: "alice", IncludeEnded: true}, []grant.Grant{a1, a2, a3}},
		{GrantFilter{User: "alice", Kind: grant.KindLogin}, []grant.Grant{a2}},
		{GrantFilter{Kind: grant.KindSudo, IncludeEnded: true}, []grant.Grant{a1, a3, b1, al}},
	} {
		gs, err := s.ListGrants(tc.f)
		if err != nil {
			t.Fatal(err)
		}
		check("ListGrants", gs, tc.want...)
		if !slices.IsSortedFunc(gs, func(a, b grant.Grant) int { return a.CreatedAt.Compare(b.CreatedAt) }) {
			t.Errorf("ListGrants(%+v) not oldest first", tc.f)
		}
	}
}

func TestExpiryIndex(t *testing.T) {
	s, c := openTest(t)
	now := c.Now()
	if _, ok, err := s.NextExpiry(); ok || err != nil {
		t.Fatalf("empty store: NextExpiry ok=%v err=%v", ok, err)
	}
	g30 := mustCreate(t, s, sudoGrant("alice", now.Add(30*time.Minute)))
	g10 := mustCreate(t, s, sudoGrant("bob", now.Add(10*time.Minute)))
	g20 := mustCreate(t, s, sudoGrant("carol", now.Add(20*time.Minute)))
	checkIndexes(t, s)

	next := func(want grant.Grant) {
		t.Helper()
		e, ok, err := s.NextExpiry()
		if err != nil || !ok || e.GrantID != want.ID || !e.At.Equal(want.ExpiresAt) {
			t.Fatalf("NextExpiry = %+v %v %v, want %s at %s", e, ok, err, want.ID, want.ExpiresAt)
		}
	}
	overdue := func(at time.Time, want ...grant.Grant) {
		t.Helper()
		gs, err := s.Overdue(at)
		if err != nil {
			t.Fatal(err)
		}
		var got, w []string
		for _, g := range gs {
			got = append(got, g.ID)
		}
		for _, g := range want {
			w = append(w, g.ID)
		}
		if !slices.Equal(got, w) { // soonest first
			t.Fatalf("Overdue(%s) = %v, want %v", at, got, w)
		}
	}
	next(g10)
	overdue(now)
	overdue(now.Add(10*time.Minute - 1))
	overdue(now.Add(10*time.Minute), g10) // ExpiresAt <= now is overdue
	overdue(now.Add(25*time.Minute), g10, g20)

	// Extending the earliest moves it behind the others.
	g10, err := s.ExtendGrant(g10.ID, now.Add(40*time.Minute), lead("more time"))
	if err != nil {
		t.Fatal(err)
	}
	checkIndexes(t, s)
	next(g20)
	overdue(now.Add(35*time.Minute), g20, g30)

	// Shortening is allowed as long as it stays in the future.
	g30, err = s.ExtendGrant(g30.ID, now.Add(5*time.Minute), lead("less"))
	if err != nil {
		t.Fatal(err)
	}
	next(g30)
	if _, err := s.ExtendGrant(g30.ID, now.Add(-time.Minute), lead("past")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("extend into the past: %v", err)
	}

	// Ending removes a grant from the index.
	if _, err := s.EndGrant(g30.ID, grant.StateRevoked, time.Time{}, lead("done")); err != nil {
		t.Fatal(err)
	}
	checkIndexes(t, s)
	next(g20)

	// ExpireOverdue ends what is due, at its own expiry, with audit records.
	c.Advance(25 * time.Minute)
	h := head(t, s)
	ended, err := s.ExpireOverdue(c.Now(), Audit{Actor: "jitd"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ended) != 1 || ended[0].ID != g20.ID || ended[0].State != grant.StateExpired ||
		!ended[0].EndedAt.Equal(g20.ExpiresAt) || ended[0].EndedBy != "jitd" || ended[0].EndReason != "expired" {
		t.Fatalf("ExpireOverdue = %+v", ended)
	}
	recs, _ := s.AuditRange(h+1, 0)
	if len(recs) != 1 || recs[0].Event != EventGrantExpired || recs[0].GrantID != g20.ID {
		t.Fatalf("expiry audit records %+v", recs)
	}
	checkIndexes(t, s)
	next(g10)
	overdue(c.Now())
}

func TestEndGrantTwiceRefused(t *testing.T) {
	s, c := openTest(t)
	g := mustCreate(t, s, sudoGrant("alice", c.Now().Add(time.Hour)))
	at := c.Now().Add(time.Minute)
	ended, err := s.EndGrant(g.ID, grant.StateRevoked, at, Audit{Actor: "bob", Reason: "wrong host"})
	if err != nil {
		t.Fatal(err)
	}
	if ended.State != grant.StateRevoked || !ended.EndedAt.Equal(at) || ended.EndedBy != "bob" || ended.EndReason != "wrong host" {
		t.Fatalf("ended grant %+v", ended)
	}
	h := head(t, s)
	for _, st := range []grant.State{grant.StateRevoked, grant.StateExpired} {
		_, err = s.EndGrant(g.ID, st, time.Time{}, lead("again"))
		wantErr(t, err, ErrAlreadyEnded)
		var ae *AlreadyEndedError
		if !errors.As(err, &ae) || ae.State != string(grant.StateRevoked) || ae.EndedBy != "bob" || !ae.EndedAt.Equal(at) {
			t.Fatalf("error %v does not carry the current state", err)
		}
	}
	_, err = s.ExtendGrant(g.ID, c.Now().Add(2*time.Hour), lead("x"))
	wantErr(t, err, ErrAlreadyEnded)
	_, err = s.EndGrant(g.ID, grant.StateActive, time.Time{}, lead("x"))
	wantErr(t, err, ErrInvalid)
	_, err = s.EndGrant("g-ffffffff", grant.StateRevoked, time.Time{}, lead("x"))
	wantErr(t, err, ErrNotFound)
	if head(t, s) != h {
		t.Fatal("refused ends wrote audit records")
	}
	got, _ := s.GetGrant(g.ID)
	equalJSON(t, got, ended)
}
