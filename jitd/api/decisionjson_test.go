package api

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// plainDecision is decoded by encoding/json from the same tags.
type plainDecision Decision

// Decisions jitd writes decode to what encoding/json makes of them.
func TestDecisionJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20000; i++ {
		var d Decision
		fillDecision(rng, &d)
		marshal := json.Marshal
		if rng.IntN(4) == 0 { // whitespace between every token
			marshal = func(v any) ([]byte, error) { return json.MarshalIndent(v, " ", "\t") }
		}
		raw, err := marshal(plainDecision(d))
		if err != nil {
			t.Fatal(err)
		}
		compareDecisionJSON(t, raw, true)
	}
}

// fillDecision sets each field of d at random, strings as in the request
// test, times in the valid range of RFC 3339.
func fillDecision(rng *rand.Rand, d *Decision) {
	v := reflect.ValueOf(d).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Interface().(type) {
		case time.Time:
			if rng.IntN(2) == 0 {
				f.Set(reflect.ValueOf(time.Unix(rng.Int64N(1<<35), rng.Int64N(1e9)).UTC()))
			}
		case Duration:
			if rng.IntN(2) == 0 {
				f.SetInt(rng.Int64N(int64(3000 * time.Hour)))
			}
		case string:
			f.SetString(randomString(rng))
		case bool:
			f.SetBool(rng.IntN(2) == 0)
		default:
			panic("fillDecision: no rule for field " + v.Type().Field(i).Name)
		}
	}
}

// compareDecisionJSON decodes raw both ways: both must succeed or both
// fail (mustDecode: both succeed), and agree on the result.
func compareDecisionJSON(t *testing.T, raw []byte, mustDecode bool) {
	t.Helper()
	var ours Decision
	oursErr := ours.UnmarshalJSON(raw)
	var theirs plainDecision
	theirsErr := json.Unmarshal(raw, &theirs)
	switch {
	case (oursErr == nil) != (theirsErr == nil):
		t.Fatalf("%q: UnmarshalJSON: %v; encoding/json: %v", raw, oursErr, theirsErr)
	case mustDecode && oursErr != nil:
		t.Fatalf("%q: %v", raw, oursErr)
	case oursErr == nil && !reflect.DeepEqual(ours, Decision(theirs)):
		t.Fatalf("%q:\n ours   %#v\n theirs %#v", raw, ours, Decision(theirs))
	}
}

// Whatever the bytes, UnmarshalJSON accepts what encoding/json accepts,
// refuses what it refuses, and decodes the same Decision: a jitd answer
// that is not well-formed JSON is refused (and sudo refuses the command).
func TestDecisionJSONMalformed(t *testing.T) {
	for _, raw := range []string{
		``, ` `, `{`, `}`, `[]`, `null`, `{"allow":true}x`, `{"allow":true,}`, `{"allow" true}`,
		`{"allow":"true"}`, `{"allow":1}`, `{"code":1}`, `{"code":"a` + "\x01" + `b"}`, `{"code":"\x"}`,
		`{"code":"\u12"}`, `{"code":"\ud83d\ude00 \ud83d x \ude00"}`, `{"code":"bad ` + "\xff" + ` utf8"}`,
		`{"expires_at":"yesterday"}`, `{"remaining":"1 hour"}`, `{"remaining":"90m"}`, `{"expires_at":null}`,
		`{"ALLOW":true,"Code":"x","reaſon":"kelvin \u212a"}`, `{"allow":true,"allow":false}`,
		`{"extra":{"a":[1,-2.5e+3,true,null,{"b":"c"}],"d":[]},"allow":true}`, `{"extra":01}`, `{"extra":-}`,
		`{"extra":1.}`, `{"extra":1e}`, `{"extra":[1,]}`, `{"extra":tru}`, "\t{\r\n\"allow\"\t:\ttrue\n}\n",
		`{"extra":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
		`{"extra":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
		`{"extra":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
	} {
		compareDecisionJSON(t, []byte(raw), false)
	}
}

func FuzzDecisionJSON(f *testing.F) {
	f.Add([]byte(`{"allow":true,"code":"grant","reason":"r","grant_id":"g-1","expires_at":"2026-12-01T10:00:00Z","remaining":"1h0m0s","session_id":"s-1"}`))
	f.Add([]byte(`{"extra":{"a":[1,2,{"b":null}]},"Allow":false,"hint":"\u00e9\ud83d\ude00"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		compareDecisionJSON(t, raw, false)
	})
}
