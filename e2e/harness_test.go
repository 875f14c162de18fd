package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/jitpam/jit/sandbox"
)

// The stock sudoers policy works in the sandbox: one rule allows exactly one
// command, and the host's sudo configuration is never consulted.
func TestHarnessSudoersRule(t *testing.T) {
	sb := sandbox.New(t)
	sandbox.RequireProgram(t, "/usr/bin/sudo")
	sb.WriteFile("/etc/sudo.conf", "Plugin sudoers_policy sudoers.so\nPlugin sudoers_io sudoers.so\n", 0o644)
	sb.WriteFile("/etc/sudoers.d/jit-e2e", "jitalice ALL=(root) NOPASSWD: /usr/bin/id, /usr/bin/tty\n", 0o440)

	r := sb.RunAs("jitalice", 30*time.Second, "", nil, "sudo", "-n", "/usr/bin/id", "-u")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "0" {
		t.Fatalf("sudo -n /usr/bin/id -u under a NOPASSWD rule: want uid 0, got %s", r)
	}
	r = sb.RunAs("jitalice", 30*time.Second, "", nil, "sudo", "-n", "/bin/cat", "/etc/shadow")
	if r.Code == 0 || strings.Contains(r.Stdout, "root:") {
		t.Fatalf("sudo -n /bin/cat /etc/shadow without a rule must be refused, got %s", r)
	}
	// Another test user has no rule at all.
	r = sb.RunAs("jitbob", 30*time.Second, "", nil, "sudo", "-n", "/usr/bin/id", "-u")
	if r.Code == 0 {
		t.Fatalf("jitbob has no sudoers rule but sudo succeeded: %s", r)
	}
	// With a terminal too: the tty helper reaches sudo through a real pty.
	r = sb.RunAsTTY("jitalice", 30*time.Second, "", nil, "sudo", "-n", "/usr/bin/tty")
	if r.Code != 0 || !strings.Contains(r.Stdout, "/dev/pts/") {
		t.Fatalf("sudo -n /usr/bin/tty on a pty: want a /dev/pts path, got %s", r)
	}
}

// Entries written in the sandbox land in the sandbox's own journald and are
// read back with journalctl; sandbox.Main proves they never reach the host.
func TestHarnessJournald(t *testing.T) {
	sb := sandbox.New(t)
	if !journal.Enabled() {
		t.Fatal("go-systemd sees no journald socket in the sandbox")
	}
	marker := sandbox.Marker()
	if marker == "" {
		t.Fatal("sandbox.Main set no run marker")
	}
	binary := []byte{0, 1, 2, 0xff, '\n', 'x'}
	err := journal.Send("harness "+marker, journal.PriInfo, map[string]string{
		"SYSLOG_IDENTIFIER": "jit-e2e",
		"JIT_MARKER":        marker,
		"JIT_BINARY":        string(binary),
	})
	if err != nil {
		t.Fatalf("journal.Send: %v", err)
	}
	entries := sb.WaitJournal(10*time.Second, nil, "JIT_MARKER="+marker)
	if len(entries) != 1 {
		t.Fatalf("want 1 entry, got %d", len(entries))
	}
	e := entries[0]
	if got := e.Get("MESSAGE"); got != "harness "+marker {
		t.Errorf("MESSAGE = %q", got)
	}
	if got := e.Bytes("JIT_BINARY"); string(got) != string(binary) {
		t.Errorf("binary field came back as %v, want %v", got, binary)
	}
	if got := e.Get("SYSLOG_IDENTIFIER"); got != "jit-e2e" {
		t.Errorf("SYSLOG_IDENTIFIER = %q", got)
	}
}

// A test user logs in to a real sshd on 127.0.0.1 with a key and runs a
// command; PAM (service sshd) runs on the way.
func TestHarnessSSHD(t *testing.T) {
	sb := sandbox.New(t)
	sshd := sb.StartSSHD(sandbox.SSHDConfig{})
	r := sshd.SSH("jitalice", 60*time.Second, "id", "-un")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "jitalice" {
		t.Fatalf("ssh jitalice@127.0.0.1 id -un: %s\nsshd log:\n%s", r, sshd.Proc.Output())
	}
	// A user without an authorized key is turned away.
	r = sb.RunAs("jitbob", 30*time.Second, "", nil, "ssh", "-F", "/dev/null", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-p", strconv.Itoa(sshd.Port), "jitbob@127.0.0.1", "true")
	if r.Code == 0 {
		t.Fatalf("jitbob has no key but logged in: %s", r)
	}
}
