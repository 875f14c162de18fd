package api

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Every client of jitd's socket may live inside someone else's process:
// sudo, sshd, login. A write to a stream socket whose peer has gone raises
// SIGPIPE in the writing thread. Go's runtime swallows it for writes on its
// own threads only while its handler is installed (os/signal: "Non-Go
// programs that call Go code"), and the host owns its signal dispositions:
// one that sets SIGPIPE back to SIG_DFL after loading us would die on a
// write to a jitd that just closed the connection. Writes therefore go
// through send(2) with MSG_NOSIGNAL, which returns EPIPE instead.

// dialNoSIGPIPE connects to the Unix socket at path.
func dialNoSIGPIPE(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("%s: not a Unix socket connection", path)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	return &noSigPipeConn{Conn: uc, raw: raw}, nil
}

// noSigPipeConn is a net.Conn whose writes never raise SIGPIPE. Embedding
// the interface (not *net.UnixConn) keeps any other write path, such as an
// io.ReaderFrom, out of reach.
type noSigPipeConn struct {
	net.Conn
	raw syscall.RawConn
}

func (c *noSigPipeConn) Write(b []byte) (int, error) {
	var n int
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, e := unix.SendmsgN(int(fd), b[n:], nil, nil, unix.MSG_NOSIGNAL)
			switch e {
			case nil:
				n += m
			case unix.EINTR:
			case unix.EAGAIN:
				return false // wait until writable (honours deadlines)
			default:
				werr = e
				return true
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return n, &net.OpError{Op: "write", Net: "unix", Addr: c.RemoteAddr(), Err: err}
	}
	return n, nil
}
