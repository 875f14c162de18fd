// Command jit_sudo.so is jit's sudo policy plugin, jit_policy (built with
// -buildmode=c-shared). sudo.conf:
//
//	Plugin jit_policy /usr/libexec/jit/jit_sudo.so socket=/run/jitd/jitd.sock [timeout=2s] [breakglass_group=NAME]
//
// It replaces sudoers: for every command it resolves the program against a
// secure PATH, asks jitd whether a live grant (or a standing rule) allows
// it now, and hands sudo a command, target credentials, a cleaned
// environment and a timeout that ends the command when the grant ends.
//
// The plugin struct and the trampolines sudo calls are in plugin.c: the
// struct must be a writable global defined in C, sudo_printf_t is variadic,
// and no call may enter Go from a process sudo forked (see the pid guard
// there). This file is the thin cgo layer between those trampolines and the
// Go logic, which works on plain Go values.
package main

/*
#cgo CFLAGS: -Wall -Wextra -Werror -Wno-unused-parameter
#include <stdlib.h>
#include <string.h>
#include <sudo_plugin.h>
#include "plugin.h"
*/
import "C"

import (
	"unsafe"
)

func main() {}

// Message kinds of sudo's printf and conversation function.
const (
	msgInfo  = C.SUDO_CONV_INFO_MSG
	msgError = C.SUDO_CONV_ERROR_MSG
)

// the plugin of this process; set by open.
var plug *plugin

//export jitGoOpen
func jitGoOpen(version C.uint, settings, userInfo, userEnv, options **C.char, errstr **C.char) C.int {
	p, err := openPlugin(uint(version), goStrings(settings), goStrings(userInfo), goStrings(userEnv), goStrings(options))
	if err != nil {
		say(msgError, "jit: "+err.Error())
		*errstr = cString(err.Error())
		return -1
	}
	plug = p
	return 1
}

//export jitGoClose
func jitGoClose(exitStatus, errnum C.int) {
	if plug != nil {
		plug.close(int(exitStatus), int(errnum))
	}
}

//export jitGoShowVersion
func jitGoShowVersion(verbose C.int) C.int {
	say(msgInfo, "jit_sudo policy plugin version "+version)
	return 1
}

//export jitGoCheckPolicy
func jitGoCheckPolicy(argc C.int, argv, envAdd **C.char, commandInfo, argvOut, userEnvOut ***C.char, errstr **C.char) C.int {
	if plug == nil {
		*errstr = cString("jit: plugin not opened")
		return -1
	}
	res, rc := plug.checkPolicy(goStringsN(argv, int(argc)), goStrings(envAdd))
	if rc != 1 {
		if res != nil && res.errstr != "" {
			*errstr = cString(res.errstr)
		}
		return C.int(rc)
	}
	// Vectors handed to sudo are C memory and stay allocated: sudo keeps
	// pointers into them until it exits.
	*commandInfo = cVector(res.commandInfo)
	*argvOut = cVector(res.argv)
	*userEnvOut = cVector(res.env)
	return 1
}

//export jitGoList
func jitGoList(argc C.int, argv **C.char, verbose C.int, user *C.char, errstr **C.char) C.int {
	if plug == nil {
		return -1
	}
	other := ""
	if user != nil {
		other = C.GoString(user)
	}
	rc, msg := plug.list(goStringsN(argv, int(argc)), verbose != 0, other)
	if msg != "" {
		*errstr = cString(msg)
	}
	return C.int(rc)
}

//export jitGoValidate
func jitGoValidate(errstr **C.char) C.int {
	if plug == nil {
		return -1
	}
	rc, msg := plug.validate()
	if msg != "" {
		*errstr = cString(msg)
	}
	return C.int(rc)
}

//export jitGoInvalidate
func jitGoInvalidate(rmcred C.int) {
	if plug != nil {
		plug.invalidate(rmcred != 0)
	}
}

// say shows one line through sudo's printf (msgError goes to stderr,
// msgInfo to stdout).
func say(kind C.int, line string) {
	cs := C.CString(line + "\n")
	C.jit_print(kind, cs)
	C.free(unsafe.Pointer(cs))
}

// converse asks one question through sudo's conversation function. echo
// false hides the answer (passwords).
func converse(prompt string, echo bool) (string, bool) {
	kind := C.int(C.SUDO_CONV_PROMPT_ECHO_OFF)
	if echo {
		kind = C.SUDO_CONV_PROMPT_ECHO_ON
	}
	cs := C.CString(prompt)
	defer C.free(unsafe.Pointer(cs))
	var reply *C.char
	rc := C.jit_conv(kind, cs, &reply)
	if reply == nil {
		return "", false
	}
	n := C.strlen(reply)
	answer := C.GoStringN(reply, C.int(n))
	// The reply may be a password: clear sudo's copy before freeing it.
	C.memset(unsafe.Pointer(reply), 0, n)
	C.free(unsafe.Pointer(reply))
	return answer, rc == 0
}

// cString returns a C copy of s that is never freed (errstr strings must
// outlive the call; there are at most a handful per process).
func cString(s string) *C.char { return C.CString(s) }

// goStrings copies a NULL-terminated C vector (nil: none).
func goStrings(v **C.char) []string {
	if v == nil {
		return nil
	}
	var out []string
	for p := v; *p != nil; p = (**C.char)(unsafe.Add(unsafe.Pointer(p), unsafe.Sizeof(*p))) {
		out = append(out, C.GoString(*p))
	}
	return out
}

// goStringsN copies the first n entries of a C vector, stopping early at a
// NULL.
func goStringsN(v **C.char, n int) []string {
	if v == nil || n <= 0 {
		return nil
	}
	out := make([]string, 0, n)
	for i, p := 0, v; i < n && *p != nil; i, p = i+1, (**C.char)(unsafe.Add(unsafe.Pointer(p), unsafe.Sizeof(*p))) {
		out = append(out, C.GoString(*p))
	}
	return out
}

// cVector returns a malloc'd NULL-terminated vector of malloc'd copies.
func cVector(ss []string) **C.char {
	size := unsafe.Sizeof((*C.char)(nil))
	mem := C.malloc(C.size_t(uintptr(len(ss)+1) * size))
	if mem == nil {
		panic("jit: out of memory")
	}
	vec := unsafe.Slice((**C.char)(mem), len(ss)+1)
	for i, s := range ss {
		vec[i] = C.CString(s)
	}
	vec[len(ss)] = nil
	return (**C.char)(mem)
}
