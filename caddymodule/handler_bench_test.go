package caddymodule

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/edgelicense/caddy-license-api/auth"
	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/signing"
	"github.com/edgelicense/caddy-license-api/store/cache"
	"github.com/edgelicense/caddy-license-api/store/seed"
	"github.com/edgelicense/caddy-license-api/store/sqlite"
)

// benchHandler builds a provisioned handler over a fresh SQLite store with
// licenses licenses (each with a device and an unlimited feature), without
// Caddy around it, so that a CPU profile shows the handler's own costs.
func benchHandler(b testing.TB, kt signing.KeyType, licenses int) *Handler {
	b.Helper()
	be, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	var text bytes.Buffer
	text.WriteString(`{"products": [{"short_code": "p", "features": [{"code": "f", "allow_unlimited_consumptions": true}]}], "licenses": [`)
	for i := range licenses {
		if i > 0 {
			text.WriteByte(',')
		}
		fmt.Fprintf(&text, `{"product": "p", "license_key": "K-%d", "features": [{"code": "f"}], "devices": [{"hardware_id": "hw"}]}`, i)
	}
	text.WriteString(`]}`)
	plan, err := seed.Parse("bench", text.Bytes())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := be.Import(context.Background(), plan); err != nil {
		b.Fatal(err)
	}
	c, err := cache.New(be, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	pem, err := signing.GenerateKeyPEM(kt)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := signing.ParsePrivateKeyPEM(pem)
	if err != nil {
		b.Fatal(err)
	}
	if err := registerMetrics(prometheus.NewRegistry()); err != nil {
		b.Fatal(err)
	}
	h := &Handler{
		logger:   zap.NewNop(),
		prefix:   DefaultPrefix + "/",
		verifier: auth.NewVerifier(map[string]string{"k": "s"}, time.Hour),
		signer:   signer,
		errSigs:  new(signatureCache),
		state: &sharedState{backend: be, cache: c,
			service: &consumption.Service{Definitions: c, Recorder: be, Forget: c.ForgetLicense}},
	}
	b.Cleanup(func() {
		c.Close()
		be.Close()
	})
	return h
}

type nopNext struct{}

func (nopNext) ServeHTTP(http.ResponseWriter, *http.Request) error { return nil }

// BenchmarkAddFeatureConsumption serves signed consumptions through the
// handler with durable SQLite commits, 32 at a time so that group commit
// works as under load. Profile it with
//
//	go test ./caddymodule -run '^$' -bench AddFeatureConsumption -cpuprofile cpu.out
func BenchmarkAddFeatureConsumption(parent *testing.B) {
	b := parent
	for _, kt := range []signing.KeyType{signing.ECDSAP256, signing.RSA2048} {
		for _, n := range []int{100, 100_000} {
			// One handler per case: the function below runs once per
			// b.N tried, and a new store and cache each time would be
			// measured too.
			var h *Handler
			b.Run(fmt.Sprintf("%s/licenses=%d", kt, n), func(b *testing.B) {
				if h == nil {
					h = benchHandler(parent, kt, n)
				}
				date := time.Now().UTC().Format(http.TimeFormat)
				authz := auth.Header("k", "s", date)
				bodies := make([][]byte, n)
				for i := range bodies {
					bodies[i] = fmt.Appendf(nil, `{"product":"p","feature":"f","hardware_id":"hw","license_key":"K-%d","consumptions":1}`, i)
				}
				// One sequence shared by all goroutines: each goroutine
				// counting on its own would send them all to the same
				// few hundred licenses, and licenses=100000 would
				// measure a warm cache.
				var seq atomic.Int64
				b.SetParallelism(16)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := int(seq.Add(1))
						req := httptest.NewRequest(http.MethodPost, "/api/v4/add_feature_consumption", bytes.NewReader(bodies[i*7919%n]))
						req.Header.Set("Date", date)
						req.Header.Set("Authorization", authz)
						rec := httptest.NewRecorder()
						if err := h.ServeHTTP(rec, req, nopNext{}); err != nil || rec.Code != http.StatusOK {
							b.Fatalf("%d %s (%v)", rec.Code, rec.Body, err)
						}
					}
				})
			})
		}
	}
}
