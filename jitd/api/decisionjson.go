package api

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// UnmarshalJSON decodes a Decision as encoding/json would from the field
// tags (unknown keys are skipped, null leaves a field as it is), without
// the reflection encoding/json does on a type's first use: the sudo plugin
// decodes one Decision per process (see checkjson.go). It accepts only
// well-formed JSON; TestDecisionJSON holds it to encoding/json.
func (d *Decision) UnmarshalJSON(b []byte) error {
	p := &jsonParser{b: b}
	p.space()
	if p.null() { // leaves d as it is
		p.space()
		if p.i != len(p.b) {
			return p.fail("the end")
		}
		return nil
	}
	if !p.eat('{') {
		return p.fail("an object")
	}
	p.space()
	if !p.eat('}') {
		for {
			p.space()
			key, err := p.str()
			if err != nil {
				return err
			}
			p.space()
			if !p.eat(':') {
				return p.fail("':'")
			}
			p.space()
			if err := d.field(p, key); err != nil {
				return err
			}
			p.space()
			if p.eat('}') {
				break
			}
			if !p.eat(',') {
				return p.fail("',' or '}'")
			}
		}
	}
	p.space()
	if p.i != len(p.b) {
		return p.fail("the end")
	}
	return nil
}

// field decodes the value of key into its field, or skips it.
func (d *Decision) field(p *jsonParser, key string) error {
	str := func(dst *string) error {
		if p.null() {
			return nil
		}
		s, err := p.str()
		*dst = s
		return err
	}
	flag := func(dst *bool) error {
		switch {
		case p.null():
		case p.literal("true"):
			*dst = true
		case p.literal("false"):
			*dst = false
		default:
			return p.fail("true or false")
		}
		return nil
	}
	text := func(dst interface{ UnmarshalText([]byte) error }) error {
		if p.null() {
			return nil
		}
		s, err := p.str()
		if err != nil {
			return err
		}
		return dst.UnmarshalText([]byte(s))
	}
	switch {
	case equalKey(key, "allow"):
		return flag(&d.Allow)
	case equalKey(key, "code"):
		return str(&d.Code)
	case equalKey(key, "reason"):
		return str(&d.Reason)
	case equalKey(key, "grant_id"):
		return str(&d.GrantID)
	case equalKey(key, "granted_by"):
		return str(&d.GrantedBy)
	case equalKey(key, "grant_reason"):
		return str(&d.GrantReason)
	case equalKey(key, "rule"):
		return str(&d.Rule)
	case equalKey(key, "breakglass"):
		return flag(&d.BreakGlass)
	case equalKey(key, "expires_at"):
		return text(&d.ExpiresAt)
	case equalKey(key, "remaining"):
		return text(&d.Remaining)
	case equalKey(key, "hint"):
		return str(&d.Hint)
	case equalKey(key, "authenticate"):
		return flag(&d.Authenticate)
	case equalKey(key, "auth_cache"):
		return text(&d.AuthCache)
	case equalKey(key, "recording_required"):
		return flag(&d.RecordingRequired)
	case equalKey(key, "record_input"):
		return flag(&d.RecordInput)
	case equalKey(key, "recording_disabled"):
		return flag(&d.RecordingDisabled)
	case equalKey(key, "session_id"):
		return str(&d.SessionID)
	case equalKey(key, "runas_groups"):
		return str(&d.RunAsGroups)
	}
	return p.skip(1)
}

// equalKey matches a key as encoding/json does: exactly, or else with
// Unicode case folding.
func equalKey(key, name string) bool {
	return key == name || bytes.EqualFold([]byte(key), []byte(name))
}

// jsonParser reads JSON from b at i.
type jsonParser struct {
	b []byte
	i int
}

var errJSONDepth = errors.New("JSON nested too deeply")

func (p *jsonParser) fail(want string) error {
	if p.i >= len(p.b) {
		return fmt.Errorf("JSON ends where %s should be", want)
	}
	return fmt.Errorf("JSON has %q at offset %d where %s should be", p.b[p.i], p.i, want)
}

func (p *jsonParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonParser) literal(s string) bool {
	if bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		p.i += len(s)
		return true
	}
	return false
}

func (p *jsonParser) null() bool { return p.literal("null") }

// str reads a string, replacing invalid UTF-8 and lone surrogates with
// U+FFFD as encoding/json does.
func (p *jsonParser) str() (string, error) {
	if !p.eat('"') {
		return "", p.fail("a string")
	}
	var out []byte
	start := p.i
	for {
		if p.i >= len(p.b) {
			return "", p.fail("'\"'")
		}
		c := p.b[p.i]
		switch {
		case c == '"':
			if out == nil && utf8.Valid(p.b[start:p.i]) {
				s := string(p.b[start:p.i])
				p.i++
				return s, nil
			}
			out = appendValidUTF8(out, p.b[start:p.i])
			p.i++
			return string(out), nil
		case c < ' ':
			return "", p.fail("a string character")
		case c == '\\':
			out = appendValidUTF8(out, p.b[start:p.i])
			p.i++
			r, err := p.escape()
			if err != nil {
				return "", err
			}
			out = utf8.AppendRune(out, r)
			start = p.i
		default:
			p.i++
		}
	}
}

// escape reads what follows a backslash.
func (p *jsonParser) escape() (rune, error) {
	if p.i >= len(p.b) {
		return 0, p.fail("an escape")
	}
	c := p.b[p.i]
	p.i++
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		r, ok := p.hex4()
		if !ok {
			return 0, p.fail("four hex digits")
		}
		if utf16.IsSurrogate(r) {
			// A pair makes one rune; anything else leaves U+FFFD, and
			// what follows is read on its own.
			if bytes.HasPrefix(p.b[p.i:], []byte(`\u`)) {
				save := p.i
				p.i += 2
				if r2, ok := p.hex4(); ok {
					if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
						return pair, nil
					}
				}
				p.i = save
			}
			return utf8.RuneError, nil
		}
		return r, nil
	}
	p.i--
	return 0, p.fail("an escape")
}

func (p *jsonParser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 16)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(v), true
}

// appendValidUTF8 appends s with each invalid byte as U+FFFD.
func appendValidUTF8(out, s []byte) []byte {
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, s[:size]...)
		}
		s = s[size:]
	}
	return out
}

// skip reads and checks any value inside depth containers (the top
// object is one).
func (p *jsonParser) skip(depth int) error {
	if p.i >= len(p.b) {
		return p.fail("a value")
	}
	switch c := p.b[p.i]; {
	case c == '"':
		_, err := p.str()
		return err
	case c == '{' || c == '[':
		if depth+1 > 10000 { // encoding/json's limit
			return errJSONDepth
		}
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		p.i++
		p.space()
		if p.eat(end) {
			return nil
		}
		for {
			p.space()
			if c == '{' {
				if _, err := p.str(); err != nil {
					return err
				}
				p.space()
				if !p.eat(':') {
					return p.fail("':'")
				}
				p.space()
			}
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			p.space()
			if p.eat(end) {
				return nil
			}
			if !p.eat(',') {
				return p.fail("',' or '" + string(end) + "'")
			}
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case p.literal("true"), p.literal("false"), p.null():
		return nil
	}
	return p.fail("a value")
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *jsonParser) number() error {
	digits := func() bool {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n > 0
	}
	p.eat('-')
	if !p.eat('0') && !digits() {
		return p.fail("a digit")
	}
	if p.eat('.') && !digits() {
		return p.fail("a digit")
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if !digits() {
			return p.fail("a digit")
		}
	}
	return nil
}
