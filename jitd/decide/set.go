package decide

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jitpam/jit/jitd/cmdmatch"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/jitd/window"
)

// Set is the compiled, indexed form of all grants and standing rules that
// decisions are made against. Build it once per change of grants or policy
// with NewSet; it is immutable afterwards and safe for concurrent use.
type Set struct {
	grantsByUser map[string][]*grantEntry
	byID         map[string]*grantEntry
	rulesByUser  map[string][]*ruleEntry
	rulesByGroup map[string][]*ruleEntry
	rulesForAll  []*ruleEntry
	grants       int
}

type grantEntry struct {
	g grant.Grant
	// runAs and runAsGroup are the grant's "(user:group)", kept as arrays
	// so that runAsLists hands out the slices rules have without an
	// allocation per grant.
	runAs      [1]string
	runAsGroup [1]string
	patterns   []cmdmatch.Pattern
	sched      *window.Schedule
	// err is set when the stored grant does not compile. Such a grant never
	// allows; it is kept so that a deny can say why it did not help.
	err error
}

type ruleEntry struct {
	r grant.Rule
	// order is the rule's place in the policy file, which listings keep.
	order       int
	runAs       []string
	runAsGroups []string
	patterns    []cmdmatch.Pattern
	sched       *window.Schedule
}

// NewSet compiles and indexes grants (in any state: active ones allow,
// revoked and expired ones only explain denies) and standing rules.
//
// NewSet always returns a usable Set. The error lists every grant and rule
// that did not compile: such a rule is left out, such a grant never allows
// and is reported as invalid when it is the best explanation for a deny.
// A daemon should log the error and carry on rather than deny everyone.
func NewSet(grants []grant.Grant, rules []grant.Rule) (*Set, error) {
	s := &Set{
		grantsByUser: make(map[string][]*grantEntry),
		byID:         make(map[string]*grantEntry, len(grants)),
		rulesByUser:  make(map[string][]*ruleEntry),
		rulesByGroup: make(map[string][]*ruleEntry),
	}
	var errs []error
	// One backing array keeps 100k grants to one allocation instead of 100k.
	entries := make([]grantEntry, len(grants))
	for i := range grants {
		e := &entries[i]
		e.g = grants[i]
		e.compile()
		if e.err != nil {
			errs = append(errs, e.err)
		}
		if prev, dup := s.byID[e.g.ID]; dup {
			errs = append(errs, fmt.Errorf("grant %q appears twice (users %q and %q); both are kept for decisions", e.g.ID, prev.g.User, e.g.User))
		}
		s.byID[e.g.ID] = e
		s.grantsByUser[e.g.User] = append(s.grantsByUser[e.g.User], e)
	}
	s.grants = len(grants)
	for _, es := range s.grantsByUser {
		sortUserGrants(es)
	}
	for i := range rules {
		e, err := compileRule(rules[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.order = i
		for _, p := range e.r.Users {
			switch {
			case p == "ALL" || p == "*":
				s.rulesForAll = append(s.rulesForAll, e)
			case strings.HasPrefix(p, "%"):
				s.rulesByGroup[p[1:]] = append(s.rulesByGroup[p[1:]], e)
			default:
				s.rulesByUser[p] = append(s.rulesByUser[p], e)
			}
		}
	}
	return s, errors.Join(errs...)
}

// sortUserGrants orders one user's grants latest expiry first, which lets
// Decide skip grants that cannot outlast an allow it already found. Ids
// break ties so that the input order (a store's iteration order) never
// changes the order of commands listed in a reason. Answers do not depend
// on the order; anything that builds a user's slice should still call this.
func sortUserGrants(es []*grantEntry) {
	slices.SortFunc(es, func(a, b *grantEntry) int {
		if c := b.g.ExpiresAt.Compare(a.g.ExpiresAt); c != 0 {
			return c
		}
		return strings.Compare(a.g.ID, b.g.ID)
	})
}

func (e *grantEntry) compile() {
	e.runAs[0] = e.g.RunAs
	if e.runAs[0] == "" {
		e.runAs[0] = grant.DefaultRunAs
	}
	e.runAsGroup[0] = e.g.RunAsGroup
	e.patterns, e.sched, e.err = compileGrant(&e.g)
}

// runAsLists returns the grant's target users and groups (none when it
// names no group) in the shape of a rule's.
func (e *grantEntry) runAsLists() (users, groups []string) {
	if e.runAsGroup[0] != "" {
		groups = e.runAsGroup[:]
	}
	return e.runAs[:], groups
}

// Validate checks a grant the way NewSet will compile it, so that the API can
// refuse a bad grant when it is created instead of storing one that never
// works. It does not look at the grant's state or at the clock.
func Validate(g grant.Grant) error {
	_, _, err := compileGrant(&g)
	return err
}

func compileGrant(g *grant.Grant) ([]cmdmatch.Pattern, *window.Schedule, error) {
	if g.ID == "" {
		return nil, nil, errors.New("grant has no id")
	}
	if g.User == "" {
		return nil, nil, fmt.Errorf("grant %q names no user", g.ID)
	}
	if g.ExpiresAt.IsZero() {
		return nil, nil, fmt.Errorf("grant %q has no expiry; every grant must end", g.ID)
	}
	if !g.NotBefore.IsZero() && !g.NotBefore.Before(g.ExpiresAt) {
		return nil, nil, fmt.Errorf("grant %q is never valid: it starts at %s and expires at %s", g.ID, g.NotBefore.Format(time.RFC3339), g.ExpiresAt.Format(time.RFC3339))
	}
	switch g.Kind {
	case grant.KindSudo:
		if len(g.Commands) == 0 {
			return nil, nil, fmt.Errorf("sudo grant %q lists no commands; name them, or ALL", g.ID)
		}
	case grant.KindLogin:
		if len(g.Commands) > 0 {
			return nil, nil, fmt.Errorf("login grant %q lists commands; a login grant allows logging in only, so drop them or make it a sudo grant", g.ID)
		}
	default:
		return nil, nil, fmt.Errorf("grant %q has unknown kind %q (want %q or %q)", g.ID, g.Kind, grant.KindSudo, grant.KindLogin)
	}
	sched, err := window.ParseSchedule(g.Windows, g.Timezone)
	if err != nil {
		return nil, nil, fmt.Errorf("grant %q: %w", g.ID, err)
	}
	patterns := make([]cmdmatch.Pattern, 0, len(g.Commands))
	for _, c := range g.Commands {
		p, err := cmdmatch.Compile(c)
		if err != nil {
			return nil, nil, fmt.Errorf("grant %q: %w", g.ID, err)
		}
		patterns = append(patterns, p)
	}
	return patterns, sched, nil
}

func compileRule(r grant.Rule) (*ruleEntry, error) {
	name := r.Name
	if name == "" {
		return nil, fmt.Errorf("a standing rule has no name (users %q)", r.Users)
	}
	if len(r.Users) == 0 {
		return nil, fmt.Errorf("rule %q names no users; list user names, %%groups or ALL", name)
	}
	for _, u := range r.Users {
		if u == "" || u == "%" {
			return nil, fmt.Errorf("rule %q has an empty user; list user names, %%groups or ALL", name)
		}
	}
	if len(r.Commands) == 0 {
		return nil, fmt.Errorf("rule %q lists no commands; name them, or ALL", name)
	}
	e := &ruleEntry{r: r, runAs: r.RunAs, runAsGroups: r.RunAsGroups}
	if len(e.runAs) == 0 {
		e.runAs = []string{grant.DefaultRunAs}
	}
	for _, c := range r.Commands {
		p, err := cmdmatch.Compile(c)
		if err != nil {
			return nil, fmt.Errorf("rule %q: %w", name, err)
		}
		e.patterns = append(e.patterns, p)
	}
	sched, err := window.ParseSchedule(r.Windows, r.Timezone)
	if err != nil {
		return nil, fmt.Errorf("rule %q: %w", name, err)
	}
	e.sched = sched
	return e, nil
}

// Len is the number of grants in the set, in any state.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return s.grants
}

// Grant returns the grant with this id as the set holds it.
func (s *Set) Grant(id string) (grant.Grant, bool) {
	if s == nil {
		return grant.Grant{}, false
	}
	e, ok := s.byID[id]
	if !ok {
		return grant.Grant{}, false
	}
	return e.g, true
}

// WindowCloseAt returns when the window of grant id that is open at now
// closes, for a scheduler that ends sessions of EndAtWindowClose grants. It
// returns false when the grant is unknown, has no windows, is outside its
// windows at now, or its windows never close; the grant's expiry is not
// considered.
func (s *Set) WindowCloseAt(id string, now time.Time) (time.Time, bool) {
	if s == nil {
		return time.Time{}, false
	}
	e, ok := s.byID[id]
	if !ok || e.err != nil {
		return time.Time{}, false
	}
	return e.sched.CloseAt(now)
}

// End returns when grant id stops allowing if nothing else happens: the
// earlier of its expiry and the close of its current window. ok is false
// when the grant is unknown, not active, or not usable at now.
func (s *Set) End(id string, now time.Time) (end time.Time, ok bool) {
	if s == nil {
		return time.Time{}, false
	}
	e, found := s.byID[id]
	if !found {
		return time.Time{}, false
	}
	t := e.timing(now)
	if t.code != "" {
		return time.Time{}, false
	}
	return now.Add(t.remaining), true
}
