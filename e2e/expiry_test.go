package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/enforce"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/jitd/journalread"
	"github.com/jitpam/jit/sandbox"
)

// expiryPolicy is the test policy with a short grace period and warnings.
const expiryPolicy = sandbox.TestPolicy + `
grace_period = "1s"
warn_before  = ["2s"]
`

// userProcess is a process of a test user, standing in for what sudo or a
// login runs under a grant; jitd is told about it as sudo's plugin tells it.
type userProcess struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	tty  string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startUserProcess runs script (sh -c) as user on a pseudo-terminal and
// returns once it printed its tty.
func startUserProcess(t *testing.T, sb *sandbox.Sandbox, user, script string) *userProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cmd := sb.UserCommand(ctx, user, []string{"TERM=dumb"}, "/usr/bin/script", "-qefc", "tty; "+script, "/dev/null")
	pr, pw := io.Pipe()
	p := &userProcess{cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout = io.MultiWriter(pw, p.out)
	// A stdin that stays open: an interactive shell reading EOF would
	// end by itself, and the test is about jitd ending it.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdinW.Close() })
	defer stdinR.Close()
	cmd.Stdin = stdinR
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr)
	if err != nil || !strings.HasPrefix(line, "/dev/pts/") {
		t.Fatalf("user process did not report its tty: %q %v", line, err)
	}
	p.tty = strings.TrimSpace(line)
	return p
}

func (p *userProcess) exitedWithin(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// register tells jitd about a session the way the sudo plugin does.
func register(t *testing.T, j *sandbox.Jitd, user, grantID string, p *userProcess) *grant.Session {
	t.Helper()
	s, err := j.Client.OpenSession(testCtx(t), &api.SessionSpec{Kind: grant.KindSudo, User: user, GrantID: grantID,
		Command: "/bin/sleep 600", TTY: p.tty, PID: p.cmd.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func grantFor(t *testing.T, sb *sandbox.Sandbox, user, dur string) string {
	t.Helper()
	return mustOK(t, sb.Jitctl("jitlead", "grant", user, "--cmd", "ALL", "--for", dur, "--reason", "expiry test"), "grant")
}

// When a grant expires, the session under it is warned, told, and ended,
// and the end is audited.
func TestExpiryEndsSession(t *testing.T) {
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: expiryPolicy})
	id := grantFor(t, sb, "jitalice", "4s")
	p := startUserProcess(t, sb, "jitalice", "exec sleep 600")
	sess := register(t, j, "jitalice", id, p)
	g, err := j.Client.GetGrant(testCtx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if !p.exitedWithin(time.Until(g.ExpiresAt) + 10*time.Second) {
		t.Fatal("session still running 10 s after its grant expired")
	}
	late := time.Since(g.ExpiresAt)
	t.Logf("session ended %v after the grant's end", late.Round(time.Millisecond))
	if late < 0 {
		t.Fatalf("session ended %v before the grant did", -late)
	}
	out := p.out.String()
	for _, want := range []string{"jit: grant " + id + " ends in", "jit: grant " + id + " expired"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal lacks %q:\n%s", want, out)
		}
	}
	e := sb.WaitJournal(10*time.Second, nil, "JIT_EVENT=session.terminated", "JIT_SESSION_ID="+sess.ID)
	if got := e[0].Get("JIT_GRANT_ID"); got != id {
		t.Errorf("session.terminated names grant %q, want %q", got, id)
	}
}

// Revocation ends a running session; a process that ignores SIGTERM and
// SIGHUP is killed after the grace period.
func TestRevokeEndsSessionEvenIfStubborn(t *testing.T) {
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: expiryPolicy})
	id := grantFor(t, sb, "jitalice", "1h")
	polite := startUserProcess(t, sb, "jitalice", "exec sleep 600")
	stubborn := startUserProcess(t, sb, "jitalice", "trap '' TERM HUP; sleep 600; sleep 600")
	register(t, j, "jitalice", id, polite)
	sess := register(t, j, "jitalice", id, stubborn)
	mustOK(t, sb.Jitctl("jitlead", "revoke", id, "--reason", "incident over"), "revoke")
	if !polite.exitedWithin(10 * time.Second) {
		t.Fatal("session still running 10 s after revocation")
	}
	if !stubborn.exitedWithin(15 * time.Second) {
		t.Fatal("a process ignoring SIGTERM survived the grace period")
	}
	e := sb.WaitJournal(10*time.Second, nil, "JIT_EVENT=session.terminated", "JIT_SESSION_ID="+sess.ID)
	if got := e[0].Get("JIT_SIGNAL"); got != "SIGKILL" {
		t.Errorf("stubborn session recorded signal %q, want SIGKILL", got)
	}
	if !strings.Contains(polite.out.String(), "revoked by jitlead") {
		t.Errorf("no final notice on the terminal:\n%s", polite.out.String())
	}
}

// An end that passes while jitd is down is enforced as soon as it is back.
func TestExpiryAcrossRestart(t *testing.T) {
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: expiryPolicy})
	id := grantFor(t, sb, "jitalice", "4s")
	p := startUserProcess(t, sb, "jitalice", "exec sleep 600")
	register(t, j, "jitalice", id, p)
	if err := j.Proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	j.Proc.Wait(5 * time.Second)
	time.Sleep(6 * time.Second)
	if p.exitedWithin(0) {
		t.Fatal("session ended while jitd was down: nothing should have ended it")
	}
	restarted := time.Now()
	sb.StartJitd(sandbox.JitdOptions{StateDir: j.StateDir})
	if !p.exitedWithin(10 * time.Second) {
		t.Fatal("session still running 10 s after jitd came back")
	}
	t.Logf("session ended %v after jitd restarted", time.Since(restarted).Round(time.Millisecond))
}

// A session whose pid was taken over by an unrelated process is closed, and
// the unrelated process is never signalled.
func TestReusedPIDIsNeverSignalled(t *testing.T) {
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: expiryPolicy})
	id := grantFor(t, sb, "jitalice", "3s")
	p := startUserProcess(t, sb, "jitalice", "exec sleep 600")
	sess := register(t, j, "jitalice", id, p)
	// The registered process ends; the same pid goes to a bystander.
	p.cmd.Process.Kill()
	p.exitedWithin(5 * time.Second)
	// Start times count clock ticks (10 ms): a pid reused within the same
	// tick would look like the same process. Only forcing the pid, as here,
	// can reuse one that fast (the kernel otherwise cycles through pid_max).
	time.Sleep(50 * time.Millisecond)
	bystander := startReusingPID(t, sess.PID)
	if bystander.Process.Pid != sess.PID {
		t.Fatalf("could not reuse pid %d (got %d)", sess.PID, bystander.Process.Pid)
	}
	bp, err := enforce.Read(bystander.Process.Pid)
	if err != nil || bp.Start == sess.PIDStart {
		t.Fatalf("bystander %+v, err %v: start time should differ from %d", bp, err, sess.PIDStart)
	}
	// Past the grant's end and the grace period.
	time.Sleep(3*time.Second + 3*time.Second)
	if !enforce.Alive(bystander.Process.Pid, bp.Start) {
		t.Fatal("jitd signalled a process that merely reused the session's pid")
	}
	waitFor(t, 15*time.Second, "session closed or terminated", func() bool {
		ss, err := j.Client.Sessions(testCtx(t), api.SessionFilter{})
		if err != nil {
			return false
		}
		for _, s := range ss {
			if s.ID == sess.ID {
				return s.State != grant.SessionOpen
			}
		}
		return false
	})
}

// startReusingPID starts a long sleep as root with exactly pid, by setting
// the pid namespace's next pid (the sandbox is a pid namespace of its own).
func startReusingPID(t *testing.T, pid int) *exec.Cmd {
	t.Helper()
	var cmd *exec.Cmd
	for attempt := 0; attempt < 50; attempt++ {
		if err := writeNsLastPID(pid - 1); err != nil {
			t.Fatalf("set ns_last_pid: %v", err)
		}
		cmd = exec.Command("/bin/sleep", "600")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if cmd.Process.Pid == pid {
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			return cmd
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	return cmd
}

func writeNsLastPID(n int) error {
	return os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(n)), 0o644)
}

// An SSH login under a login grant is disconnected when the grant ends: jitd
// ends every process of the login's audit session.
func TestExpiryDisconnectsSSHLogin(t *testing.T) {
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: pamPolicy + "\ngrace_period = \"1s\"\n"})
	withPAMJit(t, sb)
	sshd := sb.StartSSHD(sandbox.SSHDConfig{})
	id := mustOK(t, sb.Jitctl("jitlead", "grant", "jitalice", "--login", "--for", "5s", "--reason", "expiry test"), "login grant")
	g, err := j.Client.GetGrant(testCtx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := sshd.SSH("jitalice", 60*time.Second, "echo in; sleep 50; echo still-here")
	ended := time.Now()
	if !strings.Contains(r.Stdout, "in") || strings.Contains(r.Stdout, "still-here") {
		t.Fatalf("login under a 5 s grant: %s", r)
	}
	if ended.Sub(start) > 40*time.Second {
		t.Fatalf("the login outlived its grant by %v", ended.Sub(g.ExpiresAt))
	}
	t.Logf("ssh login ended %v after the grant's end", ended.Sub(g.ExpiresAt).Round(time.Millisecond))
	waitSessions(t, sb, "jitalice", 10*time.Second, func(ss []grant.Session) bool {
		for _, s := range ss {
			if s.GrantID == id && s.State == grant.SessionTerminated {
				return true
			}
		}
		return false
	})
}

// With the real sudo and jit_sudo.so: a command and a root shell under a tty
// are ended when the grant is revoked mid-run, and when it expires.
func TestGrantEndStopsRealSudo(t *testing.T) {
	for _, end := range []string{"revoke", "expire"} {
		t.Run(end, func(t *testing.T) {
			sb, j := sudoSandbox(t, expiryPolicy)
			dur := "1h"
			if end == "expire" {
				dur = "4s"
			}
			id := grantFor(t, sb, "jitalice", dur)
			cmd := startUserProcess(t, sb, "jitalice", "sudo -n /bin/sleep 600")
			shell := startUserProcess(t, sb, "jitalice", "sudo -n -i")
			waitFor(t, 10*time.Second, "both sudo sessions registered", func() bool {
				ss, err := j.Client.Sessions(testCtx(t), api.SessionFilter{Open: true})
				return err == nil && len(ss) == 2
			})
			if cmd.exitedWithin(0) || shell.exitedWithin(0) {
				t.Fatalf("a sudo session ended by itself:\n%s\n%s", cmd.out.String(), shell.out.String())
			}
			var endAt time.Time
			if end == "revoke" {
				endAt = time.Now()
				mustOK(t, sb.Jitctl("jitlead", "revoke", id, "--reason", "incident over"), "revoke")
			} else {
				g, err := j.Client.GetGrant(testCtx(t), id)
				if err != nil {
					t.Fatal(err)
				}
				endAt = g.ExpiresAt
			}
			for name, p := range map[string]*userProcess{"sudo sleep": cmd, "sudo -i": shell} {
				if !p.exitedWithin(time.Until(endAt) + 10*time.Second) {
					t.Fatalf("%s still running 10 s after the grant's end:\n%s", name, p.out.String())
				}
				t.Logf("%s gone %v after the grant's end", name, time.Since(endAt).Round(time.Millisecond))
			}
			waitFor(t, 10*time.Second, "sessions recorded as ended", func() bool {
				ss, err := j.Client.Sessions(testCtx(t), api.SessionFilter{Open: true})
				return err == nil && len(ss) == 0
			})
			if end == "revoke" {
				// Only jitd could have ended these: the grant had an hour left.
				sb.WaitJournal(10*time.Second, func(es []journalread.Entry) bool { return len(es) >= 2 },
					"JIT_EVENT=session.terminated", "JIT_GRANT_ID="+id)
			}
		})
	}
}

// BenchmarkEndToTermination measures, over 100 grants, how long after a
// grant's end the process running under it is gone: p50, p99 and max.
// One op is 100 grants ending within a few seconds of each other.
//
//	go test -run '^$' -bench EndToTermination -benchtime 1x ./e2e/
func BenchmarkEndToTermination(b *testing.B) {
	sb := sandbox.New(b)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: expiryPolicy})
	var all []time.Duration
	for i := 0; i < b.N; i++ {
		type run struct {
			cmd    *exec.Cmd
			done   chan time.Time
			expiry time.Time
		}
		runs := make([]run, 100)
		for k := range runs {
			cmd := sb.UserCommand(context.Background(), "jitalice", nil, "/bin/sleep", "600")
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			done := make(chan time.Time, 1)
			go func() { cmd.Wait(); done <- time.Now() }()
			g, err := j.Client.Grant(context.Background(), &api.GrantSpec{User: "jitalice", Kind: grant.KindSudo,
				Commands: []string{"ALL"}, Duration: api.Duration(2*time.Second + time.Duration(k)*20*time.Millisecond), Reason: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := j.Client.OpenSession(context.Background(), &api.SessionSpec{Kind: grant.KindSudo, User: "jitalice",
				GrantID: g.ID, Command: "/bin/sleep 600", PID: cmd.Process.Pid}); err != nil {
				b.Fatal(err)
			}
			runs[k] = run{cmd: cmd, done: done, expiry: g.ExpiresAt}
		}
		for _, r := range runs {
			select {
			case at := <-r.done:
				all = append(all, at.Sub(r.expiry))
			case <-time.After(time.Until(r.expiry) + 30*time.Second):
				b.Fatal("a process outlived its grant by 30 s")
			}
		}
	}
	sortDurations(all)
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(all[len(all)-1].Microseconds())/1000, "max-ms")
}

func sortDurations(ds []time.Duration) { slices.Sort(ds) }

// Extending a live grant moves its end: the session outlives the old end.
func TestExtendCancelsTermination(t *testing.T) {
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: expiryPolicy})
	id := grantFor(t, sb, "jitalice", "3s")
	p := startUserProcess(t, sb, "jitalice", "exec sleep 600")
	register(t, j, "jitalice", id, p)
	mustOK(t, sb.Jitctl("jitlead", "extend", id, "--for", "1h", "--reason", "still fixing"), "extend")
	if p.exitedWithin(5 * time.Second) {
		t.Fatalf("session ended at the grant's old end despite the extension:\n%s", p.out.String())
	}
	g, err := j.Client.GetGrant(testCtx(t), id)
	if err != nil || g.State != grant.StateActive || time.Until(g.ExpiresAt) < 50*time.Minute {
		t.Fatalf("extended grant: %+v %v", g, err)
	}
}

// A grant that says so ends its sessions when its window closes, not only
// when it expires.
func TestWindowCloseEndsSession(t *testing.T) {
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: expiryPolicy})
	now := time.Now().UTC()
	closeAt := now.Truncate(time.Minute).Add(time.Minute)
	if closeAt.Sub(now) < 5*time.Second {
		closeAt = closeAt.Add(time.Minute)
	}
	openAt := closeAt.Add(-2 * time.Hour)
	window := fmt.Sprintf("Daily %s-%s", openAt.Format("15:04"), closeAt.Format("15:04"))
	if closeAt.Hour() == 0 && closeAt.Minute() == 0 {
		window = fmt.Sprintf("Daily %s-24:00", openAt.Format("15:04"))
	}
	id := mustOK(t, sb.Jitctl("jitlead", "grant", "jitalice", "--cmd", "ALL", "--for", "2h", "--window", window,
		"--tz", "UTC", "--end-at-window-close", "--reason", "window test"), "windowed grant")
	p := startUserProcess(t, sb, "jitalice", "exec sleep 600")
	register(t, j, "jitalice", id, p)
	if !p.exitedWithin(time.Until(closeAt) + 10*time.Second) {
		t.Fatalf("session still running 10 s after its window (%s UTC) closed", window)
	}
	t.Logf("session ended %v after the window closed", time.Since(closeAt).Round(time.Millisecond))
	if early := closeAt.Sub(time.Now()); early > 0 {
		t.Fatalf("session ended %v before its window closed", early)
	}
	if !strings.Contains(p.out.String(), "window") {
		t.Errorf("the final notice does not say the window closed:\n%s", p.out.String())
	}
}
