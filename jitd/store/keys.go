package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"time"
	"unicode"

	bolt "go.etcd.io/bbolt"
)

const (
	bucketMeta            = "meta"
	bucketGrants          = "grants"
	bucketGrantsByExpiry  = "grants_by_expiry"
	bucketGrantsByUser    = "grants_by_user"
	bucketRequests        = "requests"
	bucketRequestsPending = "requests_pending"
	bucketSessions        = "sessions"
	bucketSessionsOpen    = "sessions_open_by_grant"
	bucketAudit           = "audit"
	bucketAuditByTime     = "audit_by_time"
	bucketRetired         = "retired_ids"

	metaSchema    = "schema_version"
	metaCreated   = "created_at"
	metaAuditHead = "audit_head"
)

func allBuckets() []string {
	return []string{
		bucketMeta, bucketGrants, bucketGrantsByExpiry, bucketGrantsByUser,
		bucketRequests, bucketRequestsPending, bucketSessions, bucketSessionsOpen,
		bucketAudit, bucketAuditByTime, bucketRetired,
	}
}

// Prefixes make an id say what it names when a person reads or types it.
const (
	prefixGrant   = "g-"
	prefixRequest = "r-"
	prefixSession = "s-"
)

// newID draws a short random id that is neither in use in b nor retired.
// It runs inside the writing transaction, so the check and the later Put
// cannot race with another writer.
func newID(tx *bolt.Tx, prefix string, b *bolt.Bucket) (string, error) {
	return drawID(tx, prefix, b, nil)
}

// drawID is newID that also avoids the ids taken says are taken (may be
// nil): ids handed out but not yet written.
func drawID(tx *bolt.Tx, prefix string, b *bolt.Bucket, taken func(string) bool) (string, error) {
	retired := tx.Bucket([]byte(bucketRetired))
	var raw [4]byte
	// 32 bits give a collision per draw of about n/4e9; a handful of
	// retries makes failure practically impossible while staying typable.
	for range 64 {
		_, _ = rand.Read(raw[:]) // never fails (crypto/rand since Go 1.24)
		id := prefix + hex.EncodeToString(raw[:])
		if b.Get([]byte(id)) == nil && retired.Get([]byte(id)) == nil && (taken == nil || !taken(id)) {
			return id, nil
		}
	}
	return "", errors.New("no free id found after 64 random draws")
}

// normID lets people type ids in upper case; ids are stored in lower case.
func normID(id string) string { return strings.ToLower(strings.TrimSpace(id)) }

func be64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// indexable says whether t fits the 8-byte unix-nano keys: after 1970 (so
// the unsigned big-endian order is the time order) and before 2262.
func indexable(t time.Time) bool {
	return t.After(time.Unix(0, 0)) && t.Before(time.Unix(0, math.MaxInt64))
}

func timeKey(t time.Time) []byte { return be64(uint64(t.UnixNano())) }

func expiryKey(t time.Time, id string) []byte {
	return append(timeKey(t), id...)
}

func userPrefix(user string, active bool) []byte {
	k := make([]byte, 0, len(user)+2)
	k = append(k, user...)
	k = append(k, 0)
	if active {
		return append(k, 'a')
	}
	return append(k, 'e')
}

func userKey(user string, active bool, id string) []byte {
	return append(userPrefix(user, active), id...)
}

func openSessionPrefix(grantID string) []byte {
	return append([]byte(grantID), 0)
}

func openSessionKey(grantID, sessionID string) []byte {
	return append(openSessionPrefix(grantID), sessionID...)
}

// scanPrefix calls fn with the rest of each key that starts with prefix.
func scanPrefix(b *bolt.Bucket, prefix []byte, fn func(rest []byte) error) error {
	c := b.Cursor()
	k, _ := c.First()
	if len(prefix) > 0 {
		k, _ = c.Seek(prefix)
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if err := fn(k[len(prefix):]); err != nil {
			return err
		}
	}
	return nil
}

// validName checks user and actor names: they become index key parts
// (NUL separates) and journald field values, so no control characters.
func validName(what, s string) error {
	if s == "" {
		return invalidf("%s is empty", what)
	}
	if len(s) > 256 {
		return invalidf("%s is longer than 256 bytes", what)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return invalidf("%s %q contains control characters or invalid UTF-8", what, s)
		}
	}
	return nil
}

func utc(t time.Time) time.Time { return t.UTC() }

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
