package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/auditlog"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/jitd/policy"
	"github.com/jitpam/jit/jitd/store"
)

// testServer is an in-process jitd on a temporary socket and state dir.
type testServer struct {
	srv    *Server
	st     *store.Store
	client *api.Client
	socket string
	ended  chan grant.Grant
}

func startServer(t testing.TB, pol *policy.Policy) *testServer {
	t.Helper()
	// The server resolves its callers by uid; as root every call is an
	// approver's, which is what these tests exercise. Other users are
	// exercised end to end (package e2e).
	needRoot(t)
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if pol == nil {
		pol = policy.Default()
	}
	ts := &testServer{st: st, socket: filepath.Join(dir, "jitd.sock"), ended: make(chan grant.Grant, 16)}
	srv, err := New(Config{
		Store: st, Policy: pol, Socket: ts.socket, StateDir: dir,
		Log: hclog.NewNullLogger(), Audit: auditlog.New(hclog.NewNullLogger()), Version: "test",
		OnGrantEnd: func(g grant.Grant) { ts.ended <- g },
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.srv = srv
	ln, err := net.Listen("unix", ts.socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { srv.Run(ctx); done <- struct{}{} }()
	go func() { _ = srv.Serve(ctx, ln); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	ts.client = api.NewClient(ts.socket)
	t.Cleanup(ts.client.Close)
	return ts
}

// needRoot fails the test under CI and skips it elsewhere unless it runs
// as root.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("server integration tests need root")
		}
		t.Skip("server integration tests run as root (make test runs them so)")
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func apiCode(err error) string {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestGrantCheckRevoke(t *testing.T) {
	ts := startServer(t, nil)
	g, err := ts.client.Grant(ctx(t), &api.GrantSpec{User: "root", Kind: grant.KindSudo,
		Commands: []string{"/usr/bin/systemctl restart nginx"}, Duration: api.Duration(30 * time.Minute), Reason: "INC-4711"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(g.ID, "g-") || g.State != grant.StateActive || g.GrantedBy != "root" || g.RunAs != "root" {
		t.Fatalf("unexpected grant %+v", g)
	}
	if d := time.Until(g.ExpiresAt); d < 29*time.Minute || d > 31*time.Minute {
		t.Fatalf("grant expires in %v, want about 30m", d)
	}

	check := func(cmd string, args ...string) *api.Decision {
		t.Helper()
		d, err := ts.client.Check(ctx(t), &api.CheckRequest{User: "root", Kind: grant.KindSudo, Command: cmd, Args: args})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := check("/usr/bin/systemctl", "restart", "nginx"); !d.Allow || d.GrantID != g.ID || d.Remaining <= 0 {
		t.Fatalf("granted command denied: %+v", d)
	}
	// An allowed sudo command comes with its target's groups, as the
	// group database lists them, for sudo's command_info.
	root, err := user.Lookup("root")
	if err != nil {
		t.Fatal(err)
	}
	gids, err := root.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	if d := check("/usr/bin/systemctl", "restart", "nginx"); d.RunAsGroups != strings.Join(gids, ",") {
		t.Errorf("runas_groups %q, want root's groups %q", d.RunAsGroups, strings.Join(gids, ","))
	}
	d := check("/usr/bin/systemctl", "stop", "nginx")
	if d.Allow || !strings.Contains(d.Reason, "/usr/bin/systemctl restart nginx") || !strings.Contains(d.Hint, "jitctl request --cmd") {
		t.Fatalf("other args allowed or unexplained: %+v", d)
	}
	if d.RunAsGroups != "" {
		t.Errorf("a denied command came with runas_groups %q", d.RunAsGroups)
	}

	if _, err := ts.client.Revoke(ctx(t), g.ID, "done"); err != nil {
		t.Fatal(err)
	}
	select {
	case ended := <-ts.ended:
		if ended.ID != g.ID || ended.State != grant.StateRevoked {
			t.Fatalf("end hook got %+v", ended)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("revocation did not reach the end hook")
	}
	if d := check("/usr/bin/systemctl", "restart", "nginx"); d.Allow || !strings.Contains(d.Reason, "revoked") {
		t.Fatalf("revoked grant still allows or does not say so: %+v", d)
	}
	if _, err := ts.client.Revoke(ctx(t), g.ID, "again"); apiCode(err) != api.CodeAlreadyEnded {
		t.Fatalf("second revoke: want %s, got %v", api.CodeAlreadyEnded, err)
	}
}

// A grant ends exactly when it expires, by timer, and the end is audited.
func TestGrantExpiresOnTime(t *testing.T) {
	ts := startServer(t, nil)
	g, err := ts.client.Grant(ctx(t), &api.GrantSpec{User: "root", Kind: grant.KindSudo,
		Commands: []string{"/usr/bin/id"}, Duration: api.Duration(time.Second), Reason: "short"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ended := <-ts.ended:
		if ended.ID != g.ID || ended.State != grant.StateExpired {
			t.Fatalf("end hook got %+v", ended)
		}
		if late := time.Since(g.ExpiresAt); late < 0 {
			t.Fatalf("grant ended %v before its expiry", -late)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("grant did not expire")
	}
	got, err := ts.client.GetGrant(ctx(t), g.ID)
	if err != nil || got.State != grant.StateExpired {
		t.Fatalf("stored grant after expiry: %+v, %v", got, err)
	}
	recs, err := ts.client.Audit(ctx(t), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasEvent(recs, "grant.expired", g.ID) {
		t.Fatalf("no grant.expired audit record for %s", g.ID)
	}
}

func hasEvent(recs []api.AuditRecord, event, grantID string) bool {
	for _, r := range recs {
		if r.Event == event && r.GrantID == grantID {
			return true
		}
	}
	return false
}

// Bad input gets a stable code and a sentence, writes nothing, and the
// daemon keeps serving.
func TestBadInput(t *testing.T) {
	ts := startServer(t, nil)
	good := func() api.GrantSpec {
		return api.GrantSpec{User: "root", Kind: grant.KindSudo, Commands: []string{"/usr/bin/id"},
			Duration: api.Duration(time.Hour), Reason: "t"}
	}
	cases := []struct {
		name   string
		mutate func(*api.GrantSpec)
		code   string
		words  string
	}{
		{"relative command", func(s *api.GrantSpec) { s.Commands = []string{"bin/id"} }, api.CodeBadCommand, "absolute"},
		{"no commands", func(s *api.GrantSpec) { s.Commands = nil }, api.CodeBadCommand, "command"},
		{"bad window", func(s *api.GrantSpec) { s.Windows = []string{"Mon-Fry 09:00-17:00"} }, api.CodeBadWindow, "Fry"},
		{"bad zone", func(s *api.GrantSpec) { s.Windows = []string{"Mon-Fri 09:00-17:00"}; s.Timezone = "Mars/Olympus" }, api.CodeBadWindow, "Mars/Olympus"},
		{"over max", func(s *api.GrantSpec) { s.Duration = api.Duration(100 * time.Hour) }, api.CodeDurationTooLong, "8h"},
		{"no reason", func(s *api.GrantSpec) { s.Reason = "  " }, api.CodeReasonRequired, "reason"},
		{"unknown user", func(s *api.GrantSpec) { s.User = "no-such-user-xyz" }, api.CodeUnknownUser, "no-such-user-xyz"},
		{"unknown runas", func(s *api.GrantSpec) { s.RunAs = "no-such-user-xyz" }, api.CodeUnknownUser, "no-such-user-xyz"},
		{"bad kind", func(s *api.GrantSpec) { s.Kind = "root" }, api.CodeBadRequest, "kind"},
		{"login with commands", func(s *api.GrantSpec) { s.Kind = grant.KindLogin }, api.CodeBadCommand, "login"},
		{"start in the past", func(s *api.GrantSpec) { s.Start = time.Now().Add(-time.Hour) }, api.CodeBadRequest, "past"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := good()
			c.mutate(&spec)
			_, err := ts.client.Grant(ctx(t), &spec)
			if apiCode(err) != c.code || !strings.Contains(err.Error(), c.words) {
				t.Fatalf("want code %s mentioning %q, got %v (code %q)", c.code, c.words, err, apiCode(err))
			}
		})
	}
	gs, err := ts.client.Grants(ctx(t), api.GrantFilter{All: true})
	if err != nil || len(gs) != 0 {
		t.Fatalf("refused grants left something behind: %v %v", gs, err)
	}

	raw := func(body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://jitd/v1/grants", strings.NewReader(body))
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", ts.socket)
		}}}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String()
	}
	for _, c := range []struct{ body, code string }{
		{`{"user":"root",`, api.CodeBadRequest},
		{`{"user":"root","kind":"sudo","commands":["/usr/bin/id"],"reason":"x","evil":true}`, api.CodeBadRequest},
		{`{"user":"root","kind":"sudo","commands":["/usr/bin/id"],"reason":"x","duration":"forever"}`, api.CodeBadRequest},
		{`{"user":"root"} {"again":1}`, api.CodeBadRequest},
		{`{"reason":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`, api.CodeTooLarge},
	} {
		status, body := raw(c.body)
		if status/100 != 4 || !strings.Contains(body, `"code":"`+c.code+`"`) {
			t.Errorf("body %.60q: got %d %s", c.body, status, body)
		}
	}
	if _, err := ts.client.Status(ctx(t)); err != nil {
		t.Fatalf("jitd stopped serving after bad input: %v", err)
	}
}

func TestRequestApproveDeny(t *testing.T) {
	ts := startServer(t, nil)
	// Root files a request; root cannot approve its own.
	r, err := ts.client.Request(ctx(t), &api.RequestSpec{Kind: grant.KindSudo, Commands: []string{"/usr/bin/id"},
		Duration: api.Duration(2 * time.Hour), Reason: "INC-1"})
	if err != nil {
		t.Fatal(err)
	}
	if r.User != "root" || r.State != grant.RequestPending {
		t.Fatalf("request %+v", r)
	}
	if _, err := ts.client.Approve(ctx(t), r.ID, &api.Approval{}); apiCode(err) != api.CodeSelfApproval {
		t.Fatalf("self-approval: want %s, got %v", api.CodeSelfApproval, err)
	}
	if _, err := ts.client.Deny(ctx(t), r.ID, "no"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.client.Deny(ctx(t), r.ID, "no"); apiCode(err) != api.CodeNotPending {
		t.Fatalf("second deny: want %s, got %v", api.CodeNotPending, err)
	}
	if _, err := ts.client.Approve(ctx(t), "r-00000000", &api.Approval{}); apiCode(err) != api.CodeNotFound {
		t.Fatalf("approve unknown: want %s, got %v", api.CodeNotFound, err)
	}
}

// Non-dry-run decisions reach the audit chain, batched.
func TestDecisionsAudited(t *testing.T) {
	ts := startServer(t, nil)
	if _, err := ts.client.Check(ctx(t), &api.CheckRequest{User: "root", Kind: grant.KindSudo, Command: "/bin/true"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.client.Check(ctx(t), &api.CheckRequest{User: "root", Kind: grant.KindSudo, Command: "/bin/false", DryRun: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs, err := ts.client.Audit(ctx(t), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var denies []api.AuditRecord
		for _, r := range recs {
			if r.Event == string(auditlog.EventDecisionDeny) {
				denies = append(denies, r)
			}
		}
		if len(denies) == 1 {
			if denies[0].Fields["command"] != "/bin/true" {
				t.Fatalf("audited the wrong decision: %+v", denies[0])
			}
			break
		}
		if len(denies) > 1 {
			t.Fatalf("a dry run was audited as a use: %+v", denies)
		}
		if time.Now().After(deadline) {
			t.Fatal("decision never reached the audit chain")
		}
		time.Sleep(50 * time.Millisecond)
	}
	v, err := ts.client.VerifyAudit(ctx(t))
	if err != nil || !v.OK {
		t.Fatalf("chain does not verify: %+v %v", v, err)
	}
}

func TestCheckRejectsUnresolvedCommand(t *testing.T) {
	ts := startServer(t, nil)
	for _, cmd := range []string{"id", "./id", "/usr/bin/../bin/id", "/usr/bin//id", ""} {
		_, err := ts.client.Check(ctx(t), &api.CheckRequest{User: "root", Kind: grant.KindSudo, Command: cmd})
		if apiCode(err) != api.CodeBadCommand {
			t.Errorf("command %q: want %s, got %v", cmd, api.CodeBadCommand, err)
		}
	}
}
