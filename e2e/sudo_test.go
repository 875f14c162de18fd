package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/jitd/journalread"
	"github.com/jitpam/jit/sandbox"
)

// End-to-end tests of the sudo policy plugin (jit_sudo.so, jit_policy) on
// the real sudo, against the built jitd, in the sandbox.

// sudoSandbox is a sandbox with jitd running (policy: sandbox.TestPolicy
// unless given) and sudo.conf naming the built plugin as the only policy.
func sudoSandbox(t testing.TB, policy string, pluginOpts ...string) (*sandbox.Sandbox, *sandbox.Jitd) {
	t.Helper()
	sb := sandbox.New(t)
	sandbox.RequireProgram(t, "/usr/bin/sudo")
	if policy == "" {
		policy = sandbox.TestPolicy
	}
	j := sb.StartJitd(sandbox.JitdOptions{Policy: policy})
	writeJitSudoConf(t, sb, pluginOpts...)
	return sb, j
}

// writeJitSudoConf makes jit_policy sudo's policy plugin. sudo ignores a
// plugin that is not root-owned or is group/world-writable, so that is
// checked first for a clear failure.
func writeJitSudoConf(t testing.TB, sb *sandbox.Sandbox, pluginOpts ...string) {
	t.Helper()
	so := sb.Artifact("jit_sudo.so")
	fi, err := os.Stat(so)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
		t.Fatalf("%s must be owned by root and not group/world-writable for sudo to load it (mode %v, uid %d)", so, fi.Mode(), st.Uid)
	}
	opts := append([]string{"socket=" + sandbox.SocketPath}, pluginOpts...)
	sb.WriteFile("/etc/sudo.conf", fmt.Sprintf("Plugin jit_policy %s %s\n", so, strings.Join(opts, " ")), 0o644)
}

// writeSudoersConf makes the stock sudoers plugin the policy, with rules.
func writeSudoersConf(sb *sandbox.Sandbox, rules string) {
	sb.WriteFile("/etc/sudo.conf", "Plugin sudoers_policy sudoers.so\nPlugin sudoers_io sudoers.so\n", 0o644)
	sb.WriteFile("/etc/sudoers.d/jit-e2e", rules, 0o440)
}

// grantSudo grants user the command patterns for d and returns the grant id.
func grantSudo(t testing.TB, sb *sandbox.Sandbox, user, d string, extra []string, cmds ...string) string {
	t.Helper()
	args := []string{"grant", user, "--for", d, "--reason", "INC-4711"}
	args = append(args, extra...)
	for _, c := range cmds {
		args = append(args, "--cmd", c)
	}
	r := sb.Jitctl("root", args...)
	if r.Code != 0 {
		t.Fatalf("jitctl %s: %s", strings.Join(args, " "), r)
	}
	id := strings.TrimSpace(r.Stdout)
	if !strings.HasPrefix(id, "g-") {
		t.Fatalf("jitctl grant printed no grant id: %s", r)
	}
	return id
}

func sudoAs(sb *sandbox.Sandbox, user string, env []string, args ...string) sandbox.Result {
	return sb.RunAs(user, 30*time.Second, "", env, append([]string{"/usr/bin/sudo"}, args...)...)
}

// wantDenied checks a refusal: exit 1, one line on stderr starting "jit:"
// that contains each of the fragments, nothing on stdout.
func wantDenied(t *testing.T, what string, r sandbox.Result, fragments ...string) {
	t.Helper()
	if r.Code != 1 {
		t.Errorf("%s: want refused (exit 1), got %s", what, r)
		return
	}
	if r.Stdout != "" {
		t.Errorf("%s: refused but printed on stdout: %s", what, r)
	}
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "jit: ") {
		t.Errorf("%s: want exactly one 'jit: …' line on stderr, got %s", what, r)
	}
	for _, f := range fragments {
		if !strings.Contains(r.Stderr, f) {
			t.Errorf("%s: stderr lacks %q: %s", what, f, r)
		}
	}
}

// A user without a grant is refused with the reason and the exact request
// line; a grant for /usr/bin/id allows exactly that, found through the
// secure PATH and not the user's.
func TestSudoGrantAllowsExactlyIt(t *testing.T) {
	sb, _ := sudoSandbox(t, "")

	r := sudoAs(sb, "jitalice", nil, "-n", "/usr/bin/id", "-u")
	wantDenied(t, "no grant", r, "jitalice has no grant to run /usr/bin/id -u as root",
		"jitctl request --cmd '/usr/bin/id -u' --for 30m")

	id := grantSudo(t, sb, "jitalice", "10m", nil, "/usr/bin/id")
	r = sudoAs(sb, "jitalice", nil, "-n", "/usr/bin/id", "-u")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "0" {
		t.Fatalf("sudo -n /usr/bin/id -u under a grant: want 0, got %s", r)
	}
	wantLine := "jit: grant " + id + " by root (INC-4711), expires in 10m"
	if strings.TrimSpace(r.Stderr) != wantLine {
		t.Errorf("allow line: want %q, got %q", wantLine, r.Stderr)
	}

	r = sudoAs(sb, "jitalice", nil, "-n", "/bin/cat", "/etc/shadow")
	wantDenied(t, "cat /etc/shadow", r, "grant "+id+" allows only /usr/bin/id, not /bin/cat /etc/shadow",
		"jitctl request --cmd '/bin/cat /etc/shadow'")
	if strings.Contains(r.Combined(), "root:") {
		t.Fatalf("shadow leaked: %s", r)
	}

	// Another user's grant is not jitbob's.
	wantDenied(t, "jitbob", sudoAs(sb, "jitbob", nil, "-n", "/usr/bin/id", "-u"), "jitbob has no grant")

	// A bare name resolves in the secure PATH, never in the user's PATH:
	// a fake id first in the user's PATH is not what runs.
	fake := "/home/jitalice/bin/id"
	sb.WriteFile(fake, "#!/bin/sh\necho fake-id\n", 0o755)
	if err := os.Chown(filepath.Dir(fake), 2001, 2100); err != nil {
		t.Fatal(err)
	}
	r = sudoAs(sb, "jitalice", []string{"PATH=/home/jitalice/bin:/usr/bin:/bin"}, "-n", "id", "-u")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "0" {
		t.Fatalf("sudo -n id -u with a fake id in the user's PATH: want /usr/bin/id's 0, got %s", r)
	}
	// Given explicitly (relative to the cwd), the fake is checked as what
	// it is, and refused.
	r = sudoAs(sb, "jitalice", nil, "-n", "./bin/id")
	wantDenied(t, "./bin/id", r, "not /home/jitalice/bin/id")
	// Unknown commands are "command not found".
	wantDenied(t, "no such command", sudoAs(sb, "jitalice", nil, "-n", "no-such-command-jit"), "no-such-command-jit: command not found")
	// /proc paths resolve differently in every process: refused outright.
	wantDenied(t, "/proc/self/root", sudoAs(sb, "jitalice", nil, "-n", "/proc/self/root/usr/bin/id"), "/proc")
}

// Exact-args, any-args, no-args and glob grants decide like the same
// sudoers rules, checked against the stock sudoers plugin in the same
// sandbox.
func TestSudoPatternsLikeSudoers(t *testing.T) {
	sb, _ := sudoSandbox(t, "")
	patterns := []string{`/bin/echo hello world`, `/usr/bin/id`, `/usr/bin/whoami ""`, `/bin/echo a *`}
	grantSudo(t, sb, "jitalice", "10m", nil, patterns...)

	cases := [][]string{
		{"/bin/echo", "hello", "world"},
		{"/bin/echo", "hello"},
		{"/bin/echo", "hello", "world", "again"},
		{"/bin/echo"},
		{"/usr/bin/id"},
		{"/usr/bin/id", "-u"},
		{"/usr/bin/id", "-g", "-n"},
		{"/usr/bin/whoami"},
		{"/usr/bin/whoami", "--version"},
		{"/bin/echo", "a", "b"},
		{"/bin/echo", "a", "xyz"},
		{"/bin/echo", "a"},
		{"/bin/echo", "b", "c"},
		{"/bin/cat", "/etc/shadow"},
	}
	type outcome struct {
		code int
		out  string
	}
	run := func() []outcome {
		var res []outcome
		for _, c := range cases {
			r := sudoAs(sb, "jitalice", nil, append([]string{"-n"}, c...)...)
			res = append(res, outcome{r.Code, r.Stdout})
		}
		return res
	}
	jit := run()
	writeSudoersConf(sb, "jitalice ALL=(root) NOPASSWD: "+strings.Join(patterns, ", ")+"\n")
	sudoers := run()
	for i, c := range cases {
		if (jit[i].code == 0) != (sudoers[i].code == 0) || jit[i].out != sudoers[i].out {
			t.Errorf("sudo -n %s: jit exit %d %q, sudoers exit %d %q", strings.Join(c, " "),
				jit[i].code, jit[i].out, sudoers[i].code, sudoers[i].out)
		}
	}
	// The one deliberate difference (see package cmdmatch): a * never
	// crosses from one argument into the next.
	r := sudoAs(sb, "jitalice", nil, "-n", "/bin/echo", "a", "b", "c")
	if r.Code != 0 {
		t.Errorf("sudoers' own behaviour changed? `echo a *` allows `echo a b c` there: %s", r)
	}
	writeJitSudoConf(t, sb)
	wantDenied(t, "echo a b c", sudoAs(sb, "jitalice", nil, "-n", "/bin/echo", "a", "b", "c"), "not /bin/echo a b c")
}

// sudo ends the command when the grant ends (command_info timeout), well
// before the command would have ended by itself.
func TestSudoCommandEndsWithGrant(t *testing.T) {
	sb, _ := sudoSandbox(t, "")
	grantSudo(t, sb, "jitalice", "3s", nil, "/bin/sleep")
	r := sudoAs(sb, "jitalice", nil, "-n", "/bin/sleep", "30")
	if r.Code == 0 {
		t.Fatalf("sleep 30 under a 3s grant ended with success: %s", r)
	}
	if !strings.Contains(r.Stderr, "jit: grant ") {
		t.Fatalf("sleep did not start under the grant: %s", r)
	}
	if r.Elapsed > 15*time.Second || r.Elapsed < 1500*time.Millisecond {
		t.Fatalf("want the command ended at about 3s, got %v: %s", r.Elapsed, r)
	}
	if !strings.Contains(r.Stderr, "has ended, and so has the command") {
		t.Errorf("sudo did not say why the command ended: %s", r)
	}
	t.Logf("ended after %v: %s", r.Elapsed.Round(time.Millisecond), strings.TrimSpace(r.Stderr))
	// And the ended grant now refuses.
	wantDenied(t, "after expiry", sudoAs(sb, "jitalice", nil, "-n", "/bin/sleep", "1"), "expired")
}

// The command's environment comes from an allow-list: nothing that changes
// how a root program runs, and not the user's PATH.
func TestSudoEnvironment(t *testing.T) {
	sb, _ := sudoSandbox(t, "")
	grantSudo(t, sb, "jitalice", "10m", nil, "/usr/bin/env")
	hostile := []string{
		"BASH_ENV=/home/jitalice/evil", "ENV=/home/jitalice/evil", "LD_PRELOAD=/home/jitalice/evil.so",
		"LD_LIBRARY_PATH=/home/jitalice", "GODEBUG=gctrace=0", "GOMAXPROCS=1", "GOGC=off", "IFS=x",
		"PYTHONPATH=/home/jitalice", "PERL5LIB=/home/jitalice", "RUBYOPT=-r/home/jitalice/x",
		"PATH=/home/jitalice/bin:/usr/bin:/bin", "JIT_E2E_RANDOM=1", "SHELLOPTS=xtrace",
		"LC_ALL=/home/jitalice/locale", "TERM=xterm-256color", "LC_TIME=C.UTF-8", "COLORTERM=truecolor",
		"DISPLAY=:7", "LANGUAGE=() { :; }; echo pwned",
	}
	r := sudoAs(sb, "jitalice", hostile, "-n", "/usr/bin/env")
	if r.Code != 0 {
		t.Fatalf("sudo -n /usr/bin/env: %s", r)
	}
	env := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	for _, bad := range []string{"BASH_ENV", "ENV", "LD_PRELOAD", "LD_LIBRARY_PATH", "GODEBUG", "GOMAXPROCS", "GOGC",
		"IFS", "PYTHONPATH", "PERL5LIB", "RUBYOPT", "JIT_E2E_RANDOM", "SHELLOPTS", "LC_ALL", "LANGUAGE"} {
		if v, ok := env[bad]; ok {
			t.Errorf("%s=%s reached the command", bad, v)
		}
	}
	want := map[string]string{
		"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME": "/root", "USER": "root", "LOGNAME": "root", "SHELL": "/bin/bash",
		"SUDO_USER": "jitalice", "SUDO_UID": "2001", "SUDO_GID": "2100", "SUDO_COMMAND": "/usr/bin/env",
		"TERM": "xterm-256color", "LANG": "C.UTF-8", "LC_TIME": "C.UTF-8", "COLORTERM": "truecolor", "DISPLAY": ":7",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s: want %q, got %q", k, v, env[k])
		}
	}
	// VAR=value on sudo's command line: only kept names.
	wantDenied(t, "FOO=bar", sudoAs(sb, "jitalice", nil, "-n", "LD_PRELOAD=/x.so", "/usr/bin/env"), "you may not set LD_PRELOAD")
	r = sudoAs(sb, "jitalice", nil, "-n", "LC_TIME=C", "/usr/bin/env")
	if r.Code != 0 || !strings.Contains(r.Stdout, "\nLC_TIME=C\n") {
		t.Errorf("sudo LC_TIME=C env: %s", r)
	}
	// -E is refused rather than ignored.
	wantDenied(t, "-E", sudoAs(sb, "jitalice", nil, "-n", "-E", "/usr/bin/env"), "-E")
}

// jitd down, slow or confused: refused within the timeout with a message
// naming the socket. Members of the break-glass group still get in, loudly.
func TestSudoFailsClosed(t *testing.T) {
	sb, j := sudoSandbox(t, "", "breakglass_group="+sandbox.GroupSRE.Name, "timeout=2s")
	grantSudo(t, sb, "jitalice", "10m", nil, "/usr/bin/id")
	if r := sudoAs(sb, "jitalice", nil, "-n", "/usr/bin/id", "-u"); r.Code != 0 {
		t.Fatalf("with jitd up: %s", r)
	}

	// Slow: jitd stopped (SIGSTOP) accepts connections but never answers.
	if err := j.Proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	r := sudoAs(sb, "jitalice", nil, "-n", "/usr/bin/id", "-u")
	_ = j.Proc.Signal(syscall.SIGCONT)
	wantDenied(t, "jitd hung", r, sandbox.SocketPath, "no answer in time")
	if r.Elapsed > 3500*time.Millisecond {
		t.Errorf("refusal took %v, want about the 2s timeout", r.Elapsed)
	}

	// Down.
	j.Proc.Stop()
	r = sudoAs(sb, "jitalice", nil, "-n", "/usr/bin/id", "-u")
	wantDenied(t, "jitd down", r, sandbox.SocketPath)
	if r.Elapsed > 3*time.Second {
		t.Errorf("refusal took %v, want < 3s", r.Elapsed)
	}
	// Break-glass: jitsre is in the group and still gets in.
	r = sudoAs(sb, "jitsre", nil, "-n", "/usr/bin/id", "-u")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "0" || !strings.Contains(r.Stderr, "BREAK-GLASS") {
		t.Fatalf("break-glass member with jitd down: %s", r)
	}
	sb.WaitJournal(10*time.Second, nil, "SYSLOG_IDENTIFIER=jit_sudo", "JIT_EVENT=sudo.breakglass", "JIT_USER=jitsre")

	// Confused: something answers on the socket, but not with the API.
	os.Remove(sandbox.SocketPath)
	ln, err := net.Listen("unix", sandbox.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, "{this is not json")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	r = sudoAs(sb, "jitalice", nil, "-n", "/usr/bin/id", "-u")
	wantDenied(t, "garbage answer", r, sandbox.SocketPath)
}

// sudo -l lists live grants and the standing rules that apply, each rule
// with whether its window is open now and when it closes or opens; sudo -l
// CMD answers for one command.
func TestSudoList(t *testing.T) {
	today := time.Now().UTC()
	// Windows relative to today (UTC) keep the test independent of the
	// hour it runs at: open today and tomorrow, or only in two days.
	policy := sandbox.TestPolicy + fmt.Sprintf(`
rule "alice-id" {
  users    = ["jitalice"]
  commands = ["/usr/bin/id"]
}
rule "users-uptime" {
  users    = ["%%jitusers"]
  commands = ["/usr/bin/uptime"]
  window   = ["%s,%s 00:00-24:00"]
}
rule "later" {
  users    = ["*"]
  commands = ["/usr/bin/w"]
  runas    = ["jitbob"]
  window   = ["%s 00:00-24:00"]
}
rule "bob-only" {
  users    = ["jitbob"]
  commands = ["ALL"]
}
`, day(today, 0), day(today, 1), day(today, 2))
	sb, _ := sudoSandbox(t, policy)
	r := sudoAs(sb, "jitalice", nil, "-n", "-l")
	if r.Code != 0 || !strings.Contains(r.Stdout, "no live jit grants") {
		t.Errorf("sudo -l without grants: %s", r)
	}
	for _, want := range []string{
		"Standing rules of jitd's policy let jitalice run, without a grant:",
		`rule "alice-id" (names jitalice): open now, no time limit`,
		"(root) /usr/bin/id",
		`rule "users-uptime" (via group jitusers): open now, closes in `,
		"(root) /usr/bin/uptime",
		`rule "later" (applies to everyone): closed now, opens in `,
		"only during " + day(today, 2) + " 00:00-24:00 UTC",
		"(jitbob) /usr/bin/w",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("sudo -l lacks %q: %s", want, r)
		}
	}
	if strings.Contains(r.Stdout, "bob-only") {
		t.Errorf("sudo -l shows another user's rule: %s", r)
	}
	t.Logf("sudo -l without grants:\n%s", r.Stdout)

	id := grantSudo(t, sb, "jitalice", "20m", nil, "/usr/bin/id", "/bin/systemctl restart nginx")
	gid := grantSudo(t, sb, "jitalice", "30m", []string{"--runas-group", "jitsre"}, "/usr/bin/groups")
	r = sudoAs(sb, "jitalice", nil, "-n", "-l")
	for _, want := range []string{id, "(root) /usr/bin/id", "(root) /bin/systemctl restart nginx", "expires in 20m", "INC-4711",
		gid, "(root : jitsre) /usr/bin/groups", "expires in 30m", `rule "alice-id"`} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("sudo -l lacks %q: %s", want, r)
		}
	}
	t.Logf("sudo -l with grants:\n%s", r.Stdout)
	r = sudoAs(sb, "jitalice", nil, "-n", "-l", "id", "-u")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "/usr/bin/id -u" {
		t.Errorf("sudo -l id -u: want the resolved command, got %s", r)
	}
	r = sudoAs(sb, "jitalice", nil, "-n", "-l", "/bin/cat", "/etc/shadow")
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "denied") {
		t.Errorf("sudo -l /bin/cat /etc/shadow: want refused, got %s", r)
	}
	// What the listing says is what sudo does: the open rule allows, the
	// closed one refuses and says when it opens.
	if r := sudoAs(sb, "jitalice", nil, "-n", "/usr/bin/uptime"); r.Code != 0 || !strings.Contains(r.Stderr, `standing rule "users-uptime"`) {
		t.Errorf("uptime under the open rule: %s", r)
	}
	wantDenied(t, "w under the closed rule", sudoAs(sb, "jitalice", nil, "-n", "-u", "jitbob", "/usr/bin/w"), `standing rule "later" is outside its window`, "opens next at")
	r = sudoAs(sb, "jitalice", nil, "-n", "-l", "-U", "jitbob")
	if r.Code == 0 || !strings.Contains(r.Stderr, "only root") {
		t.Errorf("sudo -l -U jitbob by jitalice: want refused, got %s", r)
	}
	// root lists anyone's.
	cmd := exec.Command("/usr/bin/sudo", "-n", "-l", "-U", "jitbob")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/root"}
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), `rule "bob-only" (names jitbob): open now`) || !strings.Contains(string(out), "(root) ALL") ||
		strings.Contains(string(out), "alice-id") {
		t.Errorf("sudo -l -U jitbob by root: %v\n%s", err, out)
	}

	// jitctl rules: the same answer for the caller, others' for approvers only.
	r = sb.Jitctl("jitalice", "rules")
	if r.Code != 0 || !strings.Contains(r.Stdout, "alice-id") || !strings.Contains(r.Stdout, "users-uptime") || strings.Contains(r.Stdout, "bob-only") {
		t.Errorf("jitctl rules as jitalice: %s", r)
	}
	if !regexp.MustCompile(`later\s+\*\s+jitbob\s+/usr/bin/w\s+\S+ 00:00-24:00 UTC\s+closed, opens in `).MatchString(r.Stdout) {
		t.Errorf("jitctl rules: the closed rule's row is not as expected: %s", r)
	}
	r = sb.Jitctl("jitalice", "rules", "--user", "jitbob")
	if r.Code != 1 || !strings.Contains(r.Stderr, "not an approver") {
		t.Errorf("jitctl rules --user jitbob by jitalice: want refused, got %s", r)
	}
	r = sb.Jitctl("jitlead", "rules", "--user", "jitbob", "--json")
	var rs api.Rules
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &rs) != nil || rs.User != "jitbob" || len(rs.Rules) != 3 ||
		rs.Rules[0].Name != "users-uptime" || rs.Rules[1].Name != "later" || rs.Rules[2].Name != "bob-only" ||
		!rs.Rules[2].Open || rs.Rules[2].Via != "jitbob" {
		t.Errorf("jitctl rules --user jitbob by an approver: %s", r)
	}
}

// day is the English short name of the weekday n days after t.
func day(t time.Time, n int) string {
	return t.AddDate(0, 0, n).Weekday().String()[:3]
}

// -u and -g are checked against the grant's runas, the way sudoers checks
// (user:group) against its Runas_Spec.
func TestSudoRunAs(t *testing.T) {
	sb, _ := sudoSandbox(t, "")
	grantSudo(t, sb, "jitalice", "10m", []string{"--runas", "jitbob"}, "/usr/bin/id")
	r := sudoAs(sb, "jitalice", nil, "-n", "-u", "jitbob", "/usr/bin/id", "-un")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "jitbob" {
		t.Fatalf("sudo -u jitbob id -un under a runas jitbob grant: %s", r)
	}
	r = sudoAs(sb, "jitalice", nil, "-n", "-u", "#2002", "/usr/bin/id", "-u")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "2002" {
		t.Fatalf("sudo -u '#2002': %s", r)
	}
	wantDenied(t, "as root", sudoAs(sb, "jitalice", nil, "-n", "/usr/bin/id"), "only as jitbob")
	wantDenied(t, "-g", sudoAs(sb, "jitalice", nil, "-n", "-u", "jitbob", "-g", "jitsre", "/usr/bin/id"), "group jitsre")
	wantDenied(t, "unknown user", sudoAs(sb, "jitalice", nil, "-n", "-u", "nosuchuser-jit", "/usr/bin/id"), "unknown user")

	// (root:jitsre): sudo CMD runs as root, sudo -g jitsre CMD as jitalice
	// with group jitsre, sudo -u root -g jitsre CMD as root:jitsre; no
	// other group, except a target's own, which sudoers allows too.
	grantSudo(t, sb, "jitalice", "20m", []string{"--runas-group", "jitsre"}, "/usr/bin/id")
	for _, c := range []struct {
		args []string
		want string // the start of id's output, "" for refused
	}{
		{nil, "uid=0(root) gid=0(root)"},
		{[]string{"-g", "jitsre"}, "uid=2001(jitalice) gid=2102(jitsre)"},
		{[]string{"-u", "root", "-g", "jitsre"}, "uid=0(root) gid=2102(jitsre)"},
		{[]string{"-u", "jitalice", "-g", "jitsre"}, "uid=2001(jitalice) gid=2102(jitsre)"},
		{[]string{"-g", "jitusers"}, "uid=2001(jitalice) gid=2100(jitusers)"},
		{[]string{"-u", "root", "-g", "root"}, "uid=0(root) gid=0(root)"},
		{[]string{"-u", "jitbob"}, "uid=2002(jitbob) gid=2100(jitusers)"},
		{[]string{"-g", "jitoncall"}, ""},
		{[]string{"-u", "root", "-g", "jitoncall"}, ""},
		{[]string{"-u", "jitbob", "-g", "jitsre"}, ""},
		{[]string{"-u", "jitalice"}, ""},
		{[]string{"-u", "jitlead"}, ""},
	} {
		args := append(append([]string{"-n"}, c.args...), "/usr/bin/id")
		r := sudoAs(sb, "jitalice", nil, args...)
		if c.want == "" {
			wantDenied(t, "sudo "+strings.Join(args, " "), r, "denied")
			continue
		}
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, c.want) {
			t.Errorf("sudo %s: want %q, got %s", strings.Join(args, " "), c.want, r)
		}
	}
	wantDenied(t, "-g jitoncall says what the grant allows", sudoAs(sb, "jitalice", nil, "-n", "-g", "jitoncall", "/usr/bin/id"),
		"only as root or with group jitsre (-u root, -g jitsre, or both), not as jitalice with group jitoncall",
		"jitctl request --cmd /usr/bin/id --runas-group jitoncall")

	// The same grants as sudoers rules decide the same on the real sudoers.
	cases := [][]string{
		nil, {"-g", "jitsre"}, {"-u", "root", "-g", "jitsre"}, {"-u", "jitalice", "-g", "jitsre"}, {"-g", "jitusers"},
		{"-u", "root", "-g", "root"}, {"-u", "jitbob"}, {"-u", "jitbob", "-g", "jitusers"}, {"-g", "jitoncall"},
		{"-u", "root", "-g", "jitoncall"}, {"-u", "jitbob", "-g", "jitsre"}, {"-u", "jitalice"}, {"-u", "jitlead"},
		{"-u", "jitbob", "-g", "jitoncall"},
	}
	jit := runIDs(sb, cases)
	writeSudoersConf(sb, "jitalice ALL=(jitbob) NOPASSWD: /usr/bin/id\njitalice ALL=(root:jitsre) NOPASSWD: /usr/bin/id\n")
	sudoers := runIDs(sb, cases)
	for i, c := range cases {
		if (jit[i].Code == 0) != (sudoers[i].Code == 0) || jit[i].Stdout != sudoers[i].Stdout {
			t.Errorf("sudo -n %s /usr/bin/id: jit exit %d %q, sudoers exit %d %q", strings.Join(c, " "),
				jit[i].Code, jit[i].Stdout, sudoers[i].Code, sudoers[i].Stdout)
		}
	}
	writeJitSudoConf(t, sb)

	// A request for a group goes through approval into a grant that
	// allows sudo -g.
	r = sb.Jitctl("jitbob", "request", "--cmd", "/usr/bin/id", "--runas-group", "jitsre", "--for", "10m", "--reason", "INC-4712")
	if r.Code != 0 {
		t.Fatalf("jitctl request --runas-group: %s", r)
	}
	reqID := strings.TrimSpace(r.Stdout)
	if r := sb.Jitctl("jitlead", "approve", reqID); r.Code != 0 {
		t.Fatalf("jitctl approve %s: %s", reqID, r)
	}
	r = sudoAs(sb, "jitbob", nil, "-n", "-g", "jitsre", "/usr/bin/id", "-gn")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "jitsre" {
		t.Errorf("sudo -g jitsre under an approved (root:jitsre) request: %s", r)
	}
	r = sb.Jitctl("jitbob", "list")
	if r.Code != 0 || !strings.Contains(r.Stdout, "/usr/bin/id as root:jitsre") {
		t.Errorf("jitctl list does not show the runas group: %s", r)
	}
}

// A standing rule with runas_groups is sudoers' (users : groups): the real
// sudo under jit decides every -u/-g combination as under sudoers with the
// same rule, and sudo -l shows it the way sudoers does.
func TestSudoRuleRunAsGroups(t *testing.T) {
	sb, _ := sudoSandbox(t, sandbox.TestPolicy+`
rule "id-sre" {
  users        = ["jitalice"]
  commands     = ["/usr/bin/id"]
  runas        = ["root", "jitbob"]
  runas_groups = ["jitsre"]
}
`)
	cases := [][]string{
		nil, {"-g", "jitsre"}, {"-u", "root", "-g", "jitsre"}, {"-u", "jitalice", "-g", "jitsre"}, {"-g", "jitusers"},
		{"-u", "root", "-g", "root"}, {"-u", "jitbob"}, {"-u", "jitbob", "-g", "jitsre"}, {"-u", "jitbob", "-g", "jitusers"},
		{"-g", "jitoncall"}, {"-u", "root", "-g", "jitoncall"}, {"-u", "jitalice"}, {"-u", "jitlead"}, {"-u", "jitlead", "-g", "jitsre"},
	}
	jit := runIDs(sb, cases)
	if r := sudoAs(sb, "jitalice", nil, "-n", "-l"); r.Code != 0 || !strings.Contains(r.Stdout, "(root, jitbob : jitsre) /usr/bin/id") {
		t.Errorf("sudo -l does not show the rule's runas groups: %s", r)
	}
	wantDenied(t, "-g jitoncall says what the rule allows", sudoAs(sb, "jitalice", nil, "-n", "-g", "jitoncall", "/usr/bin/id"),
		`standing rule "id-sre" lets jitalice run this only as root or jitbob or with group jitsre`)
	writeSudoersConf(sb, "jitalice ALL=(root, jitbob : jitsre) NOPASSWD: /usr/bin/id\n")
	sudoers := runIDs(sb, cases)
	allowed := 0
	for i, c := range cases {
		if (jit[i].Code == 0) != (sudoers[i].Code == 0) || jit[i].Stdout != sudoers[i].Stdout {
			t.Errorf("sudo -n %s /usr/bin/id: jit exit %d %q, sudoers exit %d %q", strings.Join(c, " "),
				jit[i].Code, jit[i].Stdout, sudoers[i].Code, sudoers[i].Stdout)
		}
		if jit[i].Code == 0 {
			allowed++
		}
	}
	if allowed < 5 || allowed == len(cases) {
		t.Errorf("jit allowed %d of %d cases: the comparison needs both answers", allowed, len(cases))
	}
}

// runIDs runs sudo -n FLAGS /usr/bin/id for each flag set as jitalice;
// id prints the real uid, gid and groups (its default output).
func runIDs(sb *sandbox.Sandbox, cases [][]string) []sandbox.Result {
	var res []sandbox.Result
	for _, c := range cases {
		res = append(res, sudoAs(sb, "jitalice", nil, append(append([]string{"-n"}, c...), "/usr/bin/id")...))
	}
	return res
}

// sudo -s and -i need ALL or an explicit shell grant.
func TestSudoShell(t *testing.T) {
	sb, _ := sudoSandbox(t, "")
	grantSudo(t, sb, "jitalice", "10m", nil, "/usr/bin/id")
	wantDenied(t, "-s", sudoAs(sb, "jitalice", []string{"SHELL=/bin/bash"}, "-n", "-s", "/usr/bin/id"), "needs a grant for ALL")
	wantDenied(t, "-i", sudoAs(sb, "jitalice", nil, "-n", "-i", "/usr/bin/id"), "needs a grant for ALL")
	// Running a shell directly is a shell too.
	grantSudo(t, sb, "jitalice", "10m", nil, "/usr/bin/")
	wantDenied(t, "bash via /usr/bin/", sudoAs(sb, "jitalice", nil, "-n", "/usr/bin/bash", "-c", "id -u"), "needs a grant for ALL")

	grantSudo(t, sb, "jitbob", "10m", nil, "ALL")
	r := sudoAs(sb, "jitbob", []string{"SHELL=/bin/bash"}, "-n", "-s", "/usr/bin/id", "-u")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "0" {
		t.Fatalf("sudo -s under ALL: %s", r)
	}
	r = sudoAs(sb, "jitbob", nil, "-n", "-i", "pwd")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "/root" {
		t.Fatalf("sudo -i pwd under ALL: want /root, got %s", r)
	}
	// An explicit shell grant allows that shell.
	grantSudo(t, sb, "jitadmin", "10m", nil, "/bin/bash")
	r = sudoAs(sb, "jitadmin", []string{"SHELL=/bin/bash"}, "-n", "-s", "/usr/bin/id", "-u")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "0" {
		t.Fatalf("sudo -s under a /bin/bash grant: %s", r)
	}
	// sudoedit is refused with a message, not half-supported.
	wantDenied(t, "sudo -e", sudoAs(sb, "jitbob", nil, "-n", "-e", "/etc/hostname"), "sudoedit")
}

// sudo -b forks before it runs the command and calls the plugin from the
// child, where Go hangs: refused up front, with a message, quickly.
func TestSudoBackgroundRefused(t *testing.T) {
	sb, _ := sudoSandbox(t, "")
	grantSudo(t, sb, "jitalice", "10m", nil, "/usr/bin/touch")
	for _, args := range [][]string{
		{"-n", "-b", "/usr/bin/touch", "/tmp/jit-bg"},
		{"-nb", "/usr/bin/touch", "/tmp/jit-bg"},
		{"--non-interactive", "--backgr", "/usr/bin/touch", "/tmp/jit-bg"},
		{"-u", "root", "-bn", "/usr/bin/touch", "/tmp/jit-bg"},
	} {
		r := sudoAs(sb, "jitalice", nil, args...)
		wantDenied(t, strings.Join(args, " "), r, "sudo -b")
		if r.Elapsed > 5*time.Second {
			t.Errorf("sudo %s took %v", strings.Join(args, " "), r.Elapsed)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := os.Stat("/tmp/jit-bg"); err == nil {
		t.Fatal("a refused sudo -b ran its command")
	}
}

// SIGPIPE: `sudo CMD | head -1` ends promptly, with and without a
// terminal (with one, sudo relays the output through a pipe and forwards
// SIGPIPE to the command), and the plugin survives to close the session.
func TestSudoSIGPIPE(t *testing.T) {
	sb, j := sudoSandbox(t, "")
	grantSudo(t, sb, "jitalice", "10m", nil, "/usr/bin/yes")
	r := sb.RunAs("jitalice", 20*time.Second, "", nil, "/bin/sh", "-c", "/usr/bin/sudo -n /usr/bin/yes | head -1; echo status=$?")
	if !strings.HasPrefix(r.Stdout, "y\nstatus=0") || r.Elapsed > 10*time.Second {
		t.Fatalf("sudo yes | head -1 without a tty: %s", r)
	}
	r = sb.RunAsTTY("jitalice", 20*time.Second, "", nil, "/bin/sh", "-c", "/usr/bin/sudo -n /usr/bin/yes | head -1; echo status=$?")
	if !strings.Contains(r.Stdout, "y\r\nstatus=0") || r.Elapsed > 10*time.Second {
		t.Fatalf("sudo yes | head -1 on a tty: %s", r)
	}
	// Both sessions were opened and closed by the plugin.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ss, err := j.Client.Sessions(ctx, api.SessionFilter{User: "jitalice"})
	if err != nil {
		t.Fatal(err)
	}
	closed := 0
	for _, s := range ss {
		if s.State == grant.SessionClosed && s.Command == "/usr/bin/yes" {
			closed++
		}
	}
	if closed != 2 {
		t.Fatalf("want 2 closed sessions of /usr/bin/yes, got %+v", ss)
	}
}

// An allowed command is a session in jitd while it runs (sudo's pid, grant,
// tty, command) and closed with its exit status afterwards.
func TestSudoSession(t *testing.T) {
	rs := startSudoSh(t, true, "sleep 2; exit 7")
	sb, j, ctx, id, open, done := rs.sb, rs.j, rs.ctx, rs.grantID, rs.open, rs.done
	if open.GrantID != id || open.Kind != grant.KindSudo || !strings.HasPrefix(open.TTY, "/dev/pts/") ||
		open.Command != `/bin/sh -c "sleep 2; exit 7"` || open.RunAs != "root" {
		t.Errorf("open session: %+v", *open)
	}
	comm, _ := os.ReadFile("/proc/" + strconv.Itoa(open.PID) + "/comm")
	if strings.TrimSpace(string(comm)) != "sudo" {
		t.Errorf("session pid %d is %q, want sudo's own pid", open.PID, comm)
	}
	r := <-done
	if r.Code != 7 {
		t.Fatalf("want exit 7, got %s", r)
	}
	ss, err := j.Client.Sessions(ctx, api.SessionFilter{User: "jitalice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].State != grant.SessionClosed || ss[0].ExitStatus == nil || *ss[0].ExitStatus != 7 {
		t.Fatalf("want one closed session with exit status 7, got %+v", ss)
	}
	// The end is in journald from jitd; the plugin writes none of its own
	// when jitd took it.
	closed := sb.WaitJournal(10*time.Second, nil, "SYSLOG_IDENTIFIER=jitd", "JIT_EVENT=session.closed", "JIT_SESSION_ID="+open.ID)
	checkFields(t, closed[0], map[string]string{"JIT_EXIT_STATUS": "7", "JIT_GRANT_ID": id})
	if ends := sb.Journal("SYSLOG_IDENTIFIER=jit_sudo", "JIT_EVENT=sudo.end"); len(ends) != 0 {
		t.Errorf("sudo.end written although jitd took the end: %v", ends)
	}
}

// runningSudo is a command jitalice runs through sudo under a grant.
type runningSudo struct {
	sb      *sandbox.Sandbox
	j       *sandbox.Jitd
	ctx     context.Context
	grantID string
	open    *grant.Session        // jitd's open session for it
	done    <-chan sandbox.Result // the command's end
}

// startSudoSh grants jitalice /bin/sh, starts `sudo -n /bin/sh -c script`
// (on a terminal if tty), and returns once jitd has its open session.
func startSudoSh(t *testing.T, tty bool, script string) runningSudo {
	t.Helper()
	sb, j := sudoSandbox(t, "")
	id := grantSudo(t, sb, "jitalice", "10m", nil, "/bin/sh")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	done := make(chan sandbox.Result, 1)
	go func() {
		if tty {
			done <- sb.RunAsTTY("jitalice", 20*time.Second, "", nil, "/usr/bin/sudo", "-n", "/bin/sh", "-c", script)
		} else {
			done <- sudoAs(sb, "jitalice", nil, "-n", "/bin/sh", "-c", script)
		}
	}()
	return runningSudo{sb: sb, j: j, ctx: ctx, grantID: id, open: waitOpenSession(t, ctx, j, "jitalice", done), done: done}
}

// waitOpenSession returns user's open session once jitd has it, failing
// with what the command (done) returned if none shows up.
func waitOpenSession(t *testing.T, ctx context.Context, j *sandbox.Jitd, user string, done <-chan sandbox.Result) *grant.Session {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ss, err := j.Client.Sessions(ctx, api.SessionFilter{User: user, Open: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(ss) > 0 {
			return &ss[0]
		}
	}
	t.Fatalf("no open session while the command ran: %s", <-done)
	return nil
}

// A command whose end jitd cannot be told (jitd stopped while it ran) has
// its end, exit status included, written to journald by the plugin.
func TestSudoEndWithoutJitd(t *testing.T) {
	rs := startSudoSh(t, false, "sleep 2; exit 5")
	sb, id, sessionID := rs.sb, rs.grantID, rs.open.ID
	rs.j.Proc.Stop()
	if r := <-rs.done; r.Code != 5 {
		t.Fatalf("want exit 5, got %s", r)
	}
	ends := sb.WaitJournal(10*time.Second, nil, "SYSLOG_IDENTIFIER=jit_sudo", "JIT_EVENT=sudo.end")
	checkFields(t, ends[len(ends)-1], map[string]string{
		"MESSAGE_ID": "debd247eae3a4c0893863a107afbdaaf", "JIT_USER": "jitalice", "JIT_SESSION_ID": sessionID,
		"JIT_GRANT_ID": id, "JIT_EXIT_STATUS": "5", "JIT_COMMAND": `/bin/sh -c "sleep 2; exit 5"`,
	})
	if !strings.HasPrefix(ends[len(ends)-1].Get("JIT_ERROR"), "jitd was not told: ") {
		t.Errorf("sudo.end JIT_ERROR = %q", ends[len(ends)-1].Get("JIT_ERROR"))
	}
}

// Every accept and reject is in the journal, from the plugin itself.
func TestSudoAudit(t *testing.T) {
	sb, _ := sudoSandbox(t, "")
	id := grantSudo(t, sb, "jitalice", "10m", nil, "/usr/bin/id")
	if r := sudoAs(sb, "jitalice", nil, "-n", "/usr/bin/id", "-u"); r.Code != 0 {
		t.Fatal(r)
	}
	sudoAs(sb, "jitalice", nil, "-n", "/bin/cat", "/etc/shadow")

	acc := sb.WaitJournal(10*time.Second, nil, "SYSLOG_IDENTIFIER=jit_sudo", "JIT_EVENT=sudo.accept")
	checkFields(t, acc[len(acc)-1], map[string]string{
		"MESSAGE_ID": "9099cc7a171f448da581b66e6b9a1c54", "JIT_USER": "jitalice", "JIT_COMMAND": "/usr/bin/id -u",
		"JIT_RUNAS": "root", "JIT_GRANT_ID": id, "JIT_REASON": "INC-4711", "JIT_GRANTED_BY": "root",
	})
	if acc[len(acc)-1].Get("JIT_SESSION_ID") == "" {
		t.Errorf("accept without JIT_SESSION_ID")
	}
	rej := sb.WaitJournal(10*time.Second, nil, "SYSLOG_IDENTIFIER=jit_sudo", "JIT_EVENT=sudo.reject")
	checkFields(t, rej[len(rej)-1], map[string]string{
		"MESSAGE_ID": "ab7d1c5cf9fa4148a589f2a431a71909", "JIT_USER": "jitalice", "JIT_COMMAND": "/bin/cat /etc/shadow",
		"JIT_RUNAS": "root", "JIT_CODE": "other_command",
	})
	if !strings.Contains(rej[len(rej)-1].Get("JIT_REASON"), "allows only /usr/bin/id") {
		t.Errorf("reject reason: %q", rej[len(rej)-1].Get("JIT_REASON"))
	}
}

func checkFields(t *testing.T, e journalread.Entry, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := e.Get(k); got != v {
			t.Errorf("journal field %s: want %q, got %q", k, v, got)
		}
	}
}
