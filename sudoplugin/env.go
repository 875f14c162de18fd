package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The command's environment is built from nothing, like sudoers' env_reset:
// a few variables the user may pass (terminal and locale), the rest set by
// the plugin. Never LD_*, BASH_ENV, ENV, IFS, PYTHON*, PERL*, RUBY*,
// GODEBUG, GOMAXPROCS or anything else that changes how a root program
// runs; never the plugin's own os.Environ(), which is the user's too.

// keepVar reports whether the user's variable name may reach the command.
func keepVar(name string) bool {
	switch name {
	case "TERM", "LANG", "LANGUAGE", "COLORTERM", "DISPLAY":
		return true
	}
	return strings.HasPrefix(name, "LC_") && validName(name)
}

// checkedVar: values of these are locale or terminfo names and must not be
// paths or format strings (sudoers' env_check): a locale that is a path
// makes a root program load files the user chose.
func checkedVar(name string) bool {
	return name == "TERM" || name == "LANG" || name == "LANGUAGE" || strings.HasPrefix(name, "LC_")
}

// maxValue bounds a kept variable's value.
const maxValue = 1024

// keepValue reports why a kept variable's value is refused, or "".
func keepValue(name, value string) string {
	switch {
	case len(value) > maxValue:
		return "value too long"
	case strings.Contains(value, "("):
		// "() {" exports a shell function through any variable.
		return "value contains '('"
	case checkedVar(name) && strings.ContainsAny(value, "/%"):
		return "value contains '/' or '%'"
	}
	for _, r := range value {
		if r < 0x20 || r == 0x7f {
			return "value contains control characters"
		}
	}
	return ""
}

func validName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// target is who the command runs as.
type target struct {
	name  string
	uid   int
	gid   int
	group string // the -g group's name, "" for the user's own
	home  string
	shell string
	// groups lists the supplementary groups, when jitd's answer did not:
	// listing them goes through every NSS source (systemd's module is
	// loaded for it), about half a millisecond of sudo's time.
	groups func() []int
}

// buildEnv returns the command's environment: the kept variables of the
// user's environment (first occurrence wins, like getenv), then the
// variables the user set on sudo's command line (VAR=value, only kept
// names), then what the plugin sets. env_add with a name that may not be
// kept, or a bad value, is an error, as in sudoers.
func buildEnv(userEnv, envAdd []string, t target, inv invoker, sudoCommand string) ([]string, error) {
	vars := map[string]string{}
	for _, kv := range userEnv {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !keepVar(name) {
			continue
		}
		if _, dup := vars[name]; dup {
			continue
		}
		if keepValue(name, value) != "" {
			continue // dropped silently, like sudoers' env_check
		}
		vars[name] = value
	}
	var refused []string
	for _, kv := range envAdd {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !keepVar(name) {
			refused = append(refused, name)
			continue
		}
		if why := keepValue(name, value); why != "" {
			return nil, fmt.Errorf("you may not set %s on the command line: %s", name, why)
		}
		vars[name] = value
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("you may not set %s on the command line (only TERM, LANG, LANGUAGE, LC_*, COLORTERM and DISPLAY)", strings.Join(refused, ", "))
	}
	shell := t.shell
	if shell == "" {
		shell = "/bin/sh"
	}
	if len(sudoCommand) > 4096 {
		sudoCommand = sudoCommand[:4096]
	}
	set := map[string]string{
		"PATH":         securePath,
		"HOME":         t.home,
		"SHELL":        shell,
		"USER":         t.name,
		"LOGNAME":      t.name,
		"MAIL":         "/var/mail/" + t.name,
		"SUDO_USER":    inv.name,
		"SUDO_UID":     strconv.Itoa(inv.uid),
		"SUDO_GID":     strconv.Itoa(inv.gid),
		"SUDO_COMMAND": sudoCommand,
	}
	for k, v := range set {
		vars[k] = v
	}
	env := make([]string, 0, len(vars))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env, nil
}
