package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Error is every problem Parse found in one policy file, so that an
// administrator fixes them in one round instead of one per reload.
type Error struct {
	// Diagnostics are sorted by position. They are kept so that
	// `jitd -check-config` can print them with source snippets
	// (hcl.NewDiagnosticTextWriter).
	Diagnostics hcl.Diagnostics
}

// Error lists one problem per line as "file:line:col: summary: detail",
// the form editors and compilers use, so tools can jump to the spot.
// Past 50 problems the rest is summarised in one line: a file with that
// many is the wrong file or one mistake repeated.
func (e *Error) Error() string {
	shown := e.Diagnostics
	if len(shown) > maxReported {
		shown = shown[:maxReported]
	}
	lines := make([]string, 0, len(shown)+1)
	for _, d := range shown {
		lines = append(lines, formatDiagnostic(d))
	}
	if rest := len(e.Diagnostics) - len(shown); rest > 0 {
		lines = append(lines, formatDiagnostic(&hcl.Diagnostic{
			Summary: "More errors",
			Detail:  fmt.Sprintf("%d more errors not shown.", rest),
			Subject: e.Diagnostics[len(shown)].Subject,
		}))
	}
	return strings.Join(lines, "\n")
}

const maxReported = 50

func formatDiagnostic(d *hcl.Diagnostic) string {
	var b strings.Builder
	if d.Subject != nil {
		fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
	}
	b.WriteString(d.Summary)
	if d.Detail != "" {
		b.WriteString(": ")
		// HCL sometimes wraps details; one line per problem is the contract.
		b.WriteString(strings.Join(strings.Fields(d.Detail), " "))
	}
	return b.String()
}

func newError(diags hcl.Diagnostics) *Error {
	errs := make(hcl.Diagnostics, 0, len(diags))
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs = append(errs, d)
		}
	}
	slices.SortStableFunc(errs, func(a, b *hcl.Diagnostic) int {
		if a.Subject == nil || b.Subject == nil {
			// Position-less problems (whole file) come first.
			switch {
			case a.Subject == nil && b.Subject == nil:
				return 0
			case a.Subject == nil:
				return -1
			default:
				return 1
			}
		}
		return cmp.Or(
			cmp.Compare(a.Subject.Filename, b.Subject.Filename),
			cmp.Compare(a.Subject.Start.Byte, b.Subject.Start.Byte),
		)
	})
	return &Error{Diagnostics: errs}
}
