package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/grant"
)

type item int

const (
	itemUser item = iota
	itemService
	itemTTY
	itemRHost
)

type priority int

const (
	prioDebug priority = iota
	prioInfo
	prioNotice
	prioWarning
	prioErr
)

// pamHandle is what the module needs from libpam; cHandle implements it
// (main.go), tests fake it.
type pamHandle interface {
	item(item) string
	// tell sends one PAM_ERROR_MSG through the application's conversation.
	tell(msg string)
	// log writes to syslog through pam_syslog.
	log(p priority, msg string)
	// setData and data keep strings as PAM data of the handle, which
	// other modules of the stack (pam_systemd) read too.
	setData(name, value string) bool
	data(name string) string
	putenv(name, value string) bool
	getenv(name string) string
}

// Names of the PAM data and environment this module sets.
const (
	dataGrant      = "jit.grant_id"
	dataDeadline   = "jit.grant_deadline" // unix nanoseconds when the grant's login right ends
	dataSession    = "jit.session_id"
	dataAccount    = "jit.account" // set when account let the user through in this handle
	envSession     = "JIT_SESSION_ID"
	dataRuntimeMax = "systemd.runtime_max_sec" // read by pam_systemd (pam_systemd(8))
)

// options are the module arguments.
type options struct {
	socket      string
	timeout     time.Duration
	exemptGroup string
	debug       bool
	bad         []string
}

func parseArgs(argv []string) options {
	o := options{socket: api.DefaultSocket, timeout: api.DefaultTimeout}
	for _, a := range argv {
		k, v, hasValue := strings.Cut(a, "=")
		switch {
		case k == "debug" && !hasValue:
			o.debug = true
		case k == "socket" && v != "":
			o.socket = v
		case k == "exempt_group":
			o.exemptGroup = v
		case k == "timeout" && v != "":
			d, err := time.ParseDuration(v)
			if err != nil {
				// A bare number means seconds, as in other modules.
				if n, nerr := strconv.ParseFloat(v, 64); nerr == nil {
					d, err = time.Duration(n*float64(time.Second)), nil
				}
			}
			if err != nil || d <= 0 || d > time.Minute {
				o.bad = append(o.bad, a)
				continue
			}
			o.timeout = d
		default:
			o.bad = append(o.bad, a)
		}
	}
	return o
}

// call is one PAM call into the core.
type call struct {
	h      pamHandle
	opts   options
	silent bool
	pid    int
	// newClient is api.NewClient unless a test replaces it.
	newClient func(socket string) *api.Client
	now       func() time.Time
}

func (c *call) client() *api.Client {
	if c.newClient != nil {
		return c.newClient(c.opts.socket)
	}
	return api.NewClientDialer(c.opts.socket, api.DialBlocking)
}

func (c *call) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

func (c *call) debugf(format string, a ...any) {
	if c.opts.debug {
		c.h.log(prioDebug, fmt.Sprintf(format, a...))
	}
}

func (c *call) tell(msg string) {
	if !c.silent {
		c.h.tell(msg)
	}
}

func (c *call) warnArgs() {
	if len(c.opts.bad) > 0 {
		c.h.log(prioWarning, "ignoring unknown or bad arguments: "+strings.Join(c.opts.bad, " "))
	}
}

// who is the login a call is about.
type who struct {
	user, service, tty, rhost string
}

func (c *call) who() who {
	return who{c.h.item(itemUser), c.h.item(itemService), c.h.item(itemTTY), c.h.item(itemRHost)}
}

func (w who) String() string {
	s := w.user + " through " + orDash(w.service)
	if w.rhost != "" {
		s += " from " + w.rhost
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// exempt reports whether user is root or in exempt_group=: the users a jitd
// that cannot answer never locks out. Group membership comes from NSS.
func (c *call) exempt(name string) bool {
	if name == "" {
		return false
	}
	u, err := user.Lookup(name)
	if err != nil {
		c.debugf("exemption check: %v", err)
		return false
	}
	if u.Uid == "0" {
		return true
	}
	if c.opts.exemptGroup == "" {
		return false
	}
	g, err := user.LookupGroup(c.opts.exemptGroup)
	if err != nil {
		c.h.log(prioWarning, fmt.Sprintf("exempt_group=%s: %v", c.opts.exemptGroup, err))
		return false
	}
	if u.Gid == g.Gid {
		return true
	}
	gids, err := u.GroupIds()
	if err != nil {
		c.debugf("groups of %s: %v", name, err)
		return false
	}
	return slices.Contains(gids, g.Gid)
}

// account: may this user log in through this service now?
func (c *call) account() int {
	c.warnArgs()
	w := c.who()
	if w.user == "" {
		c.h.log(prioErr, "account: no user name (PAM_USER)")
		return pamUserUnknown
	}
	cl := c.client()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.timeout)
	defer cancel()
	start := c.clock()
	d, err := cl.Check(ctx, &api.CheckRequest{
		User: w.user, Kind: grant.KindLogin, Service: w.service, TTY: w.tty, RHost: w.rhost,
	})
	c.debugf("account %s: check took %v", w, time.Since(start).Round(time.Microsecond))
	if err != nil {
		why := errText(err)
		if c.exempt(w.user) {
			c.h.log(prioWarning, fmt.Sprintf("no decision from jitd (%s); %s is root or in exempt_group, letting them in", why, w.user))
			c.audit(eventAccount, prioWarning, fmt.Sprintf("%s may log in without jitd's decision (root or exempt_group): %s", w, why), w, map[string]string{
				"JIT_DECISION": "allow", "JIT_CODE": "offline_exempt", "JIT_REASON": why,
			})
			return pamSuccess
		}
		c.h.log(prioErr, fmt.Sprintf("refusing %s: no decision from jitd: %s", w, why))
		c.audit(eventAccount, prioWarning, fmt.Sprintf("%s refused: no decision from jitd: %s", w, why), w, map[string]string{
			"JIT_DECISION": "deny", "JIT_CODE": errCode(err), "JIT_REASON": why,
		})
		c.tell(oneLine("jit: login refused: " + why + ". Try again shortly, or ask an administrator."))
		return pamPermDenied
	}
	fields := map[string]string{"JIT_CODE": d.Code, "JIT_REASON": d.Reason, "JIT_GRANT_ID": d.GrantID}
	if !d.Allow {
		fields["JIT_DECISION"] = "deny"
		c.h.log(prioNotice, fmt.Sprintf("refusing %s: %s", w, d.Reason))
		c.audit(eventAccount, prioWarning, fmt.Sprintf("%s refused: %s", w, d.Reason), w, fields)
		msg := "jit: login refused: " + strings.TrimSuffix(d.Reason, ".") + "."
		if d.Hint != "" {
			msg += " To ask for access, run: " + d.Hint
		}
		c.tell(oneLine(msg))
		return pamPermDenied
	}
	fields["JIT_DECISION"] = "allow"
	c.h.setData(dataAccount, "allow")
	if d.GrantID != "" {
		c.h.setData(dataGrant, d.GrantID)
		if d.Remaining > 0 {
			deadline := start.Add(time.Duration(d.Remaining))
			c.h.setData(dataDeadline, strconv.FormatInt(deadline.UnixNano(), 10))
			fields["JIT_EXPIRES_AT"] = deadline.UTC().Format(time.RFC3339)
		}
	}
	by := d.Code
	if d.GrantID != "" {
		by = "grant " + d.GrantID
	} else if by == "" {
		by = d.Reason
	}
	c.audit(eventAccount, prioNotice, fmt.Sprintf("%s may log in (%s)", w, by), w, fields)
	return pamSuccess
}

// openSession registers the login with jitd so that jitd can end it with
// its grant, and hands the remaining lifetime to pam_systemd.
func (c *call) openSession() int {
	c.warnArgs()
	w := c.who()
	if w.user == "" {
		c.h.log(prioErr, "session open: no user name (PAM_USER)")
		return pamSessionErr
	}
	cl := c.client()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.timeout)
	defer cancel()

	grantID := c.h.data(dataGrant)
	var deadline time.Time
	if ns, err := strconv.ParseInt(c.h.data(dataDeadline), 10, 64); err == nil {
		deadline = time.Unix(0, ns)
	}
	// underGrant: jitd will have to end this session, so it must know it.
	underGrant := grantID != ""
	if c.h.data(dataAccount) == "" {
		// No account decision in this handle (account ran elsewhere or is
		// not configured): ask, to learn the grant. This does not gate.
		start := c.clock()
		d, err := cl.Check(ctx, &api.CheckRequest{User: w.user, Kind: grant.KindLogin, Service: w.service, TTY: w.tty, RHost: w.rhost})
		switch {
		case err != nil:
			underGrant = true // unknown: treat as if jitd had to know
		case d.Allow && d.GrantID != "":
			grantID, underGrant = d.GrantID, true
			if d.Remaining > 0 {
				deadline = start.Add(time.Duration(d.Remaining))
			}
		}
	}
	now := c.clock()
	if !deadline.IsZero() && !now.Before(deadline) {
		c.h.log(prioNotice, fmt.Sprintf("refusing session of %s: grant %s ended", w, grantID))
		c.tell("jit: login refused: your login grant " + grantID + " has ended.")
		return pamSessionErr
	}
	spec := &api.SessionSpec{
		Kind: grant.KindLogin, User: w.user, GrantID: grantID, Service: w.service, TTY: w.tty, RHost: w.rhost,
		PID: c.pid, AuditSession: auditSession(),
	}
	s, err := cl.OpenSession(ctx, spec)
	if err != nil {
		why := errText(err)
		fields := map[string]string{"JIT_GRANT_ID": grantID, "JIT_REASON": why}
		switch {
		case c.exempt(w.user):
			c.h.log(prioWarning, fmt.Sprintf("session of %s not registered with jitd (%s); root or exempt_group: continuing", w, why))
		case !underGrant:
			c.h.log(prioWarning, fmt.Sprintf("session of %s not registered with jitd (%s); no grant to end it: continuing", w, why))
		default:
			c.h.log(prioErr, fmt.Sprintf("refusing session of %s: jitd could not register it: %s", w, why))
			fields["JIT_DECISION"] = "deny"
			c.audit(eventSessionOpen, prioWarning, fmt.Sprintf("session of %s refused: not registered with jitd: %s", w, why), w, fields)
			c.tell(oneLine("jit: login refused: jitd could not register your session: " + why + "."))
			return pamSessionErr
		}
		c.audit(eventSessionOpen, prioWarning, fmt.Sprintf("session of %s not registered with jitd: %s", w, why), w, fields)
		return pamSuccess
	}
	c.h.setData(dataSession, s.ID)
	if !c.h.putenv(envSession, s.ID) {
		c.h.log(prioWarning, "cannot set "+envSession+" in the PAM environment")
	}
	fields := map[string]string{"JIT_SESSION_ID": s.ID, "JIT_GRANT_ID": grantID, "JIT_PID": strconv.Itoa(c.pid)}
	if spec.AuditSession != 0 {
		fields["JIT_AUDIT_SESSION"] = strconv.FormatUint(uint64(spec.AuditSession), 10)
	}
	if !deadline.IsZero() {
		secs := int64(math.Ceil(deadline.Sub(now).Seconds()))
		if c.h.setData(dataRuntimeMax, strconv.FormatInt(secs, 10)) {
			fields["JIT_RUNTIME_MAX_SEC"] = strconv.FormatInt(secs, 10)
		}
	}
	c.audit(eventSessionOpen, prioNotice, fmt.Sprintf("session %s of %s opened", s.ID, w), w, fields)
	c.debugf("session %s registered (grant %q, pid %d, audit session %d)", s.ID, grantID, c.pid, spec.AuditSession)
	return pamSuccess
}

// closeSession ends the session openSession registered.
func (c *call) closeSession() int {
	c.warnArgs()
	w := c.who()
	id := c.h.data(dataSession)
	if id == "" {
		id = c.h.getenv(envSession)
	}
	if id == "" {
		c.debugf("session close of %s: no session was registered", w)
		return pamIgnore
	}
	cl := c.client()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.timeout)
	defer cancel()
	err := cl.CloseSession(ctx, id, &api.SessionEnd{Reason: "logout"})
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.CodeNotFound {
		err = nil // already ended by jitd (grant over) or pruned
	}
	if err != nil {
		why := errText(err)
		c.h.log(prioErr, fmt.Sprintf("cannot close session %s of %s with jitd: %s", id, w, why))
		c.audit(eventSessionClose, prioWarning, fmt.Sprintf("session %s of %s ended; jitd not told: %s", id, w, why), w,
			map[string]string{"JIT_SESSION_ID": id, "JIT_REASON": why})
		return pamSessionErr
	}
	c.audit(eventSessionClose, prioNotice, fmt.Sprintf("session %s of %s closed", id, w), w, map[string]string{"JIT_SESSION_ID": id})
	return pamSuccess
}

// auditSession is the kernel's audit session id of this process, 0 when
// unset (4294967295) or unknown.
func auditSession() uint32 {
	b, err := os.ReadFile("/proc/self/sessionid")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil || n == math.MaxUint32 {
		return 0
	}
	return uint32(n)
}

func errText(err error) string {
	return strings.TrimSuffix(err.Error(), ".")
}

func errCode(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return api.CodeInternal
}

// oneLine keeps a conversation message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
