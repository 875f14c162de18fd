package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/grant"
)

func (c *cli) grant(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("grant", flag.ContinueOnError)
	var cmds, windows strList
	var dur durationFlag
	fs.Var(&dur, "for", "duration (default: the policy's)")
	fs.Var(&cmds, "cmd", "command pattern, repeatable")
	fs.Var(&windows, "window", "recurring window, repeatable")
	login := fs.Bool("login", false, "a login grant")
	runas := fs.String("runas", "", "target user")
	runasGroup := fs.String("runas-group", "", "group sudo -g may name (sudoers' (user:group)), or ALL")
	tz := fs.String("tz", "", "IANA time zone of the windows")
	start := fs.String("start", "", "start time")
	reason := fs.String("reason", "", "why")
	endAtClose := fs.Bool("end-at-window-close", false, "end running sessions when a window closes")
	asJSON := fs.Bool("json", false, "print the grant as JSON")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("give exactly one user: jitctl grant USER --cmd '…' --for 30m --reason TEXT")
	}
	kind, err := kindOf(*login, cmds)
	if err != nil {
		return err
	}
	st, err := parseStart(*start, c.now)
	if err != nil {
		return err
	}
	g, err := c.client.Grant(ctx, &api.GrantSpec{
		User: pos[0], Kind: kind, RunAs: *runas, RunAsGroup: *runasGroup, Commands: cmds, Windows: windows, Timezone: *tz,
		EndAtWindowClose: *endAtClose, Duration: api.Duration(dur.d), Start: st, Reason: *reason,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(g)
	}
	fmt.Fprintln(c.stdout, g.ID)
	fmt.Fprintf(c.stderr, "granted %s to %s: %s, %s\n", g.ID, g.User, allowsOf(g), c.lifetime(g))
	return nil
}

// kindOf checks that a grant or request names commands or --login, not both.
func kindOf(login bool, cmds []string) (grant.Kind, error) {
	switch {
	case login && len(cmds) > 0:
		return "", usagef("--login and --cmd do not mix: a login grant allows logging in, not commands")
	case login:
		return grant.KindLogin, nil
	case len(cmds) == 0:
		return "", usagef("say what it allows: --cmd 'PATH ARGS…' (repeatable; ALL for anything) or --login")
	}
	return grant.KindSudo, nil
}

func (c *cli) request(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("request", flag.ContinueOnError)
	var cmds, windows strList
	var dur durationFlag
	fs.Var(&dur, "for", "duration")
	fs.Var(&cmds, "cmd", "command pattern, repeatable")
	fs.Var(&windows, "window", "recurring window, repeatable")
	login := fs.Bool("login", false, "ask for a login grant")
	runas := fs.String("runas", "", "target user")
	runasGroup := fs.String("runas-group", "", "group for sudo -g")
	tz := fs.String("tz", "", "IANA time zone of the windows")
	reason := fs.String("reason", "", "why")
	asJSON := fs.Bool("json", false, "print the request as JSON")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected %q: quote the command, e.g. --cmd '/usr/bin/systemctl restart nginx'", strings.Join(pos, " "))
	}
	kind, err := kindOf(*login, cmds)
	if err != nil {
		return err
	}
	r, err := c.client.Request(ctx, &api.RequestSpec{
		Kind: kind, RunAs: *runas, RunAsGroup: *runasGroup, Commands: cmds, Windows: windows, Timezone: *tz,
		Duration: api.Duration(dur.d), Reason: *reason,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(r)
	}
	fmt.Fprintln(c.stdout, r.ID)
	fmt.Fprintf(c.stderr, "request %s filed: %s for %s; an approver runs `jitctl approve %s`\n",
		r.ID, whatOf(r.Kind, r.Commands)+runAsOf(r.Kind, r.RunAs, r.RunAsGroup), shortDuration(r.Duration), r.ID)
	return nil
}

func (c *cli) approve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("approve", flag.ContinueOnError)
	var dur durationFlag
	fs.Var(&dur, "for", "shorten the requested duration")
	reason := fs.String("reason", "", "note")
	asJSON := fs.Bool("json", false, "print the grant as JSON")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("give exactly one request id: jitctl approve r-… [--for D]")
	}
	g, err := c.client.Approve(ctx, pos[0], &api.Approval{Duration: api.Duration(dur.d), Reason: *reason})
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(g)
	}
	fmt.Fprintln(c.stdout, g.ID)
	fmt.Fprintf(c.stderr, "approved %s: grant %s for %s, %s\n", pos[0], g.ID, g.User, c.lifetime(g))
	return nil
}

func (c *cli) deny(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("deny", flag.ContinueOnError)
	reason := fs.String("reason", "", "why")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("give exactly one request id: jitctl deny r-… [--reason TEXT]")
	}
	r, err := c.client.Deny(ctx, pos[0], *reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "denied %s (%s)\n", r.ID, r.User)
	return nil
}

func (c *cli) revoke(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	reason := fs.String("reason", "", "why")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("give exactly one grant id: jitctl revoke g-… [--reason TEXT]")
	}
	g, err := c.client.Revoke(ctx, pos[0], *reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "revoked %s (%s)\n", g.ID, g.User)
	return nil
}

func (c *cli) extend(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("extend", flag.ContinueOnError)
	var dur durationFlag
	fs.Var(&dur, "for", "how much later it ends")
	reason := fs.String("reason", "", "why")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || dur.d == 0 {
		return usagef("jitctl extend g-… --for D")
	}
	g, err := c.client.Extend(ctx, pos[0], dur.d, *reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "extended %s: %s\n", g.ID, c.lifetime(g))
	return nil
}

func (c *cli) list(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	all := fs.Bool("all", false, "include ended grants")
	user := fs.String("user", "", "only this user's grants")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, _, err := parse(fs, args); err != nil {
		return err
	}
	gs, err := c.client.Grants(ctx, api.GrantFilter{User: *user, All: *all})
	if err != nil {
		return err
	}
	if *asJSON {
		if gs == nil {
			gs = []grant.Grant{}
		}
		return c.printJSON(gs)
	}
	if len(gs) == 0 {
		fmt.Fprintln(c.stdout, "no grants")
		return nil
	}
	t := newTable(c.stdout, "ID", "USER", "KIND", "ALLOWS", "STATE", "WHEN", "BY", "REASON")
	for _, g := range gs {
		t.row(g.ID, g.User, string(g.Kind), allowsOf(&g), string(g.State), c.lifetime(&g), g.GrantedBy, g.Reason)
	}
	return t.flush()
}

func (c *cli) requests(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("requests", flag.ContinueOnError)
	all := fs.Bool("all", false, "include decided requests")
	user := fs.String("user", "", "only this user's requests")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, _, err := parse(fs, args); err != nil {
		return err
	}
	rs, err := c.client.Requests(ctx, *all, *user)
	if err != nil {
		return err
	}
	if *asJSON {
		if rs == nil {
			rs = []grant.Request{}
		}
		return c.printJSON(rs)
	}
	if len(rs) == 0 {
		fmt.Fprintln(c.stdout, "no requests")
		return nil
	}
	t := newTable(c.stdout, "ID", "USER", "ALLOWS", "FOR", "STATE", "FILED", "REASON")
	for _, r := range rs {
		state := string(r.State)
		if r.DecidedBy != "" {
			state += " by " + r.DecidedBy
		}
		t.row(r.ID, r.User, whatOf(r.Kind, r.Commands)+runAsOf(r.Kind, r.RunAs, r.RunAsGroup), shortDuration(r.Duration), state, ago(c.now, r.CreatedAt), r.Reason)
	}
	return t.flush()
}

func (c *cli) status(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "JSON output")
	if _, _, err := parse(fs, args); err != nil {
		return err
	}
	s, err := c.client.Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(s)
	}
	role := "requester"
	if s.You.Approver {
		role = "approver"
	}
	fmt.Fprintf(c.stdout, "jitd %s, up %s, socket %s\n", s.Version, shortDuration(c.now.Sub(s.StartedAt)), s.Socket)
	fmt.Fprintf(c.stdout, "policy %s (loaded %s), state %s\n", s.PolicyFile, ago(c.now, s.PolicyLoadedAt), s.StateDir)
	fmt.Fprintf(c.stdout, "%d active grants, %d pending requests, %d open sessions", s.ActiveGrants, s.PendingRequests, s.OpenSessions)
	if !s.NextExpiry.IsZero() {
		fmt.Fprintf(c.stdout, ", next expiry %s", in(c.now, s.NextExpiry))
	}
	fmt.Fprintf(c.stdout, "\nyou are %s (uid %d), %s\n", s.You.User, s.You.UID, role)
	return nil
}

func (c *cli) audit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	since := fs.String("since", "", "only records since D ago or an RFC 3339 time")
	verify := fs.Bool("verify", false, "verify the hash chain")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, _, err := parse(fs, args); err != nil {
		return err
	}
	if *verify {
		v, err := c.client.VerifyAudit(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			if err := c.printJSON(v); err != nil {
				return err
			}
		}
		if !v.OK {
			return fmt.Errorf("audit chain BROKEN after %d records: %s", v.Records, v.Problem)
		}
		if !*asJSON {
			fmt.Fprintf(c.stdout, "audit chain intact: %d records verified\n", v.Records)
		}
		return nil
	}
	t0, err := parseSince(*since, c.now)
	if err != nil {
		return err
	}
	rs, err := c.client.Audit(ctx, t0)
	if err != nil {
		return err
	}
	if *asJSON {
		if rs == nil {
			rs = []api.AuditRecord{}
		}
		return c.printJSON(rs)
	}
	t := newTable(c.stdout, "SEQ", "TIME", "EVENT", "ACTOR", "USER", "MESSAGE")
	for _, r := range rs {
		t.row(fmt.Sprint(r.Seq), r.Time.Local().Format("2006-01-02 15:04:05"), r.Event, r.Actor, r.User, r.Message)
	}
	return t.flush()
}

func (c *cli) check(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	login := fs.Bool("login", false, "a login decision")
	service := fs.String("service", "sshd", "PAM service, with --login")
	runas := fs.String("runas", "", "target user")
	runasGroup := fs.String("runas-group", "", "target group, as sudo -g")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("jitctl check USER -- /path/to/command ARGS…  or  jitctl check USER --login")
	}
	req := &api.CheckRequest{User: pos[0], RunAs: *runas, RunAsGroup: *runasGroup, DryRun: true}
	if *runasGroup != "" && *runas == "" {
		// As sudo -g without -u: the user runs it with that group.
		req.RunAs = pos[0]
	}
	switch {
	case *login:
		if len(rest) > 0 {
			return usagef("--login takes no command")
		}
		req.Kind, req.Service = grant.KindLogin, *service
	case len(rest) == 0:
		return usagef("give the command after --: jitctl check USER -- /usr/bin/systemctl restart nginx")
	default:
		if !strings.HasPrefix(rest[0], "/") {
			return usagef("command %q must be an absolute path (as sudo resolves it), e.g. /usr/bin/%s", rest[0], rest[0])
		}
		req.Kind, req.Command, req.Args = grant.KindSudo, rest[0], rest[1:]
	}
	d, err := c.client.Check(ctx, req)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := c.printJSON(d); err != nil {
			return err
		}
	} else if d.Allow {
		fmt.Fprintf(c.stdout, "allow: %s\n", d.Reason)
	} else {
		fmt.Fprintf(c.stdout, "deny: %s\n", d.Reason)
		if d.Hint != "" {
			fmt.Fprintf(c.stdout, "to ask for it: %s\n", d.Hint)
		}
	}
	if !d.Allow {
		return deniedError{}
	}
	return nil
}

func (c *cli) sessions(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sessions", flag.ContinueOnError)
	user := fs.String("user", "", "only this user's sessions")
	since := fs.String("since", "", "only sessions since D ago or an RFC 3339 time")
	open := fs.Bool("open", false, "only open sessions")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, _, err := parse(fs, args); err != nil {
		return err
	}
	t0, err := parseSince(*since, c.now)
	if err != nil {
		return err
	}
	ss, err := c.client.Sessions(ctx, api.SessionFilter{User: *user, Since: t0, Open: *open})
	if err != nil {
		return err
	}
	// Recording verdicts come from the journal (see replay.go).
	recs, recOK := recordingStates(ctx, ss)
	if *asJSON {
		return c.printJSON(sessionRows(ss, recs))
	}
	if len(ss) == 0 {
		fmt.Fprintln(c.stdout, "no sessions")
		return nil
	}
	t := newTable(c.stdout, "ID", "USER", "KIND", "WHAT", "GRANT", "STARTED", "STATE", "RECORDING")
	for _, s := range ss {
		what := s.Command
		if s.Kind == grant.KindLogin {
			what = s.Service
			if s.RHost != "" {
				what += " from " + s.RHost
			}
		}
		state := string(s.State)
		if s.ExitStatus != nil {
			state += fmt.Sprintf(" (exit %d)", *s.ExitStatus)
		}
		rec := orDash(recs[s.ID])
		if !recOK && s.Kind == grant.KindSudo {
			rec = "?"
		}
		t.row(s.ID, s.User, string(s.Kind), what, orDash(s.GrantID), ago(c.now, s.StartedAt), state, rec)
	}
	if !recOK {
		fmt.Fprintln(c.stderr, "jitctl sessions: RECORDING is ? because "+journalGroupsHint)
	}
	return t.flush()
}
