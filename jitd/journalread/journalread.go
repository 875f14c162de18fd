// Package journalread reads journal entries back through `journalctl -o
// export`.
//
// jit reads the journal (replay, listings, tests) through journalctl rather
// than libsystemd so that nothing needs cgo or the libsystemd headers. The
// export format is binary-safe and cheap to parse: a field is NAME=VALUE on
// one line, or, when the value is not plain text, NAME, a newline, the
// value's length as a little-endian uint64, the value and a newline; a blank
// line ends an entry. (The JSON output prints binary values as arrays of
// decimal numbers, which made reading a 10 MB recording take seconds.)
package journalread

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
	argv := append([]string{"-o", "export", "--no-pager", "-q"}, args...)
	cmd := exec.CommandContext(ctx, "journalctl", argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("journalctl: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("journalctl: %w", err)
	}
	entries, perr := Parse(out)
	if perr != nil {
		// Stop journalctl rather than wait for output nobody reads.
		_ = cmd.Process.Kill()
	}
	werr := cmd.Wait()
	if perr != nil {
		return nil, fmt.Errorf("journalctl %v: %w", args, perr)
	}
	if werr != nil {
		// journalctl exits 1 with "-- No entries --" or nothing at all when
		// nothing matches; that is an empty answer, not a failure.
		var exit *exec.ExitError
		if errors.As(werr, &exit) && len(bytes.TrimSpace(stderr.Bytes())) == 0 && len(entries) == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("journalctl %v: %w: %s", args, werr, bytes.TrimSpace(stderr.Bytes()))
	}
	return entries, nil
}

// maxValue bounds one binary value, as journald bounds a field.
const maxValue = 768 << 20

// Parse decodes the journal export format.
func Parse(r io.Reader) ([]Entry, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	var entries []Entry
	e := Entry{}
	for n := 1; ; {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A text field longer than the buffer: gather it.
			long := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err == io.EOF {
			if len(line) > 0 {
				return nil, fmt.Errorf("journal entry %d: output ends inside a field", n)
			}
			if len(e) > 0 {
				entries = append(entries, e)
			}
			return entries, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read journalctl output: %w", err)
		}
		line = line[:len(line)-1]
		if len(line) == 0 {
			if len(e) > 0 {
				entries = append(entries, e)
				e, n = Entry{}, n+1
			}
			continue
		}
		if name, value, ok := bytes.Cut(line, []byte{'='}); ok {
			e[string(name)] = append(e[string(name)], append([]byte(nil), value...))
			continue
		}
		// A binary field: the name line, then the length and the value.
		name := string(line)
		var size [8]byte
		if _, err := io.ReadFull(br, size[:]); err != nil {
			return nil, fmt.Errorf("journal entry %d field %s: length: %w", n, name, err)
		}
		l := binary.LittleEndian.Uint64(size[:])
		if l > maxValue {
			return nil, fmt.Errorf("journal entry %d field %s: length %d is over %d", n, name, l, maxValue)
		}
		value := make([]byte, l+1)
		if _, err := io.ReadFull(br, value); err != nil {
			return nil, fmt.Errorf("journal entry %d field %s: value: %w", n, name, err)
		}
		if value[l] != '\n' {
			return nil, fmt.Errorf("journal entry %d field %s: value not followed by a newline", n, name)
		}
		e[name] = append(e[name], value[:l])
	}
}
