package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jitpam/jit/jitd/api"
)

// sudoers' logging does not load with a foreign policy plugin, so the plugin
// audits every accept and reject itself, straight to journald (datagrams:
// no SIGPIPE, and no dependency on jitd, which may be the thing that is
// down). jitd logs its decision too.

// Fixed MESSAGE_IDs of the plugin's events (see contrib's catalog).
const (
	msgIDAccept     = "9099cc7a171f448da581b66e6b9a1c54" // sudo.accept
	msgIDReject     = "ab7d1c5cf9fa4148a589f2a431a71909" // sudo.reject
	msgIDBreakglass = "5868bd4f9cfe4ad18f18885af881f414" // sudo.breakglass
	msgIDEnd        = "debd247eae3a4c0893863a107afbdaaf" // sudo.end
)

const syslogIdentifier = "jit_sudo"

// priority is a syslog priority, journald's PRIORITY field.
type priority int

const (
	priAlert   priority = 1
	priWarning priority = 4
	priNotice  priority = 5
	priInfo    priority = 6
)

func (p *plugin) auditFields(a *attempt, event, msgID string) map[string]string {
	f := map[string]string{
		"SYSLOG_IDENTIFIER": syslogIdentifier,
		"MESSAGE_ID":        msgID,
		"JIT_EVENT":         event,
		"JIT_USER":          p.user.name,
		"JIT_COMMAND":       a.line(),
		"JIT_RUNAS":         a.runas,
	}
	set := func(k, v string) {
		if v != "" {
			f[k] = v
		}
	}
	set("JIT_RUNAS_GROUP", a.group)
	set("JIT_TTY", p.user.tty)
	set("JIT_CWD", p.user.cwd)
	set("JIT_HOST", p.user.host)
	if a.shell {
		f["JIT_SHELL"] = "true"
	}
	return f
}

// auditAccept records an allowed command.
func (p *plugin) auditAccept(a *attempt, d *api.Decision) {
	event, msgID, prio := "sudo.accept", msgIDAccept, priNotice
	if d.BreakGlass && d.GrantID == "" {
		event, msgID, prio = "sudo.breakglass", msgIDBreakglass, priAlert
	}
	f := p.auditFields(a, event, msgID)
	set := func(k, v string) {
		if v != "" {
			f[k] = v
		}
	}
	set("JIT_GRANT_ID", d.GrantID)
	set("JIT_RULE", d.Rule)
	set("JIT_GRANTED_BY", d.GrantedBy)
	set("JIT_REASON", d.GrantReason)
	set("JIT_SESSION_ID", p.sessionID)
	if d.BreakGlass {
		f["JIT_BREAKGLASS"] = "true"
		set("JIT_REASON", d.Reason)
	}
	var by string
	switch {
	case d.GrantID != "":
		by = "grant " + d.GrantID
	case d.Rule != "":
		by = "rule " + d.Rule
	default:
		by = "break-glass"
	}
	p.send(fmt.Sprintf("%s ran %s as %s (%s)", p.user.name, a.line(), a.runas, by), prio, f)
}

// auditReject records a refused command with the reason.
func (p *plugin) auditReject(a *attempt, code, why string, d *api.Decision) {
	f := p.auditFields(a, "sudo.reject", msgIDReject)
	f["JIT_REASON"] = why
	if code != "" {
		f["JIT_CODE"] = code
	}
	if d != nil && d.GrantID != "" {
		f["JIT_GRANT_ID"] = d.GrantID
	}
	p.send(fmt.Sprintf("%s may not run %s as %s: %s", p.user.name, a.line(), a.runas, why), priWarning, f)
}

// auditEnd records how an allowed command ended, when jitd could not be
// told (why).
func (p *plugin) auditEnd(end *api.SessionEnd, why error) {
	f := map[string]string{
		"SYSLOG_IDENTIFIER": syslogIdentifier,
		"MESSAGE_ID":        msgIDEnd,
		"JIT_EVENT":         "sudo.end",
		"JIT_USER":          p.user.name,
		"JIT_COMMAND":       p.command,
		"JIT_RUNAS":         p.runas,
		"JIT_SESSION_ID":    p.sessionID,
	}
	if p.decision != nil && p.decision.GrantID != "" {
		f["JIT_GRANT_ID"] = p.decision.GrantID
	}
	f["JIT_ERROR"] = "jitd was not told: " + why.Error()
	how := "ended"
	if end.ExitStatus != nil {
		f["JIT_EXIT_STATUS"] = strconv.Itoa(*end.ExitStatus)
		how = "exited with status " + f["JIT_EXIT_STATUS"]
	}
	if end.Reason != "" {
		f["JIT_REASON"] = end.Reason
		how += " (" + end.Reason + ")"
	}
	p.send(fmt.Sprintf("%s's %s as %s %s", p.user.name, p.command, p.runas, how), priInfo, f)
}

func (p *plugin) send(msg string, prio priority, fields map[string]string) {
	if err := sendAudit(journalSocket, strings.ToValidUTF8(msg, "?"), prio, fields); err != nil {
		say(msgError, "jit: warning: could not write the audit record to journald: "+err.Error())
	}
}

// sendAudit writes one entry to journald through a socket of its own, with
// plain system calls, as the recording does: go-systemd's journal.Send
// goes through Go's net package, and setting up its poller on the first
// call is time every sudo run would spend.
func sendAudit(socket, msg string, prio priority, fields map[string]string) error {
	e := &entryBuilder{}
	e.add("MESSAGE", msg)
	e.addInt("PRIORITY", int64(prio))
	for k, v := range fields {
		e.add(k, v)
	}
	c, err := dialJournal(socket)
	if err != nil {
		return err
	}
	defer c.close()
	return c.send([][]byte{e.b}, time.Now().Add(time.Second))
}
