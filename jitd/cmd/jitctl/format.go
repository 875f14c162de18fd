package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

type table struct{ w *tabwriter.Writer }

func newTable(out io.Writer, header ...string) *table {
	t := &table{w: tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		// A tab or newline in user-supplied text would break the columns.
		cells[i] = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, c)
	}
	fmt.Fprintln(t.w, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.w.Flush() }

// lifetime says where a grant is in its life, relative to now.
func (c *cli) lifetime(g *grant.Grant) string {
	switch g.State {
	case grant.StateRevoked:
		s := "revoked " + ago(c.now, g.EndedAt)
		if g.EndedBy != "" {
			s += " by " + g.EndedBy
		}
		return s
	case grant.StateExpired:
		return "expired " + ago(c.now, g.ExpiresAt)
	}
	if g.NotBefore.After(c.now.Add(time.Second)) {
		return "starts " + in(c.now, g.NotBefore) + ", ends " + in(c.now, g.ExpiresAt)
	}
	s := "expires " + in(c.now, g.ExpiresAt)
	if len(g.Windows) > 0 {
		s += " (within " + strings.Join(g.Windows, ", ")
		if g.Timezone != "" {
			s += " " + g.Timezone
		}
		s += ")"
	}
	return s
}

func in(now, t time.Time) string {
	if t.Before(now) {
		return ago(now, t)
	}
	return "in " + shortDuration(t.Sub(now))
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if t.After(now) {
		return "in " + shortDuration(t.Sub(now))
	}
	return shortDuration(now.Sub(t)) + " ago"
}

// shortDuration renders a duration the way people say it: 27m, 3h10m, 2d4h.
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Round(time.Minute)/time.Minute))
	case d < 24*time.Hour:
		d = d.Round(time.Minute)
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	default:
		d = d.Round(time.Hour)
		days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, h)
	}
}

func whatOf(kind grant.Kind, cmds []string) string {
	if kind == grant.KindLogin {
		return "login"
	}
	return strings.Join(cmds, "; ")
}

func allowsOf(g *grant.Grant) string {
	s := whatOf(g.Kind, g.Commands) + runAsOf(g.Kind, g.RunAs, g.RunAsGroup)
	if g.BreakGlass {
		s += " [break-glass]"
	}
	return s
}

// runAsOf is " as USER[:GROUP]" for a sudo grant or request that is not
// plain root, in sudoers' order.
func runAsOf(kind grant.Kind, runas, group string) string {
	if kind != grant.KindSudo {
		return ""
	}
	if runas == "" {
		runas = grant.DefaultRunAs
	}
	switch {
	case group != "":
		return " as " + runas + ":" + group
	case runas != grant.DefaultRunAs:
		return " as " + runas
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
