package sandbox

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// watchedPaths are the host files and trees a broken sandbox would damage
// first: a stray write to any of them can lock administrators out.
var watchedPaths = []string{
	"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow",
	"/etc/sudo.conf", "/etc/sudoers", "/etc/sudoers.d", "/etc/pam.d",
	"/etc/ssh/sshd_config", "/etc/jitd", "/run/jitd", "/run/sudo",
	"/var/lib/jitd", "/usr/libexec/jit", "/home",
}

// hostState is what the host looked like at one moment.
type hostState struct {
	taken  time.Time
	mounts []string
	files  map[string]string // path → digest of content, mode and owner
}

func snapshotHost() (*hostState, error) {
	s := &hostState{taken: time.Now(), files: map[string]string{}}
	mounts, err := readMounts()
	if err != nil {
		return nil, err
	}
	s.mounts = mounts
	for _, root := range watchedPaths {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) && path == root {
					s.files[path] = "absent"
					return nil
				}
				return err
			}
			digest, err := digestOf(path)
			if err != nil {
				return err
			}
			s.files[path] = digest
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", root, err)
		}
	}
	return s, nil
}

// readMounts lists mount points and sources, without the ids and options
// that the kernel may legitimately renumber.
func readMounts() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		out = append(out, f[3]+" "+f[4])
	}
	sort.Strings(out)
	return out, nil
}

func digestOf(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%v %v", fi.Mode(), ownerOf(fi))
	switch {
	case fi.Mode().IsRegular():
		data, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		h.Write(data)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		h.Write([]byte(target))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// diff describes how after differs from s, and whether the run's journal
// marker reached the host's journal; "" means unchanged.
func (s *hostState) diff(after *hostState, marker string) string {
	var b strings.Builder
	if strings.Join(s.mounts, "\n") != strings.Join(after.mounts, "\n") {
		fmt.Fprintf(&b, "  mount table changed:\n%s", listDiff(s.mounts, after.mounts))
	}
	var paths []string
	for p := range s.files {
		paths = append(paths, p)
	}
	for p := range after.files {
		if _, ok := s.files[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		was, now := s.files[p], after.files[p]
		switch {
		case was == now:
		case was == "" || was == "absent":
			fmt.Fprintf(&b, "  %s appeared\n", p)
		case now == "" || now == "absent":
			fmt.Fprintf(&b, "  %s disappeared\n", p)
		default:
			fmt.Fprintf(&b, "  %s changed\n", p)
		}
	}
	if hostJournalHas(marker) {
		fmt.Fprintf(&b, "  the host's journal contains the sandbox marker %q\n", marker)
	}
	return b.String()
}

func listDiff(before, after []string) string {
	in := func(list []string, x string) bool {
		i := sort.SearchStrings(list, x)
		return i < len(list) && list[i] == x
	}
	var b strings.Builder
	for _, m := range before {
		if !in(after, m) {
			fmt.Fprintf(&b, "    - %s\n", m)
		}
	}
	for _, m := range after {
		if !in(before, m) {
			fmt.Fprintf(&b, "    + %s\n", m)
		}
	}
	return b.String()
}

// hostJournalHas reports whether the host's own journal holds marker. A host
// without a journal cannot hold it.
func hostJournalHas(marker string) bool {
	if marker == "" {
		return false
	}
	out, err := exec.Command("journalctl", "-a", "-q", "--no-pager", "-o", "cat", "--grep", marker).Output()
	if err != nil {
		// journalctl exits 1 both for "no match" and "no journal files".
		return false
	}
	return bytes.Contains(out, []byte(marker))
}
