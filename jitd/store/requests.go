package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/jitpam/jit/jitd/grant"
)

// RequestFilter selects requests for ListRequests. Zero fields match
// everything.
type RequestFilter struct {
	User        string
	PendingOnly bool
}

func decodeRequest(id string, v []byte) (grant.Request, error) {
	var r grant.Request
	if err := json.Unmarshal(v, &r); err != nil {
		return grant.Request{}, fmt.Errorf("decode request %s: %w", id, err)
	}
	return r, nil
}

func getRequest(tx *bolt.Tx, id string) (grant.Request, error) {
	v := tx.Bucket([]byte(bucketRequests)).Get([]byte(id))
	if v == nil {
		return grant.Request{}, fmt.Errorf("request %s: %w", id, ErrNotFound)
	}
	return decodeRequest(id, v)
}

// putRequest writes r and keeps the pending index in step with its state.
func (w *wtx) putRequest(r *grant.Request) error {
	r.CreatedAt, r.DecidedAt = utc(r.CreatedAt), utc(r.DecidedAt)
	r.Commands, r.Windows = nilIfEmpty(r.Commands), nilIfEmpty(r.Windows)
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode request %s: %w", r.ID, err)
	}
	if err := w.bucket(bucketRequests).Put([]byte(r.ID), v); err != nil {
		return fmt.Errorf("write request %s: %w", r.ID, err)
	}
	pending := w.bucket(bucketRequestsPending)
	if r.State == grant.RequestPending {
		err = pending.Put([]byte(r.ID), nil)
	} else {
		err = pending.Delete([]byte(r.ID))
	}
	if err != nil {
		return fmt.Errorf("index request %s: %w", r.ID, err)
	}
	return nil
}

// CreateRequest stores a new pending request. The store assigns ID ("r-" + 8
// hex digits), State and CreatedAt (now, if zero); RunAs defaults to root for
// sudo requests. Duration must be positive.
func (s *Store) CreateRequest(r grant.Request, a Audit) (grant.Request, error) {
	err := s.update(func(w *wtx) error {
		if err := a.validate(); err != nil {
			return err
		}
		if r.ID != "" {
			return invalidf("request id %q given; ids are assigned by the store", r.ID)
		}
		if err := validName("request user", r.User); err != nil {
			return err
		}
		if err := validKind(r.Kind); err != nil {
			return err
		}
		if r.Duration <= 0 {
			return invalidf("request duration %s is not positive", r.Duration)
		}
		if r.State != "" && r.State != grant.RequestPending {
			return invalidf("a new request must be %q, not %q", grant.RequestPending, r.State)
		}
		if r.DecidedBy != "" || !r.DecidedAt.IsZero() || r.DecisionReason != "" || r.GrantID != "" {
			return invalidf("a new request cannot carry a decision")
		}
		r.State = grant.RequestPending
		if r.Kind == grant.KindSudo && r.RunAs == "" {
			r.RunAs = grant.DefaultRunAs
		}
		if r.CreatedAt.IsZero() {
			r.CreatedAt = w.now
		}
		id, err := newID(w.tx, prefixRequest, w.bucket(bucketRequests))
		if err != nil {
			return err
		}
		r.ID = id
		if err := w.putRequest(&r); err != nil {
			return err
		}
		reason := a.Reason
		if reason == "" {
			reason = r.Reason
		}
		return w.audit(EventRequestCreated, a, AuditRecord{User: r.User, RequestID: r.ID, Reason: reason}, map[string]string{
			"kind":        string(r.Kind),
			"runas":       r.RunAs,
			"runas_group": r.RunAsGroup,
			"commands":    jsonList(r.Commands),
			"windows":     jsonList(r.Windows),
			"timezone":    r.Timezone,
			"duration":    r.Duration.String(),
		})
	})
	if err != nil {
		return grant.Request{}, fmt.Errorf("create request for %s: %w", r.User, err)
	}
	return r, nil
}

// GetRequest returns one request.
func (s *Store) GetRequest(id string) (grant.Request, error) {
	var r grant.Request
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		r, err = getRequest(tx, normID(id))
		return err
	})
	if err != nil {
		return grant.Request{}, fmt.Errorf("get request: %w", err)
	}
	return r, nil
}

// ListRequests returns the requests f selects, oldest first.
func (s *Store) ListRequests(f RequestFilter) ([]grant.Request, error) {
	var out []grant.Request
	err := s.view(func(tx *bolt.Tx) error {
		requests := tx.Bucket([]byte(bucketRequests))
		keep := func(id string, v []byte) error {
			if v == nil {
				return fmt.Errorf("%w: pending index names request %s, which does not exist", ErrForeignDB, id)
			}
			r, err := decodeRequest(id, v)
			if err != nil {
				return err
			}
			if f.User == "" || r.User == f.User {
				out = append(out, r)
			}
			return nil
		}
		if f.PendingOnly {
			return tx.Bucket([]byte(bucketRequestsPending)).ForEach(func(k, _ []byte) error {
				return keep(string(k), requests.Get(k))
			})
		}
		return requests.ForEach(func(k, v []byte) error { return keep(string(k), v) })
	})
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	slices.SortFunc(out, func(a, b grant.Request) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// decide loads a pending request and marks it decided by a.
func (w *wtx) decide(id string, state grant.RequestState, a Audit) (grant.Request, error) {
	if err := a.validate(); err != nil {
		return grant.Request{}, err
	}
	r, err := getRequest(w.tx, id)
	if err != nil {
		return grant.Request{}, err
	}
	if r.State != grant.RequestPending {
		return grant.Request{}, &NotPendingError{ID: r.ID, State: string(r.State), DecidedBy: r.DecidedBy, DecidedAt: r.DecidedAt}
	}
	r.State, r.DecidedBy, r.DecidedAt, r.DecisionReason = state, a.Actor, w.now, a.Reason
	return r, w.putRequest(&r)
}

// ApproveRequest approves a pending request and creates its grant in the
// same transaction: either both happen, with their audit records, or
// neither. g is the grant to create; its empty fields are taken from the
// request (User, Kind, RunAs, Commands, Windows, Timezone, Reason),
// ExpiresAt defaults to now (or NotBefore) + the requested Duration, and
// GrantedBy to a.Actor. The caller clamps durations to policy by setting
// ExpiresAt. A request that is not pending yields a *NotPendingError.
func (s *Store) ApproveRequest(id string, g grant.Grant, a Audit) (grant.Request, grant.Grant, error) {
	var (
		outR grant.Request
		outG grant.Grant
	)
	err := s.update(func(w *wtx) error {
		r, err := w.decide(normID(id), grant.RequestApproved, a)
		if err != nil {
			return err
		}
		if g.User == "" {
			g.User = r.User
		} else if g.User != r.User {
			return invalidf("grant user %q differs from the requester %q", g.User, r.User)
		}
		if g.Kind == "" {
			g.Kind = r.Kind
		} else if g.Kind != r.Kind {
			return invalidf("grant kind %q differs from the requested %q", g.Kind, r.Kind)
		}
		if g.RequestID != "" && g.RequestID != r.ID {
			return invalidf("grant names request %q, not %q", g.RequestID, r.ID)
		}
		g.RequestID = r.ID
		if g.RunAs == "" {
			g.RunAs = r.RunAs
		}
		if len(g.Commands) == 0 {
			g.Commands = slices.Clone(r.Commands)
		}
		if len(g.Windows) == 0 && g.Timezone == "" {
			g.Windows, g.Timezone = slices.Clone(r.Windows), r.Timezone
		}
		if g.Reason == "" {
			g.Reason = r.Reason
		}
		if g.ExpiresAt.IsZero() {
			start := w.now
			if !g.NotBefore.IsZero() {
				start = g.NotBefore
			}
			g.ExpiresAt = start.Add(r.Duration)
		}
		// The grant's own record carries the grant's reason, the approval's
		// record the approver's note.
		created, err := w.createGrant(g, Audit{Actor: a.Actor, Fields: a.Fields})
		if err != nil {
			return err
		}
		r.GrantID = created.ID
		if err := w.putRequest(&r); err != nil {
			return err
		}
		outR, outG = r, created
		return w.audit(EventRequestApproved, a, AuditRecord{User: r.User, RequestID: r.ID, GrantID: created.ID}, map[string]string{
			"expires_at": fmtTime(created.ExpiresAt),
		})
	})
	if err != nil {
		return grant.Request{}, grant.Grant{}, fmt.Errorf("approve request %s: %w", id, err)
	}
	return outR, outG, nil
}

// DenyRequest denies a pending request; a.Reason is the denier's note. A
// request that is not pending yields a *NotPendingError.
func (s *Store) DenyRequest(id string, a Audit) (grant.Request, error) {
	var out grant.Request
	err := s.update(func(w *wtx) error {
		r, err := w.decide(normID(id), grant.RequestDenied, a)
		if err != nil {
			return err
		}
		out = r
		return w.audit(EventRequestDenied, a, AuditRecord{User: r.User, RequestID: r.ID}, nil)
	})
	if err != nil {
		return grant.Request{}, fmt.Errorf("deny request %s: %w", id, err)
	}
	return out, nil
}
