// Command demo walks through jit on the real sudo and a real journald, inside
// a private mount and pid namespace (package sandbox), so that nothing on
// the host changes: `make demo`.
//
// A user is refused, asks for access, an on-call lead approves, the command
// runs, a root shell is ended when the grant expires, the session is shown
// from journald, and the audit chain verifies. Every step prints the real
// command and its real output.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/sandbox"
)

// demoPolicy is the policy the demo's jitd runs with: the on-call group
// approves, grants are short, warnings come early, and stubborn processes
// get 2 s before SIGKILL.
const demoPolicy = `# jit demo policy
approvers        = ["%jitoncall"]   # jitlead is on call
default_duration = "30m"
max_duration     = "8h"
require_reason   = true
grace_period     = "2s"
warn_before      = ["5s"]
`

// grantLife is how long the demo's grant lasts: long enough to show a
// command and open a shell, short enough to watch it end.
const grantLife = "15s"

var (
	bold  = "\033[1m"
	dim   = "\033[2m"
	reset = "\033[0m"
)

func main() { sandbox.Run(run) }

func run() int {
	if fi, err := os.Stdout.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 || os.Getenv("NO_COLOR") != "" {
		bold, dim, reset = "", "", ""
	}
	p := sandbox.NewProgram(os.Stderr)
	defer p.Close()
	start := time.Now()
	d := &demo{p: p}
	d.sb = sandbox.NewForProgram(p)
	if _, err := os.Stat("/usr/bin/sudo"); err != nil {
		p.Fatal("sudo is not installed: run `make deps`")
	}
	d.walk()
	fmt.Printf("\n%sDone in %v.%s The sandbox ends now: its mounts, processes and journal vanish, and the\n"+
		"sandbox compares the host's sudo, PAM, account and jit files and its mount table with\n"+
		"what they were before the demo (it fails loudly if anything changed).\n",
		bold, time.Since(start).Round(100*time.Millisecond), reset)
	return 0
}

type demo struct {
	p  *sandbox.Program
	sb *sandbox.Sandbox
	j  *sandbox.Jitd
	n  int
}

func (d *demo) step(title, why string) {
	d.n++
	fmt.Printf("\n%s%d. %s%s\n", bold, d.n, title, reset)
	for _, l := range strings.Split(why, "\n") {
		fmt.Printf("   %s%s%s\n", dim, l, reset)
	}
}

// show prints a prompt line for argv as user and the result's output.
func show(user string, argv []string, r sandbox.Result) {
	prompt := "$"
	if user == "root" {
		prompt = "#"
	}
	fmt.Printf("   %s@demo%s %s\n", user, prompt, quoteArgv(argv))
	out := strings.TrimRight(r.Stdout+r.Stderr, "\n")
	for _, l := range strings.Split(out, "\n") {
		if l != "" {
			fmt.Printf("     %s\n", l)
		}
	}
	if r.Code != 0 {
		fmt.Printf("     %s(exit status %d)%s\n", dim, r.Code, reset)
	}
}

func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = sandbox.ShellQuote(a)
	}
	return strings.Join(q, " ")
}

// jitctl runs the built jitctl as user and shows it as plain `jitctl …`.
func (d *demo) jitctl(user string, args ...string) sandbox.Result {
	r := d.sb.Jitctl(user, args...)
	show(user, append([]string{"jitctl"}, args...), r)
	return r
}

// sudo runs the real sudo as user, without a terminal.
func (d *demo) sudo(user string, args ...string) sandbox.Result {
	argv := append([]string{"sudo"}, args...)
	r := d.sb.RunAs(user, 30*time.Second, "", nil, append([]string{"/usr/bin/sudo"}, args...)...)
	show(user, argv, r)
	return r
}

func (d *demo) must(ok bool, format string, args ...any) {
	if !ok {
		d.p.Fatalf("demo: "+format, args...)
	}
}

func (d *demo) walk() {
	sb := d.sb
	build := sandbox.BuildDir()

	d.step("A private world",
		"This process runs in its own mount and pid namespace: /etc is an overlay, /run, /home and\n"+
			"/root are empty tmpfs, and a real systemd-journald runs on the private /run. Test users\n"+
			"exist only here: jitalice (an engineer) and jitlead (on call, group jitoncall).")
	d.j = sb.StartJitd(sandbox.JitdOptions{Policy: demoPolicy})
	fmt.Printf("   jitd is running on %s with this policy (%s):\n", d.j.Socket, sandbox.PolicyPath)
	for _, l := range strings.Split(strings.TrimSpace(demoPolicy), "\n") {
		fmt.Printf("     %s\n", l)
	}

	d.step("Switch sudo to jit",
		"jitctl setup writes a candidate sudo.conf, proves with `sudo -V` in a private mount\n"+
			"namespace that sudo loads jit's plugin under it, keeps a backup, then renames it into place.\n"+
			"From now on sudo asks jitd, and only jitd. (Here, /etc/sudo.conf is the sandbox's copy.)")
	r := d.jitctl("root", "setup", "sudo", "--enable", "--plugin", filepath.Join(build, "jit_sudo.so"))
	d.must(r.Code == 0, "setup sudo failed")

	d.step("Nobody holds standing root",
		"jitalice has no grant, so jit's policy plugin refuses, says why, and prints the request\n"+
			"to file. The refusal is also written to journald.")
	r = d.sudo("jitalice", "-n", "/usr/bin/id")
	d.must(r.Code != 0, "sudo without a grant succeeded")

	d.step("jitalice asks for what she needs",
		"A request names the exact commands, a lifetime and a reason. jitd takes her identity from\n"+
			"the socket (SO_PEERCRED), not from anything she says.")
	r = d.jitctl("jitalice", "request", "--cmd", "/usr/bin/id", "--cmd", "/bin/bash", "--for", grantLife,
		"--reason", "INC-4711: nginx is down")
	d.must(r.Code == 0, "request failed")
	reqID := strings.TrimSpace(r.Stdout)

	d.step("The on-call lead approves",
		"jitlead is an approver (group jitoncall in the policy). Approving turns the request into a\n"+
			"grant that expires on its own; nobody may approve their own request.")
	d.jitctl("jitlead", "requests")
	r = d.jitctl("jitlead", "approve", reqID)
	d.must(r.Code == 0, "approve failed")
	grantID := strings.TrimSpace(r.Stdout)

	d.step("The command runs - and only the command",
		"sudo resolves the command in a secure PATH and asks jitd; the grant allows exactly\n"+
			"/usr/bin/id and /bin/bash, so anything else is still refused.")
	r = d.sudo("jitalice", "-n", "/usr/bin/id")
	d.must(r.Code == 0, "sudo under the grant failed")
	d.sudo("jitalice", "-n", "/usr/bin/cat", "/etc/shadow")

	d.step("A root shell ends when the grant does",
		"jitalice opens a root shell on a terminal. jitd warns on that terminal before the end,\n"+
			"and at expiry sends SIGHUP/SIGTERM to the session (SIGKILL after the grace period):\n"+
			"the shell does not outlive the grant. sudo's timeout= is a second line of defence.")
	shellSession := d.rootShellUntilExpiry(grantID)

	if hasReplay(sb.Artifact("jitctl")) {
		d.step("The session, replayed from journald",
			"sudo's I/O plugin (jit_io) recorded the root shell's terminal into journald, next to\n"+
				"every decision and session event (fixed MESSAGE_IDs, JIT_* fields); jitctl replay plays\n"+
				"it back and says whether the recording is complete.")
	} else {
		d.step("The session in journald",
			"Every decision and every session event is a journald entry with a fixed MESSAGE_ID and\n"+
				"JIT_* fields, so the whole story of one session is one journalctl match away.")
	}
	d.replay(shellSession)

	d.step("The audit trail verifies",
		"jitd also keeps every change in a hash chain in its bbolt database; any edit or deletion\n"+
			"breaks the chain.")
	d.jitctl("jitlead", "audit")
	r = d.jitctl("jitlead", "audit", "--verify")
	d.must(r.Code == 0, "audit chain did not verify")
}

// rootShellUntilExpiry starts `sudo -n /bin/bash` as jitalice on a pty,
// types a command into it, and waits for jitd to end it at the grant's
// expiry. It returns the shell's session id.
func (d *demo) rootShellUntilExpiry(grantID string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g, err := d.j.Client.GetGrant(ctx, grantID)
	d.must(err == nil, "get grant: %v", err)

	fmt.Printf("   jitalice@demo$ sudo -n /bin/bash --norc   %s(on a terminal; grant %s expires %s)%s\n",
		dim, grantID, g.ExpiresAt.Local().Format("15:04:05"), reset)
	cmd := d.sb.UserCommand(ctx, "jitalice", []string{"TERM=dumb"},
		"/usr/bin/script", "-qefc", "/usr/bin/sudo -n /bin/bash --norc", "/dev/null")
	tw := &termWriter{start: time.Now()}
	cmd.Stdout, cmd.Stderr = tw, tw
	stdin, err := cmd.StdinPipe()
	d.must(err == nil, "stdin: %v", err)
	d.must(cmd.Start() == nil, "start shell")
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()

	// Wait for sudo to register the session with jitd, then type into it.
	var sessID string
	for deadline := time.Now().Add(10 * time.Second); sessID == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ss, err := d.j.Client.Sessions(ctx, api.SessionFilter{User: "jitalice", Open: true})
		if err == nil && len(ss) > 0 {
			sessID = ss[0].ID
		}
	}
	d.must(sessID != "", "the root shell never registered with jitd:\n%s", tw.String())
	io.WriteString(stdin, "id -un; echo still here, waiting for the grant to end\n")

	select {
	case <-done:
	case <-ctx.Done():
		d.p.Fatalf("the root shell was still running a minute later:\n%s", tw.String())
	}
	tw.flush()
	late := time.Since(g.ExpiresAt)
	fmt.Printf("   %sThe shell ended %v after the grant expired.%s\n", bold, late.Round(time.Millisecond), reset)
	return sessID
}

// replay shows the session: with `jitctl replay` when this build has it,
// otherwise its journal entries.
func (d *demo) replay(sessID string) {
	if hasReplay(d.sb.Artifact("jitctl")) {
		fmt.Printf("   %s(Reading the journal needs root or group adm/systemd-journal, so this runs as root.)%s\n", dim, reset)
		d.jitctl("root", "sessions", "--user", "jitalice")
		// replay frames the recording with a header and a trailer on
		// stderr: print them around the session, as a terminal shows them.
		r := d.sb.Jitctl("root", "replay", sessID)
		head, tail, _ := strings.Cut(strings.TrimRight(r.Stderr, "\n"), "\n")
		show("root", []string{"jitctl", "replay", sessID},
			sandbox.Result{Stdout: head + "\n" + strings.TrimRight(r.Stdout, "\n") + "\n" + tail, Code: r.Code})
		return
	}
	d.jitctl("jitlead", "sessions", "--user", "jitalice")
	fmt.Printf("   %s(`jitctl replay`, which plays back a recorded terminal session byte for byte, is\n"+
		"   not in this build yet; meanwhile, the session's entries straight from journald:)%s\n", dim, reset)
	// journald ingests datagrams asynchronously: wait for the end event.
	d.sb.WaitJournal(10*time.Second, nil, "JIT_SESSION_ID="+sessID, "JIT_EVENT=session.terminated")
	argv := []string{"journalctl", "--no-pager", "-o", "short-precise", "JIT_SESSION_ID=" + sessID}
	out, err := exec.Command("/usr/bin/journalctl", argv[1:]...).CombinedOutput()
	r := sandbox.Result{Stdout: string(out)}
	if err != nil {
		r.Code = 1
	}
	show("root", argv, r)
	argv = []string{"journalctl", "--no-pager", "-o", "verbose", "--output-fields=MESSAGE_ID,JIT_EVENT,JIT_USER,JIT_GRANT_ID,JIT_SIGNAL",
		"JIT_SESSION_ID=" + sessID, "JIT_EVENT=session.terminated"}
	out, _ = exec.Command("/usr/bin/journalctl", argv[1:]...).CombinedOutput()
	show("root", argv, sandbox.Result{Stdout: string(out)})
}

// hasReplay reports whether this jitctl knows the replay command.
func hasReplay(jitctl string) bool {
	out, _ := exec.Command(jitctl, "help").Output()
	return regexp.MustCompile(`(?m)^\s+replay\b`).Match(out)
}

// termWriter prints a terminal's output as it arrives, indented, with
// control sequences removed and the time since the shell started.
type termWriter struct {
	mu    sync.Mutex
	start time.Time
	buf   []byte
	all   strings.Builder
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[a-zA-Z]|\x1b[()][0-9A-B]|\r|\a`)

func (w *termWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(b)
	w.buf = append(w.buf, b...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		w.emit(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

func (w *termWriter) emit(line string) {
	line = ansi.ReplaceAllString(line, "")
	if strings.TrimSpace(line) == "" {
		return
	}
	fmt.Printf("     %s[+%4.1fs]%s %s\n", dim, time.Since(w.start).Seconds(), reset, line)
}

func (w *termWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}

func (w *termWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}
