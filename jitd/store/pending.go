package store

// Session registrations and session ends are on the path of every sudo
// command and every login: sudo waits for the registration before it runs
// anything, and sends the end as it exits. An fsync'd bbolt commit costs
// about a millisecond there, more than everything else jitd does for the
// check, and two of them per command compete with the next command for the
// CPU. What a session record must survive is a crash of jitd, so that a
// restarted jitd still ends the session with its grant and knows how it
// ended; it need not survive a crash of the machine, because the session's
// processes do not either. So with Options.RuntimeDir (jitd: /run/jitd, a
// tmpfs) OpenSession and the session ends are acknowledged once their
// record is in a pending file there — in the page cache, which outlives
// the jitd process but not the kernel — and committed to the database,
// with their audit records, in one transaction per batch a moment later
// (Options.SessionCommitDelay, like the batching of decisions). Open
// replays what a killed jitd left pending.
//
// While a change is pending every read of sessions sees it: a pending
// session in its latest state overrides what the database holds. A
// registration checks its grant under the same lock that the reads of a
// grant's open sessions take, so a revocation either sees the session or
// the registration sees the revocation.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/jitpam/jit/jitd/grant"
)

// pendingOp is what a line of the pending file does to its session.
type pendingOp string

const (
	// opOpen registers the session. Lines written before ends were
	// pending carry no op; they are all registrations.
	opOpen pendingOp = ""
	// opEnd closes or terminates a session registered before.
	opEnd pendingOp = "end"
)

// pendingEntry is one line of the pending file: a change to a session and
// the audit details of the change. Session is the session as the change
// leaves it: for an end, with its state, end time, reason and exit status.
type pendingEntry struct {
	Op      pendingOp         `json:"op,omitempty"`
	Session grant.Session     `json:"session"`
	Actor   string            `json:"actor"`
	Reason  string            `json:"reason,omitempty"`
	Fields  map[string]string `json:"fields,omitempty"`
}

func (e *pendingEntry) audit() Audit {
	return Audit{Actor: e.Actor, Reason: e.Reason, Fields: e.Fields}
}

// valid reports whether a replayed line can be applied.
func (e *pendingEntry) valid() bool {
	if e.Session.ID == "" || e.Actor == "" {
		return false
	}
	switch e.Op {
	case opOpen:
		return e.Session.State == grant.SessionOpen
	case opEnd:
		return e.Session.State == grant.SessionClosed || e.Session.State == grant.SessionTerminated
	}
	return false
}

// DefaultSessionCommitDelay is how long pending session changes wait so
// that they are committed together: the decisions' batch delay.
const DefaultSessionCommitDelay = 100 * time.Millisecond

// pendingBatchMax commits at once, without waiting out the delay, once so
// many changes are pending.
const pendingBatchMax = 256

// pendingSessions holds session changes not yet committed to the database.
type pendingSessions struct {
	s     *Store
	path  string
	delay time.Duration

	// mu guards everything below; registrations hold it while they check
	// the grant, reads of open sessions while they take their snapshot.
	mu      sync.Mutex
	file    *os.File
	size    int64          // bytes in file
	torn    bool           // file ends in a torn line: commit directly
	entries []pendingEntry // in the order they were acknowledged
	// views is every session a pending entry changes, as the latest of
	// them leaves it; refs counts the pending entries of each.
	views   map[string]grant.Session
	refs    map[string]int
	running bool          // a committer goroutine runs
	full    chan struct{} // tells the committer not to wait out the delay
	stop    chan struct{} // closed by close
	closed  bool
	lastErr error // the last failed commit, until one succeeds

	// commitMu makes commits one at a time, so that a commit's batch is
	// always a prefix of entries.
	commitMu sync.Mutex
	done     sync.WaitGroup

	replayed, unreadable int
}

// pendingPath names the pending file for the database at dbPath: one file
// per database, so two jitds with different state directories sharing a
// runtime directory never commit each other's sessions.
func pendingPath(runtimeDir, dbPath string) string {
	sum := sha256.Sum256([]byte(dbPath))
	return filepath.Join(runtimeDir, "sessions-"+hex.EncodeToString(sum[:4])+".pending")
}

// openPending opens (creating) the pending file in dir and commits what a
// previous jitd left in it.
func openPending(s *Store, dir string, delay time.Duration) (*pendingSessions, error) {
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("runtime directory: %w", err)
	}
	if err := checkDir(dir); err != nil {
		return nil, fmt.Errorf("runtime directory: %w", err)
	}
	p := &pendingSessions{
		s: s, path: pendingPath(dir, s.path), delay: delay,
		views: map[string]grant.Session{}, refs: map[string]int{},
		full: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	f, err := os.OpenFile(p.path, os.O_RDWR|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open pending sessions: %w", err)
	}
	if err := secureFile(f, p.path); err != nil {
		f.Close()
		return nil, err
	}
	p.file = f
	if err := p.replay(); err != nil {
		f.Close()
		return nil, err
	}
	return p, nil
}

// replay commits the changes a killed jitd left pending. A line that does
// not decode is skipped and counted: the last one may be torn.
func (p *pendingSessions) replay() error {
	if _, err := p.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read %s: %w", p.path, err)
	}
	sc := bufio.NewScanner(p.file)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var e pendingEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || !e.valid() {
			p.unreadable++
			continue
		}
		if v, ok := p.views[e.Session.ID]; ok && (e.Op == opOpen || v.State != grant.SessionOpen) {
			continue // a line repeated; the commit skips what is stored already
		}
		p.addLocked(e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", p.path, err)
	}
	p.replayed = len(p.entries)
	if err := p.commit(); err != nil {
		return fmt.Errorf("commit sessions left pending in %s: %w", p.path, err)
	}
	// Whatever could not be read is gone now too.
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rewriteLocked()
}

// addLocked makes e pending in memory.
func (p *pendingSessions) addLocked(e pendingEntry) {
	p.entries = append(p.entries, e)
	p.views[e.Session.ID] = e.Session
	p.refs[e.Session.ID]++
}

// appendLocked writes e to the pending file and makes it pending. When the
// file cannot take it, nothing of it stays there and the caller commits
// the change directly.
func (p *pendingSessions) appendLocked(e pendingEntry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode session %s: %w", e.Session.ID, err)
	}
	if p.torn {
		return errors.New("the pending file ends in a torn line")
	}
	n, err := p.file.Write(append(line, '\n'))
	if err != nil {
		// The runtime directory is full or broken. Cut off what was
		// written, so that the next entry does not continue a torn line.
		if n > 0 && p.file.Truncate(p.size) != nil {
			p.torn = true // until a rewrite; replay skips the torn line
		}
		return err
	}
	p.size += int64(n)
	p.addLocked(e)
	if !p.running {
		p.running = true
		p.done.Add(1)
		go p.committer()
	} else if len(p.entries) >= pendingBatchMax {
		select {
		case p.full <- struct{}{}:
		default:
		}
	}
	return nil
}

// open checks and registers a new session, as OpenSession.
func (p *pendingSessions) open(sess grant.Session, a Audit) (grant.Session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return sess, errors.New("the store is closed")
	}
	err := p.s.view(func(tx *bolt.Tx) error {
		if err := checkNewSession(tx, &sess, a, p.s.clock()); err != nil {
			return err
		}
		id, err := drawID(tx, prefixSession, tx.Bucket([]byte(bucketSessions)), func(id string) bool { _, ok := p.views[id]; return ok })
		sess.ID = id
		return err
	})
	if err != nil {
		return sess, err
	}
	sess.StartedAt = utc(sess.StartedAt)
	e := pendingEntry{Session: sess, Actor: a.Actor, Reason: a.Reason, Fields: a.Fields}
	if p.appendLocked(e) != nil {
		// Commit this one the slow way rather than refuse it.
		return sess, p.s.update(func(w *wtx) error { return w.addSession(&e.Session, a) })
	}
	return sess, nil
}

// end ends session id as Store.endSession does. handled is false when the
// pending file cannot take the end (or the store is closing): the caller
// then commits it directly.
func (p *pendingSessions) end(id string, state grant.SessionState, exit *int, at time.Time, a Audit) (sess grant.Session, handled bool, err error) {
	if err := a.validate(); err != nil {
		return sess, true, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return sess, false, nil
	}
	sess, ok := p.views[id]
	if !ok {
		// Not pending: the database has its latest state, and nothing
		// changes it but what goes through here under p.mu.
		err := p.s.view(func(tx *bolt.Tx) error {
			var err error
			sess, err = getSession(tx, id)
			return err
		})
		if err != nil {
			return sess, true, err
		}
	}
	if sess.State != grant.SessionOpen {
		return sess, true, &AlreadyEndedError{What: "session", ID: sess.ID, State: string(sess.State), EndedAt: sess.EndedAt}
	}
	if at.IsZero() {
		at = p.s.clock()
	}
	endSessionAs(&sess, state, exit, at, a.Reason)
	if p.appendLocked(pendingEntry{Op: opEnd, Session: sess, Actor: a.Actor, Reason: a.Reason, Fields: a.Fields}) != nil {
		return grant.Session{}, false, nil
	}
	return sess, true, nil
}

// committer commits pending changes in batches until none are left:
// each batch waits out the delay (or until pendingBatchMax changes are
// pending), and a failed commit is retried with a growing pause.
func (p *pendingSessions) committer() {
	defer p.done.Done()
	wait, pause := p.delay, 10*time.Millisecond
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-p.stop:
			case <-p.full:
			case <-t.C:
			}
			t.Stop()
		}
		err := p.commit()
		p.mu.Lock()
		if len(p.entries) == 0 || p.closed {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if err == nil {
			wait, pause = p.delay, 10*time.Millisecond
			continue
		}
		wait, pause = pause, min(2*pause, time.Second)
	}
}

// commit writes the changes pending now to the database in one
// transaction, then drops them from the pending file.
func (p *pendingSessions) commit() error {
	p.commitMu.Lock()
	defer p.commitMu.Unlock()
	p.mu.Lock()
	batch := slices.Clone(p.entries)
	p.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := p.s.update(func(w *wtx) error {
		for i := range batch {
			if err := w.applyPending(&batch[i]); err != nil {
				return err
			}
		}
		return nil
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.lastErr = err
		return err
	}
	p.lastErr = nil
	for _, e := range batch {
		id := e.Session.ID
		if p.refs[id]--; p.refs[id] <= 0 {
			delete(p.refs, id)
			delete(p.views, id)
		}
	}
	p.entries = slices.Clone(p.entries[len(batch):])
	// The batch is in the database whatever happens to the file: a file
	// that keeps committed lines only makes a replay skip them. So a
	// failed rewrite is reported (PendingSessionError), not returned.
	if err := p.rewriteLocked(); err != nil {
		p.lastErr = err
	}
	return nil
}

// applyPending writes one pending change, unless the database has it
// already (committed before jitd was killed, and replayed now).
func (w *wtx) applyPending(e *pendingEntry) error {
	stored := w.bucket(bucketSessions).Get([]byte(e.Session.ID))
	switch e.Op {
	case opEnd:
		if stored == nil {
			return nil // pruned since, or never stored: nothing left to end
		}
		sess, err := decodeSession(e.Session.ID, stored)
		if err != nil {
			return err
		}
		if sess.State != grant.SessionOpen {
			return nil
		}
		endSessionAs(&sess, e.Session.State, e.Session.ExitStatus, e.Session.EndedAt, e.Session.EndReason)
		return w.recordEnd(&sess, e.audit())
	default:
		if stored != nil {
			return nil
		}
		// The grant was checked at registration. If it ended since, the
		// session is still real: it is recorded, and ending it is the
		// enforcer's work (it saw the session while pending).
		return w.addSession(&e.Session, e.audit())
	}
}

// rewriteLocked makes the pending file hold exactly the pending entries:
// empty (the usual case) by truncation, otherwise by replacing it.
func (p *pendingSessions) rewriteLocked() error {
	if len(p.entries) == 0 {
		if err := p.file.Truncate(0); err != nil {
			return fmt.Errorf("truncate %s: %w", p.path, err)
		}
		p.size, p.torn = 0, false
		return nil
	}
	var buf bytes.Buffer
	for _, e := range p.entries {
		line, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode session %s: %w", e.Session.ID, err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	tmp := p.path + ".new"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", p.path, err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("rewrite %s: %w", p.path, err)
	}
	if err := os.Rename(tmp, p.path); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("rewrite %s: %w", p.path, err)
	}
	p.file.Close()
	p.file, p.size, p.torn = f, int64(buf.Len()), false
	return nil
}

// flushIf commits the pending changes first if session id has one, so
// that a direct change to the session finds it in the database as it is.
func (p *pendingSessions) flushIf(id string) error {
	p.mu.Lock()
	_, pending := p.views[id]
	p.mu.Unlock()
	if !pending {
		return nil
	}
	return p.commit()
}

// get returns session id as its pending changes leave it, if it has any.
func (p *pendingSessions) get(id string) (grant.Session, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sess, ok := p.views[id]
	return sess, ok
}

// snapshot returns the sessions with pending changes that keep selects,
// in their latest state. Take it before reading the database: a change
// leaves the pending set only after its commit, so a later read of the
// database finds whatever left meanwhile.
func (p *pendingSessions) snapshot(keep func(*grant.Session) bool) []grant.Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []grant.Session
	seen := make(map[string]bool, len(p.views))
	for i := range p.entries {
		id := p.entries[i].Session.ID
		if seen[id] {
			continue
		}
		seen[id] = true
		if sess := p.views[id]; keep == nil || keep(&sess) {
			out = append(out, sess)
		}
	}
	return out
}

// close commits what is pending and stops the committer. Entries that
// cannot be committed stay in the file for the next Open.
func (p *pendingSessions) close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.stop)
	p.mu.Unlock()
	p.done.Wait()
	err := p.commit()
	if cerr := p.file.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("commit pending sessions: %w", err)
	}
	return nil
}

// mergeSessions puts the pending sessions in place of what the database
// returned for them, and adds the rest; with openOnly, a pending session
// that has ended is left out (the database returned it as still open).
func mergeSessions(stored, pending []grant.Session, openOnly bool) []grant.Session {
	if len(pending) == 0 {
		return stored
	}
	over := make(map[string]bool, len(pending))
	for _, s := range pending {
		over[s.ID] = true
	}
	out := stored[:0:0]
	for _, s := range stored {
		if !over[s.ID] {
			out = append(out, s)
		}
	}
	for _, s := range pending {
		if !openOnly || s.State == grant.SessionOpen {
			out = append(out, s)
		}
	}
	return out
}

// SessionRecovery says what Open found left pending by a jitd that was
// killed: session changes committed now, and lines that could not be read.
func (s *Store) SessionRecovery() (replayed, unreadable int) {
	if s.pending == nil {
		return 0, 0
	}
	return s.pending.replayed, s.pending.unreadable
}

// PendingSessionError is the last failed background commit of session
// changes (or rewrite of the pending file), nil once a later commit
// succeeded: the sessions are enforced meanwhile, but their changes are
// not yet in the database.
func (s *Store) PendingSessionError() error {
	if s.pending == nil {
		return nil
	}
	s.pending.mu.Lock()
	defer s.pending.mu.Unlock()
	return s.pending.lastErr
}
