package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgelicense/caddy-license-api/auth"
)

// Credentials of the benchmark's API key. The shared key reaches Caddy
// through the environment, as the README recommends for secrets.
const (
	benchAPIKey    = "bench-api-key"
	benchSharedKey = "bench-shared-key-2f8c1d0e9a7b"
)

// loadSpec describes one closed-loop load: connections goroutines, each
// sending its next request as soon as the previous answer is read.
type loadSpec struct {
	url         string   // full URL of the endpoint
	bodies      [][]byte // one request body per license
	hot         int      // bodies[:hot] are the hot set
	hotShare    float64  // fraction of requests sent to the hot set
	connections int
	warmup      time.Duration // load before the measured window
	duration    time.Duration // the measured window
	seed        uint64        // of the license choice, so runs are repeatable
}

// loadResult is what the load generator saw. Answers and latencies count
// only within the measured window; refusals and errors count over the whole
// load, warm-up included, since any of them means the benchmark is broken.
type loadResult struct {
	window     time.Duration
	latencies  []time.Duration // of the 200 answers completed in the window, sorted
	nonOK      map[int]int64   // HTTP status → count
	errors     int64           // requests that got no HTTP answer
	firstError string
	dials      int64 // connections opened
}

// answered is the number of 200 answers completed in the window.
func (r *loadResult) answered() int64 { return int64(len(r.latencies)) }

// authHeaders are the Date and Authorization header values of one second.
// The Authorization depends only on the Date and the keys, so it is computed
// once per second rather than per request, to keep the client cheap.
type authHeaders struct {
	second      int64
	date, authz []string
}

// authCache hands out the current second's authHeaders.
type authCache struct {
	cur atomic.Pointer[authHeaders]
}

func (c *authCache) at(now time.Time) *authHeaders {
	sec := now.Unix()
	if h := c.cur.Load(); h != nil && h.second == sec {
		return h
	}
	// Several workers may compute the same second at once; they agree.
	date := now.UTC().Format(http.TimeFormat)
	h := &authHeaders{second: sec, date: []string{date}, authz: []string{auth.Header(benchAPIKey, benchSharedKey, date)}}
	c.cur.Store(h)
	return h
}

// worker is one closed-loop client. It owns one request that it reuses for
// every call, which net/http allows once the previous response body is
// closed, and rewinds one body reader, so a request allocates neither.
type worker struct {
	rt  http.RoundTripper
	req *http.Request
	// br is the body's reader. The request holds it in an io.NopCloser,
	// which net/http recognises as in-memory: it then writes the headers
	// and the body in one syscall instead of flushing the headers first.
	br  bytes.Reader
	cur []byte // the body being sent, for GetBody
}

func newWorker(ctx context.Context, rt http.RoundTripper, url string) (*worker, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, err
	}
	w := &worker{rt: rt, req: req}
	req.Header = http.Header{"Content-Type": {"application/json"}}
	req.Body = io.NopCloser(&w.br)
	// The transport replays a request on a fresh connection when a kept-alive
	// one turns out to be closed before anything was written.
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(w.cur)), nil }
	return w, nil
}

// roundTrip sends body with h's authentication. The caller must read and
// close the response body before the next call.
func (w *worker) roundTrip(body []byte, h *authHeaders) (*http.Response, error) {
	w.cur = body
	w.br.Reset(body)
	w.req.ContentLength = int64(len(body))
	w.req.Header["Date"] = h.date
	w.req.Header["Authorization"] = h.authz
	return w.rt.RoundTrip(w.req)
}

// newTransport returns the client's HTTP/1.1 transport: one keep-alive
// connection per worker, no compression, no proxy, and a counter of the
// connections it opens (more than one per worker means keep-alive broke).
func newTransport(connections int, dials *atomic.Int64) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns:          connections,
		MaxIdleConnsPerHost:   connections,
		MaxConnsPerHost:       connections,
		DisableCompression:    true,
		IdleConnTimeout:       time.Minute,
		ResponseHeaderTimeout: 30 * time.Second,
	}
}

// generate runs spec's load. Just before the measured window opens it calls
// atStart, and just after it closes atEnd, so the caller can take CPU and
// metrics samples that bracket exactly the requests counted. It returns
// early with an error when ctx ends or abort is closed (the server died).
func generate(ctx context.Context, spec loadSpec, abort <-chan struct{}, atStart, atEnd func() error) (*loadResult, error) {
	if spec.hot < 1 || spec.hot > len(spec.bodies) || spec.connections < 1 {
		return nil, fmt.Errorf("bad load: %d bodies, hot set %d, %d connections", len(spec.bodies), spec.hot, spec.connections)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var dials atomic.Int64
	tr := newTransport(spec.connections, &dials)
	defer tr.CloseIdleConnections()

	var (
		base       = time.Now()
		start, end atomic.Int64 // the window, in ns since base
		stop       atomic.Bool
		auths      authCache
		wg         sync.WaitGroup
		mu         sync.Mutex
		res        = &loadResult{nonOK: map[int]int64{}}
		lats       = make([][]time.Duration, spec.connections)
	)
	start.Store(math.MaxInt64)
	end.Store(math.MaxInt64)
	workers := make([]*worker, spec.connections)
	for i := range workers {
		w, err := newWorker(ctx, tr, spec.url)
		if err != nil {
			return nil, err
		}
		workers[i] = w
	}
	for i, w := range workers {
		rng := rand.New(rand.NewPCG(spec.seed, uint64(i)))
		lat := make([]time.Duration, 0, 1<<14)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var nonOK map[int]int64
			var errs int64
			var firstErr error
			for !stop.Load() {
				n := len(spec.bodies)
				if rng.Float64() < spec.hotShare {
					n = spec.hot
				}
				body := spec.bodies[rng.IntN(n)]
				t0 := time.Now()
				resp, err := w.roundTrip(body, auths.at(t0))
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				t1 := time.Now()
				if err != nil {
					if stop.Load() || ctx.Err() != nil {
						break
					}
					errs++
					if firstErr == nil {
						firstErr = err
					}
					time.Sleep(10 * time.Millisecond) // no hot loop against a dead server
					continue
				}
				if resp.StatusCode != http.StatusOK {
					if nonOK == nil {
						nonOK = map[int]int64{}
					}
					nonOK[resp.StatusCode]++
					continue
				}
				if at := int64(t1.Sub(base)); at >= start.Load() && at < end.Load() {
					lat = append(lat, t1.Sub(t0))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			lats[i] = lat
			for code, c := range nonOK {
				res.nonOK[code] += c
			}
			res.errors += errs
			if firstErr != nil && res.firstError == "" {
				res.firstError = firstErr.Error()
			}
		}()
	}
	finish := func() {
		stop.Store(true)
		wg.Wait()
	}
	fail := func(err error) (*loadResult, error) {
		cancel() // ends requests in flight
		finish()
		return nil, err
	}

	if err := sleep(ctx, abort, spec.warmup); err != nil {
		return fail(err)
	}
	if err := atStart(); err != nil {
		return fail(err)
	}
	opened := time.Since(base)
	start.Store(int64(opened))
	if err := sleep(ctx, abort, spec.duration); err != nil {
		return fail(err)
	}
	closed := time.Since(base)
	end.Store(int64(closed))
	if err := atEnd(); err != nil {
		return fail(err)
	}
	finish()

	res.window = closed - opened
	res.dials = dials.Load()
	res.latencies = slices.Concat(lats...)
	slices.Sort(res.latencies)
	return res, nil
}

// errAborted reports that the server under test went away during a load.
var errAborted = errors.New("the server exited during the load")

// sleep waits d, or until ctx ends or abort closes.
func sleep(ctx context.Context, abort <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-abort:
		return errAborted
	}
}

// probe sends one request through the same client code and returns its
// status, body and LicenseSignature header, so a run can check the server
// before loading it.
func probe(ctx context.Context, url string, body []byte) (status int, respBody []byte, signature string, err error) {
	var dials atomic.Int64
	tr := newTransport(1, &dials)
	defer tr.CloseIdleConnections()
	w, err := newWorker(ctx, tr, url)
	if err != nil {
		return 0, nil, "", err
	}
	var auths authCache
	resp, err := w.roundTrip(body, auths.at(time.Now()))
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	respBody, err = io.ReadAll(resp.Body)
	return resp.StatusCode, respBody, resp.Header.Get("LicenseSignature"), err
}

// percentile returns the nearest-rank p-quantile (0 < p ≤ 1) of sorted: the
// smallest value that at least a fraction p of the samples do not exceed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// mean returns the average of ds.
func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}
