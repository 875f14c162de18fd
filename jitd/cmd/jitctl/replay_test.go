package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitpam/jit/jitd/api"
	"github.com/jitpam/jit/jitd/journalread"
	"github.com/jitpam/jit/jitd/recording"
)

// fakeRecording is a session's journal entries as journalread returns them.
func fakeRecording(id string, drop int) []journalread.Entry {
	mk := func(seq int, kv ...string) journalread.Entry {
		e := journalread.Entry{recording.FieldSession: {[]byte(id)}, recording.FieldSeq: {[]byte(strconv.Itoa(seq))},
			"SYSLOG_IDENTIFIER": {[]byte("jit_sudo")}, recording.FieldSenderUID: {[]byte("0")}}
		for i := 0; i+1 < len(kv); i += 2 {
			e[kv[i]] = [][]byte{[]byte(kv[i+1])}
		}
		return e
	}
	es := []journalread.Entry{
		mk(0, recording.FieldEvent, recording.EventStart, "JIT_USER", "jitalice", "JIT_COMMAND", "/bin/cat x", "JIT_TTY", "/dev/pts/3"),
		mk(1, recording.FieldEvent, recording.EventChunk, recording.FieldStream, "ttyout", recording.FieldOffset, "0",
			recording.FieldTime, "1000", recording.FieldTiming, "0:6 500000:2", recording.FieldData, "hello\n\x00\xff"),
		mk(2, recording.FieldEvent, recording.EventChunk, recording.FieldStream, "ttyin", recording.FieldOffset, "0",
			recording.FieldTime, "2000", recording.FieldTiming, "0:3", recording.FieldData, "pw\n"),
		mk(3, recording.FieldEvent, recording.EventChunk, recording.FieldStream, "ttyout", recording.FieldOffset, "8",
			recording.FieldTime, "2501000", recording.FieldTiming, "0:4", recording.FieldData, "bye\n"),
		mk(4, recording.FieldEvent, recording.EventEnd, recording.FieldEntries, "5", recording.FieldStatus, "0", "JIT_BYTES_TTYOUT", "12"),
	}
	if drop >= 0 {
		es = append(es[:drop], es[drop+1:]...)
	}
	return es
}

func testCLI(t *testing.T, entries []journalread.Entry) (*cli, *bytes.Buffer, *bytes.Buffer, *[]time.Duration) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("replay's caller check needs root here (otherwise it asks jitd)")
	}
	var slept []time.Duration
	oldQ, oldS := journalQuery, sleep
	journalQuery = func(ctx context.Context, args ...string) ([]journalread.Entry, error) { return entries, nil }
	sleep = func(d time.Duration) { slept = append(slept, d) }
	t.Cleanup(func() { journalQuery, sleep = oldQ, oldS })
	var out, errb bytes.Buffer
	return &cli{client: api.NewClient("/nonexistent"), stdout: &out, stderr: &errb, now: time.Now()}, &out, &errb, &slept
}

func TestReplayRaw(t *testing.T) {
	c, out, errb, slept := testCLI(t, fakeRecording("s-1", -1))
	if err := c.replay(context.Background(), []string{"s-1", "--raw"}); err != nil {
		t.Fatalf("replay: %v (%s)", err, errb)
	}
	if out.String() != "hello\n\x00\xffbye\n" || errb.Len() != 0 || len(*slept) != 0 {
		t.Fatalf("raw: %q, stderr %q, slept %v", out, errb, *slept)
	}
}

func TestReplayTiming(t *testing.T) {
	c, out, errb, slept := testCLI(t, fakeRecording("s-1", -1))
	if err := c.replay(context.Background(), []string{"s-1", "--speed", "2"}); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if out.String() != "hello\n\x00\xffbye\n" {
		t.Fatalf("output %q", out)
	}
	want := []time.Duration{500 * time.Microsecond, 250 * time.Millisecond, 1000 * time.Millisecond}
	if len(*slept) != 3 || (*slept)[0] != want[0] || (*slept)[1] != want[1] || (*slept)[2] != want[2] {
		t.Fatalf("slept %v, want %v", *slept, want)
	}
	if !strings.Contains(errb.String(), "jitalice ran /bin/cat x") || !strings.Contains(errb.String(), "exit status 0") {
		t.Errorf("header/footer: %q", errb)
	}
}

func TestReplayReportsMissing(t *testing.T) {
	c, out, errb, _ := testCLI(t, fakeRecording("s-1", 1))
	err := c.replay(context.Background(), []string{"s-1", "--raw"})
	if err == nil {
		t.Fatal("an incomplete recording replayed as if whole")
	}
	if out.String() != "bye\n" {
		t.Errorf("raw output must still be exactly the recorded bytes: %q", out)
	}
	for _, want := range []string{"entries 1 of 5", "ttyout bytes 0-7 are not recorded"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q: %s", want, errb)
		}
	}
	if code := run([]string{"replay"}, out, errb); code != exitUsage {
		t.Errorf("replay without an id: exit %d", code)
	}
}
