package e2e

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/sandbox"
)

func mustOK(t *testing.T, r sandbox.Result, what string) string {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("%s: %s", what, r)
	}
	return strings.TrimSpace(r.Stdout)
}

func mustFail(t *testing.T, r sandbox.Result, what string, words ...string) {
	t.Helper()
	if r.Code == 0 {
		t.Fatalf("%s succeeded but must not: %s", what, r)
	}
	for _, w := range words {
		if !strings.Contains(r.Combined(), w) {
			t.Fatalf("%s: output lacks %q: %s", what, w, r)
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Who may do what is decided by the caller's uid as the kernel reports it.
func TestJitdAuthorization(t *testing.T) {
	sb := sandbox.New(t)
	sb.StartJitd(sandbox.JitdOptions{Policy: sandbox.TestPolicy})

	// A normal user cannot grant, not even to themselves.
	mustFail(t, sb.Jitctl("jitalice", "grant", "jitalice", "--cmd", "/usr/bin/id", "--reason", "x"),
		"jitalice granting", "not an approver")
	// They can request, and see their own request.
	reqID := mustOK(t, sb.Jitctl("jitalice", "request", "--cmd", "/usr/bin/id", "--for", "30m", "--reason", "INC-7"), "request")
	if !strings.HasPrefix(reqID, "r-") {
		t.Fatalf("request printed %q, want a request id", reqID)
	}
	mustFail(t, sb.Jitctl("jitalice", "approve", reqID), "jitalice approving", "not an approver")
	mustFail(t, sb.Jitctl("jitbob", "requests", "--user", "jitalice"), "jitbob listing alice's requests", "not an approver")

	// The on-call lead approves; the grant belongs to alice.
	grantID := mustOK(t, sb.Jitctl("jitlead", "approve", reqID, "--for", "10m"), "approve")
	var gs []grant.Grant
	if err := json.Unmarshal([]byte(mustOK(t, sb.Jitctl("jitalice", "list", "--json"), "list")), &gs); err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].ID != grantID || gs[0].User != "jitalice" || gs[0].GrantedBy != "jitlead" || gs[0].RequestID != reqID {
		t.Fatalf("alice's grants: %+v", gs)
	}
	if d := time.Until(gs[0].ExpiresAt); d > 11*time.Minute {
		t.Fatalf("approval --for 10m did not shorten the grant: expires in %v", d)
	}
	mustFail(t, sb.Jitctl("jitlead", "approve", reqID), "approving twice", "not pending")

	// Nobody approves their own request, approvers included.
	own := mustOK(t, sb.Jitctl("jitlead", "request", "--cmd", "/usr/bin/id", "--reason", "mine"), "lead request")
	mustFail(t, sb.Jitctl("jitlead", "approve", own), "self-approval", "own request")

	// Others' grants and decisions are not for a normal user to see.
	if out := mustOK(t, sb.Jitctl("jitbob", "list"), "bob list"); out != "no grants" {
		t.Fatalf("jitbob sees grants that are not his: %q", out)
	}
	mustFail(t, sb.Jitctl("jitbob", "list", "--user", "jitalice"), "bob listing alice", "not an approver")
	mustFail(t, sb.Jitctl("jitbob", "check", "jitalice", "--", "/usr/bin/id"), "bob checking alice", "may not ask")
	r := sb.Jitctl("jitalice", "check", "jitalice", "--", "/usr/bin/id")
	if r.Code != 0 || !strings.Contains(r.Stdout, "allow") {
		t.Fatalf("alice's own dry run: %s", r)
	}
	r = sb.Jitctl("jitalice", "check", "jitalice", "--", "/bin/cat", "/etc/shadow")
	if r.Code != 1 || !strings.Contains(r.Stdout, "deny") || !strings.Contains(r.Stdout, "jitctl request --cmd") {
		t.Fatalf("alice's dry run of an ungranted command: %s", r)
	}
	mustFail(t, sb.Jitctl("jitalice", "audit"), "alice reading the audit", "not an approver")
	mustFail(t, sb.Jitctl("jitalice", "revoke", grantID+"x"), "alice revoking a grant that is not hers", "not an approver")

	// Break-glass: jitsre may self-grant, briefly, and only to themselves.
	bg := mustOK(t, sb.Jitctl("jitsre", "grant", "jitsre", "--cmd", "ALL", "--for", "30m", "--reason", "outage"), "break-glass")
	mustFail(t, sb.Jitctl("jitsre", "grant", "jitsre", "--cmd", "ALL", "--for", "2h", "--reason", "outage"), "break-glass too long", "1h")
	mustFail(t, sb.Jitctl("jitsre", "grant", "jitalice", "--cmd", "ALL", "--reason", "x"), "break-glass for another user", "not an approver")
	var g grant.Grant
	if err := json.Unmarshal([]byte(mustOK(t, sb.Jitctl("jitlead", "list", "--json", "--user", "jitsre"), "list sre")), &gs); err != nil || len(gs) != 1 {
		t.Fatalf("jitsre's grants: %v %v", gs, err)
	}
	g = gs[0]
	if g.ID != bg || !g.BreakGlass {
		t.Fatalf("break-glass grant not marked: %+v", g)
	}

	// A user may give up their own grant.
	mustOK(t, sb.Jitctl("jitalice", "revoke", grantID, "--reason", "done early"), "self-revoke")
	mustFail(t, sb.Jitctl("jitalice", "revoke", grantID), "revoke twice", "already ended")

	out := mustOK(t, sb.Jitctl("jitlead", "audit", "--verify"), "verify")
	if !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %q", out)
	}
}

// Every change reaches the sandbox's journald with its MESSAGE_ID and JIT_*
// fields.
func TestJitdJournal(t *testing.T) {
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: sandbox.TestPolicy})
	id := mustOK(t, sb.Jitctl("jitlead", "grant", "jitalice", "--cmd", "/usr/bin/systemctl restart nginx", "--for", "30m", "--reason", "INC-4711"), "grant")
	mustOK(t, sb.Jitctl("jitlead", "revoke", id, "--reason", "fixed"), "revoke")
	// A decision as sudo would ask it: root peer, not a dry run.
	d, err := j.Client.Check(testCtx(t), &api.CheckRequest{User: "jitalice", Kind: grant.KindSudo, Command: "/usr/bin/systemctl", Args: []string{"restart", "nginx"}, TTY: "/dev/pts/9"})
	if err != nil || d.Allow {
		t.Fatalf("check after revoke: %+v %v", d, err)
	}

	want := map[string]map[string]string{
		"grant.created": {"JIT_USER": "jitalice", "JIT_ACTOR": "jitlead", "JIT_GRANT_ID": id, "JIT_REASON": "INC-4711", "MESSAGE_ID": "a6ca6f1b82b141508bbaceb1ef38127a"},
		"grant.revoked": {"JIT_USER": "jitalice", "JIT_ACTOR": "jitlead", "JIT_GRANT_ID": id, "JIT_REASON": "fixed", "MESSAGE_ID": "b2abc4c6a3344ee199eddbe9f02fea05"},
		"decision.deny": {"JIT_USER": "jitalice", "JIT_ACTOR": "root", "JIT_COMMAND": "/usr/bin/systemctl restart nginx", "JIT_RUNAS": "root", "JIT_TTY": "/dev/pts/9", "MESSAGE_ID": "97607eb77c2749068f767fbed5c941d3"},
	}
	for event, fields := range want {
		entries := sb.WaitJournal(10*time.Second, nil, "SYSLOG_IDENTIFIER=jitd", "JIT_EVENT="+event)
		e := entries[len(entries)-1]
		for k, v := range fields {
			if got := e.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", event, k, got, v)
			}
		}
		if event != "decision.deny" && e.Get("JIT_AUDIT_SEQ") == "" {
			t.Errorf("%s: no JIT_AUDIT_SEQ linking it to the chain", event)
		}
		if e.Get("PRIORITY") == "" || e.Get("MESSAGE") == "" {
			t.Errorf("%s: no PRIORITY or MESSAGE: %v", event, e)
		}
	}
	// jitd's own logs keep their level for journald (hclog prefixes).
	if out := j.Proc.Output(); !strings.Contains(out, "[INFO]") {
		t.Errorf("jitd log lines carry no level prefix:\n%s", out)
	}
}

// kill -9 in the middle of a stream of grants loses no grant whose id was
// acknowledged.
func TestJitdKill9LosesNoAcknowledgedGrant(t *testing.T) {
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: sandbox.TestPolicy})
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := api.NewClient(sandbox.SocketPath)
			defer c.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				g, err := c.Grant(ctx, &api.GrantSpec{User: "jitalice", Kind: grant.KindSudo, Commands: []string{"/usr/bin/id"}, Duration: api.Duration(time.Hour), Reason: "stream"})
				cancel()
				if err != nil {
					continue // jitd is being killed
				}
				mu.Lock()
				acked = append(acked, g.ID)
				mu.Unlock()
			}
		}()
	}
	// Let the stream run, then kill jitd mid-flight.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 50 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := j.Proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	j.Proc.Wait(5 * time.Second)
	close(stop)
	wg.Wait()
	if len(acked) < 10 {
		t.Fatalf("only %d grants acknowledged before the kill", len(acked))
	}

	j2 := sb.StartJitd(sandbox.JitdOptions{StateDir: j.StateDir})
	have := map[string]bool{}
	gs, err := j2.Client.Grants(testCtx(t), api.GrantFilter{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		have[g.ID] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Errorf("acknowledged grant %s lost by kill -9", id)
		}
	}
	v, err := j2.Client.VerifyAudit(testCtx(t))
	if err != nil || !v.OK {
		t.Fatalf("audit chain after kill -9: %+v %v", v, err)
	}
	t.Logf("%d acknowledged grants, all present after kill -9 (%d stored)", len(acked), len(gs))
}

// Grants that expired while jitd was down are expired and audited before
// the restarted jitd answers anything; a second jitd on the same state
// refuses to start.
func TestJitdRestartAndLock(t *testing.T) {
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: sandbox.TestPolicy})
	id := mustOK(t, sb.Jitctl("jitlead", "grant", "jitalice", "--cmd", "/usr/bin/id", "--for", "2s", "--reason", "short"), "grant")

	// A second jitd on the same state dir fails fast and says why.
	second := exec.Command(sb.Artifact("jitd"), "-socket", "/run/jitd/second.sock", "-state", j.StateDir, "-config", sandbox.PolicyPath)
	start := time.Now()
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another jitd") {
		t.Fatalf("second jitd on the same state: err %v, output:\n%s", err, out)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("second jitd took %v to give up", time.Since(start))
	}

	if err := j.Proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	j.Proc.Wait(5 * time.Second)
	time.Sleep(3 * time.Second) // the grant expires while jitd is down

	j2 := sb.StartJitd(sandbox.JitdOptions{StateDir: j.StateDir})
	g, err := j2.Client.GetGrant(testCtx(t), id)
	if err != nil || g.State != grant.StateExpired {
		t.Fatalf("grant that expired while jitd was down: %+v %v", g, err)
	}
	recs, err := j2.Client.Audit(testCtx(t), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		found = found || (r.Event == "grant.expired" && r.GrantID == id)
	}
	if !found {
		t.Fatalf("no grant.expired record for %s after restart", id)
	}
	sb.WaitJournal(10*time.Second, nil, "JIT_EVENT=grant.expired", "JIT_GRANT_ID="+id)
}

// SIGHUP reloads the policy; a broken file keeps the old one and says why.
func TestJitdReload(t *testing.T) {
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: sandbox.TestPolicy})
	mustFail(t, sb.Jitctl("jitbob", "grant", "jitalice", "--cmd", "/usr/bin/id", "--reason", "x"), "bob before reload", "not an approver")

	sb.WriteFile(sandbox.PolicyPath, "approvers = [\"jitbob\"\nmax_duration = \"soon\"\n", 0o644)
	if err := j.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "reload failure logged", func() bool {
		return strings.Contains(j.Proc.Output(), "policy reload failed")
	})
	if !strings.Contains(j.Proc.Output(), "jitd.hcl:") {
		t.Errorf("reload failure does not name file:line:\n%s", j.Proc.Output())
	}
	mustOK(t, sb.Jitctl("jitlead", "grant", "jitalice", "--cmd", "/usr/bin/id", "--reason", "old policy still in force"), "lead after bad reload")
	sb.WaitJournal(10*time.Second, nil, "JIT_EVENT=policy.rejected")

	sb.WriteFile(sandbox.PolicyPath, strings.Replace(sandbox.TestPolicy, `["%jitoncall"]`, `["%jitoncall", "jitbob"]`, 1), 0o644)
	if err := j.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "bob becomes an approver", func() bool {
		return sb.Jitctl("jitbob", "grant", "jitalice", "--cmd", "/usr/bin/id", "--reason", "new policy").Code == 0
	})
}

// jitd runs from a bare command line with no policy file at all.
func TestJitdWithoutPolicyFile(t *testing.T) {
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{})
	s, err := j.Client.Status(testCtx(t))
	if err != nil || !s.You.Approver || s.You.User != "root" {
		t.Fatalf("status as root: %+v %v", s, err)
	}
	mustFail(t, sb.Jitctl("jitlead", "grant", "jitalice", "--cmd", "/usr/bin/id", "--reason", "x"), "lead under defaults", "not an approver")
	out := mustOK(t, sb.Jitctl("jitalice", "status"), "alice status")
	if !strings.Contains(out, "you are jitalice") || !strings.Contains(out, "requester") {
		t.Fatalf("status for alice: %q", out)
	}
	entries := sb.WaitJournal(10*time.Second, nil, "JIT_EVENT=jitd.started")
	if entries[0].Get("MESSAGE_ID") == "" {
		t.Fatal("jitd.started has no MESSAGE_ID")
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Under systemd: jitd takes the socket it is handed, tells systemd when it is
// ready and stopping, and pings the watchdog. systemd-socket-activate and a
// NOTIFY_SOCKET of the test's own stand in for PID 1.
func TestJitdSocketActivationAndNotify(t *testing.T) {
	sb := sandbox.New(t)
	sandbox.RequireProgram(t, "/usr/bin/systemd-socket-activate")
	notifyPath := "/run/jitd-test-notify.sock"
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := notify.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	cmd := exec.Command("/usr/bin/systemd-socket-activate", "-l", sandbox.SocketPath,
		"-E", "NOTIFY_SOCKET="+notifyPath, "-E", "WATCHDOG_USEC=200000",
		sb.Artifact("jitd"), "-state", sb.Dir+"/state", "-config", sandbox.PolicyPath)
	proc := sb.Start("socket-activate", cmd)
	waitFor(t, 10*time.Second, "socket listening", func() bool {
		_, err := os.Stat(sandbox.SocketPath)
		return err == nil
	})
	// The first connection starts jitd on the inherited socket.
	c := api.NewClient(sandbox.SocketPath)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("status through the activated socket: %v\n%s", err, proc.Output())
	}
	if !strings.Contains(proc.Output(), "socket_activated=true") {
		t.Fatalf("jitd did not use the inherited socket:\n%s", proc.Output())
	}
	want := map[string]bool{"READY=1": false, "WATCHDOG=1": false}
	deadline := time.After(10 * time.Second)
	for !want["READY=1"] || !want["WATCHDOG=1"] {
		select {
		case m := <-msgs:
			for k := range want {
				if strings.Contains(m, k) {
					want[k] = true
				}
			}
		case <-deadline:
			t.Fatalf("notifications seen: %v", want)
		}
	}
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case m := <-msgs:
			if strings.Contains(m, "STOPPING=1") {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no STOPPING=1 after SIGTERM\n%s", proc.Output())
		}
	}
}

// jitd.service's sandboxing must leave jitd what it reads at start: under
// the /proc its ProcSubset= gives it (pid would hide /proc/sys and the boot
// ID in it), jitd starts, answers, and registers sessions with the
// kernel's boot ID.
func TestJitdStartsUnderItsUnitsProcSubset(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join(repoRoot(t), "contrib", "systemd", "jitd.service"))
	if err != nil {
		t.Fatal(err)
	}
	mount := "mount -t proc proc /proc"
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ProcSubset="); ok && v == "pid" {
			mount = "mount -t proc -o subset=pid proc /proc"
		}
	}
	sb := sandbox.New(t)
	sandbox.RequireProgram(t, "/usr/bin/unshare")
	j := sb.StartJitd(sandbox.JitdOptions{Policy: sandbox.TestPolicy,
		Wrap: []string{"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", mount + ` && exec "$@"`, "sh"}})
	sess, err := j.Client.OpenSession(testCtx(t), &api.SessionSpec{Kind: grant.KindSudo, User: "jitalice", Rule: "test", PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := j.Client.Sessions(testCtx(t), api.SessionFilter{User: "jitalice", Open: true})
	if err != nil || len(ss) != 1 || ss[0].ID != sess.ID {
		t.Fatalf("open sessions: %+v, %v", ss, err)
	}
	want, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	if ss[0].BootID != strings.TrimSpace(string(want)) {
		t.Errorf("session registered with boot %q, want the kernel's %q", ss[0].BootID, strings.TrimSpace(string(want)))
	}
}
