package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/jitpam/jit/jitd/grant"
)

// GrantFilter selects grants for ListGrants. Zero fields match everything.
type GrantFilter struct {
	User string
	Kind grant.Kind
	// IncludeEnded adds revoked and expired grants to active ones.
	IncludeEnded bool
}

// Expiry is the end of an active grant.
type Expiry struct {
	GrantID string
	At      time.Time
}

func validKind(k grant.Kind) error {
	if k != grant.KindSudo && k != grant.KindLogin {
		return invalidf("kind %q is neither %q nor %q", k, grant.KindSudo, grant.KindLogin)
	}
	return nil
}

func decodeGrant(id string, v []byte) (grant.Grant, error) {
	var g grant.Grant
	if err := json.Unmarshal(v, &g); err != nil {
		return grant.Grant{}, fmt.Errorf("decode grant %s: %w", id, err)
	}
	return g, nil
}

func getGrant(tx *bolt.Tx, id string) (grant.Grant, error) {
	v := tx.Bucket([]byte(bucketGrants)).Get([]byte(id))
	if v == nil {
		return grant.Grant{}, fmt.Errorf("grant %s: %w", id, ErrNotFound)
	}
	return decodeGrant(id, v)
}

func normGrant(g *grant.Grant) {
	g.NotBefore, g.ExpiresAt, g.CreatedAt, g.EndedAt = utc(g.NotBefore), utc(g.ExpiresAt), utc(g.CreatedAt), utc(g.EndedAt)
	g.Commands, g.Windows = nilIfEmpty(g.Commands), nilIfEmpty(g.Windows)
}

// putGrant writes g and moves its index entries from where old had them;
// every grant write goes through here so the indexes cannot drift.
func (w *wtx) putGrant(old, g *grant.Grant) error {
	normGrant(g)
	v, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("encode grant %s: %w", g.ID, err)
	}
	byExp, byUser := w.bucket(bucketGrantsByExpiry), w.bucket(bucketGrantsByUser)
	if old != nil {
		if old.State == grant.StateActive {
			if err := byExp.Delete(expiryKey(old.ExpiresAt, old.ID)); err != nil {
				return fmt.Errorf("unindex grant %s: %w", old.ID, err)
			}
		}
		if err := byUser.Delete(userKey(old.User, old.State == grant.StateActive, old.ID)); err != nil {
			return fmt.Errorf("unindex grant %s: %w", old.ID, err)
		}
	}
	if err := w.bucket(bucketGrants).Put([]byte(g.ID), v); err != nil {
		return fmt.Errorf("write grant %s: %w", g.ID, err)
	}
	if g.State == grant.StateActive {
		if err := byExp.Put(expiryKey(g.ExpiresAt, g.ID), nil); err != nil {
			return fmt.Errorf("index grant %s: %w", g.ID, err)
		}
	}
	if err := byUser.Put(userKey(g.User, g.State == grant.StateActive, g.ID), nil); err != nil {
		return fmt.Errorf("index grant %s: %w", g.ID, err)
	}
	return nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func jsonList(l []string) string {
	if len(l) == 0 {
		return ""
	}
	b, _ := json.Marshal(l)
	return string(b)
}

func grantFields(g *grant.Grant) map[string]string {
	m := map[string]string{
		"kind":        string(g.Kind),
		"runas":       g.RunAs,
		"runas_group": g.RunAsGroup,
		"commands":    jsonList(g.Commands),
		"windows":     jsonList(g.Windows),
		"timezone":    g.Timezone,
		"not_before":  fmtTime(g.NotBefore),
		"expires_at":  fmtTime(g.ExpiresAt),
		"granted_by":  g.GrantedBy,
	}
	if g.BreakGlass {
		m["breakglass"] = "true"
	}
	if g.EndAtWindowClose {
		m["end_at_window_close"] = "true"
	}
	return m
}

// validExpiry checks that a grant's lifetime makes sense now.
func (w *wtx) validExpiry(g *grant.Grant) error {
	if g.ExpiresAt.IsZero() {
		return invalidf("grant has no expiry")
	}
	if !indexable(g.ExpiresAt) {
		return invalidf("expiry %s is out of range", g.ExpiresAt)
	}
	if !g.ExpiresAt.After(w.now) {
		return invalidf("expiry %s is not in the future (now %s)", fmtTime(g.ExpiresAt), fmtTime(w.now))
	}
	if !g.NotBefore.IsZero() && !g.ExpiresAt.After(g.NotBefore) {
		return invalidf("expiry %s is not after not-before %s", fmtTime(g.ExpiresAt), fmtTime(g.NotBefore))
	}
	return nil
}

func (w *wtx) createGrant(g grant.Grant, a Audit) (grant.Grant, error) {
	if err := a.validate(); err != nil {
		return grant.Grant{}, err
	}
	if g.ID != "" {
		return grant.Grant{}, invalidf("grant id %q given; ids are assigned by the store", g.ID)
	}
	if err := validName("grant user", g.User); err != nil {
		return grant.Grant{}, err
	}
	if err := validKind(g.Kind); err != nil {
		return grant.Grant{}, err
	}
	switch {
	case g.State == "":
		g.State = grant.StateActive
	case g.State != grant.StateActive:
		return grant.Grant{}, invalidf("a new grant must be %q, not %q", grant.StateActive, g.State)
	}
	if !g.EndedAt.IsZero() || g.EndedBy != "" || g.EndReason != "" {
		return grant.Grant{}, invalidf("a new grant cannot carry end details")
	}
	if g.Kind == grant.KindSudo && g.RunAs == "" {
		g.RunAs = grant.DefaultRunAs
	}
	if g.GrantedBy == "" {
		g.GrantedBy = a.Actor
	}
	if err := validName("granted-by", g.GrantedBy); err != nil {
		return grant.Grant{}, err
	}
	if g.CreatedAt.IsZero() {
		g.CreatedAt = w.now
	}
	if err := w.validExpiry(&g); err != nil {
		return grant.Grant{}, err
	}
	grants := w.bucket(bucketGrants)
	id, err := newID(w.tx, prefixGrant, grants)
	if err != nil {
		return grant.Grant{}, err
	}
	g.ID = id
	if err := w.putGrant(nil, &g); err != nil {
		return grant.Grant{}, err
	}
	reason := a.Reason
	if reason == "" {
		reason = g.Reason
	}
	err = w.audit(EventGrantCreated, a, AuditRecord{User: g.User, GrantID: g.ID, RequestID: g.RequestID, Reason: reason}, grantFields(&g))
	return g, err
}

// CreateGrant stores a new active grant and its audit record. The store
// assigns ID ("g-" + 8 hex digits), State (active), CreatedAt (now, if
// zero), RunAs (root, for sudo grants without one) and GrantedBy (a.Actor,
// if empty). ExpiresAt must lie in the future and after NotBefore.
func (s *Store) CreateGrant(g grant.Grant, a Audit) (grant.Grant, error) {
	var out grant.Grant
	err := s.update(func(w *wtx) error {
		var err error
		out, err = w.createGrant(g, a)
		return err
	})
	if err != nil {
		return grant.Grant{}, fmt.Errorf("create grant for %s: %w", g.User, err)
	}
	return out, nil
}

// GetGrant returns one grant, whatever its state.
func (s *Store) GetGrant(id string) (grant.Grant, error) {
	var g grant.Grant
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		g, err = getGrant(tx, normID(id))
		return err
	})
	if err != nil {
		return grant.Grant{}, fmt.Errorf("get grant: %w", err)
	}
	return g, nil
}

// GrantsForUser returns the user's active grants: the decision path's read.
// It costs one index prefix scan plus one lookup per active grant of that
// user, however many grants others hold or this user held in the past.
// Grants whose expiry passed but that jitd has not expired yet are
// included; the decision core compares ExpiresAt with its own now.
func (s *Store) GrantsForUser(user string) ([]grant.Grant, error) {
	var out []grant.Grant
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = grantsByUser(tx, user, false)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("grants for %s: %w", user, err)
	}
	return out, nil
}

func grantsByUser(tx *bolt.Tx, user string, includeEnded bool) ([]grant.Grant, error) {
	var out []grant.Grant
	grants := tx.Bucket([]byte(bucketGrants))
	idx := tx.Bucket([]byte(bucketGrantsByUser))
	collect := func(rest []byte) error {
		v := grants.Get(rest)
		if v == nil {
			return fmt.Errorf("%w: index names grant %s, which does not exist", ErrForeignDB, rest)
		}
		g, err := decodeGrant(string(rest), v)
		if err != nil {
			return err
		}
		out = append(out, g)
		return nil
	}
	if err := scanPrefix(idx, userPrefix(user, true), collect); err != nil {
		return nil, err
	}
	if includeEnded {
		if err := scanPrefix(idx, userPrefix(user, false), collect); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ListGrants returns the grants f selects, oldest first.
func (s *Store) ListGrants(f GrantFilter) ([]grant.Grant, error) {
	var out []grant.Grant
	err := s.view(func(tx *bolt.Tx) error {
		var all []grant.Grant
		var err error
		switch {
		case f.User != "":
			all, err = grantsByUser(tx, f.User, f.IncludeEnded)
		case !f.IncludeEnded:
			// The expiry index holds exactly the active grants.
			grants := tx.Bucket([]byte(bucketGrants))
			err = tx.Bucket([]byte(bucketGrantsByExpiry)).ForEach(func(k, _ []byte) error {
				id := string(k[8:])
				v := grants.Get(k[8:])
				if v == nil {
					return fmt.Errorf("%w: expiry index names grant %s, which does not exist", ErrForeignDB, id)
				}
				g, err := decodeGrant(id, v)
				all = append(all, g)
				return err
			})
		default:
			err = tx.Bucket([]byte(bucketGrants)).ForEach(func(k, v []byte) error {
				g, err := decodeGrant(string(k), v)
				all = append(all, g)
				return err
			})
		}
		if err != nil {
			return err
		}
		for _, g := range all {
			if f.Kind == "" || g.Kind == f.Kind {
				out = append(out, g)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	slices.SortFunc(out, func(a, b grant.Grant) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.ID), []byte(b.ID))
	})
	return out, nil
}

func (w *wtx) endGrant(id string, state grant.State, at time.Time, a Audit) (grant.Grant, error) {
	if err := a.validate(); err != nil {
		return grant.Grant{}, err
	}
	var ev Event
	switch state {
	case grant.StateRevoked:
		ev = EventGrantRevoked
	case grant.StateExpired:
		ev = EventGrantExpired
	default:
		return grant.Grant{}, invalidf("a grant ends %q or %q, not %q", grant.StateRevoked, grant.StateExpired, state)
	}
	g, err := getGrant(w.tx, id)
	if err != nil {
		return grant.Grant{}, err
	}
	if g.State != grant.StateActive {
		return grant.Grant{}, &AlreadyEndedError{What: "grant", ID: g.ID, State: string(g.State), EndedAt: g.EndedAt, EndedBy: g.EndedBy}
	}
	if at.IsZero() {
		at = w.now
	}
	old := g
	g.State, g.EndedAt, g.EndedBy, g.EndReason = state, at, a.Actor, a.Reason
	if err := w.putGrant(&old, &g); err != nil {
		return grant.Grant{}, err
	}
	err = w.audit(ev, a, AuditRecord{User: g.User, GrantID: g.ID, RequestID: g.RequestID}, map[string]string{
		"kind":       string(g.Kind),
		"expires_at": fmtTime(g.ExpiresAt),
		"ended_at":   fmtTime(g.EndedAt),
	})
	return g, err
}

// EndGrant ends an active grant as revoked or expired at at (zero: now),
// recording a.Actor and a.Reason as who ended it and why. A grant that has
// already ended yields an *AlreadyEndedError (errors.Is ErrAlreadyEnded).
// Terminating the grant's sessions is the caller's part.
func (s *Store) EndGrant(id string, state grant.State, at time.Time, a Audit) (grant.Grant, error) {
	var out grant.Grant
	err := s.update(func(w *wtx) error {
		var err error
		out, err = w.endGrant(normID(id), state, at, a)
		return err
	})
	if err != nil {
		return grant.Grant{}, fmt.Errorf("end grant %s: %w", id, err)
	}
	return out, nil
}

// ExtendGrant moves an active grant's expiry to newExpiry, which must lie in
// the future and after NotBefore; it may also shorten the grant.
func (s *Store) ExtendGrant(id string, newExpiry time.Time, a Audit) (grant.Grant, error) {
	var out grant.Grant
	err := s.update(func(w *wtx) error {
		if err := a.validate(); err != nil {
			return err
		}
		g, err := getGrant(w.tx, normID(id))
		if err != nil {
			return err
		}
		if g.State != grant.StateActive {
			return &AlreadyEndedError{What: "grant", ID: g.ID, State: string(g.State), EndedAt: g.EndedAt, EndedBy: g.EndedBy}
		}
		old := g
		g.ExpiresAt = utc(newExpiry)
		if err := w.validExpiry(&g); err != nil {
			return err
		}
		if err := w.putGrant(&old, &g); err != nil {
			return err
		}
		out = g
		return w.audit(EventGrantExtended, a, AuditRecord{User: g.User, GrantID: g.ID, RequestID: g.RequestID}, map[string]string{
			"old_expires_at": fmtTime(old.ExpiresAt),
			"expires_at":     fmtTime(g.ExpiresAt),
		})
	})
	if err != nil {
		return grant.Grant{}, fmt.Errorf("extend grant %s: %w", id, err)
	}
	return out, nil
}

// NextExpiry returns the earliest end among active grants; ok is false when
// no grant is active. It may lie in the past when grants are overdue (for
// instance because ending one failed): the caller should then run
// Overdue/ExpireOverdue at once rather than sleep, which also retries
// failed ends instead of skipping them.
func (s *Store) NextExpiry() (e Expiry, ok bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket([]byte(bucketGrantsByExpiry)).Cursor().First()
		if k == nil {
			return nil
		}
		if len(k) <= 8 {
			return fmt.Errorf("%w: bad expiry index key %x", ErrForeignDB, k)
		}
		e = Expiry{GrantID: string(k[8:]), At: time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC()}
		ok = true
		return nil
	})
	if err != nil {
		return Expiry{}, false, fmt.Errorf("next expiry: %w", err)
	}
	return e, ok, nil
}

// overdueIDs lists active grants with ExpiresAt <= now, soonest first.
func overdueIDs(tx *bolt.Tx, now time.Time) []string {
	if !indexable(now) {
		return nil
	}
	var ids []string
	limit := timeKey(now)
	c := tx.Bucket([]byte(bucketGrantsByExpiry)).Cursor()
	for k, _ := c.First(); k != nil && len(k) > 8 && bytes.Compare(k[:8], limit) <= 0; k, _ = c.Next() {
		ids = append(ids, string(k[8:]))
	}
	return ids
}

// Overdue returns the active grants whose ExpiresAt <= now, soonest first.
func (s *Store) Overdue(now time.Time) ([]grant.Grant, error) {
	var out []grant.Grant
	err := s.view(func(tx *bolt.Tx) error {
		for _, id := range overdueIDs(tx, now) {
			g, err := getGrant(tx, id)
			if err != nil {
				return err
			}
			out = append(out, g)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("overdue grants: %w", err)
	}
	return out, nil
}

// ExpireOverdue ends every active grant whose ExpiresAt <= now as expired,
// with EndedAt = its ExpiresAt (when the right really ended, also after jitd
// was down), in one transaction with one audit record each. a.Reason
// defaults to "expired". It returns the grants it ended, for the caller to
// terminate their sessions.
func (s *Store) ExpireOverdue(now time.Time, a Audit) ([]grant.Grant, error) {
	if a.Reason == "" {
		a.Reason = "expired"
	}
	// Most calls find nothing due; a read answers that without the fsync
	// that every write transaction costs, even an empty one.
	due := false
	if err := s.view(func(tx *bolt.Tx) error {
		due = len(overdueIDs(tx, now)) > 0
		return nil
	}); err != nil {
		return nil, fmt.Errorf("expire grants due by %s: %w", fmtTime(now), err)
	}
	if !due {
		return nil, nil
	}
	var out []grant.Grant
	err := s.update(func(w *wtx) error {
		out = out[:0]
		for _, id := range overdueIDs(w.tx, now) {
			g, err := getGrant(w.tx, id)
			if err != nil {
				return err
			}
			ended, err := w.endGrant(id, grant.StateExpired, g.ExpiresAt, a)
			if err != nil {
				return err
			}
			out = append(out, ended)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("expire grants due by %s: %w", fmtTime(now), err)
	}
	return out, nil
}
