package api

import (
	"context"
	"net/url"
	"time"
)

// PathRules lists the standing rules of the policy that apply to a user
// (GET, ?user=NAME; without it, the caller). Anyone may ask about
// themselves, approvers (root included) about anyone.
const PathRules = "/v1/rules"

// Rules answers GET /v1/rules: the standing rules that apply to User, in
// policy file order, with their windows evaluated at At by jitd's clock.
type Rules struct {
	User  string       `json:"user"`
	At    time.Time    `json:"at"`
	Rules []RuleStatus `json:"rules"`
}

// RuleStatus is one standing rule as it applies to the user at Rules.At.
// The rule's full list of principals is policy business and stays out;
// Via says which of them matched.
type RuleStatus struct {
	Name string `json:"name"`
	// Via is the principal that makes the rule apply: the user's name,
	// "%group", or "*"/"ALL" for everyone.
	Via      string   `json:"via"`
	Commands []string `json:"commands"`
	// RunAs lists the target users; never empty (root when the policy
	// names none).
	RunAs []string `json:"runas"`
	// RunAsGroups lists the groups sudo -g may name besides the target
	// user's own.
	RunAsGroups []string `json:"runas_groups,omitempty"`
	Windows     []string `json:"windows,omitempty"`
	Timezone    string   `json:"timezone,omitempty"`
	// Schedule is the windows as jitd reads them ("Mon-Fri 09:00-17:00
	// Europe/Berlin"), or "always".
	Schedule string `json:"schedule"`
	// Open reports whether the rule allows now.
	Open bool `json:"open"`
	// Closes is when the open window closes (zero: it does not).
	Closes time.Time `json:"closes,omitzero"`
	// Opens is when a closed rule opens next (zero: never).
	Opens time.Time `json:"opens,omitzero"`
}

// Rules returns the standing rules that apply to user ("" for the caller).
func (c *Client) Rules(ctx context.Context, user string) (*Rules, error) {
	q := url.Values{}
	if user != "" {
		q.Set("user", user)
	}
	var r Rules
	return &r, c.do(ctx, "GET", PathRules, q, nil, &r)
}
