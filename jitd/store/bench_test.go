package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

// BenchmarkCreateGrant measures one acknowledged (fsync'd) grant write with
// its audit record.
func BenchmarkCreateGrant(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g := sudoGrant("alice", time.Now().Add(24*time.Hour))
	for b.Loop() {
		if _, err := s.CreateGrant(g, lead("bench")); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendAudit measures one fsync'd standalone audit record, such as
// a decision.
func BenchmarkAppendAudit(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rec := AuditRecord{Event: "decision.allow", Actor: "root", User: "alice", GrantID: "g-12345678",
		Fields: map[string]string{"command": "/usr/bin/systemctl restart nginx", "runas": "root"}}
	for b.Loop() {
		if _, err := s.AppendAudit(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// loadStore fills a store with n grants: the user "target" holds 5 active
// and 50 ended grants, the rest are spread over 1000 other users, 90% of
// them ended, as on a host that has run for a while. It writes in large
// transactions (through the same code path as CreateGrant and EndGrant) so
// that setting up 100k grants does not take 100k fsyncs.
func loadStore(b *testing.B, n int) *Store {
	b.Helper()
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	exp := time.Now().Add(24 * time.Hour)
	const chunk = 5000
	for done := 0; done < n; {
		err := s.update(func(w *wtx) error {
			for i := 0; i < chunk && done < n; i, done = i+1, done+1 {
				user, end := fmt.Sprintf("user%04d", done%1000), done%10 != 0
				switch {
				case done < 5:
					user, end = "target", false
				case done < 55:
					user, end = "target", true
				}
				g, err := w.createGrant(sudoGrant(user, exp.Add(time.Duration(done)*time.Millisecond)), lead("load"))
				if err != nil {
					return err
				}
				if end {
					if _, err := w.endGrant(g.ID, grant.StateRevoked, time.Time{}, lead("load")); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkGrantsForUser is the decision path's read: one View transaction,
// a prefix scan and the user's active grants decoded.
func BenchmarkGrantsForUser(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("grants=%d", n), func(b *testing.B) {
			s := loadStore(b, n)
			b.ResetTimer()
			for b.Loop() {
				gs, err := s.GrantsForUser("target")
				if err != nil || len(gs) != 5 {
					b.Fatalf("%d grants, %v", len(gs), err)
				}
			}
		})
	}
}

// BenchmarkGrantsForUserParallel is the same read from concurrent decisions.
func BenchmarkGrantsForUserParallel(b *testing.B) {
	s := loadStore(b, 100_000)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if gs, err := s.GrantsForUser("target"); err != nil || len(gs) != 5 {
				b.Errorf("%d grants, %v", len(gs), err)
				return
			}
		}
	})
}

func BenchmarkGetGrant(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g, err := s.CreateGrant(sudoGrant("alice", time.Now().Add(time.Hour)), lead("bench"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.GetGrant(g.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNextExpiryOverdue is what the expiry timer does each time it
// fires, on a store holding 100k grants.
func BenchmarkNextExpiryOverdue(b *testing.B) {
	s := loadStore(b, 100_000)
	now := time.Now()
	b.ResetTimer()
	for b.Loop() {
		if _, ok, err := s.NextExpiry(); err != nil || !ok {
			b.Fatal(ok, err)
		}
		if gs, err := s.Overdue(now); err != nil || len(gs) != 0 {
			b.Fatal(len(gs), err)
		}
	}
}

// BenchmarkVerify walks an audit chain of about 200k records (100k
// created and 90k ended grants).
func BenchmarkVerify(b *testing.B) {
	s := loadStore(b, 100_000)
	b.ResetTimer()
	for b.Loop() {
		res, err := s.Verify()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.Records), "records")
	}
}
