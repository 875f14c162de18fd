package main

// The cgo layer of the I/O plugin jit_io: plugin.c's io_* trampolines call
// these (only in the process that opened the plugin; see the pid guard
// there).

/*
#include <stdlib.h>
#include "iobatch.h"
*/
import "C"

import (
	"strconv"
	"unsafe"

	"github.com/jitpam/jit/jitd/recording"
)

//export jitGoIOOpen
func jitGoIOOpen(argc C.int, userInfo, commandInfo, options **C.char, errstr **C.char) C.int {
	rc, msg := ioOpen(goStrings(options), int(argc), goStrings(userInfo), goStrings(commandInfo), cBatcher{})
	if msg != "" {
		say(msgError, "jit: "+msg)
		*errstr = cString(msg)
	}
	return C.int(rc)
}

//export jitGoIOClose
func jitGoIOClose(exitStatus, errnum C.int) {
	if rec != nil {
		rec.close(int(exitStatus), int(errnum))
	}
}

//export jitGoIOShowVersion
func jitGoIOShowVersion(verbose C.int) C.int {
	say(msgInfo, "jit_sudo I/O plugin version "+version)
	return 1
}

// failMsg is the errstr handed to sudo when recording fails; sudo may keep
// it until close, so it is never freed (one per process).
var failMsg *C.char

//export jitGoIOLog
func jitGoIOLog(stream C.int, buf *C.char, n C.uint, errstr **C.char) C.int {
	if rec == nil {
		return 1
	}
	i := int(stream)
	if i < 0 || i >= len(recording.Streams) {
		return 1
	}
	var p []byte
	if n > 0 && buf != nil {
		p = unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(n))
	}
	rc, msg := rec.log(i, p)
	if rc != 1 {
		setFail(errstr, msg)
	}
	return C.int(rc)
}

// cBatcher is iobatch.c.
type cBatcher struct{}

func (cBatcher) start() { C.jit_batch_start() }
func (cBatcher) stop()  { C.jit_batch_stop() }

func (cBatcher) armed(on bool) {
	v := C.int(0)
	if on {
		v = 1
	}
	C.jit_batch_armed(v)
}

func (cBatcher) take(f func(stream int, n int, us int64)) {
	b := C.jit_batch_take()
	for _, c := range b.call[:b.ncalls] {
		f(int(c.stream), int(c.len), int64(c.us))
	}
}

func (cBatcher) lend(stream int, buf []byte) {
	base := unsafe.SliceData(buf[:cap(buf)])
	C.jit_batch_lend(C.int(stream), (*C.uchar)(unsafe.Pointer(base)), C.size_t(len(buf)), C.size_t(cap(buf)))
}

// jitGoIOArm arms the flush timer for a batch that got its first call.
//
//export jitGoIOArm
func jitGoIOArm(errstr **C.char) C.int {
	if rec == nil {
		return 1
	}
	rc, msg := rec.armBatch()
	if rc != 1 {
		setFail(errstr, msg)
	}
	return C.int(rc)
}

//export jitGoIOWinsize
func jitGoIOWinsize(lines, cols C.uint, errstr **C.char) C.int {
	if rec == nil {
		return 1
	}
	rc, msg := rec.event(recording.EventWinsize, func(e *entryBuilder) {
		e.addInt(recording.FieldLines, int64(lines))
		e.addInt(recording.FieldCols, int64(cols))
	})
	if rc != 1 {
		setFail(errstr, msg)
	}
	return C.int(rc)
}

//export jitGoIOSuspend
func jitGoIOSuspend(signo C.int, errstr **C.char) C.int {
	if rec == nil {
		return 1
	}
	rc, msg := rec.event(recording.EventSuspend, func(e *entryBuilder) {
		e.add(recording.FieldSignal, signalName(syscallSignal(int(signo))))
		e.add("JIT_SIGNO", strconv.Itoa(int(signo)))
	})
	if rc != 1 {
		setFail(errstr, msg)
	}
	return C.int(rc)
}

func setFail(errstr **C.char, msg string) {
	if failMsg == nil {
		failMsg = cString(msg)
	}
	*errstr = failMsg
}
