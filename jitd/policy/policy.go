// Package policy reads and validates jitd's policy file (/etc/jitd/jitd.hcl)
// and answers the questions the daemon asks of it: who approves, who may
// break the glass, which logins are gated, how long a grant may last.
//
// Treat a Policy as immutable once Parse or Load returned it: the daemon
// swaps the whole value on SIGHUP, so readers never see a half-applied
// reload, and a file that fails to load leaves the old value in place.
//
// Principals are "name" (a user), "%name" (a group) and, where an attribute
// documents it, "*" (anyone). Names are case-sensitive, as on Linux.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

// Default paths, also used when the policy file leaves them out.
const (
	DefaultPath     = "/etc/jitd/jitd.hcl"
	DefaultSocket   = "/run/jitd/jitd.sock"
	DefaultStateDir = "/var/lib/jitd"
)

// RootUser always approves and is never needed in the approvers list, so
// that a policy file cannot lock the administrator out of granting.
const RootUser = "root"

// Policy is the validated content of the policy file.
type Policy struct {
	// Socket is the Unix socket jitd listens on when not socket-activated.
	Socket string
	// StateDir holds jitd.db.
	StateDir string
	// Approvers may grant, approve, deny and revoke. Root approves even if
	// not listed (see IsApprover).
	Approvers []string
	// DefaultDuration is used when a request or grant names no duration.
	DefaultDuration time.Duration
	// MaxDuration caps every grant, break-glass included.
	MaxDuration time.Duration
	// RequireReason refuses requests and grants without a reason.
	RequireReason bool
	// Authenticate makes the sudo plugin ask for the user's password (PAM
	// service jit-sudo) before a grant is used.
	Authenticate bool
	// AuthCache is how long a successful authentication lasts per user and
	// tty; zero asks every time.
	AuthCache time.Duration
	// GracePeriod separates SIGTERM from SIGKILL when a grant ends.
	GracePeriod time.Duration
	// WarnBefore lists how long before the end users are warned on their
	// tty, longest first, without duplicates.
	WarnBefore []time.Duration
	// Rules are standing permissions in file order; names are unique.
	// Their Users may hold "*" (anyone), RunAs plain user names. Commands
	// compile with cmdmatch.Compile and Windows/Timezone with
	// window.ParseSchedule: the policy refuses what the decision core
	// could not evaluate.
	Rules      []grant.Rule
	Login      Login
	BreakGlass BreakGlass
	Recording  Recording
}

// Login says which logins need a login grant.
type Login struct {
	// Services are PAM service names (sshd, login, su, ...). Empty turns
	// login gating off.
	Services []string
	// Users are the principals that are gated; "*" gates everyone.
	Users []string
	// Exempt principals log in without a grant even when Users matches
	// them. Root is not exempt implicitly: list it if console and ssh
	// logins as root must keep working while jitd is down.
	Exempt []string
}

// BreakGlass says who may grant themselves access without an approver.
// Such grants are always audited loudly.
type BreakGlass struct {
	// Users may self-grant; empty means nobody.
	Users []string
	// MaxDuration caps break-glass grants; never above Policy.MaxDuration.
	MaxDuration time.Duration
}

// Recording says what the sudo I/O plugin records.
type Recording struct {
	// Enabled turns recording of elevated sessions on.
	Enabled bool
	// Required stops a command rather than let it run unrecorded when the
	// recording cannot be written (journald gone, buffers full).
	Required bool
	// Input records what the user types (ttyin, stdin), not only output.
	// Input may contain passwords typed at prompts; some sites must not
	// keep them.
	Input bool
}

// Default returns the policy jitd runs with when no policy file exists:
// only root approves, nothing is gated, nothing is standing.
func Default() *Policy {
	return &Policy{
		Socket:          DefaultSocket,
		StateDir:        DefaultStateDir,
		Approvers:       []string{RootUser},
		DefaultDuration: time.Hour,
		MaxDuration:     8 * time.Hour,
		RequireReason:   true,
		Authenticate:    false,
		AuthCache:       5 * time.Minute,
		GracePeriod:     5 * time.Second,
		WarnBefore:      []time.Duration{5 * time.Minute, time.Minute},
		BreakGlass:      BreakGlass{MaxDuration: time.Hour},
		Recording:       Recording{Enabled: true, Required: false, Input: true},
	}
}

// MatchPrincipal reports whether user, a member of groups (all of them,
// primary group included), is named by one of principals: "name" matches
// the user, "%group" a member of group, "*" anyone. An empty user matches
// only "*", so that an unknown identity is still caught by "gate everyone"
// rules but never mistaken for a named user.
func MatchPrincipal(principals []string, user string, groups []string) bool {
	for _, p := range principals {
		switch {
		case p == AnyPrincipal:
			return true
		case strings.HasPrefix(p, groupPrefix):
			if g := p[len(groupPrefix):]; g != "" && slices.Contains(groups, g) {
				return true
			}
		case p != "" && p == user:
			return true
		}
	}
	return false
}

// IsApprover reports whether user may grant, approve, deny and revoke.
func (p *Policy) IsApprover(user string, groups []string) bool {
	return user == RootUser || MatchPrincipal(p.Approvers, user, groups)
}

// IsBreakGlass reports whether user may grant themselves access.
func (p *Policy) IsBreakGlass(user string, groups []string) bool {
	return MatchPrincipal(p.BreakGlass.Users, user, groups)
}

// Exempt reports whether user logs in without a login grant.
func (p *Policy) Exempt(user string, groups []string) bool {
	return MatchPrincipal(p.Login.Exempt, user, groups)
}

// LoginGated reports whether a login of user through the PAM service needs
// a login grant: the service is listed, the user is gated and not exempt.
func (p *Policy) LoginGated(service, user string, groups []string) bool {
	return slices.Contains(p.Login.Services, service) &&
		MatchPrincipal(p.Login.Users, user, groups) &&
		!p.Exempt(user, groups)
}

// Errors CheckDuration and friends wrap, so the daemon can map them to
// stable protocol error codes with errors.Is.
var (
	ErrDurationTooLong = errors.New("duration exceeds the policy maximum")
	ErrDurationInvalid = errors.New("duration must be positive")
)

// DurationError explains which limit a requested duration broke.
type DurationError struct {
	Requested time.Duration
	Max       time.Duration
	// Limit names the policy attribute, so the user knows what to ask for.
	Limit string
}

func (e *DurationError) Error() string {
	return fmt.Sprintf("requested duration %s exceeds the maximum of %s (%s in the policy)",
		FormatDuration(e.Requested), FormatDuration(e.Max), e.Limit)
}

// Is lets callers test with errors.Is(err, ErrDurationTooLong).
func (e *DurationError) Is(target error) bool { return target == ErrDurationTooLong }

// CheckDuration accepts d if it is positive and at most MaxDuration.
func (p *Policy) CheckDuration(d time.Duration) error {
	return checkDuration(d, p.MaxDuration, "max_duration")
}

// CheckBreakGlassDuration accepts d if it is positive and at most the
// break-glass maximum.
func (p *Policy) CheckBreakGlassDuration(d time.Duration) error {
	return checkDuration(d, p.BreakGlass.MaxDuration, "breakglass max_duration")
}

func checkDuration(d, limit time.Duration, name string) error {
	if d <= 0 {
		return fmt.Errorf("%w, got %s", ErrDurationInvalid, FormatDuration(d))
	}
	if d > limit {
		return &DurationError{Requested: d, Max: limit, Limit: name}
	}
	return nil
}

// GrantDuration turns a requested duration into the one to grant: zero
// means DefaultDuration, anything else must pass CheckDuration.
func (p *Policy) GrantDuration(requested time.Duration) (time.Duration, error) {
	if requested == 0 {
		return p.DefaultDuration, nil
	}
	if err := p.CheckDuration(requested); err != nil {
		return 0, err
	}
	return requested, nil
}

// FormatDuration prints d the way an administrator writes it in the policy
// ("8h", "1h30m", "90s"), not Go's "8h0m0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
