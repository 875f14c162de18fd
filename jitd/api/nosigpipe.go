package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

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

// DialBlocking connects to the Unix socket at path, giving up at ctx's
// deadline, for clients that run on the host's thread: the sudo plugin
// and the PAM module (NewClientDialer(path, DialBlocking)). They are called
// on that thread (a cgo callback, locked to it), and through Go's poller
// every wait for jitd parks the goroutine and hands it back to that thread
// through the scheduler, a few thread wake-ups per read: inside sudo the
// exchange took about 0.6 ms that way against 0.2 ms of jitd's own work,
// and 0.45 ms on a blocking socket used through plain system calls, with
// the deadline as SO_RCVTIMEO/SO_SNDTIMEO. A process with many concurrent
// clients (jitctl's benchmarks) keeps the poller: blocked system calls
// would each hold a thread.
func DialBlocking(ctx context.Context, path string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("socket", err)}
	}
	c := &sockConn{fd: fd, addr: &net.UnixAddr{Name: path, Net: "unix"}}
	if dl, ok := ctx.Deadline(); ok {
		c.deadline = dl
	}
	// connect(2) on a Unix stream socket waits while the listener's
	// queue is full, bounded by the send timeout.
	err = c.do(unix.SO_SNDTIMEO, func(fd int) error { return unix.Connect(fd, &unix.SockaddrUnix{Name: path}) })
	if err != nil {
		unix.Close(fd)
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: c.addr, Err: err}
	}
	return c, nil
}

// sockConn is a net.Conn on a blocking socket. Reads, writes and Close are
// for one goroutine at a time; SetDeadline may come from another (it is
// how a cancelled context ends a blocked read).
type sockConn struct {
	addr *net.UnixAddr

	mu       sync.Mutex
	fd       int // -1 once closed
	deadline time.Time
	shut     bool // a passed deadline shut the socket down
}

// do runs op (one system call) with the socket's timeout opt set to what
// is left until the deadline, retrying after signals.
func (c *sockConn) do(opt int, op func(fd int) error) error {
	c.mu.Lock()
	fd, dl, shut := c.fd, c.deadline, c.shut
	c.mu.Unlock()
	if fd < 0 {
		return net.ErrClosed
	}
	if shut {
		return os.ErrDeadlineExceeded
	}
	var tv unix.Timeval // zero: no timeout
	if !dl.IsZero() {
		left := time.Until(dl)
		if left <= 0 {
			return os.ErrDeadlineExceeded
		}
		tv = unix.NsecToTimeval(max(left, time.Microsecond).Nanoseconds())
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, opt, &tv); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	for {
		err := op(fd)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN || err == unix.EINPROGRESS:
			return os.ErrDeadlineExceeded
		case err != nil:
			c.mu.Lock()
			shut = c.shut
			c.mu.Unlock()
			if shut {
				return os.ErrDeadlineExceeded
			}
			return err
		}
		return nil
	}
}

func (c *sockConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	err := c.do(unix.SO_RCVTIMEO, func(fd int) error {
		var err error
		n, err = unix.Read(fd, b)
		return err
	})
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: "unix", Addr: c.addr, Err: err}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (c *sockConn) Write(b []byte) (int, error) {
	var n int
	for n < len(b) {
		var m int
		err := c.do(unix.SO_SNDTIMEO, func(fd int) error {
			var err error
			m, err = unix.SendmsgN(fd, b[n:], nil, nil, unix.MSG_NOSIGNAL)
			return err
		})
		if err != nil {
			return n, &net.OpError{Op: "write", Net: "unix", Addr: c.addr, Err: err}
		}
		n += m
	}
	return n, nil
}

// SetDeadline bounds the reads and writes that follow. A deadline that
// has passed also ends one that is blocked now: the socket is shut down.
func (c *sockConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return net.ErrClosed
	}
	c.deadline = t
	if !t.IsZero() && !time.Now().Before(t) && !c.shut {
		c.shut = true
		if err := unix.Shutdown(c.fd, unix.SHUT_RDWR); err != nil && !errors.Is(err, unix.ENOTCONN) {
			return os.NewSyscallError("shutdown", err)
		}
	}
	return nil
}

func (c *sockConn) SetReadDeadline(t time.Time) error  { return c.SetDeadline(t) }
func (c *sockConn) SetWriteDeadline(t time.Time) error { return c.SetDeadline(t) }

func (c *sockConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return net.ErrClosed
	}
	err := unix.Close(c.fd)
	c.fd = -1
	if err != nil {
		return fmt.Errorf("close %s: %w", c.addr.Name, err)
	}
	return nil
}

func (c *sockConn) LocalAddr() net.Addr  { return &net.UnixAddr{Net: "unix"} }
func (c *sockConn) RemoteAddr() net.Addr { return c.addr }
