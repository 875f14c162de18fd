package store

import "fmt"

// AppendAuditBatch appends records in one transaction: one fsync for many
// records. jitd uses it for decisions, which arrive far faster than one
// fsync each allows.
func (s *Store) AppendAuditBatch(recs []AuditRecord) ([]AuditRecord, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	for _, rec := range recs {
		if rec.Actor != "" {
			if err := validName("audit actor", rec.Actor); err != nil {
				return nil, fmt.Errorf("append audit batch: %w", err)
			}
		}
	}
	var out []AuditRecord
	err := s.update(func(w *wtx) error {
		for _, rec := range recs {
			if err := w.appendAudit(rec); err != nil {
				return err
			}
		}
		out = append(out, w.records[len(w.records)-len(recs):]...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("append audit batch of %d: %w", len(recs), err)
	}
	return out, nil
}
