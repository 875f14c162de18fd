// Package cmdmatch compiles sudoers-style command patterns and matches
// resolved commands against them.
//
// # Pattern syntax
//
//	ALL                               any command, any arguments
//	/usr/bin/systemctl                this command, any arguments
//	/usr/bin/journalctl ""            this command, no arguments
//	/usr/bin/systemctl restart nginx  this command, exactly these arguments
//	/usr/bin/systemctl restart *      this command, "restart" and one more argument
//	/usr/bin/                         any command directly in /usr/bin, any arguments
//
// A pattern is split into words on unescaped spaces and tabs. A backslash
// makes the next character literal, so `\ ` is a space inside an argument,
// `\*` a literal star and `\\` a backslash (sudoers' `\,` `\:` `\=` are
// accepted and mean the plain character). Double quotes have no quoting
// meaning; a quote anywhere except the lone `""` is refused rather than
// silently matched literally.
//
// Argument words are shell-style globs (fnmatch without FNM_PATHNAME): `*`
// matches any run of characters including '/', `?` one character, `[a-z]`,
// `[!0-9]`/`[^0-9]` a class.
//
// # How jit differs from sudoers, on purpose
//
// sudoers joins the arguments with spaces and matches the whole string, so a
// `*` also matches the spaces between arguments: sudoers' own manual warns
// that `/bin/cat /var/log/messages*` then allows `cat /var/log/messages
// /etc/shadow`, and joining also makes the single argument "restart nginx"
// indistinguishable from the two arguments "restart" "nginx". jit matches
// the argument vector as a whole but word by word: the pattern must have as
// many words as the command has arguments, each word matches exactly one
// argument, `*` never crosses from one argument into the next, and a space in
// a pattern word (written `\ `) only matches a space inside an argument.
// "Any arguments" is written as the bare path. In addition, an argument that
// contains a ".." path element never matches a word with a wildcard, which
// closes `/bin/cat /var/log/*` → `/var/log/../../etc/shadow`.
//
// Paths are compared as exact strings after the caller resolved the command
// (secure PATH, symlinks are the caller's business). A pattern path must be
// absolute and clean; wildcards in the path are refused because a glob such
// as /usr/bin/* silently grows with every package installed. Match refuses a
// command path that is not absolute and clean, so "/usr/bin/../bin/systemctl"
// can never match anything.
package cmdmatch

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

type kind uint8

const (
	kindNone kind = iota // zero Pattern: matches nothing
	kindAll
	kindDir
	kindCmd
)

// Pattern is a compiled command pattern. The zero Pattern matches nothing.
// Patterns are immutable and safe for concurrent use.
type Pattern struct {
	kind    kind
	path    string // command path, or directory without trailing slash ("/" stays "/")
	anyArgs bool
	noArgs  bool
	args    []glob
}

// glob is one compiled argument word.
type glob struct {
	elems   []elem
	literal bool   // no wildcards: compare lit directly
	lit     string // the word's literal text when literal
}

type elemKind uint8

const (
	elemLit   elemKind = iota
	elemAny            // ?
	elemStar           // *
	elemClass          // [...]
)

type elem struct {
	kind   elemKind
	lit    string
	class  []runeRange
	negate bool
}

type runeRange struct{ lo, hi rune }

// Compile parses a pattern. Errors are sentences that name the pattern and
// say what to write instead.
func Compile(pattern string) (Pattern, error) {
	if !utf8.ValidString(pattern) {
		return Pattern{}, fmt.Errorf("command pattern %q is not valid UTF-8", pattern)
	}
	words, err := split(pattern)
	if err != nil {
		return Pattern{}, err
	}
	if len(words) == 0 {
		return Pattern{}, fmt.Errorf("command pattern %q is empty; write an absolute path such as /usr/bin/systemctl, or ALL", pattern)
	}
	first := words[0]
	if first.raw == "ALL" {
		if len(words) > 1 {
			return Pattern{}, fmt.Errorf("command pattern %q: ALL takes no arguments", pattern)
		}
		return Pattern{kind: kindAll}, nil
	}
	if first.quoted {
		return Pattern{}, fmt.Errorf("command pattern %q: the command must be an absolute path, not \"\"", pattern)
	}
	p := first.text
	switch {
	case strings.HasPrefix(p, "!"):
		return Pattern{}, fmt.Errorf("command pattern %q: negated commands are not supported (a copied or renamed binary escapes them); list what is allowed instead", pattern)
	case p == "sudoedit":
		return Pattern{}, fmt.Errorf("command pattern %q: sudoedit is not supported", pattern)
	case strings.Contains(p, ":") && !strings.HasPrefix(p, "/"):
		return Pattern{}, fmt.Errorf("command pattern %q: digests (sha256:…) are not supported; write an absolute path", pattern)
	case !strings.HasPrefix(p, "/"):
		return Pattern{}, fmt.Errorf("command pattern %q: command %q is not an absolute path; write it in full, such as /usr/bin/%s", pattern, p, path.Base(p))
	case first.wild:
		return Pattern{}, fmt.Errorf("command pattern %q: wildcards in the command path are not supported; list the commands, or allow a whole directory with a trailing slash such as /usr/bin/", pattern)
	}
	isDir := strings.HasSuffix(p, "/")
	clean := path.Clean(p)
	want := clean
	if isDir && clean != "/" {
		want += "/"
	}
	if p != want {
		return Pattern{}, fmt.Errorf("command pattern %q: path %q is not clean (no //, . or .. elements); write %q", pattern, p, want)
	}
	if isDir {
		if len(words) > 1 {
			return Pattern{}, fmt.Errorf("command pattern %q: a directory pattern allows any command in it with any arguments and takes no arguments itself", pattern)
		}
		return Pattern{kind: kindDir, path: clean}, nil
	}
	pat := Pattern{kind: kindCmd, path: clean}
	rest := words[1:]
	switch {
	case len(rest) == 0:
		pat.anyArgs = true
	case rest[0].quoted:
		if len(rest) > 1 {
			return Pattern{}, fmt.Errorf("command pattern %q: \"\" means \"no arguments\" and must be the only argument", pattern)
		}
		pat.noArgs = true
	default:
		for _, w := range rest {
			if w.quoted {
				return Pattern{}, fmt.Errorf("command pattern %q: \"\" means \"no arguments\" and must be the only argument", pattern)
			}
			g, err := compileGlob(pattern, w.raw)
			if err != nil {
				return Pattern{}, err
			}
			pat.args = append(pat.args, g)
		}
	}
	return pat, nil
}

// word is one space-separated word of a pattern: raw keeps the escapes (the
// glob compiler needs them), text has them removed.
type word struct {
	raw, text string
	wild      bool // has an unescaped * ? or [
	quoted    bool // the lone ""
}

func split(pattern string) ([]word, error) {
	var words []word
	var raw, text strings.Builder
	wild, in := false, false
	flush := func() {
		if in {
			words = append(words, word{raw: raw.String(), text: text.String(), wild: wild})
		}
		raw.Reset()
		text.Reset()
		wild, in = false, false
	}
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
			continue
		case c < 0x20 || c == 0x7f:
			return nil, fmt.Errorf("command pattern %q: control character %q is not allowed; write arguments on one line", pattern, c)
		case c == '\\':
			if i+1 == len(pattern) {
				return nil, fmt.Errorf("command pattern %q ends with a lone backslash; write \\\\ for a literal backslash", pattern)
			}
			i++
			if pattern[i] < 0x20 || pattern[i] == 0x7f {
				return nil, fmt.Errorf("command pattern %q: control character %q is not allowed", pattern, pattern[i])
			}
			raw.WriteByte('\\')
			raw.WriteByte(pattern[i])
			text.WriteByte(pattern[i])
		case c == '"':
			if !in && i+1 < len(pattern) && pattern[i+1] == '"' && (i+2 == len(pattern) || pattern[i+2] == ' ' || pattern[i+2] == '\t') {
				words = append(words, word{raw: `""`, quoted: true})
				i++
				continue
			}
			return nil, fmt.Errorf("command pattern %q: double quotes do not quote here; escape a space inside an argument as \\  and a quote as \\\" (a lone \"\" means no arguments)", pattern)
		default:
			if c == '*' || c == '?' || c == '[' {
				wild = true
			}
			raw.WriteByte(c)
			text.WriteByte(c)
		}
		in = true
	}
	flush()
	return words, nil
}

func compileGlob(pattern, raw string) (glob, error) {
	var g glob
	var lit strings.Builder
	flushLit := func() {
		if lit.Len() > 0 {
			g.elems = append(g.elems, elem{kind: elemLit, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '\\':
			i++
			lit.WriteByte(raw[i])
		case '*':
			flushLit()
			// Consecutive stars mean the same as one; collapsing keeps the
			// matcher's backtracking linear.
			if n := len(g.elems); n == 0 || g.elems[n-1].kind != elemStar {
				g.elems = append(g.elems, elem{kind: elemStar})
			}
		case '?':
			flushLit()
			g.elems = append(g.elems, elem{kind: elemAny})
		case '[':
			flushLit()
			e, n, err := parseClass(pattern, raw, i)
			if err != nil {
				return glob{}, err
			}
			g.elems = append(g.elems, e)
			i = n
		default:
			lit.WriteByte(c)
		}
	}
	flushLit()
	if len(g.elems) == 1 && g.elems[0].kind == elemLit {
		g.literal, g.lit = true, g.elems[0].lit
	}
	return g, nil
}

// parseClass parses the class starting at raw[start] == '[' and returns the
// index of its closing ']'.
func parseClass(pattern, raw string, start int) (elem, int, error) {
	e := elem{kind: elemClass}
	i := start + 1
	if i < len(raw) && (raw[i] == '!' || raw[i] == '^') {
		e.negate = true
		i++
	}
	first := true
	for {
		if i >= len(raw) {
			return elem{}, 0, fmt.Errorf("command pattern %q: unterminated character class in %q; close it with ] or escape the [ as \\[", pattern, raw)
		}
		if raw[i] == ']' && !first {
			break
		}
		first = false
		lo, n := classRune(raw, i)
		i += n
		hi := lo
		if i+1 < len(raw) && raw[i] == '-' && raw[i+1] != ']' {
			hi, n = classRune(raw, i+1)
			i += 1 + n
			if hi < lo {
				return elem{}, 0, fmt.Errorf("command pattern %q: character range %q-%q in %q is backwards", pattern, lo, hi, raw)
			}
		}
		e.class = append(e.class, runeRange{lo, hi})
	}
	return e, i, nil
}

func classRune(raw string, i int) (rune, int) {
	if raw[i] == '\\' && i+1 < len(raw) {
		r, n := utf8.DecodeRuneInString(raw[i+1:])
		return r, n + 1
	}
	r, n := utf8.DecodeRuneInString(raw[i:])
	return r, n
}

// Match reports whether the resolved command path with args is allowed by
// the pattern. path must be absolute and clean; anything else never matches.
func (p Pattern) Match(cmd string, args []string) bool {
	if p.kind == kindNone || !validPath(cmd) {
		return false
	}
	switch p.kind {
	case kindAll:
		return true
	case kindDir:
		return cmd != "/" && path.Dir(cmd) == p.path
	}
	if cmd != p.path {
		return false
	}
	switch {
	case p.anyArgs:
		return true
	case p.noArgs:
		return len(args) == 0
	case len(args) != len(p.args):
		return false
	}
	for i, g := range p.args {
		if !g.match(args[i]) {
			return false
		}
	}
	return true
}

// ValidPath reports whether p is a command path Match can accept: absolute,
// clean (what path.Clean would return), not the root itself, without NUL.
// It does not allocate, since it runs on every Match.
func ValidPath(p string) bool { return validPath(p) }

func validPath(p string) bool {
	if len(p) < 2 || p[0] != '/' || p[len(p)-1] == '/' {
		return false
	}
	for i := 1; i <= len(p); {
		j := strings.IndexByte(p[i:], '/')
		if j < 0 {
			j = len(p) - i
		}
		switch p[i : i+j] {
		case "", ".", "..":
			return false
		}
		i += j + 1
	}
	return strings.IndexByte(p, 0) < 0
}

// IsAll reports whether the pattern is ALL.
func (p Pattern) IsAll() bool { return p.kind == kindAll }

// Path is the command path of a command pattern, the directory (without a
// trailing slash) of a directory pattern, and empty for ALL.
func (p Pattern) Path() string { return p.path }

// AllowsShell reports whether the pattern may start the shell at cmd with
// args: only ALL, or a pattern that names that shell explicitly, may. A
// directory pattern such as /bin/ never does, since a shell is a way out of
// any command restriction and must be granted on purpose.
func (p Pattern) AllowsShell(cmd string, args []string) bool {
	switch p.kind {
	case kindAll:
		return validPath(cmd)
	case kindCmd:
		return IsShell(p.path) && p.Match(cmd, args)
	}
	return false
}

func (g glob) match(s string) bool {
	if strings.IndexByte(s, 0) >= 0 {
		return false // exec cannot pass a NUL; someone is lying to us
	}
	if g.literal {
		return s == g.lit
	}
	if len(g.elems) == 0 {
		return s == ""
	}
	if hasDotDot(s) {
		return false
	}
	return matchElems(g.elems, s)
}

// hasDotDot reports whether s has a ".." path element.
func hasDotDot(s string) bool {
	for i := 0; ; {
		j := strings.IndexByte(s[i:], '/')
		var el string
		if j < 0 {
			el = s[i:]
		} else {
			el = s[i : i+j]
		}
		if el == ".." {
			return true
		}
		if j < 0 {
			return false
		}
		i += j + 1
	}
}

// matchElems is the classic single-backtrack-point glob matcher: on a
// mismatch it retries from the last star, one character further, which is
// O(len(elems)·len(s)) since stars never need deeper backtracking.
func matchElems(elems []elem, s string) bool {
	ei, si := 0, 0
	starE, starS := -1, 0
	for {
		if ei < len(elems) {
			e := elems[ei]
			switch e.kind {
			case elemStar:
				starE, starS = ei, si
				ei++
				continue
			case elemLit:
				if strings.HasPrefix(s[si:], e.lit) {
					ei++
					si += len(e.lit)
					continue
				}
			case elemAny:
				if si < len(s) {
					_, n := utf8.DecodeRuneInString(s[si:])
					ei++
					si += n
					continue
				}
			case elemClass:
				if si < len(s) {
					r, n := utf8.DecodeRuneInString(s[si:])
					if e.classMatch(r) {
						ei++
						si += n
						continue
					}
				}
			}
		} else if si == len(s) {
			return true
		}
		if starE < 0 || starS >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		ei, si = starE+1, starS
	}
}

func (e elem) classMatch(r rune) bool {
	in := false
	for _, rr := range e.class {
		if rr.lo <= r && r <= rr.hi {
			in = true
			break
		}
	}
	return in != e.negate
}

// String renders the pattern in canonical form; Compile(p.String()) gives
// an equal pattern.
func (p Pattern) String() string {
	switch p.kind {
	case kindNone:
		return ""
	case kindAll:
		return "ALL"
	case kindDir:
		if p.path == "/" {
			return "/"
		}
		return escape(p.path) + "/"
	}
	var b strings.Builder
	b.WriteString(escape(p.path))
	if p.noArgs {
		b.WriteString(` ""`)
	}
	for _, g := range p.args {
		b.WriteByte(' ')
		for _, e := range g.elems {
			switch e.kind {
			case elemLit:
				b.WriteString(escape(e.lit))
			case elemAny:
				b.WriteByte('?')
			case elemStar:
				b.WriteByte('*')
			case elemClass:
				b.WriteByte('[')
				if e.negate {
					b.WriteByte('!')
				}
				for _, rr := range e.class {
					writeClassRune(&b, rr.lo)
					if rr.hi != rr.lo {
						b.WriteByte('-')
						writeClassRune(&b, rr.hi)
					}
				}
				b.WriteByte(']')
			}
		}
	}
	return b.String()
}

func writeClassRune(b *strings.Builder, r rune) {
	if strings.ContainsRune(`\]-!^[ "`, r) {
		b.WriteByte('\\')
	}
	b.WriteRune(r)
}

// escape writes s so that split and compileGlob read it back literally.
func escape(s string) string {
	const special = " \t\\\"*?["
	if !strings.ContainsAny(s, special) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(special, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// shells are the base names of programs that give an interactive shell.
var shells = map[string]bool{
	"sh": true, "bash": true, "rbash": true, "dash": true, "ash": true,
	"zsh": true, "ksh": true, "ksh93": true, "mksh": true, "oksh": true, "loksh": true, "pdksh": true,
	"csh": true, "tcsh": true, "fish": true, "yash": true, "posh": true,
	"rc": true, "es": true, "xonsh": true, "elvish": true, "nu": true, "pwsh": true,
	"busybox": true, "toybox": true,
}

// IsShell reports whether path names a login shell (by base name, e.g.
// /bin/bash, /usr/bin/zsh; busybox counts since "busybox sh" is one). Use it
// to decide whether a command needs ALL or an explicit shell grant.
func IsShell(p string) bool {
	return shells[path.Base(p)]
}
