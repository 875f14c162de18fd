package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	p := Default()
	want := &Policy{
		Socket:          "/run/jitd/jitd.sock",
		StateDir:        "/var/lib/jitd",
		Approvers:       []string{"root"},
		DefaultDuration: time.Hour,
		MaxDuration:     8 * time.Hour,
		RequireReason:   true,
		AuthCache:       5 * time.Minute,
		GracePeriod:     5 * time.Second,
		WarnBefore:      []time.Duration{5 * time.Minute, time.Minute},
		BreakGlass:      BreakGlass{MaxDuration: time.Hour},
		Recording:       Recording{Enabled: true, Required: false, Input: true},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Default() = %+v\nwant %+v", p, want)
	}
	// Each call must hand out fresh slices: the daemon may keep one policy
	// while building another.
	Default().Approvers[0] = "mallory"
	if Default().Approvers[0] != "root" {
		t.Error("Default() shares state between calls")
	}
	if p.LoginGated("sshd", "alice", nil) || p.IsBreakGlass("alice", nil) {
		t.Error("the default policy gates nothing and allows no break-glass")
	}
}

func TestMatchPrincipal(t *testing.T) {
	tests := []struct {
		name       string
		principals []string
		user       string
		groups     []string
		want       bool
	}{
		{"user by name", []string{"alice"}, "alice", nil, true},
		{"other user", []string{"alice"}, "bob", nil, false},
		{"names are case-sensitive", []string{"Alice"}, "alice", nil, false},
		{"group member", []string{"%ops"}, "bob", []string{"users", "ops"}, true},
		{"not a group member", []string{"%ops"}, "bob", []string{"users"}, false},
		{"group name is not a user name", []string{"%ops"}, "ops", nil, false},
		{"user name is not a group name", []string{"ops"}, "bob", []string{"ops"}, false},
		{"anyone", []string{"*"}, "bob", nil, true},
		{"anyone includes an unknown user", []string{"*"}, "", nil, true},
		{"empty user matches no name", []string{"", "alice"}, "", nil, false},
		{"bare percent matches no group", []string{"%"}, "bob", []string{""}, false},
		{"any of several", []string{"alice", "%ops", "carol"}, "carol", nil, true},
		{"empty list", nil, "alice", []string{"ops"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchPrincipal(tt.principals, tt.user, tt.groups); got != tt.want {
				t.Errorf("MatchPrincipal(%q, %q, %q) = %v, want %v", tt.principals, tt.user, tt.groups, got, tt.want)
			}
		})
	}
}

func testPolicy(t *testing.T) *Policy {
	t.Helper()
	p, err := Parse([]byte(`
approvers    = ["lead", "%oncall"]
max_duration = "4h"
login {
  services = ["sshd", "login"]
  users    = ["*"]
  exempt   = ["root", "%admins"]
}
breakglass {
  users        = ["%sre"]
  max_duration = "30m"
}
`), "t.hcl")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIsApprover(t *testing.T) {
	p := testPolicy(t)
	for _, tt := range []struct {
		user   string
		groups []string
		want   bool
	}{
		{"root", nil, true}, // not listed, still approves
		{"lead", nil, true},
		{"bob", []string{"oncall"}, true},
		{"bob", []string{"sre"}, false},
		{"", nil, false},
	} {
		if got := p.IsApprover(tt.user, tt.groups); got != tt.want {
			t.Errorf("IsApprover(%q, %q) = %v, want %v", tt.user, tt.groups, got, tt.want)
		}
	}
	if !Default().IsApprover("root", nil) || Default().IsApprover("lead", nil) {
		t.Error("the default policy must let root, and only root, approve")
	}
}

func TestIsBreakGlass(t *testing.T) {
	p := testPolicy(t)
	if !p.IsBreakGlass("carol", []string{"sre"}) {
		t.Error("a member of group sre may break the glass")
	}
	if p.IsBreakGlass("root", nil) || p.IsBreakGlass("lead", nil) {
		t.Error("break-glass is for the listed principals only")
	}
}

func TestLoginGated(t *testing.T) {
	p := testPolicy(t)
	for _, tt := range []struct {
		service, user string
		groups        []string
		gated, exempt bool
	}{
		{"sshd", "alice", []string{"users"}, true, false},
		{"login", "alice", nil, true, false},
		{"su", "alice", nil, false, false}, // service not listed
		{"sshd", "root", nil, false, true},
		{"sshd", "bob", []string{"admins"}, false, true},
		{"sshd", "", nil, true, false}, // unknown identity fails closed
	} {
		if got := p.LoginGated(tt.service, tt.user, tt.groups); got != tt.gated {
			t.Errorf("LoginGated(%q, %q, %q) = %v, want %v", tt.service, tt.user, tt.groups, got, tt.gated)
		}
		if got := p.Exempt(tt.user, tt.groups); got != tt.exempt {
			t.Errorf("Exempt(%q, %q) = %v, want %v", tt.user, tt.groups, got, tt.exempt)
		}
	}

	p.Login.Users = []string{"%contractors"}
	if p.LoginGated("sshd", "alice", []string{"staff"}) {
		t.Error("only the listed users are gated")
	}
	if !p.LoginGated("sshd", "eve", []string{"contractors"}) {
		t.Error("a listed group member is gated")
	}
}

func TestCheckDuration(t *testing.T) {
	p := testPolicy(t)
	if err := p.CheckDuration(4 * time.Hour); err != nil {
		t.Errorf("CheckDuration(max) = %v", err)
	}
	err := p.CheckDuration(5 * time.Hour)
	if !errors.Is(err, ErrDurationTooLong) {
		t.Fatalf("CheckDuration(5h) = %v, want ErrDurationTooLong", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "5h") || !strings.Contains(msg, "maximum of 4h") || !strings.Contains(msg, "max_duration") {
		t.Errorf("message %q should name the request and the maximum", msg)
	}
	var de *DurationError
	if !errors.As(err, &de) || de.Max != 4*time.Hour {
		t.Errorf("error %v should carry the maximum", err)
	}
	for _, d := range []time.Duration{0, -time.Second} {
		if err := p.CheckDuration(d); !errors.Is(err, ErrDurationInvalid) {
			t.Errorf("CheckDuration(%v) = %v, want ErrDurationInvalid", d, err)
		}
	}

	if err := p.CheckBreakGlassDuration(30 * time.Minute); err != nil {
		t.Errorf("CheckBreakGlassDuration(30m) = %v", err)
	}
	if err := p.CheckBreakGlassDuration(time.Hour); !errors.Is(err, ErrDurationTooLong) ||
		!strings.Contains(err.Error(), "breakglass max_duration") {
		t.Errorf("CheckBreakGlassDuration(1h) = %v", err)
	}

	if d, err := p.GrantDuration(0); err != nil || d != time.Hour {
		t.Errorf("GrantDuration(0) = %v, %v; want the default 1h", d, err)
	}
	if d, err := p.GrantDuration(90 * time.Minute); err != nil || d != 90*time.Minute {
		t.Errorf("GrantDuration(90m) = %v, %v", d, err)
	}
	if _, err := p.GrantDuration(5 * time.Hour); !errors.Is(err, ErrDurationTooLong) {
		t.Errorf("GrantDuration(5h) = %v", err)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		8 * time.Hour:                      "8h",
		90 * time.Minute:                   "1h30m",
		5 * time.Minute:                    "5m",
		90 * time.Second:                   "1m30s",
		time.Hour + time.Second:            "1h0m1s",
		5 * time.Second:                    "5s",
		0:                                  "0s",
		1500 * time.Millisecond:            "1.5s",
		-2 * time.Hour:                     "-2h",
		24*time.Hour + 30*time.Minute:      "24h30m",
		2*time.Hour + 500*time.Millisecond: "2h0m0.5s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
