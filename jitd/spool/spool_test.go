package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func newSpool(t *testing.T, slots int) *Spool {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the spool is root's: run the tests as root")
		}
		t.Skip("the spool is root's: run as root")
	}
	s := &Spool{Dir: filepath.Join(t.TempDir(), "spool"), Slots: slots}
	if n, err := s.Fill(); err != nil || n != slots {
		t.Fatalf("fill: %d, %v", n, err)
	}
	return s
}

func TestFillAllocatesAndClaimTakesEachFileOnce(t *testing.T) {
	s := newSpool(t, 4)
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(s.Dir, "free-3"), &st); err != nil || st.Size != FileSize || st.Blocks*512 < FileSize {
		t.Fatalf("free-3: size %d, %d blocks, %v", st.Size, st.Blocks, err)
	}
	// Eight claimers race for four files: each file goes to one of them.
	var mu sync.Mutex
	inodes := map[uint64]bool{}
	empty := 0
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fd, err := Claim(s.Dir)
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, ErrEmpty) {
				empty++
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			defer unix.Close(fd)
			var st unix.Stat_t
			unix.Fstat(fd, &st)
			if inodes[st.Ino] || st.Nlink != 0 || st.Size != FileSize {
				t.Errorf("claimed inode %d twice, or it keeps a name (%d links), or size %d", st.Ino, st.Nlink, st.Size)
			}
			inodes[st.Ino] = true
		}()
	}
	wg.Wait()
	if len(inodes) != 4 || empty != 4 {
		t.Fatalf("%d files claimed, %d claimers found none", len(inodes), empty)
	}
	if ents, _ := os.ReadDir(s.Dir); len(ents) != 0 {
		t.Errorf("left in the spool: %v", ents)
	}
	if n, err := s.Fill(); n != 4 || err != nil {
		t.Errorf("refill: %d, %v", n, err)
	}
}

// A file claimed with its name kept goes back to a free slot unused, and
// is dropped once it was unlinked for data or removed as stale.
func TestReturnGivesAnUnusedClaimBack(t *testing.T) {
	s := newSpool(t, 2)
	ino := func(name string) uint64 {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(s.Dir, name), &st); err != nil {
			return 0
		}
		return st.Ino
	}
	claim := func() Claimed {
		t.Helper()
		c, err := ClaimNamed(s.Dir)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	was := ino("free-0")
	c := claim()
	if ino("free-0") != 0 || ino(filepath.Base(c.Name)) != was {
		t.Fatalf("claimed free-0 (inode %d) as %s: free-0 now %d, the claim %d", was, c.Name, ino("free-0"), ino(filepath.Base(c.Name)))
	}
	c.Return(s.Dir)
	if ino("free-0") != was || c.FD != -1 {
		t.Fatalf("returned: free-0 is inode %d, want %d; fd %d", ino("free-0"), was, c.FD)
	}

	// jitd refilled the slot meanwhile: the file takes the next free one,
	// and jitd's next fill removes it as beyond the spool's size.
	c = claim()
	if _, err := s.Fill(); err != nil {
		t.Fatal(err)
	}
	c.Return(s.Dir)
	if ino("free-2") == 0 {
		t.Fatal("a file given back while its slot was refilled was not kept in another")
	}
	if _, err := s.Fill(); err != nil || ino("free-2") != 0 {
		t.Fatalf("fill kept free-2 beyond 2 slots (%v)", err)
	}

	// Unlinked for data, or removed as stale: it does not come back.
	for _, lose := range []func(c *Claimed) error{
		func(c *Claimed) error { return c.Unlink() },
		func(c *Claimed) error { return os.Remove(c.Name) },
	} {
		c = claim()
		if err := lose(&c); err != nil {
			t.Fatal(err)
		}
		c.Return(s.Dir)
		if n := len(names(t, s.Dir)); n != 1 {
			t.Errorf("after giving back a lost claim the spool holds %v, want one file", names(t, s.Dir))
		}
		if _, err := s.Fill(); err != nil {
			t.Fatal(err)
		}
	}
}

// names lists dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestClaimRefusesADirectoryOthersMayUse(t *testing.T) {
	s := newSpool(t, 1)
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if fd, err := Claim(s.Dir); err == nil {
		unix.Close(fd)
		t.Fatal("claimed from a directory others may read")
	}
	if _, err := s.Fill(); err == nil {
		t.Fatal("filled a directory others may read")
	}
}

// A claimer maps the file: one shorter than FileSize would fault it
// (SIGBUS) past its end.
func TestClaimRefusesAFileOfTheWrongSize(t *testing.T) {
	s := newSpool(t, 1)
	if err := os.Truncate(filepath.Join(s.Dir, "free-0"), FileSize-4096); err != nil {
		t.Fatal(err)
	}
	if fd, err := Claim(s.Dir); err == nil {
		unix.Close(fd)
		t.Fatal("claimed a file shorter than FileSize")
	}
}

func TestRunRefillsAfterClaims(t *testing.T) {
	s := newSpool(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx, func(err error) { t.Error(err) })
	time.Sleep(50 * time.Millisecond) // Run's first fill and watch
	for i := 0; i < 2; i++ {
		fd, err := Claim(s.Dir)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err0 := os.Stat(filepath.Join(s.Dir, "free-0"))
		_, err1 := os.Stat(filepath.Join(s.Dir, "free-1"))
		if err0 == nil && err1 == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the spool was not refilled after two claims")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFillRemovesStaleClaims(t *testing.T) {
	s := newSpool(t, 1)
	stale := filepath.Join(s.Dir, "taken-99-1")
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Minute)
	os.Chtimes(stale, old, old)
	if _, err := s.Fill(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("a stale claimed file was kept")
	}
	// A smaller spool than the last jitd's drops the slots beyond it.
	big := &Spool{Dir: s.Dir, Slots: 3}
	if n, err := big.Fill(); n != 2 || err != nil {
		t.Fatalf("fill 3 slots: %d, %v", n, err)
	}
	if _, err := s.Fill(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(s.Dir); len(ents) != 1 || ents[0].Name() != "free-0" {
		t.Errorf("after shrinking to 1 slot: %v", ents)
	}
	// Recording turned off: the spool is emptied, and filled again once
	// it is back on.
	on := false
	s.Wanted = func() bool { return on }
	if n, err := s.Fill(); n != 0 || err != nil {
		t.Fatalf("fill while unwanted: %d, %v", n, err)
	}
	if ents, _ := os.ReadDir(s.Dir); len(ents) != 0 {
		t.Errorf("unwanted spool keeps %v", ents)
	}
	on = true
	if n, err := s.Fill(); n != 1 || err != nil {
		t.Errorf("fill when wanted again: %d, %v", n, err)
	}
}

func TestHugePages(t *testing.T) {
	const mountinfo = `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:23 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,size=2000k,mode=755,inode64
40 25 0:40 / /run/jitd/spool rw,nosuid,nodev,noexec shared:20 - tmpfs tmpfs rw,size=40960k,mode=700,huge=within_size,inode64
41 25 0:41 / /run/other rw shared:21 - tmpfs tmpfs rw,huge=always
42 41 0:42 / /run/other rw shared:22 - tmpfs tmpfs rw,huge=never
`
	for dir, want := range map[string]bool{
		"/run/jitd/spool":     true,  // the unit's mount
		"/run/jitd/spool/sub": true,  // inside it
		"/run/jitd":           false, // /run's own tmpfs, no huge pages
		"/run/jitd/spool2":    false, // a name that only starts alike
		"/run/other":          false, // the last of stacked mounts counts
		"/var/lib/jitd":       false, // not a tmpfs
	} {
		if got := HugePages([]byte(mountinfo), dir); got != want {
			t.Errorf("HugePages(%s) = %v, want %v", dir, got, want)
		}
	}
}
