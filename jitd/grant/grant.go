// Package grant holds the records jit reasons about: grants, access requests,
// standing rules and elevated sessions. They are plain data shared by the
// decision core, the store, the wire protocol and the clients.
package grant

import "time"

// Kind says what a grant or request elevates: sudo commands or logins.
type Kind string

const (
	KindSudo  Kind = "sudo"
	KindLogin Kind = "login"
)

// State is the life-cycle state of a grant. Only active grants allow anything.
type State string

const (
	StateActive  State = "active"
	StateRevoked State = "revoked"
	StateExpired State = "expired"
)

// DefaultRunAs is the target user when a grant or request names none.
const DefaultRunAs = "root"

// Grant is a time-boxed right for one user.
type Grant struct {
	ID   string `json:"id"`
	User string `json:"user"`
	Kind Kind   `json:"kind"`
	// RunAs is the target user of sudo grants ("root" unless said otherwise).
	RunAs string `json:"runas,omitempty"`
	// RunAsGroup is the group sudo -g may name, as in sudoers'
	// (RunAs:RunAsGroup): empty allows only the target user's own groups,
	// "ALL" any group. With it, sudo -g GROUP alone runs the command as the
	// invoking user with that group, as sudoers does.
	RunAsGroup string `json:"runas_group,omitempty"`
	// Commands are sudoers-style patterns: "/usr/bin/systemctl restart nginx"
	// (exactly these args), "/usr/bin/systemctl" (any args),
	// `/usr/bin/journalctl ""` (no args), globs in args, or "ALL".
	Commands []string `json:"commands,omitempty"`
	// Windows restrict use to recurring periods such as "Mon-Fri 09:00-17:00"
	// in Timezone (an IANA name; empty means UTC).
	Windows  []string `json:"windows,omitempty"`
	Timezone string   `json:"timezone,omitempty"`
	// EndAtWindowClose makes the closing of a window end running sessions too,
	// not only refuse new ones.
	EndAtWindowClose bool `json:"end_at_window_close,omitempty"`

	NotBefore time.Time `json:"not_before"`
	ExpiresAt time.Time `json:"expires_at"`
	Reason    string    `json:"reason"`
	GrantedBy string    `json:"granted_by"`
	CreatedAt time.Time `json:"created_at"`
	RequestID string    `json:"request_id,omitempty"`
	// BreakGlass marks a self-grant made under the break-glass policy.
	BreakGlass bool `json:"breakglass,omitempty"`

	State     State     `json:"state"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	EndedBy   string    `json:"ended_by,omitempty"`
	EndReason string    `json:"end_reason,omitempty"`
}

// RequestState is the life-cycle state of an access request.
type RequestState string

const (
	RequestPending  RequestState = "pending"
	RequestApproved RequestState = "approved"
	RequestDenied   RequestState = "denied"
)

// Request is what a user asks an approver for.
type Request struct {
	ID    string `json:"id"`
	User  string `json:"user"`
	Kind  Kind   `json:"kind"`
	RunAs string `json:"runas,omitempty"`
	// RunAsGroup is the group asked for (see Grant.RunAsGroup).
	RunAsGroup string        `json:"runas_group,omitempty"`
	Commands   []string      `json:"commands,omitempty"`
	Windows    []string      `json:"windows,omitempty"`
	Timezone   string        `json:"timezone,omitempty"`
	Duration   time.Duration `json:"duration"`
	Reason     string        `json:"reason"`

	CreatedAt time.Time    `json:"created_at"`
	State     RequestState `json:"state"`
	DecidedBy string       `json:"decided_by,omitempty"`
	DecidedAt time.Time    `json:"decided_at,omitzero"`
	// DecisionReason is the approver's or denier's note.
	DecisionReason string `json:"decision_reason,omitempty"`
	GrantID        string `json:"grant_id,omitempty"`
}

// Rule is a standing permission from the policy file: who may run what,
// as whom, inside which windows, without a grant.
type Rule struct {
	Name string `json:"name"`
	// Users are principals: "name" or "%group".
	Users    []string `json:"users"`
	Commands []string `json:"commands"`
	// RunAs lists the permitted target users; empty means root only.
	RunAs []string `json:"runas,omitempty"`
	// RunAsGroups lists the groups sudo -g may name besides the target
	// user's own, as in sudoers' (users : groups).
	RunAsGroups []string `json:"runas_groups,omitempty"`
	Windows     []string `json:"windows,omitempty"`
	Timezone    string   `json:"timezone,omitempty"`
}

// SessionState is the life-cycle state of an elevated session.
type SessionState string

const (
	SessionOpen       SessionState = "open"
	SessionClosed     SessionState = "closed"
	SessionTerminated SessionState = "terminated"
)

// Session is one elevated sudo command or one login, registered by the sudo
// plugin or the PAM module so that jitd knows what runs under which grant.
type Session struct {
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	User string `json:"user"`
	// GrantID is empty when a standing rule or an exemption allowed it.
	GrantID  string `json:"grant_id,omitempty"`
	RuleName string `json:"rule,omitempty"`
	RunAs    string `json:"runas,omitempty"`
	Command  string `json:"command,omitempty"`
	TTY      string `json:"tty,omitempty"`
	Service  string `json:"service,omitempty"`
	RHost    string `json:"rhost,omitempty"`
	// PID is the process jitd signals to end the session (sudo's own pid, or
	// the PAM host's); PIDStart is its start time in clock ticks since boot
	// (/proc/PID/stat field 22) so that a reused pid is never signalled.
	PID          int    `json:"pid"`
	PIDStart     uint64 `json:"pid_start"`
	AuditSession uint32 `json:"audit_session,omitempty"`
	// BootID is the boot it was registered in
	// (/proc/sys/kernel/random/boot_id). PID, PIDStart and AuditSession
	// name processes of that boot only: after a restart the same numbers
	// come round again for other processes (audit session ids count from
	// 1 at every boot). Empty in sessions registered before jitd recorded
	// it.
	BootID string `json:"boot_id,omitempty"`

	StartedAt  time.Time    `json:"started_at"`
	EndedAt    time.Time    `json:"ended_at,omitzero"`
	State      SessionState `json:"state"`
	ExitStatus *int         `json:"exit_status,omitempty"`
	EndReason  string       `json:"end_reason,omitempty"`
}
