package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	out := `goos: linux
BenchmarkDecide/grants=1000/allow-2         	 1000000	       434.6 ns/op	      32 B/op	       1 allocs/op
BenchmarkSudoTrue-2   	     200	  19899802 ns/op	        10.36 jit-median-ms	         1.553 ratio-median
BenchmarkNoSuffix 	 10	 5 ns/op
--- FAIL: BenchmarkBroken-2
PASS
`
	res := results{}
	parse(out, res)
	parse(out, res) // a second run appends
	want := results{
		"BenchmarkDecide/grants=1000/allow": {"ns/op": {434.6, 434.6}, "B/op": {32, 32}, "allocs/op": {1, 1}},
		"BenchmarkSudoTrue":                 {"ns/op": {19899802, 19899802}, "jit-median-ms": {10.36, 10.36}, "ratio-median": {1.553, 1.553}},
		"BenchmarkNoSuffix":                 {"ns/op": {5, 5}},
	}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("parse:\n got %v\nwant %v", res, want)
	}
}

func TestVerdict(t *testing.T) {
	atMost := row{target: 10, atMost: true}
	atLeast := row{target: 10}
	for _, c := range []struct {
		r    row
		vals []float64
		want string
	}{
		{row{}, []float64{1, 2, 3}, "no target"},
		{atMost, []float64{8, 9, 10}, "meets"},
		{atMost, []float64{8, 9, 11}, "meets; 1 of 3 runs missed"},
		{atMost, []float64{9, 11, 12}, "**misses**; 1 of 3 runs met"},
		{atMost, []float64{11, 12, 13}, "**misses**"},
		{atLeast, []float64{10, 11, 12}, "meets"},
		{atLeast, []float64{8, 9, 12}, "**misses**; 1 of 3 runs met"},
	} {
		if got := verdict(c.r, median(c.vals), c.vals); got != c.want {
			t.Errorf("verdict(%+v, %v) = %q, want %q", c.r, c.vals, got, c.want)
		}
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{
		1: "1", 0.42: "0.42", 0.8: "0.8", 6.839: "6.84", 10: "10", 10.36: "10.4",
		164: "164", 154.4: "154", 87650.4: "87650", 20: "20",
	} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}

// A row without figures says so in its verdict instead of vanishing.
func TestPrintTableNotMeasured(t *testing.T) {
	var buf bytes.Buffer
	printTable(&buf, report{Results: results{
		"BenchmarkGrantWrite": {"ns/op": {0.8e6, 0.9e6, 1e6}},
	}}, suites)
	out := buf.String()
	if !strings.Contains(out, "| grant write through the API (fsync'd) | 0.9 ms | 0.8–1 | 3 | ≤ 5 ms | meets |") {
		t.Errorf("grant write row missing or wrong:\n%s", out)
	}
	if !strings.Contains(out, "| jitd RSS, idle | not measured | | 0 | none set | **not measured** |") {
		t.Errorf("unmeasured row missing or wrong:\n%s", out)
	}
}
