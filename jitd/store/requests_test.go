package store

import (
	"errors"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

func newRequest(user string) grant.Request {
	return grant.Request{
		User:     user,
		Kind:     grant.KindSudo,
		Commands: []string{"/usr/bin/journalctl"},
		Duration: 30 * time.Minute,
		Reason:   "INC-1",
	}
}

func mustRequest(t testing.TB, s *Store, user string) grant.Request {
	t.Helper()
	r, err := s.CreateRequest(newRequest(user), Audit{Actor: user})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRequestsCreateListDeny(t *testing.T) {
	s, c := openTest(t)
	r1 := mustRequest(t, s, "alice")
	r2 := mustRequest(t, s, "bob")
	if !regexp.MustCompile(`^r-[0-9a-f]{8}$`).MatchString(r1.ID) || r1.State != grant.RequestPending ||
		r1.RunAs != "root" || !r1.CreatedAt.Equal(c.Now()) {
		t.Fatalf("created request %+v", r1)
	}
	got, err := s.GetRequest(r1.ID)
	if err != nil || !reflect.DeepEqual(got, r1) {
		t.Fatalf("GetRequest = %+v, %v", got, err)
	}
	for name, mod := range map[string]func(r *grant.Request){
		"no duration": func(r *grant.Request) { r.Duration = 0 },
		"bad kind":    func(r *grant.Request) { r.Kind = "" },
		"decided":     func(r *grant.Request) { r.State = grant.RequestApproved },
		"grant id":    func(r *grant.Request) { r.GrantID = "g-1" },
	} {
		r := newRequest("carol")
		mod(&r)
		if _, err := s.CreateRequest(r, Audit{Actor: "carol"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}

	denied, err := s.DenyRequest(r2.ID, Audit{Actor: "lead", Reason: "not on call"})
	if err != nil {
		t.Fatal(err)
	}
	if denied.State != grant.RequestDenied || denied.DecidedBy != "lead" || denied.DecisionReason != "not on call" || denied.GrantID != "" {
		t.Fatalf("denied %+v", denied)
	}
	_, err = s.DenyRequest(r2.ID, lead("again"))
	wantErr(t, err, ErrNotPending)
	_, _, err = s.ApproveRequest(r2.ID, grant.Grant{}, lead("changed my mind"))
	var np *NotPendingError
	if !errors.As(err, &np) || np.State != string(grant.RequestDenied) || np.DecidedBy != "lead" {
		t.Fatalf("approve after deny: %v", err)
	}

	for _, tc := range []struct {
		f    RequestFilter
		want []string
	}{
		{RequestFilter{}, []string{r1.ID, r2.ID}},
		{RequestFilter{PendingOnly: true}, []string{r1.ID}},
		{RequestFilter{User: "bob"}, []string{r2.ID}},
		{RequestFilter{User: "bob", PendingOnly: true}, nil},
	} {
		rs, err := s.ListRequests(tc.f)
		if err != nil {
			t.Fatal(err)
		}
		got := ids(rs, func(r grant.Request) string { return r.ID })
		if len(got) != len(tc.want) || (len(got) > 0 && !reflect.DeepEqual(got, ids(tc.want, func(s string) string { return s }))) {
			t.Errorf("ListRequests(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
	checkIndexes(t, s)
}

func TestApproveRequest(t *testing.T) {
	s, c := openTest(t)
	r := mustRequest(t, s, "alice")
	h := head(t, s)
	c.Advance(time.Minute)
	approved, g, err := s.ApproveRequest(r.ID, grant.Grant{}, Audit{Actor: "lead", Reason: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if approved.State != grant.RequestApproved || approved.GrantID != g.ID || approved.DecidedBy != "lead" ||
		approved.DecisionReason != "ok" || !approved.DecidedAt.Equal(c.Now()) {
		t.Fatalf("approved request %+v", approved)
	}
	if g.User != "alice" || g.RequestID != r.ID || g.GrantedBy != "lead" || g.Reason != "INC-1" ||
		!reflect.DeepEqual(g.Commands, r.Commands) || !g.ExpiresAt.Equal(c.Now().Add(r.Duration)) {
		t.Fatalf("grant from request %+v", g)
	}
	stored, _ := s.GetRequest(r.ID)
	equalJSON(t, stored, approved)
	storedG, _ := s.GetGrant(g.ID)
	equalJSON(t, storedG, g)

	recs, _ := s.AuditRange(h+1, 0)
	if len(recs) != 2 || recs[0].Event != EventGrantCreated || recs[1].Event != EventRequestApproved ||
		recs[1].GrantID != g.ID || recs[1].RequestID != r.ID || recs[1].Reason != "ok" || recs[0].Reason != "INC-1" {
		t.Fatalf("approval records %+v", recs)
	}
	_, _, err = s.ApproveRequest(r.ID, grant.Grant{}, lead("twice"))
	wantErr(t, err, ErrNotPending)

	// The approver may clamp the duration.
	r2 := mustRequest(t, s, "alice")
	_, g2, err := s.ApproveRequest(r2.ID, grant.Grant{ExpiresAt: c.Now().Add(5 * time.Minute)}, lead("short"))
	if err != nil || !g2.ExpiresAt.Equal(c.Now().Add(5*time.Minute)) {
		t.Fatalf("clamped approval: %+v %v", g2, err)
	}
	checkIndexes(t, s)
}

// A failing approval leaves no trace: the request stays pending, no grant,
// no audit record, although the request was already rewritten inside the
// transaction when the grant was refused.
func TestApproveRequestAtomic(t *testing.T) {
	s, c := openTest(t)
	r := mustRequest(t, s, "alice")
	h := head(t, s)
	var hooked []AuditRecord
	s.onAudit = func(rec AuditRecord) { hooked = append(hooked, rec) }
	for name, g := range map[string]grant.Grant{
		"expired grant": {ExpiresAt: c.Now().Add(-time.Minute)},
		"other user":    {User: "mallory"},
		"other kind":    {Kind: grant.KindLogin},
		"other request": {RequestID: "r-00000000"},
	} {
		if _, _, err := s.ApproveRequest(r.ID, g, lead("x")); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: %v, want ErrInvalid", name, err)
		}
	}
	got, _ := s.GetRequest(r.ID)
	equalJSON(t, got, r)
	if gs, _ := s.ListGrants(GrantFilter{IncludeEnded: true}); len(gs) != 0 {
		t.Fatalf("failed approvals left grants %v", grantIDs(gs))
	}
	if head(t, s) != h || len(hooked) != 0 {
		t.Fatalf("failed approvals left audit records (head %d, was %d; hook saw %d)", head(t, s), h, len(hooked))
	}
	checkIndexes(t, s)
}

func TestApproveRequestRace(t *testing.T) {
	s, _ := openTest(t)
	r := mustRequest(t, s, "alice")
	const n = 8
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		won      int
		notPend  int
		otherErr []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i%2 == 0 {
				_, _, err = s.ApproveRequest(r.ID, grant.Grant{}, lead("go"))
			} else {
				_, err = s.DenyRequest(r.ID, lead("no"))
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, ErrNotPending):
				notPend++
			default:
				otherErr = append(otherErr, err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || notPend != n-1 || len(otherErr) != 0 {
		t.Fatalf("won %d, not pending %d, other %v", won, notPend, otherErr)
	}
	final, _ := s.GetRequest(r.ID)
	gs, _ := s.ListGrants(GrantFilter{IncludeEnded: true})
	if (final.State == grant.RequestApproved) != (len(gs) == 1) || len(gs) > 1 {
		t.Fatalf("request %s with %d grants", final.State, len(gs))
	}
}
