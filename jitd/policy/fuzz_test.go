package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary files to Parse. It must never panic, and what
// it accepts or refuses must keep the promises the daemon relies on.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(testdataDir, "*.hcl"))
	files = append(files, "../../contrib/jitd.hcl")
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, s := range []string{
		`approvers = [for s in ["a", "b"] : s]`,
		`approvers = {a = "b"}`,
		`warn_before = ["1m", 2, true]`,
		`rule "r" { users = ["*"] commands = ["ALL"] }`,
		"rule \"r\" {\n users = [\"a\"]\n commands = [\"/bin/x *\"]\n window = [\"Fri-Mon 22:00-06:00,07:00-08:00\"]\n timezone = \"America/New_York\"\n}",
		`socket = "${"x"}"`,
		"login {\n services = [\"sshd\"]\n}\nlogin {}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse(src, "fuzz.hcl")
		if err != nil {
			if p != nil {
				t.Fatal("policy returned together with an error")
			}
			var perr *Error
			if !errors.As(err, &perr) || len(perr.Diagnostics) == 0 {
				t.Fatalf("error %v carries no diagnostics", err)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != min(len(perr.Diagnostics), maxReported+1) {
				t.Fatalf("%d lines for %d diagnostics:\n%s", n, len(perr.Diagnostics), err)
			}
			return
		}
		if p.DefaultDuration <= 0 || p.DefaultDuration > p.MaxDuration || p.BreakGlass.MaxDuration > p.MaxDuration {
			t.Fatalf("accepted inconsistent durations: %+v", p)
		}
		for _, list := range [][]string{p.Approvers, p.BreakGlass.Users, p.Login.Exempt} {
			for _, pr := range list {
				if why := checkPrincipal(pr, false); why != "" {
					t.Fatalf("accepted principal %q: %s", pr, why)
				}
			}
		}
		seen := map[string]bool{}
		for _, r := range p.Rules {
			if seen[r.Name] {
				t.Fatalf("accepted duplicate rule %q", r.Name)
			}
			seen[r.Name] = true
			if len(r.Users) == 0 || len(r.Commands) == 0 {
				t.Fatalf("accepted empty rule %+v", r)
			}
		}
	})
}
