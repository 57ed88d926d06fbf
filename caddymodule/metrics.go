package caddymodule

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgelicense/caddy-license-api/store"
)

// Metrics are created once per process and registered again with each
// configuration's registry, because a reload brings a new registry and
// counters written only to the old one would vanish from /metrics. Labels are
// bounded: the endpoint and the answer's code, never a key or hardware id.
var metrics struct {
	once      sync.Once
	responses *prometheus.CounterVec
	// ok holds each endpoint's success counter, resolved once, since
	// WithLabelValues hashes its labels at every call.
	ok map[string]prometheus.Counter
	// signatures counts the signatures computed: the main CPU cost of an
	// answer, which error answers reuse from signatureCache.
	signatures prometheus.Counter
	cache      cacheCollector
	store      storeCollector
}

// cacheCollector reports the definitions caches of every open store; their
// counts live in ristretto, so they are read when scraped.
type cacheCollector struct {
	hits, misses *prometheus.Desc
}

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hits
	ch <- c.misses
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	var hits, misses uint64
	pool.Range(func(_, v any) bool {
		h, m := v.(*sharedState).cache.Stats()
		hits, misses = hits+h, misses+m
		return true
	})
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(misses))
}

// storeCollector reports the group commit of every open store: how many
// writes, in how many transactions, with how many flushes to disk.
type storeCollector struct {
	writes, commits, syncs *prometheus.Desc
}

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.writes
	ch <- c.commits
	ch <- c.syncs
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	var sum store.WriteStats
	pool.Range(func(_, v any) bool {
		s := v.(*sharedState).backend.WriteStats()
		sum.Writes, sum.Commits, sum.Syncs = sum.Writes+s.Writes, sum.Commits+s.Commits, sum.Syncs+s.Syncs
		return true
	})
	ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(sum.Writes))
	ch <- prometheus.MustNewConstMetric(c.commits, prometheus.CounterValue, float64(sum.Commits))
	ch <- prometheus.MustNewConstMetric(c.syncs, prometheus.CounterValue, float64(sum.Syncs))
}

func registerMetrics(registry *prometheus.Registry) error {
	metrics.once.Do(func() {
		const ns, sub = "caddy", "license_api"
		metrics.responses = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "responses_total",
			Help: "License API answers by endpoint and code (ok for success).",
		}, []string{"endpoint", "code"})
		metrics.ok = make(map[string]prometheus.Counter, len(endpoints))
		for name := range endpoints {
			metrics.ok[name] = metrics.responses.WithLabelValues(name, "ok")
		}
		metrics.signatures = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "signatures_total",
			Help: "Signatures computed for answers and license objects; identical error answers reuse one.",
		})
		metrics.cache = cacheCollector{
			hits: prometheus.NewDesc(ns+"_"+sub+"_cache_hits_total",
				"Definition lookups served from memory.", nil, nil),
			misses: prometheus.NewDesc(ns+"_"+sub+"_cache_misses_total",
				"Definition lookups that read the store.", nil, nil),
		}
		metrics.store = storeCollector{
			writes: prometheus.NewDesc(ns+"_"+sub+"_store_writes_total",
				"Writes to the store (consumptions, activations, deactivations, refused ones included) committed.", nil, nil),
			commits: prometheus.NewDesc(ns+"_"+sub+"_store_commits_total",
				"Transactions that committed the writes: group commit puts several in one.", nil, nil),
			syncs: prometheus.NewDesc(ns+"_"+sub+"_store_syncs_total",
				"Flushes of the store's log to disk made by Caddy (SQLite's write-ahead log; none with PostgreSQL, which flushes its own).", nil, nil),
		}
	})
	for _, c := range []prometheus.Collector{metrics.responses, metrics.signatures, metrics.cache, metrics.store} {
		// Several handlers in one configuration register the same
		// collectors; the first registration serves them all.
		if err := registry.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return err
		}
	}
	return nil
}
