// Command bench runs jit's benchmarks side by side in one run on this
// machine, prints a markdown table of the figures against their targets,
// and writes the raw figures as JSON so that a later run can be compared.
//
//	make bench            # or: go run ./bench -out build/bench.json
//	go run ./bench -runs 1 -suites e2e -out /tmp/b.json   # a quick look at some
//
// Every comparison (jit against sudoers, pam_permit, an echo floor) is made
// inside one benchmark that alternates the sides pair by pair, so that a
// noisy machine slows both alike. The suites then run in rounds, one run of
// each suite per round, so that a noisy minute does not fall on all runs of
// one suite. The table shows the median over the runs and their spread
// (min–max); the end-to-end benchmarks also report spreads within a run.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// suite is one benchmark pattern of one package, run once per round.
type suite struct {
	pkg, pattern, benchtime string
}

// A round of all suites takes about three minutes on the 2-core machine
// this runs on (the recording's 60 pairs, each run on a settled machine,
// take about 90 s of it), so the default five rounds take about a quarter
// of an hour. The recording gets that many pairs because single pairs'
// ratios scatter widely on two busy cores (their middle half spans about
// 0.97–1.18) while the target is 1.05.
var suites = []suite{
	{"./jitd/decide/", `^BenchmarkDecide$`, "0.3s"},
	{"./jitd/server/", `^Benchmark(CheckRoundTrip|EchoRoundTrip)$`, "20000x"},
	{"./jitd/server/", `^BenchmarkGrantWrite$`, "300x"},
	{"./e2e/", `^BenchmarkSudoTrue$`, "200x"},
	{"./e2e/", `^BenchmarkPAMAccount$`, "100x"},
	{"./e2e/", `^BenchmarkEndToTermination$`, "1x"},
	{"./e2e/", `^BenchmarkRecord10MB$`, "60x"},
	{"./e2e/", `^BenchmarkJitdRSS$`, "1x"},
}

// row is one line of the table: a figure, where it comes from, its target.
type row struct {
	what, bench, metric string
	// target is the bound the figure must keep; zero means none is set
	// (the row is context for another, or nobody has set one yet).
	target float64
	// atMost: the figure must not exceed target (otherwise: at least).
	atMost bool
	unit   string
	scale  float64 // multiply the metric by this for display
}

var rows = buildRows()

func buildRows() []row {
	var rs []row
	add := func(r ...row) { rs = append(rs, r...) }
	for _, n := range []int{1000, 10000, 100000} {
		b := fmt.Sprintf("BenchmarkDecide/grants=%d/allow", n)
		add(row{fmt.Sprintf("decide, %s grants, allow", kilo(n)), b, "ns/op", 20000, true, "µs", 0.001},
			row{fmt.Sprintf("decide, %s grants, allow, allocations", kilo(n)), b, "allocs/op", 0, true, "allocs", 1})
	}
	add(row{"decide, 10k grants, deny (other command)", "BenchmarkDecide/grants=10000/deny_other_command", "ns/op", 20000, true, "µs", 0.001},
		row{"decide, 10k grants, deny (other command), allocations", "BenchmarkDecide/grants=10000/deny_other_command", "allocs/op", 0, true, "allocs", 1})
	for _, n := range []int{1, 8, 32} {
		clients := fmt.Sprintf("%d clients", n)
		if n == 1 {
			clients = "1 client"
		}
		check := fmt.Sprintf("BenchmarkCheckRoundTrip/clients=%d", n)
		echo := fmt.Sprintf("BenchmarkEchoRoundTrip/clients=%d", n)
		var p50, rate float64
		switch n {
		case 1:
			p50 = 200
		case 32:
			rate = 10000
		}
		add(row{"check round trip, " + clients + ", p50", check, "p50-µs", p50, true, "µs", 1},
			row{"check round trip, " + clients + ", p99", check, "p99-µs", 0, true, "µs", 1},
			row{"check round trip, " + clients + ", checks/s", check, "calls/s", rate, false, "/s", 1},
			row{"floor: Unix-socket echo, " + clients + ", p50", echo, "p50-µs", 0, true, "µs", 1},
			row{"floor: Unix-socket echo, " + clients + ", p99", echo, "p99-µs", 0, true, "µs", 1},
			row{"floor: Unix-socket echo, " + clients + ", calls/s", echo, "calls/s", 0, false, "/s", 1})
	}
	for _, n := range []int{1, 32} {
		check := fmt.Sprintf("BenchmarkCheckRoundTrip/new-connection/clients=%d", n)
		clients := fmt.Sprintf("%d clients", n)
		if n == 1 {
			clients = "1 client"
		}
		add(row{"check, a new connection per call (as sudo), " + clients + ", p50", check, "p50-µs", 0, true, "µs", 1},
			row{"check, a new connection per call (as sudo), " + clients + ", checks/s", check, "calls/s", 0, false, "/s", 1})
	}
	add(
		row{"grant write through the API (fsync'd)", "BenchmarkGrantWrite", "ns/op", 5e6, true, "ms", 1e-6},
		row{"sudo -n /bin/true: jit median", "BenchmarkSudoTrue", "jit-median-ms", 0, true, "ms", 1},
		row{"sudo -n /bin/true: sudoers median", "BenchmarkSudoTrue", "sudoers-median-ms", 0, true, "ms", 1},
		row{"sudo -n /bin/true: jit / sudoers (pairwise median)", "BenchmarkSudoTrue", "ratio-median", 1.15, true, "×", 1},
		row{"sudo -n /bin/true: jit / sudoers, p10 of pairs", "BenchmarkSudoTrue", "ratio-p10", 0, true, "×", 1},
		row{"sudo -n /bin/true: jit / sudoers, p90 of pairs", "BenchmarkSudoTrue", "ratio-p90", 0, true, "×", 1},
		row{"pamtester acct_mgmt: pam_jit extra over pam_permit", "BenchmarkPAMAccount", "ms-extra/op", 5, true, "ms", 1},
		row{"grant end → processes gone, p50 (100 grants)", "BenchmarkEndToTermination", "p50-ms", 1000, true, "ms", 1},
		row{"grant end → processes gone, p99 (100 grants)", "BenchmarkEndToTermination", "p99-ms", 1000, true, "ms", 1},
		row{"10 MB tty output: jit_io / no I/O plugin", "BenchmarkRecord10MB", "jit_io/no-io", 1.05, true, "×", 1},
		row{"10 MB tty output: sudoers log_output / no I/O plugin", "BenchmarkRecord10MB", "sudoers/no-io", 0, true, "×", 1},
		row{"journal bytes per output byte", "BenchmarkRecord10MB", "journal-bytes/output-byte", 1.4, true, "×", 1},
		row{"journald CPU time per 10 MB recorded (after the command)", "BenchmarkRecord10MB", "journald-cpu-ms", 0, true, "ms", 1},
		row{"jitd RSS, idle", "BenchmarkJitdRSS", "rss-idle-MB", 0, true, "MB", 1},
		row{"jitd RSS, 10k grants, after checks", "BenchmarkJitdRSS", "rss-10k-MB", 0, true, "MB", 1},
		row{"jitd RSS, 100k grants, after start-up", "BenchmarkJitdRSS", "rss-100k-start-MB", 0, true, "MB", 1},
		row{"jitd RSS, 100k grants, after checks", "BenchmarkJitdRSS", "rss-100k-MB", 0, true, "MB", 1},
		row{"jitd RSS, 100k grants: of it mapped from the state file", "BenchmarkJitdRSS", "rss-file-100k-MB", 0, true, "MB", 1},
		row{"jitd start-up until it answers, 100k grants", "BenchmarkJitdRSS", "start-100k-ms", 0, true, "ms", 1},
	)
	return rs
}

func kilo(n int) string { return strconv.Itoa(n/1000) + "k" }

// results maps "BenchmarkName/sub" (without the -GOMAXPROCS suffix) to
// metric → values, one per run.
type results map[string]map[string][]float64

type report struct {
	Date    time.Time `json:"date"`
	Machine machine   `json:"machine"`
	// Runs is how many times each suite ran, so how many values each
	// metric has unless its suite failed.
	Runs    int     `json:"runs"`
	Results results `json:"results"`
	// Failed lists the suites that did not finish a run; their figures are
	// missing or hold fewer values.
	Failed []string `json:"failed,omitempty"`
}

type machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
}

func main() {
	out := flag.String("out", "build/bench.json", "where to write the raw figures")
	verbose := flag.Bool("v", false, "show the benchmarks' output")
	rounds := flag.Int("runs", 5, "how many times each suite runs, in rounds")
	only := flag.String("suites", "", "run only the suites whose package or pattern contains this string")
	flag.Parse()
	if *rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1")
		os.Exit(2)
	}
	run := suites
	if *only != "" {
		run = nil
		for _, s := range suites {
			if strings.Contains(s.pkg+" "+s.pattern, *only) {
				run = append(run, s)
			}
		}
	}
	start := time.Now()

	tmp, err := os.MkdirTemp("", "jit-bench-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	defer os.RemoveAll(tmp)
	// One test binary per package, built once, so that every round runs
	// the same code and no round pays for compiling and linking.
	bins := map[string]string{}
	rep := report{Date: start.UTC(), Machine: describeMachine(), Runs: *rounds, Results: results{}}
	for _, s := range run {
		if _, ok := bins[s.pkg]; ok {
			continue
		}
		bin := filepath.Join(tmp, strings.NewReplacer(".", "", "/", "_").Replace(s.pkg)+".test")
		fmt.Fprintf(os.Stderr, "bench: go test -c %s\n", s.pkg)
		if b, err := exec.Command("go", "test", "-c", "-o", bin, s.pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: building %s failed: %v\n%s\n", s.pkg, err, tail(string(b), 3000))
			bin = ""
		}
		bins[s.pkg] = bin
	}

	failed := map[string]bool{}
	for round := 1; round <= *rounds; round++ {
		for _, s := range run {
			id := s.pkg + " " + s.pattern
			if failed[id] {
				continue // a suite that failed once is not retried: it would fail again, slowly
			}
			fmt.Fprintf(os.Stderr, "bench: round %d/%d: %s %s\n", round, *rounds, s.pkg, s.pattern)
			if err := runSuite(s, bins[s.pkg], rep.Results, *verbose); err != nil {
				fmt.Fprintf(os.Stderr, "bench: %v\n", err)
				failed[id] = true
				rep.Failed = append(rep.Failed, id)
			}
		}
	}

	if err := writeJSON(*out, rep); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	printTable(os.Stdout, rep, run)
	fmt.Fprintf(os.Stderr, "bench: raw figures in %s; took %s\n", *out, time.Since(start).Round(time.Second))
	if len(rep.Failed) > 0 {
		// The table is out, but a run with holes must not pass for a
		// complete one in scripts.
		os.Exit(1)
	}
}

// runSuite runs one suite once with the package's test binary, from the
// package's directory as go test would, and adds its figures to res.
func runSuite(s suite, bin string, res results, verbose bool) error {
	if bin == "" {
		return fmt.Errorf("%s %s: no test binary", s.pkg, s.pattern)
	}
	args := []string{"-test.run", "^$", "-test.bench", s.pattern, "-test.benchmem", "-test.count", "1", "-test.timeout", "30m"}
	if s.benchtime != "" {
		args = append(args, "-test.benchtime", s.benchtime)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.pkg
	var buf bytes.Buffer
	var w io.Writer = &buf
	if verbose {
		w = io.MultiWriter(&buf, os.Stderr)
	}
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	// A benchmark that failed part-way may still have printed results for
	// the sub-benchmarks before it; they are real figures.
	parse(buf.String(), res)
	if err != nil {
		return fmt.Errorf("%s %s failed: %v\n%s", s.pkg, s.pattern, err, tail(buf.String(), 3000))
	}
	return nil
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

func printTable(w io.Writer, rep report, run []suite) {
	m := rep.Machine
	fmt.Fprintf(w, "jit benchmarks, %s, on %s (%d cores), Linux %s, %s\n\n", rep.Date.Format("2006-01-02"), m.CPU, m.Cores, m.Kernel, m.Go)
	fmt.Fprintln(w, "| figure | median | spread (min–max) | runs | target | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		if !planned(r, run) {
			continue // its suite was left out with -suites
		}
		vals := rep.Results[r.bench][r.metric]
		if len(vals) == 0 {
			fmt.Fprintf(w, "| %s | not measured | | 0 | %s | **not measured** |\n", r.what, target(r))
			continue
		}
		sorted := slices.Sorted(slices.Values(vals))
		med := median(sorted)
		spread := ""
		if len(sorted) > 1 {
			spread = fmt.Sprintf("%s–%s", num(sorted[0]*r.scale), num(sorted[len(sorted)-1]*r.scale))
		}
		fmt.Fprintf(w, "| %s | %s %s | %s | %d | %s | %s |\n", r.what, num(med*r.scale), r.unit, spread, len(sorted), target(r), verdict(r, med, sorted))
	}
	if len(rep.Failed) > 0 {
		fmt.Fprintf(w, "\nFailed (figures missing or from fewer runs): %s\n", strings.Join(rep.Failed, "; "))
	}
}

// planned reports whether one of the suites to run covers r's benchmark.
func planned(r row, run []suite) bool {
	top, _, _ := strings.Cut(r.bench, "/")
	for _, s := range run {
		if ok, _ := regexp.MatchString(s.pattern, top); ok {
			return true
		}
	}
	return false
}

// verdict judges the median against the target, and says so when single
// runs fall on the other side: a median that meets with runs that miss is
// a figure near its limit.
func verdict(r row, med float64, vals []float64) string {
	if r.target == 0 {
		return "no target"
	}
	ok := func(v float64) bool {
		if r.atMost {
			return v <= r.target
		}
		return v >= r.target
	}
	var missed int
	for _, v := range vals {
		if !ok(v) {
			missed++
		}
	}
	switch {
	case ok(med) && missed == 0:
		return "meets"
	case ok(med):
		return fmt.Sprintf("meets; %d of %d runs missed", missed, len(vals))
	case missed < len(vals):
		return fmt.Sprintf("**misses**; %d of %d runs met", len(vals)-missed, len(vals))
	default:
		return "**misses**"
	}
}

// median of sorted values; the mean of the middle two for an even count.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func target(r row) string {
	if r.target == 0 {
		return "none set"
	}
	op := "≤"
	if !r.atMost {
		op = "≥"
	}
	return fmt.Sprintf("%s %s %s", op, num(r.target*r.scale), r.unit)
}

// num shows about three significant digits, as go test prints metrics, and
// no trailing zeros, so that counts such as allocations read as integers.
func num(v float64) string {
	prec := 2
	switch a := math.Abs(v); {
	case a >= 100:
		prec = 0
	case a >= 10:
		prec = 1
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
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
