package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/jitpam/jit/jitd/grant"
)

// DefaultTimeout is how long clients in sudo and PAM wait for jitd.
const DefaultTimeout = 2 * time.Second

// Client speaks to jitd over its Unix socket.
type Client struct {
	Socket string
	http   *http.Client
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
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dial(ctx, path)
		},
		MaxIdleConns:           4,
		IdleConnTimeout:        30 * time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &Client{Socket: path, http: &http.Client{Transport: tr}}
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Unavailable reports whether err means jitd could not be reached or did not
// answer in time (as opposed to answering with an error).
func Unavailable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeUnavailable
}

// do sends in (if non-nil) as JSON and decodes the answer into out.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	u := "http://jitd" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &Error{Code: CodeUnavailable, Message: fmt.Sprintf("cannot reach jitd at %s: %v", c.Socket, unwrapURL(err))}
	}
	defer resp.Body.Close()
	// Answers are small; a bound keeps a confused peer from flooding us.
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &Error{Code: CodeUnavailable, Message: fmt.Sprintf("reading jitd's answer on %s: %v", c.Socket, err)}
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Error == nil || eb.Error.Code == "" {
			return &Error{Status: resp.StatusCode, Code: CodeInternal,
				Message: fmt.Sprintf("jitd at %s answered %s with a body that is not an API error", c.Socket, resp.Status)}
		}
		eb.Error.Status = resp.StatusCode
		return eb.Error
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &Error{Code: CodeInternal, Message: fmt.Sprintf("jitd at %s answered with malformed JSON: %v", c.Socket, err)}
	}
	return nil
}

// unwrapURL drops net/http's "Get \"http://jitd/v1/...\":" prefix, which
// names a host that does not exist.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(ue.Err, context.DeadlineExceeded) {
			return errors.New("no answer in time")
		}
		return ue.Err
	}
	return err
}

// Status returns jitd's status and the caller's identity as jitd sees it.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.do(ctx, http.MethodGet, PathStatus, nil, nil, &s)
}

// Check asks for a decision.
func (c *Client) Check(ctx context.Context, req *CheckRequest) (*Decision, error) {
	var d Decision
	return &d, c.do(ctx, http.MethodPost, PathCheck, nil, req, &d)
}

// Grant creates a grant.
func (c *Client) Grant(ctx context.Context, spec *GrantSpec) (*grant.Grant, error) {
	var g grant.Grant
	return &g, c.do(ctx, http.MethodPost, PathGrants, nil, spec, &g)
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
	return gs, c.do(ctx, http.MethodGet, PathGrants, q, nil, &gs)
}

// GetGrant returns one grant.
func (c *Client) GetGrant(ctx context.Context, id string) (*grant.Grant, error) {
	var g grant.Grant
	return &g, c.do(ctx, http.MethodGet, PathGrants+"/"+url.PathEscape(id), nil, nil, &g)
}

// Revoke ends a grant now.
func (c *Client) Revoke(ctx context.Context, id, reason string) (*grant.Grant, error) {
	var g grant.Grant
	return &g, c.do(ctx, http.MethodPost, PathGrants+"/"+url.PathEscape(id)+"/revoke", nil, &Ending{Reason: reason}, &g)
}

// Extend moves a live grant's end later by d.
func (c *Client) Extend(ctx context.Context, id string, d time.Duration, reason string) (*grant.Grant, error) {
	var g grant.Grant
	return &g, c.do(ctx, http.MethodPost, PathGrants+"/"+url.PathEscape(id)+"/extend", nil, &Extension{Duration: Duration(d), Reason: reason}, &g)
}

// Request files an access request for the caller.
func (c *Client) Request(ctx context.Context, spec *RequestSpec) (*grant.Request, error) {
	var r grant.Request
	return &r, c.do(ctx, http.MethodPost, PathRequests, nil, spec, &r)
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
	return rs, c.do(ctx, http.MethodGet, PathRequests, q, nil, &rs)
}

// Approve approves a request and returns the grant it created.
func (c *Client) Approve(ctx context.Context, id string, a *Approval) (*grant.Grant, error) {
	var g grant.Grant
	return &g, c.do(ctx, http.MethodPost, PathRequests+"/"+url.PathEscape(id)+"/approve", nil, a, &g)
}

// Deny denies a request.
func (c *Client) Deny(ctx context.Context, id, reason string) (*grant.Request, error) {
	var r grant.Request
	return &r, c.do(ctx, http.MethodPost, PathRequests+"/"+url.PathEscape(id)+"/deny", nil, &Ending{Reason: reason}, &r)
}

// OpenSession registers an elevated session (root only).
func (c *Client) OpenSession(ctx context.Context, spec *SessionSpec) (*grant.Session, error) {
	var s grant.Session
	return &s, c.do(ctx, http.MethodPost, PathSessions, nil, spec, &s)
}

// CloseSession ends a session registered by OpenSession.
func (c *Client) CloseSession(ctx context.Context, id string, end *SessionEnd) error {
	return c.do(ctx, http.MethodPost, PathSessions+"/"+url.PathEscape(id)+"/close", nil, end, nil)
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
	return ss, c.do(ctx, http.MethodGet, PathSessions, q, nil, &ss)
}

// Audit lists audit records since t (zero: all).
func (c *Client) Audit(ctx context.Context, since time.Time) ([]AuditRecord, error) {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.Format(time.RFC3339Nano))
	}
	var rs []AuditRecord
	return rs, c.do(ctx, http.MethodGet, PathAudit, q, nil, &rs)
}

// VerifyAudit walks the audit chain on the server.
func (c *Client) VerifyAudit(ctx context.Context) (*AuditVerification, error) {
	var v AuditVerification
	return &v, c.do(ctx, http.MethodGet, PathAudit+"/verify", nil, nil, &v)
}
