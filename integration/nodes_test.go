package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgelicense/caddy-license-api/internal/testproxy"
	"github.com/edgelicense/caddy-license-api/signing"
)

// The tests in this file run several Caddy nodes on one PostgreSQL schema,
// seeded from testdata/nodes.json.
const nodesSeed = "testdata/nodes.json"

// consumeRequest is a signed add_feature_consumption of 1 on the nodes seed.
func consumeRequest(licenseKey, hardwareID, feature string) signedRequest {
	return signedRequest{endpoint: "add_feature_consumption", body: jsonBody(map[string]any{
		"product": "cad", "license_key": licenseKey, "hardware_id": hardwareID, "feature": feature, "consumptions": 1,
	})}
}

// answer is what a worker makes of a response.
type answer struct {
	status int
	code   string // of an error
	total  int64  // total_consumptions of a 200
}

// parse checks the response's signature and reads its status, code and
// total. It is safe for use from goroutines.
func (n *node) parse(r response) (answer, error) {
	if err := signing.Verify(n.publicKey, r.body, r.signature); err != nil {
		return answer{}, fmt.Errorf("LicenseSignature of %d %s: %v", r.status, r.body, err)
	}
	var v struct {
		Code  string `json:"code"`
		Total *int64 `json:"total_consumptions"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		return answer{}, fmt.Errorf("%d %s: %v", r.status, r.body, err)
	}
	a := answer{status: r.status, code: v.Code}
	if r.status == http.StatusOK {
		if v.Total == nil {
			return answer{}, fmt.Errorf("a 200 without total_consumptions: %s", r.body)
		}
		a.total = *v.Total
	}
	return a, nil
}

// loadClient is an HTTP client that keeps a connection per worker open,
// rather than opening one per request, and gives up on a request after
// timeout.
func loadClient(t *testing.T, workers int, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 4 * workers
	tr.MaxIdleConnsPerHost = workers
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// waitUntil polls cond every 10 ms until it holds, and fails the test if it
// does not within the deadline.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTwoNodesExactLimit fires 1000 concurrent consumptions of 1, half at
// each of two nodes that share the database, at a feature limited to 600:
// exactly 600 are granted, the other 400 refused, and the database agrees.
func TestTwoNodesExactLimit(t *testing.T) {
	const (
		requests = 1000
		workers  = 100
		limit    = 600
		featID   = 5001
	)
	s := newSchema(t)
	// A generous store timeout: this test is about exactness under
	// contention, and a 503 would count as a wrong answer.
	cfg := nodeConfig{seed: nodesSeed, store: s.store("", "", "timeout 10s")}
	nodes := []*node{startNode(t, cfg), startNode(t, cfg)}
	client := loadClient(t, workers, 30*time.Second)
	for _, n := range nodes {
		n.client = client
	}
	req := consumeRequest("KEY-LIMIT", "hw-1", "limited")

	type result struct {
		node int
		answer
		err error
	}
	results := make([]result, requests)
	var next atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			<-start
			for {
				i := int(next.Add(1) - 1)
				if i >= requests {
					return
				}
				n := nodes[i%2]
				res := result{node: i % 2}
				r, err := n.send(req)
				if err == nil {
					res.answer, err = n.parse(r)
				}
				res.err = err
				results[i] = res
			}
		})
	}
	done := make(chan struct{})
	began := time.Now()
	close(start)
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the requests did not finish within 2 minutes")
	}
	wall := time.Since(began)

	var granted, refused [2]int
	totals := make([]int64, 0, limit)
	others := map[string]int{}
	for _, r := range results {
		switch {
		case r.err != nil:
			others["error: "+r.err.Error()]++
		case r.status == http.StatusOK:
			granted[r.node]++
			totals = append(totals, r.total)
		case r.status == http.StatusBadRequest && r.code == "feature_not_enough_consumptions":
			refused[r.node]++
		default:
			others[fmt.Sprintf("%d %s", r.status, r.code)]++
		}
	}
	t.Logf("%d requests through 2 nodes with %d workers in %s (%.0f requests/s); granted A %d, B %d; refused A %d, B %d",
		requests, workers, wall.Round(time.Millisecond), requests/wall.Seconds(), granted[0], granted[1], refused[0], refused[1])
	if len(others) > 0 {
		t.Errorf("answers other than 200 and feature_not_enough_consumptions: %v", others)
	}
	if g, r := granted[0]+granted[1], refused[0]+refused[1]; g != limit || r != requests-limit {
		t.Errorf("granted %d and refused %d, want %d and %d", g, r, limit, requests-limit)
	}
	if !isOneTo(totals, limit) {
		t.Errorf("the granted answers' totals are not 1..%d each once", limit)
	}
	if c := s.counter(featID); c != limit {
		t.Errorf("the counter in PostgreSQL is %d, want %d", c, limit)
	}
	ledger := s.ledgerTotals(featID)
	if len(ledger) != limit {
		t.Errorf("the ledger has %d rows for the feature, want %d", len(ledger), limit)
	}
	if !isOneTo(ledger, limit) {
		t.Errorf("the ledger's totals are not 1..%d each once", limit)
	}
}

// isOneTo reports whether v holds 1..n, each once, in any order.
func isOneTo(v []int64, n int) bool {
	if len(v) != n {
		return false
	}
	v = slices.Clone(v)
	slices.Sort(v)
	for i, x := range v {
		if x != int64(i+1) {
			return false
		}
	}
	return true
}

// twoNodes starts two nodes on the schema with a cache whose entries would
// outlive the test: only an announcement can make them see a change.
func twoNodes(t *testing.T, s *pgSchema) (a, b *node) {
	t.Helper()
	cfg := nodeConfig{seed: nodesSeed, store: s.store("", "", ""), extra: "cache {\n\t\t\tttl 1h\n\t\t}"}
	return startNode(t, cfg), startNode(t, cfg)
}

// granted fails the test unless n grants req.
func granted(t *testing.T, n *node, req signedRequest) {
	t.Helper()
	if r := n.verified(n.do(req)); r.status != http.StatusOK {
		t.Fatalf("%s %s: got %d %s, want 200", req.endpoint, req.body, r.status, r.body)
	}
}

// answersFromCache shows that node b answers from its cache, so that a
// change it then notices quickly was announced to it, not read: for a
// device of the candidates, it warms b's cache with two granted
// consumptions, makes change in the database behind the nodes' backs (no
// announcement), and expects b to grant the next consumption all the same.
// A device whose check b answers from the database is not conclusive: the
// cache may not have stored the entry yet (ristretto stores
// asynchronously), or an announcement from elsewhere may have cleared it
// (channels are per database, and other tests' stores share the database).
// So the next candidate is tried, and the test fails only if b never
// answers from its cache.
func answersFromCache(t *testing.T, b *node, licenseKey string, candidates []string, change func(hw string)) {
	t.Helper()
	for _, hw := range candidates {
		req := consumeRequest(licenseKey, hw, "unlimited")
		granted(t, b, req)
		granted(t, b, req)
		change(hw)
		r := b.verified(b.do(req))
		if r.status == http.StatusOK {
			return
		}
		t.Logf("node B noticed an unannounced change for %s at once (%d %s); trying another device", hw, r.status, r.body)
	}
	t.Fatalf("node B noticed every unannounced change at once: it does not answer from its cache, " +
		"so this test cannot show that announcements reach it")
}

// untilAnswered polls n with req every 20 ms until it answers code, and
// returns when it first did. Until then every answer must be a 200; after
// within, the test fails.
func untilAnswered(t *testing.T, n *node, req signedRequest, code string, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := n.verified(n.do(req))
		at := time.Now()
		if a, _ := n.parse(r); a.code == code {
			return at
		}
		if r.status != http.StatusOK {
			t.Fatalf("while waiting for %s: got %d %s", code, r.status, r.body)
		}
		if at.After(deadline) {
			t.Fatalf("%s still grants %s %s %s after the change", n.base, req.endpoint, req.body, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBlacklistReachesOtherNode blacklists a device by reloading node A
// with a new seed, and measures how long node B, whose cache holds the
// device as allowed, takes to refuse it.
func TestBlacklistReachesOtherNode(t *testing.T) {
	const maxDelay = time.Second
	s := newSchema(t)
	a, b := twoNodes(t, s)
	x := consumeRequest("KEY-FLEET", "hw-x", "unlimited")
	granted(t, b, x)
	granted(t, b, x) // now from B's cache
	answersFromCache(t, b, "KEY-FLEET", []string{"hw-c1", "hw-c2", "hw-c3", "hw-c4", "hw-c5"}, func(hw string) {
		s.exec(`INSERT INTO blacklist (hardware_id, product_id) SELECT $1, id FROM products WHERE short_code = 'cad'`, hw)
	})

	seed, err := os.ReadFile(nodesSeed)
	if err != nil {
		t.Fatal(err)
	}
	barred := strings.Replace(string(seed), `"blacklist": []`, `"blacklist": [{"hardware_id": "hw-x", "product": "cad"}]`, 1)
	if barred == string(seed) {
		t.Fatal("the nodes seed no longer has the line this test edits")
	}
	newSeed := filepath.Join(t.TempDir(), "barred.json")
	if err := os.WriteFile(newSeed, []byte(barred), 0o600); err != nil {
		t.Fatal(err)
	}
	oldSeed, _ := filepath.Abs(nodesSeed)
	reloading := time.Now()
	a.reload(strings.Replace(a.caddyfile, "seed "+oldSeed, "seed "+newSeed, 1))
	reloaded := time.Now()
	seen := untilAnswered(t, b, x, "blacklisted", 5*time.Second)
	delay := seen.Sub(reloaded)
	t.Logf("node B refused the device %s after node A's reload returned (%s after it was sent; the reload took %s)",
		delay.Round(time.Millisecond), seen.Sub(reloading).Round(time.Millisecond), reloaded.Sub(reloading).Round(time.Millisecond))
	if delay > maxDelay {
		t.Errorf("the blacklisting took %s to reach node B, want at most %s", delay, maxDelay)
	}
	if r, _ := a.parse(a.do(x)); r.code != "blacklisted" {
		t.Errorf("node A itself answers %d %s for the blacklisted device", r.status, r.code)
	}
}

// TestDeactivationReachesOtherNode activates a device through node A, uses
// it through node B, deactivates it through A, and measures how long B
// takes to refuse it.
func TestDeactivationReachesOtherNode(t *testing.T) {
	const maxDelay = time.Second
	s := newSchema(t)
	a, b := twoNodes(t, s)
	device := func(endpoint string) signedRequest {
		return signedRequest{endpoint: endpoint, body: jsonBody(map[string]any{
			"product": "cad", "license_key": "KEY-ACTIVATE", "hardware_id": "hw-d"})}
	}
	granted(t, a, device("activate_license"))
	x := consumeRequest("KEY-ACTIVATE", "hw-d", "unlimited")
	granted(t, b, x)
	granted(t, b, x) // now from B's cache
	answersFromCache(t, b, "KEY-ACTIVATE", []string{"hw-c1", "hw-c2", "hw-c3", "hw-c4", "hw-c5"}, func(hw string) {
		s.exec(`UPDATE devices SET active = false WHERE license_id = 1004 AND hardware_id = $1`, hw)
	})

	deactivating := time.Now()
	if r := a.do(device("deactivate_license")); r.status != http.StatusOK || string(r.body) != "license_deactivated" {
		t.Fatalf("deactivating through node A: %d %s", r.status, r.body)
	}
	deactivated := time.Now()
	seen := untilAnswered(t, b, x, "device_not_found", 5*time.Second)
	delay := seen.Sub(deactivated)
	t.Logf("node B refused the device %s after node A answered the deactivation (%s after it was sent)",
		delay.Round(time.Millisecond), seen.Sub(deactivating).Round(time.Millisecond))
	if delay > maxDelay {
		t.Errorf("the deactivation took %s to reach node B, want at most %s", delay, maxDelay)
	}
	if r, _ := a.parse(a.do(x)); r.code != "device_not_found" {
		t.Errorf("node A itself answers %d %s for the deactivated device", r.status, r.code)
	}
}

// outageCall is one request of TestDatabaseOutage.
type outageCall struct {
	node       int
	start, end time.Time
	answer
	err error
}

func (c *outageCall) ok() bool { return c.err == nil && c.status == http.StatusOK }

// outageLog collects the calls as workers finish them.
type outageLog struct {
	mu    sync.Mutex
	calls []outageCall
}

func (l *outageLog) add(c outageCall) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

// count returns how many calls to node (-1 for any) that started at or
// after since match.
func (l *outageLog) count(node int, since time.Time, match func(*outageCall) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for i := range l.calls {
		if c := &l.calls[i]; (node < 0 || c.node == node) && !c.start.Before(since) && match(c) {
			n++
		}
	}
	return n
}

// TestDatabaseOutage runs two nodes whose database connections go through
// a proxy, under a steady load of consumptions, and takes the database
// away twice: first it drops the connections and refuses new ones (cut),
// then it lets them hang (freeze). Every request must be answered, a
// failure with 503 service_unavailable within the store's timeout and a
// margin; the nodes must serve again soon after each restore; every
// granted consumption must be in the ledger, whose totals must add up; and
// the DSN's password must not appear in the logs.
func TestDatabaseOutage(t *testing.T) {
	const (
		timeout   = time.Second
		maxFailed = 1500 * time.Millisecond // timeout plus a margin for a 503
		maxAny    = 2*timeout + 500*time.Millisecond
		phase     = 2 * time.Second // each stretch of load, and each outage
		// recoverWithin bounds how long a node may take to grant a new
		// request after the database is back.
		recoverWithin = 5 * time.Second
		workers       = 16
		featID        = 5002
		password      = "s3cr3t-pw" // trust authentication ignores it
	)
	s := newSchema(t)
	p := testproxy.Start(t, s.addr())
	// A short cache TTL, so that definitions are read, and fail to be
	// read, during the outages too.
	cfg := nodeConfig{seed: nodesSeed, store: s.store(p.Addr(), password, "max_conns 8\n\t\t\ttimeout 1s"),
		extra: "cache {\n\t\t\tttl 250ms\n\t\t}"}
	nodes := []*node{startNode(t, cfg), startNode(t, cfg)}
	if !strings.Contains(nodes[0].caddyfile, password) {
		t.Fatal("the Caddyfile does not hold the password this test looks for in the logs")
	}
	client := loadClient(t, workers, 10*time.Second) // 10 s: a request that long hung
	for _, n := range nodes {
		n.client = client
	}
	req := consumeRequest("KEY-BUSY", "hw-1", "unlimited")

	var log outageLog
	// call sends a consumption to node i and records it.
	call := func(i int) outageCall {
		c := outageCall{node: i, start: time.Now()}
		r, err := nodes[i].send(req)
		c.end = time.Now()
		if err == nil {
			c.answer, err = nodes[i].parse(r)
		}
		c.err = err
		log.add(c)
		return c
	}
	var seq atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				call(int(seq.Add(1) % 2))
			}
		})
	}
	stopped := false
	stopWorkers := func() {
		if stopped {
			return
		}
		stopped = true
		close(stop)
		done := make(chan struct{})
		go func() {
			wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("requests are still running 30s after the load stopped")
		}
	}
	defer stopWorkers()
	defer p.Restore() // first: a failed check must not leave the nodes without a database

	ok := func(c *outageCall) bool { return c.ok() }
	failed := func(c *outageCall) bool { return !c.ok() }
	// serve lets the load run for a phase, until both nodes granted at
	// least 50 requests in it.
	serve := func(what string) {
		t.Helper()
		from := time.Now()
		waitUntil(t, 20*time.Second, what, func() bool {
			return time.Since(from) >= phase && log.count(0, from, ok) >= 50 && log.count(1, from, ok) >= 50
		})
	}
	type outage struct {
		kind      string
		from, to  time.Time        // taken away, restored
		recovered [2]time.Duration // per node, from the restore to its first new grant
	}
	var outages []outage
	lose := func(kind string, take func()) {
		t.Helper()
		o := outage{kind: kind, from: time.Now()}
		take()
		waitUntil(t, 20*time.Second, "both nodes to fail requests during the "+kind, func() bool {
			return time.Since(o.from) >= phase && log.count(0, o.from, failed) >= workers/2 && log.count(1, o.from, failed) >= workers/2
		})
		o.to = time.Now()
		p.Restore()
		// Probe each node every 20 ms from the restore on, beside the load
		// (whose workers may all still be waiting on requests sent during
		// the outage), until it grants one.
		var probes sync.WaitGroup
		for i := range nodes {
			probes.Go(func() {
				for time.Since(o.to) < recoverWithin {
					if c := call(i); c.ok() {
						o.recovered[i] = c.end.Sub(o.to)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			})
		}
		probes.Wait()
		for i, d := range o.recovered {
			if d == 0 {
				t.Fatalf("node %d did not serve again within %s of the restore after the %s", i, recoverWithin, kind)
			}
		}
		outages = append(outages, o)
	}

	began := time.Now()
	serve("the load to run before the outages")
	lose("cut", p.Cut)
	serve("the load to run after the cut")
	lose("freeze", p.Freeze)
	serve("the load to run after the freeze")
	stopWorkers()
	ran := time.Since(began)

	// Every request was answered in time: a grant, or a 503
	// service_unavailable within the timeout and a margin.
	var slowestOK, slowestFailed, slowest time.Duration
	var okLatencies []time.Duration
	var grantedN, failedN, slowFailures, slowRequests int
	unexpected := map[string]int{}
	totals := map[int64]int{}
	for _, c := range log.calls {
		d := c.end.Sub(c.start)
		slowest = max(slowest, d)
		if d > maxAny {
			slowRequests++
		}
		switch {
		case c.err != nil:
			unexpected["error: "+c.err.Error()]++
		case c.status == http.StatusOK:
			grantedN++
			slowestOK = max(slowestOK, d)
			okLatencies = append(okLatencies, d)
			totals[c.total]++
		case c.status == http.StatusServiceUnavailable && c.code == "service_unavailable":
			failedN++
			slowestFailed = max(slowestFailed, d)
			if d > maxFailed {
				slowFailures++
			}
		default:
			unexpected[fmt.Sprintf("%d %s", c.status, c.code)]++
		}
	}
	if len(unexpected) > 0 {
		t.Errorf("answers other than 200 and 503 service_unavailable: %v", unexpected)
	}
	if slowFailures > 0 {
		t.Errorf("%d answers 503 took longer than %s (store timeout %s); the slowest %s", slowFailures, maxFailed, timeout, slowestFailed)
	}
	if slowRequests > 0 {
		t.Errorf("%d requests took longer than %s; the slowest %s", slowRequests, maxAny, slowest)
	}
	slices.Sort(okLatencies)
	var medianOK time.Duration
	if len(okLatencies) > 0 {
		medianOK = okLatencies[len(okLatencies)/2]
	}
	t.Logf("%d requests in %s with %d workers: %d granted, %d failed with 503; slowest 503 %s; 200s: median %s, slowest %s",
		len(log.calls), ran.Round(time.Millisecond), workers, grantedN, failedN, slowestFailed.Round(time.Millisecond),
		medianOK.Round(time.Microsecond), slowestOK.Round(time.Millisecond))
	for _, o := range outages {
		n503 := log.count(-1, o.from, func(c *outageCall) bool { return !c.ok() && c.start.Before(o.to) })
		t.Logf("%s of %s: %d requests failed; serving again after the restore: node A %s, node B %s",
			o.kind, o.to.Sub(o.from).Round(time.Millisecond), n503, o.recovered[0].Round(time.Millisecond), o.recovered[1].Round(time.Millisecond))
		// With the database away, nothing can be granted.
		for _, c := range log.calls {
			if c.ok() && !c.start.Before(o.from) && c.end.Before(o.to) {
				t.Errorf("a request that started during the %s was granted before the restore", o.kind)
				break
			}
		}
	}

	// Every grant is in the ledger, once; the ledger's totals are
	// distinct; the counter is what the ledger applied.
	ledger := map[int64]time.Time{} // total: when the consumption was made
	for _, row := range s.ledger(featID) {
		if _, dup := ledger[row.total]; dup {
			t.Errorf("the ledger has the total %d twice", row.total)
		}
		ledger[row.total] = row.at
	}
	for total, n := range totals {
		if n > 1 {
			t.Errorf("%d granted answers have the total %d", n, total)
		}
		if _, ok := ledger[total]; !ok {
			t.Errorf("a granted answer's total %d is not in the ledger", total)
		}
	}
	// Rows no grant accounts for are writes whose commit was interrupted:
	// their callers were answered 503, and the write may have been made.
	// Say when they happened.
	unanswered := map[string]int{}
	for total, at := range ledger {
		if totals[total] > 0 {
			continue
		}
		when := "outside the outages"
		for _, o := range outages {
			if !at.Before(o.from.Add(-time.Second)) && at.Before(o.to.Add(time.Second)) {
				when = "during the " + o.kind
			}
		}
		unanswered[when]++
	}
	applied := s.int(`SELECT SUM(applied) FROM consumption_ledger WHERE license_feature_id = $1`, featID)
	if c := s.counter(featID); c != applied {
		t.Errorf("the counter is %d, the ledger applied %d", c, applied)
	}
	t.Logf("ledger: %d rows for %d grants; rows whose callers were answered 503: %v", len(ledger), grantedN, unanswered)

	for i, n := range nodes {
		if strings.Contains(n.logs.String(), password) {
			t.Errorf("node %d's log shows the database password", i)
		}
	}
}
