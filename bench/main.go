// Command bench runs jit's benchmarks side by side in one run on this
// machine, prints a markdown table of the figures against their targets,
// and writes the raw figures as JSON so that a later run can be compared.
//
//	make bench            # or: go run ./bench -out build/bench.json
//
// Every comparison (jit against sudoers, pam_permit, an echo floor) is made
// inside one benchmark that alternates the sides pair by pair, so that a
// noisy machine slows both alike. Each benchmark runs -count times; the
// table shows the median and the spread (min–max) over those runs.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// suite is one `go test -bench` invocation.
type suite struct {
	pkg, pattern, benchtime string
	count                   int
}

var suites = []suite{
	{"./jitd/decide/", `^BenchmarkDecide$`, "", 3},
	{"./jitd/server/", `^Benchmark(CheckRoundTrip|EchoRoundTrip)$`, "20000x", 3},
	{"./jitd/server/", `^BenchmarkGrantWrite$`, "300x", 3},
	{"./e2e/", `^BenchmarkSudoTrue$`, "200x", 1},
	{"./e2e/", `^BenchmarkPAMAccount$`, "100x", 1},
	{"./e2e/", `^BenchmarkEndToTermination$`, "1x", 1},
	{"./e2e/", `^BenchmarkRecord10MB$`, "8x", 1},
	{"./e2e/", `^BenchmarkJitdRSS$`, "1x", 1},
}

// row is one line of the table: a figure, where it comes from, its target.
type row struct {
	what, bench, metric string
	target              float64
	// atMost: the figure must not exceed target (otherwise: at least).
	atMost bool
	unit   string
	scale  float64 // multiply the metric by this for display
}

var rows = []row{
	{"decide, 1k grants, allow", "BenchmarkDecide/grants=1000/allow", "ns/op", 20000, true, "µs", 0.001},
	{"decide, 10k grants, allow", "BenchmarkDecide/grants=10000/allow", "ns/op", 20000, true, "µs", 0.001},
	{"decide, 100k grants, allow", "BenchmarkDecide/grants=100000/allow", "ns/op", 20000, true, "µs", 0.001},
	{"decide, 10k grants, deny (other command)", "BenchmarkDecide/grants=10000/deny_other_command", "ns/op", 20000, true, "µs", 0.001},
	{"check round trip, 1 client, p50", "BenchmarkCheckRoundTrip/clients=1", "p50-µs", 200, true, "µs", 1},
	{"check round trip, 8 clients, checks/s", "BenchmarkCheckRoundTrip/clients=8", "calls/s", 0, false, "/s", 1},
	{"check round trip, 32 clients, checks/s", "BenchmarkCheckRoundTrip/clients=32", "calls/s", 10000, false, "/s", 1},
	{"check round trip, 32 clients, p99", "BenchmarkCheckRoundTrip/clients=32", "p99-µs", 0, true, "µs", 1},
	{"floor: Unix-socket echo, 1 client, p50", "BenchmarkEchoRoundTrip/clients=1", "p50-µs", 0, true, "µs", 1},
	{"floor: Unix-socket echo, 32 clients, calls/s", "BenchmarkEchoRoundTrip/clients=32", "calls/s", 0, false, "/s", 1},
	{"grant write through the API (fsync'd)", "BenchmarkGrantWrite", "ns/op", 5e6, true, "ms", 1e-6},
	{"sudo -n /bin/true: jit median", "BenchmarkSudoTrue", "jit-median-ms", 0, true, "ms", 1},
	{"sudo -n /bin/true: sudoers median", "BenchmarkSudoTrue", "sudoers-median-ms", 0, true, "ms", 1},
	{"sudo -n /bin/true: jit / sudoers (pairwise median)", "BenchmarkSudoTrue", "ratio-median", 1.15, true, "×", 1},
	{"pamtester acct_mgmt: pam_jit extra over pam_permit", "BenchmarkPAMAccount", "ms-extra/op", 5, true, "ms", 1},
	{"grant end → processes gone, p50 (100 grants)", "BenchmarkEndToTermination", "p50-ms", 1000, true, "ms", 1},
	{"grant end → processes gone, p99 (100 grants)", "BenchmarkEndToTermination", "p99-ms", 1000, true, "ms", 1},
	{"10 MB tty output: jit_io / no I/O plugin", "BenchmarkRecord10MB", "jit_io/no-io", 1.05, true, "×", 1},
	{"10 MB tty output: sudoers log_output / no I/O plugin", "BenchmarkRecord10MB", "sudoers/no-io", 0, true, "×", 1},
	{"journal bytes per output byte", "BenchmarkRecord10MB", "journal-bytes/output-byte", 1.4, true, "×", 1},
	{"jitd RSS, idle", "BenchmarkJitdRSS", "rss-idle-MB", 0, true, "MB", 1},
	{"jitd RSS, 10k grants", "BenchmarkJitdRSS", "rss-10k-MB", 0, true, "MB", 1},
}

// results maps "BenchmarkName/sub" (without the -GOMAXPROCS suffix) to
// metric → values, one per run.
type results map[string]map[string][]float64

type report struct {
	Date    time.Time `json:"date"`
	Machine machine   `json:"machine"`
	Results results   `json:"results"`
}

type machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
}

func main() {
	out := flag.String("out", "build/bench.json", "where to write the raw figures")
	verbose := flag.Bool("v", false, "show go test's output")
	flag.Parse()
	res := results{}
	for _, s := range suites {
		args := []string{"test", "-run", "^$", "-bench", s.pattern, "-benchmem", "-count", strconv.Itoa(s.count), "-timeout", "30m"}
		if s.benchtime != "" {
			args = append(args, "-benchtime", s.benchtime)
		}
		args = append(args, s.pkg)
		fmt.Fprintf(os.Stderr, "bench: go %s\n", strings.Join(args, " "))
		cmd := exec.Command("go", args...)
		var buf bytes.Buffer
		var w io.Writer = &buf
		if *verbose {
			w = io.MultiWriter(&buf, os.Stderr)
		}
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s %s failed: %v\n%s\n", s.pkg, s.pattern, err, tail(buf.String(), 3000))
		}
		parse(buf.String(), res)
	}
	rep := report{Date: time.Now().UTC(), Machine: describeMachine(), Results: res}
	if err := writeJSON(*out, rep); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	printTable(os.Stdout, rep)
	fmt.Fprintf(os.Stderr, "bench: raw figures in %s\n", *out)
}

// parse reads benchmark result lines: name, iterations, then value-unit pairs.
func parse(out string, res results) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		if res[name] == nil {
			res[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
}

func printTable(w io.Writer, rep report) {
	m := rep.Machine
	fmt.Fprintf(w, "jit benchmarks, %s, on %s (%d cores), Linux %s, %s\n\n", rep.Date.Format("2006-01-02"), m.CPU, m.Cores, m.Kernel, m.Go)
	fmt.Fprintln(w, "| figure | median | spread | target | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, r := range rows {
		vals := rep.Results[r.bench][r.metric]
		if len(vals) == 0 {
			fmt.Fprintf(w, "| %s | not measured | | %s | not measured yet |\n", r.what, target(r))
			continue
		}
		sorted := append([]float64(nil), vals...)
		sort.Float64s(sorted)
		med := sorted[len(sorted)/2]
		spread := ""
		if len(sorted) > 1 {
			spread = fmt.Sprintf("%s–%s", num(sorted[0]*r.scale), num(sorted[len(sorted)-1]*r.scale))
		}
		verdict := ""
		switch {
		case r.target == 0:
		case r.atMost && med <= r.target, !r.atMost && med >= r.target:
			verdict = "meets"
		default:
			verdict = "**misses**"
		}
		fmt.Fprintf(w, "| %s | %s %s | %s | %s | %s |\n", r.what, num(med*r.scale), r.unit, spread, target(r), verdict)
	}
}

func target(r row) string {
	if r.target == 0 {
		return "—"
	}
	op := "≤"
	if !r.atMost {
		op = "≥"
	}
	return fmt.Sprintf("%s %s %s", op, num(r.target*r.scale), r.unit)
}

func num(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func describeMachine() machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
