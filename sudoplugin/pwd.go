package main

/*
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>
*/
import "C"

import (
	"syscall"
	"unsafe"
)

// loginShell returns the login shell of the user called name from the user
// database (os/user does not expose it), or "".
func loginShell(name string) string {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	size := C.sysconf(C._SC_GETPW_R_SIZE_MAX)
	if size < 1024 {
		size = 1024
	}
	for ; size <= 1<<20; size *= 2 {
		buf := C.malloc(C.size_t(size))
		var pw C.struct_passwd
		var res *C.struct_passwd
		rc := C.getpwnam_r(cname, &pw, (*C.char)(buf), C.size_t(size), &res)
		shell := ""
		if rc == 0 && res != nil && pw.pw_shell != nil {
			shell = C.GoString(pw.pw_shell)
		}
		C.free(buf)
		if syscall.Errno(rc) == syscall.ERANGE {
			continue
		}
		return shell
	}
	return ""
}
