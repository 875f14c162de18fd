// Command jitctl is jit's command line for everyone: requesters file requests
// and see their grants; approvers grant, approve, deny, revoke and read the
// audit trail. It only speaks to jitd's socket; jitd decides who may do what.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jitpam/jit/jitd/api"
)

const usage = `usage: jitctl [--socket PATH] COMMAND [ARGS]

Requesters:
  request [--for D] [--cmd 'PATH ARGS…']… [--login] [--runas U] [--runas-group G]
        --reason TEXT
  list [--all]                 your grants (approvers: everyone's; --user U)
  rules [--user U]             standing rules that apply to you, open or not
  requests [--all]             your requests (approvers: all pending)
  check USER [--login] [--runas U] [--runas-group G] -- CMD ARGS…
                               what jitd would decide, and why
  status

Approvers:
  grant USER [--for D] [--cmd 'PATH ARGS…']… [--login] [--runas U] [--runas-group G]
        [--window 'Mon-Fri 09:00-17:00']… [--tz ZONE] [--start TIME] --reason TEXT
  approve ID [--for D]         approve a request (prints the grant id)
  deny ID [--reason TEXT]
  revoke ID [--reason TEXT]
  extend ID --for D            move a live grant's end later
  audit [--since D] [--verify]
  sessions [--user U] [--since D] [--open]
  replay SESSION_ID [--speed N] [--raw]   play a recorded sudo session back

Administrators (root):
  setup sudo|pam --enable|--disable   switch sudo / PAM to jit and back

Every listing takes --json. The socket is --socket, else $JITD_SOCKET, else
/run/jitd/jitd.sock.
`

// exit codes
const (
	exitOK     = 0
	exitFail   = 1 // an error, or a denied check
	exitUsage  = 2
	exitDenied = 1
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// cli carries what every subcommand needs.
type cli struct {
	client *api.Client
	stdout io.Writer
	stderr io.Writer
	now    time.Time
}

func run(args []string, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("jitctl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	socket := global.String("socket", "", "jitd socket")
	help := global.Bool("help", false, "")
	global.BoolVar(help, "h", false, "")
	if err := global.Parse(args); err != nil {
		fmt.Fprintf(stderr, "jitctl: %v\n%s", err, usage)
		return exitUsage
	}
	args = global.Args()
	if *help || len(args) == 0 || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 && !*help {
			return exitUsage
		}
		return exitOK
	}
	path := *socket
	if path == "" {
		path = os.Getenv("JITD_SOCKET")
	}
	c := &cli{client: api.NewClient(path), stdout: stdout, stderr: stderr, now: time.Now()}
	// Some commands make several calls (setup, approve, sessions).
	c.client.SetKeepAlive(true)
	defer c.client.Close()

	cmds := map[string]func(context.Context, []string) error{
		"grant": c.grant, "request": c.request, "approve": c.approve, "deny": c.deny,
		"revoke": c.revoke, "extend": c.extend, "list": c.list, "requests": c.requests,
		"status": c.status, "audit": c.audit, "check": c.check, "sessions": c.sessions, "rules": c.rules,
		"setup":  c.setup,
		"replay": c.replay,
	}
	fn, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "jitctl: unknown command %q\n%s", args[0], usage)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := fn(ctx, args[1:])
	var ue usageError
	var denied deniedError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "jitctl %s: %v\n", args[0], err)
		return exitUsage
	case errors.As(err, &denied):
		return exitDenied
	default:
		fmt.Fprintf(stderr, "jitctl %s: %v\n", args[0], describe(err))
		return exitFail
	}
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// deniedError is a check that jitd answered with deny (already printed).
type deniedError struct{}

func (deniedError) Error() string { return "denied" }

// describe turns an API error into one line with a hint where one helps.
func describe(err error) string {
	var e *api.Error
	if !errors.As(err, &e) {
		return err.Error()
	}
	switch e.Code {
	case api.CodeUnavailable:
		return e.Message + " (is jitd running? `systemctl status jitd`; another socket: --socket or JITD_SOCKET)"
	case api.CodeNotApprover:
		return e.Message + " (ask an approver, or file a request: `jitctl request …`)"
	}
	return e.Message
}

// strList is a repeatable string flag.
type strList []string

func (l *strList) String() string     { return strings.Join(*l, ", ") }
func (l *strList) Set(s string) error { *l = append(*l, s); return nil }

// durationFlag accepts api.ParseDuration's forms (30m, 2h, 1d).
type durationFlag struct{ d time.Duration }

func (f *durationFlag) String() string { return f.d.String() }
func (f *durationFlag) Set(s string) error {
	d, err := api.ParseDuration(s)
	if err != nil {
		return err
	}
	f.d = d
	return nil
}

// parse parses flags that may come before, between or after positional
// arguments (`jitctl grant alice --for 30m`), and returns the positionals.
// Everything after a literal "--" is positional and returned as rest.
func parse(fs *flag.FlagSet, args []string) (pos, rest []string, err error) {
	fs.SetOutput(io.Discard)
	for i, a := range args {
		if a == "--" {
			args, rest = args[:i], args[i+1:]
			if rest == nil {
				rest = []string{}
			}
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, usagef("flags: %s", flagNames(fs))
			}
			return nil, nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, rest, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func flagNames(fs *flag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
	return strings.Join(names, " ")
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// parseSince accepts a duration back from now ("1h", "2d") or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := api.ParseDuration(s)
	if err != nil {
		return time.Time{}, usagef("--since %q: give a duration back from now (30m, 2d) or an RFC 3339 time", s)
	}
	return now.Add(-d), nil
}

// parseStart accepts an RFC 3339 time, "YYYY-MM-DD HH:MM" in local time, or
// "+D" (from now).
func parseStart(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if strings.HasPrefix(s, "+") {
		d, err := api.ParseDuration(s[1:])
		if err != nil {
			return time.Time{}, usagef("--start %q: %v", s, err)
		}
		return now.Add(d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("--start %q: give an RFC 3339 time, \"YYYY-MM-DD HH:MM\" (local) or +D from now", s)
}
