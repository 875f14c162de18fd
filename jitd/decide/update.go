package decide

import (
	"errors"
	"fmt"
	"maps"

	"github.com/jitpam/jit/jitd/grant"
)

// WithGrants returns a copy of s in which each of grants replaces the grant
// with the same id, or is added. Only those grants are compiled; the other
// grants of their users are shared pointers, so a write costs the same
// however many grants its user holds.
func (s *Set) WithGrants(grants ...grant.Grant) (*Set, error) {
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
	var errs []error
	copied := map[string]bool{}
	for _, g := range grants {
		e := &grantEntry{g: g}
		e.compile()
		if e.err != nil {
			errs = append(errs, e.err)
		}
		if old, ok := n.byID[g.ID]; ok && old.g.User != g.User {
			errs = append(errs, fmt.Errorf("grant %q moved from %q to %q; left out", g.ID, old.g.User, g.User))
			continue
		}
		if !copied[g.User] {
			// The user's slice is shared with s: copy before changing it.
			n.grantsByUser[g.User] = append([]*grantEntry(nil), n.grantsByUser[g.User]...)
			copied[g.User] = true
		}
		list := n.grantsByUser[g.User]
		replaced := false
		for i, old := range list {
			if old.g.ID == g.ID {
				list[i], replaced = e, true
				break
			}
		}
		if !replaced {
			list = append(list, e)
			n.grants++
		}
		n.grantsByUser[g.User] = list
		n.byID[g.ID] = e
	}
	for u := range copied {
		sortUserGrants(n.grantsByUser[u])
	}
	return n, errors.Join(errs...)
}
