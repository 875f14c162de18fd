package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/jitpam/jit/jitd/grant"
	"github.com/jitpam/jit/jitd/journalread"
	"github.com/jitpam/jit/jitd/recording"
)

// Recordings live in the system journal, which journald lets root and the
// groups adm and systemd-journal read (and nobody else). jitctl reads it with
// journalctl as the user who runs jitctl: root, or an approver in one of
// those groups. Recordings hold what was typed, passwords at prompts
// included, so jitctl also refuses callers jitd does not know as approvers;
// the journal's file permissions are the actual boundary.

// journalQuery reads journal entries; a variable for tests.
var journalQuery = journalread.Query

// sleep waits between replayed writes; a variable for tests.
var sleep = time.Sleep

const journalGroupsHint = "the system journal is readable only by root and the groups adm and systemd-journal: run `sudo jitctl …`, or ask to be added to one of these groups"

// replayUsage is the command's usage line (also in main.go's usage).
const replayUsage = "replay SESSION_ID [--speed N] [--raw]"

func (c *cli) replay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	speed := fs.Float64("speed", 1, "play back N times as fast")
	raw := fs.Bool("raw", false, "write exactly the recorded output bytes, at once, and nothing else")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want %s", replayUsage)
	}
	if *speed <= 0 || *speed > 1e6 {
		return usagef("--speed %v: want a number above 0", *speed)
	}
	id := pos[0]
	if err := c.mayReadRecordings(ctx); err != nil {
		return err
	}
	entries, err := journalQuery(ctx, recording.FieldSession+"="+id, "SYSLOG_IDENTIFIER=jit_sudo")
	if err != nil {
		return fmt.Errorf("read the journal: %w", err)
	}
	fields := make([]recording.Fields, len(entries))
	for i, e := range entries {
		fields[i] = e
	}
	s, err := recording.Assemble(id, fields)
	if errors.Is(err, recording.ErrNoRecording) {
		if os.Geteuid() != 0 {
			return fmt.Errorf("found no recording of session %s; %s", id, journalGroupsHint)
		}
		return fmt.Errorf("found no recording of session %s in the journal (recording off, another host, or rotated away)", id)
	}
	if err != nil {
		return err
	}
	out := s.Terminal()
	report := s.Report()
	if *raw {
		w := bufio.NewWriterSize(c.stdout, 1<<20)
		for _, o := range out {
			w.Write(o.Data)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	} else {
		c.playHeader(s)
		if err := c.play(out, *speed); err != nil {
			return err
		}
		c.playFooter(s)
	}
	if len(report) > 0 {
		fmt.Fprintf(c.stderr, "jitctl replay: the recording of session %s is not complete:\n", id)
		for _, l := range report {
			fmt.Fprintf(c.stderr, "  %s\n", l)
		}
		return silentFailure{}
	}
	return nil
}

// silentFailure makes jitctl exit 1 after it already said why.
type silentFailure = deniedError

// mayReadRecordings refuses callers who are neither root nor approvers.
func (c *cli) mayReadRecordings(ctx context.Context) error {
	if os.Geteuid() == 0 {
		return nil
	}
	st, err := c.client.Status(ctx)
	if err != nil {
		return fmt.Errorf("only root and approvers may replay recordings, and jitd could not say whether you are one (%s)", describe(err))
	}
	if !st.You.Approver {
		return fmt.Errorf("only root and approvers may replay recordings: they hold what was typed, passwords included; %s is not an approver", st.You.User)
	}
	if !inJournalGroup() {
		return fmt.Errorf("%s is an approver, but %s", st.You.User, journalGroupsHint)
	}
	return nil
}

// inJournalGroup reports whether this process may read the system journal.
func inJournalGroup() bool {
	if os.Geteuid() == 0 {
		return true
	}
	gids, err := os.Getgroups()
	if err != nil {
		return false
	}
	gids = append(gids, os.Getegid())
	for _, name := range []string{"adm", "systemd-journal"} {
		g, err := user.LookupGroup(name)
		if err != nil {
			continue
		}
		for _, id := range gids {
			if fmt.Sprint(id) == g.Gid {
				return true
			}
		}
	}
	return false
}

func (c *cli) playHeader(s *recording.Session) {
	if s.Start == nil {
		fmt.Fprintf(c.stderr, "[jit replay of %s: the start entry is missing]\r\n", s.ID)
		return
	}
	g := s.Start.Get("JIT_GRANT_ID")
	if g == "" {
		g = orDash(s.Start.Get("JIT_RULE"))
	}
	fmt.Fprintf(c.stderr, "[jit replay of %s: %s ran %s as %s on %s, grant %s, %sx%s]\r\n", s.ID,
		s.Start.Get("JIT_USER"), s.Start.Get("JIT_COMMAND"), s.Start.Get("JIT_RUNAS"),
		orDash(s.Start.Get("JIT_TTY")), g, orDash(s.Start.Get(recording.FieldCols)), orDash(s.Start.Get(recording.FieldLines)))
}

func (c *cli) playFooter(s *recording.Session) {
	if s.End == nil {
		return
	}
	what := "exit status " + s.End.Get(recording.FieldStatus)
	if sig := s.End.Get(recording.FieldSignal); sig != "" {
		what = "killed by " + sig
	} else if r := s.End.Get(recording.FieldReason); r != "" && s.End.Get(recording.FieldStatus) == "" {
		what = r
	}
	fmt.Fprintf(c.stderr, "\r\n[jit replay of %s: ended, %s]\r\n", s.ID, what)
}

// play writes out with its original timing divided by speed; holes are
// marked on stderr where they are.
func (c *cli) play(out []recording.Output, speed float64) error {
	var prev time.Duration
	for _, o := range out {
		if d := time.Duration(float64(o.At-prev) / speed); d > 0 {
			sleep(d)
		}
		prev = o.At
		if o.Hole > 0 {
			fmt.Fprintf(c.stderr, "\r\n[jit replay: %d bytes of %s are missing here]\r\n", o.Hole, o.Stream)
		}
		if _, err := c.stdout.Write(o.Data); err != nil {
			return err
		}
	}
	return nil
}

// recordingStates returns each sudo session's recording verdict for
// `jitctl sessions` ("complete", "gaps: …", "recording", "none"), read from
// the journal without the recorded data. ok is false when this caller
// cannot read the system journal.
func recordingStates(ctx context.Context, ss []grant.Session) (map[string]string, bool) {
	states := map[string]string{}
	var since time.Time
	for _, s := range ss {
		if s.Kind != grant.KindSudo {
			continue
		}
		if since.IsZero() || s.StartedAt.Before(since) {
			since = s.StartedAt
		}
	}
	if since.IsZero() {
		return states, true
	}
	if !inJournalGroup() {
		return states, false
	}
	fields := []string{recording.FieldSession, recording.FieldEvent, recording.FieldSeq, recording.FieldStream,
		recording.FieldOffset, recording.FieldTime, recording.FieldTiming, recording.FieldEntries, "JIT_TTY",
		recording.FieldSenderUID}
	for _, st := range recording.Streams {
		fields = append(fields, recording.BytesField(st), recording.GapField(st))
	}
	entries, err := journalQuery(ctx, "SYSLOG_IDENTIFIER=jit_sudo",
		"--since="+since.Add(-time.Minute).Local().Format("2006-01-02 15:04:05"),
		"--output-fields="+strings.Join(fields, ","))
	if err != nil {
		return states, false
	}
	by := map[string][]recording.Fields{}
	for _, e := range entries {
		if strings.HasPrefix(e.Get(recording.FieldEvent), recording.EventPrefix) {
			id := e.Get(recording.FieldSession)
			by[id] = append(by[id], e)
		}
	}
	for _, s := range ss {
		if s.Kind != grant.KindSudo {
			continue
		}
		rec, err := recording.AssembleIndex(s.ID, by[s.ID])
		if err != nil {
			states[s.ID] = "none"
			continue
		}
		states[s.ID] = rec.Status(s.State == grant.SessionOpen)
	}
	return states, true
}

// sessionRow is a session as `jitctl sessions --json` prints it.
type sessionRow struct {
	grant.Session
	Recording string `json:"recording,omitempty"`
}

func sessionRows(ss []grant.Session, states map[string]string) []sessionRow {
	rows := make([]sessionRow, len(ss))
	for i, s := range ss {
		rows[i] = sessionRow{Session: s, Recording: states[s.ID]}
	}
	return rows
}
