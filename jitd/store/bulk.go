package store

import (
	"fmt"

	"github.com/jitpam/jit/jitd/grant"
)

// CreateGrants stores many new active grants in one transaction, each
// exactly as CreateGrant would (same checks and defaults, same indexes, one
// grant.created audit record per grant, chained in order), but with a
// single fsync for the lot. It is for loading state in bulk, such as
// importing grants or preparing a large state file for a benchmark; a
// live jitd writes one grant per request and wants each acknowledged on
// its own.
//
// It is all or nothing: the first grant the store refuses aborts the
// transaction, nothing is written, OnAudit sees nothing, and the error
// names the grant by its position in gs.
//
// Split large loads into batches of some thousands. bbolt splits pages
// only at commit, so within one transaction every insert shifts an ever
// larger page: 100k grants took about eight times as long in one batch as
// in ten. A batch also stays in memory and holds the write lock until it
// commits.
func (s *Store) CreateGrants(gs []grant.Grant, a Audit) ([]grant.Grant, error) {
	if len(gs) == 0 {
		return nil, nil
	}
	out := make([]grant.Grant, 0, len(gs))
	err := s.update(func(w *wtx) error {
		for i, g := range gs {
			created, err := w.createGrant(g, a)
			if err != nil {
				return fmt.Errorf("grant %d of %d (for %s): %w", i+1, len(gs), g.User, err)
			}
			out = append(out, created)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create %d grants: %w", len(gs), err)
	}
	return out, nil
}
