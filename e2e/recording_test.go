package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/journalread"
	"github.com/jitpam/jit/jitd/recording"
	"github.com/jitpam/jit/sandbox"
)

// End-to-end tests of the I/O plugin jit_io: real sudo, real journald,
// recordings read back with journalctl and jitctl replay.

// recordingPolicy is the test policy with a recording block.
func recordingPolicy(block string) string {
	return sandbox.TestPolicy + "\nrecording {\n" + block + "\n}\n"
}

// recSandbox is sudoSandbox with jit_io in sudo.conf too.
func recSandbox(t testing.TB, policy string) (*sandbox.Sandbox, *sandbox.Jitd) {
	t.Helper()
	sb, j := sudoSandbox(t, policy)
	writeJitIOSudoConf(t, sb)
	return sb, j
}

func writeJitIOSudoConf(t testing.TB, sb *sandbox.Sandbox) {
	t.Helper()
	writeJitSudoConf(t, sb)
	sb.AppendFile("/etc/sudo.conf", "Plugin jit_io "+sb.Artifact("jit_sudo.so")+"\n")
}

// payload returns n bytes of pseudo-random base64 in 76-column lines, the
// same for every seed.
func payload(n int, seed int64) []byte {
	raw := make([]byte, n*3/4)
	rand.New(rand.NewSource(seed)).Read(raw)
	enc := base64.StdEncoding.EncodeToString(raw)
	var b bytes.Buffer
	for len(enc) > 0 && b.Len() < n {
		l := min(76, len(enc))
		b.WriteString(enc[:l])
		b.WriteByte('\n')
		enc = enc[l:]
	}
	return b.Bytes()[: n-1 : n-1]
}

// writePayload puts a payload file where every test user can read it.
func writePayload(t testing.TB, sb *sandbox.Sandbox, n int, seed int64) (string, []byte) {
	t.Helper()
	p := payload(n, seed)
	p = append(p, '\n')
	path := filepath.Join("/home", fmt.Sprintf("payload-%d.b64", seed))
	sb.WriteFile(path, string(p), 0o644)
	return path, p
}

// lastSessionID returns the id of user's newest sudo session in jitd.
func lastSessionID(t testing.TB, j *sandbox.Jitd, user string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ss, err := j.Client.Sessions(ctx, api.SessionFilter{User: user})
	if err != nil || len(ss) == 0 {
		t.Fatalf("sessions of %s: %v %v", user, ss, err)
	}
	sort.Slice(ss, func(a, b int) bool { return ss[a].StartedAt.Before(ss[b].StartedAt) })
	return ss[len(ss)-1].ID
}

// waitRecordingEnd waits for the end entry of session id.
func waitRecordingEnd(t testing.TB, sb *sandbox.Sandbox, id string) journalread.Entry {
	t.Helper()
	e := sb.WaitJournal(20*time.Second, nil, "JIT_SESSION_ID="+id, "JIT_EVENT=sudo.io.end")
	return e[0]
}

// Under a terminal, a 10 MB payload printed through sudo is recorded whole:
// jitctl replay --raw gives back exactly what the terminal showed, and
// jitctl sessions calls the recording complete.
func TestRecordTTYPayload(t *testing.T) {
	sb, j := recSandbox(t, "")
	grantSudo(t, sb, "jitalice", "30m", nil, "/bin/cat")
	path, want := writePayload(t, sb, 10<<20, 4711)
	claims := watchSpool(t)
	r := sb.RunAsTTY("jitalice", 60*time.Second, "", nil, "/usr/bin/sudo", "-n", "/bin/cat", path)
	if r.Code != 0 {
		t.Fatalf("sudo cat payload: exit %d: %.2000s", r.Code, r.Stderr+r.Stdout[:min(len(r.Stdout), 2000)])
	}
	// The chunks went through files jitd allocated ahead of time.
	n := claims()
	t.Logf("jit_io took %d files from jitd's spool", n)
	if n < 5 {
		t.Errorf("jit_io took %d files from jitd's spool for 10 MB, want 5 or more", n)
	}
	// The terminal turns \n into \r\n. It showed sudo's allow line, then
	// the session: the command's output and the echo of anything typed.
	// script(1) types one NUL, echoed as ^@ wherever it lands in the
	// output; base64 has no ^, so it cannot be part of the payload.
	wantTTY := bytes.ReplaceAll(want, []byte("\n"), []byte("\r\n"))
	allow, session, _ := strings.Cut(r.Stdout, "\r\n")
	if !strings.HasPrefix(allow, "jit: grant ") || strings.Replace(session, "^@", "", 1) != string(wantTTY) {
		t.Fatalf("the terminal did not show the allow line and the payload (got %d bytes: %.100q)", len(r.Stdout), r.Stdout)
	}
	id := lastSessionID(t, j, "jitalice")
	end := waitRecordingEnd(t, sb, id)
	t.Logf("end entry: %s entries, %s chunks, %s ttyout bytes", end.Get("JIT_ENTRIES"), end.Get("JIT_CHUNKS"), end.Get("JIT_BYTES_TTYOUT"))

	start := time.Now()
	rp := sb.Jitctl("root", "replay", id, "--raw")
	t.Logf("jitctl replay --raw took %v", time.Since(start).Round(time.Millisecond))
	if rp.Code != 0 || rp.Stderr != "" {
		t.Fatalf("jitctl replay --raw: exit %d, stderr %s", rp.Code, rp.Stderr)
	}
	if rp.Stdout != session {
		i := firstDiff(rp.Stdout, session)
		t.Fatalf("replay --raw differs from the terminal output: %d bytes, want %d; first difference at %d: %q vs %q",
			len(rp.Stdout), len(session), i, rp.Stdout[i:min(len(rp.Stdout), i+40)], session[i:min(len(session), i+40)])
	}
	ls := sb.Jitctl("root", "sessions", "--user", "jitalice")
	if ls.Code != 0 || !rowHas(ls.Stdout, id, "complete") {
		t.Fatalf("jitctl sessions does not call %s complete:\n%s", id, ls)
	}
	t.Logf("jitctl sessions:\n%s", ls.Stdout)
}

// jit_io readies spool files when a recording opens, before it knows
// whether the command prints anything. The ones it did not use go back:
// a command that prints nothing uses none up, one that prints a line uses
// the one its chunk went into, and jitd has nothing else to refill.
func TestRecordGivesBackUnusedSpoolFiles(t *testing.T) {
	sb, j := recSandbox(t, "")
	grantSudo(t, sb, "jitalice", "30m", nil, "/bin/true", "/bin/echo")
	watchSpool(t) // full
	for _, c := range []struct {
		argv []string
		used int
	}{
		{[]string{"/bin/true"}, 0},
		{[]string{"/bin/echo", "hello"}, 1},
	} {
		before := spoolInodes(t)
		r := sb.RunAs("jitalice", 30*time.Second, "", nil, append([]string{"/usr/bin/sudo", "-n"}, c.argv...)...)
		if r.Code != 0 {
			t.Fatalf("sudo %v: %s", c.argv, r)
		}
		waitRecordingEnd(t, sb, lastSessionID(t, j, "jitalice"))
		// jitd refills a moment after the last claim; the refill's new
		// files are new inodes.
		time.Sleep(time.Second)
		after := spoolInodes(t)
		if len(after) != len(before) {
			t.Fatalf("the spool holds %d files after sudo %v, %d before", len(after), c.argv, len(before))
		}
		used := 0
		for ino := range before {
			if !after[ino] {
				used++
			}
		}
		if used != c.used {
			t.Errorf("sudo %v used up %d of the spool's files, want %d", c.argv, used, c.used)
		}
	}
}

// spoolInodes returns the inodes of the files in jitd's recording spool.
func spoolInodes(t *testing.T) map[uint64]bool {
	t.Helper()
	ents, err := os.ReadDir("/run/jitd/spool")
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]bool{}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[info.Sys().(*syscall.Stat_t).Ino] = true
	}
	return out
}

// watchSpool waits until jitd's recording spool is full, and returns a
// function that counts the files claimed from it since.
func watchSpool(t *testing.T) func() int {
	t.Helper()
	const dir = "/run/jitd/spool"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("free-%d", 7))); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("jitd did not fill its recording spool")
		}
	}
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_MOVED_FROM); err != nil {
		t.Fatal(err)
	}
	n := 0
	return func() int {
		buf := make([]byte, 64<<10)
		for {
			k, err := syscall.Read(fd, buf)
			if k <= 0 || err != nil {
				return n
			}
			for b := buf[:k]; len(b) >= syscall.SizeofInotifyEvent; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&b[0]))
				name := strings.TrimRight(string(b[syscall.SizeofInotifyEvent:syscall.SizeofInotifyEvent+ev.Len]), "\x00")
				if strings.HasPrefix(name, "free-") && !strings.HasSuffix(name, ".new") {
					n++ // a claim; jitd's refills move "free-K.new"
				}
				b = b[syscall.SizeofInotifyEvent+ev.Len:]
			}
		}
	}
}

func firstDiff(a, b string) int {
	for i := 0; i < min(len(a), len(b)); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func rowHas(out, id, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, id+" ") {
			return strings.Contains(l, want)
		}
	}
	return false
}

// Without a terminal, stdin and stdout are recorded; the chunks carry their
// fields in the journal.
func TestRecordPipes(t *testing.T) {
	sb, j := recSandbox(t, "")
	grantSudo(t, sb, "jitalice", "30m", nil, "/usr/bin/tr")
	input := "hello from stdin\n\x00binary\xff\n"
	r := sb.RunAs("jitalice", 30*time.Second, input, nil, "/usr/bin/sudo", "-n", "/usr/bin/tr", "a-z", "A-Z")
	wantOut := "HELLO FROM STDIN\n\x00BINARY\xff\n"
	if r.Code != 0 || r.Stdout != wantOut {
		t.Fatalf("sudo tr: %s", r)
	}
	id := lastSessionID(t, j, "jitalice")
	waitRecordingEnd(t, sb, id)

	got, n := recordedStreams(t, id)
	if got["stdin"] != input || got["stdout"] != wantOut {
		t.Errorf("recorded stdin %q stdout %q", got["stdin"], got["stdout"])
	}
	t.Logf("journalctl JIT_SESSION_ID=%s -o json: %d recording entries", id, n)
	// Replay shows stdout (the session had no terminal).
	rp := sb.Jitctl("root", "replay", id, "--raw")
	if rp.Code != 0 || rp.Stdout != wantOut {
		t.Fatalf("replay --raw: %s", rp)
	}
	ls := sb.Jitctl("root", "sessions", "--json")
	if !strings.Contains(ls.Stdout, `"recording": "complete"`) {
		t.Errorf("sessions --json: %s", ls)
	}
	// Only root and approvers may replay.
	if rp := sb.Jitctl("jitbob", "replay", id); rp.Code == 0 || !strings.Contains(rp.Stderr, "only root and approvers") {
		t.Errorf("jitbob replayed a recording: %s", rp)
	}
	if rp := sb.Jitctl("jitlead", "replay", id); rp.Code == 0 || !strings.Contains(rp.Stderr, "adm and systemd-journal") {
		t.Errorf("jitlead (approver, not in adm): %s", rp)
	}
}

// Any local user can send journald entries with the recording's fields.
// Readers take only entries sent as root, which is how jit_io sends: a
// user's forged chunks neither change a replay nor make up a session, and
// both replay and sessions say they are there.
func TestRecordForgedEntries(t *testing.T) {
	sb, j := recSandbox(t, "")
	// Persistent storage, as on an installed Debian: journald writes
	// root's entries to system.journal, and a user's to user-UID.journal,
	// which that user may read.
	if err := sb.Journald().Cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat("/run/systemd/journal/flushed"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("journald did not move to /var/log/journal")
		}
	}
	grantSudo(t, sb, "jitalice", "30m", nil, "/usr/bin/tr")
	r := sb.RunAs("jitalice", 30*time.Second, "real\n", nil, "/usr/bin/sudo", "-n", "/usr/bin/tr", "a-z", "A-Z")
	if r.Code != 0 || r.Stdout != "REAL\n" {
		t.Fatalf("sudo tr: %s", r)
	}
	id := lastSessionID(t, j, "jitalice")
	end := waitRecordingEnd(t, sb, id)
	genuine := sb.WaitJournal(5*time.Second, nil, "JIT_SESSION_ID="+id)
	for _, e := range genuine {
		if e.Get("_UID") != "0" {
			t.Errorf("entry %s %s sent by uid %q, want 0", e.Get("JIT_EVENT"), e.Get("JIT_SEQ"), e.Get("_UID"))
		}
	}

	// jitalice's forgeries: a chunk numbered like a real one, one past
	// the end, and a whole made-up session.
	forge := func(fields ...string) {
		t.Helper()
		in := "SYSLOG_IDENTIFIER=jit_sudo\nMESSAGE=forged\n" + strings.Join(fields, "\n") + "\n"
		if r := sb.RunAs("jitalice", 10*time.Second, in, nil, "/usr/bin/logger", "--journald"); r.Code != 0 {
			t.Fatalf("logger --journald: %s", r)
		}
	}
	chunk := func(session string, seq int) []string {
		return []string{"JIT_SESSION_ID=" + session, "JIT_EVENT=sudo.io.chunk", "JIT_SEQ=" + strconv.Itoa(seq),
			"JIT_STREAM=stdout", "JIT_OFFSET=0", "JIT_TIME_US=0", "JIT_TIMING=0:7", "JIT_DATA=FORGED\n"}
	}
	forge(chunk(id, 1)...)
	forge(chunk(id, 99)...)
	fake := "forged-" + id
	forge("JIT_SESSION_ID="+fake, "JIT_EVENT=sudo.io.start", "JIT_SEQ=0", "JIT_USER=jitbob")
	forge(chunk(fake, 1)...)
	forge("JIT_SESSION_ID="+fake, "JIT_EVENT=sudo.io.end", "JIT_SEQ=2", "JIT_ENTRIES=3", "JIT_EXIT_STATUS=0")
	sb.WaitJournal(10*time.Second, func(es []journalread.Entry) bool { return len(es) == 2 }, "JIT_SESSION_ID="+id, "_UID=2001")
	sb.WaitJournal(10*time.Second, func(es []journalread.Entry) bool { return len(es) == 3 }, "JIT_SESSION_ID="+fake)

	// The recording is in the system journal, and jitalice's own file has
	// only her forgeries.
	inFile := func(glob string) []journalread.Entry {
		t.Helper()
		files, _ := filepath.Glob(glob)
		if len(files) != 1 {
			t.Fatalf("%s: %v", glob, files)
		}
		out, err := exec.Command("journalctl", "--file", files[0], "JIT_SESSION_ID="+id, "-o", "json", "-a", "--no-pager").Output()
		if err != nil {
			t.Fatalf("journalctl --file %s: %v", files[0], err)
		}
		es, err := parseJournalJSON(out)
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	if sys := inFile("/var/log/journal/*/system.journal"); len(sys) != len(genuine) {
		t.Errorf("system.journal holds %d of the session's %d entries", len(sys), len(genuine))
	}
	own := inFile("/var/log/journal/*/user-2001.journal")
	for _, e := range own {
		if e.Get("MESSAGE") != "forged" {
			t.Errorf("jitalice's own journal holds %s %s", e.Get("JIT_EVENT"), e.Get("JIT_SEQ"))
		}
	}
	if len(own) != 2 {
		t.Errorf("jitalice's own journal holds %d entries of the session, want her 2 forgeries", len(own))
	}

	rp := sb.Jitctl("root", "replay", id, "--raw")
	if rp.Stdout != "REAL\n" {
		t.Errorf("replay --raw with forged entries around: %q", rp.Stdout)
	}
	if rp.Code == 0 || !strings.Contains(rp.Stderr, "2 entries claiming this session sent by uid 2001") {
		t.Errorf("replay does not report the forged entries: %s", rp)
	}
	rp = sb.Jitctl("root", "replay", fake, "--raw")
	if rp.Code == 0 || rp.Stdout != "" || !strings.Contains(rp.Stderr, "3 entries claiming this session sent by uid 2001") ||
		!strings.Contains(rp.Stderr, "the start entry (0) is not in the journal") {
		t.Errorf("replay of a made-up session: %s", rp)
	}
	ls := sb.Jitctl("root", "sessions", "--json")
	if !strings.Contains(ls.Stdout, "2 not from sudo") {
		t.Errorf("sessions does not flag the forged entries: %s", ls)
	}
	t.Logf("end entry: %s", end.Get("MESSAGE"))
}

// recordedStreams reads session id's recording with `journalctl -o json`
// (the form the issue names), checks that every chunk has its fields and
// that the sequence numbers have no hole, and returns each stream's bytes
// and the number of entries.
func recordedStreams(t *testing.T, id string) (map[string]string, int) {
	t.Helper()
	out, err := exec.Command("journalctl", "JIT_SESSION_ID="+id, "-o", "json", "-a", "--no-pager").Output()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := parseJournalJSON(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var seqs []int
	for _, e := range entries {
		if !strings.HasPrefix(e.Get("JIT_EVENT"), "sudo.io.") {
			continue
		}
		n, err := strconv.Atoi(e.Get("JIT_SEQ"))
		if err != nil {
			t.Errorf("entry without JIT_SEQ: %v", e.Get("JIT_EVENT"))
		}
		seqs = append(seqs, n)
		if e.Get("JIT_EVENT") != "sudo.io.chunk" {
			continue
		}
		for _, f := range []string{"JIT_STREAM", "JIT_OFFSET", "JIT_TIME_US", "JIT_TIMING", "JIT_DATA"} {
			if _, ok := e[f]; !ok {
				t.Errorf("chunk %s lacks %s", e.Get("JIT_SEQ"), f)
			}
		}
		got[e.Get("JIT_STREAM")] += string(e.Bytes("JIT_DATA"))
	}
	sort.Ints(seqs)
	for i, n := range seqs {
		if n != i {
			t.Fatalf("sequence numbers %v", seqs)
		}
	}
	return got, len(seqs)
}

// Two streams through the C-side batches at once, each over several
// chunks, with binary bytes: stdin and stdout of a cat fed 3 MB through
// pipes are recorded byte for byte.
//
// sudo's own stdout is a file here, not a pipe. sudo 1.9.13 relays a
// command's output without a pty through a pipe of its own, and once the
// command has exited it flushes what it still holds only while its stdout
// takes data without blocking: with a full pipe to a slower reader, that
// rest is lost (about 1 run in 10 here; sudoers' log_output loses it the
// same way). The recording has it either way.
func TestRecordPipesLarge(t *testing.T) {
	sb, j := recSandbox(t, "")
	grantSudo(t, sb, "jitalice", "30m", nil, "/bin/cat")
	raw := make([]byte, 3<<20+12345) // a full chunk and a part, per stream
	rand.New(rand.NewSource(42)).Read(raw)
	input := string(raw)
	u, _ := sandbox.LookupUser("jitalice")
	out := filepath.Join(u.Home, "cat.out")
	r := sb.RunAs("jitalice", 60*time.Second, input, nil, "/bin/sh", "-c", "exec /usr/bin/sudo -n /bin/cat >"+out)
	relayed, err := os.ReadFile(out)
	if r.Code != 0 || err != nil || string(relayed) != input {
		t.Fatalf("sudo cat: exit %d, %d bytes out of %d (%v): %s", r.Code, len(relayed), len(input), err, r.Stderr)
	}
	id := lastSessionID(t, j, "jitalice")
	waitRecordingEnd(t, sb, id)
	got, n := recordedStreams(t, id)
	for _, st := range []string{"stdin", "stdout"} {
		if got[st] != input {
			i := firstDiff(got[st], input)
			t.Errorf("recorded %s: %d bytes, want %d; first difference at %d", st, len(got[st]), len(input), i)
		}
	}
	t.Logf("%d recording entries", n)
}

// Policy input = false: what the user sends is not recorded, the output is.
func TestRecordNoInput(t *testing.T) {
	sb, j := recSandbox(t, recordingPolicy("input = false"))
	grantSudo(t, sb, "jitalice", "30m", nil, "/usr/bin/tr")
	r := sb.RunAs("jitalice", 30*time.Second, "secret\n", nil, "/usr/bin/sudo", "-n", "/usr/bin/tr", "a-z", "A-Z")
	if r.Code != 0 || r.Stdout != "SECRET\n" {
		t.Fatalf("sudo tr: %s", r)
	}
	id := lastSessionID(t, j, "jitalice")
	waitRecordingEnd(t, sb, id)
	if e := sb.Journal("JIT_SESSION_ID="+id, "JIT_STREAM=stdin"); len(e) != 0 {
		t.Fatalf("stdin recorded although input = false: %d entries", len(e))
	}
	if e := sb.Journal("JIT_SESSION_ID="+id, "JIT_STREAM=stdout"); len(e) != 1 {
		t.Fatalf("stdout not recorded: %d entries", len(e))
	}
}

// Recording required and journald gone mid-session: the command is stopped.
func TestRecordJournaldStopRequired(t *testing.T) {
	sb, j := recSandbox(t, recordingPolicy("required = true"))
	grantSudo(t, sb, "jitalice", "30m", nil, "/bin/sh")
	done := make(chan sandbox.Result, 1)
	go func() {
		done <- sb.RunAsTTY("jitalice", 60*time.Second, "", nil, "/usr/bin/sudo", "-n", "/bin/sh", "-c",
			"i=0; while [ $i -lt 400 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done")
	}()
	// Wait until the recording is flowing, then stop journald.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("no recording chunks appeared")
		}
		if len(sb.Journal("JIT_EVENT=sudo.io.chunk")) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopped := time.Now()
	sb.Journald().Stop()
	var r sandbox.Result
	select {
	case r = <-done:
	case <-time.After(40 * time.Second):
		t.Fatal("the command still runs 40s after journald stopped")
	}
	t.Logf("command ended %v after journald stopped: %s", time.Since(stopped).Round(time.Millisecond), r)
	if r.Code == 0 || strings.Contains(r.Stdout, "tick 399") {
		t.Fatalf("the command ran to its end unrecorded: %s", r)
	}
	if !strings.Contains(r.Stdout+r.Stderr, "policy requires recording") {
		t.Errorf("no clear message: %s", r)
	}
	if d := time.Since(stopped); d > 10*time.Second {
		t.Errorf("stopping took %v", d)
	}
	_ = j
}

// Recording not required: journald away for a while, the command goes on,
// and the recording says where it has a gap.
func TestRecordJournaldGapNotRequired(t *testing.T) {
	sb, j := recSandbox(t, "")
	grantSudo(t, sb, "jitalice", "30m", nil, "/bin/sh")
	done := make(chan sandbox.Result, 1)
	go func() {
		// Output at once, a flood while journald is away (more than
		// the recorder may queue), then more output after it is back.
		done <- sb.RunAs("jitalice", 60*time.Second, "", nil, "/usr/bin/sudo", "-n", "/bin/sh", "-c",
			"echo start; sleep 1.5; head -c 40000000 /dev/zero | tr '\\0' x; echo; "+
				"i=0; while [ $i -lt 50 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done; echo done")
	}()
	deadline := time.Now().Add(15 * time.Second)
	for len(sb.Journal("JIT_EVENT=sudo.io.chunk")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no recording chunks appeared")
		}
		time.Sleep(100 * time.Millisecond)
	}
	sb.Journald().Stop()
	time.Sleep(3 * time.Second)
	restartJournald(t, sb)
	r := <-done
	if r.Code != 0 || !strings.HasSuffix(r.Stdout, "done\n") {
		t.Fatalf("the command did not run to its end: exit %d %s", r.Code, r.Stderr)
	}
	id := lastSessionID(t, j, "jitalice")
	t.Logf("sudo took %v; stderr: %q", r.Elapsed, r.Stderr)
	waitRecordingEnd(t, sb, id)
	ls := sb.Jitctl("root", "sessions")
	if !rowHas(ls.Stdout, id, "gaps") {
		t.Errorf("sessions does not show the gap:\n%s", ls)
	}
	rp := sb.Jitctl("root", "replay", id, "--raw")
	if rp.Code == 0 || !strings.Contains(rp.Stderr, "not complete") {
		t.Errorf("replay did not report the gap: exit %d %s", rp.Code, rp.Stderr)
	}
	t.Logf("replay says:\n%s", rp.Stderr)
	t.Logf("sessions:\n%s", ls.Stdout)
}

// restartJournald starts a new journald after the sandbox's was stopped.
func restartJournald(t testing.TB, sb *sandbox.Sandbox) {
	t.Helper()
	p := sb.Start("journald-2", exec.Command("/usr/lib/systemd/systemd-journald"))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && p.Running() {
		if journal.Enabled() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	exited, err := p.Wait(0)
	t.Fatalf("journald did not come back (exited %v: %v): %s", exited, err, p.Output())
}

// BenchmarkRecord10MB prints 10 MB of terminal output through sudo under a
// tty, alternating: jit with jit_io, jit without an I/O plugin, sudoers with
// log_output. It reports the median wall-time ratios and the journal's
// growth per output byte.
//
//	go test -run '^$' -bench BenchmarkRecord10MB -benchtime 10x ./e2e/
func BenchmarkRecord10MB(b *testing.B) {
	sb, _ := recSandbox(b, "")
	grantSudo(b, sb, "jitalice", "2h", nil, "/bin/cat")
	// A new payload for every round: journald stores equal field values
	// once, and equal chunks of a repeated payload would hide the cost.
	path, want := writePayload(b, sb, 10<<20, 0)
	jitIO := func() { writeJitIOSudoConf(b, sb) }
	jitNone := func() { writeJitSudoConf(b, sb) }
	sudoers := func() {
		writeSudoersConf(sb, "Defaults log_output, use_pty\njitalice ALL=(root) NOPASSWD: /bin/cat\n")
	}
	run := func(setup func()) time.Duration {
		setup()
		b.StopTimer()
		defer b.StartTimer()
		// The terminal's output is counted, not kept: growing a 10 MB
		// buffer would be work of the benchmark's own on the same two
		// cores, and noise.
		var out countingWriter
		r := sb.RunAsTTYTo(&out, "jitalice", 120*time.Second, "/usr/bin/sudo", "-n", "/bin/cat", path)
		if r.Code != 0 || out.n < int64(len(want)) {
			b.Fatalf("sudo cat: exit %d, %d bytes: %s", r.Code, out.n, r.Stderr)
		}
		return r.Elapsed
	}
	for _, s := range []func(){jitIO, jitNone, sudoers} {
		run(s)
	}
	// Every run starts on a settled machine (journalSettled), so that no
	// side pays for journald's work on the run before. The journal's
	// growth and journald's CPU time for a jit_io run are read at the
	// settle that follows it.
	journald := sb.Journald().Cmd.Process.Pid
	var journalGrowth int64
	var journaldCPU time.Duration
	var lastSize int64
	var lastCPU time.Duration
	lastWasIO := false
	settle := func() {
		size, cpu := journalSettled(b, journald)
		if lastWasIO {
			journalGrowth += size - lastSize
			journaldCPU += cpu - lastCPU
		}
		lastSize, lastCPU, lastWasIO = size, cpu, false
	}
	runIO := func() time.Duration {
		settle()
		d := run(jitIO)
		lastWasIO = true
		return d
	}
	runNone := func() time.Duration {
		settle()
		return run(jitNone)
	}
	var tIO, tNone, tSudoers []time.Duration
	var rIO, rSudoers []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		path, _ = writePayload(b, sb, 10<<20, int64(i+1))
		b.StartTimer()
		// Alternate which side goes first, so that neither always
		// follows the payload's write or the other's run.
		var a, n time.Duration
		if i%2 == 0 {
			a, n = runIO(), runNone()
		} else {
			n, a = runNone(), runIO()
		}
		tIO, tNone = append(tIO, a), append(tNone, n)
		rIO = append(rIO, float64(a)/float64(n))
		// sudoers' log_output is context, not a target: every sixth
		// pair is enough, and leaves time for more pairs.
		if i%6 == 0 {
			settle()
			s := run(sudoers)
			tSudoers = append(tSudoers, s)
			rSudoers = append(rSudoers, float64(s)/float64(n))
		}
	}
	settle()
	b.StopTimer()
	med := func(ds []time.Duration) float64 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	medf := func(fs []float64) float64 { sort.Float64s(fs); return fs[len(fs)/2] }
	b.ReportMetric(med(tIO), "jit_io-ms")
	b.ReportMetric(med(tNone), "no-io-ms")
	b.ReportMetric(med(tSudoers), "sudoers-log_output-ms")
	b.ReportMetric(medf(rIO), "jit_io/no-io")
	b.ReportMetric(medf(rSudoers), "sudoers/no-io")
	b.ReportMetric(float64(journalGrowth)/float64(b.N)/float64(len(want)), "journal-bytes/output-byte")
	b.ReportMetric(float64(journaldCPU.Microseconds())/1000/float64(b.N), "journald-cpu-ms")
}

// countingWriter counts what is written to it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// journalSettled waits until journald has taken in everything sent to it
// (the journal's size and journald's CPU time stay the same for a while)
// and the machine is quiet, so that no run pays for the work left over
// from the one before, and returns the journal's size and journald's CPU
// time.
func journalSettled(t testing.TB, journald int) (int64, time.Duration) {
	t.Helper()
	const quiet = 4 // polls 50 ms apart with nothing changing
	size, cpu, busy := journalBytes(t), procCPUTime(t, journald), machineBusy(t)
	for still, deadline := 0, time.Now().Add(10*time.Second); still < quiet && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		s, c, b := journalBytes(t), procCPUTime(t, journald), machineBusy(t)
		// At most one tick of the machine's CPU time per poll: this
		// process's own polling, timers.
		if s == size && c == cpu && b-busy <= 1 {
			still++
		} else {
			still = 0
		}
		size, cpu, busy = s, c, b
	}
	// And the same idle time before every run: how long the CPUs have
	// been idle changes how fast a run starts (frequency, the
	// hypervisor), and the side that follows journald's burst would
	// otherwise start warmer.
	time.Sleep(500 * time.Millisecond)
	return size, cpu
}

// machineBusy is the CPU time all CPUs have spent not idle, in ticks.
func machineBusy(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("/proc/stat: %q", line)
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy
}

// procCPUTime is the user and system CPU time process pid has used.
func procCPUTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("journald's CPU time: %v", err)
	}
	// The fields after the command name, which may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("journald's CPU time: cannot parse %q", b)
	}
	const hz = 100 // USER_HZ, the unit of /proc's times on Linux
	return time.Duration(utime+stime) * time.Second / hz
}

// journalBytes is the space the sandbox journal's files use.
func journalBytes(t testing.TB) int64 {
	t.Helper()
	var total int64
	for _, dir := range []string{"/var/log/journal", "/run/log/journal"} {
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() && strings.HasSuffix(p, ".journal") {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					total += st.Blocks * 512
				}
			}
			return nil
		})
	}
	return total
}

// parseJournalJSON decodes `journalctl -o json` output, one object per line:
// the acceptance reads the chunks that way, so the test does too.
// journalctl prints a field as a JSON string when it is valid UTF-8 text, as
// an array of byte values when it is binary, and as an array of those when
// a field occurs more than once in one entry.
func parseJournalJSON(out []byte) ([]journalread.Entry, error) {
	var entries []journalread.Entry
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
	line := 0
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, fmt.Errorf("journal entry %d: %w", line, err)
		}
		e := make(journalread.Entry, len(fields))
		for name, v := range fields {
			vals, err := decodeJSONField(v)
			if err != nil {
				return nil, fmt.Errorf("journal entry %d field %s: %w", line, name, err)
			}
			e[name] = vals
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read journalctl output: %w", err)
	}
	return entries, nil
}

// decodeField turns one field's JSON form into its values.
func decodeJSONField(v json.RawMessage) ([][]byte, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		// journalctl prints null for values too large to show with -a off.
		return [][]byte{nil}, nil
	}
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, err
		}
		return [][]byte{[]byte(s)}, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return [][]byte{{}}, nil
		}
		if c := bytes.TrimSpace(items[0]); len(c) > 0 && (c[0] == '"' || c[0] == '[') {
			// Several values of one field.
			var all [][]byte
			for _, it := range items {
				vals, err := decodeJSONField(it)
				if err != nil {
					return nil, err
				}
				all = append(all, vals...)
			}
			return all, nil
		}
		var b []byte
		var nums []int
		if err := json.Unmarshal(v, &nums); err != nil {
			return nil, fmt.Errorf("binary value: %w", err)
		}
		b = make([]byte, len(nums))
		for i, n := range nums {
			if n < 0 || n > 255 {
				return nil, fmt.Errorf("binary value: byte %d out of range", n)
			}
			b[i] = byte(n)
		}
		return [][]byte{b}, nil
	}
	return nil, fmt.Errorf("unexpected JSON %.20s", v)
}

// What a still-running command reads reaches journald in its own chunk,
// sealed by the flush timer rather than by the command's end; and the timer
// is armed again for what comes after a flush.
func TestRecordFlushWhileRunning(t *testing.T) {
	sb, _ := recSandbox(t, "")
	grantSudo(t, sb, "jitalice", "30m", nil, "/usr/bin/tr")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := sb.UserCommand(ctx, "jitalice", nil, "/usr/bin/sudo", "-n", "/usr/bin/tr", "a-z", "A-Z")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"first-line", "second-line"} {
		if _, err := fmt.Fprintln(in, line); err != nil {
			t.Fatalf("write %s to sudo: %v", line, err)
		}
		// The command runs until stdin closes, so only the flush timer
		// can have sealed the chunk (WaitJournal fails the test after
		// its timeout).
		sb.WaitJournal(10*time.Second, func(es []journalread.Entry) bool {
			for _, e := range es {
				if strings.Contains(e.Get(recording.FieldData), line) {
					return true
				}
			}
			return false
		}, "JIT_EVENT="+recording.EventChunk, "JIT_STREAM=stdin")
		if cmd.ProcessState != nil {
			t.Fatal("sudo ended before its input was closed")
		}
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sudo tr: %v", err)
	}
}

// jitd says at start when its recording spool is not on a tmpfs with huge
// pages (the sandbox mounts one on /run/jitd/spool, as run-jitd-spool.mount
// does on a host), and is quiet when it is.
func TestJitdWarnsOfASpoolWithoutHugePages(t *testing.T) {
	const warning = "not on a tmpfs with huge pages"
	sb := sandbox.New(t)
	j := sb.StartJitd(sandbox.JitdOptions{Policy: sandbox.TestPolicy})
	logged := func(j *sandbox.Jitd) bool {
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if strings.Contains(j.Proc.Output(), warning) {
				return true
			}
		}
		return false
	}
	if logged(j) {
		t.Errorf("jitd warns of its spool on the huge-page tmpfs:\n%s", j.Proc.Output())
	}
	if err := j.Proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	j.Proc.Wait(5 * time.Second)

	plain := sb.StartJitd(sandbox.JitdOptions{StateDir: j.StateDir, Args: []string{"-runtime-dir", "/run/jitd-plain"}})
	if !logged(plain) {
		t.Errorf("jitd does not warn of a spool on /run's own tmpfs:\n%s", plain.Proc.Output())
	}
}
