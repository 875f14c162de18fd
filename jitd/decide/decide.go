// Package decide is jit's decision function: given a request (who wants to
// run what as whom, or to log in), the compiled set of grants and standing
// rules, and the time, it says allow or deny and why. It does no I/O and
// never reads the clock, so tests, fuzzers and benchmarks drive it directly.
//
// # Precedence
//
// An active grant that covers the request and is usable now always wins over
// standing rules; among several, the one that stays usable longest (expiry
// or window close, whichever is first) is chosen, ties going to the lower id.
// Without one, a covering standing rule whose window is open allows; an
// unlimited rule beats one whose window closes, otherwise the longest wins.
//
// A deny is explained by the single most helpful grant or rule, in this
// order (a grant before a rule of the same rank):
//
//  1. covers the request but is not usable yet: outside its window with
//     a next opening before it expires, or not valid before a time.
//     Soonest usable first; the user learns when to come back.
//  2. covers the request but has ended: revoked or expired (or its window
//     never opens again before expiry). Most recently ended first: that is
//     the grant the user is thinking of.
//  3. covers the command but not the target user or group (runas).
//  4. the request is a shell (sudo -s/-i or a shell binary) and the grant
//     has neither ALL nor that shell (shell_needs_all).
//  5. covers other commands only (other_command): the reason lists what the
//     user's live grants (or, without any, rules) do allow.
//  6. a live grant that cannot be compiled (invalid_grant).
//  7. nothing (no_grant).
//
// Ranks 3–6 consider only grants that have not ended (an expired grant
// for another command explains nothing); within a rank the grant that
// expires last is preferred.
package decide

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jitpam/jit/jitd/cmdmatch"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/jitd/window"
)

// Request is one question to the decision core. The caller has resolved the
// command against a secure PATH; Command is an absolute, clean path.
type Request struct {
	User   string
	Groups []string
	Kind   grant.Kind
	// RunAs is the target user (empty means root). RunAsGroup is the target
	// group of sudo -g; empty means the target user's own. sudo -g alone
	// targets the invoking user, so RunAs is then User.
	RunAs      string
	RunAsGroup string
	// RunAsUserGroups are the target user's groups, primary included. As in
	// sudoers, -g may name one of them whatever the grant says: it gives
	// nothing the target user does not have. Only read when RunAsGroup is
	// set; when the target is User itself, Groups stands in if it is nil.
	RunAsUserGroups []string
	// Command and Args are the program and its arguments (without argv[0]).
	// For sudo -s/-i, Command is the shell that will run.
	Command string
	Args    []string
	// Shell marks sudo -s and sudo -i, which need ALL or an explicit shell
	// grant; a Command that is itself a shell needs the same.
	Shell bool
	// Service is the PAM service of a login request; it only appears in
	// reasons, since which services are gated is policy, not grant, business.
	Service string
}

// Code is a stable machine-readable decision code.
type Code string

const (
	CodeAllow         Code = "allow"
	CodeNoGrant       Code = "no_grant"
	CodeOtherCommand  Code = "other_command"
	CodeOutsideWindow Code = "outside_window"
	CodeExpired       Code = "expired"
	CodeRevoked       Code = "revoked"
	CodeNotYet        Code = "not_yet"
	CodeRunAs         Code = "runas"
	CodeShellNeedsAll Code = "shell_needs_all"
	// CodeInvalidGrant: the best candidate grant is stored but cannot be
	// compiled (bad pattern, window or zone); see Set's error.
	CodeInvalidGrant Code = "invalid_grant"
	// CodeBadRequest: the request itself is malformed (no user, unknown
	// kind, command path not absolute and clean).
	CodeBadRequest Code = "bad_request"
)

// Decision is the answer. On allow, GrantID or RuleName says what allowed
// it; on deny, they name the grant or rule that best explains the deny, if
// any.
type Decision struct {
	Allow  bool
	Code   Code
	Reason string // one human sentence

	GrantID     string
	RuleName    string
	GrantedBy   string
	GrantReason string
	BreakGlass  bool
	ExpiresAt   time.Time // the grant's expiry; zero for rules
	// WindowCloses is when the current window closes, if it does before
	// the grant expires; zero otherwise.
	WindowCloses     time.Time
	EndAtWindowClose bool
	// Remaining is how long the allowing grant stays usable: until it
	// expires or its window closes, whichever is first. For a rule it is
	// the time until its window closes, and zero means unlimited.
	Remaining time.Duration
	// NextOpening is, on an outside_window or not_yet deny, when the
	// explaining grant or rule becomes usable.
	NextOpening time.Time
}

// timing is a grant's time-dependent status at one instant.
type timing struct {
	code      Code          // "" when usable now
	at        time.Time     // usable from (rank 1) or ended at (rank 2)
	later     bool          // not usable now, but will be before expiry
	remaining time.Duration // when usable
	closes    time.Time     // window close before expiry, when usable
}

// ended reports whether the grant is over for good (revoked, expired, or
// unusable), as opposed to not usable right now.
func (t timing) ended() bool {
	return t.code == CodeRevoked || t.code == CodeExpired || t.code == CodeInvalidGrant
}

// timing evaluates the grant at now, windows included.
func (e *grantEntry) timing(now time.Time) timing {
	t := e.lifetime(now)
	if t.code == "" {
		t = e.window(now, true)
	}
	return t
}

// lifetime checks state, expiry and not-before; it leaves windows, the
// costly part, to window.
func (e *grantEntry) lifetime(now time.Time) timing {
	g := &e.g
	switch {
	case g.State == grant.StateRevoked:
		return timing{code: CodeRevoked, at: endedAt(g)}
	case g.State == grant.StateExpired || (!g.ExpiresAt.IsZero() && !now.Before(g.ExpiresAt)):
		return timing{code: CodeExpired, at: endedAt(g)}
	case e.err != nil || g.State != grant.StateActive:
		return timing{code: CodeInvalidGrant}
	case now.Before(g.NotBefore):
		return timing{code: CodeNotYet, at: g.NotBefore, later: true}
	}
	return timing{remaining: g.ExpiresAt.Sub(now)}
}

// window checks a grant that is alive at now against its windows. The next
// opening is only looked up when explain is set, since only denies use it.
func (e *grantEntry) window(now time.Time, explain bool) timing {
	g := &e.g
	t := timing{remaining: g.ExpiresAt.Sub(now)}
	if e.sched.AlwaysOpen() {
		return t
	}
	if !e.sched.Open(now) {
		if !explain {
			return timing{code: CodeOutsideWindow}
		}
		next, ok := e.sched.NextOpening(now)
		if ok && next.Before(g.ExpiresAt) {
			return timing{code: CodeOutsideWindow, at: next, later: true}
		}
		// The window does not open again in the grant's lifetime: the grant
		// is over in all but name; rank it with ended ones by its expiry.
		return timing{code: CodeOutsideWindow, at: g.ExpiresAt}
	}
	if c, ok := e.sched.CloseAt(now); ok && c.Before(g.ExpiresAt) {
		t.remaining, t.closes = c.Sub(now), c
	}
	return t
}

func endedAt(g *grant.Grant) time.Time {
	if !g.EndedAt.IsZero() && (g.State == grant.StateRevoked || g.EndedAt.Before(g.ExpiresAt)) {
		return g.EndedAt
	}
	return g.ExpiresAt
}

// coverage says whether patterns and runas cover the request: "" if they
// do, else the code of the first thing that does not fit.
func coverage(req *Request, needShell bool, patterns []cmdmatch.Pattern, runAsOK bool) Code {
	if needShell {
		ok := false
		for _, p := range patterns {
			if p.AllowsShell(req.Command, req.Args) {
				ok = true
				break
			}
		}
		if !ok {
			return CodeShellNeedsAll
		}
	} else {
		ok := false
		for _, p := range patterns {
			if p.Match(req.Command, req.Args) {
				ok = true
				break
			}
		}
		if !ok {
			return CodeOtherCommand
		}
	}
	if !runAsOK {
		return CodeRunAs
	}
	return ""
}

func (e *grantEntry) coverage(req *Request, needShell bool) Code {
	if e.g.Kind == grant.KindLogin {
		return ""
	}
	users, groups := e.runAsLists()
	return coverage(req, needShell, e.patterns, runAsAllowed(req, users, groups))
}

func (r *ruleEntry) coverage(req *Request, needShell bool) Code {
	return coverage(req, needShell, r.patterns, runAsAllowed(req, r.runAs, r.runAsGroups))
}

// runAsAllowed applies sudoers' Runas_Spec to the target of req, where
// users and groups are the two lists of "(users:groups)" (groups may be
// empty). It follows sudoers' runaslist_matches:
//
//   - Without -g, the target user must be listed, or the list be ALL.
//   - With -g, the group must be listed (or ALL), or be one of the target
//     user's own groups; and the target user must be listed, or be the
//     invoking user, since only the group changes then. So (root:adm)
//     allows sudo CMD (root), sudo -g adm CMD (the invoking user with
//     group adm) and sudo -u root -g adm CMD, and no other group.
//
// One exception keeps jit's documented shorthand: a user list of ALL with
// no groups allows any group too, as sudoers' (ALL:ALL) does.
func runAsAllowed(req *Request, users, groups []string) bool {
	target := req.RunAs
	if target == "" {
		target = grant.DefaultRunAs
	}
	userOK := false
	for _, u := range users {
		if u == "ALL" {
			if len(groups) == 0 {
				return true
			}
			userOK = true
		} else if u == target {
			userOK = true
		}
	}
	if req.RunAsGroup == "" {
		return userOK
	}
	if !userOK && target != req.User {
		return false
	}
	for _, g := range groups {
		if g == "ALL" || g == req.RunAsGroup {
			return true
		}
	}
	own := req.RunAsUserGroups
	if own == nil && target == req.User {
		own = req.Groups
	}
	return slices.Contains(own, req.RunAsGroup)
}

// candidate is one grant or rule that could explain a deny.
type candidate struct {
	rank int
	code Code
	at   time.Time
	g    *grantEntry
	r    *ruleEntry
}

func (c *candidate) valid() bool { return c.rank != 0 }

// better reports whether c explains the deny better than d (see the
// package comment for the order).
func (c *candidate) better(d *candidate) bool {
	if !d.valid() {
		return true
	}
	if c.rank != d.rank {
		return c.rank < d.rank
	}
	if !c.at.Equal(d.at) {
		if c.rank == 1 {
			return c.at.Before(d.at)
		}
		return c.at.After(d.at)
	}
	if (c.g != nil) != (d.g != nil) {
		return c.g != nil
	}
	return c.id() < d.id()
}

func (c *candidate) id() string {
	if c.g != nil {
		return c.g.g.ID
	}
	return c.r.r.Name
}

// mismatchRank ranks grants and rules that do not cover the request.
func mismatchRank(c Code) int {
	switch c {
	case CodeRunAs:
		return 3
	case CodeShellNeedsAll:
		return 4
	}
	return 5
}

// Decide answers req against set at now. A nil set holds nothing.
func Decide(req Request, set *Set, now time.Time) Decision {
	if d, ok := checkRequest(&req); !ok {
		return d
	}
	if set == nil {
		set = &Set{}
	}
	needShell := req.Kind == grant.KindSudo && (req.Shell || cmdmatch.IsShell(req.Command))

	var allow *grantEntry
	var allowT timing
	var best candidate
	for _, e := range set.grantsByUser[req.User] {
		if e.g.Kind != req.Kind {
			continue
		}
		if allow != nil {
			// Once something allows, only a grant that could last longer
			// matters; windows only shorten a grant.
			if most := e.g.ExpiresAt.Sub(now); most < allowT.remaining || (most == allowT.remaining && e.g.ID > allow.g.ID) {
				continue
			}
		}
		t := e.lifetime(now)
		cov := CodeInvalidGrant
		if e.err == nil {
			cov = e.coverage(&req, needShell)
		}
		if cov == "" && t.code == "" {
			t = e.window(now, allow == nil)
		}
		if cov == "" && t.code == "" {
			if allow == nil || t.remaining > allowT.remaining || (t.remaining == allowT.remaining && e.g.ID < allow.g.ID) {
				allow, allowT = e, t
			}
			continue
		}
		if allow != nil {
			continue // an allow needs no explanation
		}
		c := candidate{code: t.code, g: e}
		switch {
		case t.code == CodeRevoked || t.code == CodeExpired:
			if cov != "" {
				continue // an ended grant for something else explains nothing
			}
			c.rank, c.at = 2, t.at
		case cov == CodeInvalidGrant || t.code == CodeInvalidGrant:
			c.rank, c.code, c.at = 6, CodeInvalidGrant, e.g.ExpiresAt
		case cov == "" && t.later:
			c.rank, c.at = 1, t.at
		case cov == "":
			c.rank, c.at = 2, t.at // outside a window that never opens again
		default:
			c.rank, c.code, c.at = mismatchRank(cov), cov, e.g.ExpiresAt
		}
		if c.better(&best) {
			best = c
		}
	}
	if allow != nil {
		return allowGrant(allow, allowT)
	}
	if req.Kind == grant.KindSudo {
		var allowR *ruleEntry
		var allowRem time.Duration
		var allowClose time.Time
		set.eachRule(&req, func(r *ruleEntry) {
			cov := r.coverage(&req, needShell)
			if cov == "" && r.sched.Open(now) {
				closeAt, closes := r.sched.CloseAt(now)
				var rem time.Duration // zero: unlimited
				if closes {
					rem = closeAt.Sub(now)
				}
				if allowR == nil || ruleLonger(rem, allowRem) || (rem == allowRem && r.r.Name < allowR.r.Name) {
					allowR, allowRem, allowClose = r, rem, closeAt
				}
				return
			}
			if allowR != nil {
				return
			}
			c := candidate{code: cov, r: r}
			if cov == "" {
				c.code = CodeOutsideWindow
				if next, ok := r.sched.NextOpening(now); ok {
					c.rank, c.at = 1, next
				} else {
					c.rank = 2
				}
			} else {
				c.rank = mismatchRank(cov)
			}
			if c.better(&best) {
				best = c
			}
		})
		if allowR != nil {
			return Decision{
				Allow: true, Code: CodeAllow, RuleName: allowR.r.Name,
				Reason:    "allowed by standing rule " + strconv.Quote(allowR.r.Name),
				Remaining: allowRem, WindowCloses: allowClose,
			}
		}
	}
	if !best.valid() {
		return Decision{Code: CodeNoGrant, Reason: noGrantReason(&req)}
	}
	return explain(&req, set, &best, now, needShell)
}

// ruleLonger orders rule lifetimes where zero means unlimited.
func ruleLonger(a, b time.Duration) bool {
	if a == 0 || b == 0 {
		return a == 0 && b != 0
	}
	return a > b
}

func (s *Set) eachRule(req *Request, f func(*ruleEntry)) {
	for _, r := range s.rulesByUser[req.User] {
		f(r)
	}
	for _, g := range req.Groups {
		for _, r := range s.rulesByGroup[g] {
			f(r)
		}
	}
	for _, r := range s.rulesForAll {
		f(r)
	}
}

func checkRequest(req *Request) (Decision, bool) {
	bad := func(reason string) (Decision, bool) {
		return Decision{Code: CodeBadRequest, Reason: reason}, false
	}
	switch {
	case req.User == "":
		return bad("the request names no user")
	case req.Kind == grant.KindLogin:
		return Decision{}, true
	case req.Kind != grant.KindSudo:
		return bad("the request has unknown kind " + strconv.Quote(string(req.Kind)) + ` (want "sudo" or "login")`)
	case req.Command == "":
		return bad("the request names no command")
	case !cmdmatch.ValidPath(req.Command):
		return bad("the command path " + strconv.Quote(req.Command) + " is not absolute and clean; it must be resolved before asking")
	}
	return Decision{}, true
}

func allowGrant(e *grantEntry, t timing) Decision {
	return Decision{
		Allow:            true,
		Code:             CodeAllow,
		Reason:           "allowed by grant " + e.g.ID,
		GrantID:          e.g.ID,
		GrantedBy:        e.g.GrantedBy,
		GrantReason:      e.g.Reason,
		BreakGlass:       e.g.BreakGlass,
		ExpiresAt:        e.g.ExpiresAt,
		WindowCloses:     t.closes,
		EndAtWindowClose: e.g.EndAtWindowClose,
		Remaining:        t.remaining,
	}
}

// explain turns the best candidate into a deny.
func explain(req *Request, set *Set, c *candidate, now time.Time, needShell bool) Decision {
	d := Decision{Code: c.code}
	var b strings.Builder
	var subject string
	var loc *time.Location
	if c.g != nil {
		g := &c.g.g
		d.GrantID, d.GrantedBy, d.GrantReason = g.ID, g.GrantedBy, g.Reason
		d.BreakGlass, d.ExpiresAt, d.EndAtWindowClose = g.BreakGlass, g.ExpiresAt, g.EndAtWindowClose
		subject = "grant " + g.ID
		loc = c.g.sched.Location()
	} else {
		d.RuleName = c.r.r.Name
		subject = "standing rule " + strconv.Quote(c.r.r.Name)
		loc = c.r.sched.Location()
	}
	switch c.code {
	case CodeOutsideWindow:
		b.WriteString(subject)
		b.WriteString(" is outside its window ")
		b.WriteString(c.sched().String())
		if c.rank == 1 {
			d.NextOpening = c.at
			b.WriteString("; it opens next at ")
			writeTime(&b, c.at, loc, now)
		} else if c.g != nil {
			b.WriteString(" and does not open again before the grant expires at ")
			writeTime(&b, c.g.g.ExpiresAt, loc, now)
		} else {
			b.WriteString(" and never opens")
		}
	case CodeNotYet:
		d.NextOpening = c.at
		b.WriteString(subject)
		b.WriteString(" is not valid before ")
		writeTime(&b, c.at, loc, now)
	case CodeExpired:
		b.WriteString(subject)
		b.WriteString(" expired at ")
		writeTime(&b, c.at, loc, now)
	case CodeRevoked:
		g := &c.g.g
		b.WriteString(subject)
		b.WriteString(" was revoked")
		if g.EndedBy != "" {
			b.WriteString(" by ")
			b.WriteString(g.EndedBy)
		}
		if !g.EndedAt.IsZero() {
			b.WriteString(" at ")
			writeTime(&b, g.EndedAt, loc, now)
		}
		if g.EndReason != "" {
			b.WriteString(": ")
			b.WriteString(clip(g.EndReason, 200))
		}
	case CodeRunAs:
		var users, groups []string
		if c.g != nil {
			users, groups = c.g.runAsLists()
		} else {
			users, groups = c.r.runAs, c.r.runAsGroups
		}
		target := req.RunAs
		if target == "" {
			target = grant.DefaultRunAs
		}
		b.WriteString(subject)
		b.WriteString(" lets ")
		b.WriteString(req.User)
		b.WriteString(" run this only as ")
		b.WriteString(strings.Join(users, " or "))
		switch {
		case len(groups) > 0:
			// Name the flags: "(root:adm)" alone leaves a tired reader
			// guessing whether -g without -u is covered.
			group := "group " + strings.Join(groups, " or ")
			if slices.Contains(groups, "ALL") {
				group = "any group"
			}
			b.WriteString(" or with ")
			b.WriteString(group)
			b.WriteString(" (-u ")
			b.WriteString(strings.Join(users, "|"))
			b.WriteString(", -g ")
			b.WriteString(strings.Join(groups, "|"))
			b.WriteString(", or both)")
		case req.RunAsGroup != "":
			b.WriteString(" with that user's own group")
		}
		if req.RunAsGroup != "" {
			b.WriteString(", not as ")
			b.WriteString(target)
			b.WriteString(" with group ")
			b.WriteString(req.RunAsGroup)
		} else {
			b.WriteString(", not as ")
			b.WriteString(target)
		}
	case CodeShellNeedsAll:
		b.WriteString("a shell (")
		b.WriteString(req.Command)
		b.WriteString(") needs a grant for ALL or for that shell by name; ")
		b.WriteString(subject)
		b.WriteString(" allows only ")
		writePatterns(&b, c.patterns())
	case CodeOtherCommand:
		pats, n := otherCommands(req, set, c, now, needShell)
		if n > 1 {
			b.WriteString(req.User)
			b.WriteString("'s grants allow only ")
		} else {
			b.WriteString(subject)
			b.WriteString(" allows only ")
		}
		writePatterns(&b, pats)
		b.WriteString(", not ")
		writeCommand(&b, req.Command, req.Args)
	case CodeInvalidGrant:
		b.WriteString(subject)
		b.WriteString(" cannot be used: ")
		if c.g.err != nil {
			b.WriteString(c.g.err.Error())
		} else {
			b.WriteString("it is in unknown state ")
			b.WriteString(strconv.Quote(string(c.g.g.State)))
		}
	}
	d.Reason = b.String()
	return d
}

func (c *candidate) sched() *window.Schedule {
	if c.g != nil {
		return c.g.sched
	}
	return c.r.sched
}

func (c *candidate) patterns() []string {
	if c.g != nil {
		return c.g.g.Commands
	}
	return c.r.r.Commands
}

// otherCommands collects what the user's live grants of the same source
// (grants, or else rules) allow, for an other_command deny; n is how many
// grants or rules contributed.
func otherCommands(req *Request, set *Set, c *candidate, now time.Time, needShell bool) ([]string, int) {
	var pats []string
	n := 0
	add := func(ps []string) {
		n++
		for _, p := range ps {
			if !slices.Contains(pats, p) {
				pats = append(pats, p)
			}
		}
	}
	if c.g != nil {
		for _, e := range set.grantsByUser[req.User] {
			if e.g.Kind == req.Kind && e.err == nil && !e.lifetime(now).ended() && e.coverage(req, needShell) == CodeOtherCommand {
				add(e.g.Commands)
			}
		}
	} else {
		set.eachRule(req, func(r *ruleEntry) {
			if r.coverage(req, needShell) == CodeOtherCommand {
				add(r.r.Commands)
			}
		})
	}
	if n == 0 {
		add(c.patterns())
	}
	return pats, n
}

func writePatterns(b *strings.Builder, pats []string) {
	const max = 5
	for i, p := range pats {
		if i == max {
			b.WriteString(" (and ")
			b.WriteString(strconv.Itoa(len(pats) - max))
			b.WriteString(" more)")
			return
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p)
	}
}

func noGrantReason(req *Request) string {
	var b strings.Builder
	b.WriteString(req.User)
	if req.Kind == grant.KindLogin {
		b.WriteString(" has no grant to log in")
		if req.Service != "" {
			b.WriteString(" (service ")
			b.WriteString(clip(req.Service, 64))
			b.WriteString(")")
		}
		return b.String()
	}
	b.WriteString(" has no grant to run ")
	writeCommand(&b, req.Command, req.Args)
	b.WriteString(" as ")
	if req.RunAs == "" {
		b.WriteString(grant.DefaultRunAs)
	} else {
		b.WriteString(req.RunAs)
	}
	return b.String()
}

// writeCommand renders a command line for a reason. Arguments come from the
// user, and reasons end up on terminals and in the journal, so anything
// unusual is quoted with Go escapes and long lines are cut.
func writeCommand(b *strings.Builder, cmd string, args []string) {
	const max = 300
	start := b.Len()
	b.WriteString(quoteArg(cmd))
	for _, a := range args {
		if b.Len()-start > max {
			b.WriteString(" …")
			return
		}
		b.WriteByte(' ')
		b.WriteString(quoteArg(a))
	}
}

func quoteArg(a string) string {
	if a == "" {
		return `""`
	}
	for _, r := range a {
		if r <= ' ' || r == '"' || r == '\\' || r == '\'' || r >= 0x7f {
			return strconv.Quote(clip(a, 200))
		}
	}
	return clip(a, 200)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// writeTime writes t in the grant's zone with a relative hint, e.g.
// "Mon 2026-03-09 09:00 CET (in 14h2m)".
func writeTime(b *strings.Builder, t time.Time, loc *time.Location, now time.Time) {
	b.WriteString(t.In(loc).Format("Mon 2006-01-02 15:04 MST"))
	d := t.Sub(now)
	b.WriteString(" (")
	if d >= 0 {
		b.WriteString("in ")
		b.WriteString(human(d))
	} else {
		b.WriteString(human(-d))
		b.WriteString(" ago")
	}
	b.WriteString(")")
}

// human renders a duration to minute precision ("3d4h", "2h5m", "45s").
func human(d time.Duration) string {
	if d < time.Minute {
		return strconv.Itoa(int(d.Seconds())) + "s"
	}
	d = d.Round(time.Minute)
	days := int(d / (24 * time.Hour))
	h := int(d % (24 * time.Hour) / time.Hour)
	m := int(d % time.Hour / time.Minute)
	var s string
	if days > 0 {
		s = strconv.Itoa(days) + "d"
	}
	if h > 0 {
		s += strconv.Itoa(h) + "h"
	}
	if m > 0 && days == 0 {
		s += strconv.Itoa(m) + "m"
	}
	if s == "" {
		s = "0m"
	}
	return s
}
