// Package server is jitd's core: the HTTP/JSON API on the Unix socket, who
// may call what, and the work behind each call — decisions, grants,
// requests, sessions, expiry and the audit trail.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/jitpam/jit/jitd/auditlog"
	"github.com/jitpam/jit/jitd/decide"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/jitd/policy"
	"github.com/jitpam/jit/jitd/store"
)

// Config wires a Server to its parts.
type Config struct {
	Store      *store.Store
	Policy     *policy.Policy
	PolicyFile string
	Socket     string
	StateDir   string
	Log        hclog.Logger
	Audit      *auditlog.Sink
	Version    string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnGrantEnd, if set, is called after a grant has ended (expired or
	// revoked) and the ending of its sessions has begun.
	OnGrantEnd func(grant.Grant)
	// BootID names the running boot; empty means read it from
	// /proc/sys/kernel/random/boot_id. Sessions of another boot are
	// closed, never signalled (grant.Session.BootID).
	BootID string
	// BootedAt is when the machine booted; zero means work it out from
	// CLOCK_BOOTTIME. It dates sessions that carry no boot ID.
	BootedAt time.Time
}

// Server answers jitd's API.
type Server struct {
	cfg      Config
	now      func() time.Time
	log      hclog.Logger
	started  time.Time
	accounts *accounts
	bootID   string
	bootedAt time.Time

	policy   atomic.Pointer[policy.Policy]
	loadedAt atomic.Pointer[time.Time]
	set      atomic.Pointer[decide.Set]
	setMu    sync.Mutex // serialises rebuilds of set

	// wake tells the expiry loop that the next expiry may have moved.
	wake chan struct{}
	// decisions feeds the batching writer of decision records.
	decisions chan store.AuditRecord
	writerWG  sync.WaitGroup

	watch *sessionWatch
	// bg counts terminations in flight; Run waits for them.
	bg sync.WaitGroup
}

// ended grants stay in the decision set this long, so that a deny can say
// "expired at 14:02" or "revoked by lead" instead of "no grant".
const explainEndedFor = 24 * time.Hour

// New builds a server. It expires grants that ended while jitd was down
// before it returns, so nothing is served from stale state.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	if cfg.BootID == "" {
		id, err := readBootID()
		if err != nil {
			return nil, err
		}
		cfg.BootID = id
	}
	if cfg.BootedAt.IsZero() {
		var up unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &up); err != nil {
			return nil, fmt.Errorf("time since boot: %w", err)
		}
		cfg.BootedAt = cfg.Now().Add(-time.Duration(up.Nano()))
	}
	s := &Server{
		cfg:       cfg,
		now:       cfg.Now,
		log:       cfg.Log,
		started:   cfg.Now(),
		bootID:    cfg.BootID,
		bootedAt:  cfg.BootedAt,
		accounts:  newAccounts(5*time.Second, cfg.Now),
		wake:      make(chan struct{}, 1),
		decisions: make(chan store.AuditRecord, 4096),
		watch:     newSessionWatch(),
	}
	s.setPolicyLocked(cfg.Policy)
	if _, err := s.expireOverdue(); err != nil {
		return nil, err
	}
	if err := s.rebuild(); err != nil {
		return nil, err
	}
	if err := s.sweepSessions(); err != nil {
		return nil, err
	}
	return s, nil
}

// readBootID returns the kernel's random ID of the running boot.
func readBootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("read the boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("read the boot id: /proc/sys/kernel/random/boot_id is empty")
	}
	return id, nil
}

// Policy returns the policy in force.
func (s *Server) Policy() *policy.Policy { return s.policy.Load() }

// SetPolicy replaces the policy (SIGHUP) and rebuilds the decision set.
func (s *Server) SetPolicy(p *policy.Policy) error {
	s.setPolicyLocked(p)
	return s.rebuild()
}

func (s *Server) setPolicyLocked(p *policy.Policy) {
	if p == nil {
		p = policy.Default()
	}
	t := s.now()
	s.policy.Store(p)
	s.loadedAt.Store(&t)
}

// rebuild recompiles the decision set from the store and the policy.
func (s *Server) rebuild() error {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	all, err := s.cfg.Store.ListGrants(store.GrantFilter{IncludeEnded: true})
	if err != nil {
		return fmt.Errorf("load grants: %w", err)
	}
	cutoff := s.now().Add(-explainEndedFor)
	live := all[:0]
	for _, g := range all {
		if g.State == grant.StateActive || g.EndedAt.After(cutoff) || g.ExpiresAt.After(cutoff) {
			live = append(live, g)
		}
	}
	// NewSet always returns a usable set: a grant that does not compile
	// never allows. Keeping an older set instead would decide on stale data.
	set, err := decide.NewSet(live, s.Policy().Rules)
	if err != nil {
		s.log.Warn("some grants or rules do not compile; they allow nothing", "error", err)
	}
	s.set.Store(set)
	return nil
}

// changed is called after every write to grants: new decisions see it at
// once and the expiry timer is re-armed. Only the changed grants are
// compiled again.
func (s *Server) changed(grants ...grant.Grant) {
	s.updateGrants(grants)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Server) updateGrants(grants []grant.Grant) {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	next, err := s.set.Load().WithGrants(grants...)
	if err != nil {
		// A grant that does not compile never allows; say so and go on.
		s.log.Warn("some grants do not compile; they allow nothing", "error", err)
	}
	s.set.Store(next)
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.api(s.handleStatus))
	mux.HandleFunc("POST /v1/check", s.api(s.handleCheck))
	mux.HandleFunc("GET /v1/grants", s.api(s.handleListGrants))
	mux.HandleFunc("POST /v1/grants", s.api(s.handleCreateGrant))
	mux.HandleFunc("GET /v1/grants/{id}", s.api(s.handleGetGrant))
	mux.HandleFunc("POST /v1/grants/{id}/revoke", s.api(s.handleRevoke))
	mux.HandleFunc("POST /v1/grants/{id}/extend", s.api(s.handleExtend))
	mux.HandleFunc("GET /v1/requests", s.api(s.handleListRequests))
	mux.HandleFunc("POST /v1/requests", s.api(s.handleCreateRequest))
	mux.HandleFunc("POST /v1/requests/{id}/approve", s.api(s.handleApprove))
	mux.HandleFunc("POST /v1/requests/{id}/deny", s.api(s.handleDeny))
	mux.HandleFunc("GET /v1/sessions", s.api(s.handleListSessions))
	mux.HandleFunc("POST /v1/sessions", s.api(s.handleOpenSession))
	mux.HandleFunc("POST /v1/sessions/{id}/close", s.api(s.handleCloseSession))
	mux.HandleFunc("GET /v1/audit", s.api(s.handleAudit))
	mux.HandleFunc("GET /v1/audit/verify", s.api(s.handleVerify))
	mux.HandleFunc("GET /v1/rules", s.api(s.handleRules))
	return s.withPeer(mux)
}

// api adapts a handler that returns its answer: it resolves the caller
// first, and writes the answer as JSON or the error as an API error.
func (s *Server) api(h func(http.ResponseWriter, *http.Request, *caller) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.caller(r)
		if err != nil {
			writeError(w, err)
			return
		}
		status, body, err := h(w, r, c)
		if err != nil {
			writeError(w, err)
		} else {
			writeJSON(w, status, body)
		}
		if len(c.later) > 0 {
			_ = http.NewResponseController(w).Flush()
			for _, f := range c.later {
				f()
			}
		}
	}
}

// withPeer refuses requests whose peer is unknown and turns panics into a
// 500 so that one bad request cannot take the daemon down.
func (s *Server) withPeer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("panic while serving a request", "path", r.URL.Path, "panic", v)
				writeError(w, errInternal(fmt.Errorf("internal error")))
			}
		}()
		if _, ok := peerOf(r.Context()); !ok {
			writeError(w, &apiErr{http.StatusForbidden, "forbidden", "jitd could not read this connection's peer credentials"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Serve answers on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ConnContext:       connContext,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          s.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Run runs the background work — grant expiry, the decision-record writer,
// the session watch and one check of the audit chain — until ctx ends.
func (s *Server) Run(ctx context.Context) {
	s.writerWG.Add(3)
	go func() {
		// In the background: a long chain must not delay sudo and logins.
		defer s.writerWG.Done()
		s.verifyChain("jitd")
	}()
	go func() {
		defer s.writerWG.Done()
		s.writeDecisions(ctx)
	}()
	go func() {
		defer s.writerWG.Done()
		s.watchSessions(ctx)
	}()
	s.expiryLoop(ctx)
	s.writerWG.Wait()
	s.bg.Wait()
}

// expiryLoop ends each grant exactly when it expires: a timer armed for the
// next expiry, re-armed whenever grants change.
func (s *Server) expiryLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if _, err := s.expireOverdue(); err != nil {
			s.log.Error("expiring grants failed; retrying in 1s", "error", err)
			timer.Reset(time.Second)
		} else {
			next, ok, err := s.cfg.Store.NextExpiry()
			switch {
			case err != nil:
				s.log.Error("reading the next expiry failed; retrying in 1s", "error", err)
				timer.Reset(time.Second)
			case ok:
				timer.Reset(max(next.At.Sub(s.now()), 0))
			default:
				timer.Reset(time.Hour)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
	}
}

// expireOverdue ends every active grant whose time has come.
func (s *Server) expireOverdue() ([]grant.Grant, error) {
	ended, err := s.cfg.Store.ExpireOverdue(s.now(), store.Audit{Actor: "jitd", Reason: "expired"})
	if err != nil {
		return nil, fmt.Errorf("expire overdue grants: %w", err)
	}
	if len(ended) == 0 {
		return nil, nil
	}
	if s.set.Load() != nil {
		s.updateGrants(ended)
	}
	for _, g := range ended {
		s.log.Info("grant expired", "grant", g.ID, "user", g.User)
		s.endSessionsOf(g)
		if s.cfg.OnGrantEnd != nil {
			s.cfg.OnGrantEnd(g)
		}
	}
	return ended, nil
}

// writeDecisions appends decision records to the chain in batches: one
// fsync per batch instead of one per sudo. Each decision is in journald at
// once; the chain copy follows within batchDelay.
func (s *Server) writeDecisions(ctx context.Context) {
	const batchDelay = 100 * time.Millisecond
	const batchMax = 256
	var batch []store.AuditRecord
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if _, err := s.cfg.Store.AppendAuditBatch(batch); err != nil {
			s.log.Error("appending decisions to the audit chain failed; they are in journald", "count", len(batch), "error", err)
		}
		batch = batch[:0]
	}
	tick := time.NewTicker(batchDelay)
	defer tick.Stop()
	for {
		select {
		case r := <-s.decisions:
			batch = append(batch, r)
			if len(batch) >= batchMax {
				flush()
			}
		case <-tick.C:
			flush()
		case <-ctx.Done():
			// Drain what is queued so a clean shutdown loses nothing.
			for {
				select {
				case r := <-s.decisions:
					batch = append(batch, r)
				default:
					flush()
					return
				}
			}
		}
	}
}

// OnAudit is the store's OnAudit hook: every committed chain record goes to
// journald too, except decisions, which went to journald the moment they
// were made (the chain copy follows in a batch).
func OnAudit(sink *auditlog.Sink) func(store.AuditRecord) {
	return func(r store.AuditRecord) {
		switch r.Event {
		case auditlog.EventDecisionAllow, auditlog.EventDecisionDeny:
			return
		}
		if sink != nil {
			sink.Record(r)
		}
	}
}
