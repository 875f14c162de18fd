package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jitpam/jit/jitd/enforce"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/jitd/store"
)

// sessionWatch is the state of the loop that warns users before their grant
// ends and ends sessions whose window closed.
type sessionWatch struct {
	mu sync.Mutex
	// warned[session][warning] is set once that warning was shown.
	warned map[string]map[time.Duration]bool
	// ending holds sessions being terminated, and why, so that they are
	// not terminated twice.
	ending map[string]string
}

func newSessionWatch() *sessionWatch {
	return &sessionWatch{warned: map[string]map[time.Duration]bool{}, ending: map[string]string{}}
}

// endSessionsOf ends every open session registered under g, which has just
// ended. It returns at once; the termination runs in the background.
func (s *Server) endSessionsOf(g grant.Grant) {
	sessions, err := s.cfg.Store.OpenSessionsForGrant(g.ID)
	if err != nil {
		s.log.Error("cannot list the sessions of an ended grant; they keep running until sudo's timeout", "grant", g.ID, "error", err)
		return
	}
	why := fmt.Sprintf("grant %s %s", g.ID, g.State)
	if g.State == grant.StateRevoked && g.EndedBy != "" {
		why += " by " + g.EndedBy
	}
	for _, sess := range sessions {
		s.terminate(sess, why)
	}
}

// terminate ends one session: a final line on its terminal, SIGHUP and
// SIGTERM to all its processes, SIGKILL after the grace period, and the
// record in state and journald.
func (s *Server) terminate(sess grant.Session, why string) {
	if !s.fromThisBoot(sess) {
		s.closeFromOtherBoot(sess)
		return
	}
	s.watch.mu.Lock()
	if _, busy := s.watch.ending[sess.ID]; busy {
		s.watch.mu.Unlock()
		return
	}
	s.watch.ending[sess.ID] = why
	s.watch.mu.Unlock()

	procs, err := enforce.All()
	var targets enforce.Targets
	if err == nil {
		targets, err = enforce.Find(sess, procs)
	}
	if err != nil {
		// Nothing left to signal: the session ended without telling us.
		s.finishSession(sess, why+"; its processes had already ended", 0, 0)
		return
	}
	if sess.TTY != "" {
		msg := fmt.Sprintf("jit: %s; this elevated session is being ended.", why)
		if err := enforce.Warn(sess.TTY, msg); err != nil {
			s.log.Debug("cannot write the final notice", "session", sess.ID, "tty", sess.TTY, "error", err)
		}
	}
	grace := s.Policy().GracePeriod
	s.log.Info("ending session", "session", sess.ID, "user", sess.User, "grant", sess.GrantID, "processes", len(targets.Procs), "reason", why)
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		killed, err := enforce.Terminate(targets, grace)
		if err != nil {
			s.log.Warn("some processes could not be signalled", "session", sess.ID, "error", err)
		}
		s.finishSession(sess, why, len(targets.Procs), killed)
	}()
}

func (s *Server) finishSession(sess grant.Session, why string, signalled, killed int) {
	fields := map[string]string{
		"signalled": strconv.Itoa(signalled), "killed": strconv.Itoa(killed),
		"signal": "SIGTERM", "pid": strconv.Itoa(sess.PID),
	}
	if killed > 0 {
		fields["signal"] = "SIGKILL"
	}
	if signalled == 0 {
		fields["signal"] = "none"
	}
	_, err := s.cfg.Store.TerminateSession(sess.ID, s.now(), store.Audit{Actor: "jitd", Reason: why, Fields: fields})
	var ended *store.AlreadyEndedError
	if err != nil && !errors.As(err, &ended) {
		s.log.Error("recording a terminated session failed", "session", sess.ID, "error", err)
	}
	s.watch.mu.Lock()
	delete(s.watch.ending, sess.ID)
	delete(s.watch.warned, sess.ID)
	s.watch.mu.Unlock()
}

// fromThisBoot says whether sess was registered since the machine last
// booted. A session of an earlier boot cannot still run, and its pid and
// audit session id may name someone else's processes now.
func (s *Server) fromThisBoot(sess grant.Session) bool {
	if sess.BootID != "" {
		return sess.BootID == s.bootID
	}
	return !sess.StartedAt.Before(s.bootedAt) // registered before jitd kept boot IDs
}

// closeFromOtherBoot closes a session of an earlier boot without signalling
// anything.
func (s *Server) closeFromOtherBoot(sess grant.Session) {
	_, err := s.cfg.Store.CloseSession(sess.ID, nil, s.now(), store.Audit{Actor: "jitd",
		Reason: "the machine restarted since it began; nothing was signalled"})
	var ended *store.AlreadyEndedError
	if err != nil && !errors.As(err, &ended) {
		s.log.Warn("closing a session of an earlier boot failed", "session", sess.ID, "error", err)
	}
}

// endingReason says whether jitd is terminating session id, and why.
func (s *Server) endingReason(id string) (string, bool) {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	why, ok := s.watch.ending[id]
	return why, ok
}

// sweepSessions enforces what a restart may have missed: sessions whose
// grant ended while jitd was down are ended, and sessions whose process is
// gone, or that began before the machine last booted, are closed.
func (s *Server) sweepSessions() error {
	if err := s.cfg.Store.PendingSessionError(); err != nil {
		s.log.Error("session registrations cannot be committed to the state database; they are enforced, and kept in the runtime directory until they can", "error", err)
	}
	open, err := s.cfg.Store.OpenSessions()
	if err != nil {
		return fmt.Errorf("load open sessions: %w", err)
	}
	for _, sess := range open {
		if _, busy := s.endingReason(sess.ID); busy {
			continue // being ended: that records how it ended
		}
		if !s.fromThisBoot(sess) {
			s.closeFromOtherBoot(sess)
			continue
		}
		if !enforce.Alive(sess.PID, sess.PIDStart) {
			if _, err := s.cfg.Store.CloseSession(sess.ID, nil, s.now(), store.Audit{Actor: "jitd",
				Reason: "its process ended while jitd was not watching"}); err != nil {
				s.log.Warn("closing a session whose process is gone failed", "session", sess.ID, "error", err)
			}
			continue
		}
		if sess.GrantID == "" {
			continue
		}
		g, err := s.cfg.Store.GetGrant(sess.GrantID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			s.terminate(sess, "grant "+sess.GrantID+" no longer exists")
		case err != nil:
			s.log.Error("reading a session's grant failed", "session", sess.ID, "error", err)
		case g.State != grant.StateActive:
			s.terminate(sess, fmt.Sprintf("grant %s %s", g.ID, g.State))
		}
	}
	return nil
}

// watchSessions warns users on their terminal before their grant ends and
// ends sessions whose grant's window closed (for grants that say so).
func (s *Server) watchSessions(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastSweep, lastRebuild := s.now(), s.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := s.now()
		if now.Sub(lastRebuild) > time.Hour {
			// Writes update the decision set grant by grant; a full
			// rebuild now and then drops grants that ended long ago.
			lastRebuild = now
			if err := s.rebuild(); err != nil {
				s.log.Error("rebuilding the decision set failed", "error", err)
			}
		}
		if now.Sub(lastSweep) > 10*time.Second {
			lastSweep = now
			if err := s.sweepSessions(); err != nil {
				s.log.Error("session sweep failed", "error", err)
			}
		}
		open, err := s.cfg.Store.OpenSessions()
		if err != nil {
			s.log.Error("listing open sessions failed", "error", err)
			continue
		}
		set := s.set.Load()
		warnings := s.Policy().WarnBefore
		for _, sess := range open {
			if sess.GrantID == "" {
				continue
			}
			g, ok := set.Grant(sess.GrantID)
			if !ok || g.State != grant.StateActive {
				continue
			}
			end, usable := set.End(g.ID, now)
			if !usable {
				if g.EndAtWindowClose && now.Before(g.ExpiresAt) {
					s.terminate(sess, fmt.Sprintf("the window of grant %s closed", g.ID))
				}
				continue
			}
			if !g.EndAtWindowClose && end.Before(g.ExpiresAt) {
				end = g.ExpiresAt // a closing window ends nothing for this grant
			}
			s.warn(sess, g, end, now, warnings)
		}
	}
}

// warn shows the first due warning that was not shown yet.
func (s *Server) warn(sess grant.Session, g grant.Grant, end, now time.Time, warnings []time.Duration) {
	if sess.TTY == "" {
		return
	}
	left := end.Sub(now)
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	shown := s.watch.warned[sess.ID]
	for _, w := range warnings {
		if left > w || shown[w] {
			continue
		}
		if shown == nil {
			shown = map[time.Duration]bool{}
			s.watch.warned[sess.ID] = shown
		}
		// Mark every longer warning too: one line, not a burst, for a
		// session that starts close to its end.
		for _, other := range warnings {
			if other >= w {
				shown[other] = true
			}
		}
		msg := fmt.Sprintf("jit: grant %s ends in %s (at %s); this session will be ended then. More time: ask an approver to run `jitctl extend %s --for 30m`.",
			g.ID, roundLeft(left), end.Local().Format("15:04:05"), g.ID)
		if err := enforce.Warn(sess.TTY, msg); err != nil {
			s.log.Debug("cannot warn on the session's terminal", "session", sess.ID, "tty", sess.TTY, "error", err)
		}
		return
	}
}

func roundLeft(d time.Duration) string {
	if d >= time.Minute {
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}

// forgetWarnings lets the warnings of a grant's sessions show again after
// the grant was extended.
func (s *Server) forgetWarnings(grantID string) {
	sessions, err := s.cfg.Store.OpenSessionsForGrant(grantID)
	if err != nil {
		return
	}
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	for _, sess := range sessions {
		delete(s.watch.warned, sess.ID)
	}
}
