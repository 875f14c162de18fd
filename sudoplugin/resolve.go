package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// errNotFound: the command does not resolve (sudo's "command not found").
var errNotFound = errors.New("command not found")

// resolveCommand turns what the user typed as argv[0] into the absolute,
// clean path that is both sent to jitd and executed (command= in
// command_info): the string checked is the string run.
//
//   - A bare name is looked up in securePath only, never in the user's PATH
//     or the current directory; the first directory holding an executable
//     regular file wins, as with sudoers.
//   - A name with a slash is taken as given: joined to the user's working
//     directory when relative, then cleaned lexically.
//
// Symlinks are not resolved, like sudoers: /usr/bin/vi stays /usr/bin/vi
// (the grant names what people type, and multi-call programs dispatch on
// their name). Because the exact checked string is what sudo executes, a
// symlink can only change what runs if its directory is writable by the
// user, which a grant for a path there already concedes. Paths under /proc
// and /dev/fd are refused outright: they resolve differently in every
// process (/proc/self/root, /proc/self/fd/N, /dev/fd/N), so what was checked
// would not be what runs.
func resolveCommand(name, cwd string) (string, error) {
	if name == "" {
		return "", errNotFound
	}
	if len(name) >= 4096 {
		return "", fmt.Errorf("command name too long")
	}
	if !strings.Contains(name, "/") {
		for _, dir := range filepath.SplitList(securePath) {
			cand := dir + "/" + name
			if isExecutable(cand) == nil {
				return cand, nil
			}
		}
		return "", errNotFound
	}
	p := name
	if !filepath.IsAbs(p) {
		if !filepath.IsAbs(cwd) {
			return "", fmt.Errorf("%s: relative command and no working directory to resolve it in", name)
		}
		p = filepath.Join(cwd, p)
	}
	p = filepath.Clean(p)
	if p == "/proc" || strings.HasPrefix(p, "/proc/") || p == "/dev/fd" || strings.HasPrefix(p, "/dev/fd/") {
		return "", fmt.Errorf("%s: commands under /proc and /dev/fd are refused (they resolve differently in every process)", p)
	}
	if err := isExecutable(p); err != nil {
		return "", err
	}
	return p, nil
}

// isExecutable reports nil when p is a regular file with an execute bit.
func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return errNotFound
		}
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", p)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s: not executable", p)
	}
	return nil
}
