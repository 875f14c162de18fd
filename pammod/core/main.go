// Command pam_jit_core.so is the Go core of jit's PAM module, built with
// -buildmode=c-shared. pam_jit.so, a small C loader, loads it on the first
// account or session call and calls its jit_core_* entry points only from
// the process in which the Go runtime started (see pammod/loader.c). cgo
// stays at this edge: the logic (module.go) sees a pamHandle interface.
package main

/*
#cgo LDFLAGS: -lpam
#include <stdlib.h>
#include <syslog.h>
#include <security/pam_modules.h>
#include "core.h"
*/
import "C"

import (
	"os"
	"unsafe"
)

func main() {}

// cHandle is a pamHandle over libpam.
type cHandle struct{ pamh *C.pam_handle_t }

func (h cHandle) item(i item) string {
	var t C.int
	switch i {
	case itemUser:
		t = C.PAM_USER
	case itemService:
		t = C.PAM_SERVICE
	case itemTTY:
		t = C.PAM_TTY
	case itemRHost:
		t = C.PAM_RHOST
	default:
		return ""
	}
	v := C.jit_item(h.pamh, t)
	if v == nil {
		return ""
	}
	return C.GoString(v)
}

func (h cHandle) tell(msg string) {
	cs := C.CString(msg)
	defer C.free(unsafe.Pointer(cs))
	C.jit_error(h.pamh, cs)
}

func (h cHandle) log(p priority, msg string) {
	prio := C.LOG_INFO
	switch p {
	case prioDebug:
		prio = C.LOG_DEBUG
	case prioNotice:
		prio = C.LOG_NOTICE
	case prioWarning:
		prio = C.LOG_WARNING
	case prioErr:
		prio = C.LOG_ERR
	}
	cs := C.CString(msg)
	defer C.free(unsafe.Pointer(cs))
	C.jit_syslog(h.pamh, C.int(prio), cs)
}

func (h cHandle) setData(name, value string) bool {
	cn, cv := C.CString(name), C.CString(value)
	defer C.free(unsafe.Pointer(cn))
	defer C.free(unsafe.Pointer(cv))
	return C.jit_set_string(h.pamh, cn, cv) == C.PAM_SUCCESS
}

func (h cHandle) data(name string) string {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	v := C.jit_get_string(h.pamh, cn)
	if v == nil {
		return ""
	}
	return C.GoString(v)
}

func (h cHandle) putenv(name, value string) bool {
	cs := C.CString(name + "=" + value)
	defer C.free(unsafe.Pointer(cs))
	return C.jit_putenv(h.pamh, cs) == C.PAM_SUCCESS
}

func (h cHandle) getenv(name string) string {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	v := C.jit_getenv(h.pamh, cn)
	if v == nil {
		return ""
	}
	return C.GoString(v)
}

func args(argc C.int, argv **C.char) []string {
	if argc <= 0 || argv == nil {
		return nil
	}
	out := make([]string, 0, int(argc))
	for _, a := range unsafe.Slice(argv, int(argc)) {
		out = append(out, C.GoString(a))
	}
	return out
}

func env(pamh *C.pam_handle_t, flags C.int, argc C.int, argv **C.char) *call {
	return &call{
		h:      cHandle{pamh},
		opts:   parseArgs(args(argc, argv)),
		silent: flags&C.PAM_SILENT != 0,
		pid:    os.Getpid(),
	}
}

// Return codes, from security/_pam_types.h.
var (
	pamSuccess     = int(C.PAM_SUCCESS)
	pamIgnore      = int(C.PAM_IGNORE)
	pamPermDenied  = int(C.PAM_PERM_DENIED)
	pamSessionErr  = int(C.PAM_SESSION_ERR)
	pamUserUnknown = int(C.PAM_USER_UNKNOWN)
)

//export jit_core_acct_mgmt
func jit_core_acct_mgmt(pamh *C.pam_handle_t, flags C.int, argc C.int, argv **C.char) C.int {
	return C.int(env(pamh, flags, argc, argv).account())
}

//export jit_core_open_session
func jit_core_open_session(pamh *C.pam_handle_t, flags C.int, argc C.int, argv **C.char) C.int {
	return C.int(env(pamh, flags, argc, argv).openSession())
}

//export jit_core_close_session
func jit_core_close_session(pamh *C.pam_handle_t, flags C.int, argc C.int, argv **C.char) C.int {
	return C.int(env(pamh, flags, argc, argv).closeSession())
}
