package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/grant"
)

// list is sudo -l: without a command, the user's live grants with their
// remaining time and the standing rules of jitd's policy that apply to
// them, with whether each is open now; with one, whether it would be
// allowed now (a dry run that jitd does not count as a use). -U USER lists
// another user's, root only.
func (p *plugin) list(argv []string, verbose bool, other string) (int, string) {
	subject := p.user.name
	if other != "" && other != subject {
		if p.user.uid != 0 {
			msg := "only root may list another user's grants (jitctl list --user " + other + " for approvers)"
			say(msgError, "jit: "+msg)
			return 0, msg
		}
		subject = other
	}
	if len(argv) > 0 {
		return p.listCommand(subject, argv)
	}
	ctx, cancel := p.ctx()
	gs, err := p.client.Grants(ctx, api.GrantFilter{User: subject})
	cancel()
	if err != nil {
		msg := fmt.Sprintf("no answer from jitd at %s: %v", p.opts.socket, err)
		say(msgError, "jit: "+msg)
		return -1, msg
	}
	// Rules are a second question; without an answer the grants still
	// list, with a line that says the rules are unknown.
	ctx, cancel = p.ctx()
	rules, rulesErr := p.client.Rules(ctx, subject)
	cancel()

	now := time.Now()
	var live []grant.Grant
	for _, g := range gs {
		if g.Kind == grant.KindSudo && g.State == grant.StateActive && now.Before(g.ExpiresAt) {
			live = append(live, g)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].ExpiresAt.Before(live[j].ExpiresAt) })
	host := p.user.host
	if host == "" {
		host = "this host"
	}
	var b strings.Builder
	if len(live) == 0 {
		fmt.Fprintf(&b, "User %s has no live jit grants on %s.\n", subject, host)
		b.WriteString("Ask for one: jitctl request --cmd 'COMMAND' --for 30m --reason '…'\n")
	} else {
		fmt.Fprintf(&b, "User %s may run the following commands on %s through jit grants:\n", subject, host)
		for _, g := range live {
			fmt.Fprintf(&b, "\n    grant %s, %s\n", g.ID, grantTime(&g, now))
			if g.GrantedBy != "" || g.Reason != "" {
				fmt.Fprintf(&b, "        granted by %s: %s\n", g.GrantedBy, clip(g.Reason, 120))
			}
			if len(g.Windows) > 0 {
				tz := g.Timezone
				if tz == "" {
					tz = "UTC"
				}
				fmt.Fprintf(&b, "        only during %s (%s)\n", strings.Join(g.Windows, ", "), tz)
			}
			spec := runAsSpec([]string{orRoot(g.RunAs)}, g.RunAsGroup)
			for _, c := range g.Commands {
				fmt.Fprintf(&b, "        %s %s\n", spec, c)
			}
		}
	}
	b.WriteString("\n")
	switch {
	case rulesErr != nil:
		fmt.Fprintf(&b, "Standing rules of jitd's policy are unknown (%v); check one command with `sudo -l COMMAND`.\n", rulesErr)
	case len(rules.Rules) == 0:
		fmt.Fprintf(&b, "No standing rules of jitd's policy apply to %s.\n", subject)
	default:
		fmt.Fprintf(&b, "Standing rules of jitd's policy let %s run, without a grant:\n", subject)
		for _, r := range rules.Rules {
			fmt.Fprintf(&b, "\n    rule %q (%s): %s\n", r.Name, viaText(r.Via), ruleState(&r, now))
			if len(r.Windows) > 0 {
				fmt.Fprintf(&b, "        only during %s\n", r.Schedule)
			}
			spec := runAsSpec(r.RunAs, strings.Join(r.RunAsGroups, ", "))
			for _, c := range r.Commands {
				fmt.Fprintf(&b, "        %s %s\n", spec, c)
			}
		}
	}
	b.WriteString("\nCheck one command with `sudo -l COMMAND`.")
	say(msgInfo, sanitizeBlock(b.String()))
	return 1, ""
}

// grantTime says when a grant can be used.
func grantTime(g *grant.Grant, now time.Time) string {
	if now.Before(g.NotBefore) {
		return "starts in " + human(g.NotBefore.Sub(now)) + ", expires in " + human(g.ExpiresAt.Sub(now))
	}
	return "expires in " + human(g.ExpiresAt.Sub(now)) + " (at " + g.ExpiresAt.Local().Format("15:04:05") + ")"
}

// runAsSpec is sudoers' "(root)" or "(root : adm)", which is how sudo -l
// has always shown as whom a command runs.
func runAsSpec(users []string, group string) string {
	s := "(" + strings.Join(users, ", ")
	if group != "" {
		s += " : " + group
	}
	return s + ")"
}

func orRoot(runas string) string {
	if runas == "" {
		return grant.DefaultRunAs
	}
	return runas
}

// viaText says why a rule applies to the user.
func viaText(via string) string {
	switch {
	case via == "*" || via == "ALL":
		return "applies to everyone"
	case strings.HasPrefix(via, "%"):
		return "via group " + via[1:]
	}
	return "names " + via
}

// ruleState says whether a rule allows now, and until or from when.
func ruleState(r *api.RuleStatus, now time.Time) string {
	switch {
	case r.Open && r.Closes.IsZero():
		return "open now, no time limit"
	case r.Open:
		return "open now, closes in " + human(r.Closes.Sub(now)) + " (" + ruleClock(r, r.Closes, now) + ")"
	case r.Opens.IsZero():
		return "closed, its window never opens"
	}
	return "closed now, opens in " + human(r.Opens.Sub(now)) + " (" + ruleClock(r, r.Opens, now) + ")"
}

// ruleClock renders t as wall-clock time in the rule's own zone, with the
// weekday unless it is within the day. jitd sends t with the zone's offset,
// so the zone is named rather than loaded: time.LoadLocation would read
// $ZONEINFO, which comes from the user, and this code runs as root.
func ruleClock(r *api.RuleStatus, t, now time.Time) string {
	zone := r.Timezone
	if zone == "" {
		zone = "UTC"
	}
	if t.Sub(now) < 20*time.Hour {
		return "at " + t.Format("15:04") + " " + zone
	}
	return t.Format("Mon 15:04") + " " + zone
}

// listCommand is sudo -l COMMAND: print the resolved command line if it
// would be allowed now, else say why not.
func (p *plugin) listCommand(subject string, argv []string) (int, string) {
	t, err := p.target()
	if err != nil {
		say(msgError, "jit: "+err.Error())
		return 0, err.Error()
	}
	resolved, err := resolveCommand(argv[0], p.user.cwd)
	if err != nil {
		msg := err.Error()
		if err == errNotFound {
			msg = argv[0] + ": command not found"
		}
		say(msgError, "jit: "+msg)
		return 0, msg
	}
	ctx, cancel := p.ctx()
	d, err := p.client.Check(ctx, &api.CheckRequest{
		User: subject, Kind: grant.KindSudo, RunAs: t.name, RunAsGroup: t.group,
		Command: resolved, Args: argv[1:], TTY: p.user.tty, Cwd: p.user.cwd, DryRun: true,
	})
	cancel()
	if err != nil {
		msg := fmt.Sprintf("no answer from jitd at %s: %v", p.opts.socket, err)
		say(msgError, "jit: "+msg)
		return -1, msg
	}
	if !d.Allow {
		msg := "denied: " + d.Reason
		if d.Hint != "" {
			msg += "; ask for it: " + d.Hint
		}
		say(msgError, "jit: "+sanitize(msg))
		return 0, msg
	}
	say(msgInfo, sanitize(commandLine(resolved, argv[1:])))
	say(msgError, "jit: "+sanitize(allowLine(d, time.Now())))
	return 1, ""
}

// sanitizeBlock is sanitize for multi-line output.
func sanitizeBlock(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = sanitize(l)
	}
	return strings.Join(lines, "\n")
}
