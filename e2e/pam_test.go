package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/sandbox"
)

// pamPolicy gates logins through the test service and sshd for everybody but
// root and the jitexempt group.
const pamPolicy = sandbox.TestPolicy + `
login {
  services = ["jit-test", "sshd"]
  users    = ["*"]
  exempt   = ["root", "%jitexempt"]
}
`

// pamArgs are the module arguments every test stack uses.
const pamArgs = "socket=" + sandbox.SocketPath + " exempt_group=jitexempt debug"

// pamModule returns the built loader, failing when pam_jit.so or its core
// has not been built.
func pamModule(t *testing.T, sb *sandbox.Sandbox) string {
	t.Helper()
	sb.Artifact("pam_jit_core.so")
	return sb.Artifact("pam_jit.so")
}

// writePAMService writes /etc/pam.d/NAME (the sandbox's) with pam_jit in
// account and session, each followed by pam_permit so that a PAM_IGNORE from
// pam_jit does not leave the stack without a verdict.
func writePAMService(t *testing.T, sb *sandbox.Sandbox, name, module string) {
	t.Helper()
	sb.WriteFile("/etc/pam.d/"+name, fmt.Sprintf(`auth     required pam_permit.so
account  required %[1]s %[2]s
account  required pam_permit.so
session  required %[1]s %[2]s
session  required pam_permit.so
`, module, pamArgs), 0o644)
}

// ignoredMarker is what pam_echo says in probe stacks when pam_jit returned
// PAM_IGNORE.
const ignoredMarker = "pam_jit:PAM_IGNORE"

// writeProbeService writes a stack for pamprobe in which pam_jit's own
// answer shows: success ends the stack, a failure ends it with pam_jit's
// code, and PAM_IGNORE falls through to pam_echo (ignoredMarker) and
// pam_permit. args are the module arguments.
func writeProbeService(t *testing.T, sb *sandbox.Sandbox, name, module, args string) {
	t.Helper()
	var b strings.Builder
	for _, facility := range []string{"auth", "account", "session"} {
		fmt.Fprintf(&b, "%-8s [success=done ignore=ignore default=die] %s %s\n", facility, module, args)
		fmt.Fprintf(&b, "%-8s optional pam_echo.so %s\n", facility, ignoredMarker)
		fmt.Fprintf(&b, "%-8s required pam_permit.so\n", facility)
	}
	sb.WriteFile("/etc/pam.d/"+name, b.String(), 0o644)
}

// pamtester runs pamtester as root (it speaks for the user, as sshd does)
// with a hard limit.
func pamtester(t *testing.T, service, user string, ops ...string) sandbox.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/pamtester", append([]string{"-v", service, user}, ops...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	return runCmd(cmd)
}

func runCmd(cmd *exec.Cmd) sandbox.Result {
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	err := cmd.Run()
	r := sandbox.Result{Stdout: stdout.String(), Stderr: stderr.String(), Err: err, Elapsed: time.Since(start)}
	r.Code = cmd.ProcessState.ExitCode()
	return r
}

// pamprobe compiles pammod/testdata/pamprobe.c once per test.
func pamprobe(t *testing.T, sb *sandbox.Sandbox) string {
	t.Helper()
	sandbox.RequireProgram(t, "/usr/bin/gcc")
	src, err := filepath.Abs("../pammod/testdata/pamprobe.c")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(sb.Dir, "pamprobe")
	if out, err := exec.Command("gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", bin, src, "-lpam", "-ldl").CombinedOutput(); err != nil {
		t.Fatalf("compile pamprobe: %v\n%s", err, out)
	}
	return bin
}

// probe runs pamprobe with a hard limit: a hang is a failure, not a stuck
// test.
func probe(t *testing.T, bin string, limit time.Duration, args ...string) sandbox.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	r := runCmd(cmd)
	if ctx.Err() != nil {
		t.Fatalf("pamprobe %s hung (killed after %v):\n%s", strings.Join(args, " "), limit, r)
	}
	return r
}

// probeSteps returns each process's steps in order ("acct=PAM_SUCCESS"),
// the parent's under "parent" and a forked child's under "child", and the
// messages the module sent, under "msg". A step after which pam_echo said
// ignoredMarker is pam_jit's PAM_IGNORE.
func probeSteps(r sandbox.Result) map[string][]string {
	out := map[string][]string{}
	re := regexp.MustCompile(`^pid=(\d+) (\w+)=(.*)$`)
	var parentPID string
	ignored := map[string]bool{}
	for _, line := range strings.Split(r.Stdout, "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if parentPID == "" {
			parentPID = m[1]
		}
		who := "parent"
		if m[1] != parentPID {
			who = "child"
		}
		switch {
		case m[2] == "msg" && m[3] == ignoredMarker:
			ignored[who] = true
		case m[2] == "msg":
			out["msg"] = append(out["msg"], m[3])
		case m[2] == "env" || m[2] == "forked":
		case ignored[who] && m[3] == "PAM_SUCCESS":
			out[who] = append(out[who], m[2]+"=PAM_IGNORE")
			ignored[who] = false
		default:
			out[who] = append(out[who], m[2]+"="+m[3])
			ignored[who] = false
		}
	}
	return out
}

func wantSteps(t *testing.T, r sandbox.Result, who string, want ...string) {
	t.Helper()
	if got := probeSteps(r)[who]; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s steps:\n got %v\nwant %v\n%s", who, got, want, r)
	}
}

// The account stack through pamtester: refused without a grant (with the
// message and the line to ask for one), allowed with one; exempt users and
// root pass and ordinary users are refused while jitd is down.
func TestPAMAccount(t *testing.T) {
	sb := sandbox.New(t)
	sandbox.RequireProgram(t, "/usr/bin/pamtester")
	j := sb.StartJitd(sandbox.JitdOptions{Policy: pamPolicy})
	writePAMService(t, sb, "jit-test", pamModule(t, sb))

	r := pamtester(t, "jit-test", "jitalice", "acct_mgmt")
	mustFail(t, r, "jitalice without a login grant", "jit: login refused", "jitalice has no grant to log in", "jitctl request --login")
	if n := strings.Count(r.Combined(), "jit: login refused"); n != 1 {
		t.Errorf("want exactly one message line, got %d:\n%s", n, r)
	}
	sb.WaitJournal(10*time.Second, nil, "SYSLOG_IDENTIFIER=pam_jit", "JIT_EVENT=pam.account", "JIT_USER=jitalice", "JIT_DECISION=deny")

	// Services jitd does not gate pass, through jitd's "not_gated".
	writePAMService(t, sb, "jit-ungated", pamModule(t, sb))
	mustOK(t, pamtester(t, "jit-ungated", "jitalice", "acct_mgmt"), "ungated service")

	id := mustOK(t, sb.Jitctl("jitlead", "grant", "jitalice", "--login", "--for", "10m", "--reason", "x"), "login grant")
	mustOK(t, pamtester(t, "jit-test", "jitalice", "acct_mgmt"), "jitalice with a login grant")
	entries := sb.WaitJournal(10*time.Second, nil, "SYSLOG_IDENTIFIER=pam_jit", "JIT_EVENT=pam.account", "JIT_USER=jitalice", "JIT_DECISION=allow", "JIT_SERVICE=jit-test")
	if e := entries[len(entries)-1]; e.Get("JIT_GRANT_ID") != id || e.Get("MESSAGE_ID") != "d2d6b2bcd50846749eabe4d0f8a56c69" {
		t.Errorf("allow event: %v", e)
	}
	// Another user still is not.
	mustFail(t, pamtester(t, "jit-test", "jitbob", "acct_mgmt"), "jitbob without a grant", "jitbob has no grant")
	// Exempt by policy: passes with jitd up.
	mustOK(t, pamtester(t, "jit-test", "jitadmin", "acct_mgmt"), "jitadmin (exempt) with jitd up")

	// jitd down: fail closed, except root and exempt_group.
	j.Proc.Stop()
	mustOK(t, pamtester(t, "jit-test", "jitadmin", "acct_mgmt"), "jitadmin (exempt_group) with jitd stopped")
	mustOK(t, pamtester(t, "jit-test", "root", "acct_mgmt"), "root with jitd stopped")
	r = pamtester(t, "jit-test", "jitalice", "acct_mgmt")
	mustFail(t, r, "jitalice with jitd stopped", "jit: login refused", "cannot reach jitd")
	if r.Elapsed > 5*time.Second {
		t.Errorf("refusal with jitd stopped took %v", r.Elapsed)
	}
	sb.WaitJournal(10*time.Second, nil, "SYSLOG_IDENTIFIER=pam_jit", "JIT_EVENT=pam.account", "JIT_USER=jitadmin", "JIT_CODE=offline_exempt")
}

// A jitd that accepts but never answers costs at most timeout=, then fails
// closed.
func TestPAMAccountTimeout(t *testing.T) {
	sb := sandbox.New(t)
	sandbox.RequireProgram(t, "/usr/bin/pamtester")
	module := pamModule(t, sb)
	sock := filepath.Join(sb.Dir, "silent.sock")
	l := listenSilent(t, sock, false)
	defer l.Close()
	sb.WriteFile("/etc/pam.d/jit-slow", fmt.Sprintf("account required %s socket=%s timeout=500ms exempt_group=jitexempt\naccount required pam_permit.so\n", module, sock), 0o644)
	r := pamtester(t, "jit-slow", "jitalice", "acct_mgmt")
	mustFail(t, r, "account against a silent jitd", "jit: login refused", "no answer in time")
	if r.Elapsed > 3*time.Second {
		t.Errorf("timeout=500ms but the refusal took %v", r.Elapsed)
	}
	mustOK(t, pamtester(t, "jit-slow", "jitadmin", "acct_mgmt"), "exempt_group against a silent jitd")
}

// Sessions through pamtester: registered with jitd, JIT_SESSION_ID in the
// PAM environment, pam_systemd's runtime limit set, closed at the end.
func TestPAMSessionPamtester(t *testing.T) {
	sb := sandbox.New(t)
	sandbox.RequireProgram(t, "/usr/bin/pamtester")
	sb.StartJitd(sandbox.JitdOptions{Policy: pamPolicy})
	module := pamModule(t, sb)
	writePAMService(t, sb, "jit-test", module)
	bin := pamprobe(t, sb)
	gid := mustOK(t, sb.Jitctl("jitlead", "grant", "jitalice", "--login", "--for", "10m", "--reason", "x"), "login grant")

	r := probe(t, bin, 30*time.Second, "jit-test", "jitalice", "acct", "open", "env", "close")
	wantSteps(t, r, "parent", "acct=PAM_SUCCESS", "open=PAM_SUCCESS", "close=PAM_SUCCESS")
	m := regexp.MustCompile(`env=JIT_SESSION_ID=(\S+)`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no JIT_SESSION_ID in the PAM environment:\n%s", r)
	}
	sid := m[1]
	var ss []grant.Session
	if err := json.Unmarshal([]byte(mustOK(t, sb.Jitctl("jitlead", "sessions", "--json", "--user", "jitalice"), "sessions")), &ss); err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].ID != sid || ss[0].GrantID != gid || ss[0].Service != "jit-test" || ss[0].State != grant.SessionClosed || ss[0].TTY != "pamprobe" {
		t.Fatalf("sessions: %+v (want %s under %s, closed)", ss, sid, gid)
	}
	open := sb.WaitJournal(10*time.Second, nil, "SYSLOG_IDENTIFIER=pam_jit", "JIT_EVENT=pam.session_open", "JIT_SESSION_ID="+sid)
	if e := open[0]; e.Get("JIT_GRANT_ID") != gid || e.Get("JIT_RUNTIME_MAX_SEC") == "" || e.Get("MESSAGE_ID") != "dcb5ef42ce2d45abb06aefd9d9caf013" {
		t.Errorf("session open event: %v", e)
	} else if secs, err := strconv.Atoi(e.Get("JIT_RUNTIME_MAX_SEC")); err != nil || secs < 590 || secs > 600 {
		t.Errorf("systemd.runtime_max_sec = %q for a 10m grant", e.Get("JIT_RUNTIME_MAX_SEC"))
	}
	sb.WaitJournal(10*time.Second, nil, "SYSLOG_IDENTIFIER=pam_jit", "JIT_EVENT=pam.session_close", "JIT_SESSION_ID="+sid, "MESSAGE_ID=78802218516d4d69adcf44892e181fa0")

	// An exempt user's session is registered too, without a grant and
	// without a runtime limit.
	r = probe(t, bin, 30*time.Second, "jit-test", "jitadmin", "acct", "open", "env")
	wantSteps(t, r, "parent", "acct=PAM_SUCCESS", "open=PAM_SUCCESS")
	if !strings.Contains(r.Stdout, "env=JIT_SESSION_ID=") {
		t.Errorf("exempt user's session not registered:\n%s", r)
	}
	// pamtester end to end too.
	mustOK(t, pamtester(t, "jit-test", "jitalice", "acct_mgmt", "open_session", "close_session"), "pamtester account and session")
}

// pamtester's account with pam_jit against the same stack with pam_permit.
func BenchmarkPAMAccount(b *testing.B) {
	sb := sandbox.New(b)
	sandbox.RequireProgram(b, "/usr/bin/pamtester")
	sb.StartJitd(sandbox.JitdOptions{Policy: pamPolicy})
	module := sb.Artifact("pam_jit.so")
	sb.Artifact("pam_jit_core.so")
	sb.WriteFile("/etc/pam.d/jit-bench", fmt.Sprintf("account required %s %s\naccount required pam_permit.so\n", module, "socket="+sandbox.SocketPath+" exempt_group=jitexempt"), 0o644)
	sb.WriteFile("/etc/pam.d/jit-bench-permit", "account required pam_permit.so\naccount required pam_permit.so\n", 0o644)
	if r := sb.Jitctl("jitlead", "grant", "jitalice", "--login", "--for", "1h", "--reason", "bench"); r.Code != 0 {
		b.Fatal(r)
	}
	run := func(service string) time.Duration {
		cmd := exec.Command("/usr/bin/pamtester", service, "jitalice", "acct_mgmt")
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("pamtester %s: %v\n%s", service, err, out)
		}
		return time.Since(start)
	}
	run("jit-bench") // warm the page cache
	run("jit-bench-permit")
	// The sides alternate pair by pair; the extra cost is the median of the
	// per-pair differences, so that a noisy moment slows both sides alike.
	var jit, permit, extra []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tj, tp := run("jit-bench"), run("jit-bench-permit")
		jit, permit, extra = append(jit, tj), append(permit, tp), append(extra, tj-tp)
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(quantile(jit, 0.5)), "ms-jit/op")
	b.ReportMetric(ms(quantile(permit, 0.5)), "ms-permit/op")
	b.ReportMetric(ms(quantile(extra, 0.5)), "ms-extra/op")
	b.ReportMetric(ms(quantile(extra, 0.1)), "ms-extra-p10")
	b.ReportMetric(ms(quantile(extra, 0.9)), "ms-extra-p90")
	// A figure over its budget is reported (make bench marks it), not
	// turned into a failure that hides the number.
	if e := quantile(extra, 0.5); e > 5*time.Millisecond {
		b.Logf("pam_jit adds %v to pamtester acct_mgmt (median of pairs); budget 5ms", e)
	}
}

// quantile returns the q-quantile (0 ≤ q < 1) of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)))]
}

// waitSessions polls jitd's session list as jitlead until ok holds.
func waitSessions(t *testing.T, sb *sandbox.Sandbox, user string, limit time.Duration, ok func([]grant.Session) bool) []grant.Session {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var ss []grant.Session
		out := mustOK(t, sb.Jitctl("jitlead", "sessions", "--json", "--user", user), "sessions")
		if err := json.Unmarshal([]byte(out), &ss); err != nil {
			t.Fatal(err)
		}
		if ok(ss) {
			return ss
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions of %s after %v: %+v", user, limit, ss)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// listenSilent listens on a Unix socket at path and accepts connections
// without ever answering. With hangUp it reads a few bytes of each request
// and closes the connection, so that the client's further writes meet a
// closed peer (EPIPE, and SIGPIPE unless the writer avoids it).
func listenSilent(t *testing.T, path string, hangUp bool) net.Listener {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if hangUp {
				buf := make([]byte, 16)
				_, _ = io.ReadFull(c, buf)
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return l
}
