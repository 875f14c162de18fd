package decide

import (
	"slices"
	"strings"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

// RuleStatus is a standing rule that applies to one user, evaluated at one
// instant: what sudo -l shows next to the user's grants.
type RuleStatus struct {
	Rule grant.Rule
	// Via is the principal of the rule that names the user: the user's own
	// name, "%group", or "ALL" ("*"), the most specific one when several do.
	Via string
	// Schedule renders the windows the way deny reasons do
	// ("Mon-Fri 09:00-17:00 Europe/Berlin"), or "always".
	Schedule string
	// Open reports whether the rule allows now (always, without windows).
	Open bool
	// Closes is when the open window closes; zero when the rule is closed
	// or its windows never close.
	Closes time.Time
	// Opens is when a closed rule's window opens next; zero when the rule
	// is open or its windows never open.
	Opens time.Time
	// Location is the zone of the windows, for showing Closes and Opens
	// the way the rule is written.
	Location *time.Location
}

// Rules returns the standing rules that apply to user, a member of groups,
// in policy file order, with their windows evaluated at now. These are the
// rules Decide consults for the user; a rule that did not compile is in
// neither.
func (s *Set) Rules(user string, groups []string, now time.Time) []RuleStatus {
	if s == nil {
		return nil
	}
	var entries []*ruleEntry
	// A rule can name the user and one of their groups; list it once.
	s.eachRule(&Request{User: user, Groups: groups}, func(r *ruleEntry) {
		if !slices.Contains(entries, r) {
			entries = append(entries, r)
		}
	})
	slices.SortFunc(entries, func(a, b *ruleEntry) int { return a.order - b.order })
	out := make([]RuleStatus, 0, len(entries))
	for _, r := range entries {
		st := RuleStatus{
			Rule:     r.r,
			Via:      via(r.r.Users, user, groups),
			Schedule: r.sched.String(),
			Open:     r.sched.Open(now),
			Location: r.sched.Location(),
		}
		if st.Open {
			st.Closes, _ = r.sched.CloseAt(now)
		} else {
			st.Opens, _ = r.sched.NextOpening(now)
		}
		out = append(out, st)
	}
	return out
}

// via picks the principal that makes a rule apply to user: the name
// before a group before everyone, so that the listing says the most
// specific reason.
func via(principals []string, user string, groups []string) string {
	best, rank := "", 0
	for _, p := range principals {
		r := 0
		switch {
		case p == user:
			r = 3
		case strings.HasPrefix(p, "%") && slices.Contains(groups, p[1:]):
			r = 2
		case p == "ALL" || p == "*":
			r = 1
		}
		if r > rank {
			best, rank = p, r
		}
	}
	return best
}
