package policy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

const testdataDir = "../../testdata/policy"

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestParseValidFile(t *testing.T) {
	p, err := Parse(readTestdata(t, "valid.hcl"), "valid.hcl")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &Policy{
		Socket:          "/run/jitd/test.sock",
		StateDir:        "/var/lib/jitd-test",
		Approvers:       []string{"lead", "%oncall"},
		DefaultDuration: time.Hour,
		MaxDuration:     8 * time.Hour,
		RequireReason:   true,
		Authenticate:    true,
		AuthCache:       5 * time.Minute,
		GracePeriod:     5 * time.Second,
		WarnBefore:      []time.Duration{15 * time.Minute, 5 * time.Minute, time.Minute},
		Rules: []grant.Rule{
			{
				Name:        "web-restarts",
				Users:       []string{"%web"},
				Commands:    []string{"/usr/bin/systemctl restart nginx", "/usr/bin/journalctl -u nginx *"},
				RunAs:       []string{"root"},
				RunAsGroups: []string{"adm"},
				Windows:     []string{"Mon-Fri 09:00-17:00"},
				Timezone:    "Europe/Berlin",
			},
			{
				Name:     "status-for-all",
				Users:    []string{"*"},
				Commands: []string{"/usr/bin/systemctl status *", `/usr/bin/uptime ""`},
			},
		},
		Login: Login{
			Services: []string{"sshd", "login"},
			Users:    []string{"*"},
			Exempt:   []string{"root", "%admins"},
		},
		BreakGlass: BreakGlass{Users: []string{"%sre"}, MaxDuration: time.Hour},
		Recording:  Recording{Enabled: true, Required: true, Input: true},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Parse(valid.hcl)\n got %+v\nwant %+v", p, want)
	}
}

func TestParseContribExample(t *testing.T) {
	src, err := os.ReadFile("../../contrib/jitd.hcl")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(src, "contrib/jitd.hcl")
	if err != nil {
		t.Fatalf("the shipped example policy must be valid:\n%v", err)
	}
	if len(p.Rules) == 0 || len(p.Login.Services) == 0 {
		t.Errorf("the example should demonstrate rules and login gating, got %+v", p)
	}
}

func TestParseEmptyIsDefault(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "\n\n"} {
		p, err := Parse([]byte(src), "empty.hcl")
		if err != nil {
			t.Fatalf("Parse(%q): %v", src, err)
		}
		if !reflect.DeepEqual(p, Default()) {
			t.Errorf("Parse(%q) = %+v, want Default() %+v", src, p, Default())
		}
	}
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, p *Policy)
	}{
		{"login block defaults users to everyone", `login { services = ["sshd"] }`, func(t *testing.T, p *Policy) {
			if !reflect.DeepEqual(p.Login.Users, []string{"*"}) {
				t.Errorf("Login.Users = %q, want [*]", p.Login.Users)
			}
		}},
		{"breakglass max follows a short max_duration", "max_duration = \"30m\"\ndefault_duration = \"10m\"\nbreakglass { users = [\"%sre\"] }", func(t *testing.T, p *Policy) {
			if p.BreakGlass.MaxDuration != 30*time.Minute {
				t.Errorf("BreakGlass.MaxDuration = %v, want 30m", p.BreakGlass.MaxDuration)
			}
		}},
		{"zero auth_cache and grace are allowed", "auth_cache = \"0s\"\ngrace_period = \"0\"", func(t *testing.T, p *Policy) {
			if p.AuthCache != 0 || p.GracePeriod != 0 {
				t.Errorf("AuthCache, GracePeriod = %v, %v; want 0, 0", p.AuthCache, p.GracePeriod)
			}
		}},
		{"empty warn_before turns warnings off", `warn_before = []`, func(t *testing.T, p *Policy) {
			if len(p.WarnBefore) != 0 {
				t.Errorf("WarnBefore = %v, want none", p.WarnBefore)
			}
		}},
		{"paths are cleaned", `state_dir = "/var/lib//jitd/"`, func(t *testing.T, p *Policy) {
			if p.StateDir != "/var/lib/jitd" {
				t.Errorf("StateDir = %q", p.StateDir)
			}
		}},
		{"recording off", "recording {\n enabled = false\n input = false\n}", func(t *testing.T, p *Policy) {
			if p.Recording != (Recording{}) {
				t.Errorf("Recording = %+v", p.Recording)
			}
		}},
		{"names directory services use", `approvers = ["Alice.Smith", "bob@example.com", "host$", "%domain_admins", "_svc"]`, func(t *testing.T, p *Policy) {
			if len(p.Approvers) != 5 {
				t.Errorf("Approvers = %q", p.Approvers)
			}
		}},
		{"window without timezone is UTC", "rule \"r\" {\n users = [\"a\"]\n commands = [\"ALL\"]\n window = [\"Daily 22:00-06:00\"]\n}", func(t *testing.T, p *Policy) {
			if r := p.Rules[0]; r.Timezone != "" || len(r.Windows) != 1 || r.RunAs != nil {
				t.Errorf("rule = %+v", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.src), "t.hcl")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, p)
		})
	}
}

// lineRE is the contract for every line of a policy error.
var lineRE = regexp.MustCompile(`^[^:\s]+:\d+:\d+: \S`)

// checkErr asserts that err lists exactly len(want) problems, one per
// line, each with a position, and that each want string occurs in it.
func checkErr(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Parse succeeded, want errors %q", want)
	}
	var perr *Error
	if !errors.As(err, &perr) {
		t.Errorf("error is %T, want *policy.Error", err)
	}
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	for _, l := range lines {
		if !lineRE.MatchString(l) {
			t.Errorf("error line %q does not start with file:line:col", l)
		}
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not contain %q; got:\n%s", w, msg)
		}
	}
	if len(lines) != len(want) {
		t.Errorf("got %d error lines, want %d:\n%s", len(lines), len(want), msg)
	}
}

func TestParseBrokenFiles(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"syntax.hcl", []string{
			"syntax.hcl:3:1: Missing item separator",
		}},
		{"durations.hcl", []string{
			`durations.hcl:1:20: Invalid duration: default_duration: "1d": durations have no day or week unit; write hours, e.g. "24h"`,
			`durations.hcl:2:20: Invalid duration: max_duration: "90" has no unit`,
			`durations.hcl:3:20: Invalid duration: auth_cache: "-5m" is negative`,
			`durations.hcl:4:20: Grace period too long: grace_period 10m is longer than 5m`,
			`durations.hcl:5:27: Invalid duration: warn_before: "soon" is not a duration`,
			`durations.hcl:5:35: Duplicate warning: warn_before lists 5m twice`,
		}},
		{"default_over_max.hcl", []string{
			"default_over_max.hcl:1:20: Default duration above maximum: default_duration 12h is longer than max_duration 8h",
			"default_over_max.hcl:6:18: Break-glass maximum above maximum: breakglass max_duration 10h is longer than max_duration 8h",
		}},
		{"principals.hcl", []string{
			"principals.hcl:1:14: Invalid principal: approvers: a principal must not be empty",
			`principals.hcl:1:18: Invalid principal: approvers: user principal "alice,bob": character ',' is not allowed`,
			`principals.hcl:1:31: Invalid principal: approvers: group principal "%": the name is empty`,
			`principals.hcl:1:36: Invalid principal: approvers: "*" (anyone) is not allowed here`,
			`principals.hcl:4:23: Invalid PAM service: PAM service "ss hd"`,
			`principals.hcl:5:15: Invalid principal: exempt: group principal "% admins": character ' ' is not allowed`,
			`principals.hcl:9:11: Incorrect type: users must be a list of strings`,
		}},
		{"rules.hcl", []string{
			`rules.hcl:3:15: Invalid command pattern: command pattern "systemctl restart nginx": command "systemctl" is not an absolute path`,
			`rules.hcl:4:38: Invalid window: window "Someday 10:00-11:00": unknown day "Someday"`,
			`rules.hcl:5:14: Invalid timezone: timezone "Mars/Olympus_Mons": unknown time zone`,
			`rules.hcl:8:6: Duplicate rule name: rule "web" is already defined at rules.hcl:1:6`,
			`rules.hcl:9:14: Rule without users: rule "web" names no users`,
			`rules.hcl:11:15: Invalid runas user: runas "%wheel"`,
			`rules.hcl:12:26: Invalid runas group: runas_groups "%wheel": character '%' is not allowed`,
			`rules.hcl:15:20: Missing required argument: The argument "commands" is required`,
		}},
		{"unknown.hcl", []string{
			`unknown.hcl:1:1: Unsupported argument: An argument named "approver" is not expected here. Did you mean "approvers"?`,
			`unknown.hcl:3:1: Unsupported block type: Blocks of type "logins" are not expected here. Did you mean "login"?`,
			`unknown.hcl:9:3: Unsupported argument: An argument named "output" is not expected here.`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, err := Parse(readTestdata(t, tt.file), tt.file)
			if p != nil {
				t.Errorf("Parse returned a policy alongside errors")
			}
			checkErr(t, err, tt.want)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"default above built-in max", `default_duration = "9h"`, []string{
			"t.hcl:1:20: Default duration above maximum: default_duration 9h is longer than the built-in max_duration 8h",
		}},
		{"max below built-in default", `max_duration = "30m"`, []string{
			"t.hcl:1:16: Maximum below default duration: max_duration 30m is shorter than the built-in default_duration 1h",
		}},
		{"zero max", `max_duration = "0s"`, []string{
			`t.hcl:1:16: Invalid duration: max_duration: "0s" must be longer than zero`,
		}},
		{"empty duration", `auth_cache = ""`, []string{
			`t.hcl:1:14: Invalid duration: auth_cache: empty duration`,
		}},
		{"number instead of duration", `grace_period = 5`, []string{
			`t.hcl:1:16: Invalid duration: grace_period: "5" has no unit`,
		}},
		{"bool of wrong type", `require_reason = "maybe"`, []string{
			"t.hcl:1:18: Incorrect type: require_reason must be true or false",
		}},
		{"string instead of list", `approvers = "lead"`, []string{
			`t.hcl:1:13: Incorrect type: approvers must be a list of strings, e.g. ["a", "b"], not string`,
		}},
		{"list element of wrong type", `approvers = ["lead", ["x"]]`, []string{
			"t.hcl:1:22: Incorrect type: element 2 of approvers must be a string",
		}},
		{"null", `socket = null`, []string{
			"t.hcl:1:10: Null value: socket must not be null",
		}},
		{"null element", `approvers = [null]`, []string{
			"t.hcl:1:14: Null value: element 1 of approvers must not be null",
		}},
		{"variables are not allowed", `socket = var.x`, []string{
			"t.hcl:1:10: Variables not allowed",
		}},
		{"functions are not allowed", `socket = lower("/X")`, []string{
			"t.hcl:1:10: Function calls not allowed",
		}},
		{"relative socket", `socket = "jitd.sock"`, []string{
			`t.hcl:1:10: Invalid path: socket must be an absolute path, got "jitd.sock"`,
		}},
		{"socket too long", `socket = "/` + strings.Repeat("s", 120) + `"`, []string{
			"t.hcl:1:10: Socket path too long",
		}},
		{"relative state_dir", `state_dir = "var/lib/jitd"`, []string{
			"t.hcl:1:13: Invalid path: state_dir must be an absolute path",
		}},
		{"numeric user", `approvers = ["1000"]`, []string{
			`t.hcl:1:14: Invalid principal: approvers: user principal "1000": a numeric name reads like a uid`,
		}},
		{"option-like user", `approvers = ["-x"]`, []string{
			`t.hcl:1:14: Invalid principal: approvers: user principal "-x": character '-' is not allowed`,
		}},
		{"attribute twice", "approvers = [\"a\"]\napprovers = [\"b\"]", []string{
			"t.hcl:2:1: Attribute redefined",
		}},
		{"duplicate login block", "login {}\nlogin {}", []string{
			"t.hcl:2:1: Duplicate login block: only one login block is allowed; the first one is at t.hcl:1:1",
		}},
		{"duplicate recording block", "recording {}\n\nrecording {}", []string{
			"t.hcl:3:1: Duplicate recording block",
		}},
		{"breakglass without users", "breakglass {\n  max_duration = \"1h\"\n}", []string{
			`t.hcl:1:12: Missing required argument: The argument "users" is required`,
		}},
		{"breakglass for anyone", `breakglass { users = ["*"] }`, []string{
			`t.hcl:1:23: Invalid principal: users: "*" (anyone) is not allowed here`,
		}},
		{"exempt anyone", `login { exempt = ["*"] }`, []string{
			`t.hcl:1:19: Invalid principal: exempt: "*" (anyone) is not allowed here`,
		}},
		{"required but disabled recording", "recording {\n  enabled = false\n  required = true\n}", []string{
			"t.hcl:3:14: Recording required but disabled",
		}},
		{"rule without label", `rule { }`, []string{
			"t.hcl:1:6: Missing name for rule",
		}},
		{"bad rule name", "rule \"web restarts\" {\n users = [\"a\"]\n commands = [\"ALL\"]\n}", []string{
			`t.hcl:1:6: Invalid rule name: rule name "web restarts": character ' ' is not allowed`,
		}},
		{"rule without commands list entries", "rule \"r\" {\n users = [\"a\"]\n commands = []\n}", []string{
			`t.hcl:3:13: Rule without commands: rule "r" names no commands`,
		}},
		{"rule unknown attribute", "rule \"r\" {\n users = [\"a\"]\n commands = [\"ALL\"]\n windows = [\"Daily 09:00-10:00\"]\n}", []string{
			`t.hcl:4:2: Unsupported argument: An argument named "windows" is not expected here. Did you mean "window"?`,
		}},
		{"local timezone", "rule \"r\" {\n users = [\"a\"]\n commands = [\"ALL\"]\n timezone = \"Local\"\n}", []string{
			`t.hcl:4:13: Invalid timezone: timezone "Local"`,
		}},
		{"bad time in window", "rule \"r\" {\n users = [\"a\"]\n commands = [\"ALL\"]\n window = [\"Mon 25:00-26:00\"]\n}", []string{
			`t.hcl:4:12: Invalid window: window "Mon 25:00-26:00"`,
		}},
		{"relative command", "rule \"r\" {\n users = [\"a\"]\n commands = [\"/bin/true\", \"ls -l\"]\n}", []string{
			`t.hcl:3:27: Invalid command pattern: command pattern "ls -l": command "ls" is not an absolute path`,
		}},
		{"empty command", "rule \"r\" {\n users = [\"a\"]\n commands = [\"\"]\n}", []string{
			`t.hcl:3:14: Invalid command pattern: command pattern "" is empty`,
		}},
		{"a broken duration is not compared with the other", "default_duration = \"x\"\nmax_duration = \"30m\"", []string{
			"t.hcl:1:20: Invalid duration",
		}},
		{"a broken maximum is not compared with the others", "max_duration = \"x\"\nbreakglass {\n users = [\"a\"]\n max_duration = \"9h\"\n}", []string{
			"t.hcl:1:16: Invalid duration",
		}},
		{"errors in several places are all reported", "default_duration = \"x\"\napprovers = [\"\"]\nlogin { services = [\"\"] }", []string{
			"t.hcl:1:20: Invalid duration",
			"t.hcl:2:14: Invalid principal",
			"t.hcl:3:21: Invalid PAM service",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.src), "t.hcl")
			if p != nil {
				t.Errorf("Parse returned a policy alongside errors")
			}
			checkErr(t, err, tt.want)
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	src := []byte(strings.Repeat("#", MaxFileSize+1))
	_, err := Parse(src, "big.hcl")
	checkErr(t, err, []string{"big.hcl:1:1: File too large"})
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode, src []byte) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, src, 0o600); err != nil {
			t.Fatal(err)
		}
		// WriteFile's mode is subject to the umask; the test needs exact bits.
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}

	t.Run("missing file", func(t *testing.T) {
		p, err := Load(filepath.Join(dir, "nope.hcl"))
		if p != nil || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Load(missing) = %v, %v; want an fs.ErrNotExist error", p, err)
		}
	})
	t.Run("valid file", func(t *testing.T) {
		path := write("valid.hcl", 0o644, readTestdata(t, "valid.hcl"))
		p, err := Load(path)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if len(p.Rules) != 2 {
			t.Errorf("Rules = %+v", p.Rules)
		}
	})
	t.Run("errors name the path", func(t *testing.T) {
		path := write("bad.hcl", 0o644, []byte("max_duration = \"forever\"\n"))
		_, err := Load(path)
		checkErr(t, err, []string{path + ":1:16: Invalid duration"})
		if errors.Is(err, fs.ErrNotExist) {
			t.Error("a broken file must not look like a missing one")
		}
	})
	t.Run("world-writable file", func(t *testing.T) {
		path := write("ww.hcl", 0o666, nil)
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), "world-writable") {
			t.Fatalf("Load(world-writable) = %v, want a refusal", err)
		}
	})
	t.Run("group-writable file", func(t *testing.T) {
		path := write("gw.hcl", 0o664, nil)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Load(path)
		// Group root may write (as sudo allows for sudoers); any other
		// group is as good as another owner.
		if fi.Sys().(*syscall.Stat_t).Gid == 0 {
			if err != nil {
				t.Fatalf("Load(group root writable) = %v", err)
			}
		} else if err == nil || !strings.Contains(err.Error(), "writable by group") {
			t.Fatalf("Load(group-writable) = %v, want a refusal", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("Load(dir) = %v, want a refusal", err)
		}
	})
}

func TestParseManyErrorsAreSummarised(t *testing.T) {
	src := strings.Repeat("login {}\n", 200)
	_, err := Parse([]byte(src), "t.hcl")
	var perr *Error
	if !errors.As(err, &perr) || len(perr.Diagnostics) != 199 {
		t.Fatalf("want 199 diagnostics, got %v", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxReported+1 {
		t.Fatalf("got %d lines, want %d", len(lines), maxReported+1)
	}
	if last := lines[len(lines)-1]; last != "t.hcl:52:1: More errors: 149 more errors not shown." {
		t.Errorf("last line = %q", last)
	}
}

func TestParseLimits(t *testing.T) {
	// Each of these would recurse once per repetition inside HCL and, at
	// this size, overflow the stack, which kills the process.
	n := MaxFileSize / 16
	tests := []struct{ name, src, want string }{
		{"nested lists", "approvers = " + strings.Repeat("[", n), "t.hcl:1:45: Nesting too deep"},
		{"nested blocks", strings.Repeat("a {\n", n), "t.hcl:33:3: Nesting too deep"},
		{"nested templates", "socket = " + strings.Repeat(`"${`, n), "t.hcl:1:58: Nesting too deep"},
		{"unary chain", "socket = " + strings.Repeat("-", n) + "1", "t.hcl:1:74: Too many operators"},
		{"conditional chain", "socket = " + strings.Repeat("true ? 1 : ", n) + "1", "t.hcl:1:719: Too many operators"},
		{"template directives", `socket = "` + strings.Repeat("%{if true}", n), "t.hcl:1:651: Too many operators"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), "t.hcl")
			checkErr(t, err, []string{tt.want})
		})
	}
	// What a real policy uses stays far below the limits.
	if _, err := Parse([]byte("socket = \"/run/${\"jitd\"}/x.sock\"\nmax_duration = \"${\"8h\"}\"\n"), "t.hcl"); err != nil {
		t.Errorf("templates within limits: %v", err)
	}
}

func TestCheckFileSafety(t *testing.T) {
	euid := uint32(os.Geteuid())
	tests := []struct {
		name     string
		mode     fs.FileMode
		uid, gid uint32
		want     string
	}{
		{"root 0644", 0o644, 0, 0, ""},
		{"root 0600", 0o600, 0, 0, ""},
		{"group root may write", 0o664, 0, 0, ""},
		{"own file (tests)", 0o644, euid, 1000, ""},
		{"other owner", 0o644, euid + 1, 0, "owned by uid"},
		{"world-writable", 0o646, 0, 0, "world-writable (mode 0646)"},
		{"group-writable, group not root", 0o664, 0, 50, "writable by group 50"},
		{"directory", fs.ModeDir | 0o755, 0, 0, "not a regular file"},
		{"device", fs.ModeDevice | 0o644, 0, 0, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.uid == 0 && euid == 0 && tt.want == "owned by uid" {
				t.Skip()
			}
			err := checkFileSafety("/etc/jitd/jitd.hcl", fakeInfo{mode: tt.mode, st: &syscall.Stat_t{Uid: tt.uid, Gid: tt.gid}})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

type fakeInfo struct {
	mode fs.FileMode
	st   *syscall.Stat_t
}

func (f fakeInfo) Name() string       { return "jitd.hcl" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return f.st }
