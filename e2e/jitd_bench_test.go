package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/sandbox"
)

// BenchmarkJitdRSS reports jitd's resident memory idle and holding 10k
// active grants.
//
//	go test -run '^$' -bench JitdRSS -benchtime 1x ./e2e/
func BenchmarkJitdRSS(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sb := sandbox.New(b)
		j := sb.StartJitd(sandbox.JitdOptions{Policy: sandbox.TestPolicy})
		time.Sleep(time.Second)
		idle := rssMB(b, j.Proc.Cmd.Process.Pid)
		const grants = 10000
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				c := api.NewClient(sandbox.SocketPath)
				defer c.Close()
				for k := w; k < grants; k += 8 {
					_, err := c.Grant(context.Background(), &api.GrantSpec{User: "jitalice", Kind: grant.KindSudo,
						Commands: []string{fmt.Sprintf("/usr/bin/tool%d --flag", k)}, Duration: api.Duration(4 * time.Hour), Reason: "rss"})
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
		b.ReportMetric(idle, "rss-idle-MB")
		b.ReportMetric(rssMB(b, j.Proc.Cmd.Process.Pid), "rss-10k-MB")
	}
}

func rssMB(b *testing.B, pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
