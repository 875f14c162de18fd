package store

// Session registrations are on the path of every sudo command and every
// login: sudo waits for the answer before it runs anything. An fsync'd
// bbolt commit costs about a millisecond there, more than everything else
// jitd does for the check. What a session record must survive is a crash
// of jitd, so that a restarted jitd still ends the session with its grant;
// it need not survive a crash of the machine, because the session's
// processes do not either. So with Options.RuntimeDir (jitd: /run/jitd, a
// tmpfs) OpenSession is acknowledged once its record is in a pending file
// there — in the page cache, which outlives the jitd process but not the
// kernel — and committed to the database, with its audit record, in the
// background a moment later. Open replays what a killed jitd left pending.
//
// While a session is pending every read of sessions includes it, and a
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

// pendingEntry is one line of the pending file: a checked session and the
// audit details of its registration.
type pendingEntry struct {
	Session grant.Session     `json:"session"`
	Actor   string            `json:"actor"`
	Reason  string            `json:"reason,omitempty"`
	Fields  map[string]string `json:"fields,omitempty"`
}

func (e *pendingEntry) audit() Audit {
	return Audit{Actor: e.Actor, Reason: e.Reason, Fields: e.Fields}
}

// pendingSessions holds registrations not yet committed to the database.
type pendingSessions struct {
	s    *Store
	path string

	// mu guards everything below; registrations hold it while they check
	// the grant, reads of open sessions while they take their snapshot.
	mu      sync.Mutex
	file    *os.File
	size    int64          // bytes in file
	torn    bool           // file ends in a torn line: commit directly
	entries []pendingEntry // registration order
	ids     map[string]bool
	running bool          // a committer goroutine runs
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
func openPending(s *Store, dir string) (*pendingSessions, error) {
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("runtime directory: %w", err)
	}
	if err := checkDir(dir); err != nil {
		return nil, fmt.Errorf("runtime directory: %w", err)
	}
	p := &pendingSessions{s: s, path: pendingPath(dir, s.path), ids: map[string]bool{}, stop: make(chan struct{})}
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

// replay commits the entries a killed jitd left pending. A line that does
// not decode is skipped and counted: the last one may be torn.
func (p *pendingSessions) replay() error {
	if _, err := p.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read %s: %w", p.path, err)
	}
	sc := bufio.NewScanner(p.file)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var e pendingEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Session.ID == "" || e.Actor == "" {
			p.unreadable++
			continue
		}
		if p.ids[e.Session.ID] {
			continue
		}
		p.ids[e.Session.ID] = true
		p.entries = append(p.entries, e)
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
		id, err := drawID(tx, prefixSession, tx.Bucket([]byte(bucketSessions)), func(id string) bool { return p.ids[id] })
		sess.ID = id
		return err
	})
	if err != nil {
		return sess, err
	}
	sess.StartedAt = utc(sess.StartedAt)
	e := pendingEntry{Session: sess, Actor: a.Actor, Reason: a.Reason, Fields: a.Fields}
	line, err := json.Marshal(e)
	if err != nil {
		return sess, fmt.Errorf("encode session %s: %w", sess.ID, err)
	}
	n, err := 0, errors.New("the pending file ends in a torn line")
	if !p.torn {
		n, err = p.file.Write(append(line, '\n'))
	}
	if err != nil {
		// The runtime directory is full or broken: commit this one the
		// slow way rather than refuse it, and cut off what was written of
		// it, so that the next entry does not continue a torn line.
		if n > 0 && p.file.Truncate(p.size) != nil {
			p.torn = true // until a rewrite; replay skips the torn line
		}
		return sess, p.s.update(func(w *wtx) error { return w.addSession(&e.Session, a) })
	}
	p.size += int64(n)
	p.entries = append(p.entries, e)
	p.ids[sess.ID] = true
	if !p.running {
		p.running = true
		p.done.Add(1)
		go p.committer()
	}
	return sess, nil
}

// committer commits pending sessions until none are left, retrying with a
// growing pause while the database refuses writes.
func (p *pendingSessions) committer() {
	defer p.done.Done()
	pause := 10 * time.Millisecond
	for {
		err := p.commit()
		p.mu.Lock()
		if len(p.entries) == 0 || p.closed {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if err == nil {
			pause = 10 * time.Millisecond
			continue
		}
		select {
		case <-p.stop:
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// commit writes the sessions pending now to the database in one
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
		sessions := w.bucket(bucketSessions)
		for i := range batch {
			e := &batch[i]
			if sessions.Get([]byte(e.Session.ID)) != nil {
				continue // committed before jitd was killed
			}
			// The grant was checked at registration. If it ended since,
			// the session is still real: it is recorded, and ending it is
			// the enforcer's work (it saw the session while pending).
			if err := w.addSession(&e.Session, e.audit()); err != nil {
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
		delete(p.ids, e.Session.ID)
	}
	p.entries = slices.Clone(p.entries[len(batch):])
	return p.rewriteLocked()
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

// flushIf commits the pending sessions first if id is one of them, so that
// a change to the session finds it in the database.
func (p *pendingSessions) flushIf(id string) error {
	p.mu.Lock()
	pending := p.ids[id]
	p.mu.Unlock()
	if !pending {
		return nil
	}
	return p.commit()
}

// get returns session id if it is pending.
func (p *pendingSessions) get(id string) (grant.Session, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ids[id] {
		return grant.Session{}, false
	}
	for _, e := range p.entries {
		if e.Session.ID == id {
			return e.Session, true
		}
	}
	return grant.Session{}, false
}

// snapshot returns the pending sessions keep selects. Take it before
// reading the database: a session leaves the pending set only after its
// commit, so a later read of the database finds whatever left meanwhile.
func (p *pendingSessions) snapshot(keep func(*grant.Session) bool) []grant.Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []grant.Session
	for i := range p.entries {
		if keep == nil || keep(&p.entries[i].Session) {
			out = append(out, p.entries[i].Session)
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

// mergeSessions adds the pending sessions to what the database returned,
// once each.
func mergeSessions(stored, pending []grant.Session) []grant.Session {
	if len(pending) == 0 {
		return stored
	}
	seen := make(map[string]bool, len(stored))
	for _, s := range stored {
		seen[s.ID] = true
	}
	for _, s := range pending {
		if !seen[s.ID] {
			stored = append(stored, s)
		}
	}
	return stored
}

// SessionRecovery says what Open found left pending by a jitd that was
// killed: sessions committed now, and lines that could not be read.
func (s *Store) SessionRecovery() (replayed, unreadable int) {
	if s.pending == nil {
		return 0, 0
	}
	return s.pending.replayed, s.pending.unreadable
}

// PendingSessionError is the last failed background commit of sessions,
// nil when the last commit succeeded: the sessions are enforced meanwhile,
// but not yet in the database.
func (s *Store) PendingSessionError() error {
	if s.pending == nil {
		return nil
	}
	s.pending.mu.Lock()
	defer s.pending.mu.Unlock()
	return s.pending.lastErr
}
