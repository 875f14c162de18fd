package server

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"

	"github.com/jitpam/jit/jitd/auditlog"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/jitd/policy"
	"github.com/jitpam/jit/jitd/store"
)

// syncBuffer is a log destination the test reads while jitd writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runLogged runs a server on the state in dir and returns its log once it
// contains want.
func runLogged(t *testing.T, dir, want string) string {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "state"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs syncBuffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})
	srv, err := New(Config{Store: st, Policy: policy.Default(), StateDir: dir, Log: log, Audit: auditlog.New(log), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("jitd's log never said %q:\n%s", want, logs.String())
		}
	}
	return logs.String()
}

// jitd checks the audit chain when it starts and says loudly when it is
// broken, while it goes on serving.
func TestChainVerifiedAtStart(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, u := range []string{"alice", "bob"} {
		g := grant.Grant{User: u, Kind: grant.KindSudo, RunAs: "root", Commands: []string{"/usr/bin/id"},
			Reason: "INC-1", CreatedAt: now, ExpiresAt: now.Add(time.Hour), State: grant.StateActive}
		if _, err := st.CreateGrant(g, store.Audit{Actor: "root", Reason: "INC-1"}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	out := runLogged(t, dir, "audit chain verified")
	if !strings.Contains(out, "records=") {
		t.Fatalf("the verified line should count the records:\n%s", out)
	}

	// Edit a record behind jitd's back, as someone with the file might.
	db, err := bolt.Open(filepath.Join(dir, "state", store.FileName), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if bytes.Contains(v, []byte(`"alice"`)) {
				return b.Put(k, bytes.Replace(v, []byte(`"alice"`), []byte(`"mallory"`), 1))
			}
		}
		t.Fatal("no audit record names alice")
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	out = runLogged(t, dir, "the audit chain is broken")
	if !strings.Contains(out, "seq=2") {
		t.Fatalf("the broken-chain line should name the first bad record:\n%s", out)
	}
}
