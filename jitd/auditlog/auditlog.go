// Package auditlog writes jit's audit events to journald: one entry per
// event, with a fixed MESSAGE_ID per event type (see contrib/jitd.catalog) and
// the JIT_* fields that administrators filter on (journalctl JIT_USER=alice).
//
// The hash-chained copy in bbolt is the tamper-evident record; journald is
// where people and log shippers read it. A journald that cannot take an entry
// is logged and does not stop jitd: the chain still holds the record.
package auditlog

import (
	"fmt"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/hashicorp/go-hclog"

	"github.com/jitpam/jit/jitd/store"
)

// Identifier is the SYSLOG_IDENTIFIER of jitd's audit entries.
const Identifier = "jitd"

// Event types jitd writes besides the store's (store.Event*).
const (
	EventDecisionAllow  store.Event = "decision.allow"
	EventDecisionDeny   store.Event = "decision.deny"
	EventBreakGlass     store.Event = "breakglass.used"
	EventPolicyLoaded   store.Event = "policy.loaded"
	EventPolicyRejected store.Event = "policy.rejected"
	EventStarted        store.Event = "jitd.started"
	EventStopped        store.Event = "jitd.stopped"
	EventChainBroken    store.Event = "audit.chain_broken"
)

// MessageIDs maps each event type to its journald MESSAGE_ID. The values
// never change: administrators and the catalog refer to them.
var MessageIDs = map[store.Event]string{
	store.EventStoreCreated:      "b479d36998524775bde071133a20af41",
	store.EventStorePruned:       "3e6778d6e57044958863e5c97f985c74",
	store.EventGrantCreated:      "a6ca6f1b82b141508bbaceb1ef38127a",
	store.EventGrantExtended:     "5de1a7dad9ba4846adef40ec5c301daf",
	store.EventGrantRevoked:      "b2abc4c6a3344ee199eddbe9f02fea05",
	store.EventGrantExpired:      "5bfb67ce3db84ac6b9028a344ae5f809",
	store.EventRequestCreated:    "20cdb93edc894f9abfc63471e3cab08b",
	store.EventRequestApproved:   "7abad06466584539a21270147d7a0aec",
	store.EventRequestDenied:     "a22362606e8a4d90b5ad17b9afca8938",
	store.EventSessionOpened:     "65d0f9d1a9e04f9f84724871960a8395",
	store.EventSessionClosed:     "e5774987af3b4a16a24a116eeb51a242",
	store.EventSessionTerminated: "c6bc2a94c326423093688f292ee0237b",
	EventDecisionAllow:           "142151d0457d4f21afab6fd227cc5677",
	EventDecisionDeny:            "97607eb77c2749068f767fbed5c941d3",
	EventBreakGlass:              "bbe5236b39b747a99dfb53e073411446",
	EventPolicyLoaded:            "2e885bf730ca4cc1b947c5db81a96922",
	EventPolicyRejected:          "a386b0dbf9524ba48dc6f11e06a56ca2",
	EventStarted:                 "33fdf2f7d49a42dc922484104b41a5df",
	EventStopped:                 "b116170959b14accb6a734d2beea919b",
	EventChainBroken:             "dd0d3289a1bc44b4b0824db67cd039ff",
}

// priorities of events that deserve more than "info".
var priorities = map[store.Event]journal.Priority{
	EventDecisionDeny:            journal.PriNotice,
	store.EventGrantRevoked:      journal.PriNotice,
	store.EventSessionTerminated: journal.PriNotice,
	EventBreakGlass:              journal.PriWarning,
	EventPolicyRejected:          journal.PriErr,
	EventChainBroken:             journal.PriCrit,
}

// Sink sends audit records to journald.
type Sink struct {
	log  hclog.Logger
	send func(message string, pri journal.Priority, vars map[string]string) error
	// failing is set while journald refuses entries, so that an outage is
	// logged once when it starts and once when it ends, not per entry.
	failing atomic.Bool
}

// New returns a sink that writes to the local journald and reports failures
// to log.
func New(log hclog.Logger) *Sink {
	return &Sink{log: log, send: journal.Send}
}

// Enabled reports whether a journald socket exists.
func Enabled() bool { return journal.Enabled() }

// Record writes one audit record (from the chain, or a journald-only event
// with Seq 0) to journald.
func (s *Sink) Record(r store.AuditRecord) {
	vars := r.JournalFields()
	if r.Seq == 0 {
		// Not part of the chain: keep the seq/hash fields out rather than
		// writing a zero that reads like a chain position.
		delete(vars, "JIT_AUDIT_SEQ")
		delete(vars, "JIT_AUDIT_HASH")
		delete(vars, "JIT_AUDIT_PREV_HASH")
	}
	vars["SYSLOG_IDENTIFIER"] = Identifier
	if id, ok := MessageIDs[r.Event]; ok {
		vars["MESSAGE_ID"] = id
	}
	pri, ok := priorities[r.Event]
	if !ok {
		pri = journal.PriInfo
	}
	if r.Fields["breakglass"] == "true" && pri > journal.PriWarning {
		pri = journal.PriWarning
	}
	if err := s.send(Message(r), pri, vars); err != nil {
		if !s.failing.Swap(true) {
			s.log.Error("journald does not take audit entries; the bbolt chain still holds them", "event", r.Event, "seq", r.Seq, "error", err)
		}
		return
	}
	if s.failing.Swap(false) {
		s.log.Info("journald takes audit entries again")
	}
}

// Message renders a record as the one line people read in journalctl.
func Message(r store.AuditRecord) string {
	var b strings.Builder
	b.WriteString(string(r.Event))
	add := func(label, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%s", label, quoteIfNeeded(v))
		}
	}
	add("user", r.User)
	add("actor", r.Actor)
	add("grant", r.GrantID)
	add("request", r.RequestID)
	add("session", r.SessionID)
	keys := make([]string, 0, len(r.Fields))
	for k := range r.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(k, r.Fields[k])
	}
	add("reason", r.Reason)
	return b.String()
}

func quoteIfNeeded(s string) string {
	if strings.ContainsAny(s, " \t\"=\n") || s == "" {
		return fmt.Sprintf("%q", s)
	}
	return s
}
