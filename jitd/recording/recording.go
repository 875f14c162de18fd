// Package recording is the format of jit's sudo session recordings in
// journald, shared by the writer (the sudo I/O plugin jit_io) and the readers
// (jitctl replay and sessions). It is pure: no I/O, no clock.
//
// A recording is a run of journal entries that all carry JIT_SESSION_ID (the
// jitd session id) and JIT_SEQ, numbered 0, 1, 2, … in the order the writer
// queued them, with no number skipped. Entry 0 is the start entry; the last is
// the end entry, which says how many entries there are. So a reader can tell
// a complete recording from one with holes without trusting anything but the
// numbers: every number from 0 to the end entry's must be present.
//
//	JIT_EVENT=sudo.io.start    user, runas, command, grant, tty, terminal size
//	JIT_EVENT=sudo.io.chunk    one stream's bytes: JIT_STREAM, JIT_OFFSET,
//	                           JIT_TIME_US, JIT_TIMING, JIT_DATA (binary)
//	JIT_EVENT=sudo.io.winsize  JIT_TIME_US, JIT_LINES, JIT_COLS
//	JIT_EVENT=sudo.io.suspend  JIT_TIME_US, JIT_SIGNAL (TSTP, STOP, CONT…)
//	JIT_EVENT=sudo.io.gap      data the writer had to drop (journald away,
//	                           recording not required): JIT_GAP_BYTES_<STREAM>
//	JIT_EVENT=sudo.io.end      exit status or signal, JIT_BYTES_<STREAM>,
//	                           JIT_CHUNKS, JIT_ENTRIES (= its JIT_SEQ + 1)
//
// Timing. A chunk batches many writes of one stream (bounded in size and in
// age). Each write keeps its own time: JIT_TIME_US is the first write's offset
// from the session's start in microseconds, and JIT_TIMING lists every write
// as "DELAY:LEN" separated by spaces, DELAY being microseconds since the
// previous write of the chunk (0 for the first). So batching loses nothing:
// the delay since the previous write of the session is the difference of two
// absolute offsets, across chunks and streams alike. JIT_OFFSET is the byte
// offset of the chunk's first byte in its stream, so that a hole shows as
// bytes, too.
//
// Trust. Any local user can send entries with these fields to journald.
// What they cannot forge is the sender's uid, which journald adds (_UID)
// from the credentials the kernel checked: jit_io sends as root (sudo's
// effective uid). Readers take only entries sent as root, and report the
// others: a user's forged chunk can neither fill a hole nor stand in for a
// recorded one.
package recording

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Journal field names.
const (
	FieldSession  = "JIT_SESSION_ID"
	FieldEvent    = "JIT_EVENT"
	FieldSeq      = "JIT_SEQ"
	FieldStream   = "JIT_STREAM"
	FieldOffset   = "JIT_OFFSET"
	FieldTime     = "JIT_TIME_US"
	FieldTiming   = "JIT_TIMING"
	FieldData     = "JIT_DATA"
	FieldLines    = "JIT_LINES"
	FieldCols     = "JIT_COLS"
	FieldSignal   = "JIT_SIGNAL"
	FieldStatus   = "JIT_EXIT_STATUS"
	FieldEntries  = "JIT_ENTRIES"
	FieldChunks   = "JIT_CHUNKS"
	FieldDuration = "JIT_DURATION_US"
	FieldReason   = "JIT_REASON"
	// FieldBytesPrefix + upper-case stream name: bytes of a stream (end
	// entry); FieldGapPrefix + stream: bytes dropped (gap entry).
	FieldBytesPrefix = "JIT_BYTES_"
	FieldGapPrefix   = "JIT_GAP_BYTES_"
	// FieldSenderUID is journald's trusted field for the sender's uid.
	FieldSenderUID = "_UID"
)

// Events (JIT_EVENT values) of recording entries.
const (
	EventStart   = "sudo.io.start"
	EventChunk   = "sudo.io.chunk"
	EventWinsize = "sudo.io.winsize"
	EventSuspend = "sudo.io.suspend"
	EventGap     = "sudo.io.gap"
	EventEnd     = "sudo.io.end"
	// EventPrefix starts every recording event.
	EventPrefix = "sudo.io."
)

// Streams, as sudo's I/O plugin API names them.
const (
	TTYIn  = "ttyin"
	TTYOut = "ttyout"
	StdIn  = "stdin"
	StdOut = "stdout"
	StdErr = "stderr"
)

// Streams lists every stream in a fixed order.
var Streams = []string{TTYIn, TTYOut, StdIn, StdOut, StdErr}

// StreamIndex returns the index of name in Streams, or -1.
func StreamIndex(name string) int {
	for i, s := range Streams {
		if s == name {
			return i
		}
	}
	return -1
}

// BytesField returns the end entry's byte count field of stream.
func BytesField(stream string) string { return FieldBytesPrefix + strings.ToUpper(stream) }

// GapField returns the gap entry's dropped-bytes field of stream.
func GapField(stream string) string { return FieldGapPrefix + strings.ToUpper(stream) }

// Write is one write of a stream: its delay after the previous write of
// the same chunk and its length.
type Write struct {
	Delay time.Duration // microsecond resolution
	Len   int
}

// MaxWrites bounds the writes of one chunk a reader accepts.
const MaxWrites = 1 << 20

// AppendTiming appends the JIT_TIMING form of one write to b ("DELAY:LEN",
// space-separated from what is already there).
func AppendTiming(b []byte, delayUS int64, n int) []byte {
	if len(b) > 0 {
		b = append(b, ' ')
	}
	b = strconv.AppendInt(b, delayUS, 10)
	b = append(b, ':')
	return strconv.AppendInt(b, int64(n), 10)
}

// EncodeTiming returns the JIT_TIMING form of writes.
func EncodeTiming(writes []Write) string {
	var b []byte
	for _, w := range writes {
		b = AppendTiming(b, w.Delay.Microseconds(), w.Len)
	}
	return string(b)
}

// ParseTiming parses JIT_TIMING and checks that the writes add up to
// dataLen bytes.
func ParseTiming(s string, dataLen int) ([]Write, error) {
	if s == "" {
		if dataLen != 0 {
			return nil, fmt.Errorf("timing: no writes for %d bytes", dataLen)
		}
		return nil, nil
	}
	fields := strings.Split(s, " ")
	if len(fields) > MaxWrites {
		return nil, fmt.Errorf("timing: %d writes, at most %d", len(fields), MaxWrites)
	}
	writes := make([]Write, 0, len(fields))
	total := 0
	for i, f := range fields {
		d, n, ok := strings.Cut(f, ":")
		if !ok {
			return nil, fmt.Errorf("timing: write %d: %q is not DELAY:LEN", i, f)
		}
		us, err := strconv.ParseInt(d, 10, 64)
		if err != nil || us < 0 || us > int64(maxOffset/time.Microsecond) {
			return nil, fmt.Errorf("timing: write %d: bad delay %q", i, d)
		}
		l, err := strconv.Atoi(n)
		if err != nil || l < 0 || l > dataLen-total {
			return nil, fmt.Errorf("timing: write %d: bad length %q", i, n)
		}
		total += l
		writes = append(writes, Write{Delay: time.Duration(us) * time.Microsecond, Len: l})
	}
	if total != dataLen {
		return nil, fmt.Errorf("timing: writes add up to %d bytes, the chunk has %d", total, dataLen)
	}
	return writes, nil
}

// maxOffset bounds times a reader accepts (a century), so sums cannot
// overflow.
const maxOffset = 100 * 365 * 24 * time.Hour

// Fields is what a reader needs of one journal entry (journalread.Entry
// has it).
type Fields interface {
	Get(field string) string
	Bytes(field string) []byte
}

// Chunk is one recorded chunk.
type Chunk struct {
	Seq    int64
	Stream string
	Offset int64         // of the first byte in the stream
	At     time.Duration // first write, since the session's start
	Writes []Write
	Data   []byte
	Len    int64 // of the data (also when Data was not read)
}

// Event is a terminal size change or a suspend/resume.
type Event struct {
	Seq         int64
	Kind        string // EventWinsize or EventSuspend
	At          time.Duration
	Lines, Cols int
	Signal      string
}

// Gap is data the writer dropped and said so.
type Gap struct {
	Seq    int64
	At     time.Duration
	Bytes  map[string]int64 // per stream
	Reason string
}

// Range is an inclusive range of sequence numbers.
type Range struct{ From, To int64 }

func (r Range) String() string {
	if r.From == r.To {
		return strconv.FormatInt(r.From, 10)
	}
	return strconv.FormatInt(r.From, 10) + "-" + strconv.FormatInt(r.To, 10)
}

// Hole is a run of stream bytes the recording lacks.
type Hole struct {
	Stream   string
	From, To int64 // byte offsets, To exclusive
	Declared bool  // a gap entry says so; else entries are missing
}

// Session is a recording read back from the journal.
type Session struct {
	ID    string
	Start Fields // nil when the start entry is missing
	End   Fields // nil when the end entry is missing (or not written yet)

	Chunks []Chunk // by sequence number
	Events []Event
	Gaps   []Gap

	// Entries is how many entries the recording has: from the end entry,
	// else one more than the highest sequence number seen.
	Entries int64
	// Missing lists sequence numbers below Entries that are not in the
	// journal.
	Missing []Range
	// Holes lists stream bytes the recording lacks.
	Holes []Hole
	// Problems lists entries that could not be read.
	Problems []string
	// Foreign counts, by sender uid, the entries that claim to belong to
	// the session but were not sent as root: ignored.
	Foreign map[string]int
	// Bytes per stream as the end entry reports them (nil without one).
	Bytes map[string]int64
}

// ErrNoRecording says the journal holds no recording entry for a session.
var ErrNoRecording = errors.New("no recording")

// Assemble builds a session's recording from its journal entries, in any
// order; entries of other events or other sessions are ignored.
func Assemble(id string, entries []Fields) (*Session, error) {
	return assemble(id, entries, true)
}

// AssembleIndex is Assemble for entries read without their JIT_DATA (a
// listing that only judges completeness): chunk lengths come from
// JIT_TIMING, and chunks have no Data.
func AssembleIndex(id string, entries []Fields) (*Session, error) {
	return assemble(id, entries, false)
}

func assemble(id string, entries []Fields, withData bool) (*Session, error) {
	s := &Session{ID: id}
	seen := map[int64]bool{}
	var maxSeq int64 = -1
	found := false
	for _, e := range entries {
		ev := e.Get(FieldEvent)
		if !strings.HasPrefix(ev, EventPrefix) || e.Get(FieldSession) != id {
			continue
		}
		found = true
		if uid := e.Get(FieldSenderUID); uid != "0" {
			if s.Foreign == nil {
				s.Foreign = map[string]int{}
			}
			if uid == "" {
				uid = "unknown"
			}
			s.Foreign[uid]++
			continue
		}
		seq, err := strconv.ParseInt(e.Get(FieldSeq), 10, 64)
		if err != nil || seq < 0 {
			s.Problems = append(s.Problems, fmt.Sprintf("%s entry without a valid %s (%q)", ev, FieldSeq, e.Get(FieldSeq)))
			continue
		}
		if seen[seq] {
			s.Problems = append(s.Problems, fmt.Sprintf("entry %d appears twice; the second is ignored", seq))
			continue
		}
		seen[seq] = true
		if seq > maxSeq {
			maxSeq = seq
		}
		at, _ := parseUS(e.Get(FieldTime)) // events; chunks check it
		switch ev {
		case EventStart:
			s.Start = e
		case EventEnd:
			s.End = e
			if n, err := strconv.ParseInt(e.Get(FieldEntries), 10, 64); err == nil && n == seq+1 {
				s.Entries = n
			} else {
				s.Problems = append(s.Problems, fmt.Sprintf("end entry %d says %s=%q", seq, FieldEntries, e.Get(FieldEntries)))
			}
			s.Bytes = map[string]int64{}
			for _, st := range Streams {
				if n, err := strconv.ParseInt(e.Get(BytesField(st)), 10, 64); err == nil {
					s.Bytes[st] = n
				}
			}
		case EventChunk:
			c, err := parseChunk(e, seq, withData)
			if err != nil {
				s.Problems = append(s.Problems, fmt.Sprintf("chunk %d: %v", seq, err))
				delete(seen, seq) // unreadable counts as missing
				continue
			}
			s.Chunks = append(s.Chunks, c)
		case EventWinsize, EventSuspend:
			ev := Event{Seq: seq, Kind: ev, At: at, Signal: e.Get(FieldSignal)}
			ev.Lines, _ = strconv.Atoi(e.Get(FieldLines))
			ev.Cols, _ = strconv.Atoi(e.Get(FieldCols))
			s.Events = append(s.Events, ev)
		case EventGap:
			g := Gap{Seq: seq, At: at, Bytes: map[string]int64{}, Reason: e.Get(FieldReason)}
			for _, st := range Streams {
				if n, err := strconv.ParseInt(e.Get(GapField(st)), 10, 64); err == nil && n > 0 {
					g.Bytes[st] = n
				}
			}
			s.Gaps = append(s.Gaps, g)
		default:
			s.Problems = append(s.Problems, fmt.Sprintf("entry %d: unknown event %s", seq, ev))
		}
	}
	if !found {
		return nil, ErrNoRecording
	}
	if s.Entries == 0 {
		s.Entries = maxSeq + 1
	}
	// Missing sequence numbers, as ranges between the ones seen (the end
	// entry's count may be anything: never walk it number by number).
	seqs := make([]int64, 0, len(seen))
	for q := range seen {
		if q < s.Entries {
			seqs = append(seqs, q)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	want := int64(0)
	for _, q := range append(seqs, s.Entries) {
		if q > want {
			s.Missing = append(s.Missing, Range{want, q - 1})
		}
		want = q + 1
	}
	sort.Slice(s.Chunks, func(i, j int) bool { return s.Chunks[i].Seq < s.Chunks[j].Seq })
	sort.Slice(s.Events, func(i, j int) bool { return s.Events[i].Seq < s.Events[j].Seq })
	sort.Slice(s.Gaps, func(i, j int) bool { return s.Gaps[i].Seq < s.Gaps[j].Seq })
	s.findHoles()
	return s, nil
}

func parseUS(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > int64(maxOffset/time.Microsecond) {
		return 0, fmt.Errorf("bad time %q", v)
	}
	return time.Duration(n) * time.Microsecond, nil
}

func parseChunk(e Fields, seq int64, withData bool) (Chunk, error) {
	c := Chunk{Seq: seq, Stream: e.Get(FieldStream)}
	if withData {
		c.Data = e.Bytes(FieldData)
	}
	if StreamIndex(c.Stream) < 0 {
		return c, fmt.Errorf("unknown stream %q", c.Stream)
	}
	var err error
	if c.At, err = parseUS(e.Get(FieldTime)); err != nil {
		return c, err
	}
	if c.Offset, err = strconv.ParseInt(e.Get(FieldOffset), 10, 64); err != nil || c.Offset < 0 {
		return c, fmt.Errorf("bad offset %q", e.Get(FieldOffset))
	}
	if !withData {
		c.Writes, c.Len, err = parseTimingAny(e.Get(FieldTiming))
		return c, err
	}
	c.Len = int64(len(c.Data))
	if c.Writes, err = ParseTiming(e.Get(FieldTiming), len(c.Data)); err != nil {
		return c, err
	}
	return c, nil
}

// findHoles walks each stream's chunks in order and notes where offsets
// jump (or where the end entry's byte count exceeds what is there).
func (s *Session) findHoles() {
	next := map[string]int64{}
	for _, c := range s.Chunks {
		want := next[c.Stream]
		if c.Offset > want {
			s.Holes = append(s.Holes, Hole{Stream: c.Stream, From: want, To: c.Offset})
		} else if c.Offset < want {
			s.Problems = append(s.Problems, fmt.Sprintf("chunk %d overlaps earlier %s data (offset %d, expected %d)", c.Seq, c.Stream, c.Offset, want))
		}
		next[c.Stream] = c.Offset + c.Len
	}
	for _, st := range Streams {
		if n, ok := s.Bytes[st]; ok && n > next[st] {
			s.Holes = append(s.Holes, Hole{Stream: st, From: next[st], To: n})
		}
	}
	// Bytes a gap entry declares are dropped on purpose: mark holes of
	// streams with declared gaps as declared, as far as the gaps cover them.
	declared := map[string]int64{}
	for _, g := range s.Gaps {
		for st, n := range g.Bytes {
			declared[st] += n
		}
	}
	for i := range s.Holes {
		h := &s.Holes[i]
		if n := declared[h.Stream]; n >= h.To-h.From {
			h.Declared = true
			declared[h.Stream] = n - (h.To - h.From)
		}
	}
	sort.SliceStable(s.Holes, func(i, j int) bool {
		if s.Holes[i].Stream != s.Holes[j].Stream {
			return StreamIndex(s.Holes[i].Stream) < StreamIndex(s.Holes[j].Stream)
		}
		return s.Holes[i].From < s.Holes[j].From
	})
}

// Complete reports whether the recording is whole: start and end entries,
// every sequence number, no gaps, nothing unreadable.
func (s *Session) Complete() bool {
	return s.Start != nil && s.End != nil && len(s.Missing) == 0 && len(s.Gaps) == 0 &&
		len(s.Holes) == 0 && len(s.Problems) == 0 && len(s.Foreign) == 0
}

// Status is a short verdict for listings: "complete", or what is wrong.
// open says the session is still running (no end entry expected yet).
func (s *Session) Status(open bool) string {
	if s.Complete() {
		return "complete"
	}
	var why []string
	if s.Start == nil {
		why = append(why, "no start entry")
	}
	if len(s.Missing) > 0 {
		n := int64(0)
		for _, r := range s.Missing {
			n += r.To - r.From + 1
		}
		why = append(why, fmt.Sprintf("%d missing", n)+" "+map[bool]string{true: "entry", false: "entries"}[n == 1])
	}
	if len(s.Gaps) > 0 {
		why = append(why, plural(len(s.Gaps), "gap"))
	}
	if len(s.Problems) > 0 {
		why = append(why, fmt.Sprintf("%d unreadable", len(s.Problems)))
	}
	if n := s.foreignCount(); n > 0 {
		why = append(why, fmt.Sprintf("%d not from sudo", n))
	}
	if s.End == nil {
		if open && len(why) == 0 {
			return "recording"
		}
		why = append(why, "no end entry")
	}
	if len(why) == 0 && len(s.Holes) > 0 {
		why = append(why, "bytes missing")
	}
	return "gaps: " + strings.Join(why, ", ")
}

// Report lists everything that is not whole, one line per finding, for
// humans (replay prints it on stderr).
func (s *Session) Report() []string {
	var out []string
	if s.Start == nil {
		out = append(out, "the start entry (0) is not in the journal")
	}
	for _, r := range s.Missing {
		out = append(out, fmt.Sprintf("entries %s of %d are not in the journal", r, s.Entries))
	}
	for _, g := range s.Gaps {
		var parts []string
		for _, st := range Streams {
			if n := g.Bytes[st]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d bytes of %s", n, st))
			}
		}
		out = append(out, fmt.Sprintf("gap at %s: the recorder dropped %s (%s)", fmtAt(g.At), strings.Join(parts, ", "), g.Reason))
	}
	for _, h := range s.Holes {
		why := "missing entries"
		if h.Declared {
			why = "dropped, see the gap"
		}
		out = append(out, fmt.Sprintf("%s bytes %d-%d are not recorded (%s)", h.Stream, h.From, h.To-1, why))
	}
	out = append(out, s.Problems...)
	uids := make([]string, 0, len(s.Foreign))
	for uid := range s.Foreign {
		uids = append(uids, uid)
	}
	sort.Strings(uids)
	for _, uid := range uids {
		n := s.Foreign[uid]
		out = append(out, fmt.Sprintf("%d %s claiming this session sent by uid %s, not by sudo as root: ignored (forged?)",
			n, map[bool]string{true: "entry", false: "entries"}[n == 1], uid))
	}
	if s.End == nil {
		out = append(out, "the end entry is not in the journal: the session is still running, or its end was lost")
	}
	return out
}

func (s *Session) foreignCount() int {
	n := 0
	for _, c := range s.Foreign {
		n += c
	}
	return n
}

func fmtAt(d time.Duration) string { return d.Round(time.Millisecond).String() }

// Output is one write to replay.
type Output struct {
	At     time.Duration
	Stream string
	Data   []byte
	// Hole, when non-zero, is a run of bytes missing before Data.
	Hole int64
}

// Terminal returns what the user's terminal showed, write by write in time
// order: ttyout when the session had a terminal, else stdout and stderr.
func (s *Session) Terminal() []Output {
	streams := map[string]bool{TTYOut: true}
	has := false
	for _, c := range s.Chunks {
		if c.Stream == TTYOut {
			has = true
			break
		}
	}
	if !has && (s.Start == nil || s.Start.Get("JIT_TTY") == "") {
		streams = map[string]bool{StdOut: true, StdErr: true}
	}
	return s.Writes(streams)
}

// Writes returns the writes of the given streams in time order (ties in
// sequence order), marking where bytes are missing.
func (s *Session) Writes(streams map[string]bool) []Output {
	var out []Output
	next := map[string]int64{}
	for _, c := range s.Chunks {
		if !streams[c.Stream] {
			continue
		}
		hole := int64(0)
		if c.Offset > next[c.Stream] {
			hole = c.Offset - next[c.Stream]
		}
		next[c.Stream] = c.Offset + int64(len(c.Data))
		at, pos := c.At, 0
		for i, w := range c.Writes {
			at += w.Delay
			o := Output{At: at, Stream: c.Stream, Data: c.Data[pos : pos+w.Len]}
			if i == 0 {
				o.Hole = hole
			}
			pos += w.Len
			out = append(out, o)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// parseTimingAny parses JIT_TIMING without knowing the data's length.
func parseTimingAny(s string) ([]Write, int64, error) {
	total := 0
	for _, f := range strings.Split(s, " ") {
		_, n, _ := strings.Cut(f, ":")
		if l, err := strconv.Atoi(n); err == nil && l >= 0 && l < 1<<30 {
			total += l
		}
		if total > 1<<40 {
			return nil, 0, fmt.Errorf("timing: implausible total")
		}
	}
	w, err := ParseTiming(s, total)
	return w, int64(total), err
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
