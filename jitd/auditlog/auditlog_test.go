package auditlog

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/hashicorp/go-hclog"

	"github.com/jitpam/jit/jitd/store"
)

// Every event jitd writes has a MESSAGE_ID, every MESSAGE_ID is unique and
// documented in the catalog that ships in contrib/.
func TestMessageIDsAndCatalog(t *testing.T) {
	catalog, err := os.ReadFile("../../contrib/jitd.catalog")
	if err != nil {
		t.Fatal(err)
	}
	valid := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]store.Event{}
	for ev, id := range MessageIDs {
		if !valid.MatchString(id) {
			t.Errorf("%s: MESSAGE_ID %q is not 32 lower-case hex digits", ev, id)
		}
		if other, dup := seen[id]; dup {
			t.Errorf("%s and %s share MESSAGE_ID %s", ev, other, id)
		}
		seen[id] = ev
		if !strings.Contains(string(catalog), "-- "+id+"\n") {
			t.Errorf("%s: MESSAGE_ID %s has no catalog entry", ev, id)
		}
	}
	for _, ev := range []store.Event{store.EventGrantCreated, store.EventGrantExpired, store.EventGrantRevoked,
		store.EventRequestCreated, store.EventRequestApproved, store.EventRequestDenied, store.EventSessionOpened,
		store.EventSessionClosed, store.EventSessionTerminated, store.EventGrantExtended, EventDecisionAllow, EventDecisionDeny} {
		if MessageIDs[ev] == "" {
			t.Errorf("event %s has no MESSAGE_ID", ev)
		}
	}
}

func TestRecordFields(t *testing.T) {
	var got map[string]string
	var pri journal.Priority
	var msg string
	s := &Sink{log: hclog.NewNullLogger(), send: func(m string, p journal.Priority, v map[string]string) error {
		msg, pri, got = m, p, v
		return nil
	}}
	s.Record(store.AuditRecord{Seq: 7, Event: EventDecisionDeny, Actor: "root", User: "alice", Reason: "no grant",
		Fields: map[string]string{"command": "/usr/bin/id -u"}, Hash: "h", PrevHash: "p"})
	want := map[string]string{
		"JIT_EVENT": "decision.deny", "JIT_USER": "alice", "JIT_ACTOR": "root", "JIT_REASON": "no grant",
		"JIT_COMMAND": "/usr/bin/id -u", "JIT_AUDIT_SEQ": "7", "SYSLOG_IDENTIFIER": "jitd",
		"MESSAGE_ID": MessageIDs[EventDecisionDeny],
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if pri != journal.PriNotice {
		t.Errorf("deny priority %v, want notice", pri)
	}
	if !strings.Contains(msg, "alice") || !strings.Contains(msg, `reason="no grant"`) {
		t.Errorf("message %q", msg)
	}
	// Break-glass is always loud.
	s.Record(store.AuditRecord{Event: store.EventGrantCreated, Fields: map[string]string{"breakglass": "true"}})
	if pri != journal.PriWarning {
		t.Errorf("break-glass grant priority %v, want warning", pri)
	}
	if _, ok := got["JIT_AUDIT_SEQ"]; ok {
		t.Error("a record outside the chain carries JIT_AUDIT_SEQ")
	}
}
