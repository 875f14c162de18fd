package main

// The I/O plugin jit_io: records every allowed command's terminal and
// standard streams to journald (see package recording for the format).
//
// sudo.conf:
//
//	Plugin jit_io /usr/libexec/jit/jit_sudo.so [journal_socket=PATH] [spool=DIR]
//
// It lives in the same library, and so the same Go runtime, as jit_policy:
// sudo opens the I/O plugin after check_policy allowed the command, so the
// recording is filed under the jitd session id check_policy registered, with
// the policy's recording settings from jitd's decision.
//
// sudo calls log_* from its one thread while the command runs, once per
// read of the command's output. Most calls never enter Go: iobatch.c copies
// the bytes into the chunk buffer the recorder lent for the stream and
// notes (stream, length, time) in a batch, which the recorder books when it
// takes the batch (see batcher). A chunk is sealed when it is full
// (chunkSize) or its first byte is flushDelay old, and queued for a writer
// goroutine that sends it to journald.
//
// The writer takes each chunk off the queue at once, makes it a file, and
// holds it back until its first byte is flushDelay old, or until more than
// holdMax bytes wait; at the end of the command it sends everything. A
// chunk buffer mapped from one of the files jitd allocates ahead of time
// (package spool; see chunkbuf.go) already is that file: the writer adds
// the entry's other fields. Else the writer copies the chunk into a spool
// file, or a new sealed memfd, which frees the buffer for reuse. Allocating
// memory while the command floods its terminal slows the command more than
// anything else the plugin does, hence the spool.
//
// journald's ingestion (copying, hashing, compressing) costs about as much
// CPU as relaying the output itself, and on a busy machine it slows the
// command down when it competes with it: holding a burst back lets the
// burst finish first. A file is one small datagram, so sending it never
// waits for journald to make room, and journald reads it after sudo has
// gone. Every byte still reaches journald within about flushDelay of being
// written.
//
// The queue is bounded (queueLen chunks): when journald falls behind, log_*
// waits for room up to maxStall, which slows the command's output rather
// than losing it. When journald cannot take entries at all:
//   - recording required: after failAfter of failures the command is
//     stopped (log_* returns -1, which makes sudo terminate it, and the
//     command's processes get SIGTERM right away in case it is idle) with a
//     message that says why;
//   - not required: the writer keeps retrying what is queued, new data that
//     does not fit is dropped and counted, and a gap entry says what was lost
//     once journald takes entries again.

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jitpam/jit/jitd/recording"
)

// Tuning. A 2 MiB chunk keeps a flood far below journald's default rate
// limit (10000 entries per 30 s per unit: 20 GB of output), fits one
// datagram with the send buffer the writer asks for, and keeps the number
// of datagrams small: where net.unix.max_dgram_qlen is low (Debian's kernel
// default is 10; systemd raises it to 512), more queued datagrams than
// that make every further send wait for journald.
const (
	chunkSize   = 2 << 20
	flushDelay  = 500 * time.Millisecond // at most 1 s, as promised
	holdMax     = 16 << 20               // bytes held back before sending early
	queueLen    = 8                      // 16 MiB of queued chunks at most
	maxStall    = time.Second            // longest log_* waits for queue room
	sendTimeout = time.Second            // one send to a full journald
	failAfter   = 2 * time.Second        // required: failures before stopping
	closeWait   = 10 * time.Second       // close: draining a healthy queue
	closeGrace  = time.Second            // close: retrying a failing journald
)

// ioOptions are jit_io's arguments in sudo.conf.
type ioOptions struct {
	journalSocket string
	spoolDir      string
}

func parseIOOptions(args []string) (ioOptions, []string) {
	o := ioOptions{journalSocket: journalSocket, spoolDir: spoolDir}
	var warnings []string
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "journal_socket":
			if !strings.HasPrefix(v, "/") {
				warnings = append(warnings, fmt.Sprintf("ignoring journal_socket=%s: not an absolute path", v))
				continue
			}
			o.journalSocket = v
		case "spool":
			if !strings.HasPrefix(v, "/") {
				warnings = append(warnings, fmt.Sprintf("ignoring spool=%s: not an absolute path", v))
				continue
			}
			o.spoolDir = v
		default:
			warnings = append(warnings, fmt.Sprintf("jit_io: ignoring unknown plugin option %q", a))
		}
	}
	return o, warnings
}

// streamBuf is the chunk being filled for one stream.
type streamBuf struct {
	data    []byte
	timing  []byte
	firstUS int64 // first write of the chunk, µs since the session's start
	lastUS  int64 // last write
	offset  int64 // stream offset of data[0]
}

// jentry is one queued journal entry.
type jentry struct {
	head []byte    // the fields but the data field
	data []byte    // the data field's value, or nil
	size int64     // len(data), counted in recorder.held until sent
	due  time.Time // when the writer sends it at the latest
	// spilled: the entry is in file, and data is freed.
	spilled bool
	file    int
}

// recorder records one session.
type recorder struct {
	id       string
	spoolDir string // jitd's spool of allocated files; "" for none
	required bool
	input    bool
	t0       time.Time
	t0Mono   int64   // t0 on CLOCK_MONOTONIC, µs
	batch    batcher // nil: log_* calls are not batched
	conn     *journalConn

	mu      sync.Mutex
	bufs    [5]streamBuf
	offsets [5]int64 // bytes seen per stream (recorded or dropped)
	seq     int64    // next sequence number
	chunks  int64
	closed  bool
	timer   *time.Timer
	armed   bool
	// Dropped data not yet reported in a gap entry.
	gapBytes  [5]int64
	gapAtUS   int64
	gapReason string
	gaps      int

	queue   chan *jentry
	bufPool chunkBufs
	held    atomic.Int64  // bytes queued and not yet sent
	wake    chan struct{} // tells the writer to stop holding back
	done    chan struct{}
	healthy atomic.Bool
	failed  atomic.Bool
	failMsg atomic.Value // string
	told    bool         // the failure was shown to the user (sudo's thread)
	lost    atomic.Int64 // queued entries the writer gave up on at close
	closing atomic.Bool  // close has queued the end entry
}

// the recorder of this process, set by jit_io's open.
var rec *recorder

// batcher is the C side's batching of log_* calls (iobatch.c): each call
// appends its bytes to the chunk buffer the recorder lent for its stream,
// and its (stream, length, time) to a batch. An interface, so that the
// recorder itself needs no cgo.
type batcher interface {
	// take hands f the batched calls in order and takes back every lent
	// buffer; the caller holds the recorder's lock.
	take(f func(stream int, n int, us int64))
	// lend lets the C side append to buf[len(buf):cap(buf)] for stream
	// until the next take.
	lend(stream int, buf []byte)
	start() // batch calls from now on
	stop()  // make every later call enter Go
	// armed tells the C side whether the flush timer is armed, so that a
	// new batch enters Go to arm it only when it is not.
	armed(on bool)
}

// ioOpen starts the recording of the command check_policy allowed. It
// returns 1 to record, 0 when policy turned recording off, -1 to refuse to
// run the command.
func ioOpen(args []string, argc int, userInfo, commandInfo []string, b batcher) (int, string) {
	if argc == 0 {
		return 1, "" // sudo -V: nothing runs, nothing to record
	}
	if plug == nil || !plug.ran {
		return -1, "jit_io: no command was allowed by jit_policy; jit_io works only together with it (sudo.conf: Plugin jit_policy …)"
	}
	opts, warnings := parseIOOptions(args)
	for _, w := range warnings {
		say(msgError, "jit: sudo.conf: "+w)
	}
	d := plug.decision
	required, input := false, true
	if d != nil && !(d.BreakGlass && d.GrantID == "") {
		// jitd's policy; a break-glass run without jitd records all.
		if d.RecordingDisabled {
			return 0, ""
		}
		required, input = d.RecordingRequired, d.RecordInput
	}
	id := plug.sessionID
	if id == "" {
		id = "local-" + randomHex(8)
	}
	r := &recorder{id: id, spoolDir: opts.spoolDir, required: required, input: input, t0: time.Now(), t0Mono: monoUS(),
		queue: make(chan *jentry, queueLen), wake: make(chan struct{}, 1), done: make(chan struct{})}
	r.bufPool.spoolDir = opts.spoolDir
	r.bufPool.mapAhead()

	ui := toMap(userInfo)
	start := r.header(recording.EventStart, 0, fmt.Sprintf("jit: recording session %s: %s ran %s as %s", id, plug.user.name, plug.command, plug.runas))
	start.add("JIT_USER", plug.user.name)
	start.add("JIT_RUNAS", plug.runas)
	start.add("JIT_COMMAND", plug.command)
	if d != nil {
		addIf(start, "JIT_GRANT_ID", d.GrantID)
		addIf(start, "JIT_RULE", d.Rule)
		if d.BreakGlass {
			start.add("JIT_BREAKGLASS", "true")
		}
	}
	addIf(start, "JIT_TTY", ui["tty"])
	addIf(start, recording.FieldLines, ui["lines"])
	addIf(start, recording.FieldCols, ui["cols"])
	addIf(start, "JIT_HOST", ui["host"])
	addIf(start, "JIT_CWD", ui["cwd"])
	start.add("JIT_RECORD_INPUT", strconv.FormatBool(input))
	start.add("JIT_REQUIRED", strconv.FormatBool(required))
	start.add("JIT_START_REALTIME_US", strconv.FormatInt(r.t0.UnixMicro(), 10))
	r.seq = 1

	conn, err := dialJournal(opts.journalSocket)
	if err == nil {
		err = conn.send([][]byte{start.b}, time.Now().Add(sendTimeout))
	}
	if err != nil {
		if required {
			if conn != nil {
				conn.close()
			}
			return -1, fmt.Sprintf("the session cannot be recorded (%v) and policy requires recording: the command was not started; check `systemctl status systemd-journald`", err)
		}
		say(msgError, fmt.Sprintf("jit: warning: the session cannot be recorded now (%v); it runs, and the recording will have a gap", err))
		if conn == nil {
			conn = newJournalConn(opts.journalSocket)
		}
		r.queue <- &jentry{head: start.b} // retried by the writer
	} else {
		r.healthy.Store(true)
	}
	r.conn = conn
	r.batch = b
	rec = r
	go r.writer()
	if b != nil {
		b.start()
	}
	return 1, ""
}

func addIf(e *entryBuilder, name, value string) {
	if value != "" {
		e.add(name, value)
	}
}

// randomHex returns n random bytes in hex. getrandom(2) directly: the
// crypto/rand package would bring its FIPS module and its package
// initializers into every sudo run.
func randomHex(n int) string {
	b := make([]byte, n)
	for got := 0; got < n; {
		k, err := unix.Getrandom(b[got:], 0)
		if err != nil && !errors.Is(err, unix.EINTR) {
			// No randomness (never on Linux ≥ 3.17): a session id
			// still has to differ from the last one.
			return strconv.FormatInt(time.Now().UnixNano(), 16)
		}
		got += max(k, 0)
	}
	return hex.EncodeToString(b)
}

// header starts an entry of the recording with the fields every entry has.
func (r *recorder) header(event string, seq int64, msg string) *entryBuilder {
	e := &entryBuilder{b: make([]byte, 0, 512)}
	e.add("PRIORITY", "6")
	e.add("SYSLOG_IDENTIFIER", syslogIdentifier)
	e.add("MESSAGE", strings.ToValidUTF8(strings.ReplaceAll(msg, "\n", " "), "?"))
	e.add(recording.FieldEvent, event)
	e.add(recording.FieldSession, r.id)
	e.addInt(recording.FieldSeq, seq)
	return e
}

// monoUS reads CLOCK_MONOTONIC in µs, the clock the C batches stamp
// their calls with.
func monoUS() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano() / 1000
}

// nowUS is the time since the session's start, in µs.
func (r *recorder) nowUS() int64 { return monoUS() - r.t0Mono }

// log records one write of stream i. 1: pass it on; -1: stop the command.
// With a batcher, this is the call the C side could not batch: what it
// batched before is recorded first.
func (r *recorder) log(i int, p []byte) (int, string) {
	if r.failed.Load() {
		return -1, r.failure()
	}
	r.mu.Lock()
	r.drainLocked()
	r.logLocked(i, p, r.nowUS())
	r.lendLocked()
	r.mu.Unlock()
	return r.result()
}

// result is what a log_* call answers sudo once the data is recorded.
func (r *recorder) result() (int, string) {
	if r.failed.Load() {
		return -1, r.failure()
	}
	return 1, ""
}

// armBatch arms the flush timer for a batch that just got its first call.
func (r *recorder) armBatch() (int, string) {
	r.mu.Lock()
	r.arm()
	r.mu.Unlock()
	return r.result()
}

// drainLocked accounts for the calls the C side batched, whose bytes it
// has already put into the chunk buffers it was lent; taking the batch
// takes the buffers back. r.mu is held.
func (r *recorder) drainLocked() {
	if r.batch == nil || r.closed {
		return
	}
	r.batch.take(func(i int, n int, us int64) {
		b := &r.bufs[i]
		if len(b.data) == 0 {
			r.startChunk(i, us-r.t0Mono)
		}
		b.data = b.data[:len(b.data)+n]
		r.account(i, n, us-r.t0Mono)
	})
}

// lendLocked lends the C side the chunk buffer of each stream that has
// one with room, for it to append to until the next take. Only mapped
// buffers: C must not keep pointers into the Go heap. r.mu is held.
func (r *recorder) lendLocked() {
	if r.batch == nil || r.closed || r.failed.Load() {
		return
	}
	for i := range r.bufs {
		b := &r.bufs[i]
		if b.data != nil && len(b.data) < cap(b.data) && r.bufPool.isMapped(b.data) {
			r.batch.lend(i, b.data)
		}
	}
}

// logLocked records one write of stream i at now (µs since the start).
// r.mu is held.
func (r *recorder) logLocked(i int, p []byte, now int64) {
	if r.failed.Load() || r.closed {
		return
	}
	if !r.input && (recording.Streams[i] == recording.TTYIn || recording.Streams[i] == recording.StdIn) {
		return
	}
	for len(p) > 0 {
		b := &r.bufs[i]
		if len(b.data) == 0 {
			r.startChunk(i, now)
		}
		n := min(len(p), chunkSize-len(b.data))
		b.data = append(b.data, p[:n]...)
		p = p[n:]
		r.account(i, n, now)
	}
}

// startChunk starts a chunk of stream i. r.mu is held.
func (r *recorder) startChunk(i int, now int64) {
	b := &r.bufs[i]
	if b.data == nil {
		b.data = r.bufPool.get()
	}
	b.firstUS, b.lastUS, b.offset = now, now, r.offsets[i]
	b.timing = b.timing[:0]
	r.arm()
}

// account books n bytes just added to stream i's chunk, and seals the
// chunk when it is full. r.mu is held.
func (r *recorder) account(i int, n int, now int64) {
	b := &r.bufs[i]
	b.timing = recording.AppendTiming(b.timing, now-b.lastUS, n)
	b.lastUS = now
	r.offsets[i] += int64(n)
	if len(b.data) >= chunkSize {
		r.seal(i)
	}
}

// arm makes sure a timer seals what is buffered within flushDelay.
func (r *recorder) arm() {
	if r.armed || r.closed {
		return
	}
	r.armed = true
	if r.batch != nil {
		r.batch.armed(true)
	}
	if r.timer == nil {
		r.timer = time.AfterFunc(flushDelay, r.flushAll)
	} else {
		r.timer.Reset(flushDelay)
	}
}

// flushAll seals every stream's buffered data (the timer).
func (r *recorder) flushAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.armed = false
	if r.batch != nil {
		r.batch.armed(false)
	}
	r.drainLocked()
	for i := range r.bufs {
		if len(r.bufs[i].data) > 0 {
			r.seal(i)
		}
	}
}

// seal queues stream i's chunk. r.mu is held.
func (r *recorder) seal(i int) {
	b := &r.bufs[i]
	if len(b.data) == 0 || r.closed {
		return
	}
	r.flushGap()
	st := recording.Streams[i]
	e := r.header(recording.EventChunk, r.seq, fmt.Sprintf("jit: session %s %s, entry %d: %d bytes", r.id, st, r.seq, len(b.data)))
	e.add(recording.FieldStream, st)
	e.addInt(recording.FieldOffset, b.offset)
	e.addInt(recording.FieldTime, b.firstUS)
	e.add(recording.FieldTiming, string(b.timing))
	ent := &jentry{head: e.b, data: b.data, size: int64(len(b.data)),
		due: r.t0.Add(time.Duration(b.firstUS)*time.Microsecond + flushDelay)}
	if r.enqueue(ent) {
		r.chunks++
	} else {
		if r.gapBytes == [5]int64{} {
			r.gapAtUS = b.firstUS
		}
		r.gapBytes[i] += int64(len(b.data))
		r.release(ent)
	}
	b.data = nil
}

// enqueue queues e with the next sequence number; false when there is no
// room (e is then not numbered). r.mu is held.
func (r *recorder) enqueue(e *jentry) bool {
	if r.held.Add(e.size) > holdMax {
		r.hurry()
	}
	select {
	case r.queue <- e:
		r.seq++
		return true
	default:
	}
	r.hurry()
	if r.healthy.Load() && !r.failed.Load() {
		// journald is slow, not gone: hold the command's output back a
		// little rather than lose it.
		t := time.NewTimer(maxStall)
		defer t.Stop()
		select {
		case r.queue <- e:
			r.seq++
			return true
		case <-t.C:
		}
	}
	if r.required {
		r.fail("journald is not keeping up with the session's output (its queue stayed full)")
	}
	if r.gapReason == "" {
		r.gapReason = "journald did not take the data in time"
		if !r.healthy.Load() {
			r.gapReason = "journald was not reachable"
		}
	}
	return false
}

// flushGap queues a gap entry for dropped data, if any and if there is
// room. r.mu is held.
func (r *recorder) flushGap() {
	if r.gapBytes == [5]int64{} {
		return
	}
	var total int64
	for _, n := range r.gapBytes {
		total += n
	}
	e := r.header(recording.EventGap, r.seq, fmt.Sprintf("jit: session %s: the recording lost %d bytes: %s", r.id, total, r.gapReason))
	e.addInt(recording.FieldTime, r.gapAtUS)
	e.add(recording.FieldReason, r.gapReason)
	for i, n := range r.gapBytes {
		if n > 0 {
			e.addInt(recording.GapField(recording.Streams[i]), n)
		}
	}
	select {
	case r.queue <- &jentry{head: e.b}:
		r.seq++
		r.gaps++
		r.gapBytes, r.gapReason = [5]int64{}, ""
	default:
	}
}

// event queues a window size change or suspend.
func (r *recorder) event(kind string, fields func(*entryBuilder)) (int, string) {
	if r.failed.Load() {
		return -1, r.failure()
	}
	r.mu.Lock()
	r.drainLocked()
	now := r.nowUS()
	if !r.closed {
		r.flushGap()
		e := r.header(kind, r.seq, fmt.Sprintf("jit: session %s: %s", r.id, strings.TrimPrefix(kind, recording.EventPrefix)))
		e.addInt(recording.FieldTime, now)
		fields(e)
		if !r.enqueue(&jentry{head: e.b}) && r.gapReason == "" {
			r.gapReason = "journald was not reachable"
		}
	}
	r.mu.Unlock()
	if r.failed.Load() {
		return -1, r.failure()
	}
	return 1, ""
}

// hurry tells the writer to send what it holds back.
func (r *recorder) hurry() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// bufs is e as one native-protocol entry, its buffers to be concatenated.
func (e *jentry) bufs() [][]byte {
	if e.data == nil {
		return [][]byte{e.head}
	}
	return [][]byte{e.head, binaryHeader(recording.FieldData, len(e.data)), e.data, {'\n'}}
}

func (r *recorder) release(e *jentry) {
	r.held.Add(-e.size)
	e.size = 0
	r.freeData(e)
	if e.spilled {
		unix.Close(e.file)
		e.spilled = false
	}
}

func (r *recorder) freeData(e *jentry) {
	if e.data != nil {
		r.bufPool.put(e.data)
		e.data = nil
	}
}

// spill puts a chunk into a file, off sudo's relay thread, so that its
// buffer is free again at once and sending it later costs neither a copy
// nor a wait for room in journald's queue. A buffer mapped from a spool
// file already is the file (chunkFile), unless the chunk is small: it is
// copied into a memfd then, and the spool file serves the next chunk.
// Other chunks are copied into a spool file or else a memfd. Without a file
// the chunk is sent as a datagram.
func (r *recorder) spill(e *jentry) {
	if e.data == nil {
		return
	}
	fd, err := -1, errNoSpool
	if len(e.data) >= smallChunk {
		if fd, ok := r.bufPool.chunkFile(e.data, e.head); ok {
			e.file, e.spilled, e.data = fd, true, nil
			return
		}
		fd, err = spoolFile(r.spoolDir, e.bufs())
	}
	if err != nil {
		fd, err = entryFile(e.bufs())
	}
	if err != nil {
		return
	}
	e.file, e.spilled = fd, true
	r.freeData(e)
}

// writer sends queued entries in order. It takes each entry off the queue
// at once (making a chunk a file, which frees its buffer for the next
// one) and holds it back until it is due, the held bytes pass
// holdMax, or the recording closes.
func (r *recorder) writer() {
	defer close(r.done)
	defer r.bufPool.release()
	r.bufPool.touch()
	var waiting []*jentry // taken off the queue, held back, in order
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	queue := r.queue
	for queue != nil || len(waiting) > 0 {
		for len(waiting) > 0 && r.dueNow(waiting[0]) {
			r.sendEntry(waiting[0])
			waiting[0] = nil
			waiting = waiting[1:]
		}
		if queue == nil {
			continue // closed: everything is due
		}
		var tick <-chan time.Time
		if len(waiting) > 0 {
			timer.Reset(time.Until(waiting[0].due))
			tick = timer.C
		}
		select {
		case e, ok := <-queue:
			if !ok {
				queue = nil
				break
			}
			if r.failed.Load() {
				r.release(e)
				break
			}
			r.spill(e)
			waiting = append(waiting, e)
		case <-tick:
		case <-r.wake:
		case <-r.bufPool.low:
			r.bufPool.refill()
		}
		timer.Stop() // no stale tick can follow (Go 1.23 timers)
	}
}

// dueNow says whether the writer sends e now rather than holding it back.
func (r *recorder) dueNow(e *jentry) bool {
	return r.closing.Load() || r.failed.Load() || r.held.Load() > holdMax || !time.Now().Before(e.due)
}

// sendEntry sends e, retrying while journald is away, and releases it.
func (r *recorder) sendEntry(e *jentry) {
	defer r.release(e)
	if r.failed.Load() {
		return
	}
	bufs := e.bufs()
	var firstFail time.Time
	backoff := 20 * time.Millisecond
	for {
		var err error
		if e.spilled {
			err = r.conn.sendFD(e.file, time.Now().Add(sendTimeout))
		} else {
			err = r.conn.send(bufs, time.Now().Add(sendTimeout))
		}
		if err == nil {
			r.healthy.Store(true)
			return
		}
		r.healthy.Store(false)
		if firstFail.IsZero() {
			firstFail = time.Now()
		}
		if r.required && time.Since(firstFail) >= failAfter {
			r.fail(err.Error())
			return
		}
		if r.closing.Load() && time.Since(firstFail) >= closeGrace {
			r.lost.Add(1)
			return
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// fail stops the recording for good (recording required): every later
// log_* call returns -1, and the command's processes are told to end now,
// in case it is idle and makes no further call.
func (r *recorder) fail(why string) {
	if r.failed.Swap(true) {
		return
	}
	r.failMsg.Store(fmt.Sprintf("the recording of session %s cannot be written (%s) and policy requires recording: stopping the command", r.id, why))
	if r.batch != nil {
		r.batch.stop() // the next log_* call answers -1
	}
	terminateChildren()
}

// failure returns the failure message, showing it once (call from sudo's
// thread only: sudo's printf is not for other threads).
func (r *recorder) failure() string {
	msg, _ := r.failMsg.Load().(string)
	if !r.told {
		r.told = true
		say(msgError, "jit: "+msg)
	}
	return msg
}

// terminateChildren sends SIGTERM to sudo's children: the command (pipes)
// or sudo's monitor process (pty), which passes it on to the command.
func terminateChildren() {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		b, err := readProcFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
		}
	}
}

// close ends the recording with the command's end.
func (r *recorder) close(status, errno int) {
	r.mu.Lock()
	r.drainLocked()
	for i := range r.bufs {
		r.seal(i)
	}
	r.flushGap()
	if r.timer != nil {
		r.timer.Stop()
	}
	var what string
	end := &entryBuilder{}
	switch ws := syscall.WaitStatus(status); {
	case errno != 0:
		what = "could not execute: " + syscall.Errno(errno).Error()
		end.add(recording.FieldReason, what)
	case ws.Exited():
		end.addInt(recording.FieldStatus, int64(ws.ExitStatus()))
		what = "exit status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		end.addInt(recording.FieldStatus, 128+int64(ws.Signal()))
		end.add(recording.FieldSignal, signalName(ws.Signal()))
		what = "killed by " + signalName(ws.Signal())
	}
	if r.failed.Load() {
		end.add(recording.FieldReason, "recording failed: "+r.failMsg.Load().(string))
	}
	e := r.header(recording.EventEnd, r.seq, fmt.Sprintf("jit: session %s ended (%s); recording: %d entries, %d gaps", r.id, what, r.seq+1, r.gaps))
	e.b = append(e.b, end.b...)
	for i, n := range r.offsets {
		if n > 0 || recording.Streams[i] == recording.TTYOut {
			e.addInt(recording.BytesField(recording.Streams[i]), n)
		}
	}
	e.addInt(recording.FieldChunks, r.chunks)
	e.addInt(recording.FieldEntries, r.seq+1)
	e.addInt(recording.FieldDuration, r.nowUS())
	pending := r.gapBytes != [5]int64{}
	r.enqueue(&jentry{head: e.b})
	r.closed = true
	r.closing.Store(true)
	r.hurry()
	r.mu.Unlock()
	close(r.queue)

	wait := closeWait
	if !r.healthy.Load() {
		wait = closeGrace + sendTimeout
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
	}
	if r.failed.Load() {
		r.failure()
		return
	}
	select {
	case <-r.done:
		if r.lost.Load() == 0 && !pending && r.gaps == 0 {
			return
		}
	default:
	}
	if !r.required {
		say(msgError, fmt.Sprintf("jit: warning: the recording of session %s is incomplete: journald did not take all of it", r.id))
	}
}

func signalName(s syscall.Signal) string {
	name := unix.SignalName(s)
	if name == "" {
		return "signal " + strconv.Itoa(int(s))
	}
	return name
}

func syscallSignal(n int) syscall.Signal { return syscall.Signal(n) }
