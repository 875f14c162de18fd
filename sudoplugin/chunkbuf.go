package main

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Chunk buffers are 2 MiB anonymous mappings aligned to 2 MiB and marked
// for transparent huge pages, outside the Go heap. sudo's relay thread
// copies every byte of output into one; from the Go heap, each 4 KiB page of
// a fresh buffer cost a page fault on that thread (about 16 ms per 10 MB of
// output, more than the rest of the plugin's work), while a huge page costs
// one fault per chunk. The kernel falls back to small pages by itself
// where huge pages are off.
//
// chunkSize must stay the size of an x86-64 huge page for this to pay off.
//
// Even so, faulting in a huge page (zeroing 2 MiB) takes about a
// millisecond, so buffers are faulted in by the writer goroutine, away from
// the relay thread: the first ones when the recording opens, and one more
// whenever a get leaves no faulted-in buffer spare. Without the spare, a
// stream that keeps its chunk open for long (a few bytes of ttyin, held
// until the flush timer) leaves the next chunk of a flood a fresh mapping,
// which the relay thread then faults in itself. The first buffers are
// mapped on sudo's thread, before sudo forks the command's monitor, and
// marked not to be inherited: a child sharing them would make every later
// write by sudo copy the page.

// chunkBufs hands out chunk buffers and keeps a few for reuse.
type chunkBufs struct {
	mu     sync.Mutex
	free   [][]byte       // faulted in
	fresh  [][]byte       // mapped, not yet faulted in
	mapped map[*byte]bool // buffers that are mappings, not heap
	// low asks the writer for a refill: a get left no buffer spare. Made
	// by mapAhead, before the writer starts.
	low chan struct{}
}

const (
	chunkBufsKept  = 4
	chunkBufsAhead = 2 // mapped at open, faulted in by the writer
)

// mapAhead maps the first buffers; call it on sudo's thread.
func (c *chunkBufs) mapAhead() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.low == nil {
		c.low = make(chan struct{}, 1)
	}
	for len(c.fresh) < chunkBufsAhead {
		b, err := mapChunk()
		if err != nil {
			return
		}
		c.markMapped(b)
		c.fresh = append(c.fresh, b)
	}
}

// touch faults in the buffers mapped ahead (the writer goroutine), one at
// a time, each going to the free list as soon as it is in memory. A get
// meanwhile takes a faulted-in buffer if there is one, else a fresh one.
func (c *chunkBufs) touch() {
	for {
		c.mu.Lock()
		n := len(c.fresh)
		if n == 0 {
			c.mu.Unlock()
			return
		}
		b := c.fresh[n-1]
		c.fresh = c.fresh[:n-1]
		c.mu.Unlock()
		faultIn(b)
		c.mu.Lock()
		c.free = append(c.free, b)
		c.mu.Unlock()
	}
}

// refill maps and faults in one more buffer unless one is spare (the
// writer goroutine, when low fires).
func (c *chunkBufs) refill() {
	c.mu.Lock()
	spare := len(c.free) + len(c.fresh)
	c.mu.Unlock()
	if spare > 0 {
		return
	}
	b, err := mapChunk()
	if err != nil {
		return
	}
	faultIn(b)
	c.mu.Lock()
	c.markMapped(b)
	c.free = append(c.free, b)
	c.mu.Unlock()
}

// faultIn writes one byte per page of b, which faults in its huge page
// (or its small pages where huge pages are off).
func faultIn(b []byte) {
	b = b[:cap(b)]
	for i := 0; i < len(b); i += 4096 {
		b[i] = 0
	}
}

func (c *chunkBufs) markMapped(b []byte) {
	if c.mapped == nil {
		c.mapped = make(map[*byte]bool)
	}
	c.mapped[unsafe.SliceData(b[:1])] = true
}

// get returns an empty buffer of capacity chunkSize, faulted in if one is
// ready, and asks for a refill when it took the last one.
func (c *chunkBufs) get() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b []byte
	if n := len(c.free); n > 0 {
		b = c.free[n-1]
		c.free = c.free[:n-1]
	} else if n := len(c.fresh); n > 0 {
		b = c.fresh[n-1]
		c.fresh = c.fresh[:n-1]
	} else {
		m, err := mapChunk()
		if err != nil {
			return make([]byte, 0, chunkSize)
		}
		c.markMapped(m)
		b = m
	}
	if len(c.free)+len(c.fresh) == 0 {
		select {
		case c.low <- struct{}{}:
		default:
		}
	}
	return b[:0]
}

// isMapped says whether b (from get) is a mapping, not Go heap.
func (c *chunkBufs) isMapped(b []byte) bool {
	if cap(b) == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mapped[unsafe.SliceData(b[:1])]
}

// put gives back a buffer from get.
func (c *chunkBufs) put(b []byte) {
	if cap(b) != chunkSize {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.free) < chunkBufsKept {
		c.free = append(c.free, b[:0])
		return
	}
	c.unmap(b)
}

// release unmaps the buffers kept for reuse.
func (c *chunkBufs) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range append(c.free, c.fresh...) {
		c.unmap(b)
	}
	c.free, c.fresh = nil, nil
}

// unmap unmaps a mapped buffer; a heap buffer is left to the collector.
// c.mu is held.
func (c *chunkBufs) unmap(b []byte) {
	p := unsafe.SliceData(b[:1])
	if !c.mapped[p] {
		return
	}
	delete(c.mapped, p)
	_ = unix.MunmapPtr(unsafe.Pointer(p), chunkSize)
}

func mapChunk() ([]byte, error) {
	// Twice the size, so that an aligned chunk lies inside; the rest is
	// given back at once.
	const span = 2 * chunkSize
	p, err := unix.MmapPtr(-1, 0, nil, span, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, err
	}
	head := uintptr(chunkSize) - uintptr(p)%chunkSize
	if head == chunkSize {
		head = 0
	}
	if head > 0 {
		_ = unix.MunmapPtr(p, head)
	}
	chunk := unsafe.Add(p, head)
	if tail := span - head - chunkSize; tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(chunk, chunkSize), tail)
	}
	b := unsafe.Slice((*byte)(chunk), chunkSize)
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE) // best effort
	_ = unix.Madvise(b, unix.MADV_DONTFORK) // see above
	return b[:0], nil
}
