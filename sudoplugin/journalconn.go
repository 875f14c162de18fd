package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jitpam/jit/jitd/spool"
)

// journalConn speaks journald's native protocol on a datagram socket, for
// the session recording. Unlike go-systemd's journal.Send (which the audit
// events use) it
//   - encodes binary values exactly (the length-prefixed form, whatever the
//     bytes), and sends a chunk's data without copying it into a message;
//   - never blocks without a bound: the socket is non-blocking and
//     connected, so a full journald queue shows as EAGAIN and poll waits for
//     room up to a deadline; a stopped journald shows as ECONNREFUSED;
//   - never raises SIGPIPE (datagrams, and MSG_NOSIGNAL besides): sudo
//     forwards SIGPIPE to the command;
//   - sends as root. sudo's real uid is the invoking user's, and the kernel
//     passes the real uid to journald unless the sender names another it
//     holds. The recording's readers trust only entries sent as root (see
//     package recording), and journald files them in the system journal
//     rather than in the invoking user's own, which that user may read.
//
// Entries larger than a datagram go through a sealed memfd, as journald's
// own clients do.
type journalConn struct {
	path  string
	fd    int
	creds []byte // SCM_CREDENTIALS: this process, its effective uid and gid
}

// journalSocket is journald's native socket.
const journalSocket = "/run/systemd/journal/socket"

// sndbuf is the send buffer asked for (root may exceed wmem_max): a chunk
// fits in one datagram.
const sndbuf = 8 << 20

func dialJournal(path string) (*journalConn, error) {
	c := newJournalConn(path)
	if err := c.connect(); err != nil {
		return nil, err
	}
	return c, nil
}

func newJournalConn(path string) *journalConn {
	return &journalConn{path: path, fd: -1, creds: unix.UnixCredentials(&unix.Ucred{
		Pid: int32(os.Getpid()), Uid: uint32(os.Geteuid()), Gid: uint32(os.Getegid())})}
}

func (c *journalConn) connect() error {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sndbuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndbuf)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: c.path}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("connect %s: %w", c.path, err)
	}
	c.fd = fd
	return nil
}

func (c *journalConn) close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// send sends one entry (its buffers concatenated) before deadline.
func (c *journalConn) send(bufs [][]byte, deadline time.Time) error {
	err := c.sendmsg(bufs, nil, deadline)
	if errors.Is(err, unix.EMSGSIZE) || errors.Is(err, unix.ENOBUFS) {
		return c.sendFile(bufs, deadline)
	}
	return err
}

// sendFile hands journald the entry in a sealed memfd, as journald's own
// clients do for entries larger than a datagram.
func (c *journalConn) sendFile(bufs [][]byte, deadline time.Time) error {
	fd, err := entryFile(bufs)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return c.sendFD(fd, deadline)
}

// sendFD sends an entry made by entryFile. It returns as soon as the
// descriptor is queued: journald reads the entry later, however big it is.
func (c *journalConn) sendFD(fd int, deadline time.Time) error {
	return c.sendmsg(nil, unix.UnixRights(fd), deadline)
}

// entryFile returns a sealed memfd holding the entry (its buffers
// concatenated), for sendFD.
func entryFile(bufs [][]byte) (int, error) {
	fd, err := unix.MemfdCreate("jit-journal", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("memfd: %w", err)
	}
	if _, err := writeEntry(fd, bufs, 0); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("memfd: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("memfd seal: %w", err)
	}
	return fd, nil
}

// spoolDir is where jitd keeps allocated files (see package spool).
const spoolDir = "/run/jitd/spool"

// spoolFile returns a file from jitd's spool holding the entry, for sendFD.
// journald reads a file that is not a sealed memfd only from root, so this
// is for root only: another sender's entry would be dropped without a word.
func spoolFile(dir string, bufs [][]byte) (int, error) {
	if dir == "" || os.Geteuid() != 0 {
		return -1, spool.ErrEmpty
	}
	fd, err := spool.Claim(dir)
	if err != nil {
		return -1, err
	}
	// The file is longer than most entries: what is past the entry goes.
	off, err := writeEntry(fd, bufs, 0)
	if err == nil {
		err = unix.Ftruncate(fd, off)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("spool file: %w", err)
	}
	return fd, nil
}

// writeEntry writes the entry's buffers, concatenated, into fd from
// offset off, and returns the offset after them.
func writeEntry(fd int, bufs [][]byte, off int64) (int64, error) {
	for _, b := range bufs {
		for len(b) > 0 {
			n, err := unix.Pwrite(fd, b, off)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return off, err
			}
			b, off = b[n:], off+int64(n)
		}
	}
	return off, nil
}

// sendmsg sends one datagram, waiting for room in journald's queue until
// deadline, and dialing again once when journald was restarted.
func (c *journalConn) sendmsg(bufs [][]byte, oob []byte, deadline time.Time) error {
	if c.fd < 0 {
		if err := c.connect(); err != nil {
			return err
		}
	}
	redialed := false
	for {
		_, err := unix.SendmsgBuffers(c.fd, bufs, append(oob, c.creds...), nil, unix.MSG_NOSIGNAL)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			if err := c.waitWritable(deadline); err != nil {
				return err
			}
		case errors.Is(err, unix.EMSGSIZE), errors.Is(err, unix.ENOBUFS):
			return fmt.Errorf("journald: %w", err)
		case !redialed && (errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.EPIPE)):
			// journald restarted (a new socket) or is gone: dial again
			// once; if nobody listens, say so.
			if cerr := c.connect(); cerr != nil {
				return fmt.Errorf("journald is not running: %w", cerr)
			}
			redialed = true
		default:
			return fmt.Errorf("journald: %w", err)
		}
	}
}

func (c *journalConn) waitWritable(deadline time.Time) error {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return errors.New("journald is not taking entries (its queue stayed full)")
		}
		ms := int(left / time.Millisecond)
		if ms < 1 {
			ms = 1
		}
		fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, ms)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
}

// entryBuilder builds the fields of one native-protocol entry.
type entryBuilder struct{ b []byte }

// add appends NAME=VALUE, in the length-prefixed form when the value could
// not be sent as a line.
func (e *entryBuilder) add(name, value string) {
	if strings.IndexByte(value, '\n') < 0 {
		e.b = append(e.b, name...)
		e.b = append(e.b, '=')
		e.b = append(e.b, value...)
		e.b = append(e.b, '\n')
		return
	}
	e.b = append(e.b, name...)
	e.b = append(e.b, '\n')
	e.b = binary.LittleEndian.AppendUint64(e.b, uint64(len(value)))
	e.b = append(e.b, value...)
	e.b = append(e.b, '\n')
}

func (e *entryBuilder) addInt(name string, v int64) {
	e.b = append(e.b, name...)
	e.b = append(e.b, '=')
	e.b = strconv.AppendInt(e.b, v, 10)
	e.b = append(e.b, '\n')
}

// binaryHeader returns the header of a length-prefixed field of n bytes;
// the value and a final newline follow it.
func binaryHeader(name string, n int) []byte {
	h := make([]byte, 0, len(name)+9)
	h = append(h, name...)
	h = append(h, '\n')
	return binary.LittleEndian.AppendUint64(h, uint64(n))
}
