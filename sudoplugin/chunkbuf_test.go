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
	if len(c.free) != chunkBufsAhead {
		t.Fatalf("%d buffers mapped ahead, want %d", len(c.free), chunkBufsAhead)
	}
	for _, b := range c.free {
		if n := resident(t, b); n != 0 {
			t.Fatalf("%d pages resident before touch", n)
		}
	}
	c.touch()
	if len(c.free) != chunkBufsAhead {
		t.Fatalf("%d buffers kept after touch, want %d", len(c.free), chunkBufsAhead)
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
