package decide

import (
	"strings"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

// TestRunAsGroup checks grants with a runas group against sudoers'
// Runas_Spec semantics, case by case as sudoers(5) and sudoers' own
// runaslist_matches decide them.
func TestRunAsGroup(t *testing.T) {
	rootAdm := with(g("g1", "alice", "/usr/bin/id"), func(x *grant.Grant) { x.RunAsGroup = "adm" })
	root := g("g1", "alice", "/usr/bin/id")
	rootAll := with(g("g1", "alice", "/usr/bin/id"), func(x *grant.Grant) { x.RunAsGroup = "ALL" })
	pgAdm := with(g("g1", "alice", "/usr/bin/id"), func(x *grant.Grant) { x.RunAs, x.RunAsGroup = "postgres", "adm" })
	// req is sudo [-u runas] [-g group] /usr/bin/id by alice (groups
	// users, wheel), with the target's groups as jitd would look them up.
	req := func(runas, group string, targetGroups ...string) Request {
		r := sudo("alice", "/usr/bin/id")
		r.Groups = []string{"users", "wheel"}
		r.RunAs, r.RunAsGroup, r.RunAsUserGroups = runas, group, targetGroups
		return r
	}
	cases := []struct {
		name   string
		gr     grant.Grant
		req    Request
		allow  bool
		reason []string
	}{
		// alice ALL=(root:adm) /usr/bin/id
		{"(root:adm) sudo CMD runs as root", rootAdm, req("", ""), true, nil},
		{"(root:adm) sudo -u root CMD", rootAdm, req("root", ""), true, nil},
		{"(root:adm) sudo -g adm CMD runs as alice:adm", rootAdm, req("alice", "adm"), true, nil},
		{"(root:adm) sudo -u alice -g adm CMD: naming oneself is -g alone", rootAdm, req("alice", "adm"), true, nil},
		{"(root:adm) sudo -u root -g adm CMD", rootAdm, req("root", "adm", "root"), true, nil},
		{"(root:adm) sudo -g jitsre CMD is refused and says what is allowed", rootAdm, req("alice", "jitsre"), false,
			[]string{"grant g1 lets alice run this only as root or with group adm (-u root, -g adm, or both), not as alice with group jitsre"}},
		{"(root:adm) sudo -u root -g jitsre CMD", rootAdm, req("root", "jitsre", "root"), false, []string{"not as root with group jitsre"}},
		{"(root:adm) sudo -u bob -g adm CMD: the user must still match", rootAdm, req("bob", "adm", "bob"), false,
			[]string{"not as bob with group adm"}},
		{"(root:adm) sudo -u bob CMD", rootAdm, req("bob", ""), false, []string{"only as root or with group adm", "not as bob"}},
		{"(root:adm) sudo -u alice CMD: no -g, alice is not listed", rootAdm, req("alice", ""), false, []string{"not as alice"}},
		// A group of the target user's own is allowed without being listed.
		{"(root:adm) sudo -g wheel CMD: alice's own group", rootAdm, req("alice", "wheel"), true, nil},
		{"(root:adm) sudo -u root -g root CMD: root's own group", rootAdm, req("root", "root", "root"), true, nil},

		// alice ALL=(root) /usr/bin/id: no -g but the target's own groups.
		{"(root) sudo -g adm CMD", root, req("alice", "adm"), false,
			[]string{"only as root with that user's own group, not as alice with group adm"}},
		{"(root) sudo -u root -g adm CMD", root, req("root", "adm", "root"), false, []string{"not as root with group adm"}},
		{"(root) sudo -u root -g root CMD", root, req("root", "root", "root"), true, nil},
		{"(root) sudo -g users CMD: alice's primary group", root, req("alice", "users"), true, nil},
		{"(root) own groups come from the target, not the invoker", root, req("root", "wheel", "root"), false, nil},

		// alice ALL=(root:ALL) /usr/bin/id
		{"(root:ALL) sudo -g shadow CMD", rootAll, req("alice", "shadow"), true, nil},
		{"(root:ALL) sudo -u root -g shadow CMD", rootAll, req("root", "shadow", "root"), true, nil},
		{"(root:ALL) sudo -u bob -g shadow CMD", rootAll, req("bob", "shadow", "bob"), false, []string{"with any group"}},

		// alice ALL=(postgres:adm) /usr/bin/id
		{"(postgres:adm) sudo -u postgres -g adm CMD", pgAdm, req("postgres", "adm", "postgres"), true, nil},
		{"(postgres:adm) sudo -g adm CMD", pgAdm, req("alice", "adm"), true, nil},
		{"(postgres:adm) sudo CMD: root is not listed", pgAdm, req("", ""), false, []string{"only as postgres or with group adm", "not as root"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set, err := NewSet([]grant.Grant{c.gr}, nil)
			if err != nil {
				t.Fatal(err)
			}
			d := Decide(c.req, set, now)
			if d.Allow != c.allow {
				t.Fatalf("allow = %v, want %v: %s", d.Allow, c.allow, d.Reason)
			}
			if !c.allow && d.Code != CodeRunAs {
				t.Errorf("code = %s, want %s", d.Code, CodeRunAs)
			}
			for _, r := range c.reason {
				if !strings.Contains(d.Reason, r) {
					t.Errorf("reason %q lacks %q", d.Reason, r)
				}
			}
		})
	}
}

// Rules follow the same sudoers rules for -g: the groups they list
// (runas_groups), the target's own groups, and runas ALL alone allowing
// any group, as jit always documented.
func TestRuleRunAsGroup(t *testing.T) {
	rules := []grant.Rule{{Name: "id", Users: []string{"alice"}, Commands: []string{"/usr/bin/id"}}}
	set, err := NewSet(nil, rules)
	if err != nil {
		t.Fatal(err)
	}
	r := sudo("alice", "/usr/bin/id")
	r.Groups = []string{"users"}
	r.RunAs, r.RunAsGroup = "alice", "users"
	if d := Decide(r, set, now); !d.Allow {
		t.Errorf("-g with the invoking user's own group: %s", d.Reason)
	}
	r.RunAsGroup = "adm"
	if d := Decide(r, set, now); d.Allow || d.Code != CodeRunAs {
		t.Errorf("-g adm under a root-only rule: %+v", d)
	}
	set, _ = NewSet(nil, []grant.Rule{{Name: "any", Users: []string{"alice"}, Commands: []string{"/usr/bin/id"}, RunAs: []string{"ALL"}}})
	r.RunAs = "bob"
	if d := Decide(r, set, now); !d.Allow {
		t.Errorf("runas ALL rule must allow -u bob -g adm: %s", d.Reason)
	}

	// alice ALL=(root:adm) /usr/bin/id as a rule.
	set, _ = NewSet(nil, []grant.Rule{{Name: "id", Users: []string{"alice"}, Commands: []string{"/usr/bin/id"}, RunAsGroups: []string{"adm"}}})
	for _, c := range []struct {
		runas, group string
		allow        bool
	}{{"alice", "adm", true}, {"root", "adm", true}, {"", "", true}, {"alice", "shadow", false}, {"bob", "adm", false}} {
		r.RunAs, r.RunAsGroup, r.RunAsUserGroups = c.runas, c.group, nil
		d := Decide(r, set, now)
		if d.Allow != c.allow {
			t.Errorf("(root:adm) rule, -u %q -g %q: allow %v, want %v: %s", c.runas, c.group, d.Allow, c.allow, d.Reason)
		}
		if !c.allow && (d.Code != CodeRunAs || !strings.Contains(d.Reason, `standing rule "id" lets alice run this only as root or with group adm (-u root, -g adm, or both)`)) {
			t.Errorf("(root:adm) rule, -u %q -g %q: %s %q", c.runas, c.group, d.Code, d.Reason)
		}
	}
}

func TestRulesFor(t *testing.T) {
	rules := []grant.Rule{
		{Name: "web", Users: []string{"%web"}, Commands: []string{"/usr/bin/systemctl restart nginx"},
			Windows: []string{"Mon-Fri 09:00-17:00"}, Timezone: "Europe/Berlin"},
		{Name: "night", Users: []string{"alice", "%web"}, Commands: []string{"/usr/bin/journalctl"},
			Windows: []string{"Daily 22:00-06:00"}},
		{Name: "bob-only", Users: []string{"bob"}, Commands: []string{"ALL"}},
		{Name: "everyone", Users: []string{"ALL"}, Commands: []string{"/usr/bin/uptime"}, RunAs: []string{"nobody"}},
		{Name: "broken", Users: []string{"alice"}, Commands: []string{"uptime"}},
	}
	set, _ := NewSet(nil, rules)
	got := set.Rules("alice", []string{"web"}, now) // Monday 11:00 in Berlin
	var names []string
	for _, r := range got {
		names = append(names, r.Rule.Name)
	}
	if strings.Join(names, ",") != "web,night,everyone" {
		t.Fatalf("rules for alice = %v, want web,night,everyone in file order, once each, without bob's or broken ones", names)
	}
	web, night, every := got[0], got[1], got[2]
	if web.Via != "%web" || night.Via != "alice" || every.Via != "ALL" {
		t.Errorf("via = %q %q %q", web.Via, night.Via, every.Via)
	}
	if !web.Open || !web.Closes.Equal(time.Date(2026, 3, 9, 16, 0, 0, 0, time.UTC)) || !web.Opens.IsZero() {
		t.Errorf("web: open %v closes %s opens %s, want open until 17:00 CET", web.Open, web.Closes, web.Opens)
	}
	if web.Schedule != "Mon-Fri 09:00-17:00 Europe/Berlin" || web.Location.String() != "Europe/Berlin" {
		t.Errorf("web schedule %q in %s", web.Schedule, web.Location)
	}
	if night.Open || !night.Opens.Equal(time.Date(2026, 3, 9, 22, 0, 0, 0, time.UTC)) || !night.Closes.IsZero() {
		t.Errorf("night: open %v opens %s closes %s, want closed until 22:00 UTC", night.Open, night.Opens, night.Closes)
	}
	if !every.Open || !every.Closes.IsZero() || every.Schedule != "always" {
		t.Errorf("everyone: %+v, want open without end", every)
	}
	// The listing agrees with decisions.
	for _, r := range got {
		req := Request{User: "alice", Groups: []string{"web"}, Kind: grant.KindSudo, Command: "/usr/bin/journalctl"}
		if r.Rule.Name == "night" {
			if d := Decide(req, set, now); d.Allow || d.RuleName != "night" {
				t.Errorf("night is listed closed but decides %+v", d)
			}
			if d := Decide(req, set, night.Opens); !d.Allow || d.RuleName != "night" {
				t.Errorf("night does not allow when it opens: %+v", d)
			}
		}
	}
	if got := set.Rules("carol", nil, now); len(got) != 1 || got[0].Rule.Name != "everyone" {
		t.Errorf("rules for carol = %+v", got)
	}
	var nilSet *Set
	if got := nilSet.Rules("alice", nil, now); got != nil {
		t.Errorf("nil set: %+v", got)
	}
	// WithGrants keeps the rules.
	set2, _ := set.WithGrants(g("g1", "alice", "ALL"))
	if got := set2.Rules("alice", []string{"web"}, now); len(got) != 3 {
		t.Errorf("after WithGrants: %d rules", len(got))
	}
}
