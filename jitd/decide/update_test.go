package decide

import (
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

func TestWithGrantsReplacesAndAdds(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	mk := func(id, user, cmd string, st grant.State) grant.Grant {
		return grant.Grant{ID: id, User: user, Kind: grant.KindSudo, Commands: []string{cmd},
			NotBefore: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), State: st, GrantedBy: "lead"}
	}
	base, err := NewSet([]grant.Grant{mk("g-a1", "alice", "/usr/bin/id", grant.StateActive)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(s *Set, cmd string) Decision {
		return Decide(Request{User: "alice", Kind: grant.KindSudo, Command: cmd}, s, now)
	}
	added, err := base.WithGrants(mk("g-a2", "alice", "/usr/bin/uptime", grant.StateActive))
	if err != nil || !ask(added, "/usr/bin/uptime").Allow || !ask(added, "/usr/bin/id").Allow || added.Len() != 2 {
		t.Fatalf("adding a grant: err %v len %d", err, added.Len())
	}
	if ask(base, "/usr/bin/uptime").Allow {
		t.Fatal("the original set changed")
	}
	revoked := mk("g-a1", "alice", "/usr/bin/id", grant.StateRevoked)
	revoked.EndedAt, revoked.EndedBy = now.Add(-time.Minute), "lead"
	next, err := added.WithGrants(revoked)
	if err != nil {
		t.Fatal(err)
	}
	if d := ask(next, "/usr/bin/id"); d.Allow || d.Code != CodeRevoked {
		t.Fatalf("revoked grant: %+v", d)
	}
	if !ask(added, "/usr/bin/id").Allow || next.Len() != 2 {
		t.Fatal("replacing changed the previous set or the count")
	}
	if _, err := next.WithGrants(mk("g-a2", "mallory", "/bin/sh", grant.StateActive)); err == nil {
		t.Fatal("a grant changing owner was accepted")
	}
}
