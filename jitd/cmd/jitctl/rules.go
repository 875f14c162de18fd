package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/jitpam/jit/jitd/api"
)

// rules lists the standing rules of jitd's policy that apply to a user,
// with whether each is open now: what the user may run without a grant.
func (c *cli) rules(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rules", flag.ContinueOnError)
	user := fs.String("user", "", "whose rules (approvers; default: yours)")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected %q: jitctl rules [--user U]", strings.Join(pos, " "))
	}
	rs, err := c.client.Rules(ctx, *user)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(rs)
	}
	if len(rs.Rules) == 0 {
		fmt.Fprintf(c.stdout, "no standing rules apply to %s\n", rs.User)
		return nil
	}
	t := newTable(c.stdout, "RULE", "VIA", "RUNAS", "COMMANDS", "WINDOW", "NOW")
	for _, r := range rs.Rules {
		runas := strings.Join(r.RunAs, ",")
		if len(r.RunAsGroups) > 0 {
			runas += ":" + strings.Join(r.RunAsGroups, ",")
		}
		t.row(r.Name, r.Via, runas, strings.Join(r.Commands, "; "), r.Schedule, ruleNow(&r, rs.At))
	}
	return t.flush()
}

// ruleNow says whether a rule allows at now and until or from when.
func ruleNow(r *api.RuleStatus, now time.Time) string {
	switch {
	case r.Open && r.Closes.IsZero():
		return "open"
	case r.Open:
		return "open, closes " + in(now, r.Closes) + " (" + ruleClock(r, r.Closes, now) + ")"
	case r.Opens.IsZero():
		return "closed, never opens"
	}
	return "closed, opens " + in(now, r.Opens) + " (" + ruleClock(r, r.Opens, now) + ")"
}

// ruleClock renders t in the rule's zone, with the weekday when it is not
// within the next day. Without the zone database, t keeps the offset jitd
// sent, which is the rule's.
func ruleClock(r *api.RuleStatus, t, now time.Time) string {
	if loc, err := time.LoadLocation(r.Timezone); err == nil {
		t = t.In(loc)
	}
	if t.Sub(now) < 20*time.Hour {
		return t.Format("15:04 MST")
	}
	return t.Format("Mon 15:04 MST")
}
