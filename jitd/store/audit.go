package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Event is an audit record's type. The store writes the events below with
// the changes they describe; jitd adds its own (decisions, start, stop)
// through AppendAudit.
type Event string

const (
	EventStoreCreated      Event = "store.created"
	EventStorePruned       Event = "store.pruned"
	EventGrantCreated      Event = "grant.created"
	EventGrantExtended     Event = "grant.extended"
	EventGrantRevoked      Event = "grant.revoked"
	EventGrantExpired      Event = "grant.expired"
	EventRequestCreated    Event = "request.created"
	EventRequestApproved   Event = "request.approved"
	EventRequestDenied     Event = "request.denied"
	EventSessionOpened     Event = "session.opened"
	EventSessionClosed     Event = "session.closed"
	EventSessionTerminated Event = "session.terminated"
)

// AuditRecord is one link of the audit chain. Seq, Time, PrevHash and Hash
// are set by the store when it appends the record.
type AuditRecord struct {
	// Seq numbers records 1, 2, 3, ... without gaps.
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Event     Event     `json:"event"`
	Actor     string    `json:"actor,omitempty"`
	User      string    `json:"user,omitempty"`
	GrantID   string    `json:"grant_id,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	// Fields hold the rest. Keys are lower-case letters, digits and '_',
	// starting with a letter, at most 64 bytes, so that "JIT_"+upper(key)
	// is a valid journald field name (see JournalFields).
	Fields map[string]string `json:"fields,omitempty"`
	// PrevHash is the previous record's Hash (64 zeros for the first), Hash
	// the hex sha256 of this record's canonical encoding, which includes
	// PrevHash: changing, removing or reordering a record breaks the chain.
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

const genesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// computeHash hashes a length-prefixed encoding of every field but Hash.
// It does not hash the JSON, whose bytes are not guaranteed stable across
// Go versions; this encoding is defined here and nowhere else.
func (r *AuditRecord) computeHash() string {
	buf := make([]byte, 0, 256)
	buf = append(buf, "jit-audit-v1\x00"...)
	buf = binary.BigEndian.AppendUint64(buf, r.Seq)
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.Time.UnixNano()))
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	for _, s := range []string{string(r.Event), r.Actor, r.User, r.GrantID, r.RequestID, r.SessionID, r.Reason, r.PrevHash} {
		str(s)
	}
	keys := make([]string, 0, len(r.Fields))
	for k := range r.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf = binary.AppendUvarint(buf, uint64(len(keys)))
	for _, k := range keys {
		str(k)
		str(r.Fields[k])
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])
}

// JournalFields maps the record to journald fields: JIT_EVENT, JIT_ACTOR,
// JIT_USER, JIT_GRANT_ID, JIT_REQUEST_ID, JIT_SESSION_ID, JIT_REASON, the
// chain position (JIT_AUDIT_SEQ, JIT_AUDIT_HASH, JIT_AUDIT_PREV_HASH, which
// let an auditor hold the journal against the database), and JIT_<KEY> for
// each entry of Fields (so "command" becomes JIT_COMMAND). Empty values are
// left out. MESSAGE, MESSAGE_ID and priority are the caller's to add.
func (r AuditRecord) JournalFields() map[string]string {
	m := make(map[string]string, 10+len(r.Fields))
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("JIT_EVENT", string(r.Event))
	set("JIT_ACTOR", r.Actor)
	set("JIT_USER", r.User)
	set("JIT_GRANT_ID", r.GrantID)
	set("JIT_REQUEST_ID", r.RequestID)
	set("JIT_SESSION_ID", r.SessionID)
	set("JIT_REASON", r.Reason)
	set("JIT_AUDIT_SEQ", strconv.FormatUint(r.Seq, 10))
	set("JIT_AUDIT_HASH", r.Hash)
	set("JIT_AUDIT_PREV_HASH", r.PrevHash)
	for k, v := range r.Fields {
		name := "JIT_" + strings.ToUpper(k)
		if _, taken := m[name]; !taken {
			set(name, v)
		}
	}
	return m
}

func validEvent(e Event) error {
	if e == "" || len(e) > 64 {
		return invalidf("audit event %q must be 1-64 bytes", e)
	}
	for _, c := range []byte(e) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-' {
			return invalidf("audit event %q may hold only a-z, 0-9, '.', '_' and '-'", e)
		}
	}
	return nil
}

func validFields(f map[string]string) error {
	for k, v := range f {
		if k == "" || len(k) > 64 || k[0] < 'a' || k[0] > 'z' {
			return invalidf("audit field name %q must be 1-64 bytes starting with a-z", k)
		}
		for _, c := range []byte(k) {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
				return invalidf("audit field name %q may hold only a-z, 0-9 and '_'", k)
			}
		}
		if len(v) > 64<<10 {
			return invalidf("audit field %q is longer than 64 KiB", k)
		}
	}
	return nil
}

// mergeFields copies the caller's fields and lays the store's own over
// them: the store's values are facts about the change and must not be
// overridden.
func mergeFields(caller, own map[string]string) map[string]string {
	if len(caller)+len(own) == 0 {
		return nil
	}
	m := make(map[string]string, len(caller)+len(own))
	for k, v := range caller {
		m[k] = v
	}
	for k, v := range own {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

func auditHead(tx *bolt.Tx) (uint64, string, error) {
	v := tx.Bucket([]byte(bucketMeta)).Get([]byte(metaAuditHead))
	switch len(v) {
	case 0:
		return 0, genesisHash, nil
	case 8 + sha256.Size:
		return binary.BigEndian.Uint64(v), hex.EncodeToString(v[8:]), nil
	default:
		return 0, "", fmt.Errorf("%w: audit head has %d bytes", ErrForeignDB, len(v))
	}
}

// appendAudit links rec to the chain inside the current transaction.
func (w *wtx) appendAudit(rec AuditRecord) error {
	if err := validEvent(rec.Event); err != nil {
		return err
	}
	if err := validFields(rec.Fields); err != nil {
		return err
	}
	seq, prev, err := auditHead(w.tx)
	if err != nil {
		return err
	}
	rec.Seq = seq + 1
	rec.Time = w.now
	rec.PrevHash = prev
	rec.Fields = mergeFields(nil, rec.Fields)
	rec.Hash = rec.computeHash()
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode audit record: %w", err)
	}
	key := be64(rec.Seq)
	if err := w.bucket(bucketAudit).Put(key, v); err != nil {
		return fmt.Errorf("write audit record %d: %w", rec.Seq, err)
	}
	if err := w.bucket(bucketAuditByTime).Put(append(timeKey(rec.Time), key...), nil); err != nil {
		return fmt.Errorf("index audit record %d: %w", rec.Seq, err)
	}
	raw, _ := hex.DecodeString(rec.Hash)
	if err := w.bucket(bucketMeta).Put([]byte(metaAuditHead), append(key, raw...)); err != nil {
		return fmt.Errorf("write audit head: %w", err)
	}
	w.records = append(w.records, rec)
	return nil
}

// audit appends the record of a change made with a.
func (w *wtx) audit(ev Event, a Audit, rec AuditRecord, own map[string]string) error {
	rec.Event = ev
	rec.Actor = a.Actor
	if rec.Reason == "" {
		rec.Reason = a.Reason
	}
	rec.Fields = mergeFields(a.Fields, own)
	return w.appendAudit(rec)
}

// AppendAudit appends a record for an event that changes nothing else, such
// as a decision. Event is required; Seq, Time, PrevHash and Hash are set by
// the store (what the caller puts there is ignored). It returns the record
// as stored.
func (s *Store) AppendAudit(rec AuditRecord) (AuditRecord, error) {
	if rec.Actor != "" {
		if err := validName("audit actor", rec.Actor); err != nil {
			return AuditRecord{}, fmt.Errorf("append audit record: %w", err)
		}
	}
	err := s.update(func(w *wtx) error {
		if err := w.appendAudit(rec); err != nil {
			return err
		}
		rec = w.records[len(w.records)-1]
		return nil
	})
	if err != nil {
		return AuditRecord{}, fmt.Errorf("append audit record %s: %w", rec.Event, err)
	}
	return rec, nil
}

// AuditHead returns the last record's sequence number and hash.
func (s *Store) AuditHead() (seq uint64, hash string, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		seq, hash, err = auditHead(tx)
		return err
	})
	if err != nil {
		return 0, "", fmt.Errorf("audit head: %w", err)
	}
	return seq, hash, nil
}

func decodeAudit(k, v []byte) (AuditRecord, error) {
	var r AuditRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return AuditRecord{}, fmt.Errorf("decode audit record at key %x: %w", k, err)
	}
	return r, nil
}

// AuditRange returns the records with from <= Seq <= to in order; to == 0
// means up to the newest.
func (s *Store) AuditRange(from, to uint64) ([]AuditRecord, error) {
	var out []AuditRecord
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucketAudit)).Cursor()
		for k, v := c.Seek(be64(from)); k != nil; k, v = c.Next() {
			if to != 0 && binary.BigEndian.Uint64(k) > to {
				break
			}
			r, err := decodeAudit(k, v)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list audit records %d..%d: %w", from, to, err)
	}
	return out, nil
}

// AuditSince returns the records stamped at or after t, in sequence order.
// It uses a time index, so a clock that stepped backwards does not hide
// records written after the step.
func (s *Store) AuditSince(t time.Time) ([]AuditRecord, error) {
	var out []AuditRecord
	err := s.view(func(tx *bolt.Tx) error {
		var seqs []uint64
		c := tx.Bucket([]byte(bucketAuditByTime)).Cursor()
		start := []byte(nil)
		if indexable(t) {
			start = timeKey(t)
		}
		for k, _ := c.Seek(start); k != nil; k, _ = c.Next() {
			if len(k) == 16 {
				seqs = append(seqs, binary.BigEndian.Uint64(k[8:]))
			}
		}
		slices.Sort(seqs)
		audit := tx.Bucket([]byte(bucketAudit))
		for _, seq := range seqs {
			k := be64(seq)
			v := audit.Get(k)
			if v == nil {
				continue // Verify reports the gap; a listing shows what exists
			}
			r, err := decodeAudit(k, v)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list audit records since %s: %w", t.Format(time.RFC3339), err)
	}
	return out, nil
}

// VerifyResult describes an audit chain that Verify checked.
type VerifyResult struct {
	// Records is the number of records checked (all of them when the chain
	// is intact, those before the break otherwise).
	Records  uint64
	HeadSeq  uint64
	HeadHash string
}

// Verify walks the whole audit chain and reports the first broken link as a
// *ChainError (errors.Is(err, ErrAuditBroken)): an edited record, a gap left
// by deleted records, a record under another's key, a record that does not
// point at its predecessor, or an end that differs from the remembered head.
// Other errors mean the check itself could not run.
//
// The chain catches changes made without recomputing every later hash and
// the head; someone who rewrites all of it with write access to the file is
// caught by comparing with the journald copy (JIT_AUDIT_HASH), not here.
func (s *Store) Verify() (VerifyResult, error) {
	var res VerifyResult
	err := s.view(func(tx *bolt.Tx) error {
		want := uint64(1)
		prev := genesisHash
		c := tx.Bucket([]byte(bucketAudit)).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return &ChainError{Seq: want, Kind: BreakUndecodable, Detail: fmt.Sprintf("key %x is not a sequence number", k)}
			}
			keySeq := binary.BigEndian.Uint64(k)
			if keySeq < want { // only key 0 can sort before record 1
				return &ChainError{Seq: keySeq, Kind: BreakMisplaced, Detail: fmt.Sprintf("key %d is not a valid sequence number", keySeq)}
			}
			if keySeq != want {
				detail := fmt.Sprintf("record %d is missing: the chain jumps from %d to %d (deleted)", want, want-1, keySeq)
				if keySeq > want+1 {
					detail = fmt.Sprintf("records %d..%d are missing: the chain jumps from %d to %d (deleted)", want, keySeq-1, want-1, keySeq)
				}
				return &ChainError{Seq: want, Kind: BreakMissing, Detail: detail}
			}
			var r AuditRecord
			dec := json.NewDecoder(bytes.NewReader(v))
			// Unknown fields are outside the hash; accepting them would let
			// content be added to a record unnoticed.
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				return &ChainError{Seq: keySeq, Kind: BreakUndecodable, Detail: err.Error()}
			}
			if r.Seq != keySeq {
				return &ChainError{Seq: keySeq, Kind: BreakMisplaced,
					Detail: fmt.Sprintf("key %d holds the record numbered %d (moved or reordered)", keySeq, r.Seq)}
			}
			if got := r.computeHash(); got != r.Hash {
				return &ChainError{Seq: keySeq, Kind: BreakEdited,
					Detail: fmt.Sprintf("content hashes to %s but the record says %s (edited after it was written)", short(got), short(r.Hash))}
			}
			if r.PrevHash != prev {
				return &ChainError{Seq: keySeq, Kind: BreakPrevHash,
					Detail: fmt.Sprintf("prev_hash is %s but record %d hashes to %s (record %d was replaced, or records were reordered)",
						short(r.PrevHash), keySeq-1, short(prev), keySeq-1)}
			}
			prev = r.Hash
			res.Records++
			want++
		}
		headSeq, headHash, err := auditHead(tx)
		if err != nil {
			return err
		}
		res.HeadSeq, res.HeadHash = headSeq, headHash
		last := want - 1
		switch {
		case headSeq > last:
			gone := fmt.Sprintf("record %d was", headSeq)
			if headSeq > last+1 {
				gone = fmt.Sprintf("records %d..%d were", last+1, headSeq)
			}
			return &ChainError{Seq: last + 1, Kind: BreakHead,
				Detail: fmt.Sprintf("the chain ends at %d but the head is %d: %s deleted from the end", last, headSeq, gone)}
		case headSeq < last:
			return &ChainError{Seq: headSeq + 1, Kind: BreakHead,
				Detail: fmt.Sprintf("the chain runs to %d but the head is %d: records after %d were added outside jitd, or the head was reset", last, headSeq, headSeq)}
		case headHash != prev:
			return &ChainError{Seq: last, Kind: BreakHead,
				Detail: fmt.Sprintf("record %d hashes to %s but the head remembers %s (the last record was replaced)", last, short(prev), short(headHash))}
		}
		return nil
	})
	if err != nil {
		if _, ok := err.(*ChainError); ok {
			return res, err
		}
		return res, fmt.Errorf("verify audit chain: %w", err)
	}
	return res, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}
