// Package enforce ends what a grant allowed when the grant ends: the sudo
// processes and login sessions registered under it, and everything they
// started. It also writes the warnings users see on their terminal before
// the end.
//
// A process is named by its pid and its start time (field 22 of
// /proc/PID/stat): a pid that the kernel gave to another process since the
// session was registered has another start time and is never signalled.
package enforce

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Proc is one process as /proc shows it.
type Proc struct {
	PID       int
	PPID      int
	Start     uint64 // clock ticks since boot
	State     byte   // R, S, D, Z, …
	SID       int    // session id (setsid), not the audit session
	SessionID uint32 // audit session id (/proc/PID/sessionid); 0 unknown
}

// errGone says a process no longer exists.
var errGone = errors.New("process is gone")

// Read returns the process with this pid.
func Read(pid int) (Proc, error) {
	return readProc("/proc", pid)
}

// StartTime returns Proc.Start of process pid. It reads /proc/PID/stat
// alone, with plain system calls: jitd does this for every sudo command,
// while sudo waits.
func StartTime(pid int) (uint64, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return 0, errGone
		}
		return 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var buf [1024]byte // a stat line is a few hundred bytes
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.ESRCH) {
			return 0, errGone
		}
		if err != nil {
			return 0, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	if n == len(buf) {
		p, err := readProc("/proc", pid) // an unusually long line
		return p.Start, err
	}
	p, err := parseStat(string(buf[:n]))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return p.Start, nil
}

func readProc(root string, pid int) (Proc, error) {
	raw, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "stat"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return Proc{}, errGone
		}
		return Proc{}, err
	}
	p, err := parseStat(string(raw))
	if err != nil {
		return Proc{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	p.PID = pid
	if sid, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "sessionid")); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(sid)), 10, 32); err == nil && v != 0xffffffff {
			p.SessionID = uint32(v)
		}
	}
	return p, nil
}

// parseStat reads state, ppid and start time from a /proc/PID/stat line.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(s string) (Proc, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Proc{}, errors.New("no command name")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return Proc{}, errors.New("too few fields")
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Proc{}, fmt.Errorf("ppid: %w", err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return Proc{}, fmt.Errorf("start time: %w", err)
	}
	sid, err := strconv.Atoi(f[3])
	if err != nil {
		return Proc{}, fmt.Errorf("session: %w", err)
	}
	return Proc{PPID: ppid, SID: sid, Start: start, State: f[0][0]}, nil
}

// Alive reports whether pid still names the process that started at start.
// A zombie has finished: it counts as gone.
func Alive(pid int, start uint64) bool {
	p, err := Read(pid)
	return err == nil && p.Start == start && p.State != 'Z'
}

// All lists every process.
func All() ([]Proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	out := make([]Proc, 0, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := Read(pid)
		if err != nil {
			continue // it ended while we looked
		}
		out = append(out, p)
	}
	return out, nil
}

// Tree returns root and all its descendants, root first. Processes that
// started before root are left out: a child cannot be older than its parent,
// so such a "child" is a reused pid.
func Tree(procs []Proc, root Proc) []Proc {
	children := map[int][]Proc{}
	for _, p := range procs {
		children[p.PPID] = append(children[p.PPID], p)
	}
	out := []Proc{root}
	for i := 0; i < len(out); i++ {
		for _, c := range children[out[i].PID] {
			if c.PID != out[i].PID && c.Start >= out[i].Start {
				out = append(out, c)
			}
		}
	}
	return out
}

// InSession returns the processes of an audit session.
func InSession(procs []Proc, id uint32) []Proc {
	if id == 0 {
		return nil
	}
	var out []Proc
	for _, p := range procs {
		if p.SessionID == id {
			out = append(out, p)
		}
	}
	return out
}

// signal sends sig to p unless its pid now names another process.
func signal(p Proc, sig syscall.Signal) error {
	if !Alive(p.PID, p.Start) {
		return errGone
	}
	// The check and the kill are not atomic; the window is a pid being
	// freed and reused within microseconds, which the kernel's pid
	// allocation (sequential, wrapping at pid_max) makes practically
	// impossible for a process that was alive a moment ago.
	if err := syscall.Kill(p.PID, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return errGone
		}
		return err
	}
	return nil
}

// Warn writes msg on a terminal, so that the user of an elevated session
// learns what is about to happen. Only character devices under /dev are
// written: a tty path comes from the session registration, and a path such
// as /etc/passwd must never be written.
func Warn(tty, msg string) error {
	if !strings.HasPrefix(tty, "/dev/") || strings.Contains(tty, "..") {
		return fmt.Errorf("not a terminal path: %q", tty)
	}
	f, err := os.OpenFile(tty, os.O_WRONLY|syscall.O_NOCTTY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", tty, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeCharDevice == 0 {
		return fmt.Errorf("%s is not a terminal", tty)
	}
	// \r\n: the terminal may be in raw mode under a full-screen program.
	_, err = f.WriteString("\r\n" + msg + "\r\n")
	return err
}
