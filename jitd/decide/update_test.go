package decide

import (
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

func TestWithUserReplacesOnlyThatUser(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	mk := func(id, user, cmd string) grant.Grant {
		return grant.Grant{ID: id, User: user, Kind: grant.KindSudo, Commands: []string{cmd},
			NotBefore: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), State: grant.StateActive, GrantedBy: "lead"}
	}
	base, err := NewSet([]grant.Grant{mk("g-a1", "alice", "/usr/bin/id"), mk("g-b1", "bob", "/usr/bin/id")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(s *Set, user, cmd string) bool {
		return Decide(Request{User: user, Kind: grant.KindSudo, Command: cmd}, s, now).Allow
	}
	next, err := base.WithUser("alice", []grant.Grant{mk("g-a2", "alice", "/usr/bin/uptime")})
	if err != nil {
		t.Fatal(err)
	}
	if ask(next, "alice", "/usr/bin/id") || !ask(next, "alice", "/usr/bin/uptime") {
		t.Error("alice's grants were not replaced")
	}
	if !ask(next, "bob", "/usr/bin/id") {
		t.Error("bob lost his grant when alice's changed")
	}
	if !ask(base, "alice", "/usr/bin/id") || ask(base, "alice", "/usr/bin/uptime") {
		t.Error("the original set changed")
	}
	if _, ok := next.Grant("g-a1"); ok {
		t.Error("replaced grant still findable by id")
	}
	if next.Len() != 2 || base.Len() != 2 {
		t.Errorf("Len: next %d base %d, want 2 and 2", next.Len(), base.Len())
	}
	gone, err := next.WithUser("alice", nil)
	if err != nil || ask(gone, "alice", "/usr/bin/uptime") || gone.Len() != 1 {
		t.Errorf("removing alice's grants: err %v len %d", err, gone.Len())
	}
	if _, err := next.WithUser("alice", []grant.Grant{mk("g-x", "mallory", "/bin/sh")}); err == nil {
		t.Error("a grant of another user was accepted into alice's slot")
	}
}
