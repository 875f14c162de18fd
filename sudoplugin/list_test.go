package main

import (
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/api"
)

// The rule lines of sudo -l: whether the rule allows now, and until or from
// when, in the rule's own zone.
func TestRuleState(t *testing.T) {
	now := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC) // Monday, 11:00 in Berlin
	berlin := "Europe/Berlin"
	cet := time.FixedZone("", 3600) // as a time in Berlin arrives from jitd
	for _, c := range []struct {
		r    api.RuleStatus
		want string
	}{
		{api.RuleStatus{Open: true}, "open now, no time limit"},
		{api.RuleStatus{Open: true, Timezone: berlin, Closes: time.Date(2026, 3, 9, 17, 0, 0, 0, cet)},
			"open now, closes in 6h (at 17:00 Europe/Berlin)"},
		{api.RuleStatus{Timezone: berlin, Opens: time.Date(2026, 3, 10, 9, 0, 0, 0, cet)},
			"closed now, opens in 22h (Tue 09:00 Europe/Berlin)"},
		{api.RuleStatus{Opens: time.Date(2026, 3, 9, 22, 0, 0, 0, time.UTC)}, "closed now, opens in 12h (at 22:00 UTC)"},
		{api.RuleStatus{}, "closed, its window never opens"},
	} {
		if got := ruleState(&c.r, now); got != c.want {
			t.Errorf("ruleState(%+v) = %q, want %q", c.r, got, c.want)
		}
	}
}

func TestRunAsSpec(t *testing.T) {
	for _, c := range []struct {
		users []string
		group string
		want  string
	}{
		{[]string{"root"}, "", "(root)"},
		{[]string{"root"}, "adm", "(root : adm)"},
		{[]string{"root", "postgres"}, "", "(root, postgres)"},
	} {
		if got := runAsSpec(c.users, c.group); got != c.want {
			t.Errorf("runAsSpec(%q, %q) = %q, want %q", c.users, c.group, got, c.want)
		}
	}
	for via, want := range map[string]string{"*": "applies to everyone", "ALL": "applies to everyone", "%ops": "via group ops", "alice": "names alice"} {
		if got := viaText(via); got != want {
			t.Errorf("viaText(%q) = %q, want %q", via, got, want)
		}
	}
}
