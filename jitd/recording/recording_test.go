package recording

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

// entry is a journal entry for tests.
type entry map[string]string

func (e entry) Get(f string) string { return e[f] }
func (e entry) Bytes(f string) []byte {
	if v, ok := e[f]; ok {
		return []byte(v)
	}
	return nil
}

// writer builds a recording the way jit_io does.
type writer struct {
	id      string
	seq     int64
	offsets map[string]int64
	out     []Fields
}

func newWriter(id string) *writer {
	w := &writer{id: id, offsets: map[string]int64{}}
	w.add(entry{FieldEvent: EventStart, "JIT_TTY": "/dev/pts/1"})
	return w
}

func (w *writer) add(e entry) {
	e[FieldSenderUID] = "0"
	e[FieldSession] = w.id
	e[FieldSeq] = strconv.FormatInt(w.seq, 10)
	w.seq++
	w.out = append(w.out, e)
}

// chunk records writes (at µs, data) of stream as one chunk.
func (w *writer) chunk(stream string, atUS []int64, data []string) {
	var timing []byte
	var all string
	for i, d := range data {
		delay := int64(0)
		if i > 0 {
			delay = atUS[i] - atUS[i-1]
		}
		timing = AppendTiming(timing, delay, len(d))
		all += d
	}
	w.add(entry{FieldEvent: EventChunk, FieldStream: stream, FieldOffset: strconv.FormatInt(w.offsets[stream], 10),
		FieldTime: strconv.FormatInt(atUS[0], 10), FieldTiming: string(timing), FieldData: all})
	w.offsets[stream] += int64(len(all))
}

func (w *writer) end() {
	e := entry{FieldEvent: EventEnd, FieldEntries: strconv.FormatInt(w.seq+1, 10), FieldStatus: "0"}
	for st, n := range w.offsets {
		e[BytesField(st)] = strconv.FormatInt(n, 10)
	}
	w.add(e)
}

func TestTimingRoundTrip(t *testing.T) {
	ws := []Write{{0, 3}, {1500 * time.Microsecond, 0}, {2 * time.Second, 10}}
	s := EncodeTiming(ws)
	if s != "0:3 1500:0 2000000:10" {
		t.Fatalf("encoded %q", s)
	}
	got, err := ParseTiming(s, 13)
	if err != nil || len(got) != 3 || got[2] != ws[2] || got[1] != ws[1] {
		t.Fatalf("parsed %v, %v", got, err)
	}
	for _, bad := range []string{"1:2 x", "-1:3", "1:-3", "1:14", "0:3 0:3", ":3", "1:"} {
		if _, err := ParseTiming(bad, 6); err == nil && bad != "0:3 0:3" {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseTiming("0:5", 6); err == nil {
		t.Error("short timing accepted")
	}
}

func TestCompleteRecording(t *testing.T) {
	w := newWriter("s-1")
	w.chunk(TTYOut, []int64{100, 200, 1200}, []string{"ab", "c\x00\n", "d"})
	w.chunk(TTYIn, []int64{150}, []string{"x"})
	w.add(entry{FieldEvent: EventWinsize, FieldTime: "300", FieldLines: "40", FieldCols: "120"})
	w.chunk(TTYOut, []int64{2000000}, []string{"\xffend"})
	w.end()
	s, err := Assemble("s-1", w.out)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Complete() || s.Status(false) != "complete" || len(s.Report()) != 0 {
		t.Fatalf("want complete, got %s: %v", s.Status(false), s.Report())
	}
	var got bytes.Buffer
	var at []time.Duration
	for _, o := range s.Terminal() {
		got.Write(o.Data)
		at = append(at, o.At)
	}
	if got.String() != "abc\x00\nd\xffend" {
		t.Fatalf("terminal output %q", got.String())
	}
	want := []time.Duration{100 * time.Microsecond, 200 * time.Microsecond, 1200 * time.Microsecond, 2 * time.Second}
	for i := range want {
		if at[i] != want[i] {
			t.Fatalf("times %v, want %v", at, want)
		}
	}
	if len(s.Events) != 1 || s.Events[0].Cols != 120 {
		t.Errorf("events %+v", s.Events)
	}
	// The index form (no data) judges the same.
	var index []Fields
	for _, e := range w.out {
		c := entry{}
		for k, v := range e.(entry) {
			if k != FieldData {
				c[k] = v
			}
		}
		index = append(index, c)
	}
	if s, err := AssembleIndex("s-1", index); err != nil || !s.Complete() {
		t.Fatalf("index: %v %v", err, s.Report())
	}
	// Interleaving across streams follows time, not sequence numbers.
	both := s.Writes(map[string]bool{TTYOut: true, TTYIn: true})
	if string(both[1].Data) != "x" {
		t.Errorf("ttyin at 150µs should come second: %+v", both)
	}
}

func TestMissingEntriesAreReported(t *testing.T) {
	w := newWriter("s-2")
	w.chunk(TTYOut, []int64{0}, []string{"one"})
	w.chunk(TTYOut, []int64{10}, []string{"two"})
	w.chunk(TTYOut, []int64{20}, []string{"three"})
	w.end()
	entries := append([]Fields{}, w.out[:2]...)
	entries = append(entries, w.out[3:]...) // drop entry 2 ("two")
	s, err := Assemble("s-2", entries)
	if err != nil {
		t.Fatal(err)
	}
	if s.Complete() || len(s.Missing) != 1 || s.Missing[0] != (Range{2, 2}) {
		t.Fatalf("missing %v", s.Missing)
	}
	if len(s.Holes) != 1 || s.Holes[0] != (Hole{Stream: TTYOut, From: 3, To: 6}) {
		t.Fatalf("holes %+v", s.Holes)
	}
	out := s.Terminal()
	if len(out) != 2 || out[1].Hole != 3 {
		t.Fatalf("the hole is not marked in the output: %+v", out)
	}
	if !strings.Contains(strings.Join(s.Report(), "\n"), "entries 2 of 5") {
		t.Errorf("report: %v", s.Report())
	}
	// The end entry lost: the trailing part is unknown, and said so.
	s, _ = Assemble("s-2", w.out[:3])
	if s.Complete() || !strings.Contains(s.Status(false), "no end entry") || s.Status(true) != "recording" {
		t.Errorf("without end: %q / %q", s.Status(false), s.Status(true))
	}
	if _, err := Assemble("other", w.out); err != ErrNoRecording {
		t.Errorf("another session's entries: %v", err)
	}
}

// A local user can send entries with the recording's fields to journald;
// only the sender's uid, which journald adds, tells them apart.
func TestForgedEntriesAreIgnored(t *testing.T) {
	w := newWriter("s-5")
	w.chunk(TTYOut, []int64{0}, []string{"real"})
	w.chunk(TTYOut, []int64{10}, []string{"lost"})
	w.end()
	genuine := []Fields{w.out[0], w.out[1], w.out[3]} // entry 2 is lost
	forge := func(uid string, seq int64, data string) entry {
		e := entry{FieldEvent: EventChunk, FieldSession: "s-5", FieldSeq: strconv.FormatInt(seq, 10),
			FieldStream: TTYOut, FieldOffset: "4", FieldTime: "10", FieldTiming: "0:4", FieldData: data}
		if uid != "" {
			e[FieldSenderUID] = uid
		}
		return e
	}
	// A forged entry 2 fills the hole; a forged entry 1 comes first, so
	// that it would win over the real one; one lacks the field.
	entries := append([]Fields{forge("1001", 1, "fake"), forge("1001", 2, "fake"), forge("", 2, "fake")}, genuine...)
	s, err := Assemble("s-5", entries)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Missing) != 1 || s.Missing[0] != (Range{2, 2}) {
		t.Errorf("a forged entry filled the hole: missing %v", s.Missing)
	}
	var got bytes.Buffer
	for _, o := range s.Terminal() {
		got.Write(o.Data)
	}
	if got.String() != "real" {
		t.Errorf("terminal output %q, want only the real chunk", got.String())
	}
	if s.Foreign["1001"] != 2 || s.Foreign["unknown"] != 1 || s.Complete() {
		t.Errorf("foreign %v, complete %v", s.Foreign, s.Complete())
	}
	report := strings.Join(s.Report(), "\n")
	if !strings.Contains(report, "2 entries claiming this session sent by uid 1001") || !strings.Contains(s.Status(false), "3 not from sudo") {
		t.Errorf("report %q, status %q", report, s.Status(false))
	}
	// A complete recording with a forged extra is no longer complete.
	all := append([]Fields{forge("1001", 5, "more")}, w.out...)
	if s, _ := Assemble("s-5", all); s.Complete() || string(s.Chunks[1].Data) != "lost" {
		t.Errorf("complete with a forged entry: %v", s.Report())
	}
}

func TestDeclaredGap(t *testing.T) {
	w := newWriter("s-3")
	w.chunk(StdOut, []int64{0}, []string{"aaaa"})
	w.offsets[StdOut] += 100 // dropped by the writer
	w.add(entry{FieldEvent: EventGap, FieldTime: "5", GapField(StdOut): "100", FieldReason: "journald was not reachable"})
	w.chunk(StdOut, []int64{50}, []string{"bb"})
	w.end()
	s, err := Assemble("s-3", w.out)
	if err != nil {
		t.Fatal(err)
	}
	if s.Complete() || len(s.Missing) != 0 || len(s.Gaps) != 1 || len(s.Holes) != 1 || !s.Holes[0].Declared {
		t.Fatalf("gap: %+v %+v", s.Gaps, s.Holes)
	}
	if !strings.HasPrefix(s.Status(false), "gaps:") {
		t.Errorf("status %q", s.Status(false))
	}
}

func FuzzParseTiming(f *testing.F) {
	f.Add("0:3 1500:0 2000000:10", 13)
	f.Add("", 0)
	f.Add("1:2:3", 2)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<20 {
			return
		}
		ws, err := ParseTiming(s, n)
		if err != nil {
			return
		}
		total := 0
		for _, w := range ws {
			if w.Len < 0 || w.Delay < 0 {
				t.Fatalf("negative write %+v", w)
			}
			total += w.Len
		}
		if total != n {
			t.Fatalf("writes add up to %d, not %d", total, n)
		}
		// What parses re-encodes to something that parses the same.
		again, err := ParseTiming(EncodeTiming(ws), n)
		if err != nil || len(again) != len(ws) {
			t.Fatalf("re-encoding: %v", err)
		}
	})
}

// FuzzAssemble feeds arbitrary entries: never a panic, and the verdict is
// consistent with what was found.
func FuzzAssemble(f *testing.F) {
	f.Add("0", EventStart, "ttyout", "0", "0", "0:1", "x", "2")
	f.Add("1", EventChunk, "ttyout", "5", "10", "0:1 3:2", "abc", "9")
	f.Add("7", EventEnd, "", "", "", "", "", "8")
	f.Add("999999999998", EventEnd, "", "", "", "", "", "999999999999")
	f.Fuzz(func(t *testing.T, seq, event, stream, offset, at, timing, data, entries string) {
		w := newWriter("s")
		w.chunk(TTYOut, []int64{1}, []string{"hello"})
		e := entry{FieldSession: "s", FieldSeq: seq, FieldEvent: event, FieldStream: stream, FieldOffset: offset,
			FieldTime: at, FieldTiming: timing, FieldData: data, FieldEntries: entries, GapField(stream): offset}
		s, err := Assemble("s", append(w.out, e))
		if err != nil {
			t.Fatal(err)
		}
		if s.Complete() && (len(s.Missing) > 0 || s.End == nil) {
			t.Fatal("complete with missing entries")
		}
		for _, r := range s.Missing {
			if r.From < 0 || r.To >= s.Entries || r.From > r.To {
				t.Fatalf("bad missing range %v of %d", r, s.Entries)
			}
		}
		_ = s.Report()
		for _, o := range s.Terminal() {
			if o.At < 0 {
				t.Fatal("negative time")
			}
		}
	})
}
