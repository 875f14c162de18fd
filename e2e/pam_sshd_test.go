package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/sandbox"
)

// withPAMJit puts pam_jit into the sandbox's /etc/pam.d/sshd (Debian's):
// account before common-account, session before common-session, so that
// pam_systemd, which common-session runs, sees systemd.runtime_max_sec.
func withPAMJit(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	module := pamModule(t, sb)
	b, err := os.ReadFile("/etc/pam.d/sshd")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, facility := range []string{"account", "session"} {
		include := "@include common-" + facility + "\n"
		if !strings.Contains(conf, include) {
			t.Fatalf("/etc/pam.d/sshd has no %q:\n%s", include, conf)
		}
		conf = strings.Replace(conf, include, fmt.Sprintf("%s required %s %s\n%s", facility, module, pamArgs, include), 1)
	}
	sb.WriteFile("/etc/pam.d/sshd", conf, 0o644)
}

// sshVerbose is the ssh client as a user runs it: LogLevel INFO (the
// default), under which ssh prints the server's banner messages.
func sshVerbose(ctx context.Context, sshd *sandbox.SSHD, user string, remote ...string) sandbox.Result {
	cmd := sshd.SSHCommand(ctx, user, remote...)
	for i, a := range cmd.Args {
		if a == "LogLevel=ERROR" {
			cmd.Args[i] = "LogLevel=INFO"
		}
	}
	return runCmd(cmd)
}

func sshCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A real sshd with pam_jit in account and session: refused without a grant
// (the message reaches the ssh client), in with one, the session tracked by
// jitd while open and closed after logout.
func TestPAMSSHD(t *testing.T) {
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: pamPolicy})
	withPAMJit(t, sb)
	sshd := sb.StartSSHD(sandbox.SSHDConfig{})

	r := sshVerbose(sshCtx(t, 60*time.Second), sshd, "jitalice", "true")
	t.Logf("ssh client saw: %s", r.Stderr)
	mustFail(t, r, "ssh jitalice without a login grant", "jit: login refused", "jitalice has no grant to log in (service sshd)", "jitctl request --login")
	if !strings.Contains(sshd.Proc.Output(), "Access denied for user jitalice by PAM account configuration") {
		t.Errorf("sshd did not log the account refusal:\n%s", sshd.Proc.Output())
	}
	sb.WaitJournal(10*time.Second, nil, "SYSLOG_IDENTIFIER=pam_jit", "JIT_EVENT=pam.account", "JIT_USER=jitalice", "JIT_SERVICE=sshd", "JIT_RHOST=127.0.0.1", "JIT_DECISION=deny")

	gid := mustOK(t, sb.Jitctl("jitlead", "grant", "jitalice", "--login", "--for", "10m", "--reason", "x"), "login grant")
	done := make(chan sandbox.Result, 1)
	release := "/run/jit-e2e-release"
	go func() {
		// The session stays open until the test has seen it.
		done <- sshd.SSH("jitalice", 60*time.Second,
			fmt.Sprintf("echo SID=$JIT_SESSION_ID; i=0; while [ ! -e %s ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done", release))
	}()
	ss := waitSessions(t, sb, "jitalice", 30*time.Second, func(ss []grant.Session) bool {
		return len(ss) == 1 && ss[0].State == grant.SessionOpen
	})
	s := ss[0]
	if s.GrantID != gid || s.Service != "sshd" || s.RHost != "127.0.0.1" || s.Kind != grant.KindLogin || s.PID <= 0 {
		t.Errorf("open session: %+v", s)
	}
	sb.WriteFile(release, "", 0o644)
	r = <-done
	if r.Code != 0 {
		t.Fatalf("ssh jitalice with a login grant: %s\nsshd log:\n%s", r, sshd.Proc.Output())
	}
	if got := strings.TrimSpace(r.Stdout); got != "SID="+s.ID {
		t.Errorf("JIT_SESSION_ID in the login's environment: %q, want SID=%s", got, s.ID)
	}
	waitSessions(t, sb, "jitalice", 30*time.Second, func(ss []grant.Session) bool {
		return len(ss) == 1 && ss[0].ID == s.ID && ss[0].State == grant.SessionClosed
	})
	sb.WaitJournal(10*time.Second, nil, "SYSLOG_IDENTIFIER=pam_jit", "JIT_EVENT=pam.session_close", "JIT_SESSION_ID="+s.ID)

	// jitd stopped: exempt_group still logs in, everyone else is refused.
	j.Proc.Stop()
	r = sshd.SSH("jitadmin", 60*time.Second, "id", "-un")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "jitadmin" {
		t.Fatalf("ssh jitadmin (exempt_group) with jitd stopped: %s\nsshd log:\n%s", r, sshd.Proc.Output())
	}
	r = sshVerbose(sshCtx(t, 60*time.Second), sshd, "jitalice", "true")
	mustFail(t, r, "ssh jitalice with jitd stopped", "jit: login refused", "cannot reach jitd")
}

// 30 concurrent ssh logins with pam_jit in account and session all
// complete; a hard limit per login proves that none hangs.
func TestPAMSSHDConcurrent(t *testing.T) {
	sb := sandbox.New(t)
	sb.StartJitd(sandbox.JitdOptions{Policy: pamPolicy})
	withPAMJit(t, sb)
	sshd := sb.StartSSHD(sandbox.SSHDConfig{MaxStartups: "100:30:200"})
	mustOK(t, sb.Jitctl("jitlead", "grant", "jitalice", "--login", "--for", "10m", "--reason", "x"), "login grant")
	sshd.AuthorizeKey("jitalice") // before the goroutines: it writes a file

	const n = 30
	const limit = 60 * time.Second
	var wg sync.WaitGroup
	results := make([]sandbox.Result, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = sshd.SSH("jitalice", limit, "echo", fmt.Sprintf("login-%d", i), "$JIT_SESSION_ID")
		}(i)
	}
	wg.Wait()
	t.Logf("%d concurrent logins in %v", n, time.Since(start).Round(time.Millisecond))
	re := regexp.MustCompile(`^login-(\d+) (\S+)$`)
	ids := map[string]bool{}
	var slowest time.Duration
	for i, r := range results {
		slowest = max(slowest, r.Elapsed)
		out := strings.TrimSpace(r.Stdout)
		m := re.FindStringSubmatch(out)
		if r.Code != 0 || m == nil || m[1] != fmt.Sprint(i) {
			t.Errorf("login %d: %s", i, r)
			continue
		}
		ids[m[2]] = true
	}
	t.Logf("slowest login: %v", slowest.Round(time.Millisecond))
	if t.Failed() {
		t.Logf("sshd log:\n%s", sshd.Proc.Output())
		return
	}
	if len(ids) != n {
		t.Errorf("want %d distinct session ids, got %d", n, len(ids))
	}
	waitSessions(t, sb, "jitalice", 30*time.Second, func(ss []grant.Session) bool {
		closed := 0
		for _, s := range ss {
			if s.State == grant.SessionClosed && ids[s.ID] {
				closed++
			}
		}
		return len(ss) == n && closed == n
	})
}

// pam_jit listed in Debian's common-account and common-session, as the
// pam-auth-update profile in contrib/ puts it: sshd logins are gated, and
// other services that include the common stacks (su here) are not, even with
// jitd stopped.
func TestPAMCommonStacks(t *testing.T) {
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: pamPolicy})
	module := pamModule(t, sb)
	for _, facility := range []string{"account", "session"} {
		path := "/etc/pam.d/common-" + facility
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteFile(path, string(b)+fmt.Sprintf(
			"%[1]s [success=1 default=ignore] pam_succeed_if.so quiet service notin sshd:login\n%[1]s required %[2]s %[3]s\n",
			facility, module, pamArgs), 0o644)
	}
	sshd := sb.StartSSHD(sandbox.SSHDConfig{})
	mustFail(t, sshVerbose(sshCtx(t, 60*time.Second), sshd, "jitalice", "true"), "ssh without a login grant", "jit: login refused")
	mustOK(t, sb.Jitctl("jitlead", "grant", "jitalice", "--login", "--for", "10m", "--reason", "common stacks"), "login grant")
	if r := sshd.SSH("jitalice", 60*time.Second, "echo in"); r.Code != 0 || !strings.Contains(r.Stdout, "in") {
		t.Fatalf("ssh with a login grant through common-account: %s", r)
	}
	su := func() sandbox.Result {
		return runCmd(exec.CommandContext(sshCtx(t, 30*time.Second), "/bin/su", "jitbob", "-s", "/bin/sh", "-c", "echo su-ok"))
	}
	if r := su(); r.Code != 0 || !strings.Contains(r.Stdout, "su-ok") {
		t.Fatalf("su through the common stacks: %s", r)
	}
	j.Proc.Stop()
	if r := su(); r.Code != 0 || !strings.Contains(r.Stdout, "su-ok") {
		t.Fatalf("su with jitd stopped must not be gated: %s", r)
	}
	if r := sshd.SSH("jitadmin", 60*time.Second, "echo in"); r.Code != 0 {
		t.Fatalf("exempt user over ssh with jitd stopped: %s", r)
	}
	mustFail(t, sshVerbose(sshCtx(t, 60*time.Second), sshd, "jitbob", "true"), "ssh for a gated user with jitd stopped", "jit: login refused")
}
