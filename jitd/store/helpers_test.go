package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/jitpam/jit/jitd/grant"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openAt(t testing.TB, dir string, c *clock) *Store {
	t.Helper()
	return openWith(t, dir, Options{Now: c.Now})
}

func openWith(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openTest(t testing.TB) (*Store, *clock) {
	t.Helper()
	c := newClock()
	return openAt(t, t.TempDir(), c), c
}

func lead(reason string) Audit { return Audit{Actor: "lead", Reason: reason} }

func sudoGrant(user string, expires time.Time) grant.Grant {
	return grant.Grant{
		User:      user,
		Kind:      grant.KindSudo,
		Commands:  []string{"/usr/bin/systemctl restart nginx"},
		ExpiresAt: expires,
		Reason:    "INC-4711",
	}
}

func mustCreate(t testing.TB, s *Store, g grant.Grant) grant.Grant {
	t.Helper()
	out, err := s.CreateGrant(g, lead("INC-4711"))
	if err != nil {
		t.Fatalf("CreateGrant: %v", err)
	}
	return out
}

func head(t testing.TB, s *Store) uint64 {
	t.Helper()
	seq, _, err := s.AuditHead()
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func ids[T any](l []T, id func(T) string) []string {
	out := make([]string, 0, len(l))
	for _, v := range l {
		out = append(out, id(v))
	}
	slices.Sort(out)
	return out
}

func grantIDs(l []grant.Grant) []string { return ids(l, func(g grant.Grant) string { return g.ID }) }
func sessionIDs(l []grant.Session) []string {
	return ids(l, func(s grant.Session) string { return s.ID })
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want one matching %v", err, target)
	}
}

// checkIndexes rebuilds every index from the primary buckets and compares
// it with what is stored: the indexes must never drift from the records.
func checkIndexes(t testing.TB, s *Store) {
	t.Helper()
	err := s.view(func(tx *bolt.Tx) error {
		want := map[string]map[string]bool{
			bucketGrantsByExpiry:  {},
			bucketGrantsByUser:    {},
			bucketRequestsPending: {},
			bucketSessionsOpen:    {},
		}
		if err := tx.Bucket([]byte(bucketGrants)).ForEach(func(k, v []byte) error {
			var g grant.Grant
			if err := json.Unmarshal(v, &g); err != nil {
				return err
			}
			if g.ID != string(k) {
				return fmt.Errorf("grant under key %s has id %s", k, g.ID)
			}
			active := g.State == grant.StateActive
			if active {
				want[bucketGrantsByExpiry][string(expiryKey(g.ExpiresAt, g.ID))] = true
			}
			want[bucketGrantsByUser][string(userKey(g.User, active, g.ID))] = true
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketRequests)).ForEach(func(k, v []byte) error {
			var r grant.Request
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			if r.State == grant.RequestPending {
				want[bucketRequestsPending][string(k)] = true
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketSessions)).ForEach(func(k, v []byte) error {
			var sess grant.Session
			if err := json.Unmarshal(v, &sess); err != nil {
				return err
			}
			if sess.State == grant.SessionOpen {
				want[bucketSessionsOpen][string(openSessionKey(sess.GrantID, sess.ID))] = true
			}
			return nil
		}); err != nil {
			return err
		}
		for name, keys := range want {
			got := map[string]bool{}
			if err := tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
				if len(v) != 0 {
					return fmt.Errorf("%s: key %q has a value", name, k)
				}
				got[string(k)] = true
				return nil
			}); err != nil {
				return err
			}
			for k := range keys {
				if !got[k] {
					return fmt.Errorf("%s: missing key %q", name, k)
				}
			}
			for k := range got {
				if !keys[k] {
					return fmt.Errorf("%s: stale key %q", name, k)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("index check: %v", err)
	}
}

// tamper edits the closed database file directly, as an attacker or a bad
// tool would.
func tamper(t testing.TB, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// equalJSON compares records the way they are stored.
func equalJSON(t testing.TB, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Fatalf("got  %s\nwant %s", g, w)
	}
}
