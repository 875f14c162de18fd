package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/jitd/store"
	"github.com/jitpam/jit/sandbox"
)

// BenchmarkJitdRSS reports jitd's resident memory (VmRSS) idle and holding
// 10k and 100k active grants: once start-up has settled, and again after
// some checks have gone through the decision path. It also reports how
// long jitd takes to start on each state file.
//
// The grants are written into the state file before jitd starts, through
// store.CreateGrants: the same records, indexes and audit chain as grants
// made through the API, which for 100k grants would take minutes of
// fsyncs. Each op starts from fresh state files; make bench runs it
// several times for the spread across runs.
//
//	go test -run '^$' -bench JitdRSS -benchtime 1x ./e2e/
func BenchmarkJitdRSS(b *testing.B) {
	sb := sandbox.New(b)
	sb.WriteFile(sandbox.PolicyPath, sandbox.TestPolicy, 0o644)
	for i := 0; i < b.N; i++ {
		for _, n := range []int{0, 10_000, 100_000} {
			dir := filepath.Join(sb.Dir, fmt.Sprintf("state-%d-%d", i, n))
			loadGrants(b, dir, n)

			t0 := time.Now()
			j := sb.StartJitd(sandbox.JitdOptions{StateDir: dir})
			started := time.Since(t0)
			// Read jitd at rest, not while start-up is still winding down:
			// its expiry loop and session watch start as the socket opens.
			time.Sleep(time.Second)
			pid := j.Proc.Cmd.Process.Pid
			if n == 0 {
				b.ReportMetric(rssMB(b, pid), "rss-idle-MB")
				j.Proc.Stop()
				continue
			}
			name := fmt.Sprintf("%dk", n/1000)
			b.ReportMetric(float64(started.Microseconds())/1000, "start-"+name+"-ms")
			b.ReportMetric(rssMB(b, pid), "rss-"+name+"-start-MB")
			checkMany(b, 1000, 8)
			b.ReportMetric(rssMB(b, pid), "rss-"+name+"-MB")
			b.ReportMetric(statusMB(b, pid, "RssFile:"), "rss-file-"+name+"-MB")
			j.Proc.Stop()
		}
	}
}

// rssUser holds every rssEvery-th grant of loadGrants; the others go to
// 999 users who exist only in the grants (jitd looks up the user of a
// check, not of a grant). rssUser's first grant is the one checkMany uses.
const (
	rssUser  = "jitalice"
	rssEvery = 1000
)

// loadGrants writes n active sudo grants, ending 4 to 5 hours from now, into
// a fresh state database in dir, and checks that the audit chain holds.
func loadGrants(b *testing.B, dir string, n int) {
	b.Helper()
	if n == 0 {
		return
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	// Batches, not one transaction: bbolt's cost per insert grows with the
	// uncommitted batch (see CreateGrants).
	const batch = 10_000
	exp := time.Now().Add(4 * time.Hour)
	gs := make([]grant.Grant, 0, batch)
	for k := 0; k < n; k++ {
		user := fmt.Sprintf("user%03d", k%rssEvery)
		if k%rssEvery == 0 {
			user = rssUser
		}
		gs = append(gs, grant.Grant{User: user, Kind: grant.KindSudo,
			Commands: []string{fmt.Sprintf("/usr/bin/tool%d --flag", k)},
			// Distinct ends, an hour apart at most, as on a real host.
			ExpiresAt: exp.Add(time.Duration(k) * time.Hour / time.Duration(n)),
			Reason:    "rss benchmark"})
		if len(gs) == batch || k == n-1 {
			if _, err := st.CreateGrants(gs, store.Audit{Actor: "jitlead", Reason: "rss benchmark"}); err != nil {
				b.Fatal(err)
			}
			gs = gs[:0]
		}
	}
	// Here rather than through jitd's API: that would read the whole chain
	// through jitd's mapping of the file and add it to the RSS measured.
	res, err := st.Verify()
	if err != nil {
		b.Fatalf("audit chain after loading %d grants: %v", n, err)
	}
	if res.Records < uint64(n) {
		b.Fatalf("audit chain holds %d records after loading %d grants", res.Records, n)
	}
}

// checkMany sends calls checks from clients concurrent clients, as sudo
// would for rssUser's first grant, and fails unless all are allowed.
func checkMany(b *testing.B, calls, clients int) {
	b.Helper()
	req := &api.CheckRequest{User: rssUser, Kind: grant.KindSudo, Command: "/usr/bin/tool0", Args: []string{"--flag"}, TTY: "/dev/pts/1"}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := api.NewClient(sandbox.SocketPath)
			defer c.Close()
			for k := w; k < calls; k += clients {
				d, err := c.Check(context.Background(), req)
				if err == nil && !d.Allow {
					err = fmt.Errorf("check denied: %s", d.Reason)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// rssMB is the process's resident memory: VmRSS, or with field "RssFile:"
// the part of it that maps files (for jitd, the bbolt database).
func rssMB(b *testing.B, pid int) float64 { return statusMB(b, pid, "VmRSS:") }

func statusMB(b *testing.B, pid int, field string) float64 {
	b.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatalf("%s in /proc/%d/status: %v", field, pid, err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
