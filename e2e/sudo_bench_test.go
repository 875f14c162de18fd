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
// one sandbox and one run. sudo is started directly with the user's
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
	bench := func(setup func()) func(b *testing.B) {
		return func(b *testing.B) {
			setup()
			for i := 0; i < 5; i++ { // warm caches
				sudoTrue(b)
			}
			times := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				times = append(times, sudoTrue(b))
			}
			b.StopTimer()
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(times[len(times)*9/10].Microseconds())/1000, "p90-ms")
		}
	}
	b.Run("jit", bench(func() { writeJitSudoConf(b, sb) }))
	b.Run("sudoers", bench(func() { writeSudoersConf(sb, "jitalice ALL=(root) NOPASSWD: /bin/true\n") }))
}
