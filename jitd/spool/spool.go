// Package spool keeps files of memory allocated ahead of time, which jit_io
// (the sudo I/O plugin) hands its recording chunks to journald in.
//
// Why: a chunk reaches journald as a file descriptor, and writing 2 MiB into
// a fresh memfd allocates 512 pages. On a virtual machine whose host takes
// back the guest's free memory, each new page also costs a fault in the
// host: about 1.2 ms per chunk on the project's machines, and while a
// command floods its terminal, that allocation slows the command by much
// more than its own time. jit_io maps a claimed file and copies the
// command's output straight into it, so pages jitd allocated between
// commands cost sudo nothing more. On a tmpfs with huge pages (see
// contrib/systemd/run-jitd-spool.mount), a file is one 2 MiB page and
// mapping it costs a fault, not 512.
//
// The protocol is files and names only. jitd keeps up to Slots files named
// "free-K" (K = 0, 1, …), each FileSize bytes long with its pages written,
// in a directory only root may enter. A consumer claims one by renaming it
// to a name of its own (rename is atomic: of two claimers, one wins), opens
// it, and unlinks it before it writes anything, so that the file is its
// alone. A claimer that took files ahead of need gives back the ones it did
// not use, untouched, by renaming them to a free slot again (Return); jitd
// removes claimed names that are left more than a minute. jitd refills the
// slots once the claims have stopped for a moment, so that the refill does
// not compete with the command whose output is being recorded.
package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// FileSize holds one 2 MiB chunk and its entry's other fields.
	FileSize = 2<<20 + 64<<10
	// MaxSlots bounds how many names a claimer tries.
	MaxSlots = 16
	// settle is how long claims must have stopped before a refill.
	settle = 250 * time.Millisecond
	// backstop refills even if no claim was seen (a missed event).
	backstop = 30 * time.Second
)

// Spool is jitd's side: it fills the directory.
type Spool struct {
	Dir   string
	Slots int // files kept ready, at most MaxSlots
	// Wanted says whether anything will claim files (recording is on in
	// the policy); nil means yes. While it says no, the spool is emptied,
	// so that the memory is not held for nothing.
	Wanted func() bool
}

// Fill creates the missing files and removes claimed ones a crashed
// claimer left behind. It returns how many files it created.
func (s *Spool) Fill() (int, error) {
	if s.Slots < 0 || s.Slots > MaxSlots {
		return 0, fmt.Errorf("spool: %d slots: want 0 to %d", s.Slots, MaxSlots)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	if err := checkDir(s.Dir); err != nil {
		return 0, err
	}
	slots := s.Slots
	if s.Wanted != nil && !s.Wanted() {
		slots = 0
	}
	s.removeStale(slots)
	created := 0
	for k := 0; k < slots; k++ {
		name := slotName(s.Dir, k)
		if _, err := os.Lstat(name); err == nil {
			continue
		}
		if err := makeFile(name); err != nil {
			return created, err
		}
		created++
	}
	return created, nil
}

// makeFile writes a file's pages under a temporary name and then gives it
// its slot name, so that a claimer never sees it half made. Written, not
// fallocated: tmpfs leaves fallocated pages for the first write to clear,
// and the point is that nothing is left to do when sudo writes. Sized
// before it is written: a tmpfs mounted with huge=within_size (as
// run-jitd-spool.mount does) gives a file a huge page only where the page
// lies within the file's size when it is allocated.
func makeFile(name string) error {
	tmp := name + ".new"
	fd, err := unix.Open(tmp, unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := unix.Ftruncate(fd, FileSize); err != nil {
		unix.Close(fd)
		os.Remove(tmp)
		return fmt.Errorf("spool: allocate %s: %w", name, err)
	}
	zeros := make([]byte, 64<<10)
	for off := int64(0); off < FileSize && err == nil; off += int64(len(zeros)) {
		_, err = unix.Pwrite(fd, zeros, off)
	}
	unix.Close(fd)
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("spool: allocate %s: %w", name, err)
	}
	return nil
}

// removeStale removes files claimed (renamed) but never unlinked, by a
// claimer that died in between, and half-made ones, a minute on; and slots
// beyond slots (a smaller spool than the last jitd's, or none wanted).
func (s *Spool) removeStale(slots int) {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if k, ok := strings.CutPrefix(e.Name(), "free-"); ok {
			if n, err := strconv.Atoi(k); err == nil {
				if n >= slots {
					os.Remove(filepath.Join(s.Dir, e.Name()))
				}
				continue
			}
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Minute {
			os.Remove(filepath.Join(s.Dir, e.Name()))
		}
	}
}

// Run keeps the spool filled until ctx ends: after claims, once they have
// stopped for a moment (it watches the directory), and every so often in
// case it missed one. Errors go to report.
func (s *Spool) Run(ctx context.Context, report func(error)) {
	if _, err := s.Fill(); err != nil {
		report(err)
	}
	claimed := make(chan struct{}, 1)
	if err := watch(ctx, s.Dir, claimed); err != nil {
		report(err)
	}
	t := time.NewTimer(backstop)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-claimed:
			t.Reset(settle)
			continue
		case <-t.C:
		}
		if _, err := s.Fill(); err != nil {
			report(err)
		}
		t.Reset(backstop)
	}
}

// watch tells claimed (without blocking) whenever a file leaves dir.
func watch(ctx context.Context, dir string, claimed chan<- struct{}) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("spool: inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MOVED_FROM|unix.IN_DELETE); err != nil {
		unix.Close(fd)
		return fmt.Errorf("spool: watch %s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), "spool-inotify")
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			select {
			case claimed <- struct{}{}:
			default:
			}
		}
	}()
	return nil
}

// checkDir refuses a spool directory anyone but root could put files in or
// read them from: the recording goes through these files.
func checkDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != 0 || st.Mode&0o077 != 0 {
		return fmt.Errorf("spool: %s is not a directory only root may use (mode %o, owner %d)", dir, st.Mode&0o7777, st.Uid)
	}
	return nil
}

// ErrEmpty says no file was ready.
var ErrEmpty = errors.New("spool: no file ready")

// Claim takes a file from the spool: open for reading and writing, with no
// name left, FileSize bytes long. The caller writes from offset 0 and
// truncates the file to what it wrote.
func Claim(dir string) (int, error) {
	c, err := ClaimNamed(dir)
	if err != nil {
		return -1, err
	}
	if err := c.Unlink(); err != nil {
		c.Close()
		return -1, err
	}
	return c.FD, nil
}

// Claimed is a file taken from the spool that still has a name, so that it
// can go back unused.
type Claimed struct {
	FD   int
	Name string // "" once unlinked
}

// ClaimNamed takes a file from the spool like Claim, but leaves it a name
// of the claimer's own until Unlink, so that Return can give it back. The
// caller writes nothing into it before Unlink: only a file nobody else
// can reach holds what is recorded.
func ClaimNamed(dir string) (Claimed, error) {
	if err := checkDir(dir); err != nil {
		return Claimed{}, err
	}
	// A name of this claim's own: renaming onto another claimer's name
	// would take its file. RENAME_NOREPLACE makes sure.
	var r [8]byte
	if _, err := unix.Getrandom(r[:], 0); err != nil {
		return Claimed{}, fmt.Errorf("spool: claim: %w", err)
	}
	mine := filepath.Join(dir, fmt.Sprintf("taken-%d-%x", os.Getpid(), r))
	for k := 0; k < MaxSlots; k++ {
		err := unix.Renameat2(unix.AT_FDCWD, slotName(dir, k), unix.AT_FDCWD, mine, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return Claimed{}, fmt.Errorf("spool: claim: %w", err)
		}
		fd, err := unix.Open(mine, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			unix.Unlink(mine)
			return Claimed{}, fmt.Errorf("spool: claim: %w", err)
		}
		c := Claimed{FD: fd, Name: mine}
		if !c.is(1) {
			unix.Unlink(mine)
			c.Close()
			return Claimed{}, fmt.Errorf("spool: claim: %s is not a file of root's alone, %d bytes long", mine, FileSize)
		}
		return c, nil
	}
	return Claimed{}, ErrEmpty
}

// is says whether c is a regular file of root's, FileSize bytes long, with
// exactly links names (hard links) left.
func (c *Claimed) is(links uint64) bool {
	var st unix.Stat_t
	return unix.Fstat(c.FD, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Uid == 0 &&
		uint64(st.Nlink) == links && st.Size == FileSize
}

// Unlink removes the claim's name, and checks that no other name is left:
// the file is the claimer's alone then, to write what it records into.
func (c *Claimed) Unlink() error {
	if c.Name == "" {
		return nil
	}
	name := c.Name
	c.Name = ""
	if err := unix.Unlink(name); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("spool: claim: %w", err)
	}
	// ENOENT: jitd removed a claim left for more than a minute; the open
	// file is still the claimer's.
	if !c.is(0) {
		return fmt.Errorf("spool: claim: %s is not a file of root's alone, %d bytes long", name, FileSize)
	}
	return nil
}

// Return gives an unused claimed file back to the spool, in a free slot,
// and closes it; without a free slot (jitd refilled them all meanwhile) or
// once unlinked, the file is dropped.
func (c *Claimed) Return(dir string) {
	defer c.Close()
	if c.Name == "" || !c.is(1) {
		c.Unlink()
		return
	}
	for k := 0; k < MaxSlots; k++ {
		err := unix.Renameat2(unix.AT_FDCWD, c.Name, unix.AT_FDCWD, slotName(dir, k), unix.RENAME_NOREPLACE)
		if err == nil {
			c.Name = ""
			return
		}
		if !errors.Is(err, unix.EEXIST) {
			break // gone (removed as stale) or the spool is broken
		}
	}
	c.Unlink()
}

// Close closes the claimed file (its name, if any, stays).
func (c *Claimed) Close() {
	if c.FD >= 0 {
		unix.Close(c.FD)
		c.FD = -1
	}
}

func slotName(dir string, k int) string { return filepath.Join(dir, "free-"+strconv.Itoa(k)) }

// HugePages says whether dir lies on a tmpfs that gives files huge pages
// (huge=within_size or huge=always), as run-jitd-spool.mount mounts the
// spool, by the mount table mountinfo (the text of /proc/self/mountinfo).
func HugePages(mountinfo []byte, dir string) bool {
	var best string
	huge := false
	for _, line := range strings.Split(string(mountinfo), "\n") {
		// id parent major:minor root mountpoint options [optional…] - type source super
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 5 || sep+3 >= len(f) {
			continue
		}
		mp := f[4]
		if !(mp == "/" || dir == mp || strings.HasPrefix(dir, mp+"/")) || len(mp) < len(best) {
			continue
		}
		// The deepest mount point holding dir, and of stacked mounts the
		// last, is the one in effect.
		best = mp
		opts := strings.Split(f[sep+3], ",")
		huge = f[sep+1] == "tmpfs" && (slices.Contains(opts, "huge=within_size") || slices.Contains(opts, "huge=always"))
	}
	return huge
}
