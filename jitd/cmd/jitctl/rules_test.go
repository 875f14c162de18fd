package main

import (
	"testing"
	"time"
	_ "time/tzdata" // the zone names must not depend on the host's zoneinfo

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/grant"
)

func TestRuleNow(t *testing.T) {
	now := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC) // Monday
	for _, c := range []struct {
		r    api.RuleStatus
		want string
	}{
		{api.RuleStatus{Open: true}, "open"},
		{api.RuleStatus{Open: true, Timezone: "Europe/Berlin", Closes: time.Date(2026, 3, 9, 16, 0, 0, 0, time.UTC)}, "open, closes in 6h (17:00 CET)"},
		{api.RuleStatus{Opens: time.Date(2026, 3, 11, 8, 0, 0, 0, time.UTC)}, "closed, opens in 1d22h (Wed 08:00 UTC)"},
		{api.RuleStatus{}, "closed, never opens"},
	} {
		if got := ruleNow(&c.r, now); got != c.want {
			t.Errorf("ruleNow(%+v) = %q, want %q", c.r, got, c.want)
		}
	}
}

func TestRunAsOf(t *testing.T) {
	for _, c := range []struct {
		kind         grant.Kind
		runas, group string
		want         string
	}{
		{grant.KindSudo, "", "", ""},
		{grant.KindSudo, "root", "", ""},
		{grant.KindSudo, "postgres", "", " as postgres"},
		{grant.KindSudo, "root", "adm", " as root:adm"},
		{grant.KindSudo, "", "adm", " as root:adm"},
		{grant.KindLogin, "root", "adm", ""},
	} {
		if got := runAsOf(c.kind, c.runas, c.group); got != c.want {
			t.Errorf("runAsOf(%s, %q, %q) = %q, want %q", c.kind, c.runas, c.group, got, c.want)
		}
	}
}
