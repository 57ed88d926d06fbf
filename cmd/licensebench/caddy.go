package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// caddyPackage is the Caddy main with the license API built in.
const caddyPackage = "github.com/edgelicense/caddy-license-api/cmd/caddy"

// clockTicks is Linux's USER_HZ (sysconf(_SC_CLK_TCK)), the unit of
// /proc/<pid>/stat's utime and stime; it is 100 on every Linux ABI.
const clockTicks = 100

// sharedKeyEnv carries the API's shared key (and pgDSNEnv the PostgreSQL
// DSN) from the benchmark to Caddy, keeping secrets out of the Caddyfile.
const (
	sharedKeyEnv = "LICENSEBENCH_SHARED_KEY"
	pgDSNEnv     = "LICENSEBENCH_POSTGRES_DSN"
)

// buildCaddy compiles Caddy with the plugin into dst.
func buildCaddy(ctx context.Context, dst string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dst, caddyPackage)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s: %w\n%s", caddyPackage, err, out)
	}
	return nil
}

// caddyProc is one running Caddy with its own directory (Caddyfile, data,
// config, log), serving one site and its admin endpoint on loopback only.
type caddyProc struct {
	cmd     *exec.Cmd
	dir     string
	base    string // http://127.0.0.1:<port>
	admin   string // 127.0.0.1:<port>
	logPath string
	exited  chan struct{} // closed when the process has exited
}

// running holds every Caddy not yet stopped, so stopAll can end them on any
// way out of the benchmark.
var running struct {
	sync.Mutex
	procs map[*caddyProc]struct{}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startCaddy starts bin with a Caddyfile made of the global options and one
// site on a free loopback port whose block holds site, and returns at once;
// waitServing tells when it answers. env is added to the environment.
func startCaddy(bin, dir, site string, env []string) (*caddyProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &caddyProc{
		dir:     dir,
		base:    fmt.Sprintf("http://127.0.0.1:%d", port),
		admin:   fmt.Sprintf("127.0.0.1:%d", adminPort),
		logPath: filepath.Join(dir, "caddy.log"),
		exited:  make(chan struct{}),
	}
	caddyfile := fmt.Sprintf(`{
	admin %s
	auto_https off
	persist_config off
}

http://127.0.0.1:%d {
	bind 127.0.0.1
%s
}
`, p.admin, port, site)
	cfPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfPath, []byte(caddyfile), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	p.cmd = exec.Command(bin, "run", "--config", cfPath, "--adapter", "caddyfile")
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		sharedKeyEnv+"="+benchSharedKey)
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	// Its own process group keeps a terminal's Ctrl-C from reaching Caddy
	// mid-measurement (the benchmark stops it), and the parent-death signal
	// ends it even if the benchmark is killed outright.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	running.Lock()
	defer running.Unlock()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	if running.procs == nil {
		running.procs = map[*caddyProc]struct{}{}
	}
	running.procs[p] = struct{}{}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// pid is the Caddy process's id.
func (p *caddyProc) pid() int { return p.cmd.Process.Pid }

// alive reports whether the process is still running.
func (p *caddyProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// waitServing polls an API path until it is answered over HTTP. A
// license_api handler answers only once the license_api app has started
// (the seed imported, the cache warmed), while Caddy may serve other paths
// before; a static site answers it at once. It fails if Caddy exits first or
// takes longer than timeout.
func (p *caddyProc) waitServing(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/api/v4/check_license", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("caddy exited during start-up (%s); log:\n%s", p.cmd.ProcessState, p.logTail(20))
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("caddy did not serve within %s; log:\n%s", timeout, p.logTail(20))
			}
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends Caddy: an interrupt for a graceful exit, a kill after 10 s.
func (p *caddyProc) stop() {
	running.Lock()
	delete(running.procs, p)
	running.Unlock()
	if !p.alive() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// stopAll stops every Caddy still running.
func stopAll() {
	running.Lock()
	procs := make([]*caddyProc, 0, len(running.procs))
	for p := range running.procs {
		procs = append(procs, p)
	}
	running.Unlock()
	for _, p := range procs {
		p.stop()
	}
}

// logTail returns the last n lines of Caddy's log, for error messages.
func (p *caddyProc) logTail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// cpuSample is a process's CPU time at one instant, read two ways.
type cpuSample struct {
	// schedNS is the on-CPU time in ns summed over the live threads
	// (/proc/<pid>/task/*/schedstat): precise, but blind to threads that
	// exited, which the Go runtime practically never does.
	schedNS uint64
	// ticks is utime+stime in clock ticks (/proc/<pid>/stat): coarse (10 ms)
	// but counting every thread, the cross-check.
	ticks uint64
}

// readCPU samples the CPU time of process pid.
func readCPU(pid int) (cpuSample, error) {
	var s cpuSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	if s.ticks, err = parseStatTicks(stat); err != nil {
		return s, err
	}
	taskDir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(taskDir)
	if err != nil {
		return s, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(taskDir, t.Name(), "schedstat"))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread exited since ReadDir
		}
		if err != nil {
			return s, err
		}
		ns, err := parseSchedstat(b)
		if err != nil {
			return s, err
		}
		s.schedNS += ns
	}
	return s, nil
}

// parseSchedstat returns the first field of a schedstat file: time spent
// on the CPU, in ns.
func parseSchedstat(b []byte) (uint64, error) {
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0, fmt.Errorf("schedstat %q: want 3 fields", b)
	}
	return strconv.ParseUint(string(f[0]), 10, 64)
}

// parseStatTicks returns utime+stime from a /proc/<pid>/stat line. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatTicks(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat %q: no command name", b)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state), so utime (field 14) is f[11], stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	utime, err := strconv.ParseUint(string(f[11]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat utime: %w", err)
	}
	stime, err := strconv.ParseUint(string(f[12]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat stime: %w", err)
	}
	return utime + stime, nil
}

// readMemory returns the process's peak resident set size (VmHWM) and its
// current one (VmRSS), in bytes.
func readMemory(pid int) (peak, current uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	if peak, err = parseStatusBytes(b, "VmHWM"); err != nil {
		return 0, 0, err
	}
	current, err = parseStatusBytes(b, "VmRSS")
	return peak, current, err
}

// parseStatusBytes returns the field of a /proc/<pid>/status file, given
// there in kB, in bytes.
func parseStatusBytes(b []byte, field string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status %s: %q is not a size in kB", field, rest)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status %s: %w", field, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("status has no %s", field)
}

// machineSample is the whole machine's CPU time from /proc/stat, in ticks,
// and its number of CPUs.
type machineSample struct {
	busy, total uint64
	cpus        int
}

// readMachine samples the machine's CPU time.
func readMachine() (machineSample, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineSample{}, err
	}
	return parseProcStat(b)
}

// parseProcStat reads the aggregate "cpu" line of /proc/stat and counts
// the per-CPU lines. Idle and iowait are not busy; guest time is already
// inside user and nice.
func parseProcStat(b []byte) (machineSample, error) {
	line, rest, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return machineSample{}, fmt.Errorf("/proc/stat: first line %q is not the cpu total", line)
	}
	var s machineSample
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return machineSample{}, fmt.Errorf("/proc/stat: %w", err)
		}
		s.total += n
		if i != 3 && i != 4 {
			s.busy += n
		}
	}
	for l := range bytes.Lines(rest) {
		if bytes.HasPrefix(l, []byte("cpu")) {
			s.cpus++
		}
	}
	return s, nil
}

// serverMetrics is what the license API's counters on Caddy's admin
// /metrics said at one instant.
type serverMetrics struct {
	cacheHits, cacheMisses float64
	answers                map[string]float64 // code ("ok" for 200) → count, add_feature_consumption only
	// writes, commits and syncs are the store's group commit counters.
	writes, commits, syncs float64
}

// scrapeMetrics reads the license API's counters from Caddy's admin endpoint.
func scrapeMetrics(ctx context.Context, admin string) (serverMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return serverMetrics{}, err
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return serverMetrics{}, fmt.Errorf("admin /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return serverMetrics{}, fmt.Errorf("admin /metrics: HTTP %d", resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

// The license API's metric names.
const (
	metricCacheHits   = "caddy_license_api_cache_hits_total"
	metricCacheMisses = "caddy_license_api_cache_misses_total"
	metricResponses   = "caddy_license_api_responses_total"
	metricWrites      = "caddy_license_api_store_writes_total"
	metricCommits     = "caddy_license_api_store_commits_total"
	metricSyncs       = "caddy_license_api_store_syncs_total"
)

// parseMetrics picks the license API's counters out of Prometheus text
// exposition. Both cache counters must be present: their absence means the
// plugin is not running.
func parseMetrics(r io.Reader) (serverMetrics, error) {
	m := serverMetrics{answers: map[string]float64{}}
	var sawHits, sawMisses bool
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		series, value := line[:sp], line[sp+1:]
		name, labels, _ := strings.Cut(series, "{")
		switch name {
		case metricCacheHits, metricCacheMisses, metricResponses, metricWrites, metricCommits, metricSyncs:
		default:
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return m, fmt.Errorf("metrics: %q: %w", line, err)
		}
		switch name {
		case metricCacheHits:
			m.cacheHits, sawHits = v, true
		case metricCacheMisses:
			m.cacheMisses, sawMisses = v, true
		case metricResponses:
			if label(labels, "endpoint") == "add_feature_consumption" {
				m.answers[label(labels, "code")] += v
			}
		case metricWrites:
			m.writes = v
		case metricCommits:
			m.commits = v
		case metricSyncs:
			m.syncs = v
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if !sawHits || !sawMisses {
		return m, errors.New("metrics: no license API cache counters")
	}
	return m, nil
}

// label returns the value of name in a Prometheus label set such as
// `code="ok",endpoint="x"}`. The values this benchmark reads hold no
// escaped quotes.
func label(labels, name string) string {
	for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k == name {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// startProfile has Caddy profile its CPU for d (from now, so it covers the
// warm-up and the measured window) and returns a function that waits for
// the profile and writes it to path. The profiler costs Caddy a few percent
// of CPU, which is why profiling is a flag and not part of every run.
func startProfile(ctx context.Context, admin string, d time.Duration, path string) (wait func() error) {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, int(d.Round(time.Second)/time.Second))
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
			}
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, resp.Body); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}()
	}()
	return func() error { return <-done }
}
