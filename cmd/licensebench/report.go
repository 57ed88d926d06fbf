package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgelicense/caddy-license-api/signing"
)

// Acceptance targets of the project, checked against the results.
const (
	targetCPUPerSignature  = 1.25  // RSA-2048 run: Caddy CPU/answer ÷ CPU/signature, at most
	targetCeilingShare     = 0.40  // ECDSA run: throughput ÷ static ceiling, at least
	targetP99Ms            = 10.0  // ECDSA run: p99 in ms, below
	targetP99Connections   = 32    // the connection count the p99 target is stated for
	targetLicenseScaling   = 0.90  // throughput with many ÷ with few licenses, at least
	targetPeakRSSMB        = 300.0 // peak RSS with many licenses, in MB (10^6 bytes), below
	cpuCrossCheckTolerance = 0.05  // schedstat and stat CPU may differ this much (plus 50 ms)
	otherCoresNoise        = 0.25  // CPU used by neither Caddy nor the client worth a warning, in cores
)

// Report is the whole benchmark's result, as printed and as written by
// -json.
type Report struct {
	// Started is when the benchmark began.
	Started time.Time `json:"started"`
	// TotalSeconds is how long the whole benchmark took, build included.
	TotalSeconds float64 `json:"total_seconds"`
	// Machine describes where it ran.
	Machine MachineInfo `json:"machine"`
	// Config is the load every run used.
	Config ConfigSummary `json:"config"`
	// Signing holds the raw signing rate of each key type.
	Signing []SignResult `json:"signing"`
	// Static is the respond "ok" ceiling.
	Static *RunResult `json:"static,omitempty"`
	// Runs are the license API runs, by key type then license count.
	Runs []*RunResult `json:"runs"`
	// Checks are the acceptance targets that the runs made measurable.
	Checks []Check `json:"checks"`
	// Failures say how the benchmark itself broke (non-200 answers, transport
	// errors); any makes the exit status 1.
	Failures []string `json:"failures"`
	// Warnings are doubts about a measurement that do not invalidate it.
	Warnings []string `json:"warnings"`
}

// MachineInfo describes the machine and toolchain.
type MachineInfo struct {
	// OS and Arch are Go's names of the platform.
	OS   string `json:"os"`
	Arch string `json:"arch"`
	// CPUs is the number of logical CPUs; GOMAXPROCS the benchmark's own.
	CPUs       int `json:"cpus"`
	GOMAXPROCS int `json:"gomaxprocs"`
	// GoVersion is the toolchain that built the benchmark and Caddy.
	GoVersion string `json:"go_version"`
}

// ConfigSummary is the load configuration shared by every run.
type ConfigSummary struct {
	// Connections is the number of closed-loop clients, one keep-alive
	// connection each.
	Connections int `json:"connections"`
	// WarmupSeconds and DurationSeconds are each load's warm-up and
	// measured window.
	WarmupSeconds   float64 `json:"warmup_seconds"`
	DurationSeconds float64 `json:"duration_seconds"`
	// HotLicenses is the fraction of licenses in the hot set, HotShare the
	// fraction of requests sent to it.
	HotLicenses float64 `json:"hot_licenses"`
	HotShare    float64 `json:"hot_share"`
	// Store is the API runs' backend: "sqlite" or "postgres".
	Store string `json:"store"`
	// CacheWarm is whether the API runs read every license into the cache
	// at start-up.
	CacheWarm bool `json:"cache_warm"`
}

// SignResult is the raw signing rate of one key type.
type SignResult struct {
	// KeyType is the key type's name (rsa2048, ecdsa-p256).
	KeyType string `json:"key_type"`
	// Algorithm is the signer's name for it (RSA-2048, ECDSA-P256).
	Algorithm string `json:"algorithm"`
	// Goroutines signed concurrently, one per GOMAXPROCS.
	Goroutines int `json:"goroutines"`
	// BodyBytes is the size of the signed response body.
	BodyBytes int `json:"body_bytes"`
	// Signatures were made in Seconds, PerSecond on average.
	Signatures int64   `json:"signatures"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"per_second"`
	// CPUPerSignatureUs is the process's CPU time per signature, in µs.
	CPUPerSignatureUs float64 `json:"cpu_per_signature_us"`
}

// RunResult is one load against one Caddy. Counts, latencies and CPU cover
// the measured window only, except NonOK and TransportErrors, which also
// count the warm-up.
type RunResult struct {
	// Name identifies the run in the report.
	Name string `json:"name"`
	// KeyType, Licenses and Store describe a license API run; they are
	// empty for the static ceiling.
	KeyType  string `json:"key_type,omitempty"`
	Licenses int    `json:"licenses,omitempty"`
	Store    string `json:"store,omitempty"`
	// Connections is the number of concurrent clients.
	Connections int `json:"connections"`
	// StartupSeconds is from starting Caddy to its first answer, the seed
	// import included.
	StartupSeconds float64 `json:"startup_seconds"`
	// WindowSeconds is the measured window's actual length.
	WindowSeconds float64 `json:"window_seconds"`
	// Answered is the number of 200 answers completed in the window, and
	// RequestsPerSecond their rate.
	Answered          int64   `json:"answered"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	// NonOK counts answers other than 200 by status; TransportErrors the
	// requests without an answer, FirstError the first one's message. Any
	// of them is a benchmark failure.
	NonOK           map[string]int64 `json:"non_200"`
	TransportErrors int64            `json:"transport_errors"`
	FirstError      string           `json:"first_error,omitempty"`
	// Latencies of the answered requests, in ms (nearest-rank percentiles).
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
	// CaddyCPUSeconds is the Caddy process's on-CPU time in the window from
	// its threads' schedstat; CaddyCPUStatSeconds the same from
	// /proc/<pid>/stat (10 ms ticks), as a cross-check.
	CaddyCPUSeconds     float64 `json:"caddy_cpu_seconds"`
	CaddyCPUStatSeconds float64 `json:"caddy_cpu_stat_seconds"`
	// CaddyCPUPerRequestUs is CaddyCPUSeconds per answered request, in µs;
	// CaddyCores the cores it kept busy on average.
	CaddyCPUPerRequestUs float64 `json:"caddy_cpu_per_request_us"`
	CaddyCores           float64 `json:"caddy_cores"`
	// ClientCPUPerRequestUs and ClientCores are the same for the load
	// generator, which shares the machine.
	ClientCPUPerRequestUs float64 `json:"client_cpu_per_request_us"`
	ClientCores           float64 `json:"client_cores"`
	// MachineBusy is the fraction of all CPUs' time not idle in the window;
	// OtherCores what of it neither Caddy nor the client used: kernel
	// threads (such as the file system's journal) and other processes,
	// which make timings noisy.
	MachineBusy float64 `json:"machine_busy"`
	OtherCores  float64 `json:"other_cores"`
	// SignCPUPerSignatureUs is the CPU time of one signature with the run's
	// key, measured in process just before and just after the load so that
	// it shares the load's machine conditions; CPUPerRequestInSignatures is
	// CaddyCPUPerRequestUs in units of it. Both are absent for the static
	// ceiling.
	SignCPUPerSignatureUs     float64 `json:"sign_cpu_per_signature_us,omitempty"`
	CPUPerRequestInSignatures float64 `json:"cpu_per_request_in_signatures,omitempty"`
	// StaticBesideRPS is the throughput of a static `respond` served by the
	// same Caddy, measured with the same client just before the run's load:
	// the ceiling under the run's own machine conditions. Absent for the
	// static ceiling itself.
	StaticBesideRPS float64 `json:"static_beside_requests_per_second,omitempty"`
	// PeakRSSMB is Caddy's peak resident set (VmHWM) at the end of the run,
	// start-up and seed import included, and EndRSSMB its resident set
	// then (VmRSS), both in MB (10^6 bytes).
	PeakRSSMB float64 `json:"peak_rss_mb"`
	EndRSSMB  float64 `json:"end_rss_mb"`
	// ConnectionsOpened counts the client's connections; more than
	// Connections means keep-alive broke.
	ConnectionsOpened int64 `json:"connections_opened"`
	// CacheHits and CacheMisses are the definitions cache's counters over
	// the window, from the admin /metrics; CacheHitRatio is
	// hits/(hits+misses), absent for the static ceiling.
	CacheHits     int64    `json:"cache_hits"`
	CacheMisses   int64    `json:"cache_misses"`
	CacheHitRatio *float64 `json:"cache_hit_ratio,omitempty"`
	// ServerAnswers are the server's own answer counts by code ("ok" for
	// 200) over the window, from the admin /metrics.
	ServerAnswers map[string]int64 `json:"server_answers,omitempty"`
	// WritesPerCommit and WritesPerSync are the store's writes over the
	// window divided by its transactions and by its flushes of the log to
	// disk: what group commit shares among requests. Absent when there
	// were none (the static ceiling; WritesPerSync with PostgreSQL).
	WritesPerCommit float64 `json:"writes_per_commit,omitempty"`
	WritesPerSync   float64 `json:"writes_per_sync,omitempty"`
	// Commits and Syncs are those transactions and flushes, counted over
	// the window (0 for the static ceiling; Syncs 0 with PostgreSQL).
	Commits int64 `json:"commits"`
	Syncs   int64 `json:"syncs"`
}

// Check is one acceptance target and how the benchmark measured up to it.
type Check struct {
	// Name says what is compared.
	Name string `json:"name"`
	// Value is the measured quantity, Target the bound it must respect,
	// as Op says ("<=", ">=" or "<"); Unit is empty for ratios.
	Value  float64 `json:"value"`
	Op     string  `json:"op"`
	Target float64 `json:"target"`
	Unit   string  `json:"unit,omitempty"`
	// Pass reports whether Value meets the target.
	Pass bool `json:"pass"`
	// Note gives a related measure, less sensitive to a noisy machine or
	// explaining the value, for information.
	Note string `json:"note,omitempty"`
}

func newReport(cfg config) *Report {
	store := "sqlite"
	if cfg.postgres != "" {
		store = "postgres"
	}
	return &Report{
		Started: time.Now(),
		Machine: MachineInfo{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(),
			GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()},
		Config: ConfigSummary{Connections: cfg.connections, WarmupSeconds: cfg.warmup.Seconds(),
			DurationSeconds: cfg.duration.Seconds(), HotLicenses: cfg.hotLicenses, HotShare: cfg.hotShare, Store: store,
			CacheWarm: cfg.cacheWarm},
		Failures: []string{},
		Warnings: []string{},
		Checks:   []Check{},
	}
}

// fillLoad records the client's view of a load.
func (r *RunResult) fillLoad(lr *loadResult) {
	r.WindowSeconds = lr.window.Seconds()
	r.Answered = lr.answered()
	r.RequestsPerSecond = float64(r.Answered) / r.WindowSeconds
	r.NonOK = map[string]int64{}
	for code, n := range lr.nonOK {
		r.NonOK[strconv.Itoa(code)] = n
	}
	r.TransportErrors, r.FirstError = lr.errors, lr.firstError
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	r.P50Ms = ms(percentile(lr.latencies, 0.50))
	r.P99Ms = ms(percentile(lr.latencies, 0.99))
	r.P999Ms = ms(percentile(lr.latencies, 0.999))
	r.MaxMs = ms(percentile(lr.latencies, 1))
	r.MeanMs = ms(mean(lr.latencies))
	r.ConnectionsOpened = lr.dials
}

// nonOKTotal is the number of answers other than 200.
func (r *RunResult) nonOKTotal() int64 {
	var n int64
	for _, c := range r.NonOK {
		n += c
	}
	return n
}

// evaluate derives the checks, failures and warnings from the results.
func (rep *Report) evaluate(cfg config) {
	runs := rep.Runs
	if rep.Static != nil {
		runs = append([]*RunResult{rep.Static}, runs...)
	}
	for _, r := range runs {
		if n := r.nonOKTotal(); n > 0 {
			rep.Failures = append(rep.Failures, fmt.Sprintf("%s: %d answers other than 200 (%s)", r.Name, n, formatCounts(r.NonOK)))
		}
		if r.TransportErrors > 0 {
			rep.Failures = append(rep.Failures, fmt.Sprintf("%s: %d requests got no answer; first: %s", r.Name, r.TransportErrors, r.FirstError))
		}
		if r.Answered == 0 {
			rep.Failures = append(rep.Failures, r.Name+": no request answered in the measured window")
		}
		for code, n := range r.ServerAnswers {
			if code != "ok" {
				rep.Failures = append(rep.Failures, fmt.Sprintf("%s: the server counted %d %q answers", r.Name, n, code))
			}
		}
		if diff := math.Abs(r.CaddyCPUSeconds - r.CaddyCPUStatSeconds); diff > 0.05+cpuCrossCheckTolerance*r.CaddyCPUSeconds {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: Caddy CPU from schedstat (%.2fs) and from stat (%.2fs) disagree; threads may have exited",
				r.Name, r.CaddyCPUSeconds, r.CaddyCPUStatSeconds))
		}
		if r.OtherCores > otherCoresNoise {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: %.2f cores went to other processes or kernel threads during the window; timings are noisy",
				r.Name, r.OtherCores))
		}
		if r.ConnectionsOpened > int64(r.Connections) {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: %d connections opened for %d clients: keep-alive broke",
				r.Name, r.ConnectionsOpened, r.Connections))
		}
	}

	many, few := slices.Max(cfg.licenses), slices.Min(cfg.licenses)
	find := func(kt signing.KeyType, n int) *RunResult {
		for _, r := range rep.Runs {
			if r.KeyType == string(kt) && r.Licenses == n {
				return r
			}
		}
		return nil
	}
	add := func(name string, value float64, op string, target float64, unit, note string) {
		pass := false
		switch op {
		case "<=":
			pass = value <= target
		case ">=":
			pass = value >= target
		case "<":
			pass = value < target
		}
		rep.Checks = append(rep.Checks, Check{Name: name, Value: value, Op: op, Target: target, Unit: unit, Pass: pass, Note: note})
	}
	if r := find(signing.RSA2048, many); r != nil {
		note := ""
		for _, sr := range rep.Signing {
			if sr.KeyType == string(signing.RSA2048) {
				note = fmt.Sprintf("with the raw signing phase's %s per signature instead: %.2f",
					us(sr.CPUPerSignatureUs), r.CaddyCPUPerRequestUs/sr.CPUPerSignatureUs)
			}
		}
		add(r.Name+": Caddy CPU per answered request ÷ CPU per RSA-2048 signature (signed beside the run)",
			r.CPUPerRequestInSignatures, "<=", targetCPUPerSignature, "", note)
	}
	if r := find(signing.ECDSAP256, many); r != nil {
		if st := rep.Static; st != nil {
			note := fmt.Sprintf("in CPU, (Caddy + client) per request, static ÷ this run: %.2f",
				(st.CaddyCPUPerRequestUs+st.ClientCPUPerRequestUs)/(r.CaddyCPUPerRequestUs+r.ClientCPUPerRequestUs))
			if r.StaticBesideRPS > 0 {
				add(r.Name+": throughput ÷ static respond ceiling measured beside it", r.RequestsPerSecond/r.StaticBesideRPS, ">=", targetCeilingShare, "",
					fmt.Sprintf("÷ the first static run instead: %.2f; %s", r.RequestsPerSecond/st.RequestsPerSecond, note))
			} else {
				add(r.Name+": throughput ÷ static respond ceiling", r.RequestsPerSecond/st.RequestsPerSecond, ">=", targetCeilingShare, "", note)
			}
		}
		name := fmt.Sprintf("%s: p99 latency at %d connections", r.Name, r.Connections)
		if r.Connections != targetP99Connections {
			name += fmt.Sprintf(" (the target is stated for %d)", targetP99Connections)
		}
		add(name, r.P99Ms, "<", targetP99Ms, "ms",
			fmt.Sprintf("mean %.1f ms: in a closed loop, connections ÷ throughput", r.MeanMs))
	}
	if many != few {
		for _, kt := range cfg.keyTypes {
			if m, f := find(kt, many), find(kt, few); m != nil && f != nil {
				note := fmt.Sprintf("in Caddy CPU per answered request, %d ÷ %d licenses: %.2f", few, many,
					f.CaddyCPUPerRequestUs/m.CaddyCPUPerRequestUs)
				if m.StaticBesideRPS > 0 && f.StaticBesideRPS > 0 {
					note += fmt.Sprintf("; each run's throughput ÷ its static beside, then %d ÷ %d: %.2f", many, few,
						(m.RequestsPerSecond/m.StaticBesideRPS)/(f.RequestsPerSecond/f.StaticBesideRPS))
				}
				add(fmt.Sprintf("%s: throughput with %d ÷ with %d licenses", kt, many, few),
					m.RequestsPerSecond/f.RequestsPerSecond, ">=", targetLicenseScaling, "", note)
			}
		}
	}
	for _, kt := range cfg.keyTypes {
		if r := find(kt, many); r != nil {
			add(r.Name+": Caddy peak RSS", r.PeakRSSMB, "<", targetPeakRSSMB, "MB",
				fmt.Sprintf("RSS at the end %.0f MB; the peak includes start-up and the seed import", r.EndRSSMB))
		}
	}
}

// print writes the report as text tables.
func (rep *Report) print(w io.Writer) {
	c := rep.Config
	fmt.Fprintf(w, "\nlicensebench: %s/%s, %d CPUs, GOMAXPROCS %d, %s\n", rep.Machine.OS, rep.Machine.Arch,
		rep.Machine.CPUs, rep.Machine.GOMAXPROCS, rep.Machine.GoVersion)
	fmt.Fprintf(w, "load: %d connections, closed loop, signed POST add_feature_consumption; %gs warm-up, %gs measured per run;\n"+
		"      %g%% of requests to the hottest %g%% of licenses, the rest to any; API store: %s, cache warm %s\n",
		c.Connections, c.WarmupSeconds, c.DurationSeconds, c.HotShare*100, c.HotLicenses*100, c.Store, onOff(c.CacheWarm))
	fmt.Fprintf(w, "total time %.0fs\n", rep.TotalSeconds)

	if len(rep.Signing) > 0 {
		fmt.Fprintf(w, "\n== Raw signing: in process, GOMAXPROCS goroutines, %d-byte body ==\n", rep.Signing[0].BodyBytes)
		tw := newTable(w)
		fmt.Fprintln(tw, "key\tsignatures/s\tCPU/signature\tsignatures\t")
		for _, s := range rep.Signing {
			fmt.Fprintf(tw, "%s\t%.0f\t%s\t%d\t\n", s.Algorithm, s.PerSecond, us(s.CPUPerSignatureUs), s.Signatures)
		}
		tw.Flush()
	}

	runs := rep.Runs
	if rep.Static != nil {
		runs = append([]*RunResult{rep.Static}, runs...)
	}
	if len(runs) > 0 {
		name := padNames(runs)
		fmt.Fprintln(w, "\n== Throughput and latency (client view; only 200s count as answered) ==")
		tw := newTable(w)
		fmt.Fprintln(tw, name("run")+"\treq/s\tstatic beside\tp50\tp99\tp99.9\tmax\tanswered\tnon-200\terrors\t")
		for _, r := range runs {
			beside := "-"
			if r.StaticBesideRPS > 0 {
				beside = fmt.Sprintf("%.0f", r.StaticBesideRPS)
			}
			fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t\n", name(r.Name), r.RequestsPerSecond, beside,
				ms(r.P50Ms), ms(r.P99Ms), ms(r.P999Ms), ms(r.MaxMs), r.Answered, r.nonOKTotal(), r.TransportErrors)
		}
		tw.Flush()

		fmt.Fprintln(w, "\n== Cost: CPU read from the Caddy process over the measured window ==")
		tw = newTable(w)
		fmt.Fprintln(tw, name("run")+"\tCaddy CPU/req\tCPU/signature beside\treq ÷ signature\tCaddy cores\tclient CPU/req\tclient cores\tother cores\tmachine busy\t")
		for _, r := range runs {
			sig, inSigs := "-", "-"
			if r.SignCPUPerSignatureUs > 0 {
				sig, inSigs = us(r.SignCPUPerSignatureUs), fmt.Sprintf("%.2f", r.CPUPerRequestInSignatures)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%s\t%.2f\t%.2f\t%.0f%%\t\n", name(r.Name), us(r.CaddyCPUPerRequestUs),
				sig, inSigs, r.CaddyCores, us(r.ClientCPUPerRequestUs), r.ClientCores, r.OtherCores, r.MachineBusy*100)
		}
		tw.Flush()

		fmt.Fprintln(w, "\n== Server: start-up (seed import included), memory, definitions cache and group commit over the window ==")
		tw = newTable(w)
		fmt.Fprintln(tw, name("run")+"\tstart-up\tpeak RSS\tRSS at end\tcache hits\tcache misses\thit ratio\twrites/commit\twrites/fsync\t")
		for _, r := range runs {
			hits, misses, ratio := "-", "-", "-"
			if r.CacheHitRatio != nil {
				hits, misses = strconv.FormatInt(r.CacheHits, 10), strconv.FormatInt(r.CacheMisses, 10)
				ratio = fmt.Sprintf("%.2f%%", *r.CacheHitRatio*100)
			}
			perCommit, perSync := "-", "-"
			if r.WritesPerCommit > 0 {
				perCommit = fmt.Sprintf("%.1f", r.WritesPerCommit)
			}
			if r.WritesPerSync > 0 {
				perSync = fmt.Sprintf("%.1f", r.WritesPerSync)
			}
			fmt.Fprintf(tw, "%s\t%.1fs\t%.0f MB\t%.0f MB\t%s\t%s\t%s\t%s\t%s\t\n", name(r.Name), r.StartupSeconds,
				r.PeakRSSMB, r.EndRSSMB, hits, misses, ratio, perCommit, perSync)
		}
		tw.Flush()
	}

	if len(rep.Checks) > 0 {
		fmt.Fprintln(w, "\n== Acceptance targets (reported, not asserted) ==")
		for _, ch := range rep.Checks {
			verdict := "FAIL"
			if ch.Pass {
				verdict = "PASS"
			}
			fmt.Fprintf(w, "%s  %s = %s (target %s %s)\n", verdict, ch.Name, formatValue(ch.Value, ch.Unit), ch.Op, formatValue(ch.Target, ch.Unit))
			if ch.Note != "" {
				fmt.Fprintf(w, "      (%s)\n", ch.Note)
			}
		}
	}
	if len(rep.Warnings) > 0 {
		fmt.Fprintln(w)
	}
	for _, s := range rep.Warnings {
		fmt.Fprintln(w, "WARNING:", s)
	}
	if len(rep.Failures) > 0 {
		fmt.Fprintln(w, "\n!!!!!!!! BENCHMARK FAILURES: the numbers above are not valid !!!!!!!!")
		for _, s := range rep.Failures {
			fmt.Fprintln(w, "!!", s)
		}
	}
}

// writeJSON writes the report as indented JSON to path.
func (rep *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
}

// us formats microseconds, switching to ms above 10 ms.
func us(v float64) string {
	if v >= 10_000 {
		return fmt.Sprintf("%.1f ms", v/1e3)
	}
	return fmt.Sprintf("%.1f µs", v)
}

// ms formats milliseconds with about three significant digits.
func ms(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

// padNames returns a function that left-aligns a run name in the width of
// the longest, for right-aligned tables whose first column reads better
// left-aligned.
func padNames(runs []*RunResult) func(string) string {
	width := len("run")
	for _, r := range runs {
		width = max(width, len(r.Name))
	}
	return func(s string) string { return fmt.Sprintf("%-*s", width, s) }
}

func formatValue(v float64, unit string) string {
	if unit == "" {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

// formatCounts writes a status → count map as "503: 12, 400: 1", largest first.
func formatCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
