package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/policy"
	"github.com/jitpam/jit/sandbox"
)

// Tests of installing and enabling jit: make install, jitctl setup, the
// .deb. All of it happens in the sandbox, where /etc (and, for the package,
// /usr and /var/lib) are overlays.

func repoRoot(t testing.TB) string {
	t.Helper()
	return filepath.Dir(sandbox.BuildDir())
}

// Every example policy in contrib parses, and says what the README says.
func TestInstallExamplePolicies(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), "contrib", "examples", "*.hcl"))
	files = append(files, filepath.Join(repoRoot(t), "contrib", "jitd.hcl"))
	if len(files) < 4 {
		t.Fatalf("want contrib/jitd.hcl and three examples, found %v", files)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := policy.Parse(src, f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// make install puts every file where the distribution looks for it, with
// the modes sudo and PAM insist on, and never overwrites the policy.
func TestInstallMakeInstall(t *testing.T) {
	sb := sandbox.New(t)
	sandbox.RequireProgram(t, "/usr/bin/make")
	dest := filepath.Join(sb.Dir, "dest")
	install := func() string {
		t.Helper()
		// -o build: use the artifacts `make build` made; never rebuild here.
		cmd := exec.Command("make", "--no-print-directory", "-C", repoRoot(t), "-o", "build", "install",
			"DESTDIR="+dest, "PAMDIR=/usr/lib/x86_64-linux-gnu/security")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
		return string(out)
	}
	install()
	want := map[string]os.FileMode{
		"/usr/sbin/jitd": 0o755, "/usr/bin/jitctl": 0o755,
		"/usr/libexec/jit/jit_sudo.so":                       0o644,
		"/usr/lib/x86_64-linux-gnu/security/pam_jit.so":      0o644,
		"/usr/lib/x86_64-linux-gnu/security/pam_jit_core.so": 0o644,
		"/etc/jitd/jitd.hcl":                                 0o644, "/etc/pam.d/jit-sudo": 0o644,
		"/usr/lib/systemd/catalog/jitd.catalog": 0o644, "/usr/lib/systemd/catalog/pam_jit.catalog": 0o644,
		"/usr/share/man/man1/jitctl.1": 0o644, "/usr/share/man/man8/jitd.8": 0o644,
		"/usr/share/man/man8/jit_sudo.8": 0o644, "/usr/share/man/man8/pam_jit.8": 0o644,
		"/usr/share/bash-completion/completions/jitctl": 0o644,
		"/usr/share/zsh/vendor-completions/_jitctl":     0o644,
	}
	for p, mode := range want {
		fi, err := os.Stat(dest + p)
		if err != nil {
			t.Errorf("make install: %v", err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), mode)
		}
	}
	var units []string
	for _, pattern := range []string{"/*/systemd/system/*", "/*/*/systemd/system/*"} {
		found, _ := filepath.Glob(dest + pattern)
		for _, f := range found {
			units = append(units, filepath.Base(f))
		}
	}
	sort.Strings(units)
	if want := []string{"jitd.service", "jitd.socket", "run-jitd-spool.mount"}; !slices.Equal(units, want) {
		t.Errorf("units installed: %v, want %v", units, want)
	}
	for _, f := range []string{"/etc/sudo.conf", "/etc/pam.d/sshd", "/etc/pam.d/common-account"} {
		if _, err := os.Stat(dest + f); err == nil {
			t.Errorf("make install wrote %s: it must never touch sudo or PAM configuration", f)
		}
	}
	// The installed jitd accepts the installed example policy.
	out, err := exec.Command(dest+"/usr/sbin/jitd", "-check-config", "-config", dest+"/etc/jitd/jitd.hcl").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "is valid") {
		t.Errorf("jitd -check-config on the installed policy: %v\n%s", err, out)
	}
	// An administrator's policy survives a second install.
	mine := "approvers = [\"%mine\"]\n"
	if err := os.WriteFile(dest+"/etc/jitd/jitd.hcl", []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	install()
	if b, _ := os.ReadFile(dest + "/etc/jitd/jitd.hcl"); string(b) != mine {
		t.Errorf("make install overwrote an existing /etc/jitd/jitd.hcl:\n%s", b)
	}
}

func setupSudo(sb *sandbox.Sandbox, args ...string) sandbox.Result {
	return sb.Jitctl("root", append([]string{"setup", "sudo"}, args...)...)
}

// jitctl setup sudo: refuses while jitd is down and when sudo cannot load
// the plugin; switches, with a backup; and switches back exactly.
func TestSetupSudo(t *testing.T) {
	sb := sandbox.New(t)
	sandbox.RequireProgram(t, "/usr/bin/sudo")
	orig := "# site sudo.conf\nPath askpass /usr/bin/ssh-askpass\nPlugin sudoers_policy sudoers.so\nPlugin sudoers_io sudoers.so\n"
	sb.WriteFile("/etc/sudo.conf", orig, 0o644)
	sb.WriteFile("/etc/sudoers.d/jit-e2e", "jitbob ALL=(root) NOPASSWD: /usr/bin/id\n", 0o440)
	plugin := sb.Artifact("jit_sudo.so")
	conf := func() string { b, _ := os.ReadFile("/etc/sudo.conf"); return string(b) }

	// jitd is not running: nothing changes.
	r := setupSudo(sb, "--enable", "--plugin", plugin)
	if r.Code == 0 || !strings.Contains(r.Stderr, "jitd does not answer") {
		t.Fatalf("setup with jitd down: want a refusal naming jitd, got %s", r)
	}
	if conf() != orig {
		t.Fatalf("refused setup changed sudo.conf:\n%s", conf())
	}
	// Not root: refused.
	r = sb.RunAs("jitalice", 30*time.Second, "", nil, sb.Artifact("jitctl"), "setup", "sudo", "--enable")
	if r.Code == 0 || !strings.Contains(r.Stderr, "as root") {
		t.Fatalf("setup as a user: want refused, got %s", r)
	}

	j := sb.StartJitd(sandbox.JitdOptions{Policy: sandbox.TestPolicy})
	// A file sudo cannot load as a plugin: sudo -V fails in the probe
	// namespace, and the real sudo.conf stays as it was.
	bogus := filepath.Join(sb.Dir, "bogus.so")
	sb.WriteFile(bogus, "not a shared object\n", 0o644)
	r = setupSudo(sb, "--enable", "--plugin", bogus)
	if r.Code == 0 || !strings.Contains(r.Stderr, "nothing changed") {
		t.Fatalf("setup with an unloadable plugin: want refused, got %s", r)
	}
	if conf() != orig {
		t.Fatalf("refused setup changed sudo.conf:\n%s", conf())
	}

	r = setupSudo(sb, "--enable", "--plugin", plugin)
	if r.Code != 0 || !strings.Contains(r.Stdout, "jit_sudo") {
		t.Fatalf("setup sudo --enable: %s", r)
	}
	t.Logf("enable: %s", r.Stdout)
	c := conf()
	if !strings.Contains(c, "\nPlugin jit_policy "+plugin+" socket="+sandbox.SocketPath) ||
		!strings.Contains(c, "#jit-disabled# Plugin sudoers_policy sudoers.so") ||
		!strings.Contains(c, "Path askpass /usr/bin/ssh-askpass") {
		t.Fatalf("enabled sudo.conf:\n%s", c)
	}
	if fi, _ := os.Stat("/etc/sudo.conf"); fi.Mode().Perm() != 0o644 {
		t.Errorf("sudo.conf mode %v", fi.Mode().Perm())
	}
	backups, _ := filepath.Glob("/etc/jitd/backup/etc_sudo.conf.*")
	if len(backups) != 1 {
		t.Fatalf("want one backup, got %v", backups)
	}
	if b, _ := os.ReadFile(backups[0]); string(b) != orig {
		t.Errorf("backup differs from the original:\n%s", b)
	}
	// Now jit decides: jitbob's sudoers rule no longer counts, a grant does.
	wantDenied(t, "sudoers rule under jit", sudoAs(sb, "jitbob", nil, "-n", "/usr/bin/id", "-u"), "jitbob has no grant")
	grantSudo(t, sb, "jitalice", "10m", nil, "/usr/bin/id")
	if r := sudoAs(sb, "jitalice", nil, "-n", "/usr/bin/id", "-u"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "0" {
		t.Fatalf("sudo under a grant after setup: %s", r)
	}
	// Enabling again changes nothing.
	if r := setupSudo(sb, "--enable", "--plugin", plugin); r.Code != 0 || !strings.Contains(r.Stdout, "nothing changed") {
		t.Errorf("second enable: %s", r)
	}

	// Disabling works with jitd down too: it is the way out of a lock-out.
	j.Proc.Stop()
	r = setupSudo(sb, "--disable")
	if r.Code != 0 {
		t.Fatalf("setup sudo --disable: %s", r)
	}
	if conf() != orig {
		t.Fatalf("disable did not restore sudo.conf:\n%s\nwant:\n%s", conf(), orig)
	}
	if r := sudoAs(sb, "jitbob", nil, "-n", "/usr/bin/id", "-u"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "0" {
		t.Fatalf("sudoers rule after disable: %s", r)
	}
}

// jitctl setup pam adds and removes a marked block in a service's file.
func TestSetupPAM(t *testing.T) {
	sb := sandbox.New(t)
	const svc = "/etc/pam.d/jit-e2e-login"
	orig := "#%PAM-1.0\n@include common-auth\naccount    required     pam_nologin.so\n@include common-account\n" +
		"session    required     pam_loginuid.so\n@include common-session\n@include common-password\n"
	sb.WriteFile(svc, orig, 0o644)
	module := sb.Artifact("pam_jit.so")
	args := []string{"setup", "pam", "--service", "jit-e2e-login", "--module", module, "--exempt-group", "jitexempt"}

	if r := sb.Jitctl("root", append(args, "--enable")...); r.Code == 0 {
		t.Fatalf("setup pam with jitd down must be refused: %s", r)
	}
	sb.StartJitd(sandbox.JitdOptions{Policy: sandbox.TestPolicy})
	if r := sb.Jitctl("root", "setup", "pam", "--enable", "--service", "jit-sudo", "--module", module); r.Code == 0 {
		t.Fatalf("pam_jit in jit-sudo must be refused: %s", r)
	}
	r := sb.Jitctl("root", append(args, "--enable")...)
	if r.Code != 0 {
		t.Fatalf("setup pam --enable: %s", r)
	}
	b, _ := os.ReadFile(svc)
	lines := strings.Split(string(b), "\n")
	idx := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i
			}
		}
		return -1
	}
	acct, sess := idx("account    required     "+module), idx("session    required     "+module)
	if acct < 0 || sess < 0 || acct > idx("@include common-account") || sess > idx("@include common-session") ||
		acct < idx("account    required     pam_nologin.so") {
		t.Fatalf("pam_jit lines missing or misplaced:\n%s", b)
	}
	if !strings.Contains(lines[acct], "exempt_group=jitexempt") || !strings.Contains(lines[acct], "socket="+sandbox.SocketPath) {
		t.Errorf("module arguments: %s", lines[acct])
	}
	if backups, _ := filepath.Glob("/etc/jitd/backup/etc_pam.d_jit-e2e-login.*"); len(backups) != 1 {
		t.Errorf("want one backup, got %v", backups)
	}
	if r := sb.Jitctl("root", append(args[:4], "--disable")...); r.Code != 0 {
		t.Fatalf("setup pam --disable: %s", r)
	}
	if b, _ := os.ReadFile(svc); string(b) != orig {
		t.Fatalf("disable did not restore the service:\n%s", b)
	}
}

// The .deb installs into the sandbox (dpkg, with /usr, /var/lib and
// /var/cache overlaid), leaves sudo and PAM alone, and works through the
// installed paths: jitd -check-config on the installed policy, the
// installed jitd and plugin through jitctl setup sudo and a real sudo; the
// package refuses removal while sudo still uses it.
func TestPackageDeb(t *testing.T) {
	sandbox.Require(t)
	sandbox.RequireProgram(t, "/usr/bin/dpkg")
	// Built before the sandbox's mounts exist, so that the Go module cache
	// in root's home is the host's (the sandbox puts a tmpfs on /root).
	// Always rebuilt, so that the package holds the artifacts under test.
	out, err := exec.Command("make", "--no-print-directory", "-C", repoRoot(t), "-o", "build", "package").CombinedOutput()
	if err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(sandbox.BuildDir(), "jit_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("want one build/jit_*.deb, found %v", debs)
	}
	sb := sandbox.New(t)
	for _, d := range []string{"/usr", "/var/lib", "/var/cache"} {
		if err := sb.Overlay(d); err != nil {
			t.Fatal(err)
		}
	}
	sudoConf, _ := os.ReadFile("/etc/sudo.conf")
	sshd, _ := os.ReadFile("/etc/pam.d/sshd")

	out = []byte(sb.MustRun("dpkg", "-i", debs[0]))
	t.Logf("dpkg -i:\n%s", out)
	for _, f := range []string{"/usr/sbin/jitd", "/usr/bin/jitctl", "/usr/libexec/jit/jit_sudo.so",
		"/lib/x86_64-linux-gnu/security/pam_jit.so", "/lib/x86_64-linux-gnu/security/pam_jit_core.so",
		"/etc/jitd/jitd.hcl", "/etc/pam.d/jit-sudo", "/lib/systemd/system/jitd.socket",
		"/lib/systemd/system/run-jitd-spool.mount", "/var/lib/jitd"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("after dpkg -i: %v", err)
		}
	}
	if fi, err := os.Stat("/var/lib/jitd"); err == nil && fi.Mode().Perm() != 0o700 {
		t.Errorf("/var/lib/jitd mode %v, want 0700", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile("/etc/sudo.conf"); string(b) != string(sudoConf) {
		t.Errorf("installing the package changed /etc/sudo.conf")
	}
	if b, _ := os.ReadFile("/etc/pam.d/sshd"); string(b) != string(sshd) {
		t.Errorf("installing the package changed /etc/pam.d/sshd")
	}
	if out := sb.MustRun("/usr/sbin/jitd", "-check-config"); !strings.Contains(out, "/etc/jitd/jitd.hcl is valid") {
		t.Errorf("jitd -check-config: %s", out)
	}

	// The installed jitd, with the installed policy, and the installed plugin.
	proc := sb.Start("jitd-installed", exec.Command("/usr/sbin/jitd", "-socket", sandbox.SocketPath, "-state", "/var/lib/jitd"))
	client := api.NewClient(sandbox.SocketPath)
	defer client.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.Status(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || !proc.Running() {
			t.Fatalf("installed jitd did not come up: %v\n%s", err, proc.Output())
		}
	}
	jitctl := func(args ...string) sandbox.Result {
		cmd := exec.Command("/usr/bin/jitctl", args...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
		out, err := cmd.CombinedOutput()
		r := sandbox.Result{Stdout: string(out), Err: err}
		r.Code = cmd.ProcessState.ExitCode()
		return r
	}
	if r := jitctl("setup", "sudo", "--enable"); r.Code != 0 {
		t.Fatalf("installed jitctl setup sudo --enable: %s", r)
	}
	if b, _ := os.ReadFile("/etc/sudo.conf"); !strings.Contains(string(b), "Plugin jit_policy /usr/libexec/jit/jit_sudo.so") {
		t.Fatalf("sudo.conf does not name the installed plugin:\n%s", b)
	}
	if r := jitctl("grant", "jitalice", "--cmd", "/usr/bin/id", "--for", "10m", "--reason", "package smoke test"); r.Code != 0 {
		t.Fatalf("grant: %s", r)
	}
	if r := sudoAs(sb, "jitalice", nil, "-n", "/usr/bin/id", "-u"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "0" {
		t.Fatalf("sudo through the installed plugin: %s", r)
	}
	// Removing the package now would lock everyone out of sudo: refused.
	if out, err := sb.Run("dpkg", "-r", "jit"); err == nil || !strings.Contains(out, "jitctl setup sudo --disable") {
		t.Fatalf("dpkg -r while sudo uses jit: want refused, got %v\n%s", err, out)
	}
	if r := jitctl("setup", "sudo", "--disable"); r.Code != 0 {
		t.Fatalf("setup sudo --disable: %s", r)
	}
	if b, _ := os.ReadFile("/etc/sudo.conf"); string(b) != string(sudoConf) {
		t.Errorf("disable did not restore sudo.conf:\n%s", b)
	}
	sb.MustRun("dpkg", "-r", "jit")
	if _, err := os.Stat("/usr/libexec/jit/jit_sudo.so"); err == nil {
		t.Errorf("dpkg -r left the plugin behind")
	}
}
