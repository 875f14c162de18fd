package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/user"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/auditlog"
	"github.com/jitpam/jit/jitd/cmdmatch"
	"github.com/jitpam/jit/jitd/decide"
	"github.com/jitpam/jit/jitd/enforce"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/jitd/store"
	"github.com/jitpam/jit/jitd/window"
)

// apiErr is an error with its HTTP status and stable code.
type apiErr struct {
	status int
	code   string
	msg    string
}

func (e *apiErr) Error() string { return e.msg }

func badRequest(code, format string, args ...any) *apiErr {
	return &apiErr{http.StatusBadRequest, code, fmt.Sprintf(format, args...)}
}

func forbidden(code, format string, args ...any) *apiErr {
	return &apiErr{http.StatusForbidden, code, fmt.Sprintf(format, args...)}
}

func errInternal(err error) *apiErr {
	return &apiErr{http.StatusInternalServerError, api.CodeInternal, "jitd: " + err.Error()}
}

// storeErr maps the store's errors onto the API's.
func storeErr(err error) *apiErr {
	var ended *store.AlreadyEndedError
	var pending *store.NotPendingError
	switch {
	case errors.As(err, &ended):
		return &apiErr{http.StatusConflict, api.CodeAlreadyEnded, ended.Error()}
	case errors.As(err, &pending):
		return &apiErr{http.StatusConflict, api.CodeNotPending, pending.Error()}
	case errors.Is(err, store.ErrNotFound):
		return &apiErr{http.StatusNotFound, api.CodeNotFound, err.Error()}
	}
	return errInternal(err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(api.ErrorBody{Error: &api.Error{Code: api.CodeInternal, Message: "encode answer: " + err.Error()}})
	}
	b = append(b, '\n')
	// A known length lets the answer leave at once when the handler
	// flushes it and goes on (see caller.later), without chunking.
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, err error) {
	var e *apiErr
	if !errors.As(err, &e) {
		e = errInternal(err)
	}
	writeJSON(w, e.status, api.ErrorBody{Error: &api.Error{Code: e.code, Message: e.msg}})
}

// decode reads a size-limited, strictly typed JSON body into v.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, api.MaxBodyBytes)
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &apiErr{http.StatusRequestEntityTooLarge, api.CodeTooLarge,
				fmt.Sprintf("request body over %d bytes", api.MaxBodyBytes)}
		}
		return badRequest(api.CodeBadRequest, "reading request body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest(api.CodeBadRequest, "malformed request: %v", err)
	}
	if dec.More() {
		return badRequest(api.CodeBadRequest, "malformed request: trailing data after the JSON object")
	}
	return nil
}

// sinceParam reads the optional ?since= of listings.
func sinceParam(r *http.Request) (time.Time, error) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badRequest(api.CodeBadRequest, "since %q is not an RFC 3339 time", v)
	}
	return t, nil
}

// caller is the authenticated peer of a request.
type caller struct {
	PID      int
	UID      int
	Name     string
	Groups   []string
	root     bool
	approver bool

	// later is work for after the answer has been sent: what the caller
	// need not wait for, such as writing a decision to journald while
	// sudo goes on to run the command.
	later []func()
}

func (s *Server) caller(r *http.Request) (*caller, error) {
	p, _ := peerOf(r.Context())
	acct, err := s.accounts.byUIDLookup(p.UID)
	if err != nil {
		if p.UID != 0 {
			return nil, forbidden(api.CodeForbidden, "uid %d has no account name; jitd serves only known users", p.UID)
		}
		acct = Account{Name: "root", UID: 0}
	}
	c := &caller{PID: p.PID, UID: p.UID, Name: acct.Name, Groups: acct.Groups, root: p.UID == 0}
	c.approver = c.root || s.Policy().IsApprover(acct.Name, acct.Groups)
	return c, nil
}

func (c *caller) requireApprover(what string) error {
	if c.approver {
		return nil
	}
	return forbidden(api.CodeNotApprover, "%s is not an approver: only approvers may %s", c.Name, what)
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	counts, err := s.cfg.Store.Counts()
	if err != nil {
		return 0, nil, errInternal(err)
	}
	st := api.Status{
		Version: s.cfg.Version, StartedAt: s.started, Socket: s.cfg.Socket, StateDir: s.cfg.StateDir,
		PolicyFile: s.cfg.PolicyFile, PolicyLoadedAt: *s.loadedAt.Load(),
		ActiveGrants: counts.ActiveGrants, PendingRequests: counts.PendingRequests, OpenSessions: counts.OpenSessions,
		You: api.Caller{UID: c.UID, User: c.Name, Groups: c.Groups, Approver: c.approver},
	}
	if next, ok, err := s.cfg.Store.NextExpiry(); err == nil && ok {
		st.NextExpiry = next.At
	}
	return http.StatusOK, st, nil
}

func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	var req api.CheckRequest
	if err := decode(w, r, &req); err != nil {
		return 0, nil, err
	}
	if req.User == "" {
		req.User = c.Name
	}
	switch {
	case c.root:
	case req.User == c.Name:
		// Anyone may ask about themselves, but only sudo and PAM (root)
		// make decisions that count as uses.
		req.DryRun = true
	case c.approver && req.DryRun:
	default:
		return 0, nil, forbidden(api.CodeForbidden, "%s may not ask for %s's decisions: only root (sudo, sshd) and approvers (dry runs) may", c.Name, req.User)
	}
	if req.Session != nil && (!c.root || req.DryRun) {
		return 0, nil, forbidden(api.CodeForbidden, "only root (sudo, PAM) registers sessions, and not with a dry run")
	}
	d, err := s.check(c, &req)
	if err != nil {
		return 0, nil, err
	}
	if req.Session != nil && d.Allow && !d.Authenticate {
		spec := *req.Session
		spec.Kind, spec.User, spec.GrantID, spec.Rule = req.Kind, req.User, d.GrantID, d.Rule
		sess, err := s.openSession(c, &spec)
		if err != nil {
			return 0, nil, err
		}
		d.SessionID = sess.ID
	}
	return http.StatusOK, d, nil
}

// check decides req and audits the decision.
func (s *Server) check(c *caller, req *api.CheckRequest) (*api.Decision, error) {
	switch req.Kind {
	case grant.KindSudo:
		if !path.IsAbs(req.Command) || path.Clean(req.Command) != req.Command {
			return nil, badRequest(api.CodeBadCommand, "command %q must be an absolute, clean path (resolve it against a secure PATH first)", req.Command)
		}
	case grant.KindLogin:
	default:
		return nil, badRequest(api.CodeBadRequest, "kind must be %q or %q, not %q", grant.KindSudo, grant.KindLogin, req.Kind)
	}
	acct, err := s.accounts.byNameLookup(req.User)
	if err != nil {
		if errors.Is(err, errUnknownUser) {
			return nil, badRequest(api.CodeUnknownUser, "no such user %q", req.User)
		}
		return nil, errInternal(err)
	}
	pol := s.Policy()
	now := s.now()
	d := decide.Decide(decide.Request{
		User: acct.Name, Groups: acct.Groups, Kind: req.Kind, Command: req.Command, Args: req.Args,
		RunAs: req.RunAs, RunAsGroup: req.RunAsGroup, RunAsUserGroups: s.targetGroups(req, acct),
		Shell: req.Shell, Service: req.Service,
	}, s.set.Load(), now)
	out := &api.Decision{
		Allow: d.Allow, Code: string(d.Code), Reason: d.Reason,
		GrantID: d.GrantID, GrantedBy: d.GrantedBy, GrantReason: d.GrantReason, Rule: d.RuleName,
		BreakGlass: d.BreakGlass, ExpiresAt: d.ExpiresAt, Remaining: api.Duration(d.Remaining),
		Authenticate: pol.Authenticate, AuthCache: api.Duration(pol.AuthCache),
		RecordingRequired: pol.Recording.Required, RecordInput: pol.Recording.Input,
		RecordingDisabled: !pol.Recording.Enabled,
	}
	if req.Kind == grant.KindLogin && !d.Allow && !pol.LoginGated(req.Service, acct.Name, acct.Groups) {
		// Login gating does not cover this service or user: nothing to ask.
		out.Allow, out.Code, out.Reason = true, "not_gated", fmt.Sprintf("logins of %s through %s are not gated by jit", acct.Name, orDefault(req.Service, "this service"))
	}
	if !out.Allow {
		out.Hint = requestHint(req)
	}
	if out.Allow && req.Kind == grant.KindSudo && !req.DryRun {
		out.RunAsGroups = s.runAsGIDs(req, acct)
	}
	if !req.DryRun {
		// The answer does not wait for journald; the plugin writes its
		// own record of what it ran, and the chain gets the decision in
		// a batch either way.
		c.later = append(c.later, func() { s.auditDecision(c, req, out, now) })
	}
	return out, nil
}

// targetGroups returns the groups of the target user of a sudo -g
// request, which sudoers lets -g name whatever the grant says. They come
// from jitd's own lookup, never from the client. An unknown target has
// none, so -g is then judged by the grant's runas group alone.
func (s *Server) targetGroups(req *api.CheckRequest, invoker Account) []string {
	if req.RunAsGroup == "" {
		return nil
	}
	target := orDefault(req.RunAs, grant.DefaultRunAs)
	if target == invoker.Name {
		return invoker.Groups
	}
	acct, err := s.accounts.byNameLookup(target)
	if err != nil {
		s.log.Debug("no groups for the target of sudo -g", "runas", target, "error", err)
		return nil
	}
	return acct.Groups
}

// runAsGIDs lists the group IDs of an allowed sudo command's target user,
// for the plugin's command_info; "" if the user database does not know
// the target (the plugin then looks for itself).
func (s *Server) runAsGIDs(req *api.CheckRequest, invoker Account) string {
	target := orDefault(req.RunAs, grant.DefaultRunAs)
	acct := invoker
	if target != invoker.Name {
		var err error
		if acct, err = s.accounts.byNameLookup(target); err != nil {
			s.log.Debug("no group IDs for the target of sudo", "runas", target, "error", err)
			return ""
		}
	}
	ids := make([]string, len(acct.GIDs))
	for i, g := range acct.GIDs {
		ids[i] = strconv.Itoa(g)
	}
	return strings.Join(ids, ",")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// requestHint is the jitctl line that asks for what was just denied.
func requestHint(req *api.CheckRequest) string {
	if req.Kind == grant.KindLogin {
		return "jitctl request --login --for 1h --reason '…'"
	}
	cmd := shellQuote(req.Command)
	for _, a := range req.Args {
		cmd += " " + a
	}
	hint := "jitctl request --cmd " + shellQuote(strings.TrimSpace(cmd))
	// sudo -g alone targets the invoking user; a grant for (root:GROUP)
	// covers that, so the hint asks for the group only.
	onlyGroup := req.RunAsGroup != "" && req.RunAs == req.User
	if req.RunAs != "" && req.RunAs != grant.DefaultRunAs && !onlyGroup {
		hint += " --runas " + shellQuote(req.RunAs)
	}
	if req.RunAsGroup != "" {
		hint += " --runas-group " + shellQuote(req.RunAsGroup)
	}
	return hint + " --for 30m --reason '…'"
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// auditDecision writes the decision to journald now and queues it for the
// chain.
func (s *Server) auditDecision(c *caller, req *api.CheckRequest, d *api.Decision, now time.Time) {
	ev := auditlog.EventDecisionDeny
	if d.Allow {
		ev = auditlog.EventDecisionAllow
	}
	fields := map[string]string{
		"kind": string(req.Kind), "decision": d.Code, "client_pid": strconv.Itoa(c.PID),
	}
	if d.Allow {
		fields["decision"] = "allow"
	}
	set := func(k, v string) {
		if v != "" {
			fields[k] = v
		}
	}
	if req.Kind == grant.KindSudo {
		set("command", strings.TrimSpace(req.Command+" "+strings.Join(req.Args, " ")))
		set("runas", orDefault(req.RunAs, grant.DefaultRunAs))
		set("runas_group", req.RunAsGroup)
	}
	set("service", req.Service)
	set("tty", req.TTY)
	set("cwd", req.Cwd)
	set("rhost", req.RHost)
	set("rule", d.Rule)
	if d.BreakGlass {
		fields["breakglass"] = "true"
	}
	rec := store.AuditRecord{
		Time: now, Event: ev, Actor: c.Name, User: req.User, GrantID: d.GrantID, Reason: d.Reason, Fields: fields,
	}
	s.cfg.Audit.Record(rec)
	select {
	case s.decisions <- rec:
	default:
		s.log.Error("decision queue full; this decision is in journald but not in the chain", "user", req.User)
	}
}

func (s *Server) handleCreateGrant(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	var spec api.GrantSpec
	if err := decode(w, r, &spec); err != nil {
		return 0, nil, err
	}
	pol := s.Policy()
	breakGlass := false
	if !c.approver {
		if spec.User != c.Name || !pol.IsBreakGlass(c.Name, c.Groups) {
			return 0, nil, c.requireApprover("grant")
		}
		breakGlass = true
	}
	now := s.now()
	g, err := s.grantFromSpec(&spec, now)
	if err != nil {
		return 0, nil, err
	}
	if breakGlass {
		if err := pol.CheckBreakGlassDuration(g.ExpiresAt.Sub(g.NotBefore)); err != nil {
			return 0, nil, badRequest(api.CodeDurationTooLong, "%v", err)
		}
		g.BreakGlass = true
	}
	g.GrantedBy = c.Name
	fields := map[string]string{"client_pid": strconv.Itoa(c.PID)}
	if breakGlass {
		fields["breakglass"] = "true"
	}
	created, err := s.cfg.Store.CreateGrant(*g, store.Audit{Actor: c.Name, Reason: g.Reason, Fields: fields})
	if err != nil {
		return 0, nil, storeErr(err)
	}
	if breakGlass {
		s.log.Warn("BREAK-GLASS self-grant", "user", c.Name, "grant", created.ID, "reason", created.Reason)
		s.cfg.Audit.Record(store.AuditRecord{
			Time: now, Event: auditlog.EventBreakGlass, Actor: c.Name, User: c.Name, GrantID: created.ID,
			Reason: created.Reason, Fields: map[string]string{"breakglass": "true", "commands": strings.Join(created.Commands, "; ")},
		})
	}
	s.changed(created)
	return http.StatusCreated, created, nil
}

// grantFromSpec validates a grant spec against the policy and the system.
func (s *Server) grantFromSpec(spec *api.GrantSpec, now time.Time) (*grant.Grant, error) {
	if _, err := s.lookupUser(spec.User); err != nil {
		return nil, err
	}
	g := &grant.Grant{
		User: spec.User, Kind: spec.Kind, RunAs: spec.RunAs, RunAsGroup: spec.RunAsGroup, Commands: spec.Commands,
		Windows: spec.Windows, Timezone: spec.Timezone, EndAtWindowClose: spec.EndAtWindowClose,
		Reason: strings.TrimSpace(spec.Reason), CreatedAt: now, State: grant.StateActive,
	}
	if err := s.validateShape(g.Kind, &g.RunAs, g.RunAsGroup, g.Commands, g.Reason); err != nil {
		return nil, err
	}
	dur, err := s.Policy().GrantDuration(time.Duration(spec.Duration))
	if err != nil {
		return nil, badRequest(api.CodeDurationTooLong, "%v", err)
	}
	g.NotBefore = now
	if !spec.Start.IsZero() {
		if spec.Start.Before(now.Add(-time.Minute)) {
			return nil, badRequest(api.CodeBadRequest, "start %s is in the past", spec.Start.Format(time.RFC3339))
		}
		if spec.Start.After(now) {
			g.NotBefore = spec.Start
		}
	}
	g.ExpiresAt = g.NotBefore.Add(dur)
	if err := validatePatterns(g.Commands, g.Windows, g.Timezone); err != nil {
		return nil, err
	}
	return g, nil
}

// validateShape checks what grants and requests share.
func (s *Server) validateShape(kind grant.Kind, runas *string, runasGroup string, cmds []string, reason string) error {
	switch kind {
	case grant.KindSudo:
		if len(cmds) == 0 {
			return badRequest(api.CodeBadCommand, "a sudo grant needs at least one command (a pattern, or ALL)")
		}
	case grant.KindLogin:
		if len(cmds) > 0 {
			return badRequest(api.CodeBadCommand, "a login grant takes no commands")
		}
	default:
		return badRequest(api.CodeBadRequest, "kind must be %q or %q, not %q", grant.KindSudo, grant.KindLogin, kind)
	}
	if kind == grant.KindSudo {
		if *runas == "" {
			*runas = grant.DefaultRunAs
		}
		if _, err := s.lookupUser(*runas); err != nil {
			return err
		}
		if err := lookupGroup(runasGroup); err != nil {
			return err
		}
	} else if runasGroup != "" {
		return badRequest(api.CodeBadRequest, "a login grant takes no runas group")
	}
	if s.Policy().RequireReason && reason == "" {
		return badRequest(api.CodeReasonRequired, "a reason is required (--reason, e.g. the incident or ticket)")
	}
	if len(reason) > 1024 {
		return badRequest(api.CodeBadRequest, "reason is %d bytes; keep it under 1024", len(reason))
	}
	return nil
}

// validatePatterns compiles commands and windows the way the decision set
// will, so that a grant or request that could never work is refused when it
// is made, with the reason.
func validatePatterns(cmds, windows []string, tz string) error {
	for _, c := range cmds {
		if _, err := cmdmatch.Compile(c); err != nil {
			return badRequest(api.CodeBadCommand, "%v", err)
		}
	}
	if _, err := window.ParseSchedule(windows, tz); err != nil {
		return badRequest(api.CodeBadWindow, "%v", err)
	}
	return nil
}

// lookupGroup accepts "" (no runas group), ALL, and groups that exist,
// so that a typo is refused when the grant is made, not at the first sudo.
func lookupGroup(name string) error {
	if name == "" || name == "ALL" {
		return nil
	}
	if _, err := user.LookupGroup(name); err != nil {
		var unknown user.UnknownGroupError
		if errors.As(err, &unknown) {
			return badRequest(api.CodeUnknownGroup, "no such group %q on this host (a runas group is a group name, or ALL)", name)
		}
		return errInternal(fmt.Errorf("look up group %q: %w", name, err))
	}
	return nil
}

func (s *Server) lookupUser(name string) (Account, error) {
	if name == "" {
		return Account{}, badRequest(api.CodeUnknownUser, "no user given")
	}
	acct, err := s.accounts.byNameLookup(name)
	if err != nil {
		if errors.Is(err, errUnknownUser) {
			return Account{}, badRequest(api.CodeUnknownUser, "no such user %q on this host", name)
		}
		return Account{}, errInternal(err)
	}
	return acct, nil
}

func (s *Server) handleListGrants(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	f := store.GrantFilter{User: r.URL.Query().Get("user"), IncludeEnded: r.URL.Query().Get("all") != ""}
	if !c.approver {
		if f.User != "" && f.User != c.Name {
			return 0, nil, c.requireApprover("list other users' grants")
		}
		f.User = c.Name
	}
	gs, err := s.cfg.Store.ListGrants(f)
	if err != nil {
		return 0, nil, storeErr(err)
	}
	if gs == nil {
		gs = []grant.Grant{}
	}
	return http.StatusOK, gs, nil
}

func (s *Server) handleGetGrant(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	g, err := s.cfg.Store.GetGrant(r.PathValue("id"))
	if err != nil {
		return 0, nil, storeErr(err)
	}
	if !c.approver && g.User != c.Name {
		return 0, nil, &apiErr{http.StatusNotFound, api.CodeNotFound, "no grant " + r.PathValue("id")}
	}
	return http.StatusOK, g, nil
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	var end api.Ending
	if err := decode(w, r, &end); err != nil {
		return 0, nil, err
	}
	id := r.PathValue("id")
	if !c.approver {
		// People may give up their own grant early; nothing else.
		g, err := s.cfg.Store.GetGrant(id)
		if err != nil || g.User != c.Name {
			return 0, nil, c.requireApprover("revoke other users' grants")
		}
	}
	g, err := s.cfg.Store.EndGrant(id, grant.StateRevoked, s.now(), store.Audit{Actor: c.Name, Reason: end.Reason})
	if err != nil {
		return 0, nil, storeErr(err)
	}
	s.changed(g)
	s.endSessionsOf(g)
	if s.cfg.OnGrantEnd != nil {
		s.cfg.OnGrantEnd(g)
	}
	return http.StatusOK, g, nil
}

func (s *Server) handleExtend(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	if err := c.requireApprover("extend grants"); err != nil {
		return 0, nil, err
	}
	var ext api.Extension
	if err := decode(w, r, &ext); err != nil {
		return 0, nil, err
	}
	if ext.Duration <= 0 {
		return 0, nil, badRequest(api.CodeBadDuration, "extension must be positive")
	}
	id := r.PathValue("id")
	g, err := s.cfg.Store.GetGrant(id)
	if err != nil {
		return 0, nil, storeErr(err)
	}
	newEnd := g.ExpiresAt.Add(time.Duration(ext.Duration))
	if err := s.Policy().CheckDuration(newEnd.Sub(s.now())); err != nil {
		return 0, nil, badRequest(api.CodeDurationTooLong, "%v", err)
	}
	g, err = s.cfg.Store.ExtendGrant(id, newEnd, store.Audit{Actor: c.Name, Reason: ext.Reason})
	if err != nil {
		return 0, nil, storeErr(err)
	}
	s.changed(g)
	s.forgetWarnings(g.ID)
	return http.StatusOK, g, nil
}

func (s *Server) handleCreateRequest(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	var spec api.RequestSpec
	if err := decode(w, r, &spec); err != nil {
		return 0, nil, err
	}
	now := s.now()
	req := grant.Request{
		User: c.Name, Kind: spec.Kind, RunAs: spec.RunAs, RunAsGroup: spec.RunAsGroup, Commands: spec.Commands,
		Windows: spec.Windows, Timezone: spec.Timezone, Reason: strings.TrimSpace(spec.Reason), CreatedAt: now,
		State: grant.RequestPending,
	}
	if err := s.validateShape(req.Kind, &req.RunAs, req.RunAsGroup, req.Commands, req.Reason); err != nil {
		return 0, nil, err
	}
	dur, err := s.Policy().GrantDuration(time.Duration(spec.Duration))
	if err != nil {
		return 0, nil, badRequest(api.CodeDurationTooLong, "%v", err)
	}
	req.Duration = dur
	// A request that can never work is refused while the requester is
	// still at the keyboard.
	if err := validatePatterns(req.Commands, req.Windows, req.Timezone); err != nil {
		return 0, nil, err
	}
	created, err := s.cfg.Store.CreateRequest(req, store.Audit{Actor: c.Name, Reason: req.Reason,
		Fields: map[string]string{"client_pid": strconv.Itoa(c.PID)}})
	if err != nil {
		return 0, nil, storeErr(err)
	}
	return http.StatusCreated, created, nil
}

func (s *Server) handleListRequests(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	f := store.RequestFilter{User: r.URL.Query().Get("user"), PendingOnly: r.URL.Query().Get("all") == ""}
	if !c.approver {
		if f.User != "" && f.User != c.Name {
			return 0, nil, c.requireApprover("list other users' requests")
		}
		f.User = c.Name
		f.PendingOnly = false // people see what became of their own requests
	}
	rs, err := s.cfg.Store.ListRequests(f)
	if err != nil {
		return 0, nil, storeErr(err)
	}
	if rs == nil {
		rs = []grant.Request{}
	}
	return http.StatusOK, rs, nil
}

func (s *Server) handleApprove(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	if err := c.requireApprover("approve requests"); err != nil {
		return 0, nil, err
	}
	var ap api.Approval
	if err := decode(w, r, &ap); err != nil {
		return 0, nil, err
	}
	id := r.PathValue("id")
	req, err := s.cfg.Store.GetRequest(id)
	if err != nil {
		return 0, nil, storeErr(err)
	}
	if req.User == c.Name {
		return 0, nil, forbidden(api.CodeSelfApproval, "%s cannot approve their own request %s: another approver must", c.Name, id)
	}
	dur := req.Duration
	if ap.Duration > 0 {
		if time.Duration(ap.Duration) > dur {
			return 0, nil, badRequest(api.CodeBadDuration, "an approval may shorten a request, not lengthen it (%s asked for %s)", req.User, dur)
		}
		dur = time.Duration(ap.Duration)
	}
	now := s.now()
	g := grant.Grant{
		User: req.User, Kind: req.Kind, RunAs: req.RunAs, RunAsGroup: req.RunAsGroup, Commands: req.Commands,
		Windows: req.Windows, Timezone: req.Timezone, NotBefore: now, ExpiresAt: now.Add(dur), Reason: req.Reason,
		GrantedBy: c.Name, CreatedAt: now, RequestID: req.ID, State: grant.StateActive,
	}
	_, created, err := s.cfg.Store.ApproveRequest(id, g, store.Audit{Actor: c.Name, Reason: ap.Reason})
	if err != nil {
		return 0, nil, storeErr(err)
	}
	s.changed(created)
	return http.StatusCreated, created, nil
}

func (s *Server) handleDeny(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	if err := c.requireApprover("deny requests"); err != nil {
		return 0, nil, err
	}
	var end api.Ending
	if err := decode(w, r, &end); err != nil {
		return 0, nil, err
	}
	req, err := s.cfg.Store.DenyRequest(r.PathValue("id"), store.Audit{Actor: c.Name, Reason: end.Reason})
	if err != nil {
		return 0, nil, storeErr(err)
	}
	return http.StatusOK, req, nil
}

func (s *Server) handleOpenSession(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	if !c.root {
		return 0, nil, forbidden(api.CodeForbidden, "only root (sudo, PAM) registers sessions")
	}
	var spec api.SessionSpec
	if err := decode(w, r, &spec); err != nil {
		return 0, nil, err
	}
	sess, err := s.openSession(c, &spec)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, sess, nil
}

// openSession registers a session of spec.PID, refusing one whose grant has
// already ended.
func (s *Server) openSession(c *caller, spec *api.SessionSpec) (*grant.Session, error) {
	if spec.PID <= 0 {
		return nil, badRequest(api.CodeBadRequest, "session needs the pid to signal")
	}
	// The store refuses a grant that ended (or expired) between sudo's
	// decision and this call, or that belongs to someone else: the session
	// would run unwatched, so sudo fails closed.
	start, err := enforce.StartTime(spec.PID)
	if err != nil {
		return nil, badRequest(api.CodeBadRequest, "pid %d: %v", spec.PID, err)
	}
	sess := grant.Session{
		Kind: spec.Kind, User: spec.User, GrantID: spec.GrantID, RuleName: spec.Rule, RunAs: spec.RunAs,
		Command: spec.Command, TTY: spec.TTY, Service: spec.Service, RHost: spec.RHost,
		PID: spec.PID, PIDStart: start, AuditSession: spec.AuditSession, BootID: s.bootID, StartedAt: s.now(), State: grant.SessionOpen,
	}
	created, err := s.cfg.Store.OpenSession(sess, store.Audit{Actor: c.Name, Fields: map[string]string{"client_pid": strconv.Itoa(c.PID)}})
	if errors.Is(err, store.ErrInvalid) {
		return nil, badRequest(api.CodeBadRequest, "%v", err) // another's grant, another kind
	}
	if err != nil {
		return nil, storeErr(err)
	}
	return &created, nil
}

func (s *Server) handleCloseSession(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	if !c.root {
		return 0, nil, forbidden(api.CodeForbidden, "only root (sudo, PAM) closes sessions")
	}
	var end api.SessionEnd
	if err := decode(w, r, &end); err != nil {
		return 0, nil, err
	}
	id := r.PathValue("id")
	if why, ending := s.endingReason(id); ending {
		// The close is the echo of jitd's own termination (sshd or sudo
		// noticing its processes die): record what really happened.
		sess, err := s.cfg.Store.TerminateSession(id, s.now(), store.Audit{Actor: "jitd", Reason: why,
			Fields: map[string]string{"closed_by": c.Name}})
		if err != nil {
			return 0, nil, storeErr(err)
		}
		return http.StatusOK, sess, nil
	}
	sess, err := s.cfg.Store.CloseSession(id, end.ExitStatus, s.now(), store.Audit{Actor: c.Name, Reason: end.Reason})
	if err != nil {
		return 0, nil, storeErr(err)
	}
	return http.StatusOK, sess, nil
}

func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	q := r.URL.Query()
	f := store.SessionFilter{User: q.Get("user"), OpenOnly: q.Get("open") != ""}
	if !c.approver {
		if f.User != "" && f.User != c.Name {
			return 0, nil, c.requireApprover("list other users' sessions")
		}
		f.User = c.Name
	}
	since, err := sinceParam(r)
	if err != nil {
		return 0, nil, err
	}
	ss, err := s.cfg.Store.ListSessions(f)
	if err != nil {
		return 0, nil, storeErr(err)
	}
	out := []grant.Session{}
	for _, sess := range ss {
		if sess.StartedAt.Before(since) {
			continue
		}
		out = append(out, sess)
	}
	return http.StatusOK, out, nil
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	if err := c.requireApprover("read the audit trail"); err != nil {
		return 0, nil, err
	}
	since, err := sinceParam(r)
	if err != nil {
		return 0, nil, err
	}
	recs, err := s.cfg.Store.AuditSince(since)
	if err != nil {
		return 0, nil, storeErr(err)
	}
	out := make([]api.AuditRecord, 0, len(recs))
	for _, rec := range recs {
		out = append(out, api.AuditRecord{
			Seq: rec.Seq, Time: rec.Time, Event: string(rec.Event), Actor: rec.Actor, User: rec.User,
			GrantID: rec.GrantID, Request: rec.RequestID, Session: rec.SessionID,
			Message: auditlog.Message(rec), Fields: rec.Fields, PrevHash: rec.PrevHash, Hash: rec.Hash,
		})
	}
	return http.StatusOK, out, nil
}

func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	if err := c.requireApprover("verify the audit trail"); err != nil {
		return 0, nil, err
	}
	res, chain, err := s.verifyChain(c.Name)
	if err != nil {
		return 0, nil, errInternal(err)
	}
	v := api.AuditVerification{OK: chain == nil, Records: res.Records}
	if chain != nil {
		v.Problem, v.BadSeq = chain.Error(), chain.Seq
	}
	return http.StatusOK, v, nil
}

// verifyChain walks the audit chain for actor. A broken chain is logged and
// written to journald at critical priority; jitd keeps serving, because
// refusing sudo over an old edited record would lock out the people who
// must look into it.
func (s *Server) verifyChain(actor string) (store.VerifyResult, *store.ChainError, error) {
	start := time.Now()
	res, err := s.cfg.Store.Verify()
	var chain *store.ChainError
	switch {
	case err == nil:
		s.log.Info("audit chain verified", "records", res.Records, "by", actor, "took", time.Since(start).Round(time.Millisecond))
		return res, nil, nil
	case errors.As(err, &chain):
		s.log.Error("the audit chain is broken: compare with the journald copy (JIT_AUDIT_HASH)", "problem", chain.Error(), "seq", chain.Seq, "by", actor)
		s.cfg.Audit.Record(store.AuditRecord{Time: s.now(), Event: auditlog.EventChainBroken, Actor: actor, Reason: chain.Error()})
		return res, chain, nil
	default:
		s.log.Error("could not verify the audit chain", "error", err)
		return res, nil, err
	}
}
