package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/jitpam/jit/jitd/recording"
	"github.com/jitpam/jit/jitd/spool"
)

// sudo's relay thread copies every byte of output into a chunk buffer
// (iobatch.c), which lies outside the Go heap: C keeps pointers into it.
//
// Where jitd keeps a spool (package spool), a buffer is a claimed spool
// file, mapped: the chunk's bytes land straight in the file that is then
// handed to journald as the entry (see chunkFile), with nothing copied
// again and no memory allocated while the command runs. Allocating memory
// is what costs most here: on a virtual machine whose host takes back the
// guest's free memory, a fresh page also costs a fault in the host, and
// 2 MiB of them take a millisecond or two, on the relay thread or on the
// other core, while the command floods its terminal. jitd wrote the spool
// files' pages between commands.
//
// Without a spool, a buffer is a 2 MiB anonymous mapping aligned to 2 MiB
// and marked for transparent huge pages (from the Go heap, each 4 KiB page
// of a fresh buffer cost the relay thread a fault; a huge page costs one per
// chunk), and the writer later copies the chunk into a file.
//
// Either way, buffers are readied (claimed and mapped, or faulted in) by the
// writer goroutine, away from the relay thread: the first ones when the
// recording opens, and one more whenever a get leaves none ready. Without
// the spare, a stream that keeps its chunk open for long (a few bytes of
// ttyin, held until the flush timer) leaves the next chunk of a flood a
// fresh mapping, which the relay thread then faults in itself. Mappings are
// marked not to be inherited: a child sharing an anonymous one would make
// every later write by sudo copy the page. The first anonymous ones are
// mapped on sudo's thread, before sudo forks the command's monitor, and
// stay untouched (free to keep) while spool files serve.

// The layout of a chunk file: the data field first, so that the relay
// thread writes the data at a fixed offset before the other fields are
// known. Its length is filled in when the chunk is sealed, and the other
// fields follow the data.
//
//	JIT_DATA\n <le64 length> <data> \n FIELD=value\n …
const (
	chunkLenAt  = len(recording.FieldData) + 1
	chunkDataAt = chunkLenAt + 8
)

const (
	chunkBufsKept  = 4 // anonymous buffers kept for reuse
	chunkBufsAhead = 2 // readied at open
	// smallChunk: a sealed chunk smaller than this is copied into a memfd,
	// and its spool file goes on serving as a buffer: a few bytes of
	// ttyin should not use up 2 MiB that jitd refills only later.
	smallChunk = chunkSize / 8
)

// chunkBufs hands out chunk buffers and keeps a few for reuse.
type chunkBufs struct {
	// spoolDir is jitd's spool, whose files become buffers when the writer
	// can claim them; "" for none.
	spoolDir string

	mu     sync.Mutex
	files  [][]byte // mapped from claimed spool files, in memory
	free   [][]byte // anonymous, faulted in
	fresh  [][]byte // anonymous, mapped, not yet faulted in
	mapped map[*byte]mapping
	// low asks the writer for a refill: a get left no buffer ready. Made
	// by mapAhead, before the writer starts.
	low chan struct{}
}

// mapping is what lies behind a buffer that is not Go heap.
type mapping struct {
	mem  []byte // the whole mapping
	file int    // the spool file mapped, or -1 for anonymous memory
	// name is the spool file's claimed name until the buffer is first
	// handed out; at release, a file still named goes back to the spool.
	name string
}

// mapAhead maps the first anonymous buffers; call it on sudo's thread.
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
		c.markMapped(b, mapping{mem: b[:cap(b)], file: -1})
		c.fresh = append(c.fresh, b)
	}
}

// touch readies the first buffers (the writer goroutine), one at a time,
// each going to its list as soon as it is ready: a spool file if one can be
// claimed, else one of the anonymous buffers mapped ahead, faulted in.
func (c *chunkBufs) touch() {
	for range chunkBufsAhead {
		if !c.readyOne(true) {
			return
		}
	}
}

// refill readies one more buffer unless one is ready (the writer
// goroutine, when low fires).
func (c *chunkBufs) refill() {
	c.mu.Lock()
	ready := len(c.files) + len(c.free)
	c.mu.Unlock()
	if ready == 0 {
		c.readyOne(false)
	}
}

// readyOne claims and maps a spool file, or else faults in an anonymous
// buffer: one mapped ahead, or (unless aheadOnly) a new one. It says
// whether a buffer was readied.
func (c *chunkBufs) readyOne(aheadOnly bool) bool {
	if b, m, err := claimChunkFile(c.spoolDir); err == nil {
		c.mu.Lock()
		c.markMapped(b, m)
		c.files = append(c.files, b)
		c.mu.Unlock()
		return true
	}
	c.mu.Lock()
	var b []byte
	if n := len(c.fresh); n > 0 {
		b = c.fresh[n-1]
		c.fresh = c.fresh[:n-1]
	}
	c.mu.Unlock()
	if b == nil {
		if aheadOnly {
			return false
		}
		m, err := mapChunk()
		if err != nil {
			return false
		}
		b = m
		c.mu.Lock()
		c.markMapped(b, mapping{mem: b[:cap(b)], file: -1})
		c.mu.Unlock()
	}
	faultIn(b)
	c.mu.Lock()
	c.free = append(c.free, b)
	c.mu.Unlock()
	return true
}

// faultIn writes one byte per page of b, which faults in its huge page
// (or its small pages where huge pages are off).
func faultIn(b []byte) {
	b = b[:cap(b)]
	for i := 0; i < len(b); i += 4096 {
		b[i] = 0
	}
}

// markMapped records what lies behind b. c.mu is held.
func (c *chunkBufs) markMapped(b []byte, m mapping) {
	if c.mapped == nil {
		c.mapped = make(map[*byte]mapping)
	}
	c.mapped[unsafe.SliceData(b[:1])] = m
}

// get returns an empty buffer of capacity chunkSize, ready if one is (a
// spool file first), and asks for a refill when it took the last ready one.
func (c *chunkBufs) get() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.takeFile()
	if b == nil {
		b = c.takeAnon()
	}
	if len(c.files)+len(c.free) == 0 {
		select {
		case c.low <- struct{}{}:
		default:
		}
	}
	return b[:0]
}

// takeFile takes a ready spool file's buffer, or returns nil. c.mu is held.
func (c *chunkBufs) takeFile() []byte {
	for len(c.files) > 0 {
		n := len(c.files)
		b := c.files[n-1]
		c.files = c.files[:n-1]
		if c.ownFile(b) {
			return b
		}
		c.unmap(b)
	}
	return nil
}

// takeAnon takes an anonymous buffer: a ready one, else one mapped ahead,
// else a new one (the Go heap if mapping fails). c.mu is held.
func (c *chunkBufs) takeAnon() []byte {
	if n := len(c.free); n > 0 {
		b := c.free[n-1]
		c.free = c.free[:n-1]
		return b
	}
	if n := len(c.fresh); n > 0 {
		b := c.fresh[n-1]
		c.fresh = c.fresh[:n-1]
		return b
	}
	m, err := mapChunk()
	if err != nil {
		return make([]byte, 0, chunkSize)
	}
	c.markMapped(m, mapping{mem: m[:cap(m)], file: -1})
	return m
}

// ownFile readies a spool file's buffer for data the first time it is
// handed out: the file loses its name, so that what is recorded lies in a
// file nobody else can reach, and gets the data field's name. It says
// whether the file may take data. c.mu is held.
func (c *chunkBufs) ownFile(b []byte) bool {
	p := unsafe.SliceData(b[:1])
	m := c.mapped[p]
	if m.name == "" {
		return true
	}
	claim := spool.Claimed{FD: m.file, Name: m.name}
	m.name = ""
	c.mapped[p] = m
	if claim.Unlink() != nil {
		return false
	}
	copy(m.mem, recording.FieldData+"\n")
	return true
}

// isMapped says whether b (from get) is a mapping, not Go heap.
func (c *chunkBufs) isMapped(b []byte) bool {
	if cap(b) == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.mapped[unsafe.SliceData(b[:1])]
	return ok
}

// put gives back a buffer from get.
func (c *chunkBufs) put(b []byte) {
	if cap(b) != chunkSize {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.mapped[unsafe.SliceData(b[:1])]
	switch {
	case ok && m.file >= 0:
		c.files = append(c.files, b[:0])
	case len(c.free) < chunkBufsKept:
		c.free = append(c.free, b[:0])
	default:
		c.unmap(b)
	}
}

// chunkFile turns a buffer mapped from a spool file into the chunk's
// journal entry, with fields (each NAME=value\n) after the data, and
// returns the file; the buffer is gone then. ok is false when b is not a
// spool file's, or when the file could not be finished (tmpfs is full):
// b is then still the caller's, its data intact, for a copy elsewhere.
func (c *chunkBufs) chunkFile(b []byte, fields []byte) (fd int, ok bool) {
	if cap(b) == 0 {
		return -1, false
	}
	p := unsafe.SliceData(b[:1])
	c.mu.Lock()
	m, mine := c.mapped[p]
	c.mu.Unlock()
	if !mine || m.file < 0 {
		return -1, false
	}
	binary.LittleEndian.PutUint64(m.mem[chunkLenAt:], uint64(len(b)))
	end := chunkDataAt + len(b)
	m.mem[end] = '\n' // the mapping has room: FileSize > chunkDataAt+chunkSize
	end++
	// The fields may be longer than the room left in the mapping (a chunk
	// of many tiny writes has a long timing field): written, not copied
	// into the mapping, they grow the file instead.
	off, err := writeEntry(m.file, [][]byte{fields}, int64(end))
	if err != nil || unix.Ftruncate(m.file, off) != nil {
		return -1, false
	}
	// Truncated, the file is shorter than the mapping: it must not serve
	// as a buffer again.
	c.mu.Lock()
	delete(c.mapped, p)
	c.mu.Unlock()
	munmap(m.mem)
	return m.file, true
}

// release unmaps the buffers kept for reuse.
func (c *chunkBufs) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range append(append(c.free, c.fresh...), c.files...) {
		c.unmap(b)
	}
	c.free, c.fresh, c.files = nil, nil, nil
}

// unmap unmaps a mapped buffer, closing its spool file, or giving it back
// to the spool if it was never handed out; a heap buffer is left to the
// collector. c.mu is held.
func (c *chunkBufs) unmap(b []byte) {
	p := unsafe.SliceData(b[:1])
	m, ok := c.mapped[p]
	if !ok {
		return
	}
	delete(c.mapped, p)
	munmap(m.mem)
	if m.file >= 0 {
		claim := spool.Claimed{FD: m.file, Name: m.name}
		claim.Return(c.spoolDir)
	}
}

func munmap(mem []byte) {
	_ = unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(mem)), uintptr(len(mem)))
}

// errNoSpool says the plugin does not use a spool.
var errNoSpool = errors.New("no spool")

// claimChunkFile claims a file from jitd's spool and maps it as a chunk
// buffer, its pages mapped in ahead so that the relay thread takes no
// fault. The file keeps its claimed name until the buffer is first handed
// out (ownFile), so that a recording that needs fewer buffers than it
// readied gives the rest back to the spool at release: most commands
// print far less than a chunk. Root only: journald reads a file that is
// not a sealed memfd only from root.
func claimChunkFile(dir string) ([]byte, mapping, error) {
	if dir == "" || unix.Geteuid() != 0 {
		return nil, mapping{}, errNoSpool
	}
	claim, err := spool.ClaimNamed(dir)
	if err != nil {
		return nil, mapping{}, err
	}
	p, err := unix.MmapPtr(claim.FD, 0, nil, spool.FileSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		claim.Return(dir)
		return nil, mapping{}, fmt.Errorf("chunk file: %w", err)
	}
	mem := unsafe.Slice((*byte)(p), spool.FileSize)
	_ = unix.Madvise(mem, unix.MADV_DONTFORK) // see above
	if unix.Madvise(mem, unix.MADV_POPULATE_WRITE) != nil {
		faultIn(mem) // kernels before 5.14
	}
	return mem[chunkDataAt : chunkDataAt : chunkDataAt+chunkSize], mapping{mem: mem, file: claim.FD, name: claim.Name}, nil
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
