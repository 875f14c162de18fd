package main

// jitctl setup: switch sudo and PAM over to jit, and back, as one explicit,
// reversible step. Installing the package never does this by itself.
//
// Lock-out guards: enabling refuses while jitd does not answer, and the
// sudo.conf candidate must load jit's plugin under the real sudo in a private
// mount namespace before it replaces /etc/sudo.conf. Disabling never needs
// jitd: it is the way back when jitd is down.

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Paths setup works on; variables so that nothing else needs to know them.
var (
	sudoConfPath  = "/etc/sudo.conf"
	pamDir        = "/etc/pam.d"
	backupDir     = "/etc/jitd/backup"
	defaultPlugin = "/usr/libexec/jit/jit_sudo.so"
	sudoPath      = "/usr/bin/sudo"
	unsharePath   = "/usr/bin/unshare"
)

const (
	markBegin = "# BEGIN jit (jitctl setup): remove with jitctl setup %s --disable"
	markEnd   = "# END jit"
	// markOff prefixes lines that setup commented out; --disable restores them.
	markOff = "#jit-disabled# "
)

const setupUsage = `usage:
  jitctl setup sudo --enable [--plugin PATH] [--breakglass-group G] [--dry-run]
  jitctl setup sudo --disable [--dry-run]
  jitctl setup pam --enable [--service NAME]… [--exempt-group G] [--module PATH] [--dry-run]
  jitctl setup pam --disable [--service NAME]… [--dry-run]`

func (c *cli) setup(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "sudo" && args[0] != "pam") {
		return usagef("say what to set up: sudo or pam\n%s", setupUsage)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("setup changes %s and %s: run it as root", sudoConfPath, pamDir)
	}
	if args[0] == "sudo" {
		return c.setupSudo(ctx, args[1:])
	}
	return c.setupPAM(ctx, args[1:])
}

// requireJitd refuses to switch anything over to jit while jitd does not
// answer: sudo and logins would be refused from that moment on.
func (c *cli) requireJitd(ctx context.Context) (socket string, err error) {
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, err := c.client.Status(sctx)
	if err != nil {
		return "", fmt.Errorf("jitd does not answer on %s (%s): enabling jit now would refuse every sudo/login; "+
			"start it first (`systemctl enable --now jitd.socket`), then run this again", c.client.Socket, describe(err))
	}
	if s.Socket != "" {
		return s.Socket, nil
	}
	return c.client.Socket, nil
}

func enableFlags(name string) (*flag.FlagSet, *bool, *bool, *bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	enable := fs.Bool("enable", false, "switch to jit")
	disable := fs.Bool("disable", false, "switch back")
	dry := fs.Bool("dry-run", false, "print the new file, change nothing")
	return fs, enable, disable, dry
}

func (c *cli) setupSudo(ctx context.Context, args []string) error {
	fs, enable, disable, dry := enableFlags("setup sudo")
	plugin := fs.String("plugin", defaultPlugin, "jit_sudo.so to load")
	bg := fs.String("breakglass-group", "", "plugin option breakglass_group=")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *enable == *disable {
		return usagef("give --enable or --disable\n%s", setupUsage)
	}
	old, mode, err := readConf(sudoConfPath)
	if err != nil {
		return err
	}
	var cand string
	if *enable {
		socket, err := c.requireJitd(ctx)
		if err != nil {
			return err
		}
		if err := checkRootOnly(*plugin); err != nil {
			return fmt.Errorf("sudo would not load %s: %w", *plugin, err)
		}
		lines := []string{fmt.Sprintf("Plugin jit_policy %s socket=%s timeout=2s", *plugin, socket)}
		if *bg != "" {
			lines[0] += " breakglass_group=" + *bg
		}
		// The I/O plugin (session recording) goes in when this build has it.
		if exportsSymbol(*plugin, "jit_io") {
			lines = append(lines, "Plugin jit_io "+*plugin)
		}
		cand = enableSudoConf(old, lines)
	} else {
		cand = disableConf(old)
	}
	if *dry {
		fmt.Fprint(c.stdout, cand)
		return nil
	}
	if cand == old {
		fmt.Fprintf(c.stdout, "%s already %s; nothing changed\n", sudoConfPath, map[bool]string{true: "uses jit", false: "does not use jit"}[*enable])
		return nil
	}
	tmp, err := writeCandidate(sudoConfPath, cand, mode)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	out, err := probeSudo(tmp)
	loaded := strings.Contains(out, "jit_sudo")
	switch {
	case err != nil:
		return fmt.Errorf("sudo -V under the new %s failed (%v); nothing changed:\n%s", sudoConfPath, err, indent(out))
	case *enable && !loaded:
		return fmt.Errorf("sudo -V under the new %s does not show jit's plugin; nothing changed:\n%s", sudoConfPath, indent(out))
	case *disable && loaded:
		return fmt.Errorf("sudo -V without jit still shows jit's plugin; nothing changed:\n%s", indent(out))
	}
	backup, err := backupFile(sudoConfPath)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, sudoConfPath); err != nil {
		return fmt.Errorf("switch %s: %w", sudoConfPath, err)
	}
	syncDir(filepath.Dir(sudoConfPath))
	fmt.Fprintf(c.stdout, "sudo -V under the new file: %s\n", firstLineWith(out, "plugin version"))
	if *enable {
		fmt.Fprintf(c.stdout, "%s now uses jit (backup: %s). Undo: jitctl setup sudo --disable\n", sudoConfPath, backup)
	} else {
		fmt.Fprintf(c.stdout, "%s no longer uses jit (backup: %s)\n", sudoConfPath, backup)
	}
	return nil
}

// enableSudoConf comments out every active Plugin line (sudo allows one
// policy plugin, and sudoers' I/O logging does not run under a foreign
// policy) and appends jit's block; an existing jit block is replaced.
func enableSudoConf(old string, plugins []string) string {
	var b strings.Builder
	for _, l := range splitLines(stripBlocks(old)) {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "Plugin" {
			l = markOff + l
		}
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, markBegin+"\n", "sudo")
	for _, p := range plugins {
		b.WriteString(p + "\n")
	}
	b.WriteString(markEnd + "\n")
	return b.String()
}

// disableConf removes jit's blocks and restores the lines setup commented out.
func disableConf(old string) string {
	var b strings.Builder
	for _, l := range splitLines(stripBlocks(old)) {
		b.WriteString(strings.TrimPrefix(l, markOff) + "\n")
	}
	return b.String()
}

// stripBlocks removes every "# BEGIN jit" … "# END jit" block.
func stripBlocks(s string) string {
	var b strings.Builder
	in := false
	for _, l := range splitLines(s) {
		switch {
		case strings.HasPrefix(l, "# BEGIN jit "):
			in = true
		case in && strings.TrimSpace(l) == markEnd:
			in = false
		case !in:
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// probeSudo runs `sudo -V` as root in a private mount namespace where cand is
// bind-mounted over /etc/sudo.conf: the real file is untouched until the
// candidate proved that sudo starts with it.
func probeSudo(cand string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, unsharePath, "--mount", "--propagation", "private", "--",
		"/bin/sh", "-c", `mount --bind "$1" "$2" && exec "$3" -V`, "jit-probe", cand, sudoConfPath, sudoPath)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *cli) setupPAM(ctx context.Context, args []string) error {
	fs, enable, disable, dry := enableFlags("setup pam")
	var services strList
	fs.Var(&services, "service", "PAM service to gate (file in /etc/pam.d), repeatable; default sshd")
	exempt := fs.String("exempt-group", "", "module option exempt_group= (who still logs in while jitd is down)")
	module := fs.String("module", "pam_jit.so", "module name or absolute path of pam_jit.so")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *enable == *disable {
		return usagef("give --enable or --disable\n%s", setupUsage)
	}
	if len(services) == 0 {
		services = strList{"sshd"}
	}
	var modLine string
	if *enable {
		socket, err := c.requireJitd(ctx)
		if err != nil {
			return err
		}
		path, err := findPAMModule(*module)
		if err != nil {
			return err
		}
		for _, f := range []string{path, filepath.Join(filepath.Dir(path), "pam_jit_core.so")} {
			if err := checkRootOnly(f); err != nil {
				return fmt.Errorf("PAM would not load pam_jit: %w", err)
			}
		}
		modLine = *module + " socket=" + socket
		if *exempt != "" {
			modLine += " exempt_group=" + *exempt
		}
	}
	type change struct{ path, cand, old string }
	var changes []change
	for _, svc := range services {
		if strings.ContainsAny(svc, "/.") || svc == "" {
			return usagef("--service %q: give a file name in %s", svc, pamDir)
		}
		if svc == "jit-sudo" {
			return fmt.Errorf("never put pam_jit into jit-sudo: jit's sudo plugin uses that service, and two Go runtimes cannot share one process")
		}
		path := filepath.Join(pamDir, svc)
		old, _, err := readConf(path)
		if err != nil {
			return err
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s does not exist: is %s installed?", path, svc)
		}
		cand := disableConf(old)
		if *enable {
			cand = enablePAMService(cand, modLine)
		}
		changes = append(changes, change{path, cand, old})
	}
	for _, ch := range changes {
		if *dry {
			fmt.Fprintf(c.stdout, "==> %s\n%s", ch.path, ch.cand)
			continue
		}
		if ch.cand == ch.old {
			fmt.Fprintf(c.stdout, "%s: nothing to change\n", ch.path)
			continue
		}
		_, mode, _ := readConf(ch.path)
		backup, err := backupFile(ch.path)
		if err != nil {
			return err
		}
		tmp, err := writeCandidate(ch.path, ch.cand, mode)
		if err != nil {
			return err
		}
		if err := os.Rename(tmp, ch.path); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("switch %s: %w", ch.path, err)
		}
		syncDir(pamDir)
		verb := "now gates logins with pam_jit"
		if *disable {
			verb = "no longer uses pam_jit"
		}
		fmt.Fprintf(c.stdout, "%s %s (backup: %s)\n", ch.path, verb, backup)
	}
	if *enable && !*dry {
		fmt.Fprintln(c.stdout, "Logins are gated only for services in the policy's login { services = [...] } block. Keep a root session open and test a login before you close it. Undo: jitctl setup pam --disable")
	}
	return nil
}

// enablePAMService adds pam_jit's account line before the service's common
// account stack (or after its last account line) and its session line
// before the common session stack, where pam_systemd runs.
func enablePAMService(s, modLine string) string {
	lines := splitLines(s)
	block := func(facility string) []string {
		return []string{fmt.Sprintf(markBegin, "pam"), fmt.Sprintf("%-10s required     %s", facility, modLine), markEnd}
	}
	insert := func(lines []string, facility, include string) []string {
		at, last := -1, -1
		for i, l := range lines {
			f := strings.Fields(l)
			if len(f) == 0 || strings.HasPrefix(f[0], "#") {
				continue
			}
			if f[0] == "@include" && len(f) > 1 && f[1] == include {
				at = i
				break
			}
			if strings.TrimPrefix(f[0], "-") == facility {
				last = i
			}
		}
		switch {
		case at < 0 && last >= 0:
			at = last + 1
		case at < 0:
			at = len(lines)
		}
		return append(lines[:at:at], append(block(facility), lines[at:]...)...)
	}
	lines = insert(lines, "account", "common-account")
	lines = insert(lines, "session", "common-session")
	return strings.Join(lines, "\n") + "\n"
}

// findPAMModule returns the file PAM loads for module: an absolute path as
// given, else the name in the distribution's module directory.
func findPAMModule(module string) (string, error) {
	if filepath.IsAbs(module) {
		return module, nil
	}
	var dirs []string
	for _, d := range pamModuleDirs() {
		dirs = append(dirs, d)
		if _, err := os.Stat(filepath.Join(d, module)); err == nil {
			return filepath.Join(d, module), nil
		}
	}
	return "", fmt.Errorf("%s is not installed (looked in %s): install jit first (make install, or the package)", module, strings.Join(dirs, ", "))
}

func pamModuleDirs() []string {
	triplet := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "386": "i386-linux-gnu",
		"arm": "arm-linux-gnueabihf", "ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu", "riscv64": "riscv64-linux-gnu"}[runtime.GOARCH]
	var dirs []string
	if triplet != "" {
		dirs = append(dirs, "/usr/lib/"+triplet+"/security", "/lib/"+triplet+"/security")
	}
	return append(dirs, "/usr/lib64/security", "/lib64/security", "/usr/lib/security", "/lib/security")
}

// checkRootOnly is what sudo and pam_jit's loader demand of a module: a
// regular file owned by root that neither group nor others may write.
func checkRootOnly(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	case !ok || st.Uid != 0:
		return fmt.Errorf("%s is not owned by root", path)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s is writable by group or others (mode %v)", path, fi.Mode().Perm())
	}
	return nil
}

func exportsSymbol(path, name string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		return false
	}
	for _, s := range syms {
		if s.Name == name && s.Section != elf.SHN_UNDEF {
			return true
		}
	}
	return false
}

// readConf reads a configuration file; a missing one reads as empty, 0644.
func readConf(path string) (string, os.FileMode, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", 0o644, nil
	}
	if err != nil {
		return "", 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	s := string(b)
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s, fi.Mode().Perm(), nil
}

// writeCandidate writes content beside path (same filesystem, so that the
// switch is one rename), root-owned, fsync'd.
func writeCandidate(path, content string, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".jit-new-")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Chmod(mode &^ 0o022)
	}
	if err == nil {
		err = f.Chown(0, 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write candidate for %s: %w", path, err)
	}
	return tmp, nil
}

// backupFile copies path into backupDir with a timestamp and returns where.
func backupFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "(none: " + path + " did not exist)", nil
	}
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(backupDir, 0o700); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	name := strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "_") + "." + time.Now().UTC().Format("20060102T150405.000000000Z")
	dst := filepath.Join(backupDir, name)
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	return dst, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func firstLineWith(out, sub string) string {
	var last string
	for _, l := range splitLines(out) {
		if strings.Contains(l, sub) {
			last = l
			if strings.Contains(l, "jit") {
				return strings.TrimSpace(l)
			}
		}
	}
	return strings.TrimSpace(last)
}

func indent(s string) string {
	var b bytes.Buffer
	for _, l := range splitLines(s) {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}
