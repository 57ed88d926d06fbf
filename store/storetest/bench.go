package storetest

import (
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// LargeSeed returns the seed licensebench starts Caddy with: n key-based
// licenses of one product, each with one consumption feature and one device.
// Import benchmarks use it so that they measure what a real start-up does.
func LargeSeed(n int) []byte {
	var b strings.Builder
	b.Grow(n * 110)
	b.WriteString(`{"products":[{"short_code":"bench","name":"Benchmark","authorization_method":"license-key",` +
		`"features":[{"code":"calls","name":"API calls","feature_type":"consumption",` +
		`"allow_unlimited_consumptions":true,"allow_negative_consumptions":false}]}],` + "\n" + `"licenses":[`)
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `{"product":"bench","license_key":"BENCH-%08d","features":[{"code":"calls"}],"devices":[{"hardware_id":"hw-%08d"}]}`, i, i)
	}
	b.WriteString("]}\n")
	return []byte(b.String())
}

// ReportPeakMemory samples the Go heap while the benchmark runs and, when
// it stops, reports the largest heap seen (peak-heap-MB) and the process's
// peak resident set since the call (peak-RSS-MB, Linux only). The resident
// set matters as well as the heap: SQLite's page cache lives outside it.
// Call it after the benchmark's setup; the returned function stops it.
func ReportPeakMemory(b *testing.B) (stop func()) {
	resetPeakRSS()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		if rss, ok := peakRSS(); ok {
			b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MB")
		}
	}
}

// resetPeakRSS makes the kernel's VmHWM start again from the current
// resident set, so that earlier benchmarks in the process don't count.
func resetPeakRSS() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

func peakRSS() (uint64, bool) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
