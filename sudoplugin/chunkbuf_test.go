package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/jitpam/jit/jitd/recording"
	"github.com/jitpam/jit/jitd/spool"
)

// resident counts the pages of b that are in memory.
func resident(t *testing.T, b []byte) int {
	t.Helper()
	b = b[:cap(b)]
	vec := make([]byte, (len(b)+4095)/4096)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// The buffers mapped at open are faulted in by touch (the writer), so the
// relay thread that fills them takes no page faults.
func TestChunkBufsAhead(t *testing.T) {
	var c chunkBufs
	c.mapAhead()
	defer c.release()
	if len(c.fresh) != chunkBufsAhead || len(c.free) != 0 {
		t.Fatalf("%d buffers mapped ahead (%d faulted in), want %d", len(c.fresh), len(c.free), chunkBufsAhead)
	}
	for _, b := range c.fresh {
		if n := resident(t, b); n != 0 {
			t.Fatalf("%d pages resident before touch", n)
		}
	}
	c.touch()
	if len(c.free) != chunkBufsAhead || len(c.fresh) != 0 {
		t.Fatalf("%d buffers faulted in after touch (%d not), want %d", len(c.free), len(c.fresh), chunkBufsAhead)
	}
	pages := chunkSize / 4096
	for range chunkBufsAhead {
		b := c.get()
		if len(b) != 0 || cap(b) != chunkSize || !c.isMapped(b) {
			t.Fatalf("get: len %d cap %d mapped %v", len(b), cap(b), c.isMapped(b))
		}
		if n := resident(t, b); n != pages {
			t.Errorf("%d of %d pages resident after touch", n, pages)
		}
		if uintptr(unsafe.Pointer(unsafe.SliceData(b[:1])))%chunkSize != 0 {
			t.Error("buffer not aligned to a huge page")
		}
		c.put(b)
	}
}

// A get that leaves no buffer spare asks the writer for one more, so that
// the next chunk of a flood does not start in a buffer the relay thread
// has to fault in: here a long-open chunk holds one buffer, a full one
// another.
func TestChunkBufsRefill(t *testing.T) {
	var c chunkBufs
	c.mapAhead()
	defer c.release()
	c.touch()
	held := c.get()
	select {
	case <-c.low:
		t.Fatal("refill asked for with a buffer still spare")
	default:
	}
	full := c.get()
	select {
	case <-c.low:
	default:
		t.Fatal("the last spare buffer was taken and no refill was asked for")
	}
	c.refill()
	next := c.get()
	if n := resident(t, next); n != chunkSize/4096 {
		t.Errorf("the refilled buffer has %d of %d pages resident", n, chunkSize/4096)
	}
	for _, b := range [][]byte{held, full, next} {
		c.put(b)
	}
	c.refill() // buffers spare: nothing to do
	if got := len(c.free); got != 3 {
		t.Errorf("%d buffers kept, want 3", got)
	}
}

// With jitd's spool, a buffer is a spool file, mapped in: a chunk becomes
// its journal entry in place (the data field first, the other fields after
// it, the file cut to the entry) and is no buffer any more; a buffer given
// back serves again.
func TestChunkBufsSpoolFile(t *testing.T) {
	needRoot(t)
	dir := tmpfsSpool(t)
	if _, err := (&spool.Spool{Dir: dir, Slots: 3}).Fill(); err != nil {
		t.Fatal(err)
	}
	c := chunkBufs{spoolDir: dir}
	c.mapAhead()
	defer c.release()
	c.touch()
	if len(c.files) != chunkBufsAhead || len(c.free) != 0 {
		t.Fatalf("after touch: %d spool files, %d anonymous buffers ready; want %d and 0", len(c.files), len(c.free), chunkBufsAhead)
	}
	b := c.get()
	if cap(b) != chunkSize || !c.isMapped(b) {
		t.Fatalf("get: cap %d, mapped %v", cap(b), c.isMapped(b))
	}
	var data []byte
	for i := 0; len(data) < chunkSize; i++ {
		data = fmt.Appendf(data, "%d\x00\n", i)
	}
	data = data[:chunkSize]
	// The pages are mapped in ahead: the relay thread's copy takes no
	// fault (a few are allowed for the test's own goroutines).
	var before, after unix.Rusage
	runtime.LockOSThread()
	unix.Getrusage(unix.RUSAGE_THREAD, &before)
	b = append(b, data...)
	unix.Getrusage(unix.RUSAGE_THREAD, &after)
	runtime.UnlockOSThread()
	if n := after.Minflt - before.Minflt; n > 8 {
		t.Errorf("filling the buffer took %d page faults: its pages were not mapped in ahead", n)
	}
	if &b[0] != &c.mapped[&b[0]].mem[chunkDataAt] {
		t.Fatal("the data did not stay in the mapping")
	}
	// Fields longer than the room left after the data grow the file.
	fields := []byte("MESSAGE=chunk\nJIT_TIMING=" + strings.Repeat("7 1 ", 40<<10) + "\nJIT_SEQ=2\n")
	fd, ok := c.chunkFile(b, fields)
	if !ok {
		t.Fatal("chunkFile refused a spool file's buffer")
	}
	defer unix.Close(fd)
	if c.isMapped(b) {
		t.Error("the buffer is still handed out after it became an entry")
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, st.Size)
	if n, err := unix.Pread(fd, got, 0); err != nil || n != len(got) {
		t.Fatalf("read back %d of %d bytes: %v", n, len(got), err)
	}
	want := binaryHeader(recording.FieldData, len(data))
	want = append(append(append(want, data...), '\n'), fields...)
	if !bytes.Equal(got, want) {
		t.Errorf("the entry file holds %d bytes, want %d; first %q", len(got), len(want), got[:min(len(got), 40)])
	}

	// A buffer given back (its chunk was small, and copied) is ready again.
	small := c.get()
	if _, ok := c.chunkFile(nil, fields); ok {
		t.Error("chunkFile took an empty buffer")
	}
	c.put(append(small, "x"...))
	if len(c.files) != 1 {
		t.Errorf("%d spool files ready after put, want 1", len(c.files))
	}
}

// Spool files readied but never handed out go back to the spool at
// release; one handed out loses its name at once and is not given back.
func TestChunkBufsGiveBackUnusedFiles(t *testing.T) {
	needRoot(t)
	dir := tmpfsSpool(t)
	if _, err := (&spool.Spool{Dir: dir, Slots: 3}).Fill(); err != nil {
		t.Fatal(err)
	}
	count := func() (free, taken int) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "free-") {
				free++
			} else {
				taken++
			}
		}
		return free, taken
	}
	c := chunkBufs{spoolDir: dir}
	c.mapAhead()
	c.touch()
	if free, taken := count(); free != 1 || taken != chunkBufsAhead {
		t.Fatalf("after touch: %d free, %d claimed names; want 1 and %d", free, taken, chunkBufsAhead)
	}
	b := c.get()
	if free, taken := count(); free != 1 || taken != chunkBufsAhead-1 {
		t.Fatalf("a buffer handed out kept its name: %d free, %d claimed names", free, taken)
	}
	c.put(append(b, "secret"...)) // used: it must not go back
	c.release()
	if free, taken := count(); free != 1+chunkBufsAhead-1 || taken != 0 {
		t.Errorf("after release: %d free, %d claimed names; want %d and 0", free, taken, chunkBufsAhead)
	}
}

// needRoot fails the test under CI and skips it elsewhere unless it runs
// as root: the spool is root's.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the spool is root's: run the tests as root")
		}
		t.Skip("the spool is root's: run as root")
	}
}

// tmpfsSpool is a fresh spool directory on a tmpfs, as jitd's is. On a disk
// file system, writeback would write-protect the mapped pages again at any
// moment, and the test of "no page faults while filling" would measure
// that instead.
func tmpfsSpool(t *testing.T) string {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Fatalf("/dev/shm is not a tmpfs (%v): the spool tests need one", err)
	}
	dir, err := os.MkdirTemp("/dev/shm", "jit-spool-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "spool")
}
