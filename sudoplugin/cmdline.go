package main

import (
	"bytes"
	"strings"
)

// sudo tells a policy plugin nothing about -b (there is no "background"
// setting): sudo forks into the background after check_policy and calls
// the plugin again from the child, where Go cannot run. To refuse -b with a
// clear message before anything happens, check_policy reads sudo's own
// command line with sudo's option grammar. Should that ever miss a -b, the
// pid guard in plugin.c still refuses in the child (init_session), so the
// command never starts either way.

// sudoShortOpts is sudo 1.9's getopt string: ':' takes an argument, '::'
// an optional one attached to the option.
const sudoShortOpts = "Aa:BbC:c:D:Eeg:Hh::iKklNnPp:R:r:SsT:t:U:u:Vv"

// sudoLongOpts maps sudo's long options to whether they require an
// argument.
var sudoLongOpts = map[string]bool{
	"askpass": false, "auth-type": true, "background": false, "bell": false,
	"close-from": true, "login-class": true, "chdir": true, "chroot": true,
	"preserve-env": false, "edit": false, "group": true, "set-home": false,
	"help": false, "host": true, "login": false, "remove-timestamp": false,
	"reset-timestamp": false, "list": false, "non-interactive": false,
	"no-update": false, "preserve-groups": false, "prompt": true, "role": true,
	"stdin": false, "shell": false, "type": true, "command-timeout": true,
	"other-user": true, "user": true, "version": false, "validate": false,
}

// shortOptArg returns 0 for an option without argument, 1 for a required
// and 2 for an optional one, -1 for an unknown option.
func shortOptArg(c byte) int {
	i := strings.IndexByte(sudoShortOpts, c)
	if i < 0 || c == ':' {
		return -1
	}
	switch {
	case strings.HasPrefix(sudoShortOpts[i+1:], "::"):
		return 2
	case strings.HasPrefix(sudoShortOpts[i+1:], ":"):
		return 1
	}
	return 0
}

// longOpt resolves a long option name as getopt_long does: an exact name,
// or an unambiguous prefix.
func longOpt(name string) string {
	if _, ok := sudoLongOpts[name]; ok {
		return name
	}
	match := ""
	for opt := range sudoLongOpts {
		if strings.HasPrefix(opt, name) {
			if match != "" {
				return "" // ambiguous: sudo refuses it
			}
			match = opt
		}
	}
	return match
}

// backgroundRequested reports whether sudo's arguments (without argv[0])
// ask for -b/--background.
func backgroundRequested(args []string) bool {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return false
		}
		if strings.HasPrefix(a, "--") {
			name, _, hasValue := strings.Cut(a[2:], "=")
			opt := longOpt(name)
			if opt == "background" {
				return true
			}
			if sudoLongOpts[opt] && !hasValue {
				i++
			}
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			return false // the command (or VAR=value) starts here
		}
	cluster:
		for j := 1; j < len(a); j++ {
			if a[j] == 'b' {
				return true
			}
			switch shortOptArg(a[j]) {
			case 1:
				if j+1 == len(a) {
					i++ // the argument is the next word
				}
				break cluster
			case 2:
				break cluster
			}
		}
	}
	return false
}

// sudoArgs returns this process's arguments after argv[0].
func sudoArgs() []string {
	raw, err := readProcFile("/proc/self/cmdline")
	if err != nil {
		return nil
	}
	parts := strings.Split(string(bytes.TrimSuffix(raw, []byte{0})), "\x00")
	if len(parts) <= 1 {
		return nil
	}
	return parts[1:]
}
