package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitpam/jit/sandbox"
)

// copyFile copies src to dst with mode, owned by root.
func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, mode); err != nil {
		t.Fatal(err)
	}
}

// The C loader on its own, its pam_sm_* functions called directly: the Go
// core runs in the process that loaded it; a forked child never enters Go
// (setcred succeeds, session calls are ignored, account keeps the parent's
// verdict for the same user and refuses anyone the parent never checked,
// except root and exempt_group); auth and setcred never load Go at all.
func TestPAMLoaderPidGuard(t *testing.T) {
	sb := sandbox.New(t)
	sb.StartJitd(sandbox.JitdOptions{Policy: pamPolicy})
	module := pamModule(t, sb)
	bin := pamprobe(t, sb)
	mustOK(t, sb.Jitctl("jitlead", "grant", "jitalice", "--login", "--for", "10m", "--reason", "x"), "login grant")
	writeProbeService(t, sb, "jit-test", module, "socket="+sandbox.SocketPath+" exempt_group=jitexempt")

	// auth and setcred are answered by the loader alone.
	r := probe(t, bin, 20*time.Second, "jit-test", "jitalice", "auth", "setcred", "core", "acct", "core")
	wantSteps(t, r, "parent", "auth=PAM_IGNORE", "setcred=PAM_SUCCESS", "core=absent", "acct=PAM_SUCCESS", "core=loaded")

	r = probe(t, bin, 20*time.Second, "jit-test", "jitalice",
		"acct", "open", "fork", "core", "setcred", "open", "close", "acct",
		"user=jitbob", "acct", "user=root", "acct", "user=jitadmin", "acct")
	wantSteps(t, r, "parent", "acct=PAM_SUCCESS", "open=PAM_SUCCESS", "child=exit 0")
	// (close shows as the stack's PAM_SUCCESS: pam_echo says nothing on
	// close, so pam_jit's PAM_IGNORE there is not visible.)
	wantSteps(t, r, "child", "core=loaded", "setcred=PAM_SUCCESS", "open=PAM_IGNORE", "close=PAM_SUCCESS", "acct=PAM_IGNORE",
		"acct=PAM_PERM_DENIED", "acct=PAM_IGNORE", "acct=PAM_IGNORE")
	if msgs := strings.Join(probeSteps(r)["msg"], "\n"); !strings.Contains(msgs, "jit: login refused: this program asked jit from a forked process") {
		t.Errorf("the refusal in the child says nothing to the user:\n%s", r)
	}
}

// A core that is missing or unsafe is never loaded: account fails closed
// (root and exempt_group pass), session open fails except for them.
func TestPAMLoaderBadCore(t *testing.T) {
	sb := sandbox.New(t)
	sb.StartJitd(sandbox.JitdOptions{Policy: pamPolicy})
	module := pamModule(t, sb)
	core := sb.Artifact("pam_jit_core.so")
	bin := pamprobe(t, sb)
	mustOK(t, sb.Jitctl("jitlead", "grant", "jitalice", "--login", "--for", "10m", "--reason", "x"), "login grant")

	for _, tc := range []struct {
		name  string
		setup func(dir string)
	}{
		{"missing", func(dir string) {}},
		{"world-writable", func(dir string) { copyFile(t, core, filepath.Join(dir, "pam_jit_core.so"), 0o666) }},
		{"group-writable", func(dir string) { copyFile(t, core, filepath.Join(dir, "pam_jit_core.so"), 0o664) }},
		{"not root's", func(dir string) {
			p := filepath.Join(dir, "pam_jit_core.so")
			copyFile(t, core, p, 0o644)
			if err := os.Chown(p, 2001, 2100); err != nil {
				t.Fatal(err)
			}
		}},
		{"in a world-writable directory", func(dir string) {
			copyFile(t, core, filepath.Join(dir, "pam_jit_core.so"), 0o644)
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		}},
		{"not a Go core", func(dir string) { copyFile(t, module, filepath.Join(dir, "pam_jit_core.so"), 0o644) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := os.MkdirTemp(sb.Dir, "lib")
			if err != nil {
				t.Fatal(err)
			}
			os.Chmod(dir, 0o755)
			loader := filepath.Join(dir, "pam_jit.so")
			copyFile(t, module, loader, 0o644)
			tc.setup(dir)
			writeProbeService(t, sb, "jit-bad", loader, "socket="+sandbox.SocketPath+" exempt_group=jitexempt")
			r := probe(t, bin, 20*time.Second, "jit-bad", "jitalice",
				"acct", "open", "setcred", "core", "user=jitadmin", "acct", "open", "user=root", "acct")
			mapped := "core=absent"
			if tc.name == "not a Go core" {
				// Loaded, found wanting, and never used; a library is not
				// unloaded again (dlclose of a Go runtime would crash).
				mapped = "core=loaded"
			}
			wantSteps(t, r, "parent", "acct=PAM_PERM_DENIED", "open=PAM_SESSION_ERR", "setcred=PAM_SUCCESS", mapped,
				"acct=PAM_SUCCESS", "open=PAM_IGNORE", "acct=PAM_SUCCESS")
			if msgs := strings.Join(probeSteps(r)["msg"], "\n"); !strings.Contains(msgs, "not installed correctly") {
				t.Errorf("no message for the user:\n%s", r)
			}
		})
	}
}

// The fork test through libpam: account, fork, and in the child setcred and
// session open. The child must not hang (a hard limit proves it) and
// returns what the design says.
func TestPAMFork(t *testing.T) {
	sb := sandbox.New(t)
	sb.StartJitd(sandbox.JitdOptions{Policy: pamPolicy})
	writeProbeService(t, sb, "jit-test", pamModule(t, sb), pamArgs)
	bin := pamprobe(t, sb)
	mustOK(t, sb.Jitctl("jitlead", "grant", "jitalice", "--login", "--for", "10m", "--reason", "x"), "login grant")

	for i := 0; i < 5; i++ {
		r := probe(t, bin, 15*time.Second, "jit-test", "jitalice", "acct", "fork", "setcred", "open", "close", "acct", "user=jitbob", "acct")
		wantSteps(t, r, "parent", "acct=PAM_SUCCESS", "child=exit 0")
		// pam_jit: setcred success, session ignored, account for the same
		// user ignored (the parent's verdict stands), for another refused.
		// (close: see TestPAMLoaderPidGuard)
		wantSteps(t, r, "child", "setcred=PAM_SUCCESS", "open=PAM_IGNORE", "close=PAM_SUCCESS", "acct=PAM_IGNORE", "acct=PAM_PERM_DENIED")
		if t.Failed() {
			return
		}
	}
	// The same with the session opened in the parent before the fork, as
	// sshd does; the parent then closes it after the child is gone.
	r := probe(t, bin, 15*time.Second, "jit-test", "jitalice", "acct", "open", "fork", "setcred", "open")
	wantSteps(t, r, "parent", "acct=PAM_SUCCESS", "open=PAM_SUCCESS", "child=exit 0")
	wantSteps(t, r, "child", "setcred=PAM_SUCCESS", "open=PAM_IGNORE")
}

// A write of the core to a jitd that hung up must not raise SIGPIPE in the
// host, even when the host has put SIGPIPE back to its default (death)
// after loading the module.
func TestPAMNoSIGPIPE(t *testing.T) {
	sb := sandbox.New(t)
	module := pamModule(t, sb)
	bin := pamprobe(t, sb)
	sock := filepath.Join(sb.Dir, "hangup.sock")
	l := listenSilent(t, sock, true)
	defer l.Close()
	// A 2 MiB PAM_RHOST makes the request larger than the socket buffer, so
	// the client is still writing when the peer closes.
	// The first call loads the core, whose runtime installs its SIGPIPE
	// handler; the host then sets SIGPIPE back to SIG_DFL.
	writeProbeService(t, sb, "jit-hangup", module, "socket="+sock+" timeout=5s")
	r := probe(t, bin, 20*time.Second, "jit-hangup", "jitalice", "acct", "sigpipe=default", "rhost=@big", "acct")
	if r.Code != 0 {
		t.Fatalf("pamprobe did not survive (without MSG_NOSIGNAL it dies of SIGPIPE here): %s", r)
	}
	// The second refusal may read PAM_SYSTEM_ERR: libpam's own audit record
	// of a 2 MiB PAM_RHOST fails after pam_jit refused.
	steps := probeSteps(r)["parent"]
	if len(steps) != 2 || steps[0] != "acct=PAM_PERM_DENIED" || (steps[1] != "acct=PAM_PERM_DENIED" && steps[1] != "acct=PAM_SYSTEM_ERR") {
		t.Errorf("steps %v\n%s", steps, r)
	}
	if msgs := strings.Join(probeSteps(r)["msg"], "\n"); strings.Count(msgs, "jit: login refused") != 2 {
		t.Errorf("want two refusal messages:\n%s", r)
	}
}
