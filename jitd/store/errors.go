package store

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors, for errors.Is. Errors returned by the store wrap them with
// the operation and the object concerned.
var (
	// ErrNotFound: no grant, request or session with that id.
	ErrNotFound = errors.New("not found")
	// ErrLocked: another process (normally a running jitd) holds the
	// database's exclusive lock.
	ErrLocked = errors.New("another jitd holds the lock on the state database (is jitd already running?)")
	// ErrAlreadyEnded: the grant or session has already ended; errors.As
	// with *AlreadyEndedError tells how and when.
	ErrAlreadyEnded = errors.New("already ended")
	// ErrNotPending: the request was already decided; errors.As with
	// *NotPendingError tells how.
	ErrNotPending = errors.New("request is not pending")
	// ErrInvalid: the caller passed a record or argument the store refuses.
	ErrInvalid = errors.New("invalid")
	// ErrSchemaTooNew: the database was written by a newer jitd.
	ErrSchemaTooNew = errors.New("database schema is newer than this jitd understands")
	// ErrForeignDB: the file is a bbolt database but not jitd's, or it lost
	// parts of its structure.
	ErrForeignDB = errors.New("not a jitd state database or damaged")
	// ErrAuditBroken: Verify found a broken link in the audit chain;
	// errors.As with *ChainError tells where.
	ErrAuditBroken = errors.New("audit chain broken")
)

// AlreadyEndedError says that a grant or session cannot be ended or changed
// because it has ended already.
type AlreadyEndedError struct {
	// What is "grant" or "session".
	What    string
	ID      string
	State   string
	EndedAt time.Time
	EndedBy string
}

func (e *AlreadyEndedError) Error() string {
	msg := fmt.Sprintf("%s %s already ended (%s", e.What, e.ID, e.State)
	if !e.EndedAt.IsZero() {
		msg += " at " + e.EndedAt.Format(time.RFC3339)
	}
	if e.EndedBy != "" {
		msg += " by " + e.EndedBy
	}
	return msg + ")"
}

// Is makes errors.Is(err, ErrAlreadyEnded) true.
func (e *AlreadyEndedError) Is(target error) bool { return target == ErrAlreadyEnded }

// NotPendingError says that a request was decided already.
type NotPendingError struct {
	ID        string
	State     string
	DecidedBy string
	DecidedAt time.Time
}

func (e *NotPendingError) Error() string {
	msg := fmt.Sprintf("request %s is not pending (%s", e.ID, e.State)
	if e.DecidedBy != "" {
		msg += " by " + e.DecidedBy
	}
	if !e.DecidedAt.IsZero() {
		msg += " at " + e.DecidedAt.Format(time.RFC3339)
	}
	return msg + ")"
}

// Is makes errors.Is(err, ErrNotPending) true.
func (e *NotPendingError) Is(target error) bool { return target == ErrNotPending }

// BreakKind names what is wrong at a broken link of the audit chain.
type BreakKind string

const (
	// BreakEdited: the record's content does not match its own hash.
	BreakEdited BreakKind = "edited record"
	// BreakMissing: sequence numbers jump; records were deleted.
	BreakMissing BreakKind = "missing records"
	// BreakMisplaced: a record sits under another record's key (moved or
	// reordered).
	BreakMisplaced BreakKind = "misplaced record"
	// BreakPrevHash: the record does not point at the record before it; a
	// predecessor was replaced, re-hashed or reordered.
	BreakPrevHash BreakKind = "bad prev hash"
	// BreakUndecodable: the stored bytes are not a valid record.
	BreakUndecodable BreakKind = "undecodable record"
	// BreakHead: the chain's end does not match the head remembered in
	// meta; records at the end were deleted, or the head was changed.
	BreakHead BreakKind = "head mismatch"
)

// ChainError is the first broken link Verify found.
type ChainError struct {
	// Seq is the sequence number at which the chain breaks: the edited,
	// misplaced or mis-linked record, or the first missing one.
	Seq    uint64
	Kind   BreakKind
	Detail string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d: %s: %s", e.Seq, e.Kind, e.Detail)
}

// Is makes errors.Is(err, ErrAuditBroken) true.
func (e *ChainError) Is(target error) bool { return target == ErrAuditBroken }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
