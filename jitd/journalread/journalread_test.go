package journalread

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// binaryField is NAME, newline, length, value, newline: the export form of a
// value that is not plain text.
func binaryField(name string, value []byte) string {
	var b bytes.Buffer
	b.WriteString(name + "\n")
	binary.Write(&b, binary.LittleEndian, uint64(len(value)))
	b.Write(value)
	b.WriteByte('\n')
	return b.String()
}

func TestParseFieldForms(t *testing.T) {
	long := strings.Repeat("x", 600<<10) // longer than the reader's buffer
	out := "__CURSOR=s=1\nMESSAGE=hello\n" + binaryField("JIT_DATA", []byte{0, 1, 255, '\n', '='}) +
		"TAG=a\nTAG=b\nEQ=a=b\nLONG=" + long + "\n\n" +
		"MESSAGE=second\n\n"
	entries, err := Parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("want 2 entries, got %d", len(entries))
	}
	e := entries[0]
	if e.Get("MESSAGE") != "hello" || entries[1].Get("MESSAGE") != "second" {
		t.Errorf("MESSAGE = %q, %q", e.Get("MESSAGE"), entries[1].Get("MESSAGE"))
	}
	if !bytes.Equal(e.Bytes("JIT_DATA"), []byte{0, 1, 255, '\n', '='}) {
		t.Errorf("binary field = %v", e.Bytes("JIT_DATA"))
	}
	if len(e["TAG"]) != 2 || string(e["TAG"][1]) != "b" {
		t.Errorf("repeated field = %q", e["TAG"])
	}
	if e.Get("EQ") != "a=b" {
		t.Errorf("value with '=' = %q", e.Get("EQ"))
	}
	if e.Get("LONG") != long {
		t.Errorf("long text field has %d bytes, want %d", len(e.Get("LONG")), len(long))
	}
	if e.Get("ABSENT") != "" || e.Bytes("ABSENT") != nil {
		t.Error("absent field should read empty")
	}
}

func TestParseLastEntryWithoutBlankLine(t *testing.T) {
	entries, err := Parse(strings.NewReader("A=1\n\nB=2\n"))
	if err != nil || len(entries) != 2 || entries[1].Get("B") != "2" {
		t.Fatalf("entries %v, err %v", entries, err)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	for name, in := range map[string]string{
		"truncated length": "A\n\x01\x00",
		"truncated value":  "A\n\x05\x00\x00\x00\x00\x00\x00\x00ab",
		"no newline after": "A\n\x01\x00\x00\x00\x00\x00\x00\x00ab",
		"huge length":      "A\n" + string(huge),
		"ends in a field":  "A=1\nB=2",
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%s: Parse accepted %q", name, in)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("A=1\n\n" + binaryField("B", []byte{0, 10})))
	f.Fuzz(func(t *testing.T, in []byte) {
		entries, err := Parse(bytes.NewReader(in))
		if err != nil {
			return
		}
		for _, e := range entries {
			if len(e) == 0 {
				t.Fatal("empty entry returned")
			}
		}
	})
}
