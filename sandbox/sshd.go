package sandbox

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SSHD is a real sshd listening on 127.0.0.1 inside the sandbox.
type SSHD struct {
	sb         *Sandbox
	Port       int
	Proc       *Process
	knownHosts string
	dir        string
}

// SSHDConfig adjusts the sandbox sshd.
type SSHDConfig struct {
	// Extra lines appended to sshd_config.
	Extra []string
	// MaxStartups for concurrent-login tests (sshd's default drops
	// unauthenticated connections beyond 10).
	MaxStartups string
}

// StartSSHD starts sshd -D on a free port of 127.0.0.1 with a per-run host key,
// PAM on (service "sshd", from the sandbox's /etc/pam.d) and public-key
// authentication only.
func (sb *Sandbox) StartSSHD(cfg SSHDConfig) *SSHD {
	sb.t.Helper()
	RequireProgram(sb.t, "/usr/sbin/sshd")
	RequireProgram(sb.t, "/usr/bin/ssh")
	dir := filepath.Join(sb.Dir, "sshd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		sb.t.Fatalf("sandbox: %v", err)
	}
	hostKey := filepath.Join(dir, "host_ed25519")
	sb.MustRun("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "jit-sandbox-host", "-f", hostKey)
	port := freePort(sb)
	maxStartups := cfg.MaxStartups
	if maxStartups == "" {
		maxStartups = "10:30:100"
	}
	conf := []string{
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKey,
		"PidFile none",
		"UsePAM yes",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin no",
		// Root-owned keys in the sandbox's /etc: sshd's StrictModes accepts them.
		"AuthorizedKeysFile /etc/ssh/jit-keys/%u",
		"UseDNS no",
		"PrintMotd no",
		"LogLevel VERBOSE",
		"MaxStartups " + maxStartups,
		"MaxSessions 100",
	}
	conf = append(conf, cfg.Extra...)
	confPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		sb.t.Fatalf("sandbox: %v", err)
	}
	if out, err := exec.Command("/usr/sbin/sshd", "-t", "-f", confPath).CombinedOutput(); err != nil {
		sb.t.Fatalf("sandbox: sshd rejects its config: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		sb.t.Fatalf("sandbox: %v", err)
	}
	known := filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", port, pub)
	if err := os.WriteFile(known, []byte(line), 0o644); err != nil {
		sb.t.Fatalf("sandbox: %v", err)
	}
	proc := sb.Start("sshd", exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", confPath))
	s := &SSHD{sb: sb, Port: port, Proc: proc, knownHosts: known, dir: dir}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			return s
		}
		if !proc.Running() || time.Now().After(deadline) {
			sb.t.Fatalf("sandbox: sshd did not start listening on %d: %v\n%s", port, err, proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// AuthorizeKey creates a key pair for user and authorizes it with sshd; it
// returns the private key's path.
func (s *SSHD) AuthorizeKey(user string) string {
	s.sb.t.Helper()
	key := filepath.Join(s.dir, "id_"+user)
	if _, err := os.Stat(key); err == nil {
		return key
	}
	s.sb.MustRun("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", user+"@jit-sandbox", "-f", key)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		s.sb.t.Fatalf("sandbox: %v", err)
	}
	path := "/etc/ssh/jit-keys/" + user
	if _, err := os.Stat(path); err == nil {
		s.sb.AppendFile(path, string(pub))
	} else {
		s.sb.WriteFile(path, string(pub), 0o644)
	}
	return key
}

// SSHCommand returns an ssh client command that logs in as user with its key
// and runs remote (if any). It never asks anything: batch mode, strict host
// key checking against the per-run host key.
func (s *SSHD) SSHCommand(ctx context.Context, user string, remote ...string) *exec.Cmd {
	key := s.AuthorizeKey(user)
	args := []string{
		"-F", "/dev/null",
		"-i", key,
		"-p", strconv.Itoa(s.Port),
		"-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + s.knownHosts,
		"-o", "ConnectTimeout=10",
		"-o", "LogLevel=ERROR",
		user + "@127.0.0.1",
	}
	return exec.CommandContext(ctx, "/usr/bin/ssh", append(args, remote...)...)
}

// SSH logs in as user, runs remote, and returns how it went.
func (s *SSHD) SSH(user string, timeout time.Duration, remote ...string) Result {
	s.sb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return run(s.SSHCommand(ctx, user, remote...), "")
}

func freePort(sb *Sandbox) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sb.t.Fatalf("sandbox: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
