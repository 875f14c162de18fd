package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jitpam/jit/jitd/api"
)

// version is the plugin's version (sudo -V).
var version = "dev"

// securePath is where commands are looked up and the PATH commands get:
// never the user's PATH, never the current directory.
const securePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Defaults of the plugin options.
const (
	defaultTimestampDir = "/run/jit/ts"
	defaultPAMService   = "jit-sudo"
)

// options are the plugin's arguments in sudo.conf.
type options struct {
	// socket is jitd's socket (socket=).
	socket string
	// timeout bounds every call to jitd (timeout=, "2s" or seconds).
	timeout time.Duration
	// breakglassGroup's members may run commands when jitd cannot be
	// reached (breakglass_group=); empty: nobody.
	breakglassGroup string
	// timestampDir holds the authentication cache (timestamp_dir=).
	timestampDir string
	// pamService is the PAM service that authenticates (pam_service=).
	pamService string
}

// parseOptions reads sudo.conf's plugin arguments. A bad or unknown
// argument is reported but never fatal: a broken sudo.conf must not lock
// everyone out, and every default fails closed.
func parseOptions(args []string) (options, []string) {
	o := options{
		socket:       api.DefaultSocket,
		timeout:      api.DefaultTimeout,
		timestampDir: defaultTimestampDir,
		pamService:   defaultPAMService,
	}
	var warnings []string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			warnings = append(warnings, fmt.Sprintf("ignoring plugin option %q: want name=value", a))
			continue
		}
		switch k {
		case "socket":
			if !strings.HasPrefix(v, "/") {
				warnings = append(warnings, fmt.Sprintf("ignoring socket=%s: not an absolute path", v))
				continue
			}
			o.socket = v
		case "timeout":
			d, err := parseSeconds(v)
			if err != nil || d <= 0 || d > time.Minute {
				warnings = append(warnings, fmt.Sprintf("ignoring timeout=%s: want a duration such as 2s (at most 1m)", v))
				continue
			}
			o.timeout = d
		case "breakglass_group":
			o.breakglassGroup = v
		case "timestamp_dir":
			if !strings.HasPrefix(v, "/") {
				warnings = append(warnings, fmt.Sprintf("ignoring timestamp_dir=%s: not an absolute path", v))
				continue
			}
			o.timestampDir = v
		case "pam_service":
			if v == "" || strings.ContainsAny(v, "/ ") {
				warnings = append(warnings, fmt.Sprintf("ignoring pam_service=%s", v))
				continue
			}
			o.pamService = v
		default:
			warnings = append(warnings, fmt.Sprintf("ignoring unknown plugin option %q", k))
		}
	}
	return o, warnings
}

// parseSeconds parses "2s", "1m30s" or a plain number of seconds.
func parseSeconds(v string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	return time.ParseDuration(v)
}

// invoker is the user who runs sudo, as sudo reported it and the kernel
// confirmed it.
type invoker struct {
	name  string
	uid   int
	gid   int
	gids  []int // supplementary groups of the sudo process
	home  string
	shell string
	cwd   string
	tty   string
	host  string
	pid   int
	umask int // -1: unknown
}

// plugin is the state of one sudo run.
type plugin struct {
	apiVersion uint
	settings   map[string]string
	userEnv    []string
	opts       options
	user       invoker
	client     *api.Client

	// Set by an allowing check_policy.
	ran       bool
	sessionID string
	command   string // the full command line, for close's audit
	// endsAt is when the grant's end stops the command (sudo's timeout),
	// endsWith the grant; zero when nothing but the command ends it.
	endsAt   time.Time
	endsWith string
	// decision and runas are what jitd allowed; the I/O plugin (io.go)
	// records the session by them.
	decision *api.Decision
	runas    string
}

// openPlugin checks sudo's view of the invoking user against the kernel's.
func openPlugin(apiVersion uint, settings, userInfo, userEnv, args []string) (*plugin, error) {
	opts, warnings := parseOptions(args)
	for _, w := range warnings {
		say(msgError, "jit: sudo.conf: "+w)
	}
	p := &plugin{apiVersion: apiVersion, settings: toMap(settings), userEnv: userEnv, opts: opts}
	ui := toMap(userInfo)
	u, err := identify(ui)
	if err != nil {
		return nil, err
	}
	p.user = u
	p.client = api.NewClientDialer(opts.socket, api.DialBlocking)
	return p, nil
}

// identify builds the invoker from user_info and refuses if it disagrees
// with the real uid of this process or the user database.
func identify(ui map[string]string) (invoker, error) {
	u := invoker{name: ui["user"], cwd: ui["cwd"], tty: ui["tty"], host: ui["host"], umask: -1}
	var err error
	if u.uid, err = strconv.Atoi(ui["uid"]); err != nil {
		return u, fmt.Errorf("sudo passed no valid uid (%q)", ui["uid"])
	}
	if u.gid, err = strconv.Atoi(ui["gid"]); err != nil {
		return u, fmt.Errorf("sudo passed no valid gid (%q)", ui["gid"])
	}
	if real := syscall.Getuid(); real != u.uid {
		return u, fmt.Errorf("sudo says uid %d but the real uid is %d; refusing", u.uid, real)
	}
	pw, err := user.LookupId(strconv.Itoa(u.uid))
	if err != nil {
		return u, fmt.Errorf("uid %d has no entry in the user database: %v", u.uid, err)
	}
	if pw.Username != u.name {
		return u, fmt.Errorf("sudo says user %q but uid %d is %q; refusing", u.name, u.uid, pw.Username)
	}
	u.home = pw.HomeDir
	for _, g := range strings.Split(ui["groups"], ",") {
		if n, err := strconv.Atoi(g); err == nil {
			u.gids = append(u.gids, n)
		}
	}
	if n, err := strconv.Atoi(ui["pid"]); err == nil {
		u.pid = n
	} else {
		u.pid = os.Getpid()
	}
	if v, ok := ui["umask"]; ok {
		if n, err := strconv.ParseInt(v, 8, 32); err == nil && n >= 0 && n <= 0o777 {
			u.umask = int(n)
		}
	}
	return u, nil
}

func toMap(kvs []string) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
	return m
}

// setting reports a boolean sudo setting.
func (p *plugin) flag(name string) bool {
	v, ok := p.settings[name]
	return ok && (v == "true" || v == "1" || v == "on" || v == "yes")
}

// ctx returns a context bounded by the plugin's timeout.
func (p *plugin) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), p.opts.timeout)
}

// unreachable reports whether err means jitd gave no usable answer: down,
// too slow, or answering something that is not an API answer.
func unreachable(err error) bool {
	if api.Unavailable(err) {
		return true
	}
	var e *api.Error
	if errors.As(err, &e) {
		return e.Code == api.CodeInternal
	}
	return true
}

// close ends the session registered by check_policy with the command's
// exit status.
func (p *plugin) close(status, errno int) {
	if !p.ran || p.sessionID == "" {
		return
	}
	end := &api.SessionEnd{}
	switch ws := syscall.WaitStatus(status); {
	case errno != 0:
		end.Reason = "could not execute: " + syscall.Errno(errno).Error()
	case ws.Exited():
		code := ws.ExitStatus()
		end.ExitStatus = &code
	case ws.Signaled():
		code := 128 + int(ws.Signal())
		end.ExitStatus = &code
		end.Reason = "killed by signal " + ws.Signal().String()
		if !p.endsAt.IsZero() && !time.Now().Before(p.endsAt.Add(-time.Second)) {
			end.Reason = "ended with its grant"
			what := "its grant"
			if p.endsWith != "" {
				what = "grant " + p.endsWith
			}
			say(msgError, "jit: "+what+" has ended, and so has the command")
		}
	}
	ctx, cancel := p.ctx()
	defer cancel()
	// Sent, not awaited: sudo exits only after close returns, and jitd's
	// answer would change nothing here. jitd writes the end, exit status
	// included, to its pending file and journald (session.closed); only
	// when it cannot be told does the plugin write the end to journald
	// itself (sudo.end). A jitd that took the request and died before
	// reading it ends the session anyway once it finds sudo gone.
	if err := p.client.SendCloseSession(ctx, p.sessionID, end); err != nil {
		p.auditEnd(end, err)
	}
}
