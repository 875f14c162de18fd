package server

import (
	"net/http"
	"slices"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/grant"
)

// handleRules answers GET /v1/rules: the standing rules of the loaded
// policy that apply to a user, with their windows evaluated now, so that
// sudo -l can show them next to the user's grants. The rules come from the
// decision set, so the listing shows exactly what decisions consult.
func (s *Server) handleRules(w http.ResponseWriter, r *http.Request, c *caller) (int, any, error) {
	name := r.URL.Query().Get("user")
	if name == "" {
		name = c.Name
	}
	if name != c.Name {
		if err := c.requireApprover("list the standing rules of other users"); err != nil {
			return 0, nil, err
		}
	}
	acct, err := s.lookupUser(name)
	if err != nil {
		return 0, nil, err
	}
	now := s.now()
	out := api.Rules{User: acct.Name, At: now, Rules: []api.RuleStatus{}}
	for _, st := range s.set.Load().Rules(acct.Name, acct.Groups, now) {
		runas := st.Rule.RunAs
		if len(runas) == 0 {
			runas = []string{grant.DefaultRunAs}
		}
		out.Rules = append(out.Rules, api.RuleStatus{
			Name: st.Rule.Name, Via: st.Via, Commands: slices.Clone(st.Rule.Commands), RunAs: slices.Clone(runas),
			RunAsGroups: slices.Clone(st.Rule.RunAsGroups),
			Windows:     slices.Clone(st.Rule.Windows), Timezone: st.Rule.Timezone, Schedule: st.Schedule,
			// In the rule's zone, so that the offset on the wire is the
			// one the rule is written in.
			Open: st.Open, Closes: inZone(st.Closes, st.Location), Opens: inZone(st.Opens, st.Location),
		})
	}
	return http.StatusOK, out, nil
}

func inZone(t time.Time, loc *time.Location) time.Time {
	if t.IsZero() || loc == nil {
		return t
	}
	return t.In(loc)
}
