package cmdmatch

import (
	"path"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	cases := []struct{ pattern, want string }{
		{"", "is empty"},
		{"   ", "is empty"},
		{"systemctl restart nginx", `command "systemctl" is not an absolute path; write it in full, such as /usr/bin/systemctl`},
		{"./systemctl", "not an absolute path"},
		{"/usr/bin/*", "wildcards in the command path are not supported"},
		{"/usr/bin/system?tl", "wildcards in the command path are not supported"},
		{"/usr/[bs]in/ls", "wildcards in the command path"},
		{"/usr/bin/../bin/systemctl", `is not clean (no //, . or .. elements); write "/usr/bin/systemctl"`},
		{"/usr//bin/ls", `write "/usr/bin/ls"`},
		{"/usr/bin/./ls", `write "/usr/bin/ls"`},
		{"/usr/bin//", `write "/usr/bin/"`},
		{"ALL /bin/ls", "ALL takes no arguments"},
		{"!/usr/bin/su", "negated commands are not supported"},
		{"sha256:abcd /usr/bin/ls", "digests"},
		{"sudoedit /etc/hosts", "sudoedit is not supported"},
		{`/usr/bin/ "" `, "directory pattern"},
		{"/usr/bin/ ls", "directory pattern"},
		{`/usr/bin/journalctl "" -f`, `"" means "no arguments" and must be the only argument`},
		{`/usr/bin/journalctl -f ""`, `must be the only argument`},
		{`/bin/echo "hello world"`, "double quotes do not quote here"},
		{`/bin/echo a"b`, "double quotes"},
		{`/bin/echo """`, "double quotes"},
		{`/bin/echo \`, "lone backslash"},
		{"/bin/echo a\nb", "control character"},
		{"/bin/echo a\\\nb", "control character"},
		{"/bin/echo [abc", "unterminated character class"},
		{"/bin/echo [z-a]", "is backwards"},
		{`"" /bin/ls`, "not \"\""},
	}
	for _, c := range cases {
		_, err := Compile(c.pattern)
		if err == nil {
			t.Errorf("Compile(%q): no error, want %q", c.pattern, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Compile(%q) = %q, want it to contain %q", c.pattern, err, c.want)
		}
		if !strings.Contains(err.Error(), "command pattern") {
			t.Errorf("Compile(%q) = %q: error must name the pattern", c.pattern, err)
		}
	}
}

func TestMatch(t *testing.T) {
	type cmd struct {
		path string
		args []string
	}
	cases := []struct {
		pattern string
		yes     []cmd
		no      []cmd
	}{
		{"/usr/bin/systemctl restart nginx",
			[]cmd{{"/usr/bin/systemctl", []string{"restart", "nginx"}}},
			[]cmd{
				{"/usr/bin/systemctl", nil},
				{"/usr/bin/systemctl", []string{"restart"}},
				{"/usr/bin/systemctl", []string{"restart", "nginx;", "sh"}},
				{"/usr/bin/systemctl", []string{"restart", "nginx; sh"}},
				{"/usr/bin/systemctl", []string{"restart", "nginx", "&&", "sh"}},
				{"/usr/bin/systemctl", []string{"restart", "nginx "}},
				{"/usr/bin/systemctl", []string{"restart", " nginx"}},
				{"/usr/bin/systemctl", []string{"restart", "nginx", ""}},
				{"/usr/bin/systemctl", []string{"", "restart", "nginx"}},
				{"/usr/bin/systemctl", []string{"restart nginx"}}, // one argument, not two
				{"/usr/bin/systemctl", []string{"restart", "nginx\x00"}},
				{"/usr/bin/systemctl", []string{"restart", "nginx\n"}},
				{"/usr/bin/systemctl", []string{"Restart", "nginx"}},
				{"/usr/bin/systemctl", []string{"restart", "nginx", "--", "-H", "evil"}},
				{"/usr/bin/../bin/systemctl", []string{"restart", "nginx"}},
				{"/usr/bin//systemctl", []string{"restart", "nginx"}},
				{"/usr/bin/./systemctl", []string{"restart", "nginx"}},
				{"/usr/bin/systemctl/", []string{"restart", "nginx"}},
				{"usr/bin/systemctl", []string{"restart", "nginx"}},
				{"systemctl", []string{"restart", "nginx"}},
				{"/bin/systemctl", []string{"restart", "nginx"}},
				{"/usr/bin/systemctl\x00", []string{"restart", "nginx"}},
				{"/usr/bin/systemct", []string{"restart", "nginx"}},
				{"/usr/bin/systemctl2", []string{"restart", "nginx"}},
				{"/tmp/usr/bin/systemctl", []string{"restart", "nginx"}},
			}},
		{"/usr/bin/systemctl",
			[]cmd{{"/usr/bin/systemctl", nil}, {"/usr/bin/systemctl", []string{"anything", "at all"}}, {"/usr/bin/systemctl", []string{""}}},
			[]cmd{{"/usr/bin/systemctl.bak", nil}, {"/usr/bin/../bin/systemctl", nil}, {"/usr/sbin/systemctl", nil}}},
		{`/usr/bin/journalctl ""`,
			[]cmd{{"/usr/bin/journalctl", nil}, {"/usr/bin/journalctl", []string{}}},
			[]cmd{{"/usr/bin/journalctl", []string{""}}, {"/usr/bin/journalctl", []string{"-f"}}}},
		{"/usr/bin/systemctl restart *",
			[]cmd{
				{"/usr/bin/systemctl", []string{"restart", "nginx"}},
				{"/usr/bin/systemctl", []string{"restart", ""}},
				{"/usr/bin/systemctl", []string{"restart", "a b"}}, // one argument with a space
				{"/usr/bin/systemctl", []string{"restart", "x/y"}},
			},
			[]cmd{
				{"/usr/bin/systemctl", []string{"restart"}},
				{"/usr/bin/systemctl", []string{"restart", "nginx", "sshd"}}, // * does not cross arguments
				{"/usr/bin/systemctl", []string{"stop", "nginx"}},
				{"/usr/bin/systemctl", []string{"restart", "../x"}},
			}},
		{"/usr/bin/systemctl restart nginx*",
			[]cmd{{"/usr/bin/systemctl", []string{"restart", "nginx"}}, {"/usr/bin/systemctl", []string{"restart", "nginx@a.service"}}},
			[]cmd{{"/usr/bin/systemctl", []string{"restart", "nginx", "sshd"}}, {"/usr/bin/systemctl", []string{"restart", "xnginx"}}}},
		{"/bin/cat /var/log/messages*",
			[]cmd{{"/bin/cat", []string{"/var/log/messages"}}, {"/bin/cat", []string{"/var/log/messages.1"}}},
			[]cmd{
				{"/bin/cat", []string{"/var/log/messages", "/etc/shadow"}}, // sudoers' documented hole
				{"/bin/cat", []string{"/var/log/messages/../../../etc/shadow"}},
				{"/bin/cat", []string{"/var/log/messages/.."}},
			}},
		{"/bin/cat /var/log/*",
			[]cmd{{"/bin/cat", []string{"/var/log/syslog"}}, {"/bin/cat", []string{"/var/log/a..b"}}, {"/bin/cat", []string{"/var/log/.../x"}}},
			[]cmd{{"/bin/cat", []string{"/var/log/../../etc/shadow"}}, {"/bin/cat", []string{"/var/log/x/../../../etc/shadow"}}}},
		{"/bin/cat /var/log/../x", // literal words match literally, dots and all
			[]cmd{{"/bin/cat", []string{"/var/log/../x"}}},
			nil},
		{"/usr/bin/kill -[0-9] ?*",
			[]cmd{{"/usr/bin/kill", []string{"-9", "123"}}, {"/usr/bin/kill", []string{"-1", "x"}}},
			[]cmd{{"/usr/bin/kill", []string{"-a", "123"}}, {"/usr/bin/kill", []string{"-9", ""}}, {"/usr/bin/kill", []string{"-10", "1"}}}},
		{"/usr/bin/kill [!-]*",
			[]cmd{{"/usr/bin/kill", []string{"123"}}},
			[]cmd{{"/usr/bin/kill", []string{"-9"}}, {"/usr/bin/kill", []string{""}}}},
		{"/usr/bin/kill [^-]*",
			[]cmd{{"/usr/bin/kill", []string{"123"}}},
			[]cmd{{"/usr/bin/kill", []string{"-9"}}}},
		{"/usr/bin/x []a] [a-] [\\]]",
			[]cmd{{"/usr/bin/x", []string{"]", "-", "]"}}, {"/usr/bin/x", []string{"a", "a", "]"}}},
			[]cmd{{"/usr/bin/x", []string{"b", "a", "]"}}}},
		{`/bin/echo hello\ world a\*b \\ \"`,
			[]cmd{{"/bin/echo", []string{"hello world", "a*b", `\`, `"`}}},
			[]cmd{{"/bin/echo", []string{"hello", "world", "a*b", `\`, `"`}}, {"/bin/echo", []string{"hello world", "axb", `\`, `"`}}}},
		{`/bin/echo a\,b\:c\=d`,
			[]cmd{{"/bin/echo", []string{"a,b:c=d"}}},
			nil},
		{"/bin/echo  \t a   b ",
			[]cmd{{"/bin/echo", []string{"a", "b"}}},
			[]cmd{{"/bin/echo", []string{"a", "", "b"}}}},
		{"/bin/echo ***",
			[]cmd{{"/bin/echo", []string{""}}, {"/bin/echo", []string{"xyz"}}},
			[]cmd{{"/bin/echo", nil}}},
		{"/bin/echo é?",
			[]cmd{{"/bin/echo", []string{"éü"}}, {"/bin/echo", []string{"éx"}}},
			[]cmd{{"/bin/echo", []string{"éxx"}}, {"/bin/echo", []string{"e\u0301x"}}}},
		{"/usr/bin/",
			[]cmd{{"/usr/bin/ls", nil}, {"/usr/bin/ls", []string{"-la", "/root"}}},
			[]cmd{{"/usr/bin", nil}, {"/usr/bin/", nil}, {"/usr/bin/sub/ls", nil}, {"/usr/sbin/ls", nil}, {"/usr/bin/../sbin/ls", nil}, {"/usr/binx/ls", nil}}},
		{"/",
			[]cmd{{"/ls", nil}},
			[]cmd{{"/", nil}, {"/usr/ls", nil}}},
		{"ALL",
			[]cmd{{"/bin/sh", nil}, {"/anything", []string{"x"}}},
			[]cmd{{"relative", nil}, {"/a/../b", nil}, {"", nil}, {"/", nil}}},
		{`/opt/My\ App/run`,
			[]cmd{{"/opt/My App/run", nil}},
			[]cmd{{"/opt/My", []string{"App/run"}}}},
	}
	for _, c := range cases {
		p, err := Compile(c.pattern)
		if err != nil {
			t.Errorf("Compile(%q): %v", c.pattern, err)
			continue
		}
		for _, y := range c.yes {
			if !p.Match(y.path, y.args) {
				t.Errorf("%q must match %q %q", c.pattern, y.path, y.args)
			}
		}
		for _, n := range c.no {
			if p.Match(n.path, n.args) {
				t.Errorf("%q must not match %q %q", c.pattern, n.path, n.args)
			}
		}
	}
	var zero Pattern
	if zero.Match("/bin/ls", nil) || zero.String() != "" {
		t.Error("the zero Pattern must match nothing")
	}
}

func TestString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"ALL", "ALL"},
		{"/usr/bin/", "/usr/bin/"},
		{"/", "/"},
		{"/usr/bin/systemctl", "/usr/bin/systemctl"},
		{"  /usr/bin/systemctl   restart\tnginx ", "/usr/bin/systemctl restart nginx"},
		{`/usr/bin/journalctl ""`, `/usr/bin/journalctl ""`},
		{`/bin/echo a\ b \* \\ \" \,`, `/bin/echo a\ b \* \\ \" ,`},
		{`/bin/echo [^a-z\]] x?*`, `/bin/echo [!a-z\]] x?*`},
		{`/opt/My\ App/run`, `/opt/My\ App/run`},
		{`/opt/a\*b/`, `/opt/a\*b/`},
	}
	for _, c := range cases {
		p, err := Compile(c.in)
		if err != nil {
			t.Errorf("Compile(%q): %v", c.in, err)
			continue
		}
		if got := p.String(); got != c.want {
			t.Errorf("Compile(%q).String() = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestShell(t *testing.T) {
	for _, s := range []string{"/bin/bash", "/usr/bin/bash", "/bin/sh", "/usr/bin/zsh", "/bin/dash", "/usr/bin/fish", "/bin/busybox"} {
		if !IsShell(s) {
			t.Errorf("IsShell(%q) = false", s)
		}
	}
	for _, s := range []string{"/usr/bin/systemctl", "/usr/bin/bashbug", "/usr/bin/ssh", "/bin/shred"} {
		if IsShell(s) {
			t.Errorf("IsShell(%q) = true", s)
		}
	}
	cases := []struct {
		pattern string
		path    string
		args    []string
		want    bool
	}{
		{"ALL", "/bin/bash", nil, true},
		{"/bin/bash", "/bin/bash", nil, true},
		{"/bin/bash", "/bin/bash", []string{"-c", "id"}, true},
		{`/bin/bash ""`, "/bin/bash", nil, true},
		{`/bin/bash ""`, "/bin/bash", []string{"-c", "id"}, false},
		{"/bin/", "/bin/bash", nil, false}, // a directory never grants a shell
		{"/usr/bin/", "/usr/bin/zsh", nil, false},
		{"/bin/bash", "/usr/bin/bash", nil, false}, // another path, even if the same file
		{"/usr/bin/systemctl", "/bin/bash", nil, false},
		{"/usr/bin/systemctl", "/usr/bin/systemctl", nil, false}, // not a shell pattern
	}
	for _, c := range cases {
		p, err := Compile(c.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.AllowsShell(c.path, c.args); got != c.want {
			t.Errorf("Compile(%q).AllowsShell(%q, %q) = %v, want %v", c.pattern, c.path, c.args, got, c.want)
		}
	}
}

// refMatch is a naive recursive glob matcher on runes used to cross-check
// matchElems; it mirrors fnmatch without flags.
func refMatch(elems []elem, s []rune) bool {
	if len(elems) == 0 {
		return len(s) == 0
	}
	e := elems[0]
	switch e.kind {
	case elemStar:
		for i := 0; i <= len(s); i++ {
			if refMatch(elems[1:], s[i:]) {
				return true
			}
		}
		return false
	case elemLit:
		l := []rune(e.lit)
		if len(s) < len(l) || string(s[:len(l)]) != e.lit {
			return false
		}
		return refMatch(elems[1:], s[len(l):])
	case elemAny:
		return len(s) > 0 && refMatch(elems[1:], s[1:])
	default:
		return len(s) > 0 && e.classMatch(s[0]) && refMatch(elems[1:], s[1:])
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{"ALL", "/usr/bin/", "/usr/bin/systemctl restart nginx", `/usr/bin/journalctl ""`, "/usr/bin/systemctl restart *", `/bin/echo a\ b [!a-z]?*`, "/x [a-]", "/x []]", "/x [\\]-a]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Compile(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "command pattern ") {
				t.Fatalf("error %q does not name the pattern", err)
			}
			return
		}
		str := p.String()
		p2, err := Compile(str)
		if err != nil {
			t.Fatalf("Compile(%q) ok, but its String %q fails: %v", s, str, err)
		}
		if p2.String() != str {
			t.Fatalf("round trip: %q → %q → %q", s, str, p2.String())
		}
		if p.Match("/a/../b", nil) || p.Match("rel", nil) || p.Match("", nil) {
			t.Fatalf("%q matched an unclean path", s)
		}
	})
}

func FuzzMatch(f *testing.F) {
	f.Add("/usr/bin/systemctl restart *", "/usr/bin/systemctl", "restart\x00nginx")
	f.Add("/bin/cat /var/log/*", "/bin/cat", "/var/log/../../etc/shadow")
	f.Add("/x [!a-c]*?", "/x", "dxy")
	f.Add("/usr/bin/", "/usr/bin/ls", "")
	f.Fuzz(func(t *testing.T, pattern, cmd, argv string) {
		p, err := Compile(pattern)
		if err != nil {
			return
		}
		var args []string
		if argv != "" {
			args = strings.Split(argv, "\x00")
		}
		got := p.Match(cmd, args)
		if !got {
			return
		}
		// Whatever matched is a clean absolute path.
		if path.Clean(cmd) != cmd || !path.IsAbs(cmd) || cmd == "/" {
			t.Fatalf("%q matched unclean path %q", pattern, cmd)
		}
		if p.kind == kindCmd && cmd != p.path {
			t.Fatalf("%q matched another command %q", pattern, cmd)
		}
		if p.kind == kindCmd && !p.anyArgs && !p.noArgs {
			if len(args) != len(p.args) {
				t.Fatalf("%q matched %d args", pattern, len(args))
			}
			for i, g := range p.args {
				if !g.literal && !refMatch(g.elems, []rune(args[i])) {
					t.Fatalf("%q: matcher and reference disagree on %q", pattern, args[i])
				}
				if g.literal && args[i] != g.lit {
					t.Fatalf("%q: literal word matched %q", pattern, args[i])
				}
			}
		}
	})
}

func TestMatcherAgainstReference(t *testing.T) {
	pats := []string{"*", "a*", "*a", "a*b*c", "?", "??*", "*?*", "[a-c]*[!x]", "*ab*ab*", "a\\*b*"}
	inputs := []string{"", "a", "ab", "abc", "aabbcc", "abab", "xaxbxc", "acx", "a*b", "abababab", "éa", "\xff\xfe"}
	for _, pat := range pats {
		p, err := Compile("/x " + pat)
		if err != nil {
			t.Fatal(err)
		}
		g := p.args[0]
		for _, in := range inputs {
			want := refMatch(g.elems, []rune(in))
			if g.literal {
				want = in == g.lit
			}
			if got := g.match(in); got != want {
				t.Errorf("%q vs %q: got %v, reference %v", pat, in, got, want)
			}
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	exact, _ := Compile("/usr/bin/systemctl restart nginx")
	glob, _ := Compile("/usr/bin/systemctl restart nginx@*.service")
	args := []string{"restart", "nginx@site-a.service"}
	b.ReportAllocs()
	for b.Loop() {
		exact.Match("/usr/bin/systemctl", args)
		glob.Match("/usr/bin/systemctl", args)
	}
}

func TestValidPath(t *testing.T) {
	for _, p := range []string{"", "/", "//", "/a/", "/a//b", "/a/./b", "/a/../b", "/a/..", "/a/.", "a", "./a", "/a\x00", "/.", "/.."} {
		if validPath(p) {
			t.Errorf("validPath(%q) = true", p)
		}
	}
	for _, p := range []string{"/a", "/a/b", "/a/.b", "/a/..b", "/a/b.", "/a b/c", "/..a/...", "/usr/bin/systemctl"} {
		if !validPath(p) {
			t.Errorf("validPath(%q) = false", p)
		}
	}
}

func FuzzValidPath(f *testing.F) {
	f.Add("/usr/bin/ls")
	f.Add("/a/../b")
	f.Fuzz(func(t *testing.T, p string) {
		want := len(p) > 1 && path.IsAbs(p) && path.Clean(p) == p && !strings.Contains(p, "\x00")
		if got := validPath(p); got != want {
			t.Fatalf("validPath(%q) = %v, want %v", p, got, want)
		}
	})
}
