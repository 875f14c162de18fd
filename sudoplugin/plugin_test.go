package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBackgroundRequested(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"-b", "ls"}, true},
		{[]string{"-nb", "ls"}, true},
		{[]string{"-bn", "ls"}, true},
		{[]string{"--background", "ls"}, true},
		{[]string{"--backg", "ls"}, true},
		{[]string{"-n", "-u", "root", "-b", "ls"}, true},
		{[]string{"-ub", "ls"}, false},                // "b" is -u's argument
		{[]string{"-u", "-b", "ls"}, false},           // likewise
		{[]string{"--user", "-b", "ls"}, false},       // likewise
		{[]string{"--user=bob", "-b", "ls"}, true},    // the argument is attached
		{[]string{"-n", "ls", "-b"}, false},           // -b belongs to ls
		{[]string{"-n", "--", "-b"}, false},           // after --
		{[]string{"-n", "FOO=bar", "-b", "x"}, false}, // VAR=value starts the command
		{[]string{"-p", "prompt", "-b", "ls"}, true},  // -p takes the next word
		{[]string{"-hb", "ls"}, false},                // -h's optional argument
		{[]string{"--b", "ls"}, false},                // ambiguous (--bell, --background)
		{[]string{"-T", "5", "-Eb", "/bin/x"}, true},  // clustered after an argument
		{[]string{"-n", "-l", "-U", "bob", "id"}, false},
	} {
		if got := backgroundRequested(c.args); got != c.want {
			t.Errorf("backgroundRequested(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

func TestResolveCommand(t *testing.T) {
	plain := t.TempDir() + "/plain"
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, cwd, want, err string
	}{
		{"id", "/tmp", "/usr/bin/id", ""},
		{"/usr/bin/id", "/tmp", "/usr/bin/id", ""},
		{"/usr/bin/../bin/id", "/tmp", "/usr/bin/id", ""},
		{"../usr/bin/id", "/tmp", "/usr/bin/id", ""},
		{"./id", "/usr/bin", "/usr/bin/id", ""},
		{"no-such-command-jit", "/tmp", "", "command not found"},
		{"/usr/bin/no-such-command-jit", "/tmp", "", "command not found"},
		{plain, "/", "", "not executable"},
		{"/usr/bin", "/", "", "not a regular file"},
		{"/proc/self/exe", "/", "", "/proc"},
		{"/dev/fd/3", "/", "", "/proc and /dev/fd"},
		{"./id", "", "", "no working directory"},
		{"", "/", "", "command not found"},
	} {
		got, err := resolveCommand(c.name, c.cwd)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("resolveCommand(%q, %q) = %q, %v; want error %q", c.name, c.cwd, got, err, c.err)
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("resolveCommand(%q, %q) = %q, %v; want %q", c.name, c.cwd, got, err, c.want)
		}
	}
}

func TestBuildEnv(t *testing.T) {
	userEnv := []string{
		"TERM=xterm", "TERM=vt100", "LANG=de_DE.UTF-8", "LC_ALL=../../tmp/evil", "LC_TIME=C",
		"LD_PRELOAD=/x.so", "BASH_ENV=/x", "GODEBUG=x=1", "PATH=/home/u/bin", "DISPLAY=:0",
		"COLORTERM=() { :; }; id", "HOME=/home/u", "SUDO_USER=mallory", "NOEQUALS",
	}
	tg := target{name: "root", uid: 0, gid: 0, home: "/root", shell: "/bin/bash"}
	inv := invoker{name: "alice", uid: 1000, gid: 1000}
	env, err := buildEnv(userEnv, nil, tg, inv, "/usr/bin/env")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"DISPLAY=:0", "HOME=/root", "LANG=de_DE.UTF-8", "LC_TIME=C", "LOGNAME=root", "MAIL=/var/mail/root",
		"PATH=" + securePath, "SHELL=/bin/bash", "SUDO_COMMAND=/usr/bin/env", "SUDO_GID=1000", "SUDO_UID=1000",
		"SUDO_USER=alice", "TERM=xterm", "USER=root",
	}
	if !slices.Equal(env, want) {
		t.Errorf("env:\n got %q\nwant %q", env, want)
	}
	if _, err := buildEnv(nil, []string{"LD_PRELOAD=/x.so"}, tg, inv, "x"); err == nil || !strings.Contains(err.Error(), "LD_PRELOAD") {
		t.Errorf("env_add LD_PRELOAD: %v", err)
	}
	if _, err := buildEnv(nil, []string{"LANG=/tmp/x"}, tg, inv, "x"); err == nil {
		t.Errorf("env_add LANG with a path: no error")
	}
	env, err = buildEnv(nil, []string{"LC_TIME=C.UTF-8"}, tg, inv, "x")
	if err != nil || !slices.Contains(env, "LC_TIME=C.UTF-8") {
		t.Errorf("env_add LC_TIME: %q %v", env, err)
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		45 * time.Second: "45s", 27 * time.Minute: "27m", 65 * time.Minute: "1h5m", 2 * time.Hour: "2h",
		50 * time.Hour: "2d2h", -time.Second: "0s",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParseOptions(t *testing.T) {
	o, warn := parseOptions([]string{"socket=/run/x.sock", "timeout=500ms", "breakglass_group=sre", "bogus=1", "timeout=abc", "socket=relative"})
	if o.socket != "/run/x.sock" || o.timeout != 500*time.Millisecond || o.breakglassGroup != "sre" {
		t.Errorf("options: %+v", o)
	}
	if len(warn) != 3 {
		t.Errorf("want 3 warnings, got %q", warn)
	}
	o, _ = parseOptions([]string{"timeout=3"})
	if o.timeout != 3*time.Second {
		t.Errorf("timeout=3: %v", o.timeout)
	}
}

func TestParseGIDs(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
		ok   bool
	}{
		{"0", []int{0}, true},
		{"0,4,27", []int{0, 4, 27}, true},
		{"4294967295", []int{4294967295}, true},
		{"", nil, false},
		{"0,", nil, false},
		{"0,,4", nil, false},
		{"-1", nil, false},
		{"4294967296", nil, false},
		{" 0", nil, false},
		{"0x10", nil, false},
	} {
		got, ok := parseGIDs(c.in)
		if ok != c.ok || !slices.Equal(got, c.want) {
			t.Errorf("parseGIDs(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
