// Package store is jitd's durable state: grants, access requests, elevated
// sessions and a hash-chained audit log, kept in one bbolt file
// (STATE_DIR/jitd.db, mode 0600).
//
// Every change is one bbolt read-write transaction that also appends the
// audit record describing it, so a grant can never exist without the record
// of who made it, and a crash never leaves half a change behind. bbolt
// fsyncs each commit before Update returns: a method that returned nil is
// // on disk. The one exception is the session records with
// Options.RuntimeDir: OpenSession, CloseSession and TerminateSession
// return once the change is in a pending file there, and the commit
// follows in the next batch (pending.go says why that is enough). Reads
// use read-only transactions and do not wait for writers.
//
// Bucket layout (schema version 1):
//
//	meta                   schema_version → uint64 BE; created_at → RFC 3339;
//	                       audit_head → seq (8 bytes BE) ‖ sha256 of the last record
//	grants                 id → JSON grant.Grant
//	grants_by_expiry       ExpiresAt unix-nano (8 bytes BE) ‖ id → empty; active grants only,
//	                       so the first key is the next expiry and a scan up to now is the overdue set
//	grants_by_user         user ‖ 0x00 ‖ 'a'|'e' ‖ id → empty; 'a' = active, 'e' = ended,
//	                       so a user's active grants are one short prefix scan
//	requests               id → JSON grant.Request
//	requests_pending       id → empty
//	sessions               id → JSON grant.Session
//	sessions_open_by_grant grant id ‖ 0x00 ‖ session id → empty; open sessions only
//	                       (sessions without a grant sort first, under an empty grant id)
//	audit                  seq (8 bytes BE) → JSON AuditRecord
//	audit_by_time          record time unix-nano (8 bytes BE) ‖ seq → empty
//	retired_ids            id → empty; ids of pruned objects, never handed out again so
//	                       that old audit records keep pointing at one object
//
// Audit records are never deleted or rewritten by this package.
package store
