// Package api is jit's socket protocol: the wire types of jitd's HTTP/JSON
// API over its Unix socket and the only client that speaks it. jitctl, the
// sudo plugin and the PAM module all use it.
//
// Every path is versioned (/v1/...). The server takes the caller's identity
// from the kernel (SO_PEERCRED), never from the request body, except where the
// caller is root: sudo and sshd speak for the user they serve.
package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

// DefaultSocket is where jitd listens unless configured otherwise.
const DefaultSocket = "/run/jitd/jitd.sock"

// MaxBodyBytes bounds every request body the server reads.
const MaxBodyBytes = 64 << 10

// Paths of the v1 API.
const (
	PathStatus   = "/v1/status"
	PathCheck    = "/v1/check"
	PathGrants   = "/v1/grants"   // GET list, POST create; /v1/grants/{id}[/revoke|/extend]
	PathRequests = "/v1/requests" // GET list, POST create; /v1/requests/{id}[/approve|/deny]
	PathSessions = "/v1/sessions" // GET list, POST open; /v1/sessions/{id}/close
	PathAudit    = "/v1/audit"    // GET list; /v1/audit/verify
	// PathRules is in rules.go.
)

// Error is the body of every non-2xx answer: a stable machine code and a
// sentence for people.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// ErrorBody wraps Error on the wire: {"error": {...}}.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Stable error codes.
const (
	CodeBadRequest      = "bad_request"   // malformed JSON, unknown field, bad value
	CodeTooLarge        = "too_large"     // body over MaxBodyBytes
	CodeForbidden       = "forbidden"     // the caller may not do this
	CodeNotApprover     = "not_approver"  // grant/approve/deny/revoke by a non-approver
	CodeSelfApproval    = "self_approval" // approving one's own request
	CodeNotFound        = "not_found"     // no such grant, request or session
	CodeAlreadyEnded    = "already_ended" // revoking or extending an ended grant
	CodeNotPending      = "not_pending"   // deciding a request twice
	CodeDurationTooLong = "duration_too_long"
	CodeReasonRequired  = "reason_required"
	CodeUnknownUser     = "unknown_user"
	CodeUnknownGroup    = "unknown_group"
	CodeBadCommand      = "bad_command"
	CodeBadWindow       = "bad_window"
	CodeBadDuration     = "bad_duration"
	CodeInternal        = "internal"
	CodeUnavailable     = "unavailable" // jitd unreachable (client side)
)

// Duration is a time.Duration that travels as a Go duration string ("30m").
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses "30m", "2h", "1h30m", and days as "1d" or "2d12h".
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("bad duration %q (use e.g. 30m, 2h, 1d)", s)
	if s == "" {
		return 0, bad
	}
	var total time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 3660 || strings.HasPrefix(s, "+") {
			return 0, bad
		}
		total = time.Duration(n) * 24 * time.Hour
		rest = s[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, bad
		}
		total += d
	}
	if total <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return total, nil
}

// Status is what GET /v1/status answers.
type Status struct {
	Version         string    `json:"version"`
	StartedAt       time.Time `json:"started_at"`
	Socket          string    `json:"socket"`
	StateDir        string    `json:"state_dir"`
	PolicyFile      string    `json:"policy_file"`
	PolicyLoadedAt  time.Time `json:"policy_loaded_at"`
	ActiveGrants    int       `json:"active_grants"`
	PendingRequests int       `json:"pending_requests"`
	OpenSessions    int       `json:"open_sessions"`
	NextExpiry      time.Time `json:"next_expiry,omitzero"`
	// You is the caller as jitd sees it.
	You Caller `json:"you"`
}

// Caller is a peer's identity as the kernel reported it.
type Caller struct {
	UID      int      `json:"uid"`
	User     string   `json:"user"`
	Groups   []string `json:"groups,omitempty"`
	Approver bool     `json:"approver"`
}

// CheckRequest asks whether a user may do something now. Only root may ask
// for another user; anyone may ask about themselves.
type CheckRequest struct {
	User       string     `json:"user"`
	Kind       grant.Kind `json:"kind"`
	RunAs      string     `json:"runas,omitempty"`
	RunAsGroup string     `json:"runas_group,omitempty"`
	// Command is the absolute, resolved path; Args exclude argv[0].
	Command string   `json:"command,omitempty"`
	Args    []string `json:"args,omitempty"`
	// Shell is set for sudo -s / -i.
	Shell   bool   `json:"shell,omitempty"`
	Service string `json:"service,omitempty"`
	TTY     string `json:"tty,omitempty"`
	Cwd     string `json:"cwd,omitempty"`
	RHost   string `json:"rhost,omitempty"`
	// DryRun decisions are answered but not audited as uses.
	DryRun bool `json:"dry_run,omitempty"`
	// Session (root only) registers the session in the same call when the
	// answer is an allow that needs no authentication first, saving sudo a
	// round trip; Decision.SessionID names it. Kind, User, GrantID and Rule
	// come from the request and the decision, not from Session.
	Session *SessionSpec `json:"session,omitempty"`
}

// Decision answers a CheckRequest.
type Decision struct {
	Allow bool `json:"allow"`
	// Code is a stable machine code for a deny (see package decide).
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason"`
	// What allowed it.
	GrantID     string    `json:"grant_id,omitempty"`
	GrantedBy   string    `json:"granted_by,omitempty"`
	GrantReason string    `json:"grant_reason,omitempty"`
	Rule        string    `json:"rule,omitempty"`
	BreakGlass  bool      `json:"breakglass,omitempty"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	// Remaining is how long the allowed thing may run (0: no limit).
	Remaining Duration `json:"remaining,omitempty"`
	// Hint is the exact command line that asks for what was denied.
	Hint string `json:"hint,omitempty"`
	// Authenticate says the policy wants the user's password before use, and
	// AuthCache how long a success lasts.
	Authenticate bool     `json:"authenticate,omitempty"`
	AuthCache    Duration `json:"auth_cache,omitempty"`
	// RecordingRequired and RecordInput carry the recording policy to the
	// sudo I/O plugin.
	RecordingRequired bool `json:"recording_required,omitempty"`
	RecordInput       bool `json:"record_input,omitempty"`
	// RecordingDisabled says the policy turned recording off (zero, as
	// from a jitd that predates it or a break-glass run: record).
	RecordingDisabled bool `json:"recording_disabled,omitempty"`
	// SessionID is the session registered for CheckRequest.Session.
	SessionID string `json:"session_id,omitempty"`
	// RunAsGroups are the group IDs of an allowed sudo command's target
	// user, comma-separated as in sudo's command_info: jitd has the
	// group database at hand, where listing them in sudo's process
	// loads every NSS module anew. Empty when jitd could not list them.
	RunAsGroups string `json:"runas_groups,omitempty"`
}

// GrantSpec creates a grant (POST /v1/grants).
type GrantSpec struct {
	User  string     `json:"user"`
	Kind  grant.Kind `json:"kind"`
	RunAs string     `json:"runas,omitempty"`
	// RunAsGroup is the group sudo -g may name (sudoers' (user:group)):
	// a group name or ALL; empty allows the target user's own groups only.
	RunAsGroup string   `json:"runas_group,omitempty"`
	Commands   []string `json:"commands,omitempty"`
	Windows    []string `json:"windows,omitempty"`
	Timezone   string   `json:"timezone,omitempty"`
	// EndAtWindowClose ends running sessions when a window closes.
	EndAtWindowClose bool `json:"end_at_window_close,omitempty"`
	// Duration counts from Start (or now); zero means the policy's default.
	Duration Duration  `json:"duration,omitempty"`
	Start    time.Time `json:"start,omitzero"`
	Reason   string    `json:"reason"`
}

// RequestSpec files an access request for the caller (POST /v1/requests).
type RequestSpec struct {
	Kind       grant.Kind `json:"kind"`
	RunAs      string     `json:"runas,omitempty"`
	RunAsGroup string     `json:"runas_group,omitempty"`
	Commands   []string   `json:"commands,omitempty"`
	Windows    []string   `json:"windows,omitempty"`
	Timezone   string     `json:"timezone,omitempty"`
	Duration   Duration   `json:"duration,omitempty"`
	Reason     string     `json:"reason"`
}

// Approval approves a request, optionally shortening it.
type Approval struct {
	Duration Duration `json:"duration,omitempty"`
	Reason   string   `json:"reason,omitempty"`
}

// Ending revokes a grant or denies a request.
type Ending struct {
	Reason string `json:"reason,omitempty"`
}

// Extension moves a live grant's end later by Duration.
type Extension struct {
	Duration Duration `json:"duration"`
	Reason   string   `json:"reason,omitempty"`
}

// SessionSpec registers an elevated session (root only).
type SessionSpec struct {
	Kind    grant.Kind `json:"kind"`
	User    string     `json:"user"`
	GrantID string     `json:"grant_id,omitempty"`
	Rule    string     `json:"rule,omitempty"`
	RunAs   string     `json:"runas,omitempty"`
	Command string     `json:"command,omitempty"`
	TTY     string     `json:"tty,omitempty"`
	Service string     `json:"service,omitempty"`
	RHost   string     `json:"rhost,omitempty"`
	// PID is the process to signal when the grant ends; jitd reads its start
	// time itself.
	PID          int    `json:"pid"`
	AuditSession uint32 `json:"audit_session,omitempty"`
}

// SessionEnd closes a session.
type SessionEnd struct {
	ExitStatus *int   `json:"exit_status,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// AuditRecord is one link of jitd's hash-chained audit log.
type AuditRecord struct {
	Seq      uint64            `json:"seq"`
	Time     time.Time         `json:"time"`
	Event    string            `json:"event"`
	Actor    string            `json:"actor,omitempty"`
	User     string            `json:"user,omitempty"`
	GrantID  string            `json:"grant_id,omitempty"`
	Request  string            `json:"request_id,omitempty"`
	Session  string            `json:"session_id,omitempty"`
	Message  string            `json:"message"`
	Fields   map[string]string `json:"fields,omitempty"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
}

// AuditVerification is the result of walking the audit chain.
type AuditVerification struct {
	OK      bool   `json:"ok"`
	Records uint64 `json:"records"`
	// Problem describes the first broken link.
	Problem string `json:"problem,omitempty"`
	BadSeq  uint64 `json:"bad_seq,omitempty"`
}
