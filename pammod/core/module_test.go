package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/grant"
)

type fakeHandle struct {
	items map[item]string
	msgs  []string
	logs  []string
	store map[string]string
	env   map[string]string
}

func newFakeHandle(user string) *fakeHandle {
	return &fakeHandle{
		items: map[item]string{itemUser: user, itemService: "sshd", itemTTY: "ssh", itemRHost: "192.0.2.7"},
		store: map[string]string{}, env: map[string]string{},
	}
}

func (h *fakeHandle) item(i item) string              { return h.items[i] }
func (h *fakeHandle) tell(msg string)                 { h.msgs = append(h.msgs, msg) }
func (h *fakeHandle) log(_ priority, msg string)      { h.logs = append(h.logs, msg) }
func (h *fakeHandle) setData(name, value string) bool { h.store[name] = value; return true }
func (h *fakeHandle) data(name string) string         { return h.store[name] }
func (h *fakeHandle) putenv(name, value string) bool  { h.env[name] = value; return true }
func (h *fakeHandle) getenv(name string) string       { return h.env[name] }

// fakeJitd answers /v1/check with decide and records sessions.
type fakeJitd struct {
	mu       sync.Mutex
	decide   func(*api.CheckRequest) *api.Decision
	opened   []api.SessionSpec
	closed   []string
	closeErr string
}

func startFakeJitd(t *testing.T, f *fakeJitd) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "jitd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathCheck, func(w http.ResponseWriter, r *http.Request) {
		var req api.CheckRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Error(err)
		}
		json.NewEncoder(w).Encode(f.decide(&req))
	})
	mux.HandleFunc("POST "+api.PathSessions, func(w http.ResponseWriter, r *http.Request) {
		var spec api.SessionSpec
		json.NewDecoder(r.Body).Decode(&spec)
		f.mu.Lock()
		f.opened = append(f.opened, spec)
		id := "s-" + strconv.Itoa(len(f.opened))
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(grant.Session{ID: id, User: spec.User, Kind: spec.Kind, State: grant.SessionOpen})
	})
	mux.HandleFunc("POST "+api.PathSessions+"/{id}/close", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.closed = append(f.closed, r.PathValue("id"))
		code := f.closeErr
		f.mu.Unlock()
		if code != "" {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(api.ErrorBody{Error: &api.Error{Code: code, Message: "no such session"}})
			return
		}
		json.NewEncoder(w).Encode(grant.Session{ID: r.PathValue("id"), State: grant.SessionClosed})
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

type journalRecord struct {
	msg    string
	fields map[string]string
}

func recordJournal(t *testing.T) *[]journalRecord {
	var recs []journalRecord
	old := sendJournal
	sendJournal = func(msg string, p journal.Priority, f map[string]string) error {
		recs = append(recs, journalRecord{msg, f})
		return nil
	}
	t.Cleanup(func() { sendJournal = old })
	return &recs
}

func newCall(h pamHandle, args ...string) *call {
	return &call{h: h, opts: parseArgs(args), pid: 4242}
}

func TestParseArgs(t *testing.T) {
	o := parseArgs(nil)
	if o.socket != api.DefaultSocket || o.timeout != 2*time.Second || o.debug || o.exemptGroup != "" {
		t.Fatalf("defaults: %+v", o)
	}
	o = parseArgs([]string{"socket=/x.sock", "timeout=1.5", "exempt_group=wheel", "debug", "bogus", "timeout=forever"})
	if o.socket != "/x.sock" || o.timeout != 1500*time.Millisecond || o.exemptGroup != "wheel" || !o.debug {
		t.Fatalf("parsed: %+v", o)
	}
	if strings.Join(o.bad, " ") != "bogus timeout=forever" {
		t.Fatalf("bad args: %q", o.bad)
	}
	if o := parseArgs([]string{"timeout=300ms"}); o.timeout != 300*time.Millisecond {
		t.Fatalf("timeout=300ms: %v", o.timeout)
	}
}

func TestAccountDenyAndAllow(t *testing.T) {
	recs := recordJournal(t)
	f := &fakeJitd{decide: func(req *api.CheckRequest) *api.Decision {
		if req.Kind != grant.KindLogin || req.Service != "sshd" || req.TTY != "ssh" || req.RHost != "192.0.2.7" {
			t.Errorf("check request: %+v", req)
		}
		if req.User == "alice" {
			return &api.Decision{Allow: true, GrantID: "g-1", Remaining: api.Duration(10 * time.Minute)}
		}
		return &api.Decision{Code: "no_grant", Reason: req.User + " has no grant to log in (service sshd)", Hint: "jitctl request --login --for 1h --reason '…'"}
	}}
	sock := startFakeJitd(t, f)

	h := newFakeHandle("bob")
	if rc := newCall(h, "socket="+sock).account(); rc != pamPermDenied {
		t.Fatalf("bob: rc %d", rc)
	}
	want := "jit: login refused: bob has no grant to log in (service sshd). To ask for access, run: jitctl request --login --for 1h --reason '…'"
	if len(h.msgs) != 1 || h.msgs[0] != want {
		t.Fatalf("message:\n got %q\nwant %q", h.msgs, want)
	}
	if len(h.store) != 0 {
		t.Errorf("a refusal left PAM data: %v", h.store)
	}

	h = newFakeHandle("alice")
	if rc := newCall(h, "socket="+sock).account(); rc != pamSuccess {
		t.Fatalf("alice: rc %d, logs %v", rc, h.logs)
	}
	if len(h.msgs) != 0 || h.store[dataGrant] != "g-1" || h.store[dataDeadline] == "" || h.store[dataAccount] != "allow" {
		t.Fatalf("alice: msgs %q data %v", h.msgs, h.store)
	}
	if len(*recs) != 2 {
		t.Fatalf("journal records: %+v", *recs)
	}
	deny, allow := (*recs)[0].fields, (*recs)[1].fields
	if deny["JIT_EVENT"] != "pam.account" || deny["JIT_DECISION"] != "deny" || deny["JIT_USER"] != "bob" || deny["MESSAGE_ID"] != messageIDs[eventAccount] || deny["SYSLOG_IDENTIFIER"] != "pam_jit" {
		t.Errorf("deny record: %v", deny)
	}
	if allow["JIT_DECISION"] != "allow" || allow["JIT_GRANT_ID"] != "g-1" || allow["JIT_RHOST"] != "192.0.2.7" || allow["JIT_SERVICE"] != "sshd" {
		t.Errorf("allow record: %v", allow)
	}

	// Session open uses account's decision: no second check.
	checks := 0
	f.decide = func(*api.CheckRequest) *api.Decision { checks++; return &api.Decision{Allow: true} }
	c := newCall(h, "socket="+sock)
	if rc := c.openSession(); rc != pamSuccess {
		t.Fatalf("open: rc %d, logs %v", rc, h.logs)
	}
	if checks != 0 {
		t.Errorf("session open asked jitd again")
	}
	if len(f.opened) != 1 {
		t.Fatalf("opened: %+v", f.opened)
	}
	spec := f.opened[0]
	if spec.User != "alice" || spec.GrantID != "g-1" || spec.PID != 4242 || spec.Kind != grant.KindLogin || spec.Service != "sshd" || spec.RHost != "192.0.2.7" {
		t.Errorf("session spec: %+v", spec)
	}
	if h.env[envSession] != "s-1" || h.store[dataSession] != "s-1" {
		t.Errorf("session id not kept: env %v data %v", h.env, h.store)
	}
	secs, err := strconv.Atoi(h.store[dataRuntimeMax])
	if err != nil || secs < 595 || secs > 600 {
		t.Errorf("systemd.runtime_max_sec = %q", h.store[dataRuntimeMax])
	}

	if rc := newCall(h, "socket="+sock).closeSession(); rc != pamSuccess || len(f.closed) != 1 || f.closed[0] != "s-1" {
		t.Fatalf("close: rc %d closed %v", rc, f.closed)
	}
	// A session jitd already ended (the grant ran out) closes fine.
	f.closeErr = api.CodeNotFound
	if rc := newCall(h, "socket="+sock).closeSession(); rc != pamSuccess {
		t.Fatalf("close of an ended session: rc %d", rc)
	}
	// Nothing registered: nothing to do.
	if rc := newCall(newFakeHandle("carol"), "socket="+sock).closeSession(); rc != pamIgnore {
		t.Fatalf("close without a session: rc %d", rc)
	}
}

// No jitd: everyone is refused but root (and exempt_group members).
func TestAccountFailsClosed(t *testing.T) {
	recordJournal(t)
	sock := filepath.Join(t.TempDir(), "nobody-home.sock")
	h := newFakeHandle("nosuchuser-jit")
	if rc := newCall(h, "socket="+sock).account(); rc != pamPermDenied {
		t.Fatalf("rc %d", rc)
	}
	if len(h.msgs) != 1 || !strings.HasPrefix(h.msgs[0], "jit: login refused: cannot reach jitd at "+sock) || strings.Contains(h.msgs[0], "\n") {
		t.Fatalf("message: %q", h.msgs)
	}
	h = newFakeHandle("root")
	if rc := newCall(h, "socket="+sock).account(); rc != pamSuccess {
		t.Fatalf("root with jitd down: rc %d", rc)
	}
	// Silent calls say nothing to the user.
	h = newFakeHandle("nosuchuser-jit")
	c := newCall(h, "socket="+sock)
	c.silent = true
	c.account()
	if len(h.msgs) != 0 {
		t.Fatalf("PAM_SILENT: %q", h.msgs)
	}
}

// A session under a grant that jitd cannot register is refused: jitd could
// not end it. One without a grant proceeds.
func TestOpenSessionUnregistered(t *testing.T) {
	recordJournal(t)
	sock := filepath.Join(t.TempDir(), "nobody-home.sock")
	h := newFakeHandle("nosuchuser-jit")
	h.store[dataAccount] = "allow"
	h.store[dataGrant] = "g-9"
	if rc := newCall(h, "socket="+sock).openSession(); rc != pamSessionErr {
		t.Fatalf("under a grant: rc %d", rc)
	}
	h = newFakeHandle("nosuchuser-jit")
	h.store[dataAccount] = "allow"
	if rc := newCall(h, "socket="+sock).openSession(); rc != pamSuccess {
		t.Fatalf("without a grant: rc %d", rc)
	}
}

// Every MESSAGE_ID has an entry in the catalog that ships in contrib/.
func TestCatalog(t *testing.T) {
	catalog, err := os.ReadFile("../../contrib/pam_jit.catalog")
	if err != nil {
		t.Fatal(err)
	}
	for ev, id := range messageIDs {
		if len(id) != 32 || !strings.Contains(string(catalog), "-- "+id+"\n") {
			t.Errorf("%s: MESSAGE_ID %s has no catalog entry", ev, id)
		}
	}
}
