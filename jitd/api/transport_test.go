package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cannedClient returns a client whose every connection is answered with
// answer (after the request has been read), and a channel with the requests
// it received.
func cannedClient(t *testing.T, answer string) (*Client, <-chan string) {
	t.Helper()
	reqs := make(chan string, 4)
	dial := func(ctx context.Context, path string) (net.Conn, error) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			br := bufio.NewReader(server)
			var req strings.Builder
			length := 0
			for {
				line, err := br.ReadString('\n')
				req.WriteString(line)
				if err != nil {
					return
				}
				if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
					for _, c := range strings.TrimSpace(v) {
						length = length*10 + int(c-'0')
					}
				}
				if line == "\r\n" {
					break
				}
			}
			body := make([]byte, length)
			io.ReadFull(br, body)
			req.Write(body)
			reqs <- req.String()
			io.WriteString(server, answer)
		}()
		return client, nil
	}
	return NewClientDialer("/nonexistent/jitd.sock", dial), reqs
}

func TestClientFraming(t *testing.T) {
	body := `{"allow":true,"reason":"ok","grant_id":"g-1"}`
	cases := map[string]string{
		"content-length": "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body,
		"chunked":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n" + body[:5] + "\r\n" + hex(len(body)-5) + ";ext=1\r\n" + body[5:] + "\r\n0\r\nX-Trailer: y\r\n\r\n",
		"until-close":    "HTTP/1.0 200 OK\r\n\r\n" + body,
		"interim-100":    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body,
		"bare-LF":        "HTTP/1.1 200 OK\nContent-Length: " + itoa(len(body)) + "\n\n" + body,
	}
	for name, answer := range cases {
		t.Run(name, func(t *testing.T) {
			c, reqs := cannedClient(t, answer)
			d, err := c.Check(context.Background(), &CheckRequest{User: "alice", Command: "/usr/bin/id"})
			if err != nil {
				t.Fatal(err)
			}
			if !d.Allow || d.GrantID != "g-1" {
				t.Fatalf("decision %+v", d)
			}
			req := <-reqs
			for _, want := range []string{"POST /v1/check HTTP/1.1\r\n", "Connection: close\r\n", "Content-Type: application/json\r\n", `"command":"/usr/bin/id"`} {
				if !strings.Contains(req, want) {
					t.Errorf("request lacks %q:\n%s", want, req)
				}
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	cases := []struct {
		name, answer string
		code         string
		fragment     string
	}{
		{"api error", "HTTP/1.1 403 Forbidden\r\nContent-Length: 52\r\n\r\n" + `{"error":{"code":"forbidden","message":"not yours"}}`, "forbidden", "not yours"},
		{"error without API body", "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 5\r\n\r\noops!", CodeInternal, "not an API error"},
		{"garbage", "SSH-2.0-OpenSSH_9.2\r\n", CodeUnavailable, "not an HTTP/1.x status line"},
		{"malformed JSON", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{x}", CodeInternal, "malformed JSON"},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n{}", CodeUnavailable, "unexpected EOF"},
		{"huge length", "HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n", CodeUnavailable, "over the"},
		{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", CodeUnavailable, "bad Content-Length"},
		{"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", CodeUnavailable, "bad Content-Length"},
		{"gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", CodeUnavailable, "Transfer-Encoding"},
		{"header flood", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: "+strings.Repeat("a", 1000)+"\r\n", 70) + "\r\n", CodeUnavailable, "too large"},
		{"header without colon", "HTTP/1.1 200 OK\r\nnonsense\r\n\r\n", CodeUnavailable, "malformed header"},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", CodeUnavailable, "bad chunk size"},
		{"closed at once", "", CodeUnavailable, "closed the connection without answering"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := cannedClient(t, tc.answer)
			_, err := c.Status(context.Background())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if e.Code != tc.code || !strings.Contains(e.Message, tc.fragment) {
				t.Fatalf("got code %q message %q; want code %q containing %q", e.Code, e.Message, tc.code, tc.fragment)
			}
		})
	}
}

func TestClientDeadline(t *testing.T) {
	// A peer that accepts and never answers: the call ends at the deadline.
	dial := func(ctx context.Context, path string) (net.Conn, error) {
		client, server := net.Pipe()
		go io.Copy(io.Discard, server)
		t.Cleanup(func() { server.Close() })
		return client, nil
	}
	c := NewClientDialer("/nonexistent/jitd.sock", dial)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Check(ctx, &CheckRequest{User: "alice"})
	if !Unavailable(err) || !strings.Contains(err.Error(), "no answer in time") {
		t.Fatalf("got %v, want unavailable: no answer in time", err)
	}

	// Cancellation without a deadline ends the call too.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = c.Check(ctx, &CheckRequest{User: "alice"})
	if !Unavailable(err) || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("got %v, want unavailable: context canceled", err)
	}
}

// The same on a real socket, with the poller and with the blocking
// connection sudo and PAM use: a jitd that accepts and never answers, and
// (blocking) one that never accepts.
func TestClientDeadlineOnSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "jitd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	for name, dial := range map[string]func(context.Context, string) (net.Conn, error){"poller": nil, "blocking": DialBlocking} {
		c := NewClientDialer(sock, dial)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err = c.Check(ctx, &CheckRequest{User: "alice"})
		cancel()
		if !Unavailable(err) || !strings.Contains(err.Error(), "no answer in time") {
			t.Fatalf("%s: got %v, want unavailable: no answer in time", name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s: the call took %v with a 100ms deadline", name, d)
		}
		ctx, cancel = context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err = c.Check(ctx, &CheckRequest{User: "alice"})
		if !Unavailable(err) || !strings.Contains(err.Error(), "canceled") {
			t.Fatalf("%s: got %v, want unavailable: context canceled", name, err)
		}
	}

	// A listener whose queue is full: connect(2) waits, up to the deadline.
	full := filepath.Join(t.TempDir(), "full.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: full}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	var queued []net.Conn
	defer func() {
		for _, q := range queued {
			q.Close()
		}
	}()
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		conn, err := DialBlocking(ctx, full)
		cancel()
		if err == nil {
			queued = append(queued, conn)
			if i > 10 {
				t.Fatal("a listen queue of 0 took more than 10 connections")
			}
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connect to a full queue: %v, want the deadline", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("connect took %v with a 100ms deadline", d)
		}
		break
	}
}

func TestClientUnreachable(t *testing.T) {
	c := NewClient("/nonexistent/jitd.sock")
	_, err := c.Status(context.Background())
	if !Unavailable(err) || !strings.Contains(err.Error(), "/nonexistent/jitd.sock") {
		t.Fatalf("got %v, want unavailable naming the socket", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
func hex(n int) string  { return strconv.FormatInt(int64(n), 16) }

// keepAliveServer serves /v1/status on a Unix socket and counts the
// connections it accepted.
func keepAliveServer(t *testing.T, h http.HandlerFunc) (string, *atomic.Int32, *http.Server) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "jitd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	srv := &http.Server{Handler: h, ConnState: func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock, &conns, srv
}

func statusHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"version":"test"}`)
}

func TestClientKeepAlive(t *testing.T) {
	sock, conns, srv := keepAliveServer(t, statusHandler)
	var open atomic.Int32 // connections the client has not closed
	c := NewClientDialer(sock, func(ctx context.Context, path string) (net.Conn, error) {
		conn, err := dialNoSIGPIPE(ctx, path)
		if err == nil {
			open.Add(1)
			conn = &countedConn{Conn: conn, open: &open}
		}
		return conn, err
	})
	c.SetKeepAlive(true)
	for i := 0; i < 5; i++ {
		if _, err := c.Status(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("5 calls with keep-alive used %d connections, want 1", n)
	}
	// jitd closing idle connections (its idle timeout, a restart) is
	// invisible: the next call goes on a new connection.
	srv.SetKeepAlivesEnabled(false) // closes idle connections
	time.Sleep(50 * time.Millisecond)
	srv.SetKeepAlivesEnabled(true)
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("call after jitd closed the idle connection: %v", err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("want a second connection after the first was closed, have %d", n)
	}
	if n := open.Load(); n != 1 {
		t.Fatalf("the client holds %d connections open, want only the kept one", n)
	}
	c.Close()
	if n := open.Load(); n != 0 {
		t.Fatalf("Close left %d connections open", n)
	}
}

// countedConn counts itself out of open when closed (once).
type countedConn struct {
	net.Conn
	open *atomic.Int32
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

func TestClientWithoutKeepAliveClosesEachConnection(t *testing.T) {
	sock, conns, _ := keepAliveServer(t, statusHandler)
	c := NewClient(sock)
	for i := 0; i < 3; i++ {
		if _, err := c.Status(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("3 calls without keep-alive used %d connections, want 3", n)
	}
	if c.idle != nil {
		t.Fatal("a connection stayed open after the call")
	}
}

func TestClientDropsConnectionTheServerCloses(t *testing.T) {
	sock, conns, _ := keepAliveServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		statusHandler(w, r)
	})
	c := NewClient(sock)
	c.SetKeepAlive(true)
	for i := 0; i < 2; i++ {
		if _, err := c.Status(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 2 || c.idle != nil {
		t.Fatalf("answers with Connection: close must not be reused: %d connections, idle %v", n, c.idle)
	}
}
