package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

// DefaultTimeout is how long clients in sudo and PAM wait for jitd.
const DefaultTimeout = 2 * time.Second

// maxAnswer bounds an answer's body, so that a confused peer cannot make
// sudo or sshd allocate without limit.
const maxAnswer = 64 << 20

// Client speaks to jitd over its Unix socket. Each call is one HTTP/1.1
// exchange on a connection of its own (see transport.go): the clients live
// in sudo and sshd, make one or two calls, and must leave nothing running
// behind them.
type Client struct {
	Socket string
	dial   func(ctx context.Context, path string) (net.Conn, error)

	keepAlive bool
	mu        sync.Mutex
	idle      *persistConn
}

// NewClient returns a client for the socket at path ("" means DefaultSocket).
// Every call also honours its context's deadline.
func NewClient(path string) *Client { return NewClientDialer(path, nil) }

// NewClientDialer is NewClient with dial making the connections to the
// socket at path (nil: dialNoSIGPIPE, whose writes never raise SIGPIPE in
// the host process).
func NewClientDialer(path string, dial func(ctx context.Context, path string) (net.Conn, error)) *Client {
	if path == "" {
		path = DefaultSocket
	}
	if dial == nil {
		dial = dialNoSIGPIPE
	}
	return &Client{Socket: path, dial: dial}
}

// SetKeepAlive makes the client keep one connection open between calls,
// for callers that make many (jitctl, benchmarks). sudo and PAM leave it
// off: nothing of theirs stays open while the command or login runs.
func (c *Client) SetKeepAlive(on bool) {
	c.mu.Lock()
	c.keepAlive = on
	c.mu.Unlock()
	if !on {
		c.Close()
	}
}

// Close closes the kept connection, if any.
func (c *Client) Close() {
	c.mu.Lock()
	pc := c.idle
	c.idle = nil
	c.mu.Unlock()
	if pc != nil {
		pc.Close()
	}
}

// Unavailable reports whether err means jitd could not be reached or did not
// answer in time (as opposed to answering with an error).
func Unavailable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeUnavailable
}

// do sends in (if non-nil) as JSON and decodes the answer into out.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var b []byte
		var err error
		if m, ok := in.(json.Marshaler); ok {
			// A request that encodes itself (checkjson.go) is sent as it
			// does, without encoding/json's first-use reflection.
			b, err = m.MarshalJSON()
		} else {
			b, err = json.Marshal(in)
		}
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = b
	}
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	status, raw, err := c.exchange(ctx, method, path, body)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			err = errors.New("no answer in time")
		}
		return &Error{Code: CodeUnavailable, Message: fmt.Sprintf("cannot reach jitd at %s: %v", c.Socket, err)}
	}
	if status/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Error == nil || eb.Error.Code == "" {
			return &Error{Status: status, Code: CodeInternal,
				Message: fmt.Sprintf("jitd at %s answered status %d with a body that is not an API error", c.Socket, status)}
		}
		eb.Error.Status = status
		return eb.Error
	}
	if out == nil {
		return nil
	}
	if u, ok := out.(json.Unmarshaler); ok {
		// An answer that decodes itself (decisionjson.go) checks its own
		// syntax, without encoding/json's first-use reflection.
		err = u.UnmarshalJSON(raw)
	} else {
		err = json.Unmarshal(raw, out)
	}
	if err != nil {
		return &Error{Code: CodeInternal, Message: fmt.Sprintf("jitd at %s answered with malformed JSON: %v", c.Socket, err)}
	}
	return nil
}

// Status returns jitd's status and the caller's identity as jitd sees it.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.do(ctx, "GET", PathStatus, nil, nil, &s)
}

// Check asks for a decision.
func (c *Client) Check(ctx context.Context, req *CheckRequest) (*Decision, error) {
	var d Decision
	return &d, c.do(ctx, "POST", PathCheck, nil, req, &d)
}

// Grant creates a grant.
func (c *Client) Grant(ctx context.Context, spec *GrantSpec) (*grant.Grant, error) {
	var g grant.Grant
	return &g, c.do(ctx, "POST", PathGrants, nil, spec, &g)
}

// GrantFilter selects grants to list.
type GrantFilter struct {
	User string
	// All includes ended grants.
	All bool
}

// Grants lists grants (a non-approver sees only their own).
func (c *Client) Grants(ctx context.Context, f GrantFilter) ([]grant.Grant, error) {
	q := url.Values{}
	if f.User != "" {
		q.Set("user", f.User)
	}
	if f.All {
		q.Set("all", "1")
	}
	var gs []grant.Grant
	return gs, c.do(ctx, "GET", PathGrants, q, nil, &gs)
}

// GetGrant returns one grant.
func (c *Client) GetGrant(ctx context.Context, id string) (*grant.Grant, error) {
	var g grant.Grant
	return &g, c.do(ctx, "GET", PathGrants+"/"+url.PathEscape(id), nil, nil, &g)
}

// Revoke ends a grant now.
func (c *Client) Revoke(ctx context.Context, id, reason string) (*grant.Grant, error) {
	var g grant.Grant
	return &g, c.do(ctx, "POST", PathGrants+"/"+url.PathEscape(id)+"/revoke", nil, &Ending{Reason: reason}, &g)
}

// Extend moves a live grant's end later by d.
func (c *Client) Extend(ctx context.Context, id string, d time.Duration, reason string) (*grant.Grant, error) {
	var g grant.Grant
	return &g, c.do(ctx, "POST", PathGrants+"/"+url.PathEscape(id)+"/extend", nil, &Extension{Duration: Duration(d), Reason: reason}, &g)
}

// Request files an access request for the caller.
func (c *Client) Request(ctx context.Context, spec *RequestSpec) (*grant.Request, error) {
	var r grant.Request
	return &r, c.do(ctx, "POST", PathRequests, nil, spec, &r)
}

// Requests lists requests: pending ones, or all with all set. A non-approver
// sees only their own.
func (c *Client) Requests(ctx context.Context, all bool, user string) ([]grant.Request, error) {
	q := url.Values{}
	if all {
		q.Set("all", "1")
	}
	if user != "" {
		q.Set("user", user)
	}
	var rs []grant.Request
	return rs, c.do(ctx, "GET", PathRequests, q, nil, &rs)
}

// Approve approves a request and returns the grant it created.
func (c *Client) Approve(ctx context.Context, id string, a *Approval) (*grant.Grant, error) {
	var g grant.Grant
	return &g, c.do(ctx, "POST", PathRequests+"/"+url.PathEscape(id)+"/approve", nil, a, &g)
}

// Deny denies a request.
func (c *Client) Deny(ctx context.Context, id, reason string) (*grant.Request, error) {
	var r grant.Request
	return &r, c.do(ctx, "POST", PathRequests+"/"+url.PathEscape(id)+"/deny", nil, &Ending{Reason: reason}, &r)
}

// OpenSession registers an elevated session (root only).
func (c *Client) OpenSession(ctx context.Context, spec *SessionSpec) (*grant.Session, error) {
	var s grant.Session
	return &s, c.do(ctx, "POST", PathSessions, nil, spec, &s)
}

// CloseSession ends a session registered by OpenSession.
func (c *Client) CloseSession(ctx context.Context, id string, end *SessionEnd) error {
	return c.do(ctx, "POST", PathSessions+"/"+url.PathEscape(id)+"/close", nil, end, nil)
}

// SendCloseSession is CloseSession without waiting for jitd's answer: it
// returns once the request is in jitd's socket buffer. sudo waits for its
// plugin's close before it exits, and the answer carries nothing the plugin
// can act on; if jitd never records the close, it ends the session itself
// when it finds the session's process gone.
func (c *Client) SendCloseSession(ctx context.Context, id string, end *SessionEnd) error {
	b, err := json.Marshal(end)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	if _, _, err := c.roundTrip(ctx, "POST", PathSessions+"/"+url.PathEscape(id)+"/close", b, false); err != nil {
		return &Error{Code: CodeUnavailable, Message: fmt.Sprintf("cannot reach jitd at %s: %v", c.Socket, err)}
	}
	return nil
}

// SessionFilter selects sessions to list.
type SessionFilter struct {
	User  string
	Since time.Time
	Open  bool
}

// Sessions lists sessions.
func (c *Client) Sessions(ctx context.Context, f SessionFilter) ([]grant.Session, error) {
	q := url.Values{}
	if f.User != "" {
		q.Set("user", f.User)
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if f.Open {
		q.Set("open", "1")
	}
	var ss []grant.Session
	return ss, c.do(ctx, "GET", PathSessions, q, nil, &ss)
}

// Audit lists audit records since t (zero: all).
func (c *Client) Audit(ctx context.Context, since time.Time) ([]AuditRecord, error) {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.Format(time.RFC3339Nano))
	}
	var rs []AuditRecord
	return rs, c.do(ctx, "GET", PathAudit, q, nil, &rs)
}

// VerifyAudit walks the audit chain on the server.
func (c *Client) VerifyAudit(ctx context.Context) (*AuditVerification, error) {
	var v AuditVerification
	return &v, c.do(ctx, "GET", PathAudit+"/verify", nil, nil, &v)
}
