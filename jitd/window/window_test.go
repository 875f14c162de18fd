package window

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // tests must not depend on the host's zoneinfo
)

func mustParse(t testing.TB, specs []string, tz string) *Schedule {
	t.Helper()
	s, err := ParseSchedule(specs, tz)
	if err != nil {
		t.Fatalf("ParseSchedule(%q, %q): %v", specs, tz, err)
	}
	return s
}

func ts(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		specs []string
		tz    string
		want  string // substring of the error
	}{
		{[]string{"Mon-Fry 09:00-17:00"}, "", `window "Mon-Fry 09:00-17:00": unknown day "Fry" (use Mon, Tue`},
		{[]string{"Mun 09:00-17:00"}, "", `unknown day "Mun"`},
		{[]string{""}, "", `window "": empty`},
		{[]string{"   "}, "", `empty`},
		{[]string{"Mon-Fri"}, "", `missing the time range`},
		{[]string{"Mon Fri 09:00-17:00"}, "", `expected days and one time range`},
		{[]string{"Mon 9-17"}, "", `bad time "9" in "9-17"`},
		{[]string{"Mon 09:00"}, "", `bad time range "09:00"`},
		{[]string{"Mon 09:00-17:60"}, "", `minute 60 in "17:60" is out of range`},
		{[]string{"Mon 25:00-26:00"}, "", `hour 25 in "25:00" is out of range`},
		{[]string{"Mon 24:00-06:00"}, "", `cannot start at 24:00`},
		{[]string{"Mon 24:30-06:00"}, "", `hour 24 in "24:30" is out of range`},
		{[]string{"Mon 09:00-09:00"}, "", `starts and ends at the same time`},
		{[]string{"Mon,,Tue 09:00-10:00"}, "", `empty day in "Mon,,Tue"`},
		{[]string{"Mon- 09:00-10:00"}, "", `unknown day ""`},
		{[]string{"Mon 09:00-10:00,"}, "", `bad time range ""`},
		{[]string{"Mon 0900-1000"}, "", `bad time "0900"`},
		{[]string{"Mon 09:0-10:00"}, "", `bad time "09:0"`},
		{[]string{"Mon +9:00-10:00"}, "", `bad time "+9:00"`},
		{[]string{"Mon-Fri 09:00-17:00"}, "Europe/Berln", `timezone "Europe/Berln": unknown time zone`},
		{[]string{"Mon-Fri 09:00-17:00"}, "Local", `timezone "Local": name the zone explicitly`},
		{[]string{"Mon-Fri 09:00-17:00"}, "../../etc/passwd", `timezone "../../etc/passwd"`},
		{[]string{"Mon 09:00-17:00", "Tue 10:00-1:0"}, "", `window "Tue 10:00-1:0": bad time "1:0"`},
	}
	for _, c := range cases {
		_, err := ParseSchedule(c.specs, c.tz)
		if err == nil {
			t.Errorf("ParseSchedule(%q, %q): no error, want %q", c.specs, c.tz, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseSchedule(%q, %q) = %q, want it to contain %q", c.specs, c.tz, err, c.want)
		}
	}
}

func TestString(t *testing.T) {
	cases := []struct {
		specs []string
		tz    string
		want  string
	}{
		{nil, "", "always"},
		{[]string{"Mon-Fri 09:00-17:00"}, "Europe/Berlin", "Mon-Fri 09:00-17:00 Europe/Berlin"},
		{[]string{"mon-FRIDAY 9:00-17:00"}, "", "Mon-Fri 09:00-17:00 UTC"},
		{[]string{"Daily 22:00-06:00"}, "UTC", "Daily 22:00-06:00 UTC"},
		{[]string{"Mon-Sun 00:00-24:00"}, "", "Daily 00:00-24:00 UTC"},
		{[]string{"Mon,Wed,Fri 08:00-12:00"}, "", "Mon,Wed,Fri 08:00-12:00 UTC"},
		{[]string{"Fri-Mon 08:00-12:00"}, "", "Mon,Fri-Sun 08:00-12:00 UTC"},
		{[]string{"Sat,Sun 10:00-14:00"}, "", "Sat,Sun 10:00-14:00 UTC"},
		{[]string{"Weekdays 09:00-12:00,13:00-17:00"}, "", "Mon-Fri 09:00-12:00, Mon-Fri 13:00-17:00 UTC"},
		{[]string{"08:00-09:00", "Sat 10:00-14:00"}, "America/New_York", "Daily 08:00-09:00, Sat 10:00-14:00 America/New_York"},
	}
	for _, c := range cases {
		if got := mustParse(t, c.specs, c.tz).String(); got != c.want {
			t.Errorf("String(%q, %q) = %q, want %q", c.specs, c.tz, got, c.want)
		}
	}
	var nilSched *Schedule
	if nilSched.String() != "always" || !nilSched.Open(time.Now()) || !nilSched.AlwaysOpen() {
		t.Error("nil schedule must be always open")
	}
}

func TestOpen(t *testing.T) {
	cases := []struct {
		specs []string
		tz    string
		at    string
		want  bool
	}{
		// 2026-03-09 is a Monday.
		{[]string{"Mon-Fri 09:00-17:00"}, "", "2026-03-09T09:00:00Z", true},
		{[]string{"Mon-Fri 09:00-17:00"}, "", "2026-03-09T08:59:59Z", false},
		{[]string{"Mon-Fri 09:00-17:00"}, "", "2026-03-09T16:59:59Z", true},
		{[]string{"Mon-Fri 09:00-17:00"}, "", "2026-03-09T17:00:00Z", false},
		{[]string{"Mon-Fri 09:00-17:00"}, "", "2026-03-14T10:00:00Z", false}, // Saturday
		{[]string{"Mon-Fri 09:00-17:00"}, "Europe/Berlin", "2026-03-09T08:30:00Z", true},
		{[]string{"Mon-Fri 09:00-17:00"}, "Europe/Berlin", "2026-03-09T07:30:00Z", false},
		{[]string{"Mon-Fri 09:00-17:00"}, "Europe/Berlin", "2026-07-06T07:30:00Z", true}, // CEST
		{[]string{"Mon-Fri 09:00-17:00"}, "Europe/Berlin", "2026-07-06T15:00:00Z", false},
		// A window crossing midnight belongs to the day it starts.
		{[]string{"Fri 22:00-06:00"}, "", "2026-03-13T22:00:00Z", true},
		{[]string{"Fri 22:00-06:00"}, "", "2026-03-14T05:59:59Z", true},
		{[]string{"Fri 22:00-06:00"}, "", "2026-03-14T06:00:00Z", false},
		{[]string{"Fri 22:00-06:00"}, "", "2026-03-13T05:00:00Z", false}, // Friday morning: Thursday's night
		{[]string{"Fri 22:00-06:00"}, "", "2026-03-14T22:30:00Z", false}, // Saturday night
		{[]string{"Daily 22:00-06:00"}, "", "2026-03-09T03:00:00Z", true},
		{[]string{"Daily 22:00-06:00"}, "", "2026-03-09T12:00:00Z", false},
		{[]string{"Sun 22:00-06:00"}, "", "2026-03-09T01:00:00Z", true}, // Sun→Mon across the week boundary
		{[]string{"Mon-Sun 00:00-24:00"}, "Asia/Kolkata", "2026-03-09T00:00:00Z", true},
		{[]string{"Sat 10:00-14:00"}, "", "2026-03-14T13:59:00Z", true},
		{[]string{"Mon,Wed,Fri 08:00-12:00"}, "", "2026-03-10T09:00:00Z", false},
		{[]string{"Mon,Wed,Fri 08:00-12:00"}, "", "2026-03-11T09:00:00Z", true},
		{[]string{"Weekends 00:00-24:00"}, "", "2026-03-15T23:59:59Z", true},
		{[]string{"Weekends 00:00-24:00"}, "", "2026-03-16T00:00:00Z", false},
		{[]string{"12:00-13:00"}, "", "2026-03-15T12:30:00Z", true},
		{[]string{"22:00-00:00"}, "", "2026-03-15T23:59:59Z", true},
		{[]string{"22:00-00:00"}, "", "2026-03-16T00:00:00Z", false},
		{nil, "", "2026-03-16T00:00:00Z", true},
		{[]string{}, "Europe/Berlin", "2026-03-16T00:00:00Z", true},
	}
	for _, c := range cases {
		s := mustParse(t, c.specs, c.tz)
		if got := s.Open(ts(t, c.at)); got != c.want {
			t.Errorf("%s Open(%s) = %v, want %v", s, c.at, got, c.want)
		}
	}
}

// TestDST pins the documented rule: a skipped start opens at the jump, a
// repeated time means its first occurrence.
func TestDST(t *testing.T) {
	cases := []struct {
		name      string
		spec      string
		tz        string
		probe     string // a time before the window, same day
		wantOpen  string // NextOpening(probe)
		wantClose string // CloseAt(wantOpen)
	}{
		{"berlin spring-forward start in gap", "Sun 02:30-04:00", "Europe/Berlin",
			"2026-03-29T00:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"},
		{"berlin spring-forward window in gap never opens that day", "Sun 02:00-03:00", "Europe/Berlin",
			"2026-03-29T00:00:00+01:00", "2026-04-05T02:00:00+02:00", "2026-04-05T03:00:00+02:00"},
		{"berlin spring-forward end in gap", "Sun 01:00-02:30", "Europe/Berlin",
			"2026-03-29T00:00:00+01:00", "2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00"},
		{"berlin fall-back start in repeated hour", "Sun 02:30-04:00", "Europe/Berlin",
			"2026-10-25T00:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T04:00:00+01:00"},
		{"berlin fall-back window inside repeated hour opens once", "Sun 02:10-02:50", "Europe/Berlin",
			"2026-10-25T00:00:00+02:00", "2026-10-25T02:10:00+02:00", "2026-10-25T02:50:00+02:00"},
		{"new york spring-forward start in gap", "Sun 02:30-03:30", "America/New_York",
			"2026-03-08T00:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"},
		{"new york overnight across spring-forward", "Sat 22:00-06:00", "America/New_York",
			"2026-03-07T12:00:00-05:00", "2026-03-07T22:00:00-05:00", "2026-03-08T06:00:00-04:00"},
		{"new york fall-back 01:30 start", "Sun 01:30-03:00", "America/New_York",
			"2026-11-01T00:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T03:00:00-05:00"},
		{"new york fall-back 01:30 end", "Sun 00:00-01:30", "America/New_York",
			"2026-10-31T23:00:00-04:00", "2026-11-01T00:00:00-04:00", "2026-11-01T01:30:00-04:00"},
		{"new york overnight across fall-back", "Sat 22:00-06:00", "America/New_York",
			"2026-10-31T12:00:00-04:00", "2026-10-31T22:00:00-04:00", "2026-11-01T06:00:00-05:00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mustParse(t, []string{c.spec}, c.tz)
			probe, wantOpen, wantClose := ts(t, c.probe), ts(t, c.wantOpen), ts(t, c.wantClose)
			if s.Open(probe) {
				t.Fatalf("Open(%s) = true, want closed", probe)
			}
			got, ok := s.NextOpening(probe)
			if !ok || !got.Equal(wantOpen) {
				t.Fatalf("NextOpening(%s) = %s, %v; want %s", probe, got, ok, wantOpen)
			}
			if !s.Open(wantOpen) || s.Open(wantOpen.Add(-time.Second)) {
				t.Errorf("Open must switch on exactly at %s", wantOpen)
			}
			c, ok := s.CloseAt(wantOpen)
			if !ok || !c.Equal(wantClose) {
				t.Fatalf("CloseAt(%s) = %s, %v; want %s", wantOpen, c, ok, wantClose)
			}
			if s.Open(wantClose) || !s.Open(wantClose.Add(-time.Second)) {
				t.Errorf("Open must switch off exactly at %s", wantClose)
			}
		})
	}

	// In the repeated hour, the second 01:15 (EST) is after a window that
	// ended at the first 01:45 (EDT).
	s := mustParse(t, []string{"Sun 01:00-01:45"}, "America/New_York")
	if !s.Open(ts(t, "2026-11-01T01:15:00-04:00")) {
		t.Error("first 01:15 must be open")
	}
	if s.Open(ts(t, "2026-11-01T01:15:00-05:00")) {
		t.Error("second 01:15 must be closed: the window is open once")
	}
}

func TestCloseAtAndNextOpening(t *testing.T) {
	s := mustParse(t, []string{"Mon 00:00-24:00", "Tue 00:00-06:00", "Tue 05:00-07:00", "Wed 09:00-10:00"}, "")
	mon := ts(t, "2026-03-09T12:00:00Z")
	c, ok := s.CloseAt(mon)
	if want := ts(t, "2026-03-10T07:00:00Z"); !ok || !c.Equal(want) {
		t.Errorf("CloseAt merges adjacent and overlapping windows: got %s %v, want %s", c, ok, want)
	}
	n, ok := s.NextOpening(mon)
	if want := ts(t, "2026-03-11T09:00:00Z"); !ok || !n.Equal(want) {
		t.Errorf("NextOpening while open = %s %v, want %s", n, ok, want)
	}
	if _, ok := s.CloseAt(ts(t, "2026-03-11T08:00:00Z")); ok {
		t.Error("CloseAt while closed must report false")
	}
	// Strictly after: at the opening instant the window is open, so the
	// next opening is a week later.
	n, ok = s.NextOpening(ts(t, "2026-03-11T08:59:59Z"))
	if want := ts(t, "2026-03-11T09:00:00Z"); !ok || !n.Equal(want) {
		t.Errorf("NextOpening = %s, want %s", n, want)
	}

	always := mustParse(t, []string{"Mon-Sun 00:00-24:00"}, "Europe/Berlin")
	for _, at := range []string{"2026-03-29T01:30:00Z", "2026-10-25T01:30:00Z", "2026-01-01T00:00:00Z"} {
		if !always.Open(ts(t, at)) {
			t.Errorf("24/7 closed at %s", at)
		}
		if _, ok := always.CloseAt(ts(t, at)); ok {
			t.Errorf("24/7 CloseAt(%s) must report never", at)
		}
		if _, ok := always.NextOpening(ts(t, at)); ok {
			t.Errorf("24/7 NextOpening(%s) must report never", at)
		}
	}
	overnight := mustParse(t, []string{"Daily 22:00-06:00", "Daily 06:00-22:00"}, "")
	if _, ok := overnight.CloseAt(ts(t, "2026-03-09T12:00:00Z")); ok {
		t.Error("two windows covering every day never close")
	}
	var empty *Schedule
	if _, ok := empty.NextOpening(mon); ok {
		t.Error("an always-open schedule never opens")
	}
}

// TestAgainstModel compares UTC schedules (no DST) with a minute-of-week
// bitmap built straight from the spec's meaning.
func TestAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	days := []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	const week = 7 * minutesPerDay
	base := ts(t, "2026-03-08T00:00:00Z") // a Sunday
	for iter := 0; iter < 300; iter++ {
		var specs []string
		var model [week]bool
		for n := r.IntN(3) + 1; n > 0; n-- {
			a, b := r.IntN(7), r.IntN(7)
			start := r.IntN(48) * 30
			end := r.IntN(49) * 30
			if end == start {
				end = (start + 30) % minutesPerDay
			}
			specs = append(specs, days[a]+"-"+days[b]+" "+clock(start)+"-"+clock(end))
			length := end - start
			if length <= 0 {
				length += minutesPerDay
			}
			for d := a; ; d = (d + 1) % 7 {
				for m := 0; m < length; m++ {
					model[(d*minutesPerDay+start+m)%week] = true
				}
				if d == b {
					break
				}
			}
		}
		s := mustParse(t, specs, "")
		for m := 0; m < week; m += 7 {
			at := base.Add(time.Duration(m) * time.Minute)
			if got := s.Open(at); got != model[m] {
				t.Fatalf("%s: Open(%s) = %v, model says %v", s, at, got, model[m])
			}
			checkConsistency(t, s, at)
		}
	}
}

func clock(m int) string {
	return time.Date(0, 1, 1, 0, m, 0, 0, time.UTC).Format("15:04")
}

// checkConsistency verifies that Open, CloseAt and NextOpening agree at t.
func checkConsistency(t testing.TB, s *Schedule, at time.Time) {
	t.Helper()
	if s.Open(at) {
		c, ok := s.CloseAt(at)
		if ok {
			if !c.After(at) || s.Open(c) || !s.Open(c.Add(-time.Nanosecond)) {
				t.Fatalf("%s: CloseAt(%s) = %s is not the end of an open stretch", s, at, c)
			}
		}
		if n, ok := s.NextOpening(at); ok && (!n.After(at) || !s.Open(n) || s.Open(n.Add(-time.Nanosecond))) {
			t.Fatalf("%s: NextOpening(%s) while open = %s is not an opening", s, at, n)
		}
		return
	}
	if _, ok := s.CloseAt(at); ok {
		t.Fatalf("%s: CloseAt(%s) reports a close while closed", s, at)
	}
	n, ok := s.NextOpening(at)
	if !ok {
		if !s.AlwaysOpen() {
			t.Fatalf("%s: closed at %s and never opens again", s, at)
		}
		return
	}
	if !n.After(at) || !s.Open(n) || s.Open(n.Add(-time.Nanosecond)) {
		t.Fatalf("%s: NextOpening(%s) = %s is not an opening", s, at, n)
	}
}

func TestConsistencyAcrossDST(t *testing.T) {
	specs := [][]string{
		{"Sun 02:30-04:00"}, {"Sun 02:00-03:00", "Mon 09:00-10:00"}, {"Daily 22:00-06:00"},
		{"Sat-Sun 01:00-02:30"}, {"Daily 00:00-24:00", "Sun 02:00-03:00"}, {"Sun 01:15-01:45"},
	}
	for _, tz := range []string{"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Tehran"} {
		for _, sp := range specs {
			s := mustParse(t, sp, tz)
			for _, start := range []string{"2026-03-07T00:00:00Z", "2026-10-24T00:00:00Z", "2026-10-31T00:00:00Z", "2026-04-04T00:00:00Z", "2026-09-05T00:00:00Z"} {
				at := ts(t, start)
				for i := 0; i < 4*24*4; i++ {
					checkConsistency(t, s, at.Add(time.Duration(i)*15*time.Minute))
				}
			}
		}
	}
}

func TestResolveDeterministic(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	// Skipped 02:30 → the jump at 03:00 EDT; repeated 01:30 → first, EDT.
	if got := resolve(2026, 3, 8, 150, ny); !got.Equal(ts(t, "2026-03-08T03:00:00-04:00")) {
		t.Errorf("skipped time = %s", got)
	}
	if got := resolve(2026, 11, 1, 90, ny); !got.Equal(ts(t, "2026-11-01T01:30:00-04:00")) {
		t.Errorf("repeated time = %s", got)
	}
	// Normal times agree with time.Date.
	for m := 0; m < 3*minutesPerDay; m += 13 {
		want := time.Date(2026, 6, 1, 0, m, 0, 0, ny)
		if got := resolve(2026, 6, 1, m, ny); !got.Equal(want) {
			t.Fatalf("resolve(%d) = %s, want %s", m, got, want)
		}
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"Mon-Fri 09:00-17:00", "Daily 22:00-06:00", "Sat 10:00-14:00", "Mon,Wed,Fri 08:00-12:00", "Mon-Sun 00:00-24:00", "Fri-Mon 23:59-00:01", "12:00-13:00,14:00-15:00", "Sun 02:30-03:30"} {
		f.Add(s, "Europe/Berlin", int64(1774746000))
		f.Add(s, "America/New_York", int64(1793422800))
	}
	f.Add("Mon-Fry 09:00-17:00", "", int64(0))
	f.Fuzz(func(t *testing.T, spec, tz string, unix int64) {
		if tz == "Local" || strings.ContainsAny(tz, "/.") && !strings.HasPrefix(tz, "Europe/") && !strings.HasPrefix(tz, "America/") {
			tz = "UTC" // keep zone loading to the embedded database's names
		}
		s, err := ParseSchedule(strings.Split(spec, ";"), tz)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		// Round trip: String() parses back to the same schedule.
		str := s.String()
		if !s.AlwaysOpen() {
			body := strings.TrimSuffix(str, " "+s.tz)
			s2, err := ParseSchedule(strings.Split(body, ", "), s.tz)
			if err != nil || s2.String() != str {
				t.Fatalf("round trip of %q: %v, %v", str, s2, err)
			}
		}
		at := time.Unix(unix%(1<<34), 0) // years around 1970–2514
		checkConsistency(t, s, at)
	})
}

func BenchmarkOpen(b *testing.B) {
	s := mustParse(b, []string{"Mon-Fri 09:00-17:00", "Daily 22:00-06:00"}, "Europe/Berlin")
	at := ts(b, "2026-03-09T10:00:00Z")
	b.ReportAllocs()
	for b.Loop() {
		s.Open(at)
	}
}

func BenchmarkCloseAt(b *testing.B) {
	s := mustParse(b, []string{"Mon-Fri 09:00-17:00", "Daily 22:00-06:00"}, "Europe/Berlin")
	at := ts(b, "2026-03-09T10:00:00Z")
	b.ReportAllocs()
	for b.Loop() {
		s.CloseAt(at)
	}
}
