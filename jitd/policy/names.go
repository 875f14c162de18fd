package policy

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	// AnyPrincipal matches every user; only attributes that document it
	// accept it, because "everyone approves" is never what anyone meant.
	AnyPrincipal = "*"
	groupPrefix  = "%"
	// maxNameLen is LOGIN_NAME_MAX; longer names cannot exist on Linux.
	maxNameLen = 256
)

// checkPrincipal returns a sentence saying what is wrong with principal p,
// or "" if it is well formed. allowAny admits "*".
func checkPrincipal(p string, allowAny bool) string {
	switch {
	case p == "":
		return "a principal must not be empty; write \"name\" for a user or \"%group\" for a group"
	case p == AnyPrincipal:
		if allowAny {
			return ""
		}
		return "\"*\" (anyone) is not allowed here; name the users or %groups"
	case strings.HasPrefix(p, groupPrefix):
		if why := checkName(p[len(groupPrefix):]); why != "" {
			return fmt.Sprintf("group principal %s: %s", quote(p), why)
		}
		return ""
	default:
		if why := checkName(p); why != "" {
			return fmt.Sprintf("user principal %s: %s", quote(p), why)
		}
		return ""
	}
}

// checkName accepts the portable user and group names useradd and
// groupadd create, plus what directory services commonly add (upper case,
// "user@domain", a trailing "$" for machine accounts). Everything else is
// far more likely a typo ("alice,bob", "% ops") than a real name, and a
// typo in a security policy must not silently match nobody.
func checkName(n string) string {
	if n == "" {
		return "the name is empty"
	}
	if len(n) > maxNameLen {
		return fmt.Sprintf("the name is longer than %d bytes", maxNameLen)
	}
	body := strings.TrimSuffix(n, "$")
	if body == "" {
		return "the name is only \"$\""
	}
	for i, c := range body {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		case (c == '-' || c == '.' || c == '@') && i > 0:
		default:
			return fmt.Sprintf("character %q is not allowed (names use letters, digits, _ . - @, start with a letter, digit or _, and may end in $)", c)
		}
	}
	if strings.Trim(body, "0123456789") == "" {
		// useradd refuses numeric names too: they read like uids.
		return "a numeric name reads like a uid; use the account's name"
	}
	return ""
}

// checkServiceName accepts PAM service names, which are file names in
// /etc/pam.d.
func checkServiceName(s string) string {
	if s == "" {
		return "a PAM service name must not be empty"
	}
	if s == "." || s == ".." {
		return fmt.Sprintf("%s is not a PAM service name", quote(s))
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.', c == '+':
		default:
			return fmt.Sprintf("PAM service %s: character %q is not allowed (service names are file names in /etc/pam.d)", quote(s), c)
		}
	}
	return ""
}

// checkRuleName keeps rule names printable in audit events, journald fields
// and on the command line.
func checkRuleName(s string) string {
	if s == "" {
		return "a rule name must not be empty"
	}
	if len(s) > 64 {
		return fmt.Sprintf("rule name %s is longer than 64 characters", quote(s))
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '_' || c == '-' || c == '.') && i > 0:
		default:
			return fmt.Sprintf("rule name %s: character %q is not allowed (use letters, digits, _ . -, starting with a letter or digit)", quote(s), c)
		}
	}
	return ""
}

// maxQuoted bounds how much of a bad value an error message repeats; the
// position already says where the rest is.
const maxQuoted = 64

// quote renders user input for an error message, shortened if long.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}
