package main

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
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
