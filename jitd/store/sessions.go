package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/jitpam/jit/jitd/grant"
)

// SessionFilter selects sessions for ListSessions. Zero fields match
// everything.
type SessionFilter struct {
	User     string
	GrantID  string
	Kind     grant.Kind
	OpenOnly bool
}

func decodeSession(id string, v []byte) (grant.Session, error) {
	var s grant.Session
	if err := json.Unmarshal(v, &s); err != nil {
		return grant.Session{}, fmt.Errorf("decode session %s: %w", id, err)
	}
	return s, nil
}

func getSession(tx *bolt.Tx, id string) (grant.Session, error) {
	v := tx.Bucket([]byte(bucketSessions)).Get([]byte(id))
	if v == nil {
		return grant.Session{}, fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	return decodeSession(id, v)
}

// putSession writes sess and keeps the open index in step with its state.
func (w *wtx) putSession(sess *grant.Session) error {
	sess.StartedAt, sess.EndedAt = utc(sess.StartedAt), utc(sess.EndedAt)
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("encode session %s: %w", sess.ID, err)
	}
	if err := w.bucket(bucketSessions).Put([]byte(sess.ID), v); err != nil {
		return fmt.Errorf("write session %s: %w", sess.ID, err)
	}
	open := w.bucket(bucketSessionsOpen)
	key := openSessionKey(sess.GrantID, sess.ID)
	if sess.State == grant.SessionOpen {
		err = open.Put(key, nil)
	} else {
		err = open.Delete(key)
	}
	if err != nil {
		return fmt.Errorf("index session %s: %w", sess.ID, err)
	}
	return nil
}

func sessionFields(sess *grant.Session) map[string]string {
	m := map[string]string{
		"kind":      string(sess.Kind),
		"rule":      sess.RuleName,
		"runas":     sess.RunAs,
		"command":   sess.Command,
		"tty":       sess.TTY,
		"service":   sess.Service,
		"rhost":     sess.RHost,
		"pid":       strconv.Itoa(sess.PID),
		"pid_start": strconv.FormatUint(sess.PIDStart, 10),
		// The record's own time is its commit's, which for a registration
		// that waited in the pending file (or was replayed after a crash)
		// is later than the start.
		"started_at": fmtTime(sess.StartedAt),
	}
	if sess.AuditSession != 0 {
		m["audit_session"] = strconv.FormatUint(uint64(sess.AuditSession), 10)
	}
	if sess.BootID != "" {
		m["boot_id"] = sess.BootID
	}
	return m
}

// OpenSession registers a running elevated session. The store assigns ID
// ("s-" + 8 hex digits), State (open) and StartedAt (now, if zero). PID must
// be positive: it is what jitd signals to end the session. When GrantID is
// set, the grant must exist, be active and unexpired and belong to the same
// user and kind; a session cannot be registered under a grant that ended
// meanwhile (*AlreadyEndedError), so a command that raced a revocation or
// the expiry is stopped.
//
// With Options.RuntimeDir the session is acknowledged once it is in the
// runtime directory's pending file and committed to the database in the
// next batch (see pending.go); without it, once the commit is on disk.
func (s *Store) OpenSession(sess grant.Session, a Audit) (grant.Session, error) {
	var err error
	if s.pending != nil {
		sess, err = s.pending.open(sess, a)
	} else {
		err = s.update(func(w *wtx) error {
			if err := checkNewSession(w.tx, &sess, a, w.now); err != nil {
				return err
			}
			id, err := newID(w.tx, prefixSession, w.bucket(bucketSessions))
			if err != nil {
				return err
			}
			sess.ID = id
			return w.addSession(&sess, a)
		})
	}
	if err != nil {
		return grant.Session{}, fmt.Errorf("open session for %s: %w", sess.User, err)
	}
	return sess, nil
}

// checkNewSession validates a session to be opened against the state in tx
// and fills in its state and start time.
func checkNewSession(tx *bolt.Tx, sess *grant.Session, a Audit, now time.Time) error {
	if err := a.validate(); err != nil {
		return err
	}
	if sess.ID != "" {
		return invalidf("session id %q given; ids are assigned by the store", sess.ID)
	}
	if err := validName("session user", sess.User); err != nil {
		return err
	}
	if err := validKind(sess.Kind); err != nil {
		return err
	}
	if sess.PID <= 0 {
		return invalidf("session pid %d is not a process id", sess.PID)
	}
	if sess.State != "" && sess.State != grant.SessionOpen {
		return invalidf("a new session must be %q, not %q", grant.SessionOpen, sess.State)
	}
	if !sess.EndedAt.IsZero() || sess.ExitStatus != nil || sess.EndReason != "" {
		return invalidf("a new session cannot carry end details")
	}
	sess.GrantID = normID(sess.GrantID)
	if sess.GrantID != "" {
		g, err := getGrant(tx, sess.GrantID)
		if err != nil {
			return err
		}
		if g.State != grant.StateActive {
			return &AlreadyEndedError{What: "grant", ID: g.ID, State: string(g.State), EndedAt: g.EndedAt, EndedBy: g.EndedBy}
		}
		if !now.Before(g.ExpiresAt) {
			// Expired, though the sweep has not marked it yet.
			return &AlreadyEndedError{What: "grant", ID: g.ID, State: string(grant.StateExpired), EndedAt: g.ExpiresAt}
		}
		if g.User != sess.User {
			return invalidf("grant %s belongs to %q, not to %q", g.ID, g.User, sess.User)
		}
		if g.Kind != sess.Kind {
			return invalidf("grant %s is a %s grant, not %s", g.ID, g.Kind, sess.Kind)
		}
	}
	sess.State = grant.SessionOpen
	if sess.StartedAt.IsZero() {
		sess.StartedAt = now
	}
	return nil
}

// addSession writes a checked new session and its audit record.
func (w *wtx) addSession(sess *grant.Session, a Audit) error {
	if err := w.putSession(sess); err != nil {
		return err
	}
	return w.audit(EventSessionOpened, a, AuditRecord{User: sess.User, GrantID: sess.GrantID, SessionID: sess.ID}, sessionFields(sess))
}

func (s *Store) endSession(id string, state grant.SessionState, exit *int, at time.Time, a Audit) (grant.Session, error) {
	id = normID(id)
	if s.pending != nil {
		sess, handled, err := s.pending.end(id, state, exit, at, a)
		if handled {
			return sess, err
		}
		// The pending file cannot take it: commit it directly, after
		// what is pending for the session.
		if err := s.pending.flushIf(id); err != nil {
			return grant.Session{}, err
		}
	}
	var out grant.Session
	err := s.update(func(w *wtx) error {
		if err := a.validate(); err != nil {
			return err
		}
		sess, err := getSession(w.tx, id)
		if err != nil {
			return err
		}
		if sess.State != grant.SessionOpen {
			return &AlreadyEndedError{What: "session", ID: sess.ID, State: string(sess.State), EndedAt: sess.EndedAt}
		}
		if at.IsZero() {
			at = w.now
		}
		endSessionAs(&sess, state, exit, at, a.Reason)
		out = sess
		return w.recordEnd(&sess, a)
	})
	return out, err
}

// endSessionAs sets what ending sess records about the end.
func endSessionAs(sess *grant.Session, state grant.SessionState, exit *int, at time.Time, reason string) {
	sess.State, sess.EndedAt, sess.EndReason = state, utc(at), reason
	sess.ExitStatus = nil
	if exit != nil {
		v := *exit
		sess.ExitStatus = &v
	}
}

// recordEnd writes an ended session and the audit record of its end.
func (w *wtx) recordEnd(sess *grant.Session, a Audit) error {
	if err := w.putSession(sess); err != nil {
		return err
	}
	fields := map[string]string{"ended_at": fmtTime(sess.EndedAt), "pid": strconv.Itoa(sess.PID)}
	if sess.ExitStatus != nil {
		fields["exit_status"] = strconv.Itoa(*sess.ExitStatus)
	}
	ev := EventSessionClosed
	if sess.State == grant.SessionTerminated {
		ev = EventSessionTerminated
	}
	return w.audit(ev, a, AuditRecord{User: sess.User, GrantID: sess.GrantID, SessionID: sess.ID}, fields)
}

// CloseSession records that a session ended by itself (the command exited,
// the user logged out) at at (zero: now), with its exit status if known. A
// session that already ended yields an *AlreadyEndedError.
func (s *Store) CloseSession(id string, exitStatus *int, at time.Time, a Audit) (grant.Session, error) {
	out, err := s.endSession(id, grant.SessionClosed, exitStatus, at, a)
	if err != nil {
		return grant.Session{}, fmt.Errorf("close session %s: %w", id, err)
	}
	return out, nil
}

// TerminateSession records that jitd ended a session (grant expired or
// revoked); a.Reason says why. A session that already ended (for instance
// closed by the PAM module while jitd was signalling it) yields an
// *AlreadyEndedError.
func (s *Store) TerminateSession(id string, at time.Time, a Audit) (grant.Session, error) {
	out, err := s.endSession(id, grant.SessionTerminated, nil, at, a)
	if err != nil {
		return grant.Session{}, fmt.Errorf("terminate session %s: %w", id, err)
	}
	return out, nil
}

// GetSession returns one session.
func (s *Store) GetSession(id string) (grant.Session, error) {
	if s.pending != nil {
		if sess, ok := s.pending.get(normID(id)); ok {
			return sess, nil
		}
	}
	var out grant.Session
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = getSession(tx, normID(id))
		return err
	})
	if err != nil {
		return grant.Session{}, fmt.Errorf("get session: %w", err)
	}
	return out, nil
}

// ListSessions returns the sessions f selects, oldest first.
func (s *Store) ListSessions(f SessionFilter) ([]grant.Session, error) {
	var out []grant.Session
	selected := func(sess *grant.Session) bool {
		return (f.User == "" || sess.User == f.User) && (f.GrantID == "" || sess.GrantID == normID(f.GrantID)) &&
			(f.Kind == "" || sess.Kind == f.Kind)
	}
	var pending []grant.Session
	if s.pending != nil {
		pending = s.pending.snapshot(selected)
	}
	err := s.view(func(tx *bolt.Tx) error {
		keep := func(sess grant.Session) {
			if selected(&sess) {
				out = append(out, sess)
			}
		}
		if f.OpenOnly {
			var prefix []byte
			if f.GrantID != "" {
				prefix = openSessionPrefix(normID(f.GrantID))
			}
			sessions, err := openSessions(tx, prefix)
			for _, sess := range sessions {
				keep(sess)
			}
			return err
		}
		return tx.Bucket([]byte(bucketSessions)).ForEach(func(k, v []byte) error {
			sess, err := decodeSession(string(k), v)
			if err != nil {
				return err
			}
			keep(sess)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	out = mergeSessions(out, pending, f.OpenOnly)
	slices.SortFunc(out, func(a, b grant.Session) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// openSessions loads the open sessions whose index key starts with prefix
// (nil: all).
func openSessions(tx *bolt.Tx, prefix []byte) ([]grant.Session, error) {
	var out []grant.Session
	sessions := tx.Bucket([]byte(bucketSessions))
	err := scanPrefix(tx.Bucket([]byte(bucketSessionsOpen)), prefix, func(rest []byte) error {
		id := rest
		if prefix == nil {
			// The whole key is grant id ‖ 0x00 ‖ session id.
			i := bytes.IndexByte(rest, 0)
			if i < 0 {
				return fmt.Errorf("%w: bad open-session index key %q", ErrForeignDB, rest)
			}
			id = rest[i+1:]
		}
		v := sessions.Get(id)
		if v == nil {
			return fmt.Errorf("%w: open-session index names session %s, which does not exist", ErrForeignDB, id)
		}
		sess, err := decodeSession(string(id), v)
		if err != nil {
			return err
		}
		out = append(out, sess)
		return nil
	})
	return out, err
}

// OpenSessionsForGrant returns the open sessions running under a grant: what
// jitd must terminate when the grant ends.
func (s *Store) OpenSessionsForGrant(grantID string) ([]grant.Session, error) {
	id := normID(grantID)
	if id == "" {
		return nil, fmt.Errorf("open sessions for grant: %w", invalidf("empty grant id"))
	}
	var out, pending []grant.Session
	if s.pending != nil {
		pending = s.pending.snapshot(func(sess *grant.Session) bool { return sess.GrantID == id })
	}
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = openSessions(tx, openSessionPrefix(id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open sessions for grant %s: %w", id, err)
	}
	return mergeSessions(out, pending, true), nil
}

// OpenSessions returns every open session, with or without a grant: what
// jitd must re-check after a restart.
func (s *Store) OpenSessions() ([]grant.Session, error) {
	var out, pending []grant.Session
	if s.pending != nil {
		pending = s.pending.snapshot(nil)
	}
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = openSessions(tx, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open sessions: %w", err)
	}
	return mergeSessions(out, pending, true), nil
}
