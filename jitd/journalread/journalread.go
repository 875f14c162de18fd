// Package journalread reads journal entries back through `journalctl -o json`.
//
// jit reads the journal (replay, listings, tests) through journalctl rather
// than libsystemd so that nothing needs cgo or the libsystemd headers.
// journalctl prints a field as a JSON string when it is valid UTF-8 text, as
// an array of byte values when it is binary, and as an array of those when a
// field occurs more than once in one entry; Entry hides that.
package journalread

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
)

// Entry is one journal entry: each field's values, in order, as raw bytes.
type Entry map[string][][]byte

// Get returns the first value of field as a string ("" when absent).
func (e Entry) Get(field string) string {
	if v := e[field]; len(v) > 0 {
		return string(v[0])
	}
	return ""
}

// Bytes returns the first value of field ("nil" when absent).
func (e Entry) Bytes(field string) []byte {
	if v := e[field]; len(v) > 0 {
		return v[0]
	}
	return nil
}

// Query runs journalctl with args (matches such as "JIT_EVENT=grant.created",
// or options such as "--since") and returns the entries, oldest first.
func Query(ctx context.Context, args ...string) ([]Entry, error) {
	argv := append([]string{"-o", "json", "-a", "--no-pager", "-q"}, args...)
	cmd := exec.CommandContext(ctx, "journalctl", argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		// journalctl exits 1 with "-- No entries --" or nothing at all when
		// nothing matches; that is an empty answer, not a failure.
		var exit *exec.ExitError
		if errors.As(err, &exit) && len(bytes.TrimSpace(stderr.Bytes())) == 0 && len(bytes.TrimSpace(out)) == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("journalctl %v: %w: %s", args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return Parse(out)
}

// Parse decodes journalctl's JSON output, one object per line.
func Parse(out []byte) ([]Entry, error) {
	var entries []Entry
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
	line := 0
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, fmt.Errorf("journal entry %d: %w", line, err)
		}
		e := make(Entry, len(fields))
		for name, v := range fields {
			vals, err := decodeField(v)
			if err != nil {
				return nil, fmt.Errorf("journal entry %d field %s: %w", line, name, err)
			}
			e[name] = vals
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read journalctl output: %w", err)
	}
	return entries, nil
}

// decodeField turns one field's JSON form into its values.
func decodeField(v json.RawMessage) ([][]byte, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		// journalctl prints null for values too large to show with -a off.
		return [][]byte{nil}, nil
	}
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, err
		}
		return [][]byte{[]byte(s)}, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return [][]byte{{}}, nil
		}
		if c := bytes.TrimSpace(items[0]); len(c) > 0 && (c[0] == '"' || c[0] == '[') {
			// Several values of one field.
			var all [][]byte
			for _, it := range items {
				vals, err := decodeField(it)
				if err != nil {
					return nil, err
				}
				all = append(all, vals...)
			}
			return all, nil
		}
		var b []byte
		var nums []int
		if err := json.Unmarshal(v, &nums); err != nil {
			return nil, fmt.Errorf("binary value: %w", err)
		}
		b = make([]byte, len(nums))
		for i, n := range nums {
			if n < 0 || n > 255 {
				return nil, fmt.Errorf("binary value: byte %d out of range", n)
			}
			b[i] = byte(n)
		}
		return [][]byte{b}, nil
	}
	return nil, fmt.Errorf("unexpected JSON %.20s", v)
}
