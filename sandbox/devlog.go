package sandbox

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// devLogTarget is where a systemd host's /dev/log points: journald's
// syslog socket, which the sandbox's journald opens itself.
const devLogTarget = "/run/systemd/journal/dev-log"

// devLog gives the sandbox the /dev/log of a systemd host, so that sudoers,
// sshd and PAM modules send their syslog messages to journald as they do
// in production (without it syslog(3) drops them, and sudoers looks
// cheaper here than on a real host). /dev is the host's devtmpfs: the link
// goes into an overlay, and the file systems mounted below /dev (pts, shm,
// ...) are bound back into it from the /dev the overlay covers.
func (sb *Sandbox) devLog() error {
	subs, err := mountsBelow("/dev")
	if err != nil {
		return fmt.Errorf("/dev/log: %w", err)
	}
	old, err := unix.Open("/dev", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("/dev/log: open /dev: %w", err)
	}
	defer unix.Close(old)
	if err := sb.Overlay("/dev"); err != nil {
		return err
	}
	for _, sub := range subs {
		from := "/proc/self/fd/" + strconv.Itoa(old) + strings.TrimPrefix(sub, "/dev")
		if err := unix.Mount(from, sub, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("/dev/log: bind %s back: %w", sub, err)
		}
		sb.mounts = append(sb.mounts, sub)
	}
	if err := os.Symlink(devLogTarget, "/dev/log"); err != nil && !os.IsExist(err) {
		return fmt.Errorf("/dev/log: %w", err)
	}
	return nil
}

// mountsBelow lists the mount points directly below dir (a mount inside
// one of them comes along with its recursive bind).
func mountsBelow(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var all []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if strings.HasPrefix(mp, dir+"/") {
			all = append(all, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var top []string
	for _, mp := range all {
		nested := false
		for _, other := range all {
			if other != mp && strings.HasPrefix(mp, other+"/") {
				nested = true
				break
			}
		}
		if !nested && !slices.Contains(top, mp) {
			top = append(top, filepath.Clean(mp))
		}
	}
	return top, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
