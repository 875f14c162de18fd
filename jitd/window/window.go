// Package window implements recurring time windows such as
// "Mon-Fri 09:00-17:00" in an IANA time zone, the way pam_time and sudoers
// users think of them: wall-clock times on named weekdays.
//
// # Spec syntax
//
// A spec is "DAYS TIMES" or just "TIMES" (every day):
//
//   - DAYS is a comma-separated list of days (Mon, Tue, …, Sun; full names
//     and any case are accepted) and ranges ("Mon-Fri"; a range may wrap,
//     "Fri-Mon" is Fri, Sat, Sun, Mon), or one of Daily, Weekdays, Weekends.
//   - TIMES is a comma-separated list of HH:MM-HH:MM ranges. 24:00 is allowed
//     as an end. An end earlier than the start crosses midnight
//     ("Daily 22:00-06:00"); such a window belongs to the day it starts on, so
//     "Fri 22:00-06:00" is open from Friday 22:00 to Saturday 06:00.
//
// # Daylight saving time
//
// Times are wall-clock times in the schedule's zone. Each occurrence of a
// window is turned into an instant interval by this rule, chosen so that the
// result is deterministic and never longer than the admin wrote:
//
//   - A wall time that does not exist (skipped by a spring-forward change)
//     means the instant the clocks jumped: a 02:30 start in Europe/Berlin on
//     the last Sunday of March opens at 03:00 CEST. A window lying wholly
//     inside the skipped hour does not open that day.
//   - A wall time that exists twice (repeated by a fall-back change) means its
//     first occurrence: a 01:30 start in America/New_York on the first Sunday
//     of November opens at 01:30 EDT, and a 01:30 end closes at 01:30 EDT, so
//     a window that wholly lies in the repeated hour is open once, not twice.
//
// Because this mapping never decreases as wall time grows, intervals keep
// their order and a window never ends before it starts.
//
// Schedules are immutable after parsing and safe for concurrent use. No
// method reads the clock: callers pass the time.
package window

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

const minutesPerDay = 24 * 60

// Schedule is a set of recurring windows in one time zone. A nil or empty
// Schedule is always open.
type Schedule struct {
	loc   *time.Location
	tz    string
	spans []span
}

// span is one "DAYS HH:MM-HH:MM" range. start and end are minutes after the
// local midnight of the start day; end > start, and end > minutesPerDay when
// the window crosses midnight.
type span struct {
	days  uint8 // bit d set = open on time.Weekday(d)
	start int
	end   int
}

// ParseSchedule parses window specs in the IANA zone tz (empty means UTC).
// An empty specs list gives a schedule that is always open.
func ParseSchedule(specs []string, tz string) (*Schedule, error) {
	loc, name, err := loadZone(tz)
	if err != nil {
		return nil, err
	}
	s := &Schedule{loc: loc, tz: name}
	for _, spec := range specs {
		spans, err := parseSpec(spec)
		if err != nil {
			return nil, err
		}
		s.spans = append(s.spans, spans...)
	}
	return s, nil
}

func loadZone(tz string) (*time.Location, string, error) {
	switch tz {
	case "", "UTC":
		return time.UTC, "UTC", nil
	case "Local":
		// The host's zone can change underneath a running daemon and differs
		// between hosts sharing a policy, so a window must name its zone.
		return nil, "", fmt.Errorf("timezone %q: name the zone explicitly (an IANA name such as \"Europe/Berlin\"), not the host's local zone", tz)
	}
	zoneMu.Lock()
	loc, ok := zones[tz]
	zoneMu.Unlock()
	if ok {
		return loc, tz, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, "", fmt.Errorf("timezone %q: unknown time zone (use an IANA name such as \"Europe/Berlin\" or \"America/New_York\"): %v", tz, err)
	}
	zoneMu.Lock()
	zones[tz] = loc
	zoneMu.Unlock()
	return loc, tz, nil
}

// zones caches loaded locations: a daemon compiles thousands of grants in
// the same few zones, and LoadLocation reads and parses the zone file each
// time. Only names that loaded are kept, so the cache is bounded by the tz
// database. A tzdata update on disk is seen after a restart, as with
// time.Local.
var (
	zoneMu sync.Mutex
	zones  = map[string]*time.Location{}
)

func parseSpec(spec string) ([]span, error) {
	fields := strings.Fields(spec)
	var dayField, timeField string
	switch len(fields) {
	case 0:
		return nil, fmt.Errorf("window %q: empty; write days and times such as \"Mon-Fri 09:00-17:00\"", spec)
	case 1:
		if !strings.ContainsAny(fields[0], ":") {
			return nil, fmt.Errorf("window %q: missing the time range; write days and times such as \"Mon-Fri 09:00-17:00\"", spec)
		}
		timeField = fields[0]
	case 2:
		dayField, timeField = fields[0], fields[1]
	default:
		return nil, fmt.Errorf("window %q: expected days and one time range separated by a space, such as \"Mon-Fri 09:00-17:00\" or \"Mon,Wed 08:00-12:00,13:00-17:00\"", spec)
	}
	days := uint8(0x7f)
	if dayField != "" {
		var err error
		if days, err = parseDays(spec, dayField); err != nil {
			return nil, err
		}
	}
	var spans []span
	for _, r := range strings.Split(timeField, ",") {
		start, end, err := parseTimeRange(spec, r)
		if err != nil {
			return nil, err
		}
		spans = append(spans, span{days: days, start: start, end: end})
	}
	return spans, nil
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday,
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tues": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thur": time.Thursday, "thurs": time.Thursday, "thursday": time.Thursday,
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

const dayHelp = "use Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges such as Mon-Fri, or Daily, Weekdays, Weekends"

func parseDays(spec, field string) (uint8, error) {
	var mask uint8
	for _, item := range strings.Split(field, ",") {
		switch strings.ToLower(item) {
		case "":
			return 0, fmt.Errorf("window %q: empty day in %q (%s)", spec, field, dayHelp)
		case "daily", "everyday", "all":
			mask |= 0x7f
			continue
		case "weekdays":
			mask |= 0x3e
			continue
		case "weekends":
			mask |= 1<<time.Saturday | 1<<time.Sunday
			continue
		}
		from, to, isRange := strings.Cut(item, "-")
		a, ok := dayNames[strings.ToLower(from)]
		if !ok {
			return 0, fmt.Errorf("window %q: unknown day %q (%s)", spec, from, dayHelp)
		}
		if !isRange {
			mask |= 1 << a
			continue
		}
		b, ok := dayNames[strings.ToLower(to)]
		if !ok {
			return 0, fmt.Errorf("window %q: unknown day %q (%s)", spec, to, dayHelp)
		}
		for d := a; ; d = (d + 1) % 7 {
			mask |= 1 << d
			if d == b {
				break
			}
		}
	}
	return mask, nil
}

func parseTimeRange(spec, r string) (start, end int, err error) {
	from, to, ok := strings.Cut(r, "-")
	if !ok {
		return 0, 0, fmt.Errorf("window %q: bad time range %q (write HH:MM-HH:MM, e.g. 09:00-17:00)", spec, r)
	}
	if start, err = parseClock(spec, r, from, false); err != nil {
		return 0, 0, err
	}
	if end, err = parseClock(spec, r, to, true); err != nil {
		return 0, 0, err
	}
	if start == end {
		return 0, 0, fmt.Errorf("window %q: time range %q starts and ends at the same time; for a whole day write 00:00-24:00", spec, r)
	}
	if end < start {
		end += minutesPerDay
	}
	return start, end, nil
}

func parseClock(spec, r, c string, isEnd bool) (int, error) {
	h, m, ok := strings.Cut(c, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 || !allDigits(h) || !allDigits(m) {
		return 0, fmt.Errorf("window %q: bad time %q in %q (write HH:MM-HH:MM, e.g. 09:00-17:00)", spec, c, r)
	}
	hh, _ := strconv.Atoi(h)
	mm, _ := strconv.Atoi(m)
	if mm > 59 {
		return 0, fmt.Errorf("window %q: minute %02d in %q is out of range (use 00-59)", spec, mm, c)
	}
	if hh == 24 && mm == 0 {
		if !isEnd {
			return 0, fmt.Errorf("window %q: %q cannot start at 24:00; start at 00:00 instead", spec, r)
		}
		return minutesPerDay, nil
	}
	if hh > 23 {
		return 0, fmt.Errorf("window %q: hour %d in %q is out of range (use 00-23, or 24:00 as an end)", spec, hh, c)
	}
	return hh*60 + mm, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// AlwaysOpen reports whether the schedule has no windows at all, which means
// no time restriction.
func (s *Schedule) AlwaysOpen() bool { return s == nil || len(s.spans) == 0 }

// Location is the zone the windows are in (UTC for a nil schedule).
func (s *Schedule) Location() *time.Location {
	if s == nil {
		return time.UTC
	}
	return s.loc
}

// Open reports whether t falls inside one of the windows.
func (s *Schedule) Open(t time.Time) bool {
	if s.AlwaysOpen() {
		return true
	}
	lt := t.In(s.loc)
	y, m, d := lt.Date()
	wd := lt.Weekday()
	for _, sp := range s.spans {
		// Only a window that started today, or one that started yesterday and
		// crosses midnight, can contain t.
		if sp.days&(1<<wd) != 0 {
			if from, to := s.occurrence(y, m, d, sp); !t.Before(from) && t.Before(to) {
				return true
			}
		}
		if sp.end > minutesPerDay && sp.days&(1<<((wd+6)%7)) != 0 {
			if from, to := s.occurrence(y, m, d-1, sp); !t.Before(from) && t.Before(to) {
				return true
			}
		}
	}
	return false
}

// NextOpening returns the first time strictly after t at which a window
// opens. When t is inside a window it returns the first opening after that
// window (with any overlapping or adjacent ones) closes. It returns false
// for an always-open schedule and for one that never closes or never opens.
func (s *Schedule) NextOpening(t time.Time) (time.Time, bool) {
	if s.AlwaysOpen() {
		return time.Time{}, false
	}
	if s.Open(t) {
		c, ok := s.CloseAt(t)
		if !ok {
			return time.Time{}, false
		}
		t = c
	}
	y, m, d, wd := s.localDate(t)
	// Windows starting on a later day never start before those of an
	// earlier day, so the first day with an opening after t has the answer.
	// 16 days cover a weekly pattern plus a week in which DST swallowed the
	// only occurrence.
	for off := 0; off < 16; off++ {
		day := (wd + time.Weekday(off)) % 7
		var best time.Time
		for _, sp := range s.spans {
			if sp.days&(1<<day) == 0 {
				continue
			}
			from, to := s.occurrence(y, m, d+off, sp)
			if to.After(from) && from.After(t) && (best.IsZero() || from.Before(best)) {
				best = from
			}
		}
		if !best.IsZero() {
			return best, true
		}
	}
	return time.Time{}, false
}

// CloseAt returns when the window that is open at t closes, following
// overlapping and adjacent windows (Mon 00:00-24:00 followed by Tue
// 00:00-06:00 closes Tuesday 06:00). It returns false when no window is open
// at t, and when the schedule never closes (an always-open schedule, or
// windows that together cover the whole week).
func (s *Schedule) CloseAt(t time.Time) (time.Time, bool) {
	if s.AlwaysOpen() {
		return time.Time{}, false
	}
	y, m, d, wd := s.localDate(t)
	// end grows while some window starts at or before it and ends after it;
	// starting at t, the first such window is one that contains t.
	end := t
	for off := -1; ; off++ {
		if off >= 0 && resolve(y, m, d+off, 0, s.loc).After(end) {
			break // windows of this day and later start after the chain ends
		}
		if off == 8 {
			// The chain covers more than a week without a gap; the pattern
			// repeats weekly, so it never closes.
			return time.Time{}, false
		}
		day := (wd + 7 + time.Weekday(off)) % 7
		for changed := true; changed; {
			changed = false
			for _, sp := range s.spans {
				if sp.days&(1<<day) == 0 {
					continue
				}
				from, to := s.occurrence(y, m, d+off, sp)
				if !from.After(end) && to.After(end) {
					end, changed = to, true
				}
			}
		}
	}
	if end.Equal(t) {
		return time.Time{}, false
	}
	return end, true
}

func (s *Schedule) localDate(t time.Time) (y int, m time.Month, d int, wd time.Weekday) {
	lt := t.In(s.loc)
	y, m, d = lt.Date()
	return y, m, d, lt.Weekday()
}

// occurrence is the instant interval of sp on the local date y-m-d (d may be
// out of range; it is normalised). It is empty when DST swallowed it.
func (s *Schedule) occurrence(y int, m time.Month, d int, sp span) (from, to time.Time) {
	return resolve(y, m, d, sp.start, s.loc), resolve(y, m, d, sp.end, s.loc)
}

// resolve turns a wall-clock time (minutes after midnight of y-m-d, which may
// overflow into later days) in loc into an instant, by the package's DST
// rule: a skipped time means the instant of the jump, a repeated time its
// first occurrence. time.Date leaves both cases unspecified.
func resolve(y int, m time.Month, d, minutes int, loc *time.Location) time.Time {
	if loc == time.UTC {
		return time.Date(y, m, d, 0, minutes, 0, 0, time.UTC)
	}
	wall := time.Date(y, m, d, 0, minutes, 0, 0, time.UTC).Unix()
	// Fast path: a valid reading with no zone change within a day either
	// side is the only one.
	_, off := time.Unix(wall, 0).In(loc).Zone()
	ct := time.Unix(wall-int64(off), 0).In(loc)
	if _, o := ct.Zone(); o == off {
		zs, ze := ct.ZoneBounds()
		if (zs.IsZero() || ct.Sub(zs) >= 24*time.Hour) && (ze.IsZero() || ze.Sub(ct) >= 24*time.Hour) {
			return ct
		}
	}
	// The offsets in effect a day before and after cover every offset that
	// can apply to this wall time, since zones change at most once a day.
	var best int64
	found := false
	var offBefore int
	for i, probe := range [3]int64{wall - 86400, wall, wall + 86400} {
		_, off := time.Unix(probe, 0).In(loc).Zone()
		if i == 0 {
			offBefore = off
		}
		c := wall - int64(off)
		if _, o := time.Unix(c, 0).In(loc).Zone(); o == off && (!found || c < best) {
			best, found = c, true
		}
	}
	if found {
		return time.Unix(best, 0).In(loc)
	}
	// Skipped: read with the offset from before the jump, the wall time lands
	// after it, in the zone period that the jump started.
	after := time.Unix(wall-int64(offBefore), 0).In(loc)
	if start, _ := after.ZoneBounds(); !start.IsZero() && !start.After(after) {
		return start.In(loc)
	}
	return after
}

// String renders the schedule as "Mon-Fri 09:00-17:00, Sat 10:00-14:00
// Europe/Berlin", or "always" when it has no windows.
func (s *Schedule) String() string {
	if s.AlwaysOpen() {
		return "always"
	}
	var b strings.Builder
	for i, sp := range s.spans {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(sp.String())
	}
	b.WriteByte(' ')
	b.WriteString(s.tz)
	return b.String()
}

func (sp span) String() string {
	end := sp.end
	if end > minutesPerDay {
		end -= minutesPerDay
	}
	return fmt.Sprintf("%s %02d:%02d-%02d:%02d", formatDays(sp.days), sp.start/60, sp.start%60, end/60, end%60)
}

var shortDays = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// formatDays writes days Monday first, as admins read a week, with runs of
// three or more days as ranges.
func formatDays(mask uint8) string {
	if mask == 0x7f {
		return "Daily"
	}
	order := [7]time.Weekday{1, 2, 3, 4, 5, 6, 0}
	var parts []string
	for i := 0; i < 7; {
		if mask&(1<<order[i]) == 0 {
			i++
			continue
		}
		j := i
		for j+1 < 7 && mask&(1<<order[j+1]) != 0 {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, shortDays[order[i]]+"-"+shortDays[order[j]])
		default:
			for k := i; k <= j; k++ {
				parts = append(parts, shortDays[order[k]])
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
