package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

// Shadows without the MarshalJSON methods: encoding/json encodes them from
// the same field tags.
type (
	plainCheckRequest CheckRequest
	plainSessionSpec  SessionSpec
	plainSessionEnd   SessionEnd
)

// jsonTestStrings are the strings encoding/json treats specially, among
// plain ones.
var jsonTestStrings = []string{
	"", "root", "/usr/bin/systemctl restart nginx", "a b\tc\nd\re\bf\fg",
	`quote " backslash \ slash /`, "<script>&amp;</script>", "\x00\x01\x1f\x7f",
	"é ü 日本 🙂", "line\u2028sep\u2029para", "bad \xff\xfe utf8 \xc3", "\xe2\x80",
}

// fill sets every field of the struct v points to: strings from
// jsonTestStrings or random bytes, random bools and integers, slices of
// random length, and nested structs behind pointers half of the time.
func fill(rng *rand.Rand, v reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if !f.CanSet() {
			continue
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString(randomString(rng))
		case reflect.Bool:
			f.SetBool(rng.IntN(2) == 0)
		case reflect.Int, reflect.Int64:
			f.SetInt(rng.Int64N(1<<40) - 1<<39)
		case reflect.Uint32:
			f.SetUint(uint64(rng.Uint32() >> rng.IntN(33)))
		case reflect.Slice:
			n := rng.IntN(4)
			s := reflect.MakeSlice(f.Type(), n, n)
			for j := 0; j < n; j++ {
				s.Index(j).SetString(randomString(rng))
			}
			if n > 0 || rng.IntN(2) == 0 {
				f.Set(s)
			}
		case reflect.Pointer:
			if rng.IntN(2) == 0 {
				p := reflect.New(f.Type().Elem())
				fill(rng, p.Elem())
				f.Set(p)
			}
		default:
			panic("fill: no rule for field " + v.Type().Field(i).Name + " of kind " + f.Kind().String())
		}
	}
}

func randomString(rng *rand.Rand) string {
	if rng.IntN(3) > 0 {
		return jsonTestStrings[rng.IntN(len(jsonTestStrings))]
	}
	b := make([]byte, rng.IntN(12))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return string(b)
}

// CheckRequest and SessionSpec encode to what encoding/json makes of their
// tags, byte for byte, whatever their fields hold.
func TestCheckRequestJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		var r CheckRequest
		fill(rng, reflect.ValueOf(&r).Elem())
		// The client sends MarshalJSON's own bytes; json.Marshal would
		// also re-escape and compact them.
		got, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		want := plainJSON(t, &r)
		if !bytes.Equal(got, want) {
			t.Fatalf("CheckRequest %#v:\n got %s\nwant %s", r, got, want)
		}
		if viaJSON, err := json.Marshal(r); err != nil || !bytes.Equal(viaJSON, want) {
			t.Fatalf("json.Marshal of CheckRequest %#v:\n got %s (%v)\nwant %s", r, viaJSON, err, want)
		}
		var back CheckRequest
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%s does not decode: %v", got, err)
		}
	}
}

// SessionEnd encodes to what encoding/json makes of its tags.
func TestSessionEndJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 5000; i++ {
		var e SessionEnd
		if rng.IntN(4) > 0 {
			n := int(rng.Int32()) >> rng.IntN(31)
			if rng.IntN(2) == 0 {
				n = -n
			}
			e.ExitStatus = &n
		}
		if rng.IntN(2) == 0 {
			e.Reason = randomString(rng)
		}
		got, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(plainSessionEnd(e))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("SessionEnd %+v:\n got %s\nwant %s", e, got, want)
		}
	}
}

// plainJSON is encoding/json's encoding of r from the tags alone.
func plainJSON(t *testing.T, r *CheckRequest) []byte {
	t.Helper()
	top := plainCheckRequest(*r)
	top.Session = nil
	b, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	if r.Session == nil {
		return b
	}
	s, err := json.Marshal(plainSessionSpec(*r.Session))
	if err != nil {
		t.Fatal(err)
	}
	return append(append(append(b[:len(b)-1:len(b)-1], `,"session":`...), s...), '}')
}
