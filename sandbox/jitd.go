package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/jitpam/jit/jitd/api"
)

// SocketPath is where the sandbox's jitd listens (the production default).
const SocketPath = api.DefaultSocket

// SpoolDir is jitd's recording spool (RUNTIME-DIR/spool, see package
// spool), and SpoolMountOptions the options of the tmpfs the sandbox mounts
// on it, the same as contrib/systemd/run-jitd-spool.mount on a host.
const (
	SpoolDir          = "/run/jitd/spool"
	SpoolMountOptions = "mode=0700,huge=within_size,size=40m"
)

// PolicyPath is where the sandbox's jitd reads its policy.
const PolicyPath = "/etc/jitd/jitd.hcl"

// TestPolicy is a policy for end-to-end tests: jitlead (group jitoncall) and
// root approve; jitsre may break glass; jitadmin is exempt from login gating.
const TestPolicy = `approvers        = ["%jitoncall"]
default_duration = "30m"
max_duration     = "8h"
require_reason   = true

breakglass {
  users        = ["%jitsre"]
  max_duration = "1h"
}
`

// BuildDir is where `make build` put the artifacts: $JIT_BUILD, or build/
// at the root of the module this test runs in.
func BuildDir() string {
	if d := os.Getenv("JIT_BUILD"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return "build"
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "build")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "build"
		}
		dir = parent
	}
}

// Artifact returns the path of a built artifact (jitd, jitctl, jit_sudo.so,
// …), failing the test when it has not been built.
func (sb *Sandbox) Artifact(name string) string {
	sb.t.Helper()
	p := filepath.Join(BuildDir(), name)
	if _, err := os.Stat(p); err != nil {
		sb.t.Fatalf("%s is not built: run `make build` first (%v)", p, err)
	}
	return p
}

// Jitd is a jitd running in the sandbox.
type Jitd struct {
	Proc     *Process
	Socket   string
	StateDir string
	Client   *api.Client
}

// JitdOptions adjust StartJitd.
type JitdOptions struct {
	// Policy is written to PolicyPath first unless empty; use TestPolicy
	// for the standard cast.
	Policy string
	// StateDir defaults to a fresh directory; pass a previous jitd's to
	// restart on the same state.
	StateDir string
	// Args are extra command-line flags.
	Args []string
	// Wrap, if set, is a command that runs jitd: jitd's path and
	// arguments are appended to it.
	Wrap []string
}

// StartJitd starts the built jitd on SocketPath and waits until it answers.
func (sb *Sandbox) StartJitd(o JitdOptions) *Jitd {
	sb.t.Helper()
	if o.Policy != "" {
		sb.WriteFile(PolicyPath, o.Policy, 0o644)
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(sb.Dir, "jitd-state")
	}
	args := append([]string{"-socket", SocketPath, "-state", o.StateDir, "-config", PolicyPath, "-log-level", "debug"}, o.Args...)
	argv := append(append(slices.Clone(o.Wrap), sb.Artifact("jitd")), args...)
	proc := sb.Start("jitd", exec.Command(argv[0], argv[1:]...))
	j := &Jitd{Proc: proc, Socket: SocketPath, StateDir: o.StateDir, Client: api.NewClient(SocketPath)}
	sb.t.Cleanup(j.Client.Close)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := j.Client.Status(ctx)
		cancel()
		if err == nil {
			return j
		}
		if !proc.Running() || time.Now().After(deadline) {
			sb.t.Fatalf("jitd did not come up on %s: %v\n%s", SocketPath, err, proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Jitctl runs the built jitctl as user (root when user is "root") against
// the sandbox's jitd.
func (sb *Sandbox) Jitctl(user string, args ...string) Result {
	sb.t.Helper()
	argv := append([]string{sb.Artifact("jitctl")}, args...)
	env := []string{"JITD_SOCKET=" + SocketPath}
	if user == "root" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/root"}, env...)
		return run(cmd, "")
	}
	return sb.RunAs(user, 30*time.Second, "", env, argv...)
}
