package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Password is the password of every sandbox user.
const Password = "jit-test-pw"

// passwordHash is Password as SHA-512 crypt (openssl passwd -6 -salt jitsandbox).
const passwordHash = "$6$jitsandbox$WOyb1vmFFympzx9k98XJAnmfLflEcSqEHykAhZFWgqOi.EgKPJzBpK4cCOUn2XP.Z30wOxzIElW1qCljMeu8p/"

// User is a test account that exists only inside the sandbox.
type User struct {
	Name   string
	UID    int
	GID    int
	Groups []string // supplementary groups
	Home   string
}

// Group is a test group that exists only inside the sandbox.
type Group struct {
	Name string
	GID  int
}

// The standing cast of every sandbox. Names carry a jit prefix so that they
// can never be confused with a real account in a log.
var (
	GroupUsers  = Group{"jitusers", 2100}
	GroupOncall = Group{"jitoncall", 2101}
	GroupSRE    = Group{"jitsre", 2102}
	GroupExempt = Group{"jitexempt", 2103}
)

// Users returns the standing test users: alice and bob are engineers, lead is
// on call (an approver), sre may use break-glass, admin is exempt from login
// gating.
func Users() []User {
	mk := func(name string, uid int, groups ...string) User {
		return User{Name: name, UID: uid, GID: GroupUsers.GID, Groups: groups, Home: "/home/" + name}
	}
	return []User{
		mk("jitalice", 2001),
		mk("jitbob", 2002),
		mk("jitlead", 2003, GroupOncall.Name),
		mk("jitsre", 2004, GroupSRE.Name),
		mk("jitadmin", 2005, GroupExempt.Name),
	}
}

func groups() []Group { return []Group{GroupUsers, GroupOncall, GroupSRE, GroupExempt} }

// Sandbox is one test's private world: its own /etc, /run, /var/log, /home
// and journald. Sandboxes are not safe for parallel tests in one process:
// they share the process's mount namespace.
type Sandbox struct {
	t   testing.TB
	Dir string // scratch space of this sandbox, root-only

	mounts []string // in mount order; unmounted in reverse
	procs  []*Process
}

// New builds a sandbox for t and tears it down when t ends. Outside a sandbox
// namespace (see Main) it skips t, or fails it under CI=true.
func New(t testing.TB) *Sandbox {
	t.Helper()
	Require(t)
	sb := &Sandbox{t: t, Dir: t.TempDir()}
	t.Cleanup(sb.teardown)
	if err := sb.build(); err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	return sb
}

// Require skips t (or fails it under CI=true) unless it runs inside a sandbox
// namespace.
func Require(t testing.TB) {
	t.Helper()
	if Inside() {
		return
	}
	why := os.Getenv(envUnavailable)
	if why == "" {
		why = "this test runs only inside the sandbox: its package's TestMain must call sandbox.Main"
	}
	if CI() {
		t.Fatalf("end-to-end prerequisite missing: %s", why)
	}
	t.Skipf("end-to-end test skipped: %s", why)
}

// RequireProgram fails t under CI=true, or skips it, when path is missing.
func RequireProgram(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	msg := fmt.Sprintf("%s is missing: run `make deps`", path)
	if CI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func (sb *Sandbox) build() error {
	if os.Getpid() == 1 || !Inside() {
		return errors.New("refusing to build outside a sandbox namespace")
	}
	if err := sb.Overlay("/etc"); err != nil {
		return err
	}
	if err := sb.devLog(); err != nil {
		return err
	}
	for _, dir := range []string{"/run", "/var/log", "/var/lib/sudo", "/home"} {
		if err := sb.Tmpfs(dir, 0o755); err != nil {
			return err
		}
	}
	// Root's home too: `sudo -i` runs root's login scripts there, and a
	// script killed mid-run (as jit kills sessions) must not leave lock
	// files in the host's /root.
	if err := sb.Tmpfs("/root", 0o700); err != nil {
		return err
	}
	for _, f := range []string{"profile", "bashrc"} {
		if b, err := os.ReadFile("/usr/share/base-files/dot." + f); err == nil {
			if err := os.WriteFile("/root/."+f, b, 0o644); err != nil {
				return fmt.Errorf("root's home: %w", err)
			}
		}
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{
		{"/run/systemd/journal", 0o755},
		{"/run/log/journal", 0o755},
		{"/run/jitd", 0o755},
		{"/run/sshd", 0o755},
		{"/run/sudo", 0o711},
		{"/var/log/journal", 0o2755},
	} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("create %s: %w", d.path, err)
		}
	}
	// jitd's recording spool on a tmpfs of its own with huge pages, as
	// contrib/systemd/run-jitd-spool.mount mounts it on a host.
	if err := os.MkdirAll(SpoolDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", SpoolDir, err)
	}
	if err := unix.Mount("tmpfs", SpoolDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, SpoolMountOptions); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", SpoolDir, err)
	}
	sb.mounts = append(sb.mounts, SpoolDir)
	if err := sb.addAccounts(); err != nil {
		return err
	}
	return sb.startJournald()
}

// Overlay makes dir writable inside the sandbox: writes land in the
// sandbox's scratch space and the host's dir stays as it was.
func (sb *Sandbox) Overlay(dir string) error {
	key := strings.ReplaceAll(strings.Trim(dir, "/"), "/", "_")
	upper := filepath.Join(sb.Dir, "overlay", key, "upper")
	work := filepath.Join(sb.Dir, "overlay", key, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("overlay %s: %w", dir, err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", dir, upper, work)
	if err := unix.Mount("overlay", dir, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", dir, err)
	}
	sb.mounts = append(sb.mounts, dir)
	return nil
}

// Tmpfs mounts an empty tmpfs on dir.
func (sb *Sandbox) Tmpfs(dir string, mode os.FileMode) error {
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("mode=%o", mode.Perm())); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	sb.mounts = append(sb.mounts, dir)
	return nil
}

// isPrivate reports whether path, after following symlinks, lies in this
// sandbox's scratch space or on a filesystem it mounted, so that a write
// there can never reach the host.
func (sb *Sandbox) isPrivate(path string) bool {
	if !filepath.IsAbs(path) {
		return false
	}
	resolved := resolveExisting(path)
	if resolved == "" {
		return false
	}
	if strings.HasPrefix(resolved, sb.Dir+"/") {
		return true
	}
	for _, m := range sb.mounts {
		if resolved == m || strings.HasPrefix(resolved, m+"/") {
			return true
		}
	}
	return false
}

// resolveExisting follows every symlink along path, dangling ones included
// (a write through a dangling link creates its target), and returns the
// path it leads to, or "" for a link loop.
func resolveExisting(path string) string {
	for hops := 0; hops < 40; hops++ {
		parts := strings.Split(strings.TrimPrefix(filepath.Clean(path), "/"), "/")
		cur, redirected := "/", false
		for i, part := range parts {
			next := filepath.Join(cur, part)
			fi, err := os.Lstat(next)
			if err != nil {
				break // the rest does not exist yet: nothing more to follow
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				target, err := os.Readlink(next)
				if err != nil {
					return ""
				}
				if !filepath.IsAbs(target) {
					target = filepath.Join(cur, target)
				}
				path = filepath.Join(append([]string{target}, parts[i+1:]...)...)
				redirected = true
				break
			}
			cur = next
		}
		if !redirected {
			return filepath.Clean(path)
		}
	}
	return ""
}

// WriteFile writes a file owned by root, refusing any path that is not
// private to the sandbox.
func (sb *Sandbox) WriteFile(path, content string, mode os.FileMode) {
	sb.t.Helper()
	if !sb.isPrivate(path) {
		sb.t.Fatalf("sandbox: refusing to write %s: not on a sandbox mount", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		sb.t.Fatalf("sandbox: %v", err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		sb.t.Fatalf("sandbox: %v", err)
	}
	// WriteFile keeps an existing file's mode; sudo insists on exact modes.
	if err := os.Chmod(path, mode); err != nil {
		sb.t.Fatalf("sandbox: %v", err)
	}
	if err := os.Chown(path, 0, 0); err != nil {
		sb.t.Fatalf("sandbox: %v", err)
	}
}

// AppendFile appends to a private file (see WriteFile).
func (sb *Sandbox) AppendFile(path, content string) {
	sb.t.Helper()
	if !sb.isPrivate(path) {
		sb.t.Fatalf("sandbox: refusing to write %s: not on a sandbox mount", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		sb.t.Fatalf("sandbox: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		sb.t.Fatalf("sandbox: append to %s: %v", path, err)
	}
}

func (sb *Sandbox) addAccounts() error {
	var passwd, shadow, group, gshadow strings.Builder
	days := time.Now().Unix() / 86400
	for _, u := range Users() {
		fmt.Fprintf(&passwd, "%s:x:%d:%d:jit test user:%s:/bin/bash\n", u.Name, u.UID, u.GID, u.Home)
		fmt.Fprintf(&shadow, "%s:%s:%d:0:99999:7:::\n", u.Name, passwordHash, days)
	}
	for _, g := range groups() {
		var members []string
		for _, u := range Users() {
			for _, name := range u.Groups {
				if name == g.Name {
					members = append(members, u.Name)
				}
			}
		}
		fmt.Fprintf(&group, "%s:x:%d:%s\n", g.Name, g.GID, strings.Join(members, ","))
		fmt.Fprintf(&gshadow, "%s:!::%s\n", g.Name, strings.Join(members, ","))
	}
	for path, add := range map[string]string{
		"/etc/passwd": passwd.String(), "/etc/shadow": shadow.String(),
		"/etc/group": group.String(), "/etc/gshadow": gshadow.String(),
	} {
		if !sb.isPrivate(path) {
			return fmt.Errorf("refusing to add accounts: %s is not on the sandbox overlay", path)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("add accounts: %w", err)
		}
		_, err = f.WriteString(add)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("add accounts to %s: %w", path, err)
		}
	}
	for _, u := range Users() {
		if err := os.MkdirAll(u.Home, 0o750); err != nil {
			return fmt.Errorf("create %s: %w", u.Home, err)
		}
		if err := os.Chown(u.Home, u.UID, u.GID); err != nil {
			return fmt.Errorf("chown %s: %w", u.Home, err)
		}
	}
	return nil
}

// LookupUser returns the standing test user called name.
func LookupUser(name string) (User, bool) {
	for _, u := range Users() {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

// Run runs argv as root inside the sandbox and returns its combined output.
func (sb *Sandbox) Run(argv ...string) (string, error) {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

// MustRun is Run that fails the test on error.
func (sb *Sandbox) MustRun(argv ...string) string {
	sb.t.Helper()
	out, err := sb.Run(argv...)
	if err != nil {
		sb.t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return out
}

func (sb *Sandbox) teardown() {
	for i := len(sb.procs) - 1; i >= 0; i-- {
		sb.procs[i].Stop()
	}
	for i := len(sb.mounts) - 1; i >= 0; i-- {
		// Lazy: a process the kernel has not reaped yet may still hold files.
		if err := unix.Unmount(sb.mounts[i], unix.MNT_DETACH); err != nil {
			sb.t.Errorf("sandbox: unmount %s: %v", sb.mounts[i], err)
		}
	}
}

func ownerOf(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return strconv.Itoa(int(st.Uid)) + ":" + strconv.Itoa(int(st.Gid))
	}
	return "?"
}
