package caddymodule

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store"
	"github.com/edgelicense/caddy-license-api/store/cache"
	"github.com/edgelicense/caddy-license-api/store/seed"
)

// pool holds the open stores. Caddy provisions a new configuration before it
// cleans up the old one, so a store kept here survives a reload with its
// connections, writer queue and warm cache, and closes when the last
// configuration using it is cleaned up.
var pool = caddy.NewUsagePool()

// sharedState is what outlives one configuration of the handler.
type sharedState struct {
	backend store.Backend
	cache   *cache.Cache
	service *consumption.Service
	// stopWatching ends the subscription to other nodes' changes.
	stopWatching context.CancelFunc
}

// Destruct closes the store once no configuration uses it.
func (s *sharedState) Destruct() error {
	s.stopWatching()
	s.cache.Close()
	return s.backend.Close()
}

// watch keeps the cache coherent with changes other nodes make to a shared
// backend: it drops what a change names, and everything when the feed
// reconnects. The cache TTL remains the safety net for a lost notification.
func (s *sharedState) watch(logger *zap.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopWatching = cancel
	feed, ok := s.backend.(store.ChangeFeed)
	if !ok {
		return
	}
	feed.Watch(ctx, func(c store.Change) {
		if c.All {
			s.cache.Clear()
			return
		}
		s.cache.ForgetLicense(c.LicenseID)
	}, func() {
		logger.Info("watching the store for other nodes' changes; dropped the definitions cache")
		s.cache.Clear()
	})
}

func (h *Handler) provisionState(opener store.Opener, plan *seed.Plan) error {
	var entries int64
	var ttl time.Duration
	if h.Cache != nil {
		entries, ttl = h.Cache.MaxEntries, time.Duration(h.Cache.TTL)
	}
	// The cache belongs to the store: two configurations of one database
	// must not keep two views of it. Its size is part of the key so that a
	// reload that resizes it takes effect.
	key := fmt.Sprintf("%s|cache:%d:%s", opener.Key(), entries, ttl)
	v, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		b, err := opener.Open(h.logger)
		if err != nil {
			return nil, err
		}
		c, err := cache.New(b, entries, ttl)
		if err != nil {
			b.Close()
			return nil, err
		}
		svc := &consumption.Service{Definitions: c, Recorder: b, Forget: c.ForgetLicense}
		st := &sharedState{backend: b, cache: c, service: svc}
		st.watch(h.logger)
		return st, nil
	})
	if err != nil {
		return fmt.Errorf("opening license store: %w", err)
	}
	h.poolKey = key
	h.state = v.(*sharedState)
	if plan == nil {
		return nil
	}
	return h.importSeed(plan)
}

// importSeed applies the seed. A failure fails the configuration's start,
// so a reload whose seed cannot be imported keeps the running
// configuration.
func (h *Handler) importSeed(plan *seed.Plan) error {
	path := plan.File()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	applied, err := h.state.backend.Import(ctx, plan)
	if err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	if applied {
		h.state.cache.Clear()
		h.logger.Info("imported seed", zap.String("path", path),
			zap.Int("products", len(plan.Products)), zap.Int("licenses", plan.Licenses),
			zap.Duration("took", time.Since(start)))
	} else {
		h.logger.Info("seed unchanged since the store's last import; nothing to apply", zap.String("path", path))
	}
	if h.Cache != nil && h.Cache.Warm {
		h.warmCache(ctx)
	}
	return nil
}

// warmCache loads the licenses into the cache. A failure only costs the
// reads warming would have saved, so it is logged, not returned.
func (h *Handler) warmCache(ctx context.Context) {
	start := time.Now()
	n, err := h.state.cache.Warm(ctx)
	if err != nil {
		h.logger.Warn("warming the definitions cache", zap.Int("licenses", n), zap.Error(err))
		return
	}
	h.logger.Info("warmed the definitions cache", zap.Int("licenses", n), zap.Duration("took", time.Since(start)))
}
