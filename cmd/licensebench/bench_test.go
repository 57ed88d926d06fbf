package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgelicense/caddy-license-api/signing"
)

// TestRunSmoke runs the whole benchmark, Caddy build included, in a tiny
// configuration and checks that the report is sane.
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy and runs the benchmark pipeline")
	}
	cfg := defaultConfig()
	cfg.duration, cfg.warmup, cfg.signDuration = 200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	cfg.connections = 4
	cfg.licenses = []int{50}
	cfg.keyTypes = []signing.KeyType{signing.ECDSAP256}
	cfg.startTimeout = time.Minute
	cfg.progress = testWriter{t}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	rep, err := run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failures) > 0 {
		t.Fatalf("failures: %q", rep.Failures)
	}
	if len(rep.Signing) != 1 || rep.Signing[0].PerSecond <= 0 || rep.Signing[0].CPUPerSignatureUs <= 0 {
		t.Errorf("signing: %+v", rep.Signing)
	}
	if rep.Static == nil || len(rep.Runs) != 1 {
		t.Fatalf("static %v, %d runs; want the static ceiling and one run", rep.Static, len(rep.Runs))
	}
	for _, r := range []*RunResult{rep.Static, rep.Runs[0]} {
		if r.Answered == 0 || r.RequestsPerSecond <= 0 {
			t.Errorf("%s: %d answered, %.0f/s", r.Name, r.Answered, r.RequestsPerSecond)
		}
		if r.nonOKTotal() != 0 || r.TransportErrors != 0 {
			t.Errorf("%s: non-200 %v, %d transport errors (%s)", r.Name, r.NonOK, r.TransportErrors, r.FirstError)
		}
		if !(0 < r.P50Ms && r.P50Ms <= r.P99Ms && r.P99Ms <= r.P999Ms && r.P999Ms <= r.MaxMs) {
			t.Errorf("%s: percentiles p50 %g, p99 %g, p99.9 %g, max %g ms", r.Name, r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs)
		}
		if r.CaddyCPUPerRequestUs <= 0 || r.PeakRSSMB <= 0 {
			t.Errorf("%s: Caddy CPU/request %g µs, peak RSS %g MB", r.Name, r.CaddyCPUPerRequestUs, r.PeakRSSMB)
		}
	}
	r := rep.Runs[0]
	if r.CacheHitRatio == nil || *r.CacheHitRatio < 0 || *r.CacheHitRatio > 1 || r.CacheHits+r.CacheMisses == 0 {
		t.Errorf("cache: %d hits, %d misses, ratio %v", r.CacheHits, r.CacheMisses, r.CacheHitRatio)
	}
	// Every commit holds at least one write, and every fsync covers at
	// least one commit. The window opens at any moment, so its fsyncs may
	// include the one under way then and the one after it, which can cover
	// commits made before the window: two more fsyncs than commits at most.
	if r.Commits < 1 || r.WritesPerCommit < 1 || r.Syncs > r.Commits+2 {
		t.Errorf("group commit: %d commits of %g writes each, %d fsyncs", r.Commits, r.WritesPerCommit, r.Syncs)
	}
	if r.SignCPUPerSignatureUs <= 0 || r.CPUPerRequestInSignatures <= 0 {
		t.Errorf("signing beside the run: %g µs per signature, %g signatures per request", r.SignCPUPerSignatureUs, r.CPUPerRequestInSignatures)
	}
	if r.StaticBesideRPS <= 0 {
		t.Errorf("static beside the run: %.0f/s", r.StaticBesideRPS)
	}
	if r.ServerAnswers["ok"] == 0 {
		t.Errorf("server answers %v; want some ok", r.ServerAnswers)
	}
	if len(rep.Checks) == 0 {
		t.Error("no acceptance check was evaluated")
	}

	var text strings.Builder
	rep.print(&text)
	for _, want := range []string{"Raw signing", `static respond "ok"`, "ecdsa-p256, 50 licenses", "Acceptance targets"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
	path := filepath.Join(t.TempDir(), "report.json")
	if err := rep.writeJSON(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil || len(back.Runs) != 1 || back.Runs[0].Answered != r.Answered {
		t.Errorf("JSON report does not round-trip: %v\n%s", err, data)
	}
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		ds := make([]time.Duration, len(ns))
		for i, n := range ns {
			ds[i] = time.Duration(n) * time.Millisecond
		}
		return ds
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	thousand := make([]time.Duration, 1000)
	for i := range thousand {
		thousand[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, c := range []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.5, 7 * time.Millisecond},
		{ms(7), 0.999, 7 * time.Millisecond},
		{ms(1, 2), 0.5, 1 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.51, 3 * time.Millisecond},
		{ms(1, 2, 3, 4), 1, 4 * time.Millisecond},
		{hundred, 0.5, 50 * time.Millisecond},
		{hundred, 0.99, 99 * time.Millisecond},
		{hundred, 0.999, 100 * time.Millisecond},
		{thousand, 0.999, 999 * time.Millisecond},
		{thousand, 0.0001, 1 * time.Millisecond},
	} {
		if got := percentile(c.sorted, c.p); got != c.want {
			t.Errorf("percentile(%d samples, %g) = %v, want %v", len(c.sorted), c.p, got, c.want)
		}
	}
}

func TestParseStatTicks(t *testing.T) {
	// A command name with spaces and parentheses, as a process may choose.
	line := "4242 (cad dy) (x)) S 1 4242 4242 0 -1 4194560 5000 0 12 0 731 269 0 0 20 0 9 0 12345 1234567 8910 18446744073709551615\n"
	got, err := parseStatTicks([]byte(line))
	if err != nil || got != 1000 {
		t.Errorf("parseStatTicks = %d, %v; want 731+269 = 1000", got, err)
	}
	for _, bad := range []string{"", "1 caddy S 1 2", "1 (caddy) S 1 2 3", "1 (caddy) S 1 1 1 0 -1 0 0 0 0 0 x 2 0"} {
		if _, err := parseStatTicks([]byte(bad)); err == nil {
			t.Errorf("parseStatTicks(%q) succeeded", bad)
		}
	}
}

func TestParseSchedstat(t *testing.T) {
	got, err := parseSchedstat([]byte("123456789012 3456 789\n"))
	if err != nil || got != 123456789012 {
		t.Errorf("parseSchedstat = %d, %v", got, err)
	}
	if _, err := parseSchedstat([]byte("12\n")); err == nil {
		t.Error("parseSchedstat accepted a single field")
	}
}

func TestReadCPUOfSelf(t *testing.T) {
	s, err := readCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.schedNS == 0 {
		t.Errorf("schedstat sum of a running process is 0: %+v", s)
	}
}

func TestParseStatusBytes(t *testing.T) {
	status := "Name:\tcaddy\nVmPeak:\t 2000000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  100000 kB\nThreads:\t9\n"
	got, err := parseStatusBytes([]byte(status), "VmHWM")
	if err != nil || got != 123456*1024 {
		t.Errorf("VmHWM = %d, %v", got, err)
	}
	if _, err := parseStatusBytes([]byte(status), "VmSwap"); err == nil {
		t.Error("a missing field was found")
	}
	if _, err := parseStatusBytes([]byte(status), "Threads"); err == nil {
		t.Error("a field without kB was read as a size")
	}
}

func TestParseProcStat(t *testing.T) {
	stat := "cpu  100 5 50 800 20 3 2 10 0 0\ncpu0 50 0 25 400 10 1 1 5 0 0\ncpu1 50 5 25 400 10 2 1 5 0 0\nintr 1 2 3\n"
	got, err := parseProcStat([]byte(stat))
	want := machineSample{busy: 100 + 5 + 50 + 3 + 2 + 10, total: 990, cpus: 2}
	if err != nil || got != want {
		t.Errorf("parseProcStat = %+v, %v; want %+v", got, err, want)
	}
	if _, err := parseProcStat([]byte("intr 1 2 3\n")); err == nil {
		t.Error("parseProcStat accepted a file without the cpu line")
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP caddy_license_api_cache_hits_total Definition lookups served from memory.
# TYPE caddy_license_api_cache_hits_total counter
caddy_license_api_cache_hits_total 1234
caddy_license_api_cache_misses_total 5.6e+01
caddy_license_api_responses_total{code="ok",endpoint="add_feature_consumption"} 900
caddy_license_api_responses_total{code="signature_mismatch",endpoint="add_feature_consumption"} 3
caddy_license_api_responses_total{code="ok",endpoint="other"} 7
caddy_license_api_store_writes_total 903
caddy_license_api_store_commits_total 101
caddy_license_api_store_syncs_total 99
go_goroutines 12
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if m.cacheHits != 1234 || m.cacheMisses != 56 {
		t.Errorf("cache %g hits, %g misses", m.cacheHits, m.cacheMisses)
	}
	if len(m.answers) != 2 || m.answers["ok"] != 900 || m.answers["signature_mismatch"] != 3 {
		t.Errorf("answers %v", m.answers)
	}
	if m.writes != 903 || m.commits != 101 || m.syncs != 99 {
		t.Errorf("store: %g writes, %g commits, %g syncs", m.writes, m.commits, m.syncs)
	}
	if _, err := parseMetrics(strings.NewReader("go_goroutines 12\n")); err == nil {
		t.Error("metrics without the license API's counters were accepted")
	}
}

func TestParseFlags(t *testing.T) {
	cfg, jsonPath, err := parseFlags(nil, os.Stderr)
	if err != nil || jsonPath != "" {
		t.Fatal(err, jsonPath)
	}
	def := defaultConfig()
	if cfg.duration != def.duration || cfg.connections != def.connections || !slices.Equal(cfg.licenses, def.licenses) ||
		!slices.Equal(cfg.keyTypes, def.keyTypes) {
		t.Errorf("no flags: %+v, want the defaults %+v", cfg, def)
	}
	cfg, jsonPath, err = parseFlags([]string{"-keys", "ecdsa, rsa,rsa2048", "-licenses", "10,5,10", "-json", "r.json"}, os.Stderr)
	if err != nil || jsonPath != "r.json" {
		t.Fatal(err, jsonPath)
	}
	if !slices.Equal(cfg.keyTypes, []signing.KeyType{signing.ECDSAP256, signing.RSA2048}) || !slices.Equal(cfg.licenses, []int{10, 5}) {
		t.Errorf("keys %v, licenses %v", cfg.keyTypes, cfg.licenses)
	}
	for _, bad := range [][]string{{"-keys", "ed25519"}, {"-licenses", "0"}, {"-connections", "0"}, {"-hot-share", "2"}, {"extra"}} {
		if _, _, err := parseFlags(bad, testWriter{t}); err == nil {
			t.Errorf("parseFlags(%q) succeeded", bad)
		}
	}
}

func TestHotCount(t *testing.T) {
	cfg := defaultConfig()
	for n, want := range map[int]int{100_000: 1000, 100: 1, 50: 1, 1: 1, 149: 1, 150: 2} {
		if got := cfg.hotCount(n); got != want {
			t.Errorf("hotCount(%d) = %d, want %d", n, got, want)
		}
	}
}
