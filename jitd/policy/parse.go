package policy

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/jitpam/jit/jitd/grant"
)

// MaxFileSize bounds what Parse reads. Real policies are a few KiB; the
// bound keeps a mistaken path (a log file, /dev/zero) from eating memory.
const MaxFileSize = 1 << 20

// maxSocketPath is sizeof(sun_path) minus the terminating NUL.
const maxSocketPath = 107

// maxGracePeriod bounds grace_period: a grant that ended must not keep
// running for long just because its processes ignore SIGTERM.
const maxGracePeriod = 5 * time.Minute

// Load reads and parses the policy file at path. A missing file yields an
// error for which errors.Is(err, fs.ErrNotExist) holds, so the daemon can
// fall back to Default(). The file must not be writable by anyone but
// root (or the current user, for tests): whoever can edit it can make
// themselves an approver.
func Load(path string) (*Policy, error) {
	// O_NONBLOCK keeps a FIFO planted at the path from hanging a reload;
	// it changes nothing for the regular file that checkFileSafety demands.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	if err := checkFileSafety(path, fi); err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("load policy: read %s: %w", path, err)
	}
	return Parse(src, path)
}

// checkFileSafety refuses what sudo refuses for sudoers: files others can
// write. Checking the opened file (not the path) avoids a swap in between.
func checkFileSafety(path string, fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read file ownership", path)
	}
	if euid := os.Geteuid(); st.Uid != 0 && int(st.Uid) != euid {
		return fmt.Errorf("%s is owned by uid %d, want root", path, st.Uid)
	}
	perm := fi.Mode().Perm()
	if perm&0o002 != 0 {
		return fmt.Errorf("%s is world-writable (mode %04o); run chmod o-w on it", path, perm)
	}
	if perm&0o020 != 0 && st.Gid != 0 {
		return fmt.Errorf("%s is writable by group %d (mode %04o); run chmod g-w on it", path, st.Gid, perm)
	}
	return nil
}

// Parse parses and validates a policy. filename is only used in error
// messages. Every problem found is reported, in one *Error.
func Parse(src []byte, filename string) (*Policy, error) {
	if len(src) > MaxFileSize {
		return nil, newError(hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "File too large",
			Detail:   fmt.Sprintf("The policy is larger than %d bytes; is this the right file?", MaxFileSize),
			Subject:  &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos},
		}})
	}
	if diags := checkLimits(src, filename); diags.HasErrors() {
		return nil, newError(diags)
	}
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		// The partial AST of a broken file only produces follow-up noise.
		return nil, newError(diags)
	}
	d := &decoder{}
	p := d.policy(file.Body)
	if d.diags.HasErrors() {
		return nil, newError(d.diags)
	}
	return p, nil
}

// decoder collects diagnostics while decoding, so one run reports every
// problem of the file.
type decoder struct {
	diags hcl.Diagnostics
}

func (d *decoder) errorf(rng hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  rng.Ptr(),
	})
}

func (d *decoder) add(diags hcl.Diagnostics) { d.diags = append(d.diags, diags...) }

func rootSchema() *hcl.BodySchema {
	return &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "socket"},
			{Name: "state_dir"},
			{Name: "approvers"},
			{Name: "default_duration"},
			{Name: "max_duration"},
			{Name: "require_reason"},
			{Name: "authenticate"},
			{Name: "auth_cache"},
			{Name: "grace_period"},
			{Name: "warn_before"},
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "rule", LabelNames: []string{"name"}},
			{Type: "login"},
			{Type: "breakglass"},
			{Type: "recording"},
		},
	}
}

func (d *decoder) policy(body hcl.Body) *Policy {
	p := Default()
	content, diags := body.Content(rootSchema())
	d.add(diags)
	attrs := content.Attributes

	if a := attrs["socket"]; a != nil {
		if s, ok := d.absPath(a); ok {
			if len(s) > maxSocketPath {
				d.errorf(a.Expr.Range(), "Socket path too long",
					"socket is %d bytes; Unix socket paths are limited to %d.", len(s), maxSocketPath)
			} else {
				p.Socket = s
			}
		}
	}
	if a := attrs["state_dir"]; a != nil {
		if s, ok := d.absPath(a); ok {
			p.StateDir = s
		}
	}
	if a := attrs["approvers"]; a != nil {
		if v, ok := d.principals(a, false); ok {
			p.Approvers = v
		}
	}
	// Limits are only compared when both sides are known; comparing a
	// broken value's built-in default would add a misleading error.
	defaultOK := true
	if a := attrs["default_duration"]; a != nil {
		v, ok := d.duration(a, true)
		p.DefaultDuration = cmp.Or(v, p.DefaultDuration)
		defaultOK = ok
	}
	maxOK := true
	if a := attrs["max_duration"]; a != nil {
		v, ok := d.duration(a, true)
		p.MaxDuration = cmp.Or(v, p.MaxDuration)
		maxOK = ok
	}
	if a := attrs["require_reason"]; a != nil {
		if v, ok := d.boolean(a); ok {
			p.RequireReason = v
		}
	}
	if a := attrs["authenticate"]; a != nil {
		if v, ok := d.boolean(a); ok {
			p.Authenticate = v
		}
	}
	if a := attrs["auth_cache"]; a != nil {
		if v, ok := d.duration(a, false); ok {
			p.AuthCache = v
		}
	}
	if a := attrs["grace_period"]; a != nil {
		if v, ok := d.duration(a, false); ok {
			if v > maxGracePeriod {
				d.errorf(a.Expr.Range(), "Grace period too long",
					"grace_period %s is longer than %s; processes of an ended grant must not linger.",
					FormatDuration(v), FormatDuration(maxGracePeriod))
			} else {
				p.GracePeriod = v
			}
		}
	}
	if a := attrs["warn_before"]; a != nil {
		if v, ok := d.warnBefore(a); ok {
			p.WarnBefore = v
		}
	}
	if defaultOK && maxOK {
		d.durationOrder(p, attrs["default_duration"], attrs["max_duration"])
	}

	seenRules := map[string]hcl.Range{}
	var login, breakglass, recording *hcl.Block
	for _, b := range content.Blocks {
		switch b.Type {
		case "rule":
			name := b.Labels[0]
			if first, dup := seenRules[name]; dup {
				d.errorf(b.LabelRanges[0], "Duplicate rule name",
					"rule %s is already defined at %s; audit events name the rule that allowed a command, so names must be unique.",
					quote(name), posString(first))
			} else {
				seenRules[name] = b.LabelRanges[0]
			}
			if r, ok := d.rule(b); ok {
				p.Rules = append(p.Rules, r)
			}
		case "login":
			if d.once(b, login) {
				login = b
				d.login(b, p)
			}
		case "breakglass":
			if d.once(b, breakglass) {
				breakglass = b
				d.breakGlass(b, p, maxOK)
			}
		case "recording":
			if d.once(b, recording) {
				recording = b
				d.recording(b, p)
			}
		}
	}
	return p
}

// once reports a repeated singleton block; merging two login blocks would
// hide which one the administrator meant.
func (d *decoder) once(b, first *hcl.Block) bool {
	if first == nil {
		return true
	}
	d.errorf(b.DefRange, "Duplicate "+b.Type+" block",
		"only one %s block is allowed; the first one is at %s.", b.Type, posString(first.DefRange))
	return false
}

func posString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// durationOrder checks default_duration <= max_duration, pointing at
// whichever of the two the file actually sets.
func (d *decoder) durationOrder(p *Policy, defAttr, maxAttr *hcl.Attribute) {
	if p.DefaultDuration <= p.MaxDuration {
		return
	}
	switch {
	case defAttr != nil && maxAttr != nil:
		d.errorf(defAttr.Expr.Range(), "Default duration above maximum",
			"default_duration %s is longer than max_duration %s.",
			FormatDuration(p.DefaultDuration), FormatDuration(p.MaxDuration))
	case defAttr != nil:
		d.errorf(defAttr.Expr.Range(), "Default duration above maximum",
			"default_duration %s is longer than the built-in max_duration %s; set max_duration too.",
			FormatDuration(p.DefaultDuration), FormatDuration(p.MaxDuration))
	case maxAttr != nil:
		d.errorf(maxAttr.Expr.Range(), "Maximum below default duration",
			"max_duration %s is shorter than the built-in default_duration %s; set default_duration too.",
			FormatDuration(p.MaxDuration), FormatDuration(p.DefaultDuration))
	}
}

func (d *decoder) rule(b *hcl.Block) (grant.Rule, bool) {
	r := grant.Rule{Name: b.Labels[0]}
	errsBefore := len(d.diags)
	if why := checkRuleName(r.Name); why != "" {
		d.errorf(b.LabelRanges[0], "Invalid rule name", "%s.", why)
	}
	content, diags := b.Body.Content(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "users", Required: true},
			{Name: "commands", Required: true},
			{Name: "runas"},
			{Name: "runas_groups"},
			{Name: "window"},
			{Name: "timezone"},
		},
	})
	d.add(diags)
	attrs := content.Attributes

	if a := attrs["users"]; a != nil {
		if v, ok := d.principals(a, true); ok {
			if len(v) == 0 {
				d.errorf(a.Expr.Range(), "Rule without users", "rule %s names no users, so it allows nothing; remove it or list users.", quote(r.Name))
			}
			r.Users = v
		}
	}
	if a := attrs["commands"]; a != nil {
		if items, ok := d.strList(a); ok {
			if len(items) == 0 {
				d.errorf(a.Expr.Range(), "Rule without commands", "rule %s names no commands, so it allows nothing; remove it or list commands.", quote(r.Name))
			}
			for _, it := range items {
				if why := checkCommand(it.s); why != "" {
					d.errorf(it.rng, "Invalid command pattern", "%s", why)
					continue
				}
				r.Commands = append(r.Commands, it.s)
			}
		}
	}
	if a := attrs["runas"]; a != nil {
		if items, ok := d.strList(a); ok {
			for _, it := range items {
				if why := checkName(it.s); why != "" {
					d.errorf(it.rng, "Invalid runas user", "runas %s: %s; runas lists target user names.", quote(it.s), why)
					continue
				}
				r.RunAs = append(r.RunAs, it.s)
			}
		}
	}
	if a := attrs["runas_groups"]; a != nil {
		if items, ok := d.strList(a); ok {
			for _, it := range items {
				if why := checkName(it.s); why != "" && it.s != "ALL" {
					d.errorf(it.rng, "Invalid runas group", "runas_groups %s: %s; runas_groups lists group names (or ALL).", quote(it.s), why)
					continue
				}
				r.RunAsGroups = append(r.RunAsGroups, it.s)
			}
		}
	}
	var windows []item
	if a := attrs["window"]; a != nil {
		if items, ok := d.strList(a); ok {
			windows = items
			for _, it := range items {
				r.Windows = append(r.Windows, it.s)
			}
		}
	}
	if a := attrs["timezone"]; a != nil {
		if s, ok := d.str(a); ok {
			r.Timezone = s
		}
	}
	d.schedule(windows, attrs["timezone"], r.Timezone)
	return r, len(d.diags) == errsBefore
}

func (d *decoder) login(b *hcl.Block, p *Policy) {
	content, diags := b.Body.Content(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "services"},
			{Name: "users"},
			{Name: "exempt"},
		},
	})
	d.add(diags)
	attrs := content.Attributes
	// A login block that names services but not users means "gate these
	// services", i.e. everyone.
	p.Login.Users = []string{AnyPrincipal}
	if a := attrs["services"]; a != nil {
		if items, ok := d.strList(a); ok {
			for _, it := range items {
				if why := checkServiceName(it.s); why != "" {
					d.errorf(it.rng, "Invalid PAM service", "%s.", why)
					continue
				}
				p.Login.Services = append(p.Login.Services, it.s)
			}
		}
	}
	if a := attrs["users"]; a != nil {
		if v, ok := d.principals(a, true); ok {
			p.Login.Users = v
		}
	}
	if a := attrs["exempt"]; a != nil {
		if v, ok := d.principals(a, false); ok {
			p.Login.Exempt = v
		}
	}
}

func (d *decoder) breakGlass(b *hcl.Block, p *Policy, maxOK bool) {
	content, diags := b.Body.Content(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "users", Required: true},
			{Name: "max_duration"},
		},
	})
	d.add(diags)
	attrs := content.Attributes
	if a := attrs["users"]; a != nil {
		if v, ok := d.principals(a, false); ok {
			p.BreakGlass.Users = v
		}
	}
	p.BreakGlass.MaxDuration = min(time.Hour, p.MaxDuration)
	if a := attrs["max_duration"]; a != nil {
		if v, ok := d.duration(a, true); ok {
			if maxOK && v > p.MaxDuration {
				d.errorf(a.Expr.Range(), "Break-glass maximum above maximum",
					"breakglass max_duration %s is longer than max_duration %s.",
					FormatDuration(v), FormatDuration(p.MaxDuration))
			} else {
				p.BreakGlass.MaxDuration = v
			}
		}
	}
}

func (d *decoder) recording(b *hcl.Block, p *Policy) {
	content, diags := b.Body.Content(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "enabled"},
			{Name: "required"},
			{Name: "input"},
		},
	})
	d.add(diags)
	attrs := content.Attributes
	if a := attrs["enabled"]; a != nil {
		if v, ok := d.boolean(a); ok {
			p.Recording.Enabled = v
		}
	}
	if a := attrs["required"]; a != nil {
		if v, ok := d.boolean(a); ok {
			p.Recording.Required = v
			if v && !p.Recording.Enabled {
				d.errorf(a.Expr.Range(), "Recording required but disabled",
					"required = true needs enabled = true; a required recording that is never made would stop every command.")
			}
		}
	}
	if a := attrs["input"]; a != nil {
		if v, ok := d.boolean(a); ok {
			p.Recording.Input = v
		}
	}
}

// item is one string of a list with its own position, so that an error
// points at the offending element, not at the whole list.
type item struct {
	s   string
	rng hcl.Range
}

// value evaluates attr without variables or functions: the policy is
// static data, and HCL says so itself if someone tries either.
func (d *decoder) value(a *hcl.Attribute) (cty.Value, bool) {
	v, diags := a.Expr.Value(nil)
	d.add(diags)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	if !v.IsWhollyKnown() {
		d.errorf(a.Expr.Range(), "Invalid value", "%s must be a literal value.", a.Name)
		return cty.NilVal, false
	}
	if v.IsNull() {
		d.errorf(a.Expr.Range(), "Null value", "%s must not be null; leave it out to get the default.", a.Name)
		return cty.NilVal, false
	}
	return v, true
}

func (d *decoder) str(a *hcl.Attribute) (string, bool) {
	v, ok := d.value(a)
	if !ok {
		return "", false
	}
	sv, err := convert.Convert(v, cty.String)
	if err != nil {
		d.errorf(a.Expr.Range(), "Incorrect type", "%s must be a string, not %s.", a.Name, v.Type().FriendlyName())
		return "", false
	}
	return sv.AsString(), true
}

func (d *decoder) boolean(a *hcl.Attribute) (bool, bool) {
	v, ok := d.value(a)
	if !ok {
		return false, false
	}
	bv, err := convert.Convert(v, cty.Bool)
	if err != nil {
		d.errorf(a.Expr.Range(), "Incorrect type", "%s must be true or false.", a.Name)
		return false, false
	}
	return bv.True(), true
}

// strList decodes a list of strings. A single string is refused rather
// than promoted, because `approvers = "lead"` vs `["lead"]` is exactly the
// kind of slip that should be loud.
func (d *decoder) strList(a *hcl.Attribute) ([]item, bool) {
	v, ok := d.value(a)
	if !ok {
		return nil, false
	}
	ty := v.Type()
	if !ty.IsTupleType() && !ty.IsListType() && !ty.IsSetType() {
		d.errorf(a.Expr.Range(), "Incorrect type", "%s must be a list of strings, e.g. [\"a\", \"b\"], not %s.", a.Name, ty.FriendlyName())
		return nil, false
	}
	// Element expressions give each element its own position; a list
	// built by a for-expression has none and falls back to the attribute.
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() || len(exprs) != v.LengthInt() {
		exprs = nil
	}
	out := make([]item, 0, v.LengthInt())
	ok = true
	i := 0
	for it := v.ElementIterator(); it.Next(); i++ {
		_, ev := it.Element()
		rng := a.Expr.Range()
		if exprs != nil {
			rng = exprs[i].Range()
		}
		if ev.IsNull() {
			d.errorf(rng, "Null value", "element %d of %s must not be null.", i+1, a.Name)
			ok = false
			continue
		}
		sv, err := convert.Convert(ev, cty.String)
		if err != nil {
			d.errorf(rng, "Incorrect type", "element %d of %s must be a string, not %s.", i+1, a.Name, ev.Type().FriendlyName())
			ok = false
			continue
		}
		out = append(out, item{s: sv.AsString(), rng: rng})
	}
	return out, ok
}

// principals decodes and checks a list of principals; allowAny admits "*".
func (d *decoder) principals(a *hcl.Attribute, allowAny bool) ([]string, bool) {
	items, ok := d.strList(a)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if why := checkPrincipal(it.s, allowAny); why != "" {
			d.errorf(it.rng, "Invalid principal", "%s: %s.", a.Name, why)
			ok = false
			continue
		}
		out = append(out, it.s)
	}
	return out, ok
}

func (d *decoder) absPath(a *hcl.Attribute) (string, bool) {
	s, ok := d.str(a)
	if !ok {
		return "", false
	}
	if !filepath.IsAbs(s) || strings.ContainsRune(s, 0) {
		d.errorf(a.Expr.Range(), "Invalid path", "%s must be an absolute path, got %s.", a.Name, quote(s))
		return "", false
	}
	return filepath.Clean(s), true
}

// duration decodes a Go duration string; positive demands > 0, otherwise
// zero is allowed (it means "off" for auth_cache and grace_period).
func (d *decoder) duration(a *hcl.Attribute, positive bool) (time.Duration, bool) {
	s, ok := d.str(a)
	if !ok {
		return 0, false
	}
	v, why := parseDuration(s, positive)
	if why != "" {
		d.errorf(a.Expr.Range(), "Invalid duration", "%s: %s.", a.Name, why)
		return 0, false
	}
	return v, true
}

func (d *decoder) warnBefore(a *hcl.Attribute) ([]time.Duration, bool) {
	items, ok := d.strList(a)
	if !ok {
		return nil, false
	}
	out := make([]time.Duration, 0, len(items))
	for _, it := range items {
		v, why := parseDuration(it.s, true)
		if why != "" {
			d.errorf(it.rng, "Invalid duration", "warn_before: %s.", why)
			ok = false
			continue
		}
		if slices.Contains(out, v) {
			d.errorf(it.rng, "Duplicate warning", "warn_before lists %s twice.", FormatDuration(v))
			ok = false
			continue
		}
		out = append(out, v)
	}
	// Longest first: the order in which the warnings fire.
	slices.SortFunc(out, func(x, y time.Duration) int { return cmp.Compare(y, x) })
	return out, ok
}

// parseDuration returns the duration or a sentence saying what is wrong.
func parseDuration(s string, positive bool) (time.Duration, string) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		t := strings.TrimSpace(s)
		switch {
		case t == "":
			return 0, "empty duration; write e.g. \"30m\" or \"1h\""
		case strings.Trim(t, "0123456789.") == "":
			return 0, fmt.Sprintf("%s has no unit; write e.g. %s or %s", quote(s), quote(t+"s"), quote(t+"m"))
		case strings.ContainsAny(t, "dDwW"):
			return 0, fmt.Sprintf("%s: durations have no day or week unit; write hours, e.g. \"24h\"", quote(s))
		default:
			return 0, fmt.Sprintf("%s is not a duration; use units h, m, s, e.g. \"1h30m\"", quote(s))
		}
	}
	switch {
	case v < 0:
		return 0, fmt.Sprintf("%s is negative", quote(s))
	case v == 0 && positive:
		return 0, fmt.Sprintf("%s must be longer than zero", quote(s))
	}
	return v, ""
}
