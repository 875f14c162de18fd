package e2e

import (
	"os/exec"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/jitpam/jit/sandbox"
)

// BenchmarkSudoTrue compares `sudo -n /bin/true` as jitalice under an
// active jit grant with the same command under a sudoers NOPASSWD rule, in
// one sandbox and one run, alternating. sudo is started directly with the user's
// credentials (no setpriv in between), so the numbers are sudo's own. The
// target: jit's median at most 1.15× sudoers'.
//
//	go test -run '^$' -bench BenchmarkSudoTrue -benchtime 200x ./e2e/
func BenchmarkSudoTrue(b *testing.B) {
	sb, _ := sudoSandbox(b, "")
	grantSudo(b, sb, "jitalice", "2h", nil, "/bin/true")
	u, _ := sandbox.LookupUser("jitalice")
	sudoTrue := func(b *testing.B) time.Duration {
		cmd := exec.Command("/usr/bin/sudo", "-n", "/bin/true")
		cmd.Dir = u.Home
		cmd.Env = []string{"HOME=" + u.Home, "USER=" + u.Name, "LOGNAME=" + u.Name, "PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: []uint32{uint32(u.GID)},
		}}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("sudo -n /bin/true: %v\n%s", err, out)
		}
		return d
	}
	// The sides alternate pair by pair, so that a noisy neighbour slows
	// both alike; the ratio is the median of the per-pair ratios.
	jit := func() { writeJitSudoConf(b, sb) }
	sudoers := func() { writeSudoersConf(sb, "jitalice ALL=(root) NOPASSWD: /bin/true\n") }
	for _, setup := range []func(){jit, sudoers} { // warm caches
		setup()
		for i := 0; i < 5; i++ {
			sudoTrue(b)
		}
	}
	var jitTimes, sudoersTimes []time.Duration
	var ratios []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		jit()
		tj := sudoTrue(b)
		sudoers()
		ts := sudoTrue(b)
		jitTimes, sudoersTimes = append(jitTimes, tj), append(sudoersTimes, ts)
		ratios = append(ratios, float64(tj)/float64(ts))
	}
	b.StopTimer()
	med := func(ds []time.Duration) float64 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	sort.Float64s(ratios)
	b.ReportMetric(med(jitTimes), "jit-median-ms")
	b.ReportMetric(med(sudoersTimes), "sudoers-median-ms")
	b.ReportMetric(ratios[len(ratios)/2], "ratio-median")
	b.ReportMetric(ratios[len(ratios)/10], "ratio-p10")
	b.ReportMetric(ratios[len(ratios)*9/10], "ratio-p90")
}
