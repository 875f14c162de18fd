package policy

import (
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/jitpam/jit/jitd/cmdmatch"
	"github.com/jitpam/jit/jitd/window"
)

// schedule checks a rule's windows and timezone with the same parser the
// decision core uses, so that what loads here also evaluates there. The
// zone and each window are checked on their own so that every error
// points at the attribute or list element at fault.
func (d *decoder) schedule(windows []item, tzAttr *hcl.Attribute, tz string) {
	if tzAttr != nil {
		if _, err := window.ParseSchedule(nil, tz); err != nil {
			d.errorf(tzAttr.Expr.Range(), "Invalid timezone", "%s.", strings.TrimSuffix(err.Error(), "."))
		}
	}
	for _, w := range windows {
		if _, err := window.ParseSchedule([]string{w.s}, ""); err != nil {
			d.errorf(w.rng, "Invalid window", "%s.", strings.TrimSuffix(err.Error(), "."))
		}
	}
}

// checkCommand returns a sentence saying what is wrong with a sudoers-style
// command pattern, or "". It compiles with the matcher the decision core
// uses, so a pattern that loads here can never fail to compile there.
func checkCommand(c string) string {
	if _, err := cmdmatch.Compile(c); err != nil {
		return strings.TrimSuffix(err.Error(), ".") + "."
	}
	return ""
}
