package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/user"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Peer is the process on the other end of a connection, as the kernel
// reported it when the connection was made.
type Peer struct {
	PID int
	UID int
	GID int
}

type peerKey struct{}

// peerFromConn reads SO_PEERCRED; any other kind of connection has no peer.
func peerFromConn(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("connection is %T, not a Unix socket", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", credErr)
	}
	return Peer{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}, nil
}

// connContext puts the peer into every request's context; a connection
// whose peer cannot be read gets none and every request on it is refused.
func connContext(ctx context.Context, c net.Conn) context.Context {
	p, err := peerFromConn(c)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, p)
}

func peerOf(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// Account is a user as the system's user database knows them.
type Account struct {
	Name   string
	UID    int
	Groups []string // names of all groups, primary included
	// GIDs are all group IDs, primary included, named or not, in the
	// order the group database lists them: a sudo command's groups.
	GIDs []int
}

// accounts resolves users through the system's user database (NSS when jitd
// is built with cgo) with a short cache: sudo asks about the same user many
// times a second during an incident, and group changes take effect within
// the cache's lifetime.
type accounts struct {
	ttl time.Duration
	now func() time.Time

	mu     sync.Mutex
	byName map[string]cachedAccount
	byUID  map[int]cachedAccount
}

type cachedAccount struct {
	acct Account
	err  error
	at   time.Time
}

var errUnknownUser = errors.New("unknown user")

func newAccounts(ttl time.Duration, now func() time.Time) *accounts {
	return &accounts{ttl: ttl, now: now, byName: map[string]cachedAccount{}, byUID: map[int]cachedAccount{}}
}

func (a *accounts) byNameLookup(name string) (Account, error) {
	a.mu.Lock()
	c, ok := a.byName[name]
	a.mu.Unlock()
	if ok && a.now().Sub(c.at) < a.ttl {
		return c.acct, c.err
	}
	u, err := user.Lookup(name)
	acct, err := a.fill(u, err, "user "+strconv.Quote(name))
	a.store(acct, err, name, -1)
	return acct, err
}

func (a *accounts) byUIDLookup(uid int) (Account, error) {
	a.mu.Lock()
	c, ok := a.byUID[uid]
	a.mu.Unlock()
	if ok && a.now().Sub(c.at) < a.ttl {
		return c.acct, c.err
	}
	u, err := user.LookupId(strconv.Itoa(uid))
	acct, err := a.fill(u, err, "uid "+strconv.Itoa(uid))
	a.store(acct, err, "", uid)
	return acct, err
}

func (a *accounts) fill(u *user.User, err error, what string) (Account, error) {
	if err != nil {
		var unknownUser user.UnknownUserError
		var unknownID user.UnknownUserIdError
		if errors.As(err, &unknownUser) || errors.As(err, &unknownID) {
			return Account{}, fmt.Errorf("%s: %w", what, errUnknownUser)
		}
		return Account{}, fmt.Errorf("look up %s: %w", what, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return Account{}, fmt.Errorf("look up %s: uid %q: %w", what, u.Uid, err)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return Account{}, fmt.Errorf("groups of %s: %w", what, err)
	}
	acct := Account{Name: u.Username, UID: uid}
	for _, gid := range gids {
		if n, err := strconv.Atoi(gid); err == nil {
			acct.GIDs = append(acct.GIDs, n)
		}
		g, err := user.LookupGroupId(gid)
		if err != nil {
			continue // a gid without a name cannot match a "%group" principal
		}
		acct.Groups = append(acct.Groups, g.Name)
	}
	sort.Strings(acct.Groups)
	return acct, nil
}

func (a *accounts) store(acct Account, err error, name string, uid int) {
	c := cachedAccount{acct: acct, err: err, at: a.now()}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.byName) > 10000 {
		// Bounded: a flood of lookups for made-up names must not grow memory.
		a.byName, a.byUID = map[string]cachedAccount{}, map[int]cachedAccount{}
	}
	if name != "" {
		a.byName[name] = c
	}
	if uid >= 0 {
		a.byUID[uid] = c
	}
	if err == nil {
		a.byName[acct.Name] = c
		a.byUID[acct.UID] = c
	}
}
