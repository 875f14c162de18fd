package main

import (
	"fmt"
	"math"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/grant"
)

// checkResult is what check_policy hands back to sudo.
type checkResult struct {
	commandInfo []string
	argv        []string
	env         []string
	errstr      string
}

// attempt is what the user asked for, as far as it is known.
type attempt struct {
	command string // resolved path; what was typed when it did not resolve
	args    []string
	runas   string
	group   string
	shell   bool
}

func (a *attempt) line() string { return commandLine(a.command, a.args) }

// refuse tells the user why in one line, audits the reject, and makes
// check_policy return 0 (sudo then exits 1).
func (p *plugin) refuse(a *attempt, code, why string, d *api.Decision) (*checkResult, int) {
	say(msgError, "jit: "+sanitize(why))
	p.auditReject(a, code, why, d)
	return &checkResult{errstr: why}, 0
}

// unsupported refuses options jit does not implement, naming them.
var unsupported = []struct{ setting, what string }{
	{"preserve_environment", "-E/--preserve-env is not supported by jit: the command's environment is built from an allow-list"},
	{"preserve_groups", "-P/--preserve-groups is not supported by jit: the command gets the target user's groups"},
	{"cmnd_chroot", "-R/--chroot is not supported by jit"},
	{"cmnd_cwd", "-D/--chdir is not supported by jit: the command runs in your current directory"},
	{"closefrom", "-C/--close-from is not supported by jit"},
	{"selinux_role", "-r/--role is not supported by jit"},
	{"selinux_type", "-t/--type is not supported by jit"},
	{"login_class", "-c/--login-class is not supported by jit"},
	{"remote_host", "-h/--host is not supported by jit"},
}

func (p *plugin) checkPolicy(argv, envAdd []string) (*checkResult, int) {
	a := &attempt{runas: grant.DefaultRunAs}
	if len(argv) > 0 {
		a.command, a.args = argv[0], argv[1:]
	}
	if p.flag("implied_shell") {
		// Plain `sudo` with no command: show sudo's usage, as sudoers does.
		return nil, -2
	}
	if len(argv) == 0 {
		return nil, -2
	}
	if p.flag("sudoedit") {
		return p.refuse(a, "unsupported", "sudoedit (sudo -e) is not supported by jit; ask for a grant that names your editor and the file instead", nil)
	}
	if backgroundRequested(sudoArgs()) {
		return p.refuse(a, "unsupported", "sudo -b (background) is not supported: jit cannot follow a command once sudo forks away from it; run `sudo CMD &` from your shell instead", nil)
	}
	for _, u := range unsupported {
		if _, ok := p.settings[u.setting]; ok && (p.settings[u.setting] != "false") {
			return p.refuse(a, "unsupported", "sudo "+u.what, nil)
		}
	}
	var userTimeout time.Duration
	if v, ok := p.settings["timeout"]; ok {
		d, err := parseSeconds(v)
		if err != nil || d <= 0 {
			return p.refuse(a, "usage", fmt.Sprintf("-T %s: want a timeout such as 90, 90s or 5m", v), nil)
		}
		userTimeout = d
	}

	t, err := p.target()
	if err != nil {
		return p.refuse(a, "runas", err.Error(), nil)
	}
	a.runas, a.group = t.name, t.group

	argvOut := append([]string(nil), argv...)
	cwd := p.user.cwd
	switch {
	case p.flag("login_shell"):
		// -i: the target user's login shell, in their home, as a login
		// shell ("-bash"); sudo passed "-c CMD" when a command was given.
		a.shell = true
		shell := t.shell
		if shell == "" {
			shell = "/bin/sh"
		}
		a.command = shell
		argvOut[0] = "-" + filepath.Base(shell)
		cwd = t.home
	case p.flag("run_shell"):
		// -s: sudo put the shell to run ($SHELL or the user's) in argv[0].
		a.shell = true
	}
	resolved, err := resolveCommand(a.command, p.user.cwd)
	if err != nil {
		if err == errNotFound {
			return p.refuse(a, "not_found", fmt.Sprintf("%s: command not found (looked in %s)", a.command, securePath), nil)
		}
		return p.refuse(a, "not_found", err.Error(), nil)
	}
	a.command = resolved

	// The session is registered in the same call when no password is
	// needed first: sudo's pid, so that jitd can end what runs under it.
	session := &api.SessionSpec{RunAs: t.name, Command: a.line(), TTY: p.user.tty, PID: os.Getpid()}
	req := &api.CheckRequest{
		User: p.user.name, Kind: grant.KindSudo, RunAs: t.name, RunAsGroup: t.group,
		Command: resolved, Args: a.args, Shell: a.shell, TTY: p.user.tty, Cwd: p.user.cwd,
		Session: session,
	}
	ctx, cancel := p.ctx()
	d, err := p.client.Check(ctx, req)
	cancel()
	breakglass := false
	if err != nil {
		if !unreachable(err) {
			return p.refuse(a, "jitd_error", fmt.Sprintf("jitd at %s refused to decide: %v", p.opts.socket, err), nil)
		}
		if !p.inBreakglassGroup() {
			return p.refuse(a, "unavailable", fmt.Sprintf("no decision from jitd (%v); nothing runs without jitd's answer: check `systemctl status jitd`", err), nil)
		}
		breakglass = true
		d = &api.Decision{Allow: true, Code: "breakglass", BreakGlass: true,
			Reason: fmt.Sprintf("break-glass: jitd unreachable (%v) and %s is in group %s", err, p.user.name, p.opts.breakglassGroup)}
	}
	if !d.Allow {
		why := "denied: " + d.Reason
		hint := d.Hint
		if a.shell && hint != "" {
			// jitd's hint would repeat sudo's escaped "-c" line; a shell
			// is granted by its path.
			hint = "jitctl request --cmd " + resolved + " --for 30m --reason '…'"
		}
		if hint != "" {
			why += "; ask for it: " + hint
		}
		return p.refuse(a, d.Code, why, d)
	}
	if d.Authenticate && !breakglass {
		if err := p.authenticate(time.Duration(d.AuthCache)); err != nil {
			return p.refuse(a, "auth", err.Error(), d)
		}
	}

	env, err := buildEnv(p.userEnv, envAdd, t, p.user, a.line())
	if err != nil {
		return p.refuse(a, "env", err.Error(), d)
	}
	timeout := time.Duration(d.Remaining)
	if userTimeout > 0 && (timeout <= 0 || userTimeout < timeout) {
		timeout = userTimeout
	}
	info := p.commandInfo(resolved, t, d.RunAsGroups, cwd, timeout)

	p.sessionID = d.SessionID
	if !breakglass && p.sessionID == "" {
		// jitd registers the session with an allow unless it wanted a
		// password first.
		session.Kind, session.User, session.GrantID, session.Rule = grant.KindSudo, p.user.name, d.GrantID, d.Rule
		ctx, cancel := p.ctx()
		sess, err := p.client.OpenSession(ctx, session)
		cancel()
		if err != nil {
			return p.refuse(a, "session", fmt.Sprintf("jitd allowed this but could not register the session (%v); nothing runs that jitd cannot end", err), d)
		}
		p.sessionID = sess.ID
	}
	p.ran, p.command = true, a.line()
	p.decision, p.runas = d, t.name
	if timeout > 0 && (userTimeout <= 0 || userTimeout > time.Duration(d.Remaining)) {
		p.endsAt = time.Now().Add(timeout)
		p.endsWith = d.GrantID
	}
	// No connection (and no goroutine serving one) stays open while the
	// command runs; close() dials afresh.
	p.client.Close()
	p.auditAccept(a, d)
	say(msgError, "jit: "+sanitize(allowLine(d, time.Now())))
	return &checkResult{commandInfo: info, argv: argvOut, env: env}, 1
}

// commandInfo builds sudo's command_info. listed are the target's group
// IDs as jitd listed them ("" if it did not).
func (p *plugin) commandInfo(command string, t target, listed, cwd string, timeout time.Duration) []string {
	// The user's umask, but never looser than 022, like sudoers.
	umask := 0o022
	if p.user.umask >= 0 {
		umask |= p.user.umask
	}
	supplementary, ok := parseGIDs(listed)
	if !ok && t.groups != nil {
		supplementary = t.groups()
	}
	gids := make([]string, 0, len(supplementary)+1)
	seen := map[int]bool{}
	for _, g := range append([]int{t.gid}, supplementary...) {
		if !seen[g] {
			seen[g] = true
			gids = append(gids, strconv.Itoa(g))
		}
	}
	info := []string{
		"command=" + command,
		"runas_user=" + t.name,
		"runas_uid=" + strconv.Itoa(t.uid),
		"runas_euid=" + strconv.Itoa(t.uid),
		"runas_gid=" + strconv.Itoa(t.gid),
		"runas_egid=" + strconv.Itoa(t.gid),
		"runas_groups=" + strings.Join(gids, ","),
		"umask=0" + strconv.FormatInt(int64(umask), 8),
		"closefrom=3",
	}
	if t.group != "" {
		info = append(info, "runas_group="+t.group)
	}
	if cwd != "" {
		// Like sudo without -D: a directory the target cannot enter is a
		// warning, not a failure.
		info = append(info, "cwd="+cwd, "cwd_optional=true")
	}
	if timeout > 0 {
		// sudo kills the command when the grant ends (jitd also ends it).
		secs := int64(math.Ceil(timeout.Seconds()))
		info = append(info, "timeout="+strconv.FormatInt(secs, 10))
	}
	if p.user.tty != "" {
		// A root command on the user's terminal could push input into it
		// (TIOCSTI); a pty of its own cannot, as with sudoers' use_pty.
		info = append(info, "use_pty=true")
	}
	return info
}

// target resolves -u and -g. With -g alone the command runs as the
// invoking user with that group, as in sudoers.
func (p *plugin) target() (target, error) {
	var t target
	name, hasUser := p.settings["runas_user"]
	group, hasGroup := p.settings["runas_group"]
	var pw *user.User
	var err error
	switch {
	case hasUser:
		pw, err = lookupUser(name)
	case hasGroup:
		pw, err = user.LookupId(strconv.Itoa(p.user.uid))
	default:
		pw, err = user.Lookup(grant.DefaultRunAs)
	}
	if err != nil {
		return t, err
	}
	t.name, t.home = pw.Username, pw.HomeDir
	t.uid, _ = strconv.Atoi(pw.Uid)
	t.gid, _ = strconv.Atoi(pw.Gid)
	t.shell = loginShell(pw.Username)
	t.groups = func() []int { return groupIDs(pw) }
	if hasGroup {
		g, err := lookupGroup(group)
		if err != nil {
			return t, err
		}
		t.group = g.Name
		t.gid, _ = strconv.Atoi(g.Gid)
	}
	return t, nil
}

// parseGIDs parses jitd's comma-separated group IDs; false if there are
// none or any is not one.
func parseGIDs(s string) ([]int, bool) {
	if s == "" {
		return nil, false
	}
	var gids []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, false
		}
		gids = append(gids, int(n))
	}
	return gids, true
}

// groupIDs lists u's supplementary groups; none if the lookup fails, as
// for a user the group database does not know.
func groupIDs(u *user.User) []int {
	ids, err := u.GroupIds()
	if err != nil {
		return nil
	}
	gids := make([]int, 0, len(ids))
	for _, id := range ids {
		if n, err := strconv.Atoi(id); err == nil {
			gids = append(gids, n)
		}
	}
	return gids
}

// lookupUser accepts a name or sudo's "#uid".
func lookupUser(s string) (*user.User, error) {
	var u *user.User
	var err error
	if id, ok := strings.CutPrefix(s, "#"); ok {
		u, err = user.LookupId(id)
	} else {
		u, err = user.Lookup(s)
	}
	if err != nil {
		return nil, fmt.Errorf("unknown user %s", s)
	}
	return u, nil
}

// lookupGroup accepts a name or sudo's "#gid".
func lookupGroup(s string) (*user.Group, error) {
	var g *user.Group
	var err error
	if id, ok := strings.CutPrefix(s, "#"); ok {
		g, err = user.LookupGroupId(id)
	} else {
		g, err = user.LookupGroup(s)
	}
	if err != nil {
		return nil, fmt.Errorf("unknown group %s", s)
	}
	return g, nil
}

// inBreakglassGroup reports whether the invoking user is in the break-glass
// group, by the sudo process's own groups or the group database.
func (p *plugin) inBreakglassGroup() bool {
	if p.opts.breakglassGroup == "" {
		return false
	}
	g, err := lookupGroup(p.opts.breakglassGroup)
	if err != nil {
		return false
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return false
	}
	if p.user.gid == gid {
		return true
	}
	for _, id := range p.user.gids {
		if id == gid {
			return true
		}
	}
	if u, err := user.LookupId(strconv.Itoa(p.user.uid)); err == nil {
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				if id == g.Gid {
					return true
				}
			}
		}
	}
	return false
}

// allowLine is the one line an allowed command prints on stderr.
func allowLine(d *api.Decision, now time.Time) string {
	var b strings.Builder
	switch {
	case d.BreakGlass && d.GrantID == "":
		b.WriteString("BREAK-GLASS: ")
		b.WriteString(d.Reason)
		b.WriteString("; this use is audited")
		return b.String()
	case d.GrantID != "":
		b.WriteString("grant ")
		b.WriteString(d.GrantID)
		if d.GrantedBy != "" {
			b.WriteString(" by ")
			b.WriteString(d.GrantedBy)
		}
		if d.GrantReason != "" {
			b.WriteString(" (")
			b.WriteString(clip(d.GrantReason, 80))
			b.WriteString(")")
		}
	case d.Rule != "":
		b.WriteString("standing rule ")
		b.WriteString(strconv.Quote(d.Rule))
	default:
		b.WriteString(d.Reason)
	}
	switch {
	case !d.ExpiresAt.IsZero() && d.Remaining > 0 && now.Add(time.Duration(d.Remaining)).Before(d.ExpiresAt.Add(-time.Second)):
		b.WriteString(", usable for ")
		b.WriteString(human(time.Duration(d.Remaining)))
		b.WriteString(" (its window closes), expires in ")
		b.WriteString(human(d.ExpiresAt.Sub(now)))
	case !d.ExpiresAt.IsZero():
		b.WriteString(", expires in ")
		b.WriteString(human(d.ExpiresAt.Sub(now)))
	case d.Remaining > 0:
		b.WriteString(", window closes in ")
		b.WriteString(human(time.Duration(d.Remaining)))
	}
	return b.String()
}

// human renders a duration the way people say it: 27m, 1h5m, 45s.
func human(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Round(time.Second)/time.Second)) + "s"
	case d < time.Hour:
		d = d.Round(time.Minute)
		return strconv.Itoa(int(d/time.Minute)) + "m"
	default:
		d = d.Round(time.Minute)
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if h >= 48 {
			return strconv.Itoa(h/24) + "d" + strconv.Itoa(h%24) + "h"
		}
		if m == 0 {
			return strconv.Itoa(h) + "h"
		}
		return strconv.Itoa(h) + "h" + strconv.Itoa(m) + "m"
	}
}

// commandLine renders a command for messages, audit and SUDO_COMMAND;
// arguments with spaces or unusual characters are quoted.
func commandLine(path string, args []string) string {
	var b strings.Builder
	b.WriteString(path)
	for _, a := range args {
		b.WriteByte(' ')
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\") || strings.IndexFunc(a, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			b.WriteString(strconv.Quote(a))
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}

// sanitize keeps control characters from the user's arguments out of
// terminal output.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
