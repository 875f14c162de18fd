package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/msteinert/pam/v2"
	"golang.org/x/sys/unix"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/grant"
)

// Re-authentication: when jitd's policy says authenticate = true, the user
// proves their password through PAM (service jit-sudo, which includes the
// system's auth stack and never pam_jit: two Go runtimes must not meet in
// one process), with sudo's conversation function. A success is cached per
// user and terminal, like sudoers' tty tickets, for the policy's auth_cache,
// in root-only files under timestamp_dir (default /run/jit/ts, gone at
// reboot). `sudo -v` authenticates and refreshes, `sudo -k` drops the
// ticket of this terminal, `sudo -K` all of the user's tickets.

// passwordTries is how often a wrong password may be retried, as sudoers.
const passwordTries = 3

// authenticate succeeds when the user has a valid ticket or proves their
// password now.
func (p *plugin) authenticate(cache time.Duration) error {
	tk, tkErr := p.ticketPath()
	if tkErr == nil && !p.flag("ignore_ticket") && ticketValid(tk, cache) {
		p.refreshTicket(tk, cache)
		return nil
	}
	if p.flag("noninteractive") {
		return errors.New("a password is required (policy: authenticate = true) and -n forbids asking; run `sudo -v` first")
	}
	if err := p.pamAuthenticate(); err != nil {
		return err
	}
	if tkErr == nil {
		p.refreshTicket(tk, cache)
	}
	return nil
}

func (p *plugin) refreshTicket(path string, cache time.Duration) {
	if cache <= 0 || (p.settings["update_ticket"] == "false") {
		return
	}
	if err := writeTicket(path); err != nil {
		say(msgError, "jit: warning: could not cache the authentication: "+err.Error())
	}
}

// pamAuthenticate runs the jit-sudo PAM stack: authenticate (up to three
// tries) and account management.
func (p *plugin) pamAuthenticate() error {
	convFailed := false
	tx, err := pam.StartFunc(p.opts.pamService, p.user.name, func(s pam.Style, msg string) (string, error) {
		switch s {
		case pam.PromptEchoOff, pam.PromptEchoOn:
			answer, ok := converse(p.prompt(msg), s == pam.PromptEchoOn)
			if !ok {
				convFailed = true
				return "", errors.New("no answer")
			}
			return answer, nil
		case pam.ErrorMsg:
			say(msgError, msg)
		case pam.TextInfo:
			say(msgInfo, msg)
		}
		return "", nil
	})
	if err != nil {
		return fmt.Errorf("cannot start PAM service %s: %v", p.opts.pamService, err)
	}
	defer tx.End()
	if p.user.tty != "" {
		_ = tx.SetItem(pam.Tty, p.user.tty)
	}
	_ = tx.SetItem(pam.Ruser, p.user.name)
	for try := 1; ; try++ {
		err = tx.Authenticate(pam.DisallowNullAuthtok)
		if err == nil {
			break
		}
		if convFailed || errors.Is(err, pam.ErrMaxtries) || try >= passwordTries {
			return fmt.Errorf("authentication failed for %s (%v)", p.user.name, err)
		}
		say(msgError, "Sorry, try again.")
	}
	if err := tx.AcctMgmt(pam.DisallowNullAuthtok); err != nil {
		return fmt.Errorf("account %s is not valid: %v", p.user.name, err)
	}
	return nil
}

// prompt turns PAM's "Password: " into sudo's style, or uses -p's prompt
// (%u user, %h host, %p the user whose password is asked, %% a percent).
func (p *plugin) prompt(msg string) string {
	if custom, ok := p.settings["prompt"]; ok {
		r := strings.NewReplacer("%u", p.user.name, "%p", p.user.name, "%h", p.user.host, "%H", p.user.host, "%%", "%")
		return r.Replace(custom)
	}
	if strings.TrimSpace(msg) == "Password:" {
		return "[jit] password for " + p.user.name + ": "
	}
	return msg
}

// ticketPath names the ticket of this user on this terminal: the terminal
// device and the session (with its leader's start time, so a new login on
// a reused tty does not inherit it); without a terminal, the parent
// process (sudoers' "ppid" tickets).
func (p *plugin) ticketPath() (string, error) {
	dir := filepath.Join(p.opts.timestampDir, strconv.Itoa(p.user.uid))
	if p.user.tty != "" {
		var st unix.Stat_t
		if err := unix.Stat(p.user.tty, &st); err != nil {
			return "", err
		}
		sid, err := unix.Getsid(0)
		if err != nil {
			return "", err
		}
		start, err := procStart(sid)
		if err != nil {
			return "", err
		}
		return filepath.Join(dir, fmt.Sprintf("tty-%d-%d-%d", st.Rdev, sid, start)), nil
	}
	ppid := os.Getppid()
	start, err := procStart(ppid)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, fmt.Sprintf("ppid-%d-%d", ppid, start)), nil
}

// procStart is a process's start time in clock ticks since boot.
func procStart(pid int) (uint64, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(raw[i+1:]))
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// A ticket holds the boot id and the CLOCK_BOOTTIME of the authentication:
// wall-clock changes cannot stretch it and a reboot voids it.
func bootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

func ticketValid(path string, cache time.Duration) bool {
	if cache <= 0 {
		return false
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != 0 {
		return false
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	id, at, ok := strings.Cut(strings.TrimSpace(string(raw)), " ")
	if !ok || id != bootID() {
		return false
	}
	n, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return false
	}
	age := bootTime() - time.Duration(n)
	return age >= 0 && age < cache
}

// writeTicket records an authentication now, root-only.
func writeTicket(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !fi.IsDir() || !ok || st.Uid != 0 || fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s must be a directory owned by root with mode 0700", dir)
	}
	tmp, err := os.CreateTemp(dir, ".ticket-*")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(tmp, "%s %d\n", bootID(), int64(bootTime()))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// validate is sudo -v: authenticate (when the policy asks for it) and
// refresh the ticket.
func (p *plugin) validate() (int, string) {
	d, err := p.authPolicy()
	if err != nil {
		msg := err.Error()
		say(msgError, "jit: "+msg)
		return 0, msg
	}
	if !d.Authenticate {
		return 1, "" // nothing to prove: jit's policy asks for no password
	}
	if err := p.authenticate(time.Duration(d.AuthCache)); err != nil {
		msg := err.Error()
		say(msgError, "jit: "+msg)
		return 0, msg
	}
	return 1, ""
}

// authPolicy asks jitd (a dry run that counts as no use) whether and for
// how long authentication is required: every decision carries it.
func (p *plugin) authPolicy() (*api.Decision, error) {
	ctx, cancel := p.ctx()
	defer cancel()
	d, err := p.client.Check(ctx, &api.CheckRequest{
		User: p.user.name, Kind: grant.KindSudo, Command: "/usr/bin/true", TTY: p.user.tty, DryRun: true,
	})
	if err != nil {
		return nil, fmt.Errorf("no answer from jitd at %s: %v", p.opts.socket, err)
	}
	return d, nil
}

// invalidate is sudo -k (this terminal's ticket) and sudo -K (all of the
// user's tickets).
func (p *plugin) invalidate(all bool) {
	if all {
		dir := filepath.Join(p.opts.timestampDir, strconv.Itoa(p.user.uid))
		if err := os.RemoveAll(dir); err != nil {
			say(msgError, "jit: could not remove "+dir+": "+err.Error())
		}
		return
	}
	tk, err := p.ticketPath()
	if err != nil {
		return
	}
	if err := os.Remove(tk); err != nil && !errors.Is(err, os.ErrNotExist) {
		say(msgError, "jit: could not remove the ticket: "+err.Error())
	}
}
