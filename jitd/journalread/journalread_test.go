package journalread

import (
	"bytes"
	"testing"
)

func TestParseFieldForms(t *testing.T) {
	out := []byte(`{"MESSAGE":"hello","JIT_DATA":[0,1,255,10],"TAG":["a","b"],"BIN2":[[1,2],"c"],"BIG":null}
{"MESSAGE":"second"}
`)
	entries, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("want 2 entries, got %d", len(entries))
	}
	e := entries[0]
	if e.Get("MESSAGE") != "hello" {
		t.Errorf("MESSAGE = %q", e.Get("MESSAGE"))
	}
	if !bytes.Equal(e.Bytes("JIT_DATA"), []byte{0, 1, 255, 10}) {
		t.Errorf("binary field = %v", e.Bytes("JIT_DATA"))
	}
	if len(e["TAG"]) != 2 || string(e["TAG"][1]) != "b" {
		t.Errorf("repeated field = %q", e["TAG"])
	}
	if len(e["BIN2"]) != 2 || !bytes.Equal(e["BIN2"][0], []byte{1, 2}) || string(e["BIN2"][1]) != "c" {
		t.Errorf("repeated mixed field = %q", e["BIN2"])
	}
	if e.Get("ABSENT") != "" || e.Bytes("ABSENT") != nil {
		t.Error("absent field should read empty")
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	for _, in := range []string{`{"A":[300]}`, `{"A":`, `{"A":true}`} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%s) accepted garbage", in)
		}
	}
}
