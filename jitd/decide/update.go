package decide

import (
	"errors"
	"fmt"
	"maps"

	"github.com/jitpam/jit/jitd/grant"
)

// WithUser returns a copy of s in which user's grants are replaced by grants
// (all of the user's grants worth knowing about, in any state). Other users'
// compiled grants and the rules are shared with s, not recompiled, so a
// grant write costs a copy of two maps instead of compiling every grant
// again. s itself does not change: decisions in flight keep using it.
func (s *Set) WithUser(user string, grants []grant.Grant) (*Set, error) {
	if s == nil {
		return NewSet(grants, nil)
	}
	n := &Set{
		grantsByUser: maps.Clone(s.grantsByUser),
		byID:         maps.Clone(s.byID),
		rulesByUser:  s.rulesByUser,
		rulesByGroup: s.rulesByGroup,
		rulesForAll:  s.rulesForAll,
		grants:       s.grants,
	}
	for _, old := range n.grantsByUser[user] {
		if n.byID[old.g.ID] == old {
			delete(n.byID, old.g.ID)
		}
		n.grants--
	}
	delete(n.grantsByUser, user)
	var errs []error
	entries := make([]grantEntry, len(grants))
	for i := range grants {
		if grants[i].User != user {
			errs = append(errs, fmt.Errorf("grant %q belongs to %q, not %q; left out", grants[i].ID, grants[i].User, user))
			continue
		}
		e := &entries[i]
		e.g = grants[i]
		e.compile()
		if e.err != nil {
			errs = append(errs, e.err)
		}
		n.byID[e.g.ID] = e
		n.grantsByUser[user] = append(n.grantsByUser[user], e)
		n.grants++
	}
	sortUserGrants(n.grantsByUser[user])
	return n, errors.Join(errs...)
}
