package server

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/auditlog"
	"github.com/jitpam/jit/jitd/enforce"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/jitd/policy"
	"github.com/jitpam/jit/jitd/store"
)

// After a restart, pids, start times and audit session ids come round again
// for other processes. A session registered in an earlier boot must be
// closed when its grant ends, and whatever now runs under its numbers left
// alone; a session of this boot is ended as always.
func TestSessionsOfAnEarlierBootAreNotSignalled(t *testing.T) {
	needRoot(t)
	st, err := store.Open(filepath.Join(t.TempDir(), "state"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g, err := st.CreateGrant(grant.Grant{User: "alice", Kind: grant.KindSudo, Commands: []string{"/bin/sleep 60"},
		ExpiresAt: time.Now().Add(time.Hour), Reason: "INC-4711"}, store.Audit{Actor: "lead", Reason: "INC-4711"})
	if err != nil {
		t.Fatal(err)
	}
	booted := time.Now().Add(-time.Minute)

	type proc struct {
		cmd    *exec.Cmd
		start  uint64
		exited chan struct{}
		sess   grant.Session
	}
	open := func(bootID string, startedAt time.Time) *proc {
		p := &proc{cmd: exec.Command("/bin/sleep", "60"), exited: make(chan struct{})}
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.cmd.Wait(); close(p.exited) }()
		t.Cleanup(func() { p.cmd.Process.Kill(); <-p.exited })
		if p.start, err = enforce.StartTime(p.cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		p.sess, err = st.OpenSession(grant.Session{Kind: grant.KindSudo, User: "alice", GrantID: g.ID, RunAs: "root",
			Command: "/bin/sleep 60", PID: p.cmd.Process.Pid, PIDStart: p.start, BootID: bootID, StartedAt: startedAt},
			store.Audit{Actor: "root"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	earlier := open("earlier-boot", time.Now())
	// Registered by a jitd that kept no boot IDs: dated by its start.
	legacy := open("", booted.Add(-time.Hour))
	current := open("this-boot", time.Now())

	// jitd starts two hours on: the grant expired while it was down.
	srv, err := New(Config{Store: st, Policy: policy.Default(), Log: hclog.NewNullLogger(),
		Audit: auditlog.New(hclog.NewNullLogger()), Version: "test",
		Now:    func() time.Time { return time.Now().Add(2 * time.Hour) },
		BootID: "this-boot", BootedAt: booted})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-current.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the session of this boot was not ended when its grant expired")
	}
	srv.bg.Wait()
	for _, p := range []*proc{earlier, legacy} {
		if !enforce.Alive(p.cmd.Process.Pid, p.start) {
			t.Errorf("session %s (boot %q) was registered before the restart, yet its pid was signalled", p.sess.ID, p.sess.BootID)
		}
		got, err := st.GetSession(p.sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != grant.SessionClosed || !strings.Contains(got.EndReason, "restarted") {
			t.Errorf("session %s of an earlier boot: state %s, reason %q; want closed because the machine restarted", got.ID, got.State, got.EndReason)
		}
	}
	got, err := st.GetSession(current.sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != grant.SessionTerminated {
		t.Errorf("session of this boot: state %s, want %s", got.State, grant.SessionTerminated)
	}
}

// A session registered through the API carries the boot it began in.
func TestSessionRecordsItsBoot(t *testing.T) {
	ts := startServer(t, nil)
	want, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := ts.client.OpenSession(ctx(t), &api.SessionSpec{Kind: grant.KindSudo, User: "alice", Rule: "test", PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := ts.st.GetSession(sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.BootID != strings.TrimSpace(string(want)) {
		t.Errorf("session registered with boot %q, want this boot's %q", stored.BootID, strings.TrimSpace(string(want)))
	}
}
