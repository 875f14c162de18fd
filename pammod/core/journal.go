package main

import (
	"strings"

	"github.com/coreos/go-systemd/v22/journal"
)

// Events go to journald as datagrams (go-systemd's journal): no SIGPIPE, and
// no dependency on jitd, which may be what is down. jitd records its own
// decision and the session too; these records say what the PAM stack did.

// Fixed MESSAGE_IDs of the module's events (see contrib/pam_jit.catalog).
const (
	eventAccount      = "pam.account"
	eventSessionOpen  = "pam.session_open"
	eventSessionClose = "pam.session_close"
)

var messageIDs = map[string]string{
	eventAccount:      "d2d6b2bcd50846749eabe4d0f8a56c69",
	eventSessionOpen:  "dcb5ef42ce2d45abb06aefd9d9caf013",
	eventSessionClose: "78802218516d4d69adcf44892e181fa0",
}

const syslogIdentifier = "pam_jit"

// sendJournal is journal.Send unless a test replaces it.
var sendJournal = journal.Send

func (c *call) audit(event string, p priority, msg string, w who, extra map[string]string) {
	f := map[string]string{
		"SYSLOG_IDENTIFIER": syslogIdentifier,
		"MESSAGE_ID":        messageIDs[event],
		"JIT_EVENT":         event,
	}
	set := func(k, v string) {
		if v != "" {
			f[k] = strings.ToValidUTF8(v, "?")
		}
	}
	set("JIT_USER", w.user)
	set("JIT_SERVICE", w.service)
	set("JIT_TTY", w.tty)
	set("JIT_RHOST", w.rhost)
	for k, v := range extra {
		set(k, v)
	}
	prio := journal.PriInfo
	switch p {
	case prioDebug:
		prio = journal.PriDebug
	case prioNotice:
		prio = journal.PriNotice
	case prioWarning:
		prio = journal.PriWarning
	case prioErr:
		prio = journal.PriErr
	}
	if err := sendJournal(strings.ToValidUTF8(msg, "?"), prio, f); err != nil {
		// syslog still has the line; say that journald did not.
		c.h.log(prioWarning, "cannot write to journald ("+err.Error()+"): "+msg)
	}
}
