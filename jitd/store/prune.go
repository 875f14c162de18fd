package store

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/jitpam/jit/jitd/grant"
)

// PruneStats counts what Prune removed.
type PruneStats struct {
	Grants   int `json:"grants"`
	Sessions int `json:"sessions"`
	Requests int `json:"requests"`
}

// Prune deletes state that has served its purpose before the cutoff: grants
// that ended before it (unless a session under them is still open),
// sessions that ended before it, and requests decided before it whose grant
// (if any) is gone, so a kept grant keeps its request. Pending requests, active grants, open sessions and audit
// records are never pruned: the audit chain keeps the full history. Pruned
// ids are retired and never handed out again. The pruning itself is audited.
func (s *Store) Prune(before time.Time, a Audit) (PruneStats, error) {
	var st PruneStats
	err := s.update(func(w *wtx) error {
		st = PruneStats{}
		if err := a.validate(); err != nil {
			return err
		}
		retire := func(b *bolt.Bucket, id []byte) error {
			if err := b.Delete(id); err != nil {
				return fmt.Errorf("delete %s: %w", id, err)
			}
			if err := w.bucket(bucketRetired).Put(id, nil); err != nil {
				return fmt.Errorf("retire %s: %w", id, err)
			}
			return nil
		}

		// Collect first: deleting while a bbolt cursor walks the same
		// bucket skips keys.
		var grants []grant.Grant
		openIdx := w.bucket(bucketSessionsOpen)
		err := w.bucket(bucketGrants).ForEach(func(k, v []byte) error {
			g, err := decodeGrant(string(k), v)
			if err != nil {
				return err
			}
			if g.State == grant.StateActive || !g.EndedAt.Before(before) {
				return nil
			}
			prefix := openSessionPrefix(g.ID)
			if k, _ := openIdx.Cursor().Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
				return nil // jitd still has to end what runs under it
			}
			grants = append(grants, g)
			return nil
		})
		if err != nil {
			return err
		}
		for _, g := range grants {
			if err := retire(w.bucket(bucketGrants), []byte(g.ID)); err != nil {
				return err
			}
			if err := w.bucket(bucketGrantsByUser).Delete(userKey(g.User, false, g.ID)); err != nil {
				return fmt.Errorf("unindex grant %s: %w", g.ID, err)
			}
		}
		st.Grants = len(grants)

		var sessions [][]byte
		err = w.bucket(bucketSessions).ForEach(func(k, v []byte) error {
			sess, err := decodeSession(string(k), v)
			if err != nil {
				return err
			}
			if sess.State != grant.SessionOpen && sess.EndedAt.Before(before) {
				sessions = append(sessions, []byte(sess.ID))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range sessions {
			if err := retire(w.bucket(bucketSessions), id); err != nil {
				return err
			}
		}
		st.Sessions = len(sessions)

		var requests [][]byte
		grantsB := w.bucket(bucketGrants)
		err = w.bucket(bucketRequests).ForEach(func(k, v []byte) error {
			r, err := decodeRequest(string(k), v)
			if err != nil {
				return err
			}
			if r.State == grant.RequestPending || !r.DecidedAt.Before(before) {
				return nil
			}
			if r.GrantID != "" && grantsB.Get([]byte(r.GrantID)) != nil {
				return nil // a grant keeps the request it came from
			}
			requests = append(requests, []byte(r.ID))
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range requests {
			if err := retire(w.bucket(bucketRequests), id); err != nil {
				return err
			}
		}
		st.Requests = len(requests)

		return w.audit(EventStorePruned, a, AuditRecord{}, map[string]string{
			"before":   fmtTime(before),
			"grants":   strconv.Itoa(st.Grants),
			"sessions": strconv.Itoa(st.Sessions),
			"requests": strconv.Itoa(st.Requests),
		})
	})
	if err != nil {
		return PruneStats{}, fmt.Errorf("prune before %s: %w", fmtTime(before), err)
	}
	return st, nil
}
