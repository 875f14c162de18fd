package api

import (
	"strconv"
	"unicode/utf8"
)

// The sudo plugin sends one CheckRequest per process, and encoding/json
// builds its encoder for a type by reflection on first use: 0.15–0.3 ms of
// every sudo command, far more than the encoding itself. So CheckRequest,
// SessionSpec and SessionEnd (close's request) encode themselves, exactly
// as encoding/json does from their field tags; TestCheckRequestJSON and
// TestSessionEndJSON hold them to its output byte for byte, for every
// field. Decision decodes itself likewise (decisionjson.go).

// MarshalJSON encodes r as encoding/json would from the field tags.
func (r CheckRequest) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, `{"user":`...)
	b = appendJSONString(b, r.User)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(r.Kind))
	b = appendStringField(b, "runas", r.RunAs)
	b = appendStringField(b, "runas_group", r.RunAsGroup)
	b = appendStringField(b, "command", r.Command)
	if len(r.Args) > 0 {
		b = append(b, `,"args":[`...)
		for i, a := range r.Args {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, a)
		}
		b = append(b, ']')
	}
	if r.Shell {
		b = append(b, `,"shell":true`...)
	}
	b = appendStringField(b, "service", r.Service)
	b = appendStringField(b, "tty", r.TTY)
	b = appendStringField(b, "cwd", r.Cwd)
	b = appendStringField(b, "rhost", r.RHost)
	if r.DryRun {
		b = append(b, `,"dry_run":true`...)
	}
	if r.Session != nil {
		b = append(b, `,"session":`...)
		b = r.Session.appendJSON(b)
	}
	return append(b, '}'), nil
}

// MarshalJSON encodes s as encoding/json would from the field tags.
func (s SessionSpec) MarshalJSON() ([]byte, error) {
	return s.appendJSON(make([]byte, 0, 160)), nil
}

func (s *SessionSpec) appendJSON(b []byte) []byte {
	b = append(b, `{"kind":`...)
	b = appendJSONString(b, string(s.Kind))
	b = append(b, `,"user":`...)
	b = appendJSONString(b, s.User)
	b = appendStringField(b, "grant_id", s.GrantID)
	b = appendStringField(b, "rule", s.Rule)
	b = appendStringField(b, "runas", s.RunAs)
	b = appendStringField(b, "command", s.Command)
	b = appendStringField(b, "tty", s.TTY)
	b = appendStringField(b, "service", s.Service)
	b = appendStringField(b, "rhost", s.RHost)
	b = append(b, `,"pid":`...)
	b = strconv.AppendInt(b, int64(s.PID), 10)
	if s.AuditSession != 0 {
		b = append(b, `,"audit_session":`...)
		b = strconv.AppendUint(b, uint64(s.AuditSession), 10)
	}
	return append(b, '}')
}

// MarshalJSON encodes e as encoding/json would from the field tags.
func (e SessionEnd) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 64)
	b = append(b, '{')
	if e.ExitStatus != nil {
		b = append(b, `"exit_status":`...)
		b = strconv.AppendInt(b, int64(*e.ExitStatus), 10)
	}
	if e.Reason != "" {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, `"reason":`...)
		b = appendJSONString(b, e.Reason)
	}
	return append(b, '}'), nil
}

// appendStringField appends ,"name":value for an omitempty string field
// that is set.
func appendStringField(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendJSONString(b, v)
}

// appendJSONString quotes s as json.Marshal does: HTML-safe, invalid UTF-8
// as U+FFFD, and the JavaScript line separators escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
