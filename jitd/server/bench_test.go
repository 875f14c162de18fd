package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/grant"
)

// The check round trip over the socket, as sudo makes it, at several
// concurrency levels, next to the floor: a bare Unix-socket echo of a
// message of the same size. Reported: p50 and p99 latency and checks/s.
//
//	go test -run '^$' -bench 'RoundTrip' ./jitd/server/
func BenchmarkCheckRoundTrip(b *testing.B) {
	ts := startServer(b, nil)
	for i := 0; i < 100; i++ {
		if _, err := ts.client.Grant(context.Background(), &api.GrantSpec{User: "root", Kind: grant.KindSudo,
			Commands: []string{fmt.Sprintf("/usr/bin/tool%d", i)}, Duration: api.Duration(time.Hour), Reason: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
	req := &api.CheckRequest{User: "root", Kind: grant.KindSudo, Command: "/usr/bin/tool42", Args: []string{"--flag"}, TTY: "/dev/pts/1"}
	// Each client keeps its connection, as jitctl does; sudo and PAM make
	// one connection per process, measured as new-connection.
	for _, mode := range []struct {
		prefix    string
		keepAlive bool
	}{{"", true}, {"new-connection/", false}} {
		for _, clients := range []int{1, 8, 32} {
			if !mode.keepAlive && clients == 8 {
				continue
			}
			b.Run(fmt.Sprintf("%sclients=%d", mode.prefix, clients), func(b *testing.B) {
				runConcurrent(b, clients, func() func() error {
					c := api.NewClient(ts.socket)
					c.SetKeepAlive(mode.keepAlive)
					return func() error {
						d, err := c.Check(context.Background(), req)
						if err == nil && !d.Allow {
							err = fmt.Errorf("benchmark check denied: %s", d.Reason)
						}
						return err
					}
				})
			})
		}
	}
}

// BenchmarkEchoRoundTrip is the floor for BenchmarkCheckRoundTrip: a
// request-response of similar size over a Unix socket with nothing behind it.
func BenchmarkEchoRoundTrip(b *testing.B) {
	sock := filepath.Join(b.TempDir(), "echo.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadBytes('\n')
					if err != nil {
						return
					}
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			}()
		}
	}()
	msg := make([]byte, 400)
	for i := range msg {
		msg[i] = 'x'
	}
	msg[len(msg)-1] = '\n'
	for _, clients := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			runConcurrent(b, clients, func() func() error {
				c, err := net.Dial("unix", sock)
				if err != nil {
					return func() error { return err }
				}
				r := bufio.NewReader(c)
				return func() error {
					if _, err := c.Write(msg); err != nil {
						return err
					}
					_, err := r.ReadBytes('\n')
					return err
				}
			})
		})
	}
}

// runConcurrent spreads b.N calls over n clients and reports latency
// percentiles and throughput.
func runConcurrent(b *testing.B, n int, newClient func() func() error) {
	calls := make([]func() error, n)
	for i := range calls {
		calls[i] = newClient()
		if err := calls[i](); err != nil { // warm the connection
			b.Fatal(err)
		}
	}
	lat := make([][]time.Duration, n)
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i++ {
		share := b.N / n
		if i < b.N%n {
			share++
		}
		wg.Add(1)
		go func(i, share int) {
			defer wg.Done()
			ls := make([]time.Duration, 0, share)
			for k := 0; k < share; k++ {
				t0 := time.Now()
				if err := calls[i](); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				ls = append(ls, time.Since(t0))
			}
			lat[i] = ls
		}(i, share)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	var all []time.Duration
	for _, ls := range lat {
		all = append(all, ls...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) == 0 {
		return
	}
	// Whole µs would round the echo floor (about 10 µs) by up to 10%.
	usec := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(usec(all[len(all)/2]), "p50-µs")
	b.ReportMetric(usec(all[len(all)*99/100]), "p99-µs")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
}

// BenchmarkGrantWrite is one fsync'd grant creation through the API.
func BenchmarkGrantWrite(b *testing.B) {
	ts := startServer(b, nil)
	spec := &api.GrantSpec{User: "root", Kind: grant.KindSudo, Commands: []string{"/usr/bin/id"}, Duration: api.Duration(time.Hour), Reason: "bench"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ts.client.Grant(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
	}
}
