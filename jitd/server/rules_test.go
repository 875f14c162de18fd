package server

import (
	"strings"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/jitd/policy"
)

// GET /v1/rules answers from the loaded policy at jitd's clock: the rules
// that name the user, a group of theirs, or everyone, in file order, with
// whether each window is open and when it closes or opens.
func TestRules(t *testing.T) {
	pol := policy.Default()
	pol.Rules = []grant.Rule{
		{Name: "always", Users: []string{"root"}, Commands: []string{"/usr/bin/id"}},
		{Name: "never-root", Users: []string{"nobody"}, Commands: []string{"ALL"}},
		// Open every day but the one after tomorrow, so that the test does
		// not depend on the hour it runs at.
		{Name: "by-group", Users: []string{"%root"}, Commands: []string{"/usr/bin/journalctl"},
			RunAs: []string{"nobody"}, Windows: []string{closedOn(time.Now().UTC().AddDate(0, 0, 2))}, Timezone: "Asia/Tokyo"},
		{Name: "everyone", Users: []string{"*"}, Commands: []string{"/usr/bin/uptime"},
			Windows: []string{closedOn(time.Now().UTC())}},
	}
	ts := startServer(t, pol)

	rs, err := ts.client.Rules(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if rs.User != "root" || time.Since(rs.At) > time.Minute {
		t.Errorf("answer for %q at %s, want the caller (root) now", rs.User, rs.At)
	}
	var names []string
	for _, r := range rs.Rules {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "always,by-group,everyone" {
		t.Fatalf("rules for root = %v, want always,by-group,everyone", names)
	}
	always, byGroup, everyone := rs.Rules[0], rs.Rules[1], rs.Rules[2]
	if always.Via != "root" || !always.Open || !always.Closes.IsZero() || always.Schedule != "always" ||
		strings.Join(always.RunAs, ",") != "root" || strings.Join(always.Commands, ",") != "/usr/bin/id" {
		t.Errorf("always: %+v", always)
	}
	if byGroup.Via != "%root" || !byGroup.Open || byGroup.Closes.Before(rs.At) || !byGroup.Opens.IsZero() ||
		strings.Join(byGroup.RunAs, ",") != "nobody" || len(byGroup.Windows) != 1 {
		t.Errorf("by-group: %+v, want open now with a close ahead", byGroup)
	}
	// Times travel with the offset of the rule's zone, so that clients
	// show the rule's wall clock without loading zone files.
	if _, off := byGroup.Closes.Zone(); off != 9*3600 || byGroup.Closes.Hour() != 0 || byGroup.Timezone != "Asia/Tokyo" {
		t.Errorf("by-group closes at %s, want midnight in Tokyo (+09:00)", byGroup.Closes)
	}
	if everyone.Via != "*" || everyone.Open || !everyone.Opens.After(rs.At) || everyone.Opens.Sub(rs.At) > 24*time.Hour {
		t.Errorf("everyone: %+v, want closed today and opening within a day", everyone)
	}

	// Root (an approver) may ask about anyone; the answer is theirs.
	rs, err = ts.client.Rules(ctx(t), "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if rs.User != "nobody" || len(rs.Rules) != 2 || rs.Rules[0].Name != "never-root" || rs.Rules[1].Name != "everyone" {
		t.Errorf("rules for nobody: %+v", rs)
	}
	if _, err := ts.client.Rules(ctx(t), "no-such-user-xyz"); apiCode(err) != api.CodeUnknownUser {
		t.Errorf("unknown user: want %s, got %v", api.CodeUnknownUser, err)
	}

	// A reload is seen at once.
	pol2 := *pol
	pol2.Rules = pol.Rules[:1]
	if err := ts.srv.SetPolicy(&pol2); err != nil {
		t.Fatal(err)
	}
	if rs, err := ts.client.Rules(ctx(t), ""); err != nil || len(rs.Rules) != 1 {
		t.Errorf("after reload: %+v %v", rs, err)
	}
}

// closedOn is a window spec open every day of the week except day's.
func closedOn(day time.Time) string {
	names := []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	var open []string
	for d := range 7 {
		if time.Weekday(d) != day.Weekday() {
			open = append(open, names[d])
		}
	}
	return strings.Join(open, ",") + " 00:00-24:00"
}

// A grant's runas group travels from jitctl to the store and into
// decisions: sudo -g GROUP runs as the invoking user, -u root -g GROUP as
// root, any other group is refused with what the grant allows.
func TestGrantRunAsGroup(t *testing.T) {
	ts := startServer(t, nil)
	g, err := ts.client.Grant(ctx(t), &api.GrantSpec{User: "root", Kind: grant.KindSudo, RunAs: "nobody", RunAsGroup: "adm",
		Commands: []string{"/usr/bin/id"}, Duration: api.Duration(time.Hour), Reason: "INC-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ts.client.GetGrant(ctx(t), g.ID); err != nil || got.RunAs != "nobody" || got.RunAsGroup != "adm" {
		t.Fatalf("stored grant %+v, %v", got, err)
	}
	check := func(runas, group string) *api.Decision {
		t.Helper()
		d, err := ts.client.Check(ctx(t), &api.CheckRequest{User: "root", Kind: grant.KindSudo, RunAs: runas, RunAsGroup: group,
			Command: "/usr/bin/id", DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, c := range []struct{ runas, group string }{{"nobody", ""}, {"nobody", "adm"}, {"root", "adm"}, {"nobody", "nogroup"}, {"root", "root"}} {
		// nogroup is nobody's own group and root root's: sudoers allows
		// those without the grant naming them.
		if d := check(c.runas, c.group); !d.Allow || d.GrantID != g.ID {
			t.Errorf("-u %s -g %q: want allowed by %s, got %+v", c.runas, c.group, g.ID, d)
		}
	}
	d := check("root", "") // root is not the grant's user
	if d.Allow || d.Code != "runas" {
		t.Errorf("as root without -g: %+v", d)
	}
	d = check("nobody", "disk")
	if d.Allow || !strings.Contains(d.Reason, "only as nobody or with group adm") || !strings.Contains(d.Reason, "not as nobody with group disk") {
		t.Errorf("-u nobody -g disk: %+v", d)
	}
	if !strings.Contains(d.Hint, "--runas nobody --runas-group disk") {
		t.Errorf("hint %q does not ask for the group", d.Hint)
	}
	// sudo -g alone targets the invoking user; the hint asks for the group only.
	if d := check("root", "disk"); d.Allow || strings.Contains(d.Hint, "--runas ") || !strings.Contains(d.Hint, "--runas-group disk") {
		t.Errorf("-g disk as root: %+v", d)
	}

	for _, c := range []struct {
		name string
		spec api.GrantSpec
		code string
	}{
		{"unknown group", api.GrantSpec{RunAsGroup: "no-such-group-xyz"}, api.CodeUnknownGroup},
		{"login grant with a group", api.GrantSpec{Kind: grant.KindLogin, RunAsGroup: "adm"}, api.CodeBadRequest},
	} {
		spec := c.spec
		spec.User, spec.Duration, spec.Reason = "root", api.Duration(time.Hour), "t"
		if spec.Kind == "" {
			spec.Kind, spec.Commands = grant.KindSudo, []string{"/usr/bin/id"}
		}
		if _, err := ts.client.Grant(ctx(t), &spec); apiCode(err) != c.code {
			t.Errorf("%s: want %s, got %v", c.name, c.code, err)
		}
	}
	if _, err := ts.client.Grant(ctx(t), &api.GrantSpec{User: "root", Kind: grant.KindSudo, RunAsGroup: "ALL",
		Commands: []string{"/usr/bin/id"}, Duration: api.Duration(time.Hour), Reason: "t"}); err != nil {
		t.Errorf("runas group ALL: %v", err)
	}

	// A request carries its group to the grant an approver makes of it.
	r, err := ts.client.Request(ctx(t), &api.RequestSpec{Kind: grant.KindSudo, RunAsGroup: "adm",
		Commands: []string{"/usr/bin/id"}, Duration: api.Duration(time.Hour), Reason: "INC-2"})
	if err != nil {
		t.Fatal(err)
	}
	if r.RunAsGroup != "adm" || r.RunAs != "root" {
		t.Errorf("request %+v", r)
	}
	if _, err := ts.client.Request(ctx(t), &api.RequestSpec{Kind: grant.KindSudo, RunAsGroup: "no-such-group-xyz",
		Commands: []string{"/usr/bin/id"}, Reason: "INC-2"}); apiCode(err) != api.CodeUnknownGroup {
		t.Errorf("request for an unknown group: %v", err)
	}
}
