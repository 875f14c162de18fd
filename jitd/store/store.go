package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/jitpam/jit/jitd/grant"
)

const (
	// FileName is the database's name inside the state directory.
	FileName = "jitd.db"
	// SchemaVersion is the layout this package reads and writes. A database
	// with a higher version is refused rather than misread.
	SchemaVersion = 1
	// DefaultLockTimeout is how long Open waits for another holder of the
	// lock before giving up with ErrLocked.
	DefaultLockTimeout = time.Second
)

// Options tune Open. The zero value is what jitd normally wants.
type Options struct {
	// LockTimeout bounds the wait for the exclusive file lock; zero or
	// negative means DefaultLockTimeout. There is deliberately no "wait
	// forever": a second jitd must fail fast and say why.
	LockTimeout time.Duration
	// Now is the clock for audit timestamps and defaults; nil means
	// time.Now. Tests set it.
	Now func() time.Time
	// OnAudit, if set, is called with every audit record after the
	// transaction that wrote it has been committed (so never for a change
	// that was rolled back), in sequence order within one transaction.
	// jitd uses it to mirror the chain to journald. It runs on the writing
	// goroutine after the write lock is released; records of concurrent
	// transactions may arrive out of order (Seq tells the order).
	OnAudit func(AuditRecord)
	// RuntimeDir, if set, is where session registrations and ends wait
	// for their commit (see pending.go): OpenSession, CloseSession and
	// TerminateSession then return before the commit is on disk. It must
	// be a directory only root can write, on a file system that is
	// emptied at boot (jitd: /run/jitd).
	RuntimeDir string
	// SessionCommitDelay is how long pending session changes wait so that
	// they are committed together; zero means
	// DefaultSessionCommitDelay, negative commits each at once.
	SessionCommitDelay time.Duration
}

// Store is jitd's open state database. Its methods are safe for concurrent
// use.
type Store struct {
	db      *bolt.DB
	path    string
	now     func() time.Time
	onAudit func(AuditRecord)
	// pending holds session changes not yet committed; nil without
	// Options.RuntimeDir.
	pending *pendingSessions
}

// Audit says who made a change and why; the store writes it into the audit
// record that it appends in the change's own transaction.
type Audit struct {
	// Actor is the person or component responsible ("alice", "jitd").
	// Required.
	Actor string
	// Reason is the human explanation (ticket, revoke reason, ...).
	Reason string
	// Fields are extra context for the record (peer pid, client, ...).
	// Keys follow AuditRecord.Fields' rules. Where a key collides with a
	// field the store itself records, the store's value wins.
	Fields map[string]string
}

func (a Audit) validate() error {
	if err := validName("audit actor", a.Actor); err != nil {
		return err
	}
	return validFields(a.Fields)
}

// Open opens (creating if needed) dir/jitd.db. The directory is created 0700
// if missing and must not be writable by group or others; the file is made
// 0600 even if it existed with other bits. When another process holds the
// database, Open fails after opts.LockTimeout with an error matching
// ErrLocked. A fresh file is initialised with the current schema and the
// first audit record; a file with a newer schema is refused (ErrSchemaTooNew).
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("open state database: %w", invalidf("empty state directory"))
	}
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open state database: create state directory: %w", err)
	}
	if err := checkDir(dir); err != nil {
		return nil, fmt.Errorf("open state database: %w", err)
	}
	path := filepath.Join(dir, FileName)

	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	var file *os.File
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: timeout,
		// Decisions hold read transactions all the time; a writer that must
		// grow the mmap waits for all of them. Mapping generously up front
		// (address space only, the file does not grow) keeps writers from
		// stalling behind readers until the file passes this size.
		InitialMmapSize: 64 << 20,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			// A symlink planted in place of the database would make a
			// root daemon write through it.
			f, err := os.OpenFile(name, flag|syscall.O_NOFOLLOW, perm)
			if err == nil {
				file = f
			}
			return f, err
		},
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w; gave up after %s", path, ErrLocked, timeout)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := secureFile(file, path); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open state database: %w", err)
	}

	s := &Store{db: db, path: path, now: opts.Now, onAudit: opts.OnAudit}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.initSchema(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if opts.RuntimeDir != "" {
		delay := opts.SessionCommitDelay
		switch {
		case delay == 0:
			delay = DefaultSessionCommitDelay
		case delay < 0:
			delay = 0
		}
		p, err := openPending(s, opts.RuntimeDir, delay)
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		s.pending = p
	}
	return s, nil
}

// checkDir refuses a state directory others could write to: they could
// replace the database under a root daemon.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state directory %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("state directory %s is writable by group or others (mode %04o); run chmod 0700 %s", dir, perm, dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if euid := os.Geteuid(); int(st.Uid) != euid && st.Uid != 0 {
			return fmt.Errorf("state directory %s is owned by uid %d, not by uid %d or root", dir, st.Uid, euid)
		}
	}
	return nil
}

// secureFile makes sure the database is a regular file of ours with mode
// 0600, through the open descriptor so nothing can be swapped in between.
func secureFile(f *os.File, path string) error {
	if f == nil {
		return fmt.Errorf("%s: database file was not opened through the store", path)
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if euid := os.Geteuid(); int(st.Uid) != euid {
			return fmt.Errorf("%s is owned by uid %d, not by uid %d", path, st.Uid, euid)
		}
	}
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			return fmt.Errorf("chmod 0600 %s: %w", path, err)
		}
	}
	return nil
}

// initSchema initialises a fresh file or checks an existing one.
func (s *Store) initSchema() error {
	var fresh bool
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			// A bbolt file without our meta bucket is either brand new or
			// somebody else's; only the first may be initialised.
			empty := true
			_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				empty = false
				return nil
			})
			if !empty {
				return fmt.Errorf("%w: buckets present but no %q bucket", ErrForeignDB, bucketMeta)
			}
			fresh = true
			return nil
		}
		v := meta.Get([]byte(metaSchema))
		if len(v) != 8 {
			return fmt.Errorf("%w: no valid schema version", ErrForeignDB)
		}
		ver := binary.BigEndian.Uint64(v)
		if ver > SchemaVersion {
			return fmt.Errorf("%w: the database has schema version %d, this jitd reads up to %d; run the newer jitd that wrote it, or restore a backup",
				ErrSchemaTooNew, ver, SchemaVersion)
		}
		if ver < SchemaVersion {
			// Version 1 is the first; a lower number was never written.
			return fmt.Errorf("%w: unknown schema version %d", ErrForeignDB, ver)
		}
		for _, name := range allBuckets() {
			// Recreating a vanished bucket would silently hide lost
			// grants or audit records.
			if tx.Bucket([]byte(name)) == nil {
				return fmt.Errorf("%w: bucket %q is missing", ErrForeignDB, name)
			}
		}
		return nil
	})
	if err != nil || !fresh {
		return err
	}
	return s.update(func(w *wtx) error {
		for _, name := range allBuckets() {
			if _, err := w.tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := w.tx.Bucket([]byte(bucketMeta))
		if err := meta.Put([]byte(metaSchema), be64(SchemaVersion)); err != nil {
			return err
		}
		if err := meta.Put([]byte(metaCreated), []byte(w.now.Format(time.RFC3339Nano))); err != nil {
			return err
		}
		// The first record anchors the chain: deleting it is then a
		// visible gap rather than a chain that merely starts later.
		return w.appendAudit(AuditRecord{
			Event:  EventStoreCreated,
			Actor:  "jitd",
			Fields: map[string]string{"schema_version": strconv.Itoa(SchemaVersion)},
		})
	})
}

// Close commits pending sessions and releases the database and its lock.
func (s *Store) Close() error {
	var perr error
	if s.pending != nil {
		perr = s.pending.close()
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	if perr != nil {
		return fmt.Errorf("close %s: %w", s.path, perr)
	}
	return nil
}

// Path is the database file's path.
func (s *Store) Path() string { return s.path }

// wtx is one write transaction plus what the store learns while it runs.
type wtx struct {
	tx *bolt.Tx
	// now is read once per transaction so that all its records agree.
	now     time.Time
	records []AuditRecord
}

func (w *wtx) bucket(name string) *bolt.Bucket { return w.tx.Bucket([]byte(name)) }

// update runs fn in one read-write transaction (fsync'd on commit) and
// hands the audit records it wrote to OnAudit once they are durable.
func (s *Store) update(fn func(w *wtx) error) error {
	var records []AuditRecord
	err := s.db.Update(func(tx *bolt.Tx) error {
		w := &wtx{tx: tx, now: s.clock()}
		if err := fn(w); err != nil {
			return err
		}
		records = w.records
		return nil
	})
	if err != nil {
		return err
	}
	if s.onAudit != nil {
		for _, r := range records {
			s.onAudit(r)
		}
	}
	return nil
}

func (s *Store) view(fn func(tx *bolt.Tx) error) error { return s.db.View(fn) }

// clock is the store's time in UTC without a monotonic reading, the form
// every stored time takes, so that what a write returns equals what a later
// read decodes.
func (s *Store) clock() time.Time { return s.now().UTC() }

// Counts summarise the database for status displays.
type Counts struct {
	Grants          int    `json:"grants"`
	ActiveGrants    int    `json:"active_grants"`
	Requests        int    `json:"requests"`
	PendingRequests int    `json:"pending_requests"`
	Sessions        int    `json:"sessions"`
	OpenSessions    int    `json:"open_sessions"`
	AuditSeq        uint64 `json:"audit_seq"`
}

// Counts returns the number of objects in each bucket and the audit head.
func (s *Store) Counts() (Counts, error) {
	var c Counts
	var pending []grant.Session
	if s.pending != nil {
		pending = s.pending.snapshot(nil)
	}
	err := s.view(func(tx *bolt.Tx) error {
		// A pending session counts as it is now; the database may hold
		// it in an earlier state, or not at all.
		for _, sess := range pending {
			open := sess.State == grant.SessionOpen
			v := tx.Bucket([]byte(bucketSessions)).Get([]byte(sess.ID))
			if v == nil {
				c.Sessions++
				if open {
					c.OpenSessions++
				}
				continue
			}
			stored, err := decodeSession(sess.ID, v)
			if err != nil {
				return err
			}
			if wasOpen := stored.State == grant.SessionOpen; wasOpen != open {
				if open {
					c.OpenSessions++
				} else {
					c.OpenSessions--
				}
			}
		}
		n := func(name string) int { return tx.Bucket([]byte(name)).Stats().KeyN }
		c.Grants = n(bucketGrants)
		c.ActiveGrants = n(bucketGrantsByExpiry)
		c.Requests = n(bucketRequests)
		c.PendingRequests = n(bucketRequestsPending)
		c.Sessions += n(bucketSessions)
		c.OpenSessions += n(bucketSessionsOpen)
		seq, _, err := auditHead(tx)
		c.AuditSeq = seq
		return err
	})
	if err != nil {
		return Counts{}, fmt.Errorf("count: %w", err)
	}
	return c, nil
}
