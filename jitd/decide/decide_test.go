package decide

import (
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // tests must not depend on the host's zoneinfo

	"github.com/jitpam/jit/jitd/cmdmatch"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/jitd/window"
)

// now is Monday 2026-03-09 10:00 UTC (11:00 in Berlin).
var now = time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)

func g(id, user string, cmds ...string) grant.Grant {
	return grant.Grant{
		ID: id, User: user, Kind: grant.KindSudo, Commands: cmds,
		NotBefore: now.Add(-time.Hour), ExpiresAt: now.Add(30 * time.Minute),
		Reason: "INC-4711", GrantedBy: "bob", CreatedAt: now.Add(-time.Hour),
		State: grant.StateActive,
	}
}

func with(gr grant.Grant, f func(*grant.Grant)) grant.Grant {
	f(&gr)
	return gr
}

func sudo(user, cmd string, args ...string) Request {
	return Request{User: user, Kind: grant.KindSudo, Command: cmd, Args: args}
}

func TestDecide(t *testing.T) {
	restart := sudo("alice", "/usr/bin/systemctl", "restart", "nginx")
	cases := []struct {
		name      string
		grants    []grant.Grant
		rules     []grant.Rule
		req       Request
		at        time.Time // zero: now
		code      Code
		id        string // grant id or rule name
		reason    []string
		remaining time.Duration
	}{
		{name: "exact command allowed",
			grants: []grant.Grant{g("g1", "alice", "/usr/bin/systemctl restart nginx")},
			req:    restart, code: CodeAllow, id: "g1", remaining: 30 * time.Minute},
		{name: "no grants at all",
			req: restart, code: CodeNoGrant,
			reason: []string{"alice has no grant to run /usr/bin/systemctl restart nginx as root"}},
		{name: "another user's grant does not count",
			grants: []grant.Grant{g("g1", "bob", "ALL")},
			req:    restart, code: CodeNoGrant},
		{name: "grant for another command",
			grants: []grant.Grant{g("g1", "alice", "/usr/bin/journalctl")},
			req:    restart, code: CodeOtherCommand, id: "g1",
			reason: []string{"grant g1 allows only /usr/bin/journalctl, not /usr/bin/systemctl restart nginx"}},
		{name: "several grants for other commands are listed together",
			grants: []grant.Grant{g("g1", "alice", "/usr/bin/journalctl"), g("g2", "alice", "/usr/bin/systemctl status *", "/usr/bin/journalctl")},
			req:    restart, code: CodeOtherCommand,
			reason: []string{"alice's grants allow only /usr/bin/journalctl; /usr/bin/systemctl status *, not"}},
		{name: "attacker: trailing shell metacharacters are other args",
			grants: []grant.Grant{g("g1", "alice", "/usr/bin/systemctl restart nginx")},
			req:    sudo("alice", "/usr/bin/systemctl", "restart", "nginx;", "sh"), code: CodeOtherCommand,
			reason: []string{"not /usr/bin/systemctl restart nginx; sh"}},
		{name: "attacker: argument with control characters is quoted in the reason",
			grants: []grant.Grant{g("g1", "alice", "/usr/bin/systemctl restart nginx")},
			req:    sudo("alice", "/usr/bin/systemctl", "restart", "nginx\x1b[2J"), code: CodeOtherCommand,
			reason: []string{`"nginx\x1b[2J"`}},
		{name: "attacker: unclean path is a bad request",
			grants: []grant.Grant{g("g1", "alice", "/usr/bin/systemctl")},
			req:    sudo("alice", "/usr/bin/../bin/systemctl"), code: CodeBadRequest,
			reason: []string{"not absolute and clean"}},
		{name: "relative command is a bad request",
			grants: []grant.Grant{g("g1", "alice", "ALL")},
			req:    sudo("alice", "systemctl"), code: CodeBadRequest},
		{name: "empty user", req: sudo("", "/bin/true"), code: CodeBadRequest, reason: []string{"names no user"}},
		{name: "unknown kind", req: Request{User: "alice", Kind: "root"}, code: CodeBadRequest, reason: []string{`unknown kind "root"`}},
		{name: "expired by time although still marked active",
			grants: []grant.Grant{with(g("g1", "alice", "ALL"), func(x *grant.Grant) { x.ExpiresAt = now.Add(-12 * time.Minute) })},
			req:    restart, code: CodeExpired, id: "g1",
			reason: []string{"grant g1 expired at Mon 2026-03-09 09:48 UTC (12m ago)"}},
		{name: "expires exactly now",
			grants: []grant.Grant{with(g("g1", "alice", "ALL"), func(x *grant.Grant) { x.ExpiresAt = now })},
			req:    restart, code: CodeExpired},
		{name: "valid from exactly now",
			grants: []grant.Grant{with(g("g1", "alice", "ALL"), func(x *grant.Grant) { x.NotBefore = now })},
			req:    restart, code: CodeAllow, remaining: 30 * time.Minute},
		{name: "expired state",
			grants: []grant.Grant{with(g("g1", "alice", "ALL"), func(x *grant.Grant) {
				x.State, x.NotBefore, x.ExpiresAt, x.EndedAt = grant.StateExpired, now.Add(-2*time.Hour), now.Add(-time.Hour), now.Add(-time.Hour+time.Second)
			})},
			req: restart, code: CodeExpired, reason: []string{"expired at Mon 2026-03-09 09:00 UTC (1h ago)"}},
		{name: "revoked names who and why",
			grants: []grant.Grant{with(g("g1", "alice", "ALL"), func(x *grant.Grant) {
				x.State, x.EndedAt, x.EndedBy, x.EndReason = grant.StateRevoked, now.Add(-5*time.Minute), "carol", "suspicious activity"
			})},
			req: restart, code: CodeRevoked, id: "g1",
			reason: []string{"grant g1 was revoked by carol at Mon 2026-03-09 09:55 UTC (5m ago): suspicious activity"}},
		{name: "not yet valid",
			grants: []grant.Grant{with(g("g1", "alice", "ALL"), func(x *grant.Grant) {
				x.NotBefore, x.ExpiresAt = now.Add(3*time.Hour), now.Add(5*time.Hour)
			})},
			req: restart, code: CodeNotYet, reason: []string{"grant g1 is not valid before Mon 2026-03-09 13:00 UTC (in 3h)"}},
		{name: "inside window: remaining until the window closes",
			grants: []grant.Grant{with(g("g1", "alice", "ALL"), func(x *grant.Grant) {
				x.Windows, x.Timezone, x.ExpiresAt = []string{"Mon-Fri 09:00-12:00"}, "Europe/Berlin", now.Add(48*time.Hour)
			})},
			req: restart, code: CodeAllow, remaining: time.Hour},
		{name: "inside window: remaining until expiry when that is first",
			grants: []grant.Grant{with(g("g1", "alice", "ALL"), func(x *grant.Grant) {
				x.Windows, x.Timezone = []string{"Mon-Fri 09:00-17:00"}, "Europe/Berlin"
			})},
			req: restart, code: CodeAllow, remaining: 30 * time.Minute},
		{name: "outside window names the window and the next opening in the grant's zone",
			grants: []grant.Grant{with(g("g1", "alice", "ALL"), func(x *grant.Grant) {
				x.Windows, x.Timezone, x.ExpiresAt = []string{"Mon-Fri 09:00-17:00"}, "Europe/Berlin", now.Add(72*time.Hour)
			})},
			req: restart, at: time.Date(2026, 3, 9, 16, 30, 0, 0, time.UTC), code: CodeOutsideWindow, id: "g1",
			reason: []string{"grant g1 is outside its window Mon-Fri 09:00-17:00 Europe/Berlin; it opens next at Tue 2026-03-10 09:00 CET (in 15h30m)"}},
		{name: "outside window that does not reopen before expiry",
			grants: []grant.Grant{with(g("g1", "alice", "ALL"), func(x *grant.Grant) {
				x.Windows, x.Timezone, x.ExpiresAt = []string{"Sat 10:00-12:00"}, "America/New_York", now.Add(24*time.Hour)
			})},
			req: restart, code: CodeOutsideWindow,
			reason: []string{"does not open again before the grant expires at Tue 2026-03-10 06:00 EDT"}},
		{name: "remaining across the New York fall-back is real time",
			grants: []grant.Grant{with(g("g1", "alice", "ALL"), func(x *grant.Grant) {
				x.Windows, x.Timezone, x.ExpiresAt = []string{"Sun 01:30-03:00"}, "America/New_York", time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
			})},
			req: restart, at: time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), code: CodeAllow, remaining: 150 * time.Minute},
		{name: "Berlin spring-forward: a 02:30 start opens at 03:00 CEST",
			grants: []grant.Grant{with(g("g1", "alice", "ALL"), func(x *grant.Grant) {
				x.Windows, x.Timezone, x.ExpiresAt = []string{"Sun 02:30-04:00"}, "Europe/Berlin", time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC)
			})},
			req: restart, at: time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC), code: CodeOutsideWindow,
			reason: []string{"it opens next at Sun 2026-03-29 03:00 CEST (in 30m)"}},
		{name: "runas mismatch",
			grants: []grant.Grant{g("g1", "alice", "ALL")},
			req:    with2(restart, func(r *Request) { r.RunAs = "postgres" }), code: CodeRunAs,
			reason: []string{"grant g1 lets alice run this only as root, not as postgres"}},
		{name: "runas matches",
			grants: []grant.Grant{with(g("g1", "alice", "/usr/bin/psql"), func(x *grant.Grant) { x.RunAs = "postgres" })},
			req:    with2(sudo("alice", "/usr/bin/psql"), func(r *Request) { r.RunAs = "postgres" }), code: CodeAllow},
		{name: "runas grant does not allow root",
			grants: []grant.Grant{with(g("g1", "alice", "/usr/bin/psql"), func(x *grant.Grant) { x.RunAs = "postgres" })},
			req:    sudo("alice", "/usr/bin/psql"), code: CodeRunAs},
		{name: "runas group needs ALL",
			grants: []grant.Grant{g("g1", "alice", "ALL")},
			req:    with2(restart, func(r *Request) { r.RunAsGroup = "shadow" }), code: CodeRunAs,
			reason: []string{"not as root with group shadow"}},
		{name: "runas ALL allows a group",
			grants: []grant.Grant{with(g("g1", "alice", "ALL"), func(x *grant.Grant) { x.RunAs = "ALL" })},
			req:    with2(restart, func(r *Request) { r.RunAs, r.RunAsGroup = "www-data", "shadow" }), code: CodeAllow},
		{name: "sudo -s needs ALL or a shell grant",
			grants: []grant.Grant{g("g1", "alice", "/usr/bin/systemctl")},
			req:    Request{User: "alice", Kind: grant.KindSudo, Command: "/bin/bash", Shell: true}, code: CodeShellNeedsAll,
			reason: []string{"a shell (/bin/bash) needs a grant for ALL or for that shell by name; grant g1 allows only /usr/bin/systemctl"}},
		{name: "sudo -s with ALL",
			grants: []grant.Grant{g("g1", "alice", "ALL")},
			req:    Request{User: "alice", Kind: grant.KindSudo, Command: "/bin/bash", Shell: true}, code: CodeAllow},
		{name: "sudo -s with an explicit shell grant",
			grants: []grant.Grant{g("g1", "alice", "/bin/bash")},
			req:    Request{User: "alice", Kind: grant.KindSudo, Command: "/bin/bash", Args: []string{"-c", "id"}, Shell: true}, code: CodeAllow},
		{name: "sudo -s with a grant for another shell",
			grants: []grant.Grant{g("g1", "alice", "/bin/zsh")},
			req:    Request{User: "alice", Kind: grant.KindSudo, Command: "/bin/bash", Shell: true}, code: CodeShellNeedsAll},
		{name: "a directory grant does not give a shell",
			grants: []grant.Grant{g("g1", "alice", "/usr/bin/")},
			req:    sudo("alice", "/usr/bin/bash"), code: CodeShellNeedsAll},
		{name: "a directory grant gives other commands",
			grants: []grant.Grant{g("g1", "alice", "/usr/bin/")},
			req:    sudo("alice", "/usr/bin/ls", "/root"), code: CodeAllow},
		{name: "shell flag with a non-shell command path still needs ALL",
			grants: []grant.Grant{g("g1", "alice", "/usr/bin/python3")},
			req:    Request{User: "alice", Kind: grant.KindSudo, Command: "/usr/bin/python3", Shell: true}, code: CodeShellNeedsAll},

		// Precedence.
		{name: "longest-lasting allowing grant wins",
			grants: []grant.Grant{
				g("g1", "alice", "ALL"),
				with(g("g2", "alice", "/usr/bin/systemctl"), func(x *grant.Grant) { x.ExpiresAt = now.Add(2 * time.Hour) }),
				with(g("g3", "alice", "/usr/bin/systemctl restart *"), func(x *grant.Grant) { x.ExpiresAt = now.Add(time.Hour) }),
			},
			req: restart, code: CodeAllow, id: "g2", remaining: 2 * time.Hour},
		{name: "tie goes to the lower id",
			grants: []grant.Grant{g("g2", "alice", "ALL"), g("g1", "alice", "ALL")},
			req:    restart, code: CodeAllow, id: "g1"},
		{name: "an allowing grant beats a deny explanation",
			grants: []grant.Grant{
				with(g("g0", "alice", "ALL"), func(x *grant.Grant) { x.State = grant.StateRevoked }),
				g("g1", "alice", "/usr/bin/systemctl restart nginx"),
			},
			req: restart, code: CodeAllow, id: "g1"},
		{name: "expired covering grant explains better than a live one for other commands",
			grants: []grant.Grant{
				g("live", "alice", "/usr/bin/journalctl"),
				with(g("old", "alice", "/usr/bin/systemctl restart nginx"), func(x *grant.Grant) { x.ExpiresAt = now.Add(-time.Minute) }),
			},
			req: restart, code: CodeExpired, id: "old"},
		{name: "expired grant for another command explains nothing",
			grants: []grant.Grant{with(g("old", "alice", "/usr/bin/journalctl"), func(x *grant.Grant) { x.ExpiresAt = now.Add(-time.Minute) })},
			req:    restart, code: CodeNoGrant},
		{name: "outside window beats revoked",
			grants: []grant.Grant{
				with(g("rev", "alice", "ALL"), func(x *grant.Grant) { x.State, x.EndedAt = grant.StateRevoked, now.Add(-time.Minute) }),
				with(g("win", "alice", "ALL"), func(x *grant.Grant) {
					x.Windows, x.ExpiresAt = []string{"Daily 12:00-13:00"}, now.Add(24*time.Hour)
				}),
			},
			req: restart, code: CodeOutsideWindow, id: "win"},
		{name: "soonest usable wins among waiting grants",
			grants: []grant.Grant{
				with(g("later", "alice", "ALL"), func(x *grant.Grant) { x.NotBefore, x.ExpiresAt = now.Add(5*time.Hour), now.Add(6*time.Hour) }),
				with(g("sooner", "alice", "ALL"), func(x *grant.Grant) {
					x.Windows, x.ExpiresAt = []string{"Daily 12:00-13:00"}, now.Add(24*time.Hour)
				}),
			},
			req: restart, code: CodeOutsideWindow, id: "sooner"},
		{name: "most recently ended wins",
			grants: []grant.Grant{
				with(g("a", "alice", "ALL"), func(x *grant.Grant) { x.ExpiresAt = now.Add(-2 * time.Hour) }),
				with(g("b", "alice", "ALL"), func(x *grant.Grant) { x.State, x.EndedAt, x.EndedBy = grant.StateRevoked, now.Add(-time.Hour), "carol" }),
				with(g("c", "alice", "ALL"), func(x *grant.Grant) { x.ExpiresAt = now.Add(-3 * time.Hour) }),
			},
			req: restart, code: CodeRevoked, id: "b"},
		{name: "runas explains better than other command",
			grants: []grant.Grant{
				g("other", "alice", "/usr/bin/journalctl"),
				g("root", "alice", "/usr/bin/psql"),
			},
			req: with2(sudo("alice", "/usr/bin/psql"), func(r *Request) { r.RunAs = "postgres" }), code: CodeRunAs, id: "root"},

		// Rules.
		{name: "standing rule for a group allows, unlimited",
			rules: []grant.Rule{{Name: "web", Users: []string{"%web"}, Commands: []string{"/usr/bin/systemctl restart nginx"}}},
			req:   with2(restart, func(r *Request) { r.Groups = []string{"staff", "web"} }), code: CodeAllow, id: "web", remaining: 0},
		{name: "standing rule for ALL",
			rules: []grant.Rule{{Name: "everyone", Users: []string{"ALL"}, Commands: []string{"/usr/bin/systemctl status *"}}},
			req:   sudo("zed", "/usr/bin/systemctl", "status", "nginx"), code: CodeAllow, id: "everyone"},
		{name: "standing rule not for this user",
			rules: []grant.Rule{{Name: "web", Users: []string{"%web", "carol"}, Commands: []string{"ALL"}}},
			req:   with2(restart, func(r *Request) { r.Groups = []string{"staff"} }), code: CodeNoGrant},
		{name: "standing rule window gives remaining",
			rules: []grant.Rule{{Name: "office", Users: []string{"alice"}, Commands: []string{"ALL"}, Windows: []string{"Mon-Fri 09:00-17:00"}, Timezone: "Europe/Berlin"}},
			req:   restart, code: CodeAllow, id: "office", remaining: 6 * time.Hour},
		{name: "standing rule outside its window",
			rules: []grant.Rule{{Name: "office", Users: []string{"alice"}, Commands: []string{"ALL"}, Windows: []string{"Sat 10:00-14:00"}, Timezone: "Europe/Berlin"}},
			req:   restart, code: CodeOutsideWindow, id: "office",
			reason: []string{`standing rule "office" is outside its window Sat 10:00-14:00 Europe/Berlin; it opens next at Sat 2026-03-14 10:00 CET (in 4d23h)`}},
		{name: "standing rule runas list",
			rules: []grant.Rule{{Name: "db", Users: []string{"alice"}, Commands: []string{"/usr/bin/psql"}, RunAs: []string{"postgres", "pgbouncer"}}},
			req:   sudo("alice", "/usr/bin/psql"), code: CodeRunAs,
			reason: []string{`standing rule "db" lets alice run this only as postgres or pgbouncer, not as root`}},
		{name: "grant wins over an unlimited rule",
			grants: []grant.Grant{g("g1", "alice", "/usr/bin/systemctl")},
			rules:  []grant.Rule{{Name: "all", Users: []string{"alice"}, Commands: []string{"ALL"}}},
			req:    restart, code: CodeAllow, id: "g1", remaining: 30 * time.Minute},
		{name: "unlimited rule beats windowed rule",
			rules: []grant.Rule{
				{Name: "a-office", Users: []string{"alice"}, Commands: []string{"ALL"}, Windows: []string{"Mon-Fri 09:00-17:00"}},
				{Name: "b-any", Users: []string{"alice"}, Commands: []string{"/usr/bin/systemctl"}},
			},
			req: restart, code: CodeAllow, id: "b-any"},
		{name: "covering grant expired beats rule for other command",
			grants: []grant.Grant{with(g("old", "alice", "ALL"), func(x *grant.Grant) { x.ExpiresAt = now.Add(-time.Minute) })},
			rules:  []grant.Rule{{Name: "r", Users: []string{"alice"}, Commands: []string{"/usr/bin/journalctl"}}},
			req:    restart, code: CodeExpired, id: "old"},
		{name: "rule for other commands",
			rules: []grant.Rule{{Name: "r", Users: []string{"alice"}, Commands: []string{"/usr/bin/journalctl"}}},
			req:   restart, code: CodeOtherCommand, id: "r",
			reason: []string{`standing rule "r" allows only /usr/bin/journalctl, not /usr/bin/systemctl restart nginx`}},
		{name: "rules do not apply to logins",
			rules: []grant.Rule{{Name: "r", Users: []string{"ALL"}, Commands: []string{"ALL"}}},
			req:   Request{User: "alice", Kind: grant.KindLogin, Service: "sshd"}, code: CodeNoGrant,
			reason: []string{"alice has no grant to log in (service sshd)"}},

		// Logins.
		{name: "login grant allows a login",
			grants: []grant.Grant{with(g("l1", "alice"), func(x *grant.Grant) { x.Kind = grant.KindLogin })},
			req:    Request{User: "alice", Kind: grant.KindLogin, Service: "sshd"}, code: CodeAllow, id: "l1", remaining: 30 * time.Minute},
		{name: "sudo grant does not allow a login",
			grants: []grant.Grant{g("g1", "alice", "ALL")},
			req:    Request{User: "alice", Kind: grant.KindLogin, Service: "sshd"}, code: CodeNoGrant},
		{name: "login grant does not allow sudo",
			grants: []grant.Grant{with(g("l1", "alice"), func(x *grant.Grant) { x.Kind = grant.KindLogin })},
			req:    restart, code: CodeNoGrant},
		{name: "login grant outside its window",
			grants: []grant.Grant{with(g("l1", "alice"), func(x *grant.Grant) {
				x.Kind, x.Windows, x.ExpiresAt = grant.KindLogin, []string{"Daily 22:00-06:00"}, now.Add(48*time.Hour)
			})},
			req: Request{User: "alice", Kind: grant.KindLogin}, code: CodeOutsideWindow, id: "l1"},

		// Broken grants.
		{name: "invalid grant never allows",
			grants: []grant.Grant{g("bad", "alice", "systemctl restart nginx")},
			req:    restart, code: CodeInvalidGrant, id: "bad",
			reason: []string{"grant bad cannot be used", "not an absolute path"}},
		{name: "unknown state never allows",
			grants: []grant.Grant{with(g("odd", "alice", "ALL"), func(x *grant.Grant) { x.State = "paused" })},
			req:    restart, code: CodeInvalidGrant, reason: []string{`unknown state "paused"`}},
		{name: "grant without expiry never allows",
			grants: []grant.Grant{with(g("forever", "alice", "ALL"), func(x *grant.Grant) { x.ExpiresAt = time.Time{} })},
			req:    restart, code: CodeInvalidGrant, reason: []string{"has no expiry"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set, _ := NewSet(c.grants, c.rules)
			at := c.at
			if at.IsZero() {
				at = now
			}
			d := Decide(c.req, set, at)
			if d.Code != c.code {
				t.Fatalf("code = %q, want %q (reason %q)", d.Code, c.code, d.Reason)
			}
			if d.Allow != (c.code == CodeAllow) {
				t.Errorf("Allow = %v with code %q", d.Allow, d.Code)
			}
			if d.Reason == "" {
				t.Error("empty reason")
			}
			if c.id != "" && d.GrantID != c.id && d.RuleName != c.id {
				t.Errorf("grant %q rule %q, want %q (reason %q)", d.GrantID, d.RuleName, c.id, d.Reason)
			}
			for _, r := range c.reason {
				if !strings.Contains(d.Reason, r) {
					t.Errorf("reason %q does not contain %q", d.Reason, r)
				}
			}
			if d.Allow && d.Remaining != c.remaining && c.remaining != 0 {
				t.Errorf("remaining = %v, want %v", d.Remaining, c.remaining)
			}
			if d.Allow && c.remaining == 0 && d.RuleName != "" && c.name == "standing rule for a group allows, unlimited" && d.Remaining != 0 {
				t.Errorf("unlimited rule remaining = %v", d.Remaining)
			}
		})
	}
}

func with2(r Request, f func(*Request)) Request {
	f(&r)
	return r
}

func TestAllowFields(t *testing.T) {
	gr := with(g("g1", "alice", "ALL"), func(x *grant.Grant) {
		x.Windows, x.Timezone, x.ExpiresAt, x.EndAtWindowClose, x.BreakGlass = []string{"Mon 09:00-12:00"}, "Europe/Berlin", now.Add(8*24*time.Hour), true, true
	})
	set, err := NewSet([]grant.Grant{gr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := Decide(sudo("alice", "/bin/true"), set, now)
	want := Decision{
		Allow: true, Code: CodeAllow, Reason: "allowed by grant g1", GrantID: "g1", GrantedBy: "bob", GrantReason: "INC-4711",
		BreakGlass: true, ExpiresAt: gr.ExpiresAt, WindowCloses: time.Date(2026, 3, 9, 11, 0, 0, 0, time.UTC),
		EndAtWindowClose: true, Remaining: time.Hour,
	}
	if !d.WindowCloses.Equal(want.WindowCloses) {
		t.Errorf("WindowCloses = %s", d.WindowCloses)
	}
	d.WindowCloses = want.WindowCloses
	if fmt.Sprint(d) != fmt.Sprint(want) {
		t.Errorf("got  %+v\nwant %+v", d, want)
	}
	if c, ok := set.WindowCloseAt("g1", now); !ok || !c.Equal(want.WindowCloses) {
		t.Errorf("WindowCloseAt = %s %v", c, ok)
	}
	if e, ok := set.End("g1", now); !ok || !e.Equal(want.WindowCloses) {
		t.Errorf("End = %s %v", e, ok)
	}
	if _, ok := set.End("g1", now.Add(2*time.Hour)); ok {
		t.Error("End outside the window must report false")
	}
	if _, ok := set.WindowCloseAt("nope", now); ok {
		t.Error("unknown grant")
	}
	if got, ok := set.Grant("g1"); !ok || got.ID != "g1" || set.Len() != 1 {
		t.Error("Grant/Len")
	}
	// A deny outside the window carries the next opening.
	d = Decide(sudo("alice", "/bin/true"), set, now.Add(2*time.Hour))
	if d.Code != CodeOutsideWindow || !d.NextOpening.Equal(time.Date(2026, 3, 16, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("deny %+v", d)
	}
}

func TestNewSetErrors(t *testing.T) {
	grants := []grant.Grant{
		g("ok", "alice", "ALL"),
		g("badcmd", "alice", "/usr/bin/*"),
		with(g("badwin", "alice", "ALL"), func(x *grant.Grant) { x.Windows = []string{"Mon-Fry 09:00-17:00"} }),
		with(g("badtz", "alice", "ALL"), func(x *grant.Grant) { x.Timezone = "Mars/Olympus" }),
		with(g("nocmd", "alice"), func(x *grant.Grant) {}),
		with(g("logincmd", "alice", "ALL"), func(x *grant.Grant) { x.Kind = grant.KindLogin }),
		with(g("never", "alice", "ALL"), func(x *grant.Grant) { x.NotBefore = x.ExpiresAt }),
		g("ok", "bob", "ALL"),
	}
	rules := []grant.Rule{
		{Name: "good", Users: []string{"alice"}, Commands: []string{"ALL"}},
		{Name: "", Users: []string{"alice"}, Commands: []string{"ALL"}},
		{Name: "nousers", Commands: []string{"ALL"}},
		{Name: "badcmd", Users: []string{"alice"}, Commands: []string{"rm -rf /"}},
		{Name: "badwin", Users: []string{"alice"}, Commands: []string{"ALL"}, Windows: []string{"9-5"}},
	}
	set, err := NewSet(grants, rules)
	if set == nil || err == nil {
		t.Fatal("want a usable set and an error")
	}
	for _, want := range []string{
		`grant "badcmd": command pattern "/usr/bin/*": wildcards`,
		`grant "badwin": window "Mon-Fry 09:00-17:00": unknown day "Fry"`,
		`grant "badtz": timezone "Mars/Olympus"`,
		`sudo grant "nocmd" lists no commands`,
		`login grant "logincmd" lists commands`,
		`grant "never" is never valid`,
		`grant "ok" appears twice`,
		`a standing rule has no name`,
		`rule "nousers" names no users`,
		`rule "badcmd": command pattern "rm -rf /"`,
		`rule "badwin": window "9-5"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if d := Decide(sudo("alice", "/bin/true"), set, now); d.GrantID != "ok" && d.RuleName != "" {
		t.Errorf("good entries must still work: %+v", d)
	}
	if err := Validate(g("x", "alice", "ALL")); err != nil {
		t.Error(err)
	}
}

func TestNilSet(t *testing.T) {
	d := Decide(sudo("alice", "/bin/true"), nil, now)
	if d.Allow || d.Code != CodeNoGrant {
		t.Errorf("%+v", d)
	}
	var s *Set
	if s.Len() != 0 {
		t.Error("Len")
	}
	if _, ok := s.Grant("x"); ok {
		t.Error("Grant")
	}
}

// FuzzDecide builds small sets from fuzz input and checks the invariants
// every decision must keep.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, uint8(0), int64(0))
	f.Add([]byte("alice restart nginx shell window"), uint8(3), int64(3600))
	f.Add([]byte{255, 254, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, uint8(7), int64(-86400))
	users := []string{"alice", "bob", "carol"}
	cmds := []string{"ALL", "/usr/bin/systemctl restart nginx", "/usr/bin/systemctl", `/usr/bin/journalctl ""`, "/usr/bin/systemctl restart *", "/usr/bin/", "/bin/bash", "/bin/", "bad pattern", "/usr/bin/kill -[0-9] *"}
	windows := [][]string{nil, {"Mon-Fri 09:00-17:00"}, {"Daily 22:00-06:00"}, {"Sun 02:30-03:30"}, {"Mon-Sun 00:00-24:00"}, {"Mon-Fry 09:00-17:00"}}
	zones := []string{"", "Europe/Berlin", "America/New_York"}
	states := []grant.State{grant.StateActive, grant.StateActive, grant.StateRevoked, grant.StateExpired, "weird"}
	reqCmds := []struct {
		path string
		args []string
	}{
		{"/usr/bin/systemctl", []string{"restart", "nginx"}},
		{"/usr/bin/systemctl", []string{"restart", "nginx", "x"}},
		{"/usr/bin/systemctl", []string{"restart", "nginx; sh"}},
		{"/usr/bin/journalctl", nil},
		{"/bin/bash", nil},
		{"/usr/bin/bash", []string{"-c", "id"}},
		{"/usr/bin/kill", []string{"-9", "1"}},
		{"/usr/bin/../bin/systemctl", nil},
		{"/usr/bin/ls", []string{"../../etc/shadow"}},
	}
	f.Fuzz(func(t *testing.T, data []byte, reqSel uint8, offset int64) {
		next := func() int {
			if len(data) == 0 {
				return 0
			}
			b := int(data[0])
			data = data[1:]
			return b
		}
		at := now.Add(time.Duration(offset%(14*86400)) * time.Second)
		var grants []grant.Grant
		for i := 0; len(data) >= 8 && i < 12; i++ {
			gr := grant.Grant{
				ID: fmt.Sprintf("g%d", i), User: users[next()%len(users)], Kind: grant.KindSudo,
				State:     states[next()%len(states)],
				NotBefore: now.Add(time.Duration(next()-128) * 10 * time.Minute),
				GrantedBy: "bob", Reason: "fuzz",
			}
			gr.ExpiresAt = gr.NotBefore.Add(time.Duration(next()) * 20 * time.Minute)
			if next()%5 == 0 {
				gr.Kind = grant.KindLogin
			} else {
				for n := next()%3 + 1; n > 0; n-- {
					gr.Commands = append(gr.Commands, cmds[next()%len(cmds)])
				}
			}
			gr.Windows = windows[next()%len(windows)]
			gr.Timezone = zones[next()%len(zones)]
			sel := next()
			switch sel % 4 {
			case 1:
				gr.RunAs = "postgres"
			case 2:
				gr.RunAs = "ALL"
			}
			// The byte's next bits pick a runas group: (user:group).
			gr.RunAsGroup = []string{"", "", "adm", "ALL"}[(sel>>2)%4]
			grants = append(grants, gr)
		}
		var rules []grant.Rule
		if len(data) >= 3 {
			rules = append(rules, grant.Rule{
				Name: "r", Users: []string{[]string{"alice", "%ops", "ALL"}[next()%3]},
				Commands: []string{cmds[next()%len(cmds)]}, Windows: windows[next()%len(windows)],
			})
		}
		set, _ := NewSet(grants, rules)
		rc := reqCmds[int(reqSel)%len(reqCmds)]
		req := Request{User: users[int(reqSel/16)%len(users)], Kind: grant.KindSudo, Command: rc.path, Args: rc.args, Groups: []string{"ops"}}
		if reqSel&8 != 0 {
			req.Shell = true
		}
		if reqSel&4 != 0 && reqSel&2 != 0 {
			req.Kind = grant.KindLogin
		} else if reqSel&4 != 0 {
			req.RunAs = "postgres"
		}
		switch offset & 3 {
		case 1:
			req.RunAsGroup = "adm" // sudo -g adm (with -u, or as the user)
			if req.RunAs == "" {
				req.RunAs = req.User
			}
		case 2:
			req.RunAsGroup, req.RunAsUserGroups = "ops", []string{"ops"} // the target's own group
		case 3:
			req.RunAsGroup = "shadow"
		}
		d := Decide(req, set, at)
		if d2 := Decide(req, set, at); fmt.Sprint(d) != fmt.Sprint(d2) {
			t.Fatal("Decide is not deterministic")
		}
		if d.Reason == "" || d.Code == "" {
			t.Fatalf("decision without code or reason: %+v", d)
		}
		if !d.Allow {
			if d.Code == CodeAllow {
				t.Fatalf("deny with allow code: %+v", d)
			}
			return
		}
		if d.Code != CodeAllow {
			t.Fatalf("allow with code %q", d.Code)
		}
		if d.GrantID == "" {
			if d.RuleName == "" || d.Remaining < 0 || req.Kind != grant.KindSudo {
				t.Fatalf("allow without grant: %+v", d)
			}
			return
		}
		gr, ok := set.Grant(d.GrantID)
		if !ok {
			t.Fatalf("allowed by unknown grant %q", d.GrantID)
		}
		if gr.User != req.User || gr.Kind != req.Kind || gr.State != grant.StateActive {
			t.Fatalf("allowed by grant %+v for request %+v", gr, req)
		}
		if !at.Before(gr.ExpiresAt) || at.Before(gr.NotBefore) {
			t.Fatalf("allowed by a grant outside its lifetime at %s: %+v", at, gr)
		}
		if d.Remaining <= 0 || d.Remaining > gr.ExpiresAt.Sub(at) {
			t.Fatalf("remaining %v for grant expiring in %v", d.Remaining, gr.ExpiresAt.Sub(at))
		}
		if sched, err := window.ParseSchedule(gr.Windows, gr.Timezone); err != nil || !sched.Open(at) || !sched.Open(at.Add(d.Remaining-time.Nanosecond)) {
			t.Fatalf("allowed outside the grant's window %v at %s for %v (%v)", gr.Windows, at, d.Remaining, err)
		}
		if req.Kind == grant.KindSudo && !fuzzRunAsOK(&req, &gr) {
			t.Fatalf("allowed %+v by grant %+v whose runas does not cover it", req, gr)
		}
		if req.Kind == grant.KindSudo {
			shell := req.Shell || cmdmatch.IsShell(req.Command)
			ok := false
			for _, c := range gr.Commands {
				p, err := cmdmatch.Compile(c)
				if err != nil {
					t.Fatalf("allowed by a grant with a bad pattern %q", c)
				}
				if (!shell && p.Match(req.Command, req.Args)) || (shell && p.AllowsShell(req.Command, req.Args)) {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("allowed %+v by grant %+v whose patterns do not cover it", req, gr)
			}
		}
	})
}

// benchSet builds n active grants over n/10 users; a tenth have windows.
func benchSet(b *testing.B, n int) *Set {
	set, err := NewSet(benchGrants(n), benchRules)
	if err != nil {
		b.Fatal(err)
	}
	return set
}

var benchRules = []grant.Rule{
	{Name: "web", Users: []string{"%web"}, Commands: []string{"/usr/bin/systemctl reload nginx"}},
	{Name: "status", Users: []string{"ALL"}, Commands: []string{"/usr/bin/systemctl status *"}, Windows: []string{"Mon-Fri 08:00-18:00"}},
}

func benchGrants(n int) []grant.Grant {
	grants := make([]grant.Grant, n)
	cmds := [][]string{
		{"/usr/bin/systemctl restart nginx"},
		{"/usr/bin/journalctl", `/usr/bin/systemctl status *`},
		{"/usr/bin/systemctl restart nginx@*.service"},
		{"ALL"},
	}
	for i := range grants {
		gr := g(fmt.Sprintf("g%07d", i), fmt.Sprintf("user%06d", i%(n/10)), cmds[i%len(cmds)]...)
		gr.ExpiresAt = now.Add(time.Duration(i%600) * time.Minute)
		if i%10 == 0 {
			gr.Windows, gr.Timezone = []string{"Mon-Fri 09:00-17:00"}, "Europe/Berlin"
		}
		grants[i] = gr
	}
	return grants
}

func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		set := benchSet(b, n)
		reqs := []Request{
			sudo("user000007", "/usr/bin/systemctl", "restart", "nginx"),
			sudo("user000001", "/usr/bin/systemctl", "stop", "nginx"),
			sudo("nobody", "/usr/bin/systemctl", "restart", "nginx"),
			with2(sudo("user000005", "/usr/bin/systemctl", "reload", "nginx"), func(r *Request) { r.Groups = []string{"staff", "web"} }),
			sudo("user000000", "/usr/bin/systemctl", "restart", "nginx"),
		}
		evening := now.Add(6*time.Hour + 30*time.Minute) // 17:30 in Berlin, before the grants expire
		b.Run(fmt.Sprintf("grants=%d/allow", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := Decide(reqs[0], set, now); !d.Allow {
					b.Fatal(d.Reason)
				}
			}
		})
		b.Run(fmt.Sprintf("grants=%d/allow_windowed", n), func(b *testing.B) {
			// user000000 holds only windowed grants.
			b.ReportAllocs()
			for b.Loop() {
				if d := Decide(reqs[4], set, now); !d.Allow || d.WindowCloses.IsZero() {
					b.Fatal(d.Reason)
				}
			}
		})
		b.Run(fmt.Sprintf("grants=%d/deny_outside_window", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := Decide(reqs[4], set, evening); d.Code != CodeOutsideWindow {
					b.Fatal(d.Reason)
				}
			}
		})
		b.Run(fmt.Sprintf("grants=%d/deny_other_command", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := Decide(reqs[1], set, now); d.Allow {
					b.Fatal("allowed")
				}
			}
		})
		b.Run(fmt.Sprintf("grants=%d/deny_unknown_user", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Decide(reqs[2], set, now)
			}
		})
		b.Run(fmt.Sprintf("grants=%d/allow_rule", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := Decide(reqs[3], set, now); !d.Allow {
					b.Fatal(d.Reason)
				}
			}
		})
	}
}

func BenchmarkNewSet(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		grants := benchGrants(n)
		b.Run(fmt.Sprintf("grants=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NewSet(grants, benchRules); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fuzzRunAsOK restates sudoers' Runas_Spec for one grant, independently of
// runAsAllowed, for the fuzzer to hold decisions against.
func fuzzRunAsOK(req *Request, gr *grant.Grant) bool {
	target := req.RunAs
	if target == "" {
		target = grant.DefaultRunAs
	}
	user := gr.RunAs
	if user == "" {
		user = grant.DefaultRunAs
	}
	if req.RunAsGroup == "" {
		return user == "ALL" || user == target
	}
	if user == "ALL" && gr.RunAsGroup == "" {
		return true
	}
	if user != "ALL" && user != target && target != req.User {
		return false
	}
	if gr.RunAsGroup == "ALL" || gr.RunAsGroup == req.RunAsGroup {
		return true
	}
	own := req.RunAsUserGroups
	if own == nil && target == req.User {
		own = req.Groups
	}
	for _, g := range own {
		if g == req.RunAsGroup {
			return true
		}
	}
	return false
}
