package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The client speaks just enough HTTP/1.1 for jitd's API instead of using
// net/http: net/http drags crypto/tls and x509 into every process that
// loads us, and their initialisation alone cost sudo and sshd about a
// millisecond per call (measured by dlopen-and-call of c-shared libraries
// with and without the import). By default each request has a connection of
// its own ("Connection: close"); with SetKeepAlive one idle connection is kept
// for the next call. Answers are framed by Content-Length, chunked encoding
// or the end of the connection.

// maxHeader bounds the status line and headers of an answer.
const maxHeader = 64 << 10

// persistConn is a connection kept between calls, with its reader.
type persistConn struct {
	net.Conn
	br *bufio.Reader
}

// exchange sends one request and returns the answer's status and body.
func (c *Client) exchange(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	pc, reused, err := c.conn(ctx)
	if err != nil {
		return 0, nil, err
	}
	status, raw, keep, err := c.send(ctx, pc, method, path, body, true)
	if err != nil && reused && ctx.Err() == nil && stale(err) {
		// jitd closed the idle connection before it read anything from
		// it: nothing was done, so the request goes once more, afresh.
		pc.Close()
		if pc, err = c.dialConn(ctx); err != nil {
			return 0, nil, err
		}
		status, raw, keep, err = c.send(ctx, pc, method, path, body, true)
	}
	if err != nil || !keep {
		pc.Close()
		return status, raw, err
	}
	c.putIdle(pc)
	return status, raw, nil
}

// roundTrip sends one request on a connection of its own and, with await,
// reads the answer. Without await it returns once the request is in jitd's
// socket buffer.
func (c *Client) roundTrip(ctx context.Context, method, path string, body []byte, await bool) (int, []byte, error) {
	pc, err := c.dialConn(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer pc.Close()
	status, raw, _, err := c.send(ctx, pc, method, path, body, await)
	return status, raw, err
}

func (c *Client) dialConn(ctx context.Context) (*persistConn, error) {
	conn, err := c.dial(ctx, c.Socket)
	if err != nil {
		return nil, err
	}
	return &persistConn{Conn: conn, br: bufio.NewReaderSize(conn, 4096)}, nil
}

// conn returns the idle connection, if any, or a new one.
func (c *Client) conn(ctx context.Context) (*persistConn, bool, error) {
	c.mu.Lock()
	pc := c.idle
	c.idle = nil
	c.mu.Unlock()
	if pc != nil {
		return pc, true, nil
	}
	pc, err := c.dialConn(ctx)
	return pc, false, err
}

func (c *Client) putIdle(pc *persistConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle != nil || !c.keepAlive {
		pc.Close()
		return
	}
	c.idle = pc
}

// stale says whether err shows a kept connection that jitd had closed
// before it read the request: nothing reached jitd.
func stale(err error) bool {
	return errors.Is(err, errNothingRead) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// send writes one request on pc and, with await, reads the answer; keep
// says whether pc may carry another request.
func (c *Client) send(ctx context.Context, pc *persistConn, method, path string, body []byte, await bool) (status int, raw []byte, keep bool, err error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := pc.SetDeadline(dl); err != nil {
			return 0, nil, false, err
		}
	} else if err := pc.SetDeadline(time.Time{}); err != nil {
		return 0, nil, false, err
	}
	// A cancelled context unblocks the reads and writes below.
	stop := context.AfterFunc(ctx, func() { pc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c.mu.Lock()
	keepAlive := c.keepAlive && await
	c.mu.Unlock()
	var req strings.Builder
	req.Grow(len(path) + len(body) + 128)
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: jitd\r\nUser-Agent: jit\r\n", method, path)
	if !keepAlive {
		req.WriteString("Connection: close\r\n")
	}
	if body != nil {
		fmt.Fprintf(&req, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	req.WriteString("\r\n")
	req.Write(body)
	// One write, so that the request leaves in one sendmsg(2).
	if _, err := io.WriteString(pc, req.String()); err != nil {
		return 0, nil, false, ctxErr(ctx, err)
	}
	if !await {
		return 0, nil, false, nil
	}
	status, h, raw, err := readAnswer(pc.br)
	if err != nil {
		return 0, nil, false, ctxErr(ctx, err)
	}
	return status, raw, keepAlive && h.reusable(), nil
}

// ctxErr prefers the context's reason over the i/o error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// errNothingRead: the connection ended before the answer's first byte.
var errNothingRead = errors.New("jitd closed the connection without answering")

// readAnswer reads one HTTP/1.x response, skipping interim 1xx answers.
func readAnswer(r *bufio.Reader) (int, head, []byte, error) {
	if _, err := r.Peek(1); err == io.EOF {
		return 0, head{}, nil, errNothingRead
	}
	for {
		status, h, err := readHead(r)
		if err != nil {
			return 0, h, nil, err
		}
		if status >= 100 && status < 200 {
			continue
		}
		if status == 204 || status == 304 {
			return status, h, nil, nil
		}
		body, err := readBody(r, h)
		if err != nil {
			return 0, h, nil, fmt.Errorf("reading the body of a %d answer: %w", status, err)
		}
		return status, h, body, nil
	}
}

// head is what the client needs of an answer's headers.
type head struct {
	contentLength int64 // -1: not given
	chunked       bool
	close         bool // Connection: close, or HTTP/1.0
}

// reusable says whether the connection can carry another request after
// this answer: its end was framed, and the server did not say it closes.
func (h head) reusable() bool { return !h.close && (h.chunked || h.contentLength >= 0) }

func readHead(r *bufio.Reader) (int, head, error) {
	h := head{contentLength: -1}
	budget := maxHeader
	line, err := readLine(r, &budget)
	if err != nil {
		return 0, h, fmt.Errorf("reading the status line: %w", err)
	}
	proto, rest, _ := strings.Cut(line, " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil || len(code) != 3 || status < 100 {
		return 0, h, fmt.Errorf("not an HTTP/1.x status line: %q", truncate(line, 80))
	}
	h.close = proto == "HTTP/1.0"
	for {
		line, err := readLine(r, &budget)
		if err != nil {
			return 0, h, fmt.Errorf("reading headers: %w", err)
		}
		if line == "" {
			return status, h, nil
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return 0, h, fmt.Errorf("malformed header line %q", truncate(line, 80))
		}
		value = strings.TrimSpace(value)
		switch {
		case strings.EqualFold(name, "Content-Length"):
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 || (h.contentLength >= 0 && n != h.contentLength) {
				return 0, h, fmt.Errorf("bad Content-Length %q", truncate(value, 40))
			}
			h.contentLength = n
		case strings.EqualFold(name, "Connection"):
			h.close = h.close || strings.EqualFold(value, "close")
		case strings.EqualFold(name, "Transfer-Encoding"):
			if !strings.EqualFold(value, "chunked") {
				return 0, h, fmt.Errorf("unsupported Transfer-Encoding %q", truncate(value, 40))
			}
			h.chunked = true
		}
	}
}

// readLine reads a CRLF- or LF-terminated line, charging it to budget.
func readLine(r *bufio.Reader, budget *int) (string, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		*budget -= len(frag)
		if *budget < 0 {
			return "", errors.New("answer headers too large")
		}
		line = append(line, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(line) > 0 {
			return "", io.ErrUnexpectedEOF
		}
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(line), "\r\n"), nil
	}
}

func readBody(r *bufio.Reader, h head) ([]byte, error) {
	switch {
	case h.chunked:
		return readChunked(r)
	case h.contentLength > maxAnswer:
		return nil, fmt.Errorf("answer of %d bytes is over the %d-byte limit", h.contentLength, maxAnswer)
	case h.contentLength >= 0:
		b := make([]byte, h.contentLength)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return b, nil
	default:
		// No framing: the body ends with the connection.
		b, err := io.ReadAll(io.LimitReader(r, maxAnswer+1))
		if err != nil {
			return nil, err
		}
		if len(b) > maxAnswer {
			return nil, fmt.Errorf("answer is over the %d-byte limit", maxAnswer)
		}
		return b, nil
	}
}

func readChunked(r *bufio.Reader) ([]byte, error) {
	var out []byte
	budget := maxHeader // for the trailers
	for {
		lineBudget := 4096
		line, err := readLine(r, &lineBudget)
		if err != nil {
			return nil, fmt.Errorf("chunk size: %w", err)
		}
		sizeText, _, _ := strings.Cut(line, ";") // chunk extensions mean nothing to us
		size, err := strconv.ParseUint(strings.TrimSpace(sizeText), 16, 63)
		if err != nil {
			return nil, fmt.Errorf("bad chunk size %q", truncate(line, 40))
		}
		if size == 0 {
			for { // trailers, up to the empty line
				line, err := readLine(r, &budget)
				if err != nil {
					return nil, fmt.Errorf("trailers: %w", err)
				}
				if line == "" {
					return out, nil
				}
			}
		}
		if uint64(len(out))+size > maxAnswer {
			return nil, fmt.Errorf("answer is over the %d-byte limit", maxAnswer)
		}
		n := len(out)
		out = append(out, make([]byte, size)...)
		if _, err := io.ReadFull(r, out[n:]); err != nil {
			return nil, err
		}
		lineBudget = 2
		if crlf, err := readLine(r, &lineBudget); err != nil || crlf != "" {
			return nil, errors.New("chunk not followed by CRLF")
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
